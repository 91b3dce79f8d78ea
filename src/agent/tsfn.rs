//! How the process agent reaches JavaScript: one napi threadsafe function per
//! listening thread (env), made unref'd (it never keeps a process alive) and
//! released in that env's cleanup hook, so a worker that exits with listeners
//! attached takes its function with it and nothing calls into a dead env.
//!
//! Every call into a function happens under `LISTENERS`' lock, and a
//! function leaves the table (under the same lock) before it is released or
//! when Node finalizes it: a function is never called after its release.

use napi::sys;
use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::Mutex;

/// What a listening thread is told. `kind` and `id` become the callback's
/// first two arguments, `text` (if any) its third.
pub struct Message {
    pub kind: u32,
    pub id: u32,
    pub text: Option<String>,
}

/// A breaker file's GENERATION word changed: `id` is the watch.
pub const KIND_WAKE: u32 = 0;

/// Threadsafe functions by env. Pointers are kept as `usize` (they are only
/// handed back to N-API).
static LISTENERS: Mutex<Option<HashMap<usize, usize>>> = Mutex::new(None);

fn listeners() -> std::sync::MutexGuard<'static, Option<HashMap<usize, usize>>> {
    LISTENERS.lock().unwrap_or_else(|p| p.into_inner())
}

/// Whether `env` has a listener.
pub fn installed(env: sys::napi_env) -> bool {
    listeners()
        .as_ref()
        .is_some_and(|m| m.contains_key(&(env as usize)))
}

/// Makes `callback` this env's listener (once; later calls keep the first).
///
/// # Safety
/// `env` and `callback` must be live handles of the current call.
pub unsafe fn install(env: sys::napi_env, callback: sys::napi_value) -> napi::Result<()> {
    if installed(env) {
        return Ok(());
    }
    let mut name = std::ptr::null_mut();
    let label = "shared-circuit-breaker agent";
    // SAFETY: live env; `label` is valid for its length.
    check(unsafe {
        sys::napi_create_string_utf8(env, label.as_ptr().cast(), label.len() as isize, &mut name)
    })?;
    let mut tsfn = std::ptr::null_mut();
    // SAFETY: live env and function; the finalizer gets `env` back as data.
    check(unsafe {
        sys::napi_create_threadsafe_function(
            env,
            callback,
            std::ptr::null_mut(),
            name,
            0,
            1,
            env.cast(),
            Some(finalized),
            std::ptr::null_mut(),
            Some(call_js),
            &mut tsfn,
        )
    })?;
    // SAFETY: `tsfn` was just made on this env.
    check(unsafe { sys::napi_unref_threadsafe_function(env, tsfn) })?;
    listeners()
        .get_or_insert_with(HashMap::new)
        .insert(env as usize, tsfn as usize);
    // Registered after the function: cleanup hooks run in reverse order, so
    // this one runs before Node's own cleanup of the function.
    // SAFETY: live env; `cleanup` receives `env` back.
    check(unsafe { sys::napi_add_env_cleanup_hook(env, Some(cleanup), env.cast()) })?;
    Ok(())
}

/// Queues `message` for `env`'s listener; false if it has none (any more).
pub fn send(env: usize, message: Message) -> bool {
    let guard = listeners();
    let Some(&tsfn) = guard.as_ref().and_then(|m| m.get(&env)) else {
        return false;
    };
    let data = Box::into_raw(Box::new(message));
    // SAFETY: `tsfn` is in the table, so it has not been released or
    // finalized (both take this lock first); a nonblocking call never waits.
    let status = unsafe {
        sys::napi_call_threadsafe_function(
            tsfn as sys::napi_threadsafe_function,
            data.cast(),
            sys::ThreadsafeFunctionCallMode::nonblocking,
        )
    };
    if status != sys::Status::napi_ok {
        // SAFETY: not queued, so still ours.
        drop(unsafe { Box::from_raw(data) });
        return false;
    }
    true
}

/// The env is going away (a worker exits, or the process): its function
/// leaves the table, then is released; whatever listened there stops.
unsafe extern "C" fn cleanup(arg: *mut c_void) {
    let env = arg as usize;
    // A panic must not unwind into N-API; the function is released anyway.
    let tsfn = std::panic::catch_unwind(|| {
        let tsfn = listeners().as_mut().and_then(|m| m.remove(&env));
        super::env_gone(env);
        tsfn
    })
    .ok()
    .flatten();
    if let Some(tsfn) = tsfn {
        // SAFETY: removed from the table above, so released exactly once.
        unsafe {
            sys::napi_release_threadsafe_function(
                tsfn as sys::napi_threadsafe_function,
                sys::ThreadsafeFunctionReleaseMode::abort,
            )
        };
    }
}

/// Node destroyed the function: make sure the table no longer names it.
unsafe extern "C" fn finalized(_env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
    let env = data as usize;
    let _ = std::panic::catch_unwind(|| {
        if let Some(m) = listeners().as_mut() {
            m.remove(&env);
        }
    });
}

/// Runs on the listening thread; with a null env the function is being torn
/// down and the message is only freed.
unsafe extern "C" fn call_js(
    env: sys::napi_env,
    callback: sys::napi_value,
    _context: *mut c_void,
    data: *mut c_void,
) {
    if data.is_null() {
        return;
    }
    // SAFETY: every queued pointer is a Box made in `send`, taken back once.
    let message = unsafe { Box::from_raw(data.cast::<Message>()) };
    if env.is_null() || callback.is_null() {
        return;
    }
    // A panic must not unwind into N-API (none is expected: N-API calls only).
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut argv = [std::ptr::null_mut(); 3];
        // SAFETY: live env on its own thread; out-pointers are locals.
        unsafe {
            sys::napi_create_uint32(env, message.kind, &mut argv[0]);
            sys::napi_create_uint32(env, message.id, &mut argv[1]);
            match &message.text {
                Some(text) => {
                    sys::napi_create_string_utf8(
                        env,
                        text.as_ptr().cast(),
                        text.len() as isize,
                        &mut argv[2],
                    );
                }
                None => {
                    sys::napi_get_undefined(env, &mut argv[2]);
                }
            }
            let mut global = std::ptr::null_mut();
            sys::napi_get_global(env, &mut global);
            let mut result = std::ptr::null_mut();
            // A throwing listener is reported by Node as an uncaught exception.
            sys::napi_call_function(env, global, callback, 3, argv.as_ptr(), &mut result);
        }
    }));
}

fn check(status: sys::napi_status) -> napi::Result<()> {
    if status == sys::Status::napi_ok {
        Ok(())
    } else {
        Err(napi::Error::new(
            napi::Status::from(status),
            "napi threadsafe function call failed",
        ))
    }
}
