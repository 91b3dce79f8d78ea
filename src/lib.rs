//! The napi binding: converts between JavaScript and `breaker-core`, and
//! nothing else. Every decision about state is made in the core.
//!
//! Breakers are kept in a per-thread table and named to JavaScript by their
//! index (`table`). A `#[napi]` free function taking a `u32` is the cheapest
//! call napi-rs offers (class methods and `External` arguments go through
//! process-wide locks); the per-call functions are plain N-API callbacks,
//! cheaper still (`hot`).
//!
//! ```text
//!   hot        per-call raw N-API callbacks: admit, success, markedSuccess,
//!              failure, probeResult, latency, latencies
//!   table      this thread's breakers, by id
//!   arrays     checking the Int32Array a breaker is built over
//!   breakers   making and freeing breakers, the options, arrayLength
//!   control    the cold calls: state, the overrides, the transition log
//!   stats      getStats() and the totals
//!   constants  the numbers the facade and the binding share
//!   file       breaker files: mapping, mapFile, fileImage, reserveFile
//!   clock      the host's clocks
//!   errors     turning refusals into JavaScript errors
//!   limits     the bulkhead and the rate limiter (no table: arrays per call)
//!   agent      off the JavaScript threads: breaker-file watchers (futex),
//!              fleet mode, and the threadsafe functions they call
//! ```
//!
//! Every mutator answers whether it made a transition, so that the facade
//! wakes other threads' state watches exactly when one was made.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// The `#[napi]` functions are called from JavaScript only: a test build
// registers none of them, so there they would all look unused.
#![cfg_attr(test, allow(dead_code))]

#[cfg(not(target_endian = "little"))]
compile_error!("the STATE slot is the low half of a 64-bit word: little-endian targets only");

mod agent;
mod arrays;
mod breakers;
mod clock;
mod constants;
mod control;
mod errors;
mod file;
mod hot;
mod limits;
mod stats;
mod table;

use napi::bindgen_prelude::{JsObjectValue, Object, Unknown};
use napi::{sys, Env, Result};
use napi_derive::napi;

/// Adds the raw N-API functions (the per-call ones and `mapFile`) to the
/// module's exports; napi-rs registers the `#[napi]` ones.
#[napi(module_exports)]
pub fn register_raw_functions(exports: Object, env: Env) -> Result<()> {
    // napi-rs does not guard `module_exports` functions: a panic here must
    // not unwind into N-API either.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| register(exports, env)))
        .unwrap_or_else(|panic| Err(errors::panic_error(&panic)))
}

fn register(mut exports: Object, env: Env) -> Result<()> {
    let functions = hot::CALLBACKS
        .iter()
        .chain([("mapFile", file::map_file as hot::Callback)].iter());
    for &(name, callback) in functions {
        let mut function = std::ptr::null_mut();
        // SAFETY: live env; `name` is valid for `len` bytes; `function` is a local out-pointer.
        errors::check(unsafe {
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
