//! A breaker's settings: checked once, from JavaScript numbers, into a
//! [`Config`]. A refused setting is reported as a [`ConfigError`] value (the
//! setting, what it must be, what it was); the binding words it with the
//! JavaScript option names.

use crate::bulkhead::{self, Size};
use crate::features::Features;
use crate::window::{
    WindowCounts, WindowSpec, MAX_WINDOW_BUCKETS, MAX_WINDOW_CALLS, MAX_WINDOW_MS,
};

/// Largest accepted threshold: `FAILURE_COUNT` is an `Int32Array` slot.
pub const MAX_FAILURE_THRESHOLD: u32 = i32::MAX as u32;
/// Largest accepted reset timeout: about 278 years, far inside the 44-bit timer.
pub const MAX_RESET_TIMEOUT_MS: u64 = 1 << 43;
/// Largest `halfOpenMaxCalls` and `successThreshold`: 16-bit fields of the probe word.
pub const MAX_PROBES: u32 = u16::MAX as u32;
/// Largest backoff multiplier.
pub const MAX_BACKOFF_MULTIPLIER: f64 = 1000.0;

/// A breaker's settings. Every thread sharing a buffer should use the same.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Config {
    /// Consecutive failures that open the breaker; 0: only the rate does.
    failure_threshold: u32,
    reset_timeout_ms: u64,
    /// Longest open period the backoff may reach (== reset timeout: no backoff).
    max_reset_timeout_ms: u64,
    backoff_multiplier: f64,
    half_open_max_calls: u32,
    success_threshold: u32,
    rate: Option<RatePolicy>,
    histogram: bool,
    /// The bulkhead's sizes (`maxConcurrent`, `maxQueue`), if it has one.
    bulkhead: Option<Size>,
}

/// Opening on a failure rate over a window of recent calls.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RatePolicy {
    /// Percentage of bad calls (failures, slow calls) that opens the breaker.
    pub threshold_percent: f64,
    /// Calls the window must hold before the rate counts.
    pub minimum_calls: u32,
    pub window: WindowSpec,
}

impl RatePolicy {
    /// Whether a window holding `counts` says open.
    #[inline]
    pub fn is_reached(&self, counts: WindowCounts) -> bool {
        counts.calls >= u64::from(self.minimum_calls)
            && counts.calls > 0
            && counts.bad as f64 * 100.0 >= self.threshold_percent * counts.calls as f64
    }
}

/// The settings past the seed's two, as JavaScript numbers; `None` for the default.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Policies {
    /// Default 1.
    pub half_open_max_calls: Option<f64>,
    /// Default 1.
    pub success_threshold: Option<f64>,
    /// Default: the reset timeout (no backoff).
    pub max_reset_timeout: Option<f64>,
    /// Default 2.
    pub backoff_multiplier: Option<f64>,
    /// Percent in (0, 100]; enables the rate policy.
    pub failure_rate_threshold: Option<f64>,
    /// Default 10.
    pub minimum_calls: Option<f64>,
    /// Calls (count window, default 100) or ms (time window).
    pub window_size: Option<f64>,
    /// True for a time window; default a count window.
    pub window_is_time: bool,
    /// Buckets of a time window, default 10.
    pub window_buckets: Option<f64>,
    /// Consecutive failures also open the breaker even with a rate policy.
    pub consecutive_too: bool,
    pub histogram: bool,
    /// Permits of the breaker's bulkhead; enables it.
    pub max_concurrent: Option<f64>,
    /// Queue places of the bulkhead, default 0.
    pub max_queue: Option<f64>,
}

/// A setting, as [`Config::with_policies`] takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    FailureThreshold,
    ResetTimeout,
    HalfOpenMaxCalls,
    SuccessThreshold,
    MaxResetTimeout,
    BackoffMultiplier,
    FailureRateThreshold,
    MinimumCalls,
    WindowSize,
    WindowBuckets,
    MaxConcurrent,
    MaxQueue,
}

/// What a setting must be.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Range {
    /// An integer from `low` to `high`, both included.
    Integer { low: u64, high: u64 },
    /// A finite number of milliseconds from `low` to `high` (a fraction is
    /// rounded up). For [`Setting::MaxResetTimeout`], `low` is the reset timeout.
    Milliseconds { low: u64, high: u64 },
    /// A finite number from `low` to `high`.
    Number { low: f64, high: f64 },
    /// A percentage above 0 and at most 100.
    Percentage,
    /// Required, and missing: a time window needs its length in ms.
    Required,
}

/// Why a setting was refused. `received` is NaN for a missing one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConfigError {
    pub setting: Setting,
    pub range: Range,
    pub received: f64,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ConfigError {
            setting, received, ..
        } = self;
        write!(f, "{setting:?} must be ")?;
        match self.range {
            Range::Integer { low, high } => write!(f, "an integer from {low} to {high}")?,
            Range::Milliseconds { low, high } => write!(f, "milliseconds from {low} to {high}")?,
            Range::Number { low, high } => write!(f, "a number from {low} to {high}")?,
            Range::Percentage => write!(f, "a percentage above 0 and at most 100")?,
            Range::Required => write!(f, "given")?,
        }
        write!(f, ", got {received}")
    }
}

impl std::error::Error for ConfigError {}

fn integer_in(setting: Setting, value: f64, low: u32, high: u32) -> Result<u32, ConfigError> {
    if value.fract() == 0.0 && value >= f64::from(low) && value <= f64::from(high) {
        Ok(value as u32)
    } else {
        Err(ConfigError {
            setting,
            range: Range::Integer {
                low: low.into(),
                high: high.into(),
            },
            received: value,
        })
    }
}

/// Whole milliseconds from `low` to [`MAX_RESET_TIMEOUT_MS`], rounded up.
fn milliseconds_in(setting: Setting, ms: f64, low: u64) -> Result<u64, ConfigError> {
    let high = MAX_RESET_TIMEOUT_MS;
    if ms.is_finite() && ms >= 0.0 && ms <= high as f64 && ms.ceil() as u64 >= low {
        Ok(ms.ceil() as u64)
    } else {
        Err(ConfigError {
            setting,
            range: Range::Milliseconds { low, high },
            received: ms,
        })
    }
}

impl Config {
    /// Validates settings as JavaScript numbers. A fractional reset timeout is
    /// rounded up to whole milliseconds.
    pub fn new(failure_threshold: f64, reset_timeout_ms: f64) -> Result<Config, ConfigError> {
        let failure_threshold = integer_in(
            Setting::FailureThreshold,
            failure_threshold,
            1,
            MAX_FAILURE_THRESHOLD,
        )?;
        let reset_timeout_ms = milliseconds_in(Setting::ResetTimeout, reset_timeout_ms, 0)?;
        Ok(Config {
            failure_threshold,
            reset_timeout_ms,
            max_reset_timeout_ms: reset_timeout_ms,
            backoff_multiplier: 2.0,
            half_open_max_calls: 1,
            success_threshold: 1,
            rate: None,
            histogram: false,
            bulkhead: None,
        })
    }

    /// The seed's settings plus the policies past them.
    pub fn with_policies(
        failure_threshold: f64,
        reset_timeout_ms: f64,
        policies: &Policies,
    ) -> Result<Config, ConfigError> {
        let mut config = Config::new(failure_threshold, reset_timeout_ms)?;
        if let Some(calls) = policies.half_open_max_calls {
            config.half_open_max_calls =
                integer_in(Setting::HalfOpenMaxCalls, calls, 1, MAX_PROBES)?;
        }
        if let Some(successes) = policies.success_threshold {
            config.success_threshold =
                integer_in(Setting::SuccessThreshold, successes, 1, MAX_PROBES)?;
        }
        if let Some(max) = policies.max_reset_timeout {
            config.max_reset_timeout_ms =
                milliseconds_in(Setting::MaxResetTimeout, max, config.reset_timeout_ms)?;
        }
        if let Some(multiplier) = policies.backoff_multiplier {
            if !(multiplier.is_finite() && (1.0..=MAX_BACKOFF_MULTIPLIER).contains(&multiplier)) {
                return Err(ConfigError {
                    setting: Setting::BackoffMultiplier,
                    range: Range::Number {
                        low: 1.0,
                        high: MAX_BACKOFF_MULTIPLIER,
                    },
                    received: multiplier,
                });
            }
            config.backoff_multiplier = multiplier;
        }
        if let Some(percent) = policies.failure_rate_threshold {
            if !(percent > 0.0 && percent <= 100.0) {
                return Err(ConfigError {
                    setting: Setting::FailureRateThreshold,
                    range: Range::Percentage,
                    received: percent,
                });
            }
        }
        // The window options matter only with a failure rate (as the
        // multiplier only with a longer maxResetTimeout); without it they
        // change nothing, but are checked as they would be with it.
        let window = if policies.failure_rate_threshold.is_some()
            || policies.window_size.is_some()
            || policies.window_buckets.is_some()
            || policies.minimum_calls.is_some()
        {
            Some(rate_window(policies)?)
        } else {
            None
        };
        if let (Some(percent), Some((window, minimum_calls))) =
            (policies.failure_rate_threshold, window)
        {
            config.rate = Some(RatePolicy {
                threshold_percent: percent,
                minimum_calls,
                window,
            });
            if !policies.consecutive_too {
                config.failure_threshold = 0;
            }
        }
        config.histogram = policies.histogram;
        // maxQueue matters only with maxConcurrent, but is checked without it.
        let max = bulkhead::MAX_PERMITS;
        let places = match policies.max_queue {
            Some(places) => integer_in(Setting::MaxQueue, places, 0, max)?,
            None => 0,
        };
        if let Some(permits) = policies.max_concurrent {
            let permits = integer_in(Setting::MaxConcurrent, permits, 1, max)?;
            config.bulkhead = Some(Size { permits, places });
        }
        Ok(config)
    }

    /// Consecutive failures that open the breaker; 0 when only the rate does.
    pub fn failure_threshold(&self) -> u32 {
        self.failure_threshold
    }

    pub fn reset_timeout_ms(&self) -> u64 {
        self.reset_timeout_ms
    }

    pub fn half_open_max_calls(&self) -> u32 {
        self.half_open_max_calls
    }

    pub fn success_threshold(&self) -> u32 {
        self.success_threshold
    }

    pub fn rate(&self) -> Option<&RatePolicy> {
        self.rate.as_ref()
    }

    /// The optional memory regions these settings need.
    pub fn features(&self) -> Features {
        Features {
            window: self.rate.map(|rate| rate.window),
            histogram: self.histogram,
            bulkhead: self.bulkhead.is_some(),
        }
    }

    /// The bulkhead's sizes, if the breaker has one.
    pub fn bulkhead(&self) -> Option<Size> {
        self.bulkhead
    }

    /// Length of the array these settings need: the optional regions'
    /// (`features`), with the bulkhead of these sizes last.
    pub fn slots_needed(&self) -> usize {
        match self.bulkhead {
            Some(size) => self.features().bulkhead_base() + size.slots_needed(),
            None => self.features().slots_needed(),
        }
    }

    /// How long the breaker stays open after `reopenings` failed probes in a
    /// row: the reset timeout times the multiplier to that power, capped.
    pub fn open_ms(&self, reopenings: u32) -> u64 {
        if self.max_reset_timeout_ms == self.reset_timeout_ms || reopenings == 0 {
            return self.reset_timeout_ms;
        }
        let grown = self.reset_timeout_ms as f64
            * self.backoff_multiplier.powi(reopenings.min(4096) as i32);
        if grown >= self.max_reset_timeout_ms as f64 {
            self.max_reset_timeout_ms
        } else {
            grown.ceil() as u64
        }
    }

    /// How long a probe may run before another caller may take over: the
    /// reset timeout, and at least 1 ms so a zero timeout still admits one
    /// probe at a time.
    pub(crate) fn lease_ms(&self) -> u64 {
        self.reset_timeout_ms.max(1)
    }
}

/// The failure-rate window and its minimum calls, checked.
fn rate_window(policies: &Policies) -> Result<(WindowSpec, u32), ConfigError> {
    let window = if policies.window_is_time {
        let ms = policies.window_size.ok_or(ConfigError {
            setting: Setting::WindowSize,
            range: Range::Required,
            received: f64::NAN,
        })?;
        let ms = integer_in(Setting::WindowSize, ms, 1, MAX_WINDOW_MS)?;
        let buckets = policies
            .window_buckets
            .unwrap_or(10.0_f64.min(f64::from(ms)));
        let buckets = integer_in(
            Setting::WindowBuckets,
            buckets,
            1,
            MAX_WINDOW_BUCKETS.min(ms),
        )?;
        WindowSpec::Time { ms, buckets }
    } else {
        let calls = policies.window_size.unwrap_or(100.0);
        let calls = integer_in(Setting::WindowSize, calls, 1, MAX_WINDOW_CALLS)?;
        WindowSpec::Count { calls }
    };
    // A count window never holds more than its size: a larger minimum would
    // never be reached. The default shrinks to fit.
    let most = match window {
        WindowSpec::Count { calls } => calls,
        WindowSpec::Time { .. } => i32::MAX as u32,
    };
    let minimum_calls = match policies.minimum_calls {
        Some(minimum) => integer_in(Setting::MinimumCalls, minimum, 1, most)?,
        None => 10.min(most),
    };
    Ok((window, minimum_calls))
}
