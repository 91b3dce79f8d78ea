//! Making and freeing breakers: `create` checks the options and the array,
//! builds the breaker and ties its life to an owner object; `dispose` frees
//! it early; `arrayLength` sizes an array for a set of options.

use crate::arrays::shared_slots;
use crate::errors::{check, config_error, throw, Thrown};
use crate::table::{self, Instance};
use breaker_core::features::{claim_features, FeaturesError};
use breaker_core::{claim_layout, Breaker, Config, Policies};
use napi::bindgen_prelude::{Object, Unknown};
use napi::{sys, Env, Error, JsValue, Result, Status};
use napi_derive::napi;
use std::ffi::c_void;

/// Builds a breaker over `array` and ties its life to `owner`: the breaker is
/// freed when `owner` is garbage collected. Returns the breaker's handle.
///
/// Throws `TypeError` if `array` is not an `Int32Array` over a
/// `SharedArrayBuffer`, `RangeError` if it is too short, misaligned, holds
/// another layout, or a setting is out of range.
#[napi(catch_unwind)]
pub fn create(
    env: Env,
    owner: Object,
    array: Unknown,
    failure_threshold: f64,
    reset_timeout: f64,
    policies: PolicyOptions,
    actor: u32,
) -> Result<u32> {
    let config = match Config::with_policies(failure_threshold, reset_timeout, &policies.into()) {
        Ok(config) => config,
        Err(error) => return throw(&env, config_error(&error)),
    };
    let (slots, mapping) = match shared_slots(env.raw(), array.raw()) {
        Ok(found) => found,
        Err(thrown) => return throw(&env, thrown),
    };
    if let Err(error) = claim_layout(&slots) {
        return throw(&env, Thrown::Range(format!("sharedArray {error}")));
    }
    // The bulkhead's length depends on its sizes, which the FEATURES
    // descriptor does not hold: the whole length is checked here.
    let required = config.slots_needed();
    if slots.len() < required {
        let error = FeaturesError::TooShort {
            length: slots.len(),
            required,
        };
        return throw(&env, Thrown::Range(format!("sharedArray {error}")));
    }
    if let Err(error) = claim_features(&slots, slots.len(), &config.features()) {
        return throw(&env, Thrown::Range(format!("sharedArray {error}")));
    }

    let mut array_ref = std::ptr::null_mut();
    // SAFETY: `env` and `array` are live handles of this call.
    check(unsafe { sys::napi_create_reference(env.raw(), array.raw(), 1, &mut array_ref) })?;
    let instance = Instance {
        breaker: Breaker::new(slots, config).with_actor(actor, std::process::id()),
        stripe: table::stripe(),
        array: array_ref,
        _mapping: mapping,
    };

    let id = table::insert(instance)?;

    // SAFETY: `owner` is a live object of this call; the finalizer receives
    // `id` back as its data and runs on this thread.
    let status = unsafe {
        sys::napi_wrap(
            env.raw(),
            owner.raw(),
            id as usize as *mut c_void,
            Some(table::finalize),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
    if status != sys::Status::napi_ok {
        table::release(env.raw(), id);
        return Err(Error::new(
            Status::InvalidArg,
            "owner already holds a circuit breaker",
        ));
    }
    Ok(id)
}

/// The options past the seed's, already type-checked by the facade.
#[napi(object)]
#[derive(Default)]
pub struct PolicyOptions {
    pub half_open_max_calls: Option<f64>,
    pub success_threshold: Option<f64>,
    pub max_reset_timeout: Option<f64>,
    pub backoff_multiplier: Option<f64>,
    pub failure_rate_threshold: Option<f64>,
    pub minimum_calls: Option<f64>,
    pub window_size: Option<f64>,
    /// `'time'` for a time window; anything else a count window.
    pub window_is_time: Option<bool>,
    pub window_buckets: Option<f64>,
    /// Consecutive failures open the breaker too, beside the rate.
    pub consecutive_too: Option<bool>,
    pub histogram: Option<bool>,
    /// Permits of the breaker's bulkhead.
    pub max_concurrent: Option<f64>,
    pub max_queue: Option<f64>,
}

impl From<PolicyOptions> for Policies {
    fn from(o: PolicyOptions) -> Policies {
        Policies {
            half_open_max_calls: o.half_open_max_calls,
            success_threshold: o.success_threshold,
            max_reset_timeout: o.max_reset_timeout,
            backoff_multiplier: o.backoff_multiplier,
            failure_rate_threshold: o.failure_rate_threshold,
            minimum_calls: o.minimum_calls,
            window_size: o.window_size,
            window_is_time: o.window_is_time.unwrap_or(false),
            window_buckets: o.window_buckets,
            consecutive_too: o.consecutive_too.unwrap_or(false),
            histogram: o.histogram.unwrap_or(false),
            max_concurrent: o.max_concurrent,
            max_queue: o.max_queue,
        }
    }
}

/// Frees the breaker held by `owner` now instead of when `owner` is
/// collected: its handle, its reference to the array and its share of a
/// breaker file's mapping. Returns false if `owner` holds none (any more).
#[napi(catch_unwind)]
pub fn dispose(env: Env, owner: Object) -> bool {
    let mut data = std::ptr::null_mut();
    // SAFETY: live env and object; on success the wrap is gone, so the
    // finalizer will not run and `release` below is the only one for `id`.
    let status = unsafe { sys::napi_remove_wrap(env.raw(), owner.raw(), &mut data) };
    if status != sys::Status::napi_ok {
        return false;
    }
    table::release(env.raw(), data as usize as u32);
    true
}

/// Array length (in Int32 slots) a breaker with these options needs.
#[napi(catch_unwind)]
pub fn array_length(
    env: Env,
    failure_threshold: f64,
    reset_timeout: f64,
    policies: PolicyOptions,
) -> Result<u32> {
    match Config::with_policies(failure_threshold, reset_timeout, &policies.into()) {
        Ok(config) => Ok(config.slots_needed() as u32),
        Err(error) => throw(&env, config_error(&error)),
    }
}
