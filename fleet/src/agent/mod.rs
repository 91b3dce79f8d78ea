//! The process agent: one thread, one tokio runtime, two links to the store,
//! serving every registered breaker. Callers only enqueue; nothing here
//! blocks them.
//!
//! This file is the callers' side: [`Agent`], [`BreakerHandle`] and the one
//! agent a process shares. The agent's thread lives in the modules below:
//! its state ([`worker`]), its loop ([`serve`]), its links to the store
//! ([`reconnect`]), the records it applies and the events it emits
//! ([`records`]), and the ops it keeps while the store is away ([`pending`]).

mod pending;
mod reconnect;
mod records;
mod serve;
mod worker;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::thread::{JoinHandle, ThreadId};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::connection::Target;
use crate::event::Lease;
use crate::options::{redact, AgentOptions, BreakerSpec, FleetError};
use worker::{Ctl, Op, Worker};

pub use worker::Sink;

struct Inner {
    tx: mpsc::UnboundedSender<Ctl>,
    /// Ends the agent's loop, whatever it is waiting for.
    stop: Arc<tokio::sync::Notify>,
    thread: Mutex<Option<JoinHandle<()>>>,
    thread_id: ThreadId,
    next_id: AtomicU64,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.notify_one();
        let handle = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        // Dropped from a sink (on the agent's own thread): it stops by itself.
        if let Some(handle) = handle {
            if std::thread::current().id() != self.thread_id {
                let _ = handle.join();
            }
        }
    }
}

/// The fleet agent of one process. Cloning shares it; its thread stops when
/// the last clone and the last breaker handle are dropped, or at `stop()`.
#[derive(Clone)]
pub struct Agent {
    inner: Arc<Inner>,
}

/// One registered breaker. Every method only enqueues and returns at once;
/// results arrive as events. Dropping it unregisters the breaker.
pub struct BreakerHandle {
    inner: Arc<Inner>,
    id: u64,
}

static SHARED: Mutex<Option<(String, bool, Weak<Inner>)>> = Mutex::new(None);

impl Agent {
    /// Checks the URL and the options now (a clear error if they are bad),
    /// then connects in the background: an unreachable store or a refused
    /// password is reported to each breaker as `Degraded`.
    pub fn start(url: &str, options: AgentOptions) -> Result<Agent, FleetError> {
        options.validate()?;
        let target = Target::new(url, &options)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let stop = Arc::new(tokio::sync::Notify::new());
        let stopped = stop.clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("breaker-fleet".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                let mut worker = Worker::new(target, options, rx);
                runtime.block_on(worker.run(stopped));
                drop(worker);
                runtime.shutdown_timeout(Duration::from_millis(100));
            })
            .map_err(|e| FleetError::Stopped(e.to_string()))?;
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(FleetError::Stopped(e)),
            Err(_) => {
                return Err(FleetError::Stopped(
                    "the agent thread ended at start".into(),
                ))
            }
        }
        let thread_id = thread.thread().id();
        Ok(Agent {
            inner: Arc::new(Inner {
                tx,
                stop,
                thread: Mutex::new(Some(thread)),
                thread_id,
                next_id: AtomicU64::new(1),
            }),
        })
    }

    /// The process's agent: the running one if it serves this URL, a new one
    /// if none runs. One store per process: a different URL (or cluster
    /// flag) while an agent runs is refused with `OtherStore`. The options
    /// of the first caller apply.
    pub fn shared(url: &str, options: AgentOptions) -> Result<Agent, FleetError> {
        let mut slot = SHARED.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((running, cluster, weak)) = slot.as_ref() {
            if let Some(inner) = weak.upgrade() {
                if running == url && *cluster == options.cluster {
                    return Ok(Agent { inner });
                }
                return Err(FleetError::OtherStore {
                    running: redact(running),
                    requested: redact(url),
                });
            }
        }
        let cluster = options.cluster;
        let agent = Agent::start(url, options)?;
        *slot = Some((url.to_owned(), cluster, Arc::downgrade(&agent.inner)));
        Ok(agent)
    }

    /// Joins a breaker to the fleet. Its current fleet view arrives as the
    /// first event once the store answers (or `Degraded` if it does not).
    pub fn register(&self, spec: BreakerSpec, sink: Sink) -> Result<BreakerHandle, FleetError> {
        spec.validate()?;
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        self.inner
            .tx
            .send(Ctl::Register { id, spec, sink })
            .map_err(|_| FleetError::Stopped("stop() was called".into()))?;
        Ok(BreakerHandle {
            inner: self.inner.clone(),
            id,
        })
    }

    /// Stops the agent's thread now, whoever still holds it; handles then
    /// do nothing. Does not wait for the thread.
    pub fn stop(&self) {
        self.inner.stop.notify_one();
    }
}

impl BreakerHandle {
    fn send(&self, op: Op) {
        let _ = self.inner.tx.send(Ctl::Op {
            id: self.id,
            op,
            at: std::time::Instant::now(),
        });
    }

    /// This host tripped: count its vote (kept and sent after an outage if
    /// still inside the vote window).
    pub fn trip_vote(&self) {
        self.send(Op::Vote);
    }

    /// Ask for the fleet's probe lease now instead of at the end of the open
    /// period as measured from the last view (the store still refuses it
    /// before the open period has passed). The agent asks by itself anyway.
    pub fn request_probe(&self) {
        self.send(Op::RequestProbe);
    }

    /// The probe admitted under `lease` ended: `ok` closes the fleet, a
    /// failure reopens it with a longer period. Stale leases change nothing.
    pub fn probe_result(&self, lease: &Lease, ok: bool) {
        self.send(Op::ProbeResult {
            token: lease.token.clone(),
            ok,
        });
    }

    /// Hold the whole fleet open (counted: one `release_isolation` each).
    pub fn isolate(&self) {
        self.send(Op::Isolate);
    }

    pub fn release_isolation(&self) {
        self.send(Op::Release);
    }

    /// Close the whole fleet and clear its votes, backoff and isolations.
    pub fn reset(&self) {
        self.send(Op::Reset);
    }

    /// Disable (or enable again) the breaker on every host.
    pub fn disable(&self, disabled: bool) {
        self.send(Op::Disable(disabled));
    }
}

impl Drop for BreakerHandle {
    fn drop(&mut self) {
        let _ = self.inner.tx.send(Ctl::Unregister { id: self.id });
    }
}
