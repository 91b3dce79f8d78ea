//! Turning refusals into JavaScript errors.

use breaker_core::{ConfigError, Range, Setting};
use napi::{sys, Env, Error, Result, Status};

/// Why an argument was refused: the JavaScript error class and message.
pub(crate) enum Thrown {
    Type(String),
    Range(String),
}

/// Throws `thrown` as a `TypeError` or `RangeError` with its `code`, and
/// returns the default value napi-rs then ignores.
pub(crate) fn throw<T: Default>(env: &Env, thrown: Thrown) -> Result<T> {
    match thrown {
        Thrown::Type(message) => env.throw_type_error(&message, Some("ERR_INVALID_ARG_TYPE"))?,
        Thrown::Range(message) => env.throw_range_error(&message, Some("ERR_OUT_OF_RANGE"))?,
    }
    Ok(T::default())
}

/// An N-API status as a `Result`.
pub(crate) fn check(status: sys::napi_status) -> Result<()> {
    if status == sys::Status::napi_ok {
        Ok(())
    } else {
        Err(Error::new(Status::from(status), "napi call failed"))
    }
}

/// A refused setting, worded with its JavaScript option name.
pub(crate) fn config_error(error: &ConfigError) -> Thrown {
    let name = match error.setting {
        Setting::FailureThreshold => "failureThreshold",
        Setting::ResetTimeout => "resetTimeout",
        Setting::HalfOpenMaxCalls => "halfOpenMaxCalls",
        Setting::SuccessThreshold => "successThreshold",
        Setting::MaxResetTimeout => "maxResetTimeout",
        Setting::BackoffMultiplier => "backoffMultiplier",
        Setting::FailureRateThreshold => "failureRateThreshold",
        Setting::MinimumCalls => "minimumCalls",
        Setting::WindowSize => "windowSize",
        Setting::WindowBuckets => "windowBuckets",
        Setting::MaxConcurrent => "maxConcurrent",
        Setting::MaxQueue => "maxQueue",
    };
    let expected = match error.range {
        Range::Integer { low, high } => format!("an integer from {low} to {high}"),
        Range::Milliseconds { low, high } if error.setting == Setting::MaxResetTimeout => {
            format!("a finite number of milliseconds from resetTimeout ({low}) to {high}")
        }
        Range::Milliseconds { low, high } => {
            format!("a finite number of milliseconds from {low} to {high}")
        }
        Range::Number { low, high } => format!("a number from {low} to {high}"),
        Range::Percentage => "a percentage above 0 and at most 100".to_string(),
        Range::Required => "a number of milliseconds for a time window".to_string(),
    };
    Thrown::Range(format!("{name} must be {expected}, got {}", error.received))
}

/// The error a caught panic becomes: a bug in this package, reported as
/// one instead of aborting the process.
pub(crate) fn panic_error(panic: &(dyn std::any::Any + Send)) -> Error {
    let detail = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_string());
    Error::new(
        Status::GenericFailure,
        format!("internal error in shared-circuit-breaker (please report it): {detail}"),
    )
}
