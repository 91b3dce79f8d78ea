//! The store protocol: key names, the Lua scripts and their replies.

use crate::event::{CloseReason, FleetEvent, OpenReason, Version};

/// The three keys of one breaker, in one hash slot (`{name}` is the tag).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keys {
    /// The record (a hash); also the pub/sub channel of its changes.
    pub state: String,
    /// Trip votes: a sorted set of host ids scored by the store's ms.
    pub votes: String,
    /// The probe lease: a string with an expiry.
    pub lease: String,
}

impl Keys {
    pub fn new(prefix: &str, name: &str) -> Keys {
        let state = format!("{prefix}:{{{name}}}");
        Keys {
            votes: format!("{state}:votes"),
            lease: format!("{state}:probe"),
            state,
        }
    }

    pub fn all(&self) -> [&str; 3] {
        [&self.state, &self.votes, &self.lease]
    }
}

macro_rules! script {
    ($file:literal) => {
        concat!(include_str!("lua/prelude.lua"), include_str!($file))
    };
}

/// Every script of the protocol, run with EVALSHA (EVAL after NOSCRIPT).
pub struct Scripts {
    pub read: redis::Script,
    pub vote: redis::Script,
    pub acquire: redis::Script,
    pub result: redis::Script,
    pub isolate: redis::Script,
    pub release: redis::Script,
    pub reset: redis::Script,
    pub disable: redis::Script,
    pub restore: redis::Script,
}

impl Scripts {
    pub fn new() -> Scripts {
        Scripts {
            read: redis::Script::new(script!("lua/read.lua")),
            vote: redis::Script::new(script!("lua/vote.lua")),
            acquire: redis::Script::new(script!("lua/acquire.lua")),
            result: redis::Script::new(script!("lua/result.lua")),
            isolate: redis::Script::new(script!("lua/isolate.lua")),
            release: redis::Script::new(script!("lua/release.lua")),
            reset: redis::Script::new(script!("lua/reset.lua")),
            disable: redis::Script::new(script!("lua/disable.lua")),
            restore: redis::Script::new(script!("lua/restore.lua")),
        }
    }
}

/// The record as a script returned or published it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// `None`: no record in the store.
    pub open: Option<bool>,
    pub version: Version,
    pub opened_at: u64,
    pub retry_at: u64,
    pub reason: String,
    pub reopenings: u32,
    pub isolations: u32,
    pub disabled: bool,
    /// The store's time when the script ran (ms).
    pub now: u64,
}

/// A script's reply: a status, the record, one extra value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub status: String,
    pub record: Record,
    pub extra: String,
}

impl Record {
    /// Parses the ten record fields (a published message, or a reply after
    /// its status).
    pub fn parse(f: &[String]) -> Option<Record> {
        if f.len() < 10 {
            return None;
        }
        let n = |i: usize| f[i].parse::<u64>().ok();
        let open = match f[0].as_str() {
            "missing" => None,
            "open" => Some(true),
            "closed" => Some(false),
            _ => return None,
        };
        Some(Record {
            open,
            version: Version {
                epoch: n(1)?,
                seq: n(2)?,
            },
            opened_at: n(3)?,
            retry_at: n(4)?,
            reason: f[5].clone(),
            reopenings: u32::try_from(n(6)?).ok()?,
            isolations: u32::try_from(n(7)?).ok()?,
            disabled: n(8)? != 0,
            now: n(9)?,
        })
    }

    pub fn parse_message(payload: &str) -> Option<Record> {
        let f: Vec<String> = payload.split(' ').map(str::to_owned).collect();
        Record::parse(&f)
    }

    pub fn exists(&self) -> bool {
        self.open.is_some()
    }

    /// Open for the hosts: open by quorum or probe, or isolated.
    pub fn effectively_open(&self) -> bool {
        self.isolations > 0 || self.open == Some(true)
    }

    /// Open and the probe may be asked for (not isolated, not disabled).
    pub fn probing(&self) -> bool {
        self.open == Some(true) && self.isolations == 0 && !self.disabled
    }

    /// How long until the open period ends, on the store's clock.
    pub fn retry_in_ms(&self) -> u64 {
        self.retry_at.saturating_sub(self.now)
    }

    /// The event telling a host to adopt this record.
    pub fn event(&self) -> FleetEvent {
        if self.effectively_open() {
            let isolated = self.isolations > 0;
            let reason = if isolated {
                OpenReason::Isolated
            } else {
                match self.reason.as_str() {
                    "reopened" => OpenReason::Reopened,
                    "restored" => OpenReason::Restored,
                    _ => OpenReason::Quorum,
                }
            };
            let open = self.open == Some(true);
            FleetEvent::Open {
                version: self.version,
                since_server_ms: if open { self.opened_at } else { 0 },
                retry_in_ms: (!isolated).then(|| self.retry_in_ms()),
                reason,
                reopenings: self.reopenings,
                disabled: self.disabled,
            }
        } else {
            let reason = match self.reason.as_str() {
                "probe" => CloseReason::Probe,
                "reset" => CloseReason::Reset,
                "released" => CloseReason::Released,
                "disabled" => CloseReason::Disabled,
                _ => CloseReason::Fresh,
            };
            FleetEvent::Closed {
                version: self.version,
                reason,
                disabled: self.disabled,
            }
        }
    }
}

impl Reply {
    pub fn parse(value: redis::Value) -> Option<Reply> {
        let redis::Value::Array(items) = value else {
            return None;
        };
        let f: Vec<String> = items.iter().map(text).collect::<Option<_>>()?;
        if f.len() != 12 {
            return None;
        }
        Some(Reply {
            status: f[0].clone(),
            record: Record::parse(&f[1..11])?,
            extra: f[11].clone(),
        })
    }
}

fn text(v: &redis::Value) -> Option<String> {
    match v {
        redis::Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        redis::Value::SimpleString(s) => Some(s.clone()),
        redis::Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_share_one_hash_tag() {
        let k = Keys::new("cb", "payments");
        assert_eq!(
            k.all(),
            [
                "cb:{payments}",
                "cb:{payments}:votes",
                "cb:{payments}:probe"
            ]
        );
    }

    #[test]
    fn a_published_record_parses_into_an_open_event() {
        let r = Record::parse_message("open 17 3 1000 6000 quorum 0 0 0 2000").unwrap();
        assert_eq!(
            r.event(),
            FleetEvent::Open {
                version: Version { epoch: 17, seq: 3 },
                since_server_ms: 1000,
                retry_in_ms: Some(4000),
                reason: OpenReason::Quorum,
                reopenings: 0,
                disabled: false,
            }
        );
    }

    #[test]
    fn an_isolated_closed_record_is_open_for_the_hosts() {
        let r = Record::parse_message("closed 17 4 0 0 reset 0 1 0 2000").unwrap();
        assert!(matches!(
            r.event(),
            FleetEvent::Open {
                reason: OpenReason::Isolated,
                retry_in_ms: None,
                ..
            }
        ));
    }

    #[test]
    fn a_malformed_message_is_refused() {
        assert_eq!(Record::parse_message("open 1 2"), None);
        assert_eq!(Record::parse_message("half 1 2 0 0 x 0 0 0 0"), None);
        assert_eq!(Record::parse_message("open x 2 0 0 x 0 0 0 0"), None);
    }
}
