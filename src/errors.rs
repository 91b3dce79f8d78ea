//! Turning refusals into JavaScript errors.

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
