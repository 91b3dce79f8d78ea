//! The napi binding: converts between JavaScript and `breaker-core`, and
//! nothing else. Every decision about state is made in the core.
//!
//! Breakers are kept in a per-thread table and named to JavaScript by their
//! index. A `#[napi]` free function taking a `u32` is the cheapest call
//! napi-rs offers (class methods and `External` arguments go through
//! process-wide locks), and the table needs no lock because a JavaScript
//! object, and so a breaker, never leaves the thread that made it.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use breaker_core::breaker::{Marks, Policies};
use breaker_core::features::claim_features;
use breaker_core::{
    claim_layout, layout, Admission, Breaker, Config, MemoryError, Slots, Stripe, Transition,
};
use napi::bindgen_prelude::{JsObjectValue, Object, Unknown};
use napi::{sys, Env, Error, JsValue, Result, Status};
use napi_derive::napi;
use std::cell::RefCell;
use std::ffi::c_void;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::Arc;

pub mod agent;
mod clock;
mod file;

use clock::{host_clock, HostClock};

#[cfg(not(target_endian = "little"))]
compile_error!("the STATE slot is the low half of a 64-bit word: little-endian targets only");

struct Instance {
    breaker: Breaker<Slots<'static>>,
    stripe: Stripe,
    /// Strong reference to the `Int32Array`, so its `SharedArrayBuffer`
    /// outlives `breaker`'s view of it. Deleted by the finalizer.
    array: sys::napi_ref,
    /// For an array over a breaker file: the mapping, kept for as long as
    /// the breaker exists even if its `ArrayBuffer` is detached.
    _mapping: Option<Arc<file::Mapping>>,
}

/// This thread's breakers, by id; ids of collected breakers are reused.
struct Table {
    slots: Vec<Option<Instance>>,
    free: Vec<u32>,
}

thread_local! {
    static INSTANCES: RefCell<Table> = const {
        RefCell::new(Table {
            slots: Vec::new(),
            free: Vec::new(),
        })
    };
    /// This thread's counter stripe: threads are numbered as they make their
    /// first breaker, so eight threads of a process never share a stripe.
    /// Numbering starts at the process id, so processes sharing a breaker
    /// file spread over the stripes too.
    static STRIPE: Stripe = Stripe::new(
        (std::process::id() as usize).wrapping_add(NEXT_THREAD.fetch_add(1, Ordering::Relaxed)),
    );
}

static NEXT_THREAD: AtomicUsize = AtomicUsize::new(0);

fn stale_handle(id: u32) -> Error {
    Error::new(
        Status::InvalidArg,
        format!("{id} is not a live circuit breaker handle of this thread"),
    )
}

/// Runs `f` on breaker `id` of this thread.
#[inline]
fn with<R>(id: u32, f: impl FnOnce(&Instance) -> R) -> Result<R> {
    INSTANCES.with(|table| {
        let table = table.try_borrow().map_err(|_| stale_handle(id))?;
        match table.slots.get(id as usize) {
            Some(Some(instance)) => Ok(f(instance)),
            _ => Err(stale_handle(id)),
        }
    })
}

fn transition_code(transition: Option<Transition>) -> f64 {
    match transition {
        None => 0.0,
        Some(Transition::Opened) => 1.0,
        Some(Transition::HalfOpened) => 2.0,
        Some(Transition::Closed) => 3.0,
    }
}

/// The slot names, in index order: `layout()[i]` names slot `i`.
#[napi]
pub fn layout() -> Vec<String> {
    layout::names()
}

/// Decision codes of `admit`: a ticket (>= 0) means "run as the probe".
const ADMIT_RUN: f64 = -2.0;
const ADMIT_REJECT: f64 = -1.0;

/// Builds a breaker over `array` and ties its life to `owner`: the breaker is
/// freed when `owner` is garbage collected. Returns the breaker's handle.
///
/// Throws `TypeError` if `array` is not an `Int32Array` over a
/// `SharedArrayBuffer`, `RangeError` if it is too short, misaligned, holds
/// another layout, or a setting is out of range.
#[napi]
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
        Err(error) => return throw(&env, Thrown::Range(error.to_string())),
    };
    let (slots, mapping) = match shared_slots(env.raw(), array.raw()) {
        Ok(found) => found,
        Err(thrown) => return throw(&env, thrown),
    };
    if let Err(error) = claim_layout(&slots) {
        return throw(&env, Thrown::Range(format!("sharedArray {error}")));
    }
    if let Err(error) = claim_features(&slots, slots.len(), &config.features()) {
        return throw(&env, Thrown::Range(format!("sharedArray {error}")));
    }

    let mut array_ref = std::ptr::null_mut();
    // SAFETY: `env` and `array` are live handles of this call.
    check(unsafe { sys::napi_create_reference(env.raw(), array.raw(), 1, &mut array_ref) })?;
    let instance = Instance {
        breaker: Breaker::new(slots, config).with_actor(actor),
        stripe: STRIPE.with(|s| *s),
        array: array_ref,
        _mapping: mapping,
    };

    let id = INSTANCES.with(|table| -> Result<u32> {
        let mut table = table.try_borrow_mut().map_err(|_| stale_handle(0))?;
        let id = match table.free.pop() {
            Some(free) => free,
            None => {
                let next = u32::try_from(table.slots.len())
                    .map_err(|_| Error::new(Status::GenericFailure, "too many breakers"))?;
                table.slots.push(None);
                next
            }
        };
        table.slots[id as usize] = Some(instance);
        Ok(id)
    })?;

    // SAFETY: `owner` is a live object of this call; the finalizer receives
    // `id` back as its data and runs on this thread.
    let status = unsafe {
        sys::napi_wrap(
            env.raw(),
            owner.raw(),
            id as usize as *mut c_void,
            Some(finalize),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
    if status != sys::Status::napi_ok {
        release(env.raw(), id);
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
        }
    }
}

/// Frees breaker `id` when its owner is collected, or its worker exits.
unsafe extern "C" fn finalize(env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
    release(env, data as usize as u32);
}

fn release(env: sys::napi_env, id: u32) {
    let instance = INSTANCES
        .try_with(|table| {
            table.try_borrow_mut().ok().and_then(|mut t| {
                let instance = t.slots.get_mut(id as usize)?.take()?;
                t.free.push(id);
                Some(instance)
            })
        })
        .ok()
        .flatten();
    if let Some(instance) = instance {
        // A fleet member over this memory lets go of it first.
        agent::fleet::forget(env as usize, id);
        // SAFETY: the reference was made on this env and is deleted once.
        unsafe { sys::napi_delete_reference(env, instance.array) };
    }
}

/// Why an argument was refused: the JavaScript error class and message.
enum Thrown {
    Type(String),
    Range(String),
}

fn throw<T: Default>(env: &Env, thrown: Thrown) -> Result<T> {
    match thrown {
        Thrown::Type(message) => env.throw_type_error(&message, Some("ERR_INVALID_ARG_TYPE"))?,
        Thrown::Range(message) => env.throw_range_error(&message, Some("ERR_OUT_OF_RANGE"))?,
    }
    Ok(T::default())
}

fn check(status: sys::napi_status) -> Result<()> {
    if status == sys::Status::napi_ok {
        Ok(())
    } else {
        Err(Error::new(Status::from(status), "napi call failed"))
    }
}

/// Checks that `value` is an `Int32Array` over a `SharedArrayBuffer` (or
/// over a breaker file's mapping) that can hold a breaker, and views its
/// memory as slots.
fn shared_slots(
    env: sys::napi_env,
    value: sys::napi_value,
) -> std::result::Result<(Slots<'static>, Option<Arc<file::Mapping>>), Thrown> {
    const EXPECTED: &str = "sharedArray must be an Int32Array over a SharedArrayBuffer";
    let napi_failed = |_| Thrown::Type(format!("{EXPECTED}; it could not be inspected"));

    let mut is_typed_array = false;
    // SAFETY: live handles of this call; out-pointers are valid locals.
    check(unsafe { sys::napi_is_typedarray(env, value, &mut is_typed_array) })
        .map_err(napi_failed)?;
    if !is_typed_array {
        return Err(Thrown::Type(format!(
            "{EXPECTED}, got {}",
            describe(env, value)
        )));
    }
    let (mut kind, mut length, mut data) = (0, 0usize, std::ptr::null_mut::<c_void>());
    let (mut buffer, mut byte_offset) = (std::ptr::null_mut(), 0usize);
    // SAFETY: as above; `value` is a typed array.
    check(unsafe {
        sys::napi_get_typedarray_info(
            env,
            value,
            &mut kind,
            &mut length,
            &mut data,
            &mut buffer,
            &mut byte_offset,
        )
    })
    .map_err(napi_failed)?;
    if kind != sys::TypedarrayType::int32_array {
        return Err(Thrown::Type(format!(
            "{EXPECTED}, got {}",
            typed_array_name(kind)
        )));
    }
    // A typed array's buffer is an ArrayBuffer or a SharedArrayBuffer, and
    // `napi_is_arraybuffer` is true only for the first. Only shared memory
    // can never be detached or shrunk under us.
    let mut is_plain_buffer = true;
    // SAFETY: as above; `buffer` is the typed array's buffer.
    check(unsafe { sys::napi_is_arraybuffer(env, buffer, &mut is_plain_buffer) })
        .map_err(napi_failed)?;
    let mapping = if is_plain_buffer {
        // Not a SharedArrayBuffer: acceptable only over a live breaker file
        // mapping, which cannot move or shrink while the breaker holds it.
        let found = file::mapping_containing(data as usize, length.saturating_mul(4));
        if found.is_none() {
            return Err(Thrown::Type(format!(
                "{EXPECTED}, got an Int32Array over an ArrayBuffer that is not shared"
            )));
        }
        found
    } else {
        None
    };
    if data.is_null() || length == 0 {
        return Err(Thrown::Range(format!(
            "sharedArray {}",
            MemoryError::TooShort {
                length,
                required: layout::SLOT_COUNT
            }
        )));
    }
    // SAFETY: `data` points to `length` 4-byte-aligned `i32`s inside a
    // SharedArrayBuffer, or inside a file mapping (checked above). Such a
    // buffer cannot be detached, transferred or shrunk, and the `napi_ref`
    // taken in `create` keeps it alive for as long as the breaker exists; a
    // mapping is also kept by the breaker's `Arc`. Other threads and
    // processes write it concurrently, which is why it is only ever touched
    // as atomics.
    let slots: &'static [AtomicI32] =
        unsafe { std::slice::from_raw_parts(data as *const AtomicI32, length) };
    let slots = Slots::new(slots).map_err(|error| Thrown::Range(format!("sharedArray {error}")))?;
    Ok((slots, mapping))
}

fn typed_array_name(kind: sys::napi_typedarray_type) -> &'static str {
    match kind {
        sys::TypedarrayType::int8_array => "an Int8Array",
        sys::TypedarrayType::uint8_array => "a Uint8Array",
        sys::TypedarrayType::uint8_clamped_array => "a Uint8ClampedArray",
        sys::TypedarrayType::int16_array => "an Int16Array",
        sys::TypedarrayType::uint16_array => "a Uint16Array",
        sys::TypedarrayType::uint32_array => "a Uint32Array",
        sys::TypedarrayType::float32_array => "a Float32Array",
        sys::TypedarrayType::float64_array => "a Float64Array",
        sys::TypedarrayType::bigint64_array => "a BigInt64Array",
        sys::TypedarrayType::biguint64_array => "a BigUint64Array",
        _ => "another typed array",
    }
}

fn describe(env: sys::napi_env, value: sys::napi_value) -> &'static str {
    let mut kind = 0;
    // SAFETY: live handles of this call.
    if unsafe { sys::napi_typeof(env, value, &mut kind) } != sys::Status::napi_ok {
        return "a value that could not be inspected";
    }
    match kind {
        sys::ValueType::napi_undefined => "undefined",
        sys::ValueType::napi_null => "null",
        sys::ValueType::napi_boolean => "a boolean",
        sys::ValueType::napi_number => "a number",
        sys::ValueType::napi_string => "a string",
        sys::ValueType::napi_symbol => "a symbol",
        sys::ValueType::napi_function => "a function",
        sys::ValueType::napi_bigint => "a bigint",
        _ => "an object that is not an Int32Array",
    }
}

// ---------------------------------------------------------------------------
// The per-call path. napi-rs wraps every `#[napi]` function that takes
// arguments in a borrow-tracking scope that allocates and locks (~140 ns a
// call, measured); these four are plain N-API callbacks instead (~23 ns),
// registered by `register_hot_path`. Each reads its `u32` arguments, makes one
// call into the core, and returns a number or `undefined`.
// ---------------------------------------------------------------------------

/// Bits of the `marks` argument.
const MARK_TIMED_OUT: u32 = 1;
const MARK_FALLBACK: u32 = 2;
const MARK_SLOW: u32 = 4;
const MARK_FILTERED: u32 = 8;

fn marks(bits: u32) -> Marks {
    Marks {
        timed_out: bits & MARK_TIMED_OUT != 0,
        fallback: bits & MARK_FALLBACK != 0,
        slow: bits & MARK_SLOW != 0,
        filtered: bits & MARK_FILTERED != 0,
    }
}

/// `admit(id, fallback)`: `-2` run (CLOSED), `-1` rejected (already
/// counted; with `fallback` 1 counted as answered by a fallback too), or a
/// probe ticket (>= 0) to pass back to `probeResult`.
unsafe extern "C" fn admit(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    // SAFETY: called by N-API with a live env and callback info.
    unsafe {
        hot_call::<2>(env, info, |[id, fallback]| {
            with(id, |i| match i.breaker.admit(host_clock(), i.stripe) {
                Admission::Run => ADMIT_RUN,
                Admission::Reject => {
                    if fallback != 0 {
                        i.breaker.on_fallback(i.stripe);
                    }
                    ADMIT_REJECT
                }
                Admission::Probe(ticket) => f64::from(ticket.0),
            })
        })
    }
}

/// `success(id, count, endsRun)`: records `count` successes of calls
/// admitted while CLOSED, the last one now. With `endsRun` 1 the newest of
/// them ends the run of failures; with 0 they are successes the facade held
/// back (the run was 0 when they happened), so they only add to the counts.
unsafe extern "C" fn success(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    // SAFETY: as in `admit`.
    unsafe {
        hot_call::<3>(env, info, |[id, count, ends_run]| {
            with(id, |i| {
                let (count, now) = (u64::from(count), host_clock());
                if ends_run != 0 {
                    i.breaker.on_successes(count, &now, i.stripe);
                } else {
                    i.breaker.publish_successes(count, &now, i.stripe);
                }
                f64::NAN
            })
        })
    }
}

/// `markedSuccess(id, marks)`: one success of a call admitted while CLOSED
/// that was slow (4) or whose error the filter accepted (8); returns 1 if
/// it opened the breaker (a slow call can), else 0.
unsafe extern "C" fn marked_success(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    // SAFETY: as in `admit`.
    unsafe {
        hot_call::<2>(env, info, |[id, bits]| {
            with(id, |i| {
                transition_code(
                    i.breaker
                        .on_marked_success(marks(bits), host_clock(), i.stripe),
                )
            })
        })
    }
}

/// `failure(id, marks)`: records the failure of a call admitted while
/// CLOSED (marks: 1 timed out, 2 answered by a fallback, 4 slow); returns 1
/// if it opened the breaker, else 0.
unsafe extern "C" fn failure(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    // SAFETY: as in `admit`.
    unsafe {
        hot_call::<2>(env, info, |[id, bits]| {
            with(id, |i| {
                transition_code(
                    i.breaker
                        .on_marked_failure(marks(bits), host_clock(), i.stripe),
                )
            })
        })
    }
}

/// `probeResult(id, ticket, succeeded ? 1 : 0, marks)`: returns 3 if the
/// probe closed the breaker, 1 if it opened it, 0 if it changed nothing
/// (more successes needed, or its episode had ended).
unsafe extern "C" fn probe_result(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    // SAFETY: as in `admit`.
    unsafe {
        hot_call::<4>(env, info, |[id, ticket, succeeded, bits]| {
            with(id, |i| {
                let ticket = breaker_core::Ticket(ticket);
                transition_code(i.breaker.on_marked_probe_result(
                    ticket,
                    succeeded != 0,
                    marks(bits),
                    host_clock(),
                    i.stripe,
                ))
            })
        })
    }
}

/// `latency(id, micros)`: records a call's duration in the shared histogram.
unsafe extern "C" fn latency(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    // SAFETY: as in `admit`.
    unsafe {
        hot_call::<2>(env, info, |[id, micros]| {
            with(id, |i| {
                i.breaker.record_latency(u64::from(micros), i.stripe);
                f64::NAN
            })
        })
    }
}

/// The first `N` arguments of a call, or `None` if it has fewer.
///
/// # Safety
/// `env` and `info` must be the live arguments of an N-API callback.
unsafe fn arguments<const N: usize>(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> Option<[sys::napi_value; N]> {
    let mut argc = N;
    let mut argv = [std::ptr::null_mut(); N];
    // SAFETY: `argv` has room for `argc` values; null this/data are allowed.
    let status = unsafe {
        sys::napi_get_cb_info(
            env,
            info,
            &mut argc,
            argv.as_mut_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
    (status == sys::Status::napi_ok && argc >= N).then_some(argv)
}

/// Reads `N` unsigned 32-bit arguments, runs `f`, and returns its number
/// (`NaN` stands for `undefined`). Bad arguments or a stale handle throw a
/// `TypeError`; nothing here can unwind into N-API.
///
/// # Safety
/// `env` and `info` must be the live arguments of an N-API callback.
unsafe fn hot_call<const N: usize>(
    env: sys::napi_env,
    info: sys::napi_callback_info,
    f: impl FnOnce([u32; N]) -> Result<f64>,
) -> sys::napi_value {
    let mut args = [0u32; N];
    // SAFETY: live callback arguments, per this function's contract.
    let mut ok = false;
    if let Some(argv) = unsafe { arguments::<N>(env, info) } {
        ok = true;
        for (value, arg) in argv.iter().zip(args.iter_mut()) {
            // SAFETY: `value` is an argument handle of this call.
            ok = ok
                && unsafe { sys::napi_get_value_uint32(env, *value, arg) } == sys::Status::napi_ok;
        }
    }
    let result = if ok {
        f(args)
    } else {
        Err(Error::new(
            Status::InvalidArg,
            format!("expected {N} numeric arguments"),
        ))
    };
    match result {
        Ok(number) if number.is_nan() => std::ptr::null_mut(),
        Ok(number) => {
            let mut value = std::ptr::null_mut();
            // SAFETY: live env; out-pointer is a local.
            unsafe { sys::napi_create_double(env, number, &mut value) };
            value
        }
        Err(error) => {
            let message =
                std::ffi::CString::new(error.reason.replace('\0', " ")).unwrap_or_default();
            // SAFETY: live env; `message` is a NUL-terminated string that outlives the call.
            unsafe { sys::napi_throw_type_error(env, std::ptr::null(), message.as_ptr()) };
            std::ptr::null_mut()
        }
    }
}

/// `mapFile(fd)`: checks the breaker file open as `fd` and returns an
/// `Int32Array` over its slots, mapped shared. Throws an `Error` with `code`
/// `ERR_CIRCUIT_BREAKER_FILE` and a message that completes "the file ...".
unsafe extern "C" fn map_file(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    let mut fd = -1;
    // SAFETY: live callback arguments (N-API calls this with them).
    let ok = unsafe { arguments::<1>(env, info) }.is_some_and(|[value]| {
        // SAFETY: `value` is an argument handle of this call.
        let status = unsafe { sys::napi_get_value_int32(env, value, &mut fd) };
        status == sys::Status::napi_ok
    });
    if !ok || fd < 0 {
        // SAFETY: live env; static NUL-terminated strings.
        unsafe {
            sys::napi_throw_type_error(
                env,
                c"ERR_INVALID_ARG_TYPE".as_ptr(),
                c"fd must be an open file descriptor".as_ptr(),
            )
        };
        return std::ptr::null_mut();
    }
    let mapping = match file::map(fd) {
        Ok(mapping) => mapping,
        Err(error) => {
            let message = match error {
                #[cfg(unix)]
                file::MapError::Io(error) => format!("could not be mapped: {error}"),
                #[cfg(unix)]
                file::MapError::Format(error) => error.to_string(),
                #[cfg(unix)]
                file::MapError::NotAFile => "is not a regular file".to_string(),
                #[cfg(not(unix))]
                file::MapError::Unsupported => {
                    "cannot be shared here: breaker files need mmap (Linux, macOS)".to_string()
                }
            };
            let message = std::ffi::CString::new(message).unwrap_or_default();
            // SAFETY: live env; NUL-terminated strings that outlive the call.
            unsafe {
                sys::napi_throw_error(env, c"ERR_CIRCUIT_BREAKER_FILE".as_ptr(), message.as_ptr())
            };
            return std::ptr::null_mut();
        }
    };
    // SAFETY: live env; the mapping stays valid while the Arc in the hint lives.
    match unsafe { int32_array_over(env, mapping) } {
        Ok(array) => array,
        Err(_) => {
            // SAFETY: live env; static strings.
            unsafe {
                sys::napi_throw_error(
                    env,
                    c"ERR_CIRCUIT_BREAKER_FILE".as_ptr(),
                    c"could not be exposed as an Int32Array".as_ptr(),
                )
            };
            std::ptr::null_mut()
        }
    }
}

/// An `Int32Array` of the file's slots over an external `ArrayBuffer` whose
/// finalizer releases its share of the mapping.
///
/// # Safety
/// `env` must be live.
unsafe fn int32_array_over(
    env: sys::napi_env,
    mapping: Arc<file::Mapping>,
) -> Result<sys::napi_value> {
    let slots = mapping.slots_address();
    let slot_count = mapping.slot_count();
    let hint = Box::into_raw(Box::new(mapping));
    let mut buffer = std::ptr::null_mut();
    // SAFETY: `slots` is valid for `slot_count` * 4 bytes while `hint` lives;
    // the finalizer frees `hint` exactly once.
    let status = unsafe {
        sys::napi_create_external_arraybuffer(
            env,
            slots as *mut c_void,
            slot_count * 4,
            Some(release_mapping),
            hint.cast(),
            &mut buffer,
        )
    };
    if status != sys::Status::napi_ok {
        // SAFETY: the buffer was not made, so the finalizer will never run.
        drop(unsafe { Box::from_raw(hint) });
        return check(status).map(|_| std::ptr::null_mut());
    }
    let mut array = std::ptr::null_mut();
    // SAFETY: live env; `buffer` was just made with room for the slots.
    check(unsafe {
        sys::napi_create_typedarray(
            env,
            sys::TypedarrayType::int32_array,
            slot_count,
            buffer,
            0,
            &mut array,
        )
    })?;
    Ok(array)
}

unsafe extern "C" fn release_mapping(_env: sys::napi_env, _data: *mut c_void, hint: *mut c_void) {
    // SAFETY: `hint` is the Box made in `int32_array_over`, freed only here.
    drop(unsafe { Box::from_raw(hint.cast::<Arc<file::Mapping>>()) });
}

/// The whole content of a new breaker file of `slots` slots: header and zeroed slots.
#[napi]
pub fn file_image(slots: u32) -> napi::bindgen_prelude::Buffer {
    breaker_core::file::new_file_image_of(slots as usize).into()
}

/// Adds the per-call functions to the module's exports.
#[napi(module_exports)]
pub fn register_hot_path(mut exports: Object, env: Env) -> Result<()> {
    type Callback = unsafe extern "C" fn(sys::napi_env, sys::napi_callback_info) -> sys::napi_value;
    let functions: [(&str, Callback); 7] = [
        ("admit", admit),
        ("success", success),
        ("markedSuccess", marked_success),
        ("failure", failure),
        ("probeResult", probe_result),
        ("latency", latency),
        ("mapFile", map_file),
    ];
    for (name, callback) in functions {
        let mut function = std::ptr::null_mut();
        // SAFETY: live env; `name` is valid for `len` bytes; `function` is a local out-pointer.
        check(unsafe {
            sys::napi_create_function(
                env.raw(),
                name.as_ptr().cast(),
                name.len() as isize,
                Some(callback),
                std::ptr::null_mut(),
                &mut function,
            )
        })?;
        // SAFETY: `function` was just created on this env.
        exports.set_named_property(name, unsafe {
            Unknown::from_raw_unchecked(env.raw(), function)
        })?;
    }
    Ok(())
}

/// Frees the breaker held by `owner` now instead of when `owner` is
/// collected: its handle, its reference to the array and its share of a
/// breaker file's mapping. Returns false if `owner` holds none (any more).
#[napi]
pub fn dispose(env: Env, owner: Object) -> bool {
    let mut data = std::ptr::null_mut();
    // SAFETY: live env and object; on success the wrap is gone, so the
    // finalizer will not run and `release` below is the only one for `id`.
    let status = unsafe { sys::napi_remove_wrap(env.raw(), owner.raw(), &mut data) };
    if status != sys::Status::napi_ok {
        return false;
    }
    release(env.raw(), data as usize as u32);
    true
}

/// The clock that decides open periods, leases and time windows: ms on the
/// host's monotonic clock (CLOCK_BOOTTIME on Linux: ms since boot, suspend
/// included). Every thread and process of the host reads the same clock.
#[napi]
pub fn host_clock_ms() -> f64 {
    clock::host_ms() as f64
}

/// The state a caller would meet now: 0 CLOSED, 1 OPEN, 2 HALF_OPEN.
#[napi]
pub fn state(id: u32) -> Result<u32> {
    with(id, |i| i.breaker.state(host_clock()) as u32)
}

/// Forces a new half-open episode: the next caller probes.
#[napi]
pub fn force_half_open(id: u32) -> Result<()> {
    with(id, |i| {
        i.breaker.force_half_open_at(host_clock());
    })
}

/// Holds the breaker OPEN for every thread until released or reset.
/// Returns the isolation's epoch (an integer below 2^48), for
/// `releaseIsolation`; -1, taking nothing, when `MAX_ISOLATIONS` are held.
#[napi]
pub fn isolate(id: u32) -> Result<f64> {
    with(id, |i| match i.breaker.isolate(host_clock()) {
        Some((epoch, _)) => epoch as f64,
        None => -1.0,
    })
}

/// Releases one isolation taken in `epoch`; the last one closes the breaker.
/// An isolation from before a `reset`, or an `epoch` no isolation could have
/// (not an integer from 0 to 2^48 - 1), releases nothing.
#[napi]
pub fn release_isolation(id: u32, epoch: f64) -> Result<()> {
    with(id, |i| {
        if epoch.fract() == 0.0 && (0.0..EPOCH_LIMIT).contains(&epoch) {
            i.breaker.release_isolation(epoch as u64, host_clock());
        }
    })
}

/// Isolation epochs are below this (48 bits): exact in a JavaScript number.
const EPOCH_LIMIT: f64 = (1u64 << 48) as f64;

/// Closes the breaker and clears the failure run, backoff, window and isolations.
#[napi]
pub fn reset(id: u32) -> Result<()> {
    with(id, |i| {
        i.breaker.reset(host_clock());
    })
}

/// Disables (every call runs, nothing opens) or enables the breaker, for every thread.
#[napi]
pub fn set_disabled(id: u32, disabled: bool) -> Result<()> {
    with(id, |i| {
        i.breaker.set_disabled(disabled, host_clock());
    })
}

/// One logged transition.
#[napi(object)]
pub struct LoggedTransition {
    /// 0 CLOSED, 1 OPEN, 2 HALF_OPEN: the state it moved to.
    pub state: u32,
    /// ms since the Unix epoch; 0 if unknown.
    pub time: f64,
    /// The `threadId` of the thread that made it (20 bits).
    pub thread_id: u32,
}

/// The transition that made generation `generation`, or null if the log no longer holds it.
#[napi]
pub fn transition(id: u32, generation: u32) -> Result<Option<LoggedTransition>> {
    with(id, |i| {
        i.breaker
            .log_entry(generation)
            .map(|entry| LoggedTransition {
                state: entry.state as u32,
                time: entry.time_ms as f64,
                thread_id: entry.actor,
            })
    })
}

/// Upper bounds (µs) of the cumulative latency buckets `stats` reports:
/// powers of 4 from 1 µs to about 4.6 minutes.
const LATENCY_BOUNDS: [u64; 15] = {
    let mut bounds = [0u64; 15];
    let mut i = 0;
    while i < 15 {
        bounds[i] = 1 << (2 * i);
        i += 1;
    }
    bounds
};

/// Everything `getStats()` reports, summed over every thread sharing the buffer.
#[napi(object)]
pub struct Stats {
    /// 0 CLOSED, 1 OPEN, 2 HALF_OPEN, as a caller would meet it now.
    pub state: u32,
    /// Wall-clock ms since the epoch when the current state began, never
    /// later than now; 0 if unknown.
    pub state_since: f64,
    pub consecutive_failures: u32,
    pub isolations: u32,
    pub disabled: bool,
    /// Failed probes since the breaker last closed.
    pub reopenings: u32,
    /// How long this opening lasts (backoff included), ms.
    pub open_ms: f64,
    pub requests: f64,
    pub successes: f64,
    pub failures: f64,
    pub rejections: f64,
    pub timeouts: f64,
    pub fallbacks: f64,
    pub probes: f64,
    pub slow_calls: f64,
    pub filtered: f64,
    /// Wall-clock ms since the epoch, never later than now; 0 if never.
    pub last_success_time: f64,
    /// Wall-clock ms since the epoch, never later than now; 0 if never.
    pub last_failure_time: f64,
    pub window_calls: Option<f64>,
    pub window_failures: Option<f64>,
    pub latency_count: Option<f64>,
    pub latency_sum_micros: Option<f64>,
    pub latency_max_micros: Option<f64>,
    pub latency_p50_micros: Option<f64>,
    pub latency_p90_micros: Option<f64>,
    pub latency_p99_micros: Option<f64>,
    /// Upper bounds (µs) of `latency_buckets`.
    pub latency_bounds_micros: Option<Vec<f64>>,
    /// Calls at or below each bound, cumulative.
    pub latency_buckets: Option<Vec<f64>>,
}

/// A stored wall-clock time as users see it (see [`breaker_core::clock::as_seen`]).
fn shown(ms: u64, now: &HostClock) -> f64 {
    breaker_core::clock::as_seen(ms, now) as f64
}

/// Reads every statistic of breaker `id`.
#[napi]
pub fn stats(id: u32) -> Result<Stats> {
    with(id, |i| {
        let now = &host_clock();
        let b = &i.breaker;
        let state = b.state(now) as u32;
        let t = b.totals();
        let switches = b.switches();
        let window = b.window_counts(now);
        let latency = b.latency();
        let bounds = LATENCY_BOUNDS.iter().map(|&b| b as f64).collect();
        Stats {
            state,
            state_since: shown(b.state_since().unwrap_or(0), now),
            consecutive_failures: b.consecutive_failures(),
            isolations: switches.isolations,
            disabled: switches.disabled,
            reopenings: switches.reopenings,
            open_ms: b.open_ms() as f64,
            requests: t.requests as f64,
            successes: t.successes as f64,
            failures: t.failures as f64,
            rejections: t.rejections as f64,
            timeouts: t.timeouts as f64,
            fallbacks: t.fallbacks as f64,
            probes: t.probes as f64,
            slow_calls: t.slow_calls as f64,
            filtered: t.filtered as f64,
            last_success_time: shown(t.last_success_ms, now),
            last_failure_time: shown(t.last_failure_ms, now),
            window_calls: window.map(|w| w.calls as f64),
            window_failures: window.map(|w| w.bad as f64),
            latency_count: latency.as_ref().map(|l| l.count as f64),
            latency_sum_micros: latency.as_ref().map(|l| l.sum_micros as f64),
            latency_max_micros: latency.as_ref().map(|l| l.max_micros as f64),
            latency_p50_micros: latency.as_ref().map(|l| l.percentile(0.5) as f64),
            latency_p90_micros: latency.as_ref().map(|l| l.percentile(0.9) as f64),
            latency_p99_micros: latency.as_ref().map(|l| l.percentile(0.99) as f64),
            latency_bounds_micros: latency.as_ref().map(|_| bounds),
            latency_buckets: latency.as_ref().map(|l| {
                LATENCY_BOUNDS
                    .iter()
                    .map(|&bound| l.cumulative_below(bound) as f64)
                    .collect()
            }),
        }
    })
}

/// Array length (in Int32 slots) a breaker with these options needs.
#[napi]
pub fn array_length(
    env: Env,
    failure_threshold: f64,
    reset_timeout: f64,
    policies: PolicyOptions,
) -> Result<u32> {
    match Config::with_policies(failure_threshold, reset_timeout, &policies.into()) {
        Ok(config) => Ok(config.features().slots_needed() as u32),
        Err(error) => throw(&env, Thrown::Range(error.to_string())),
    }
}

/// Counters summed over every thread sharing the buffer.
#[napi(object)]
pub struct Totals {
    /// successes + failures + rejections.
    pub requests: f64,
    pub successes: f64,
    pub failures: f64,
    pub rejections: f64,
    /// The current run of consecutive failures.
    pub consecutive_failures: u32,
    /// ms since the Unix epoch, never later than now; 0 if never.
    pub last_success_time: f64,
    /// ms since the Unix epoch, never later than now; 0 if never.
    pub last_failure_time: f64,
}

/// Reads the counters of breaker `id`. Values are exact up to 2^53.
#[napi]
pub fn totals(id: u32) -> Result<Totals> {
    with(id, |i| {
        let t = i.breaker.totals();
        let now = &host_clock();
        Totals {
            requests: t.requests as f64,
            successes: t.successes as f64,
            failures: t.failures as f64,
            rejections: t.rejections as f64,
            consecutive_failures: i.breaker.consecutive_failures(),
            last_success_time: shown(t.last_success_ms, now),
            last_failure_time: shown(t.last_failure_ms, now),
        }
    })
}
