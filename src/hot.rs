//! The per-call path. napi-rs wraps every `#[napi]` function that takes
//! arguments in a borrow-tracking scope that allocates and locks (~140 ns a
//! call, measured); these are plain N-API callbacks instead (~23 ns),
//! registered by `register_raw_functions` (lib.rs). Each reads its `u32`
//! arguments, makes one call into the core, and returns a number or
//! `undefined`.

use crate::clock::host_clock;
use crate::constants::{marks, transition_code, ADMIT_REJECT, ADMIT_RUN, ADMIT_TRANSITION};
use crate::table::with;
use breaker_core::Admission;
use napi::{sys, Error, Result, Status};

/// A raw N-API callback.
pub(crate) type Callback =
    unsafe extern "C" fn(sys::napi_env, sys::napi_callback_info) -> sys::napi_value;

/// The per-call functions, by their JavaScript names.
pub(crate) const CALLBACKS: [(&str, Callback); 7] = [
    ("admit", admit),
    ("success", success),
    ("markedSuccess", marked_success),
    ("failure", failure),
    ("probeResult", probe_result),
    ("latency", latency),
    ("latencies", latencies),
];

/// `admit(id, fallback)`: `-2` run (CLOSED), `-1` rejected (already
/// counted; with `fallback` 1 counted as answered by a fallback too), or a
/// probe ticket (>= 0) to pass back to `probeResult`; plus
/// `ADMIT_TRANSITION` (2^33) if the generation moved during the call: this
/// call made a transition (OPEN to HALF_OPEN, a new half-open episode, an
/// isolated breaker held OPEN), or, rarely, another thread made one in
/// those few nanoseconds (waking the watches once more is harmless).
unsafe extern "C" fn admit(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    // SAFETY: called by N-API with a live env and callback info.
    unsafe {
        hot_call::<2>(env, info, |[id, fallback]| {
            with(id, |i| {
                let (admission, transition) = i.breaker.admit(host_clock(), i.stripe);
                let decision = match admission {
                    Admission::Run => ADMIT_RUN,
                    Admission::Reject => {
                        if fallback != 0 {
                            i.breaker.on_fallback(i.stripe);
                        }
                        ADMIT_REJECT
                    }
                    Admission::Probe(ticket) => f64::from(ticket.0),
                };
                match transition {
                    None => decision,
                    Some(_) => decision + ADMIT_TRANSITION,
                }
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
                f64::from(transition_code(i.breaker.on_marked_success(
                    marks(bits),
                    host_clock(),
                    i.stripe,
                )))
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
                f64::from(transition_code(i.breaker.on_marked_failure(
                    marks(bits),
                    host_clock(),
                    i.stripe,
                )))
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
                f64::from(transition_code(i.breaker.on_marked_probe_result(
                    ticket,
                    succeeded != 0,
                    marks(bits),
                    host_clock(),
                    i.stripe,
                )))
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

/// `latencies(id, micros, count)`: records the first `count` durations of
/// `micros`, a `Uint32Array` of this thread's (not shared memory), in the
/// shared histogram: a thread's latencies, batched like its successes.
unsafe extern "C" fn latencies(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    // SAFETY: forwarded from N-API with its live env and callback info.
    guarded(env, || unsafe { latencies_guarded(env, info) })
}

/// `latencies`' body.
unsafe fn latencies_guarded(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    // SAFETY: as in `admit`.
    let staged = unsafe { arguments::<3>(env, info) }.and_then(|[id, array, count]| {
        let (mut id_value, mut count_value) = (0u32, 0u32);
        let mut kind: sys::napi_typedarray_type = sys::TypedarrayType::int8_array;
        let (mut length, mut data) = (0usize, std::ptr::null_mut());
        // SAFETY: argument handles of this call; the out-pointers are locals.
        let ok = unsafe {
            sys::napi_get_value_uint32(env, id, &mut id_value) == sys::Status::napi_ok
                && sys::napi_get_value_uint32(env, count, &mut count_value) == sys::Status::napi_ok
                && sys::napi_get_typedarray_info(
                    env,
                    array,
                    &mut kind,
                    &mut length,
                    &mut data,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                ) == sys::Status::napi_ok
        };
        let usable =
            ok && kind == sys::TypedarrayType::uint32_array && (length == 0 || !data.is_null());
        usable.then(|| {
            (
                id_value,
                data.cast::<u32>().cast_const(),
                length.min(count_value as usize),
            )
        })
    });
    let result = match staged {
        Some((id, data, count)) => with(id, |i| {
            for index in 0..count {
                // SAFETY: `index < length` of the array, whose data is this
                // thread's own memory and outlives the call.
                let micros = unsafe { data.add(index).read_unaligned() };
                i.breaker.record_latency(u64::from(micros), i.stripe);
            }
        }),
        None => Err(Error::new(
            Status::InvalidArg,
            "expected an id, a Uint32Array and a count".to_owned(),
        )),
    };
    if let Err(error) = result {
        throw_type_error(env, &error);
    }
    std::ptr::null_mut()
}

/// The first `N` arguments of a call, or `None` if it has fewer.
///
/// # Safety
/// `env` and `info` must be the live arguments of an N-API callback.
pub(crate) unsafe fn arguments<const N: usize>(
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
        // A panic must not unwind into N-API (it would abort the process):
        // it becomes a thrown error. Free when nothing panics.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(args)))
            .unwrap_or_else(|panic| Err(crate::errors::panic_error(&panic)))
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
            throw_type_error(env, &error);
            std::ptr::null_mut()
        }
    }
}

/// Runs the body of a raw N-API callback: a panic in it becomes a thrown
/// `Error` instead of unwinding into N-API, which would abort the process.
pub(crate) fn guarded(
    env: sys::napi_env,
    body: impl FnOnce() -> sys::napi_value,
) -> sys::napi_value {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
        Ok(value) => value,
        Err(panic) => {
            let error = crate::errors::panic_error(&panic);
            let message =
                std::ffi::CString::new(error.reason.replace('\0', " ")).unwrap_or_default();
            // SAFETY: live env (callers are N-API callbacks); `message` is
            // a NUL-terminated string that outlives the call.
            unsafe { sys::napi_throw_error(env, std::ptr::null(), message.as_ptr()) };
            std::ptr::null_mut()
        }
    }
}

/// Throws `error` as a `TypeError` on `env`.
fn throw_type_error(env: sys::napi_env, error: &Error) {
    let message = std::ffi::CString::new(error.reason.replace('\0', " ")).unwrap_or_default();
    // SAFETY: live env (callers are N-API callbacks); `message` is a
    // NUL-terminated string that outlives the call.
    unsafe { sys::napi_throw_type_error(env, std::ptr::null(), message.as_ptr()) };
}
