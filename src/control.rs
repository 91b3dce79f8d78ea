//! The cold calls on one breaker: its state, the overrides (force half-open,
//! isolate, release, reset, disable) and the transition log.
//!
//! Every override answers whether it made a transition, as the per-call
//! functions do (`transition_code`: 0 none, 1 opened, 2 half-opened,
//! 3 closed), and the facade wakes other threads' state watches on any
//! answer but 0.

use crate::clock::host_clock;
use crate::constants::{transition_code, EPOCH_LIMIT};
use crate::table::with;
use breaker_core::LogRead;
use napi::Result;
use napi_derive::napi;

/// The state a caller would meet now: 0 CLOSED, 1 OPEN, 2 HALF_OPEN.
#[napi(catch_unwind)]
pub fn state(id: u32) -> Result<u32> {
    with(id, |i| i.breaker.state(host_clock()) as u32)
}

/// Gives back the half-open place of the probe holding `ticket`, which
/// never ran (the breaker's bulkhead refused it). A `ticket` no probe
/// holds frees nothing.
#[napi(catch_unwind)]
pub fn abandon_probe(id: u32, ticket: u32) -> Result<()> {
    with(id, |i| {
        i.breaker.abandon_probe(breaker_core::Ticket(ticket))
    })
}

/// Forces a new half-open episode: the next caller probes. Returns the
/// transition: 2 (half-opened), 1 when an isolation holds the breaker OPEN
/// and this opened it (isolation wins), 0 when it made none.
#[napi(catch_unwind)]
pub fn force_half_open(id: u32) -> Result<u32> {
    with(id, |i| {
        transition_code(i.breaker.force_half_open_at(host_clock()))
    })
}

/// An isolation taken.
#[napi(object)]
pub struct Isolation {
    /// For `releaseIsolation`: an integer below 2^48.
    pub epoch: f64,
    /// The transition it made: 1 if it opened the breaker, else 0.
    pub transition: u32,
}

/// Holds the breaker OPEN for every thread until released or reset.
/// Returns the isolation, or null, taking nothing, when `MAX_ISOLATIONS`
/// are held already.
#[napi(catch_unwind)]
pub fn isolate(id: u32) -> Result<Option<Isolation>> {
    with(id, |i| {
        i.breaker
            .isolate(host_clock())
            .map(|(epoch, transition)| Isolation {
                epoch: epoch as f64,
                transition: transition_code(transition),
            })
    })
}

/// Releases one isolation taken in `epoch`; the last one closes the breaker
/// (returns 3 if that closed it, else 0). An isolation from before a
/// `reset`, or an `epoch` no isolation could have (not an integer from 0
/// to 2^48 - 1), releases nothing.
#[napi(catch_unwind)]
pub fn release_isolation(id: u32, epoch: f64) -> Result<u32> {
    with(id, |i| {
        if epoch.fract() == 0.0 && (0.0..EPOCH_LIMIT).contains(&epoch) {
            transition_code(i.breaker.release_isolation(epoch as u64, host_clock()))
        } else {
            0
        }
    })
}

/// Closes the breaker and clears the failure run, backoff, window and
/// isolations. Returns 3 if that closed it, else 0.
#[napi(catch_unwind)]
pub fn reset(id: u32) -> Result<u32> {
    with(id, |i| transition_code(i.breaker.reset(host_clock())))
}

/// Disables (every call runs, nothing opens) or enables the breaker, for
/// every thread. Returns 3 if disabling closed it, else 0.
#[napi(catch_unwind)]
pub fn set_disabled(id: u32, disabled: bool) -> Result<u32> {
    with(id, |i| {
        transition_code(i.breaker.set_disabled(disabled, host_clock()))
    })
}

/// What the transition log answers for one generation.
#[napi(object)]
pub struct LoggedTransition {
    /// `'ready'`: the fields below are set. `'pending'`: not written yet
    /// (its transition is a moment old; ask again). `'gone'`: overwritten
    /// by newer transitions.
    pub status: String,
    /// 0 CLOSED, 1 OPEN, 2 HALF_OPEN: the state it moved to.
    pub state: Option<u32>,
    /// ms since the Unix epoch; 0 if unknown.
    pub time: Option<f64>,
    /// The `threadId` of the thread that made it (20 bits).
    pub thread_id: Option<u32>,
    /// The process it was made in (0 if unknown).
    pub pid: Option<u32>,
}

/// The transition that made generation `generation`: ready, pending or gone.
#[napi(catch_unwind)]
pub fn transition(id: u32, generation: u32) -> Result<LoggedTransition> {
    with(id, |i| {
        let status = |status: &str| LoggedTransition {
            status: status.to_string(),
            state: None,
            time: None,
            thread_id: None,
            pid: None,
        };
        match i.breaker.read_log(generation) {
            LogRead::Ready(entry) => LoggedTransition {
                state: Some(entry.state as u32),
                time: Some(entry.time_ms as f64),
                thread_id: Some(entry.actor),
                pid: Some(entry.pid),
                ..status("ready")
            },
            LogRead::Pending => status("pending"),
            LogRead::Gone => status("gone"),
        }
    })
}
