//! The bulkhead and the rate limiter: converts between JavaScript and
//! `breaker_core::{bulkhead, rate_limiter}`, and nothing else.
//!
//! Unlike breakers, these keep no per-thread table: every call is handed
//! the `Int32Array` and views it for the length of the call only, so no
//! reference outlives the call and nothing needs freeing. The facade takes
//! a free permit and releases one in JavaScript (one compare-and-swap of
//! the permit's HOLDER word each, as `Bulkhead::try_acquire` and
//! `Bulkhead::release` do); everything else comes here.

use crate::arrays::shared_memory;
use crate::clock::{host_ms, host_ns};
use crate::errors::{throw, Thrown};
use breaker_core::bulkhead::{self, Bulkhead, BulkheadError, Hold, Released, Size};
use breaker_core::rate_limiter::{self, max_wait_ns, Decision, Rate, RateError};
use breaker_core::Slots;
use napi::bindgen_prelude::Unknown;
use napi::{Env, JsValue, Result};
use napi_derive::napi;

/// The memory of `array` for the length of one call, and the breaker
/// file mapping it lies in (if any), to hold until the call returns.
fn memory(env: &Env, array: &Unknown) -> std::result::Result<(Slots<'static>, Held), Thrown> {
    let (slots, mapping) = shared_memory(env.raw(), array.raw(), "array")?;
    let slots =
        Slots::any_length(slots).map_err(|error| Thrown::Range(format!("array {error}")))?;
    Ok((slots, mapping))
}

/// A breaker file's mapping, kept while a call views it.
type Held = Option<std::sync::Arc<crate::file::Mapping>>;

/// Runs `f` on the bulkhead in `array`, claimed with `size` if given, else
/// as found there.
fn with_bulkhead<T: Default>(
    env: &Env,
    array: &Unknown,
    size: Option<Size>,
    f: impl FnOnce(&Bulkhead<Slots<'static>>) -> T,
) -> Result<T> {
    let (slots, _held) = match memory(env, array) {
        Ok(found) => found,
        Err(thrown) => return throw(env, thrown),
    };
    let found = match size {
        Some(size) => bulkhead::claim(slots, slots.len(), size).map_err(|e| bulkhead_error(&e)),
        None => bulkhead::join(slots, slots.len())
            .ok_or_else(|| Thrown::Range("array holds no bulkhead".to_string())),
    };
    match found {
        Ok(bulkhead) => Ok(f(&bulkhead)),
        Err(thrown) => throw(env, thrown),
    }
}

/// A refused bulkhead, worded with its JavaScript options.
fn bulkhead_error(error: &BulkheadError) -> Thrown {
    let max = bulkhead::MAX_PERMITS;
    Thrown::Range(match *error {
        BulkheadError::Permits { got } => {
            format!("maxConcurrent must be an integer from 1 to {max}, got {got}")
        }
        BulkheadError::Places { got } => {
            format!("maxQueue must be an integer from 0 to {max}, got {got}")
        }
        BulkheadError::TooShort { length, required } => format!(
            "array must have at least {required} elements (Bulkhead.arrayLength(options)), got {length}"
        ),
        BulkheadError::Mismatch { permits, places } => format!(
            "array already holds a bulkhead with maxConcurrent {permits} and maxQueue {places}; \
             every bulkhead over one array must have the same"
        ),
        BulkheadError::Foreign { found } => {
            format!("array holds data that is not a bulkhead (slots 4 and 5 hold {found:#x})")
        }
    })
}

/// A refused rate limiter, worded with its JavaScript options.
fn rate_error(error: &RateError) -> Thrown {
    let (limit, ms) = (rate_limiter::MAX_LIMIT, rate_limiter::MAX_WAIT_MS);
    Thrown::Range(match *error {
        RateError::Limit { got } => {
            format!("limit must be an integer from 1 to {limit}, got {got}")
        }
        RateError::Interval { got } => {
            format!("interval must be an integer number of milliseconds from 1 to {ms}, got {got}")
        }
        RateError::Burst { got } => {
            format!("burst must be an integer from 1 to {limit}, got {got}")
        }
        RateError::MaxWait { got } => {
            format!("maxWait must be a number of milliseconds from 0 to {ms}, got {got}")
        }
        RateError::TooShort { length } => format!(
            "array must have at least {} elements (RateLimiter.arrayLength()), got {length}",
            rate_limiter::SLOTS
        ),
        RateError::Mismatch => "array already holds a rate limiter with another limit, interval \
             or burst; every rate limiter over one array must have the same"
            .to_string(),
        RateError::Foreign { found } => {
            format!("array holds data that is not a rate limiter (slots 4 and 5 hold {found:#x})")
        }
    })
}

/// A token from JavaScript (a number below 2^48), or one that matches no
/// permit when it is anything else.
fn hold(token: f64) -> Hold {
    if token.fract() == 0.0 && (0.0..(1u64 << 48) as f64).contains(&token) {
        Hold::from_token(token as u64)
    } else {
        Hold {
            index: u32::MAX,
            word: 0,
        }
    }
}

/// A lease in ms, clamped to what the core takes.
fn lease(lease_ms: f64) -> u32 {
    lease_ms.clamp(0.0, f64::from(bulkhead::MAX_LEASE_MS)) as u32
}

/// Where the facade finds what it reads and writes itself.
#[napi(object)]
pub struct BulkheadLayout {
    /// Slot of permit 0's HOLDER word.
    pub permit_base: u32,
    /// Slots from one permit to the next.
    pub permit_stride: u32,
    /// The QUEUED counter.
    pub queued: u32,
    /// The WAKE sequence waiters wait on.
    pub wake: u32,
}

#[napi(catch_unwind)]
pub fn bulkhead_layout() -> BulkheadLayout {
    BulkheadLayout {
        permit_base: (bulkhead::PERMIT_BASE + bulkhead::HOLDER) as u32,
        permit_stride: bulkhead::PERMIT_STRIDE as u32,
        queued: bulkhead::QUEUED as u32,
        wake: bulkhead::WAKE as u32,
    }
}

/// Array length (in Int32 slots) a bulkhead of `maxConcurrent` permits and
/// `maxQueue` queue places needs. Throws `RangeError` for sizes out of range.
#[napi(catch_unwind)]
pub fn bulkhead_array_length(env: Env, max_concurrent: f64, max_queue: f64) -> Result<u32> {
    match Size::new(max_concurrent, max_queue) {
        Ok(size) => Ok(size.slots_needed() as u32),
        Err(error) => throw(&env, bulkhead_error(&error)),
    }
}

/// Makes `array` a bulkhead of this size, or joins the one there. Throws
/// `TypeError` for an array that is not an `Int32Array`, `RangeError` for
/// sizes out of range, a misaligned or short array, or one holding another
/// bulkhead size or something else.
#[napi(catch_unwind)]
pub fn bulkhead_claim(env: Env, array: Unknown, max_concurrent: f64, max_queue: f64) -> Result<()> {
    let size = match Size::new(max_concurrent, max_queue) {
        Ok(size) => size,
        Err(error) => return throw(&env, bulkhead_error(&error)),
    };
    with_bulkhead(&env, &array, Some(size), |_| ())
}

/// Takes a permit (free, or reclaimed from a holder past `leaseMs`),
/// trying permit `start` first. Returns its token (>= 0); else, with
/// `queue`, takes a queue place and returns `-2 - placeToken`; else (or
/// with every place taken) counts a rejection and returns -1.
#[napi(catch_unwind)]
pub fn bulkhead_acquire(
    env: Env,
    array: Unknown,
    start: u32,
    lease_ms: f64,
    queue: bool,
) -> Result<f64> {
    with_bulkhead(&env, &array, None, |b| {
        let (lease, now) = (lease(lease_ms), host_ms());
        if let Some(taken) = b.acquire(start, lease, now) {
            return taken.hold().token() as f64;
        }
        if queue {
            if let Some(place) = b.enqueue(start, lease, now) {
                return -2.0 - place.token() as f64;
            }
        }
        b.count_rejection(false);
        -1.0
    })
}

/// For a waiter holding queue place `placeToken`: takes a permit as
/// `bulkheadAcquire` does and, if it got one, gives the place back and
/// returns the permit's token; else -1 (still queued).
#[napi(catch_unwind)]
pub fn bulkhead_retry(
    env: Env,
    array: Unknown,
    start: u32,
    lease_ms: f64,
    place_token: f64,
) -> Result<f64> {
    with_bulkhead(&env, &array, None, |b| {
        match b.acquire(start, lease(lease_ms), host_ms()) {
            Some(taken) => {
                b.dequeue(hold(place_token));
                taken.hold().token() as f64
            }
            None => -1.0,
        }
    })
}

/// A waiter gives its queue place back without a permit: counted as a
/// rejection (and a queue timeout with `timedOut`).
#[napi(catch_unwind)]
pub fn bulkhead_leave(env: Env, array: Unknown, place_token: f64, timed_out: bool) -> Result<()> {
    with_bulkhead(&env, &array, None, |b| {
        b.dequeue(hold(place_token));
        b.count_rejection(timed_out);
    })
}

/// Releases permit `token`: 1 freed and calls wait (WAKE was bumped: notify
/// it), 0 freed, -1 lost (it had been reclaimed after its lease; counted).
#[napi(catch_unwind)]
pub fn bulkhead_release(env: Env, array: Unknown, token: f64) -> Result<i32> {
    with_bulkhead(&env, &array, None, |b| match b.release(hold(token)) {
        Released::Freed { wake: true } => 1,
        Released::Freed { wake: false } => 0,
        Released::Lost => -1,
    })
}

/// A release made in JavaScript found its permit reclaimed: counts it.
#[napi(catch_unwind)]
pub fn bulkhead_count_lost(env: Env, array: Unknown) -> Result<()> {
    with_bulkhead(&env, &array, None, |b| {
        // A token no permit has: counted as lost, frees nothing.
        b.release(hold(-1.0));
    })
}

/// What `Bulkhead#getStats()` reports, over every thread and process.
#[napi(object)]
#[derive(Default)]
pub struct BulkheadStats {
    pub max_concurrent: u32,
    pub max_queue: u32,
    /// Permits held now (including by holders that died, until reclaimed).
    pub in_use: u32,
    /// Calls waiting for a permit now.
    pub queued: u32,
    /// Calls refused: bulkhead and queue full, or waited queueTimeout.
    pub rejected: f64,
    /// Of which waited queueTimeout in the queue first.
    pub queue_timeouts: f64,
    /// Permits taken back from holders past their lease.
    pub reclaimed: f64,
    /// Releases that found their permit reclaimed.
    pub lost_releases: f64,
}

#[napi(catch_unwind)]
pub fn bulkhead_stats(env: Env, array: Unknown) -> Result<BulkheadStats> {
    with_bulkhead(&env, &array, None, |b| {
        let s = b.stats();
        BulkheadStats {
            max_concurrent: s.permits,
            max_queue: s.places,
            in_use: s.in_use,
            queued: s.queued,
            rejected: s.rejected as f64,
            queue_timeouts: s.queue_timeouts as f64,
            reclaimed: s.reclaimed as f64,
            lost_releases: s.lost_releases as f64,
        }
    })
}

/// Slots a rate limiter needs.
#[napi(catch_unwind)]
pub fn rate_limiter_array_length() -> u32 {
    rate_limiter::SLOTS as u32
}

fn with_limiter<T: Default>(
    env: &Env,
    array: &Unknown,
    limit: f64,
    interval: f64,
    burst: f64,
    f: impl FnOnce(&rate_limiter::RateLimiter<Slots<'static>>) -> T,
) -> Result<T> {
    let rate = match Rate::new(limit, interval, burst) {
        Ok(rate) => rate,
        Err(error) => return throw(env, rate_error(&error)),
    };
    let (slots, _held) = match memory(env, array) {
        Ok(found) => found,
        Err(thrown) => return throw(env, thrown),
    };
    match rate_limiter::claim(slots, slots.len(), rate) {
        Ok(limiter) => Ok(f(&limiter)),
        Err(error) => throw(env, rate_error(&error)),
    }
}

/// Makes `array` a rate limiter of `limit` calls per `interval` ms with
/// bursts of `burst`, or joins the one there. Throws like `bulkheadClaim`.
#[napi(catch_unwind)]
pub fn rate_limiter_claim(
    env: Env,
    array: Unknown,
    limit: f64,
    interval: f64,
    burst: f64,
) -> Result<()> {
    with_limiter(&env, &array, limit, interval, burst, |_| ())
}

/// Admits a call now if it is due within `maxWait` ms: returns the ms it
/// must wait first (0: go now), or -1 - the ms it would have had to wait
/// (refused; counted).
#[napi(catch_unwind)]
pub fn rate_limiter_acquire(
    env: Env,
    array: Unknown,
    limit: f64,
    interval: f64,
    burst: f64,
    max_wait: f64,
) -> Result<f64> {
    let max_wait = match max_wait_ns(max_wait) {
        Ok(ns) => ns,
        Err(error) => return throw(&env, rate_error(&error)),
    };
    with_limiter(
        &env,
        &array,
        limit,
        interval,
        burst,
        |limiter| match limiter.acquire(host_ns(), max_wait) {
            Decision::Admitted { delay_ns } => delay_ns as f64 / 1e6,
            Decision::Refused { wait_ns } => -1.0 - wait_ns as f64 / 1e6,
        },
    )
}

#[napi(object)]
#[derive(Default)]
pub struct RateLimiterStats {
    /// Calls admitted.
    pub admitted: f64,
    /// Of which waited first.
    pub delayed: f64,
    /// Calls refused.
    pub rejected: f64,
}

#[napi(catch_unwind)]
pub fn rate_limiter_stats(
    env: Env,
    array: Unknown,
    limit: f64,
    interval: f64,
    burst: f64,
) -> Result<RateLimiterStats> {
    with_limiter(&env, &array, limit, interval, burst, |limiter| {
        let s = limiter.stats();
        RateLimiterStats {
            admitted: s.admitted as f64,
            delayed: s.delayed as f64,
            rejected: s.rejected as f64,
        }
    })
}
