//! This thread's breakers, by id.
//!
//! The table needs no lock because a JavaScript object, and so a breaker,
//! never leaves the thread that made it. A breaker is freed when its owner
//! object is collected (`finalize`) or disposed (`release`); its id is then
//! reused.

use crate::file::Mapping;
use breaker_core::{Breaker, Slots, Stripe};
use napi::{sys, Error, Result, Status};
use std::cell::RefCell;
use std::ffi::c_void;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

pub(crate) struct Instance {
    pub(crate) breaker: Breaker<Slots<'static>>,
    pub(crate) stripe: Stripe,
    /// Strong reference to the `Int32Array`, so its `SharedArrayBuffer`
    /// outlives `breaker`'s view of it. Deleted by `release`.
    pub(crate) array: sys::napi_ref,
    /// For an array over a breaker file: the mapping, kept for as long as
    /// the breaker exists even if its `ArrayBuffer` is detached.
    pub(crate) _mapping: Option<Arc<Mapping>>,
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

/// This thread's counter stripe.
pub(crate) fn stripe() -> Stripe {
    STRIPE.with(|s| *s)
}

fn stale_handle(id: u32) -> Error {
    Error::new(
        Status::InvalidArg,
        format!("{id} is not a live circuit breaker handle of this thread"),
    )
}

/// Runs `f` on breaker `id` of this thread.
#[inline]
pub(crate) fn with<R>(id: u32, f: impl FnOnce(&Instance) -> R) -> Result<R> {
    INSTANCES.with(|table| {
        let table = table.try_borrow().map_err(|_| stale_handle(id))?;
        match table.slots.get(id as usize) {
            Some(Some(instance)) => Ok(f(instance)),
            _ => Err(stale_handle(id)),
        }
    })
}

/// Adds `instance` to the table and returns its id.
pub(crate) fn insert(instance: Instance) -> Result<u32> {
    INSTANCES.with(|table| -> Result<u32> {
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
    })
}

/// Frees breaker `id` when its owner is collected, or its worker exits.
pub(crate) unsafe extern "C" fn finalize(
    env: sys::napi_env,
    data: *mut c_void,
    _hint: *mut c_void,
) {
    // A panic must not unwind into N-API; a finalizer has nobody to tell.
    let _ = std::panic::catch_unwind(|| release(env, data as usize as u32));
}

/// Frees breaker `id`, if it is live: its handle, its reference to the
/// array and its share of a breaker file's mapping.
pub(crate) fn release(env: sys::napi_env, id: u32) {
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
        crate::agent::fleet::forget(env as usize, id);
        // SAFETY: the reference was made on this env and is deleted once.
        unsafe { sys::napi_delete_reference(env, instance.array) };
    }
}
