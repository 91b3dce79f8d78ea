//! Checking the `Int32Array` a breaker is built over: it must be over a
//! `SharedArrayBuffer`, or over a live breaker file's mapping, and long
//! enough to view as slots.

use crate::errors::{check, Thrown};
use crate::file;
use breaker_core::{layout, MemoryError, Slots};
use napi::sys;
use std::ffi::c_void;
use std::sync::atomic::AtomicI32;
use std::sync::Arc;

/// What N-API says of a typed array: its element type, its length in
/// elements, where its data starts, and its buffer.
pub(crate) struct TypedArray {
    pub kind: sys::napi_typedarray_type,
    pub length: usize,
    pub data: *mut c_void,
    pub buffer: sys::napi_value,
}

/// # Safety
/// `env` and `value` must be live handles of the current call, and `value`
/// a typed array.
pub(crate) unsafe fn typed_array_info(
    env: sys::napi_env,
    value: sys::napi_value,
) -> napi::Result<TypedArray> {
    let (mut kind, mut length, mut data) = (0, 0usize, std::ptr::null_mut::<c_void>());
    let (mut buffer, mut byte_offset) = (std::ptr::null_mut(), 0usize);
    // SAFETY: per this function's contract; out-pointers are valid locals.
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
    })?;
    Ok(TypedArray {
        kind,
        length,
        data,
        buffer,
    })
}

/// Checks that `value` is an `Int32Array` over a `SharedArrayBuffer` (or
/// over a breaker file's mapping) that can hold a breaker, and views its
/// memory as slots.
pub(crate) fn shared_slots(
    env: sys::napi_env,
    value: sys::napi_value,
) -> std::result::Result<(Slots<'static>, Option<Arc<file::Mapping>>), Thrown> {
    let (slots, mapping) = shared_memory(env, value, "sharedArray")?;
    let slots = Slots::new(slots).map_err(|error| Thrown::Range(format!("sharedArray {error}")))?;
    Ok((slots, mapping))
}

/// Checks that `value` is a non-empty `Int32Array` over a
/// `SharedArrayBuffer` (or over a breaker file's mapping), and views its
/// memory. Errors name the argument `name`.
pub(crate) fn shared_memory(
    env: sys::napi_env,
    value: sys::napi_value,
    name: &str,
) -> std::result::Result<(&'static [AtomicI32], Option<Arc<file::Mapping>>), Thrown> {
    // Formatted only for an error: this runs on every bulkhead and rate limiter call.
    let expected = || format!("{name} must be an Int32Array over a SharedArrayBuffer");
    let napi_failed = |_| Thrown::Type(format!("{}; it could not be inspected", expected()));

    let mut is_typed_array = false;
    // SAFETY: live handles of this call; out-pointers are valid locals.
    check(unsafe { sys::napi_is_typedarray(env, value, &mut is_typed_array) })
        .map_err(napi_failed)?;
    if !is_typed_array {
        return Err(Thrown::Type(format!(
            "{}, got {}",
            expected(),
            describe(env, value)
        )));
    }
    // SAFETY: as above; `value` is a typed array.
    let TypedArray {
        kind,
        length,
        data,
        buffer,
    } = unsafe { typed_array_info(env, value) }.map_err(napi_failed)?;
    if kind != sys::TypedarrayType::int32_array {
        return Err(Thrown::Type(format!(
            "{}, got {}",
            expected(),
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
                "{}, got an Int32Array over an ArrayBuffer that is not shared",
                expected()
            )));
        }
        found
    } else {
        None
    };
    if data.is_null() || length == 0 {
        return Err(Thrown::Range(format!(
            "{name} {}",
            MemoryError::TooShort {
                length,
                required: layout::SLOT_COUNT
            }
        )));
    }
    // SAFETY: `data` points to `length` 4-byte-aligned `i32`s inside a
    // SharedArrayBuffer, or inside a file mapping (checked above). Such a
    // buffer cannot be detached, transferred or shrunk, and the caller keeps
    // it alive for as long as it uses the view: a breaker by the `napi_ref`
    // taken in `create` (and a mapping by the breaker's `Arc`), a bulkhead
    // or rate limiter call by holding the array (an argument of the call)
    // and the returned `Arc` until it returns. Other threads and processes
    // write it concurrently, which is why it is only ever touched as atomics.
    let slots: &'static [AtomicI32] =
        unsafe { std::slice::from_raw_parts(data as *const AtomicI32, length) };
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
