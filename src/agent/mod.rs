//! The process agent's side of the binding: what runs off the JavaScript
//! threads and reaches them through threadsafe functions (`tsfn`).
//!
//! Instant events over breaker files (Linux): a watcher thread per watched
//! GENERATION word of a mapped breaker file sleeps in a shared futex on that
//! word, with no timeout; every transition this binding makes on a breaker
//! file ends with a FUTEX_WAKE on it (`wakeFile`), in whatever process. The
//! watcher then tells each listening thread (its threadsafe function), whose
//! JavaScript watch reads the transition log as before. A watcher whose last
//! listener leaves (or whose thread exits) stops.

pub mod fleet;
pub mod futex;
pub mod tsfn;

use crate::file;
use breaker_core::layout::GENERATION;
use napi::bindgen_prelude::Unknown;
use napi::{sys, Env, JsValue, Result};
use napi_derive::napi;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

/// One watched GENERATION word and who listens to it.
struct Watcher {
    _mapping: Arc<file::Mapping>,
    word: usize,
    stop: AtomicBool,
    exited: AtomicBool,
    /// (env, watch id) of every listener.
    listeners: Mutex<Vec<(usize, u32)>>,
}

impl Watcher {
    fn word(&self) -> &AtomicI32 {
        // SAFETY: `word` is an aligned slot inside `_mapping`, which this
        // watcher keeps mapped; other processes write it, so atomics only.
        unsafe { &*(self.word as *const AtomicI32) }
    }

    fn listeners(&self) -> std::sync::MutexGuard<'_, Vec<(usize, u32)>> {
        self.listeners.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn run(&self, mut seen: i32) {
        while !self.stop.load(Ordering::SeqCst) {
            let now = self.word().load(Ordering::SeqCst);
            if now == seen {
                futex::wait(self.word(), seen);
                continue;
            }
            seen = now;
            let listeners = self.listeners().clone();
            for (env, id) in listeners {
                tsfn::send(
                    env,
                    tsfn::Message {
                        kind: tsfn::KIND_WAKE,
                        id,
                        text: None,
                    },
                );
            }
        }
        self.exited.store(true, Ordering::SeqCst);
    }

    /// Ends the thread: the flag, then wakes until it has seen it (a wake
    /// that comes between its check and its sleep would otherwise be lost).
    fn stop(self: Arc<Self>) {
        self.stop.store(true, Ordering::SeqCst);
        futex::wake(self.word());
        if self.exited.load(Ordering::SeqCst) {
            return;
        }
        let _ = std::thread::Builder::new()
            .name("breaker-unwatch".into())
            .spawn(move || {
                while !self.exited.load(Ordering::SeqCst) {
                    futex::wake(self.word());
                    std::thread::sleep(std::time::Duration::from_micros(200));
                }
            });
    }
}

/// Watchers by the address of their word.
static WATCHERS: Mutex<Option<HashMap<usize, Arc<Watcher>>>> = Mutex::new(None);
static NEXT_WATCH: AtomicU32 = AtomicU32::new(1);

fn watchers() -> std::sync::MutexGuard<'static, Option<HashMap<usize, Arc<Watcher>>>> {
    WATCHERS.lock().unwrap_or_else(|p| p.into_inner())
}

/// Removes the listeners `drop_it` picks; stops watchers left without any.
fn remove_listeners(drop_it: impl Fn(usize, u32) -> bool) {
    let mut stopped = Vec::new();
    if let Some(map) = watchers().as_mut() {
        map.retain(|_, w| {
            w.listeners().retain(|&(env, id)| !drop_it(env, id));
            if w.listeners().is_empty() {
                stopped.push(w.clone());
                false
            } else {
                true
            }
        });
    }
    for w in stopped {
        w.stop();
    }
}

/// Called from an env's cleanup hook: its listeners are gone.
pub(crate) fn env_gone(env: usize) {
    remove_listeners(|e, _| e == env);
    fleet::env_gone(env);
}

/// The mapping holding `value` (an `Int32Array` over a breaker file) and
/// the address of its GENERATION word; None for anything else.
fn file_generation(
    env: sys::napi_env,
    value: sys::napi_value,
) -> Option<(Arc<file::Mapping>, usize)> {
    let mut is_typed_array = false;
    // SAFETY: live handles of this call.
    if unsafe { sys::napi_is_typedarray(env, value, &mut is_typed_array) } != sys::Status::napi_ok
        || !is_typed_array
    {
        return None;
    }
    // SAFETY: as above; `value` is a typed array.
    let info = unsafe { crate::arrays::typed_array_info(env, value) }.ok()?;
    let (length, data) = (info.length, info.data);
    if info.kind != sys::TypedarrayType::int32_array || length <= GENERATION || data.is_null() {
        return None;
    }
    let mapping = file::mapping_containing(data as usize, length * 4)?;
    Some((mapping, data as usize + GENERATION * 4))
}

/// Makes `callback(kind, id, text)` this thread's listener for the agent
/// (once per thread; unref'd, released when the thread's env goes away).
#[napi(catch_unwind)]
pub fn agent_listen(env: Env, callback: Unknown) -> Result<()> {
    if callback.get_type()? != napi::ValueType::Function {
        return crate::errors::throw(
            &env,
            crate::errors::Thrown::Type("callback must be a function".into()),
        );
    }
    // SAFETY: live handles of this call.
    unsafe { tsfn::install(env.raw(), callback.raw()) }
}

/// Starts telling this thread (through its listener) whenever the
/// GENERATION word of the breaker file under `array` changes from `seen`.
/// Returns the watch's id, or -1 where futexes are not available or
/// `array` is not over a breaker file (the caller polls instead).
#[napi(catch_unwind)]
pub fn watch_file(env: Env, array: Unknown, seen: i32) -> i32 {
    if !futex::SUPPORTED || !tsfn::installed(env.raw()) {
        return -1;
    }
    let Some((mapping, word)) = file_generation(env.raw(), array.raw()) else {
        return -1;
    };
    let id = NEXT_WATCH.fetch_add(1, Ordering::Relaxed) & 0x7fff_ffff;
    let listener = (env.raw() as usize, id);
    let mut guard = watchers();
    let map = guard.get_or_insert_with(HashMap::new);
    if let Some(w) = map.get(&word) {
        w.listeners().push(listener);
        return id as i32;
    }
    let watcher = Arc::new(Watcher {
        _mapping: mapping,
        word,
        stop: AtomicBool::new(false),
        exited: AtomicBool::new(false),
        listeners: Mutex::new(vec![listener]),
    });
    let running = watcher.clone();
    let spawned = std::thread::Builder::new()
        .name("breaker-watch".into())
        .stack_size(64 * 1024)
        .spawn(move || running.run(seen));
    if spawned.is_err() {
        return -1;
    }
    map.insert(word, watcher);
    id as i32
}

/// Stops watch `id` (from `watchFile`); its watcher stops with its last watch.
#[napi(catch_unwind)]
pub fn unwatch_file(id: i32) {
    remove_listeners(|_, watch| watch as i32 == id);
}

/// Wakes every watcher, in any process, of the breaker file under `array`
/// (after a transition). Does nothing for other arrays.
#[napi(catch_unwind)]
pub fn wake_file(env: Env, array: Unknown) {
    if let Some((_mapping, word)) = file_generation(env.raw(), array.raw()) {
        // SAFETY: `word` is an aligned slot of the mapping held just above.
        futex::wake(unsafe { &*(word as *const AtomicI32) });
    }
}
