//! Options of the agent and of each registered breaker, checked before use.

use std::fmt;

/// An error the caller can show as it is: it names the option, its range
/// and what was received. Passwords never appear in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FleetError {
    /// The store URL cannot be used.
    InvalidUrl { url: String, detail: String },
    /// An option is out of its range.
    InvalidOption {
        option: &'static str,
        expected: &'static str,
        received: String,
    },
    /// The process already has an agent for another store.
    OtherStore { running: String, requested: String },
    /// The agent has stopped (or its thread could not start).
    Stopped(String),
}

impl fmt::Display for FleetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FleetError::InvalidUrl { url, detail } => {
                write!(
                    f,
                    "fleet url must be a redis:// or rediss:// URL, received {url:?}: {detail}"
                )
            }
            FleetError::InvalidOption {
                option,
                expected,
                received,
            } => {
                write!(
                    f,
                    "fleet option {option} must be {expected}, received {received}"
                )
            }
            FleetError::OtherStore { running, requested } => write!(
                f,
                "one fleet store per process: this process uses {running:?}, received {requested:?}"
            ),
            FleetError::Stopped(why) => write!(f, "the fleet agent has stopped: {why}"),
        }
    }
}

impl std::error::Error for FleetError {}

/// How the agent reaches the store. Times are in milliseconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentOptions {
    /// The URL names one node of a Redis Cluster (the others are discovered).
    pub cluster: bool,
    /// Every command's deadline; past it the agent reports `Degraded`.
    /// Default 250, range 1..=60000.
    pub command_timeout_ms: u64,
    /// Deadline of one connection attempt. Default 1000, range 1..=60000.
    pub connect_timeout_ms: u64,
    /// Period of the full re-read of every breaker (pub/sub is at most once).
    /// Default 1000, range 10..=3600000.
    pub reread_ms: u64,
    /// First and longest wait between reconnection attempts (exponential,
    /// with jitter). Defaults 50 and 2000, range 1..=600000, min <= max.
    pub reconnect_min_ms: u64,
    pub reconnect_max_ms: u64,
    /// Prefix of every key and channel. Default "cb".
    pub key_prefix: String,
    /// PEM root certificate(s) trusted for `rediss://` instead of the
    /// system's store.
    pub tls_ca_pem: Option<Vec<u8>>,
}

impl Default for AgentOptions {
    fn default() -> Self {
        AgentOptions {
            cluster: false,
            command_timeout_ms: 250,
            connect_timeout_ms: 1000,
            reread_ms: 1000,
            reconnect_min_ms: 50,
            reconnect_max_ms: 2000,
            key_prefix: "cb".to_owned(),
            tls_ca_pem: None,
        }
    }
}

/// One breaker joining the fleet. Times are in milliseconds, on the store's
/// clock. Every host of one breaker should use the same values: each script
/// applies the values of the host that runs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BreakerSpec {
    /// The breaker's name, shared by its hosts: 1..=200 bytes, no `{`, `}`
    /// or whitespace.
    pub name: String,
    /// This host's id, distinct per host: 1..=200 bytes, no whitespace.
    pub host_id: String,
    /// Distinct hosts whose votes open the fleet. Default 2, range 1..=1000.
    pub quorum: u32,
    /// How long a trip vote counts. Default 10000, range 1..=86400000.
    pub vote_window_ms: u64,
    /// The first open period. Default 10000, range 1..=86400000.
    pub open_ms: u64,
    /// The open period doubles after each failed probe, up to this.
    /// Default 60000, range open_ms..=86400000.
    pub max_open_ms: u64,
    /// How long a granted probe lease lasts. Default 10000, range 1..=86400000.
    pub lease_ms: u64,
}

impl BreakerSpec {
    pub fn new(name: impl Into<String>, host_id: impl Into<String>) -> BreakerSpec {
        BreakerSpec {
            name: name.into(),
            host_id: host_id.into(),
            quorum: 2,
            vote_window_ms: 10_000,
            open_ms: 10_000,
            max_open_ms: 60_000,
            lease_ms: 10_000,
        }
    }
}

const DAY_MS: u64 = 86_400_000;

fn in_range(
    option: &'static str,
    expected: &'static str,
    value: u64,
    lo: u64,
    hi: u64,
) -> Result<(), FleetError> {
    if (lo..=hi).contains(&value) {
        Ok(())
    } else {
        Err(FleetError::InvalidOption {
            option,
            expected,
            received: value.to_string(),
        })
    }
}

fn word(
    option: &'static str,
    expected: &'static str,
    value: &str,
    braces: bool,
) -> Result<(), FleetError> {
    let bad = value.is_empty()
        || value.len() > 200
        || value
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || (braces && (c == '{' || c == '}')));
    if bad {
        Err(FleetError::InvalidOption {
            option,
            expected,
            received: format!("{value:?}"),
        })
    } else {
        Ok(())
    }
}

impl AgentOptions {
    pub fn validate(&self) -> Result<(), FleetError> {
        in_range(
            "commandTimeoutMs",
            "an integer in 1..=60000",
            self.command_timeout_ms,
            1,
            60_000,
        )?;
        in_range(
            "connectTimeoutMs",
            "an integer in 1..=60000",
            self.connect_timeout_ms,
            1,
            60_000,
        )?;
        in_range(
            "rereadMs",
            "an integer in 10..=3600000",
            self.reread_ms,
            10,
            3_600_000,
        )?;
        in_range(
            "reconnectMinMs",
            "an integer in 1..=600000",
            self.reconnect_min_ms,
            1,
            600_000,
        )?;
        in_range(
            "reconnectMaxMs",
            "an integer in reconnectMinMs..=600000",
            self.reconnect_max_ms,
            self.reconnect_min_ms,
            600_000,
        )?;
        word(
            "keyPrefix",
            "1 to 200 bytes without whitespace, '{' or '}'",
            &self.key_prefix,
            true,
        )
    }
}

impl BreakerSpec {
    pub fn validate(&self) -> Result<(), FleetError> {
        word(
            "name",
            "1 to 200 bytes without whitespace, '{' or '}'",
            &self.name,
            true,
        )?;
        word(
            "hostId",
            "1 to 200 bytes without whitespace",
            &self.host_id,
            false,
        )?;
        in_range(
            "quorum",
            "an integer in 1..=1000",
            u64::from(self.quorum),
            1,
            1000,
        )?;
        in_range(
            "voteWindowMs",
            "an integer in 1..=86400000",
            self.vote_window_ms,
            1,
            DAY_MS,
        )?;
        in_range(
            "openMs",
            "an integer in 1..=86400000",
            self.open_ms,
            1,
            DAY_MS,
        )?;
        in_range(
            "maxOpenMs",
            "an integer in openMs..=86400000",
            self.max_open_ms,
            self.open_ms,
            DAY_MS,
        )?;
        in_range(
            "leaseMs",
            "an integer in 1..=86400000",
            self.lease_ms,
            1,
            DAY_MS,
        )
    }
}

/// The URL with its password replaced by `***`, for messages.
pub fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_owned();
    };
    let userinfo = &rest[..at];
    let user = userinfo.split(':').next().unwrap_or("");
    let hidden = if userinfo.contains(':') {
        format!("{user}:***")
    } else {
        "***".to_owned()
    };
    format!("{}{}{}", &url[..scheme_end + 3], hidden, &rest[at..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_the_password_only() {
        assert_eq!(
            redact("redis://app:s3cret@h:6379/0"),
            "redis://app:***@h:6379/0"
        );
        assert_eq!(redact("rediss://:s3cret@h"), "rediss://:***@h");
        assert_eq!(redact("redis://s3cret@h"), "redis://***@h");
        assert_eq!(redact("redis://h:6379"), "redis://h:6379");
    }

    #[test]
    fn a_name_with_a_brace_is_refused_with_its_option() {
        let mut spec = BreakerSpec::new("a}b", "h1");
        let err = spec.validate().unwrap_err();
        assert!(err.to_string().contains("fleet option name"), "{err}");
        spec.name = "ab".into();
        spec.max_open_ms = spec.open_ms - 1;
        let err = spec.validate().unwrap_err();
        assert!(err.to_string().contains("maxOpenMs"), "{err}");
        assert!(err.to_string().contains("received 9999"), "{err}");
    }
}
