//! What the agent's thread holds: the registered breakers, the link to the
//! store, the messages handles send it, and where each breaker's events go.

use std::collections::{HashMap, HashSet, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use redis::aio::PubSubSink;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::connection::{Commands, Target};
use crate::event::FleetEvent;
use crate::options::{AgentOptions, BreakerSpec};
use crate::store::{Keys, Record, Scripts};

/// Where a breaker's events go. Called on the agent's thread: it must not
/// block, and it must not own the breaker's handle (hold a `Weak` instead),
/// or the agent can never stop. A panic in it is caught and ignored.
pub type Sink = Arc<dyn Fn(FleetEvent) + Send + Sync>;

#[derive(Clone, Debug)]
pub(crate) enum Op {
    Vote,
    RequestProbe,
    ProbeResult { token: String, ok: bool },
    Isolate,
    Release,
    Reset,
    Disable(bool),
}

pub(crate) enum Ctl {
    Register {
        id: u64,
        spec: BreakerSpec,
        sink: Sink,
    },
    Unregister {
        id: u64,
    },
    Op {
        id: u64,
        op: Op,
        at: std::time::Instant,
    },
}

pub(crate) struct Breaker {
    pub(crate) spec: BreakerSpec,
    pub(crate) keys: Keys,
    pub(crate) sink: Sink,
    /// The newest record this host adopted (`None`: none seen yet).
    pub(crate) known: Option<Record>,
    /// When the open period of `known` ends, on this host's clock.
    pub(crate) retry_deadline: Option<Instant>,
    pub(crate) next_acquire: Option<Instant>,
    pub(crate) pending: VecDeque<(Instant, Op)>,
}

pub(crate) struct Link {
    pub(crate) commands: Commands,
    pub(crate) sink: PubSubSink,
    pub(crate) subscribed: HashSet<String>,
    /// The task reading the subscription: it owns that connection, so it
    /// must end with the link or every reconnect would leave one behind.
    pub(crate) listener: tokio::task::AbortHandle,
}

impl Drop for Link {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

pub(crate) enum Heard {
    Message {
        generation: u64,
        channel: String,
        payload: String,
    },
    Closed {
        generation: u64,
    },
}

pub(crate) struct Worker {
    pub(crate) target: Target,
    pub(crate) options: AgentOptions,
    pub(crate) scripts: Scripts,
    pub(crate) control: mpsc::UnboundedReceiver<Ctl>,
    pub(crate) heard_tx: mpsc::UnboundedSender<Heard>,
    pub(crate) heard_rx: mpsc::UnboundedReceiver<Heard>,
    pub(crate) breakers: HashMap<u64, Breaker>,
    pub(crate) link: Option<Link>,
    pub(crate) generation: u64,
    pub(crate) attempt: u32,
    pub(crate) next_connect: Instant,
    pub(crate) next_reread: Instant,
    /// The reason reported with `Degraded`, until `Recovered`.
    pub(crate) degraded: Option<String>,
    pub(crate) seed: u64,
}

pub(crate) type Fail = redis::RedisError;

pub(crate) fn emit(sink: &Sink, event: FleetEvent) {
    let _ = catch_unwind(AssertUnwindSafe(|| sink(event)));
}

impl Worker {
    pub(crate) fn new(
        target: Target,
        options: AgentOptions,
        control: mpsc::UnboundedReceiver<Ctl>,
    ) -> Worker {
        let (heard_tx, heard_rx) = mpsc::unbounded_channel();
        let now = Instant::now();
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9E37_79B9, |d| d.as_nanos() as u64)
            | 1;
        Worker {
            target,
            options,
            scripts: Scripts::new(),
            control,
            heard_tx,
            heard_rx,
            breakers: HashMap::new(),
            link: None,
            generation: 0,
            attempt: 0,
            next_connect: now,
            next_reread: now,
            degraded: None,
            seed,
        }
    }
}
