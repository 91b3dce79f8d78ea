//! The process agent: one thread, one tokio runtime, two links to the store,
//! serving every registered breaker. Callers only enqueue; nothing here
//! blocks them.

use std::collections::{HashMap, HashSet, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::thread::{JoinHandle, ThreadId};
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::PubSubSink;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::connection::{within, Commands, Target};
use crate::event::{FleetEvent, Lease};
use crate::options::{redact, AgentOptions, BreakerSpec, FleetError};
use crate::store::{Keys, Record, Reply, Scripts};

/// Where a breaker's events go. Called on the agent's thread: it must not
/// block, and it must not own the breaker's handle (hold a `Weak` instead),
/// or the agent can never stop. A panic in it is caught and ignored.
pub type Sink = Arc<dyn Fn(FleetEvent) + Send + Sync>;

/// Ops kept while the store is away, per breaker (the oldest are dropped).
const PENDING_MAX: usize = 1024;

#[derive(Clone, Debug)]
enum Op {
    Vote,
    RequestProbe,
    ProbeResult { token: String, ok: bool },
    Isolate,
    Release,
    Reset,
    Disable(bool),
}

enum Ctl {
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

struct Breaker {
    spec: BreakerSpec,
    keys: Keys,
    sink: Sink,
    /// The newest record this host adopted (`None`: none seen yet).
    known: Option<Record>,
    /// When the open period of `known` ends, on this host's clock.
    retry_deadline: Option<Instant>,
    next_acquire: Option<Instant>,
    pending: VecDeque<(Instant, Op)>,
}

struct Link {
    commands: Commands,
    sink: PubSubSink,
    subscribed: HashSet<String>,
    /// The task reading the subscription: it owns that connection, so it
    /// must end with the link or every reconnect would leave one behind.
    listener: tokio::task::AbortHandle,
}

impl Drop for Link {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

enum Heard {
    Message {
        generation: u64,
        channel: String,
        payload: String,
    },
    Closed {
        generation: u64,
    },
}

struct Worker {
    target: Target,
    options: AgentOptions,
    scripts: Scripts,
    control: mpsc::UnboundedReceiver<Ctl>,
    heard_tx: mpsc::UnboundedSender<Heard>,
    heard_rx: mpsc::UnboundedReceiver<Heard>,
    breakers: HashMap<u64, Breaker>,
    link: Option<Link>,
    generation: u64,
    attempt: u32,
    next_connect: Instant,
    next_reread: Instant,
    /// The reason reported with `Degraded`, until `Recovered`.
    degraded: Option<String>,
    seed: u64,
}

type Fail = redis::RedisError;

fn emit(sink: &Sink, event: FleetEvent) {
    let _ = catch_unwind(AssertUnwindSafe(|| sink(event)));
}

impl Worker {
    fn new(target: Target, options: AgentOptions, control: mpsc::UnboundedReceiver<Ctl>) -> Worker {
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

    /// Serves until stopped; a stop cancels whatever is in flight (a
    /// connection attempt to a silent server included).
    async fn run(&mut self, stop: Arc<tokio::sync::Notify>) {
        let stopped = stop.notified();
        tokio::pin!(stopped);
        loop {
            tokio::select! {
                biased;
                _ = &mut stopped => break,
                more = self.step() => if !more { break },
            }
        }
        self.link = None;
    }

    /// Handles one control message, subscription message or timer; false
    /// once every handle is gone.
    async fn step(&mut self) -> bool {
        let wake = self.next_wake();
        tokio::select! {
            biased;
            ctl = self.control.recv() => match ctl {
                None => return false,
                Some(ctl) => self.on_control(ctl).await,
            },
            Some(heard) = self.heard_rx.recv() => self.on_heard(heard).await,
            _ = tokio::time::sleep_until(wake) => self.on_timer().await,
        }
        true
    }

    fn next_wake(&self) -> Instant {
        if self.link.is_none() {
            return self.next_connect;
        }
        self.breakers
            .values()
            .filter_map(|b| b.next_acquire)
            .fold(self.next_reread, Instant::min)
    }

    /// A random number in 0..n (xorshift; jitter needs no more).
    fn random(&mut self, n: u64) -> u64 {
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        if n == 0 {
            0
        } else {
            self.seed % n
        }
    }

    async fn on_control(&mut self, ctl: Ctl) {
        match ctl {
            Ctl::Register { id, spec, sink } => {
                let keys = Keys::new(&self.options.key_prefix, &spec.name);
                if let Some(reason) = &self.degraded {
                    emit(
                        &sink,
                        FleetEvent::Degraded {
                            reason: reason.clone(),
                        },
                    );
                }
                self.breakers.insert(
                    id,
                    Breaker {
                        spec,
                        keys,
                        sink,
                        known: None,
                        retry_deadline: None,
                        next_acquire: None,
                        pending: VecDeque::new(),
                    },
                );
                if self.link.is_some() {
                    if let Err(e) = self.join(id).await {
                        self.fail(e);
                    }
                }
            }
            Ctl::Unregister { id } => {
                if let Some(b) = self.breakers.remove(&id) {
                    let still_used = self.breakers.values().any(|o| o.keys == b.keys);
                    if !still_used {
                        self.unsubscribe(&b.keys.state).await;
                    }
                }
            }
            Ctl::Op { id, op, at } => {
                let at = Instant::from_std(at);
                if let Op::RequestProbe = op {
                    if let Some(b) = self.breakers.get_mut(&id) {
                        b.next_acquire = Some(Instant::now());
                    }
                    return;
                }
                if self.link.is_none() {
                    self.keep(id, at, op, false);
                    return;
                }
                if let Err(e) = self.apply(id, &op).await {
                    self.keep(id, at, op, true);
                    self.fail(e);
                }
            }
        }
    }

    /// Keeps an op for the store's return (in order; `front` puts back the
    /// one that just failed ahead of those that waited behind it).
    fn keep(&mut self, id: u64, at: Instant, op: Op, front: bool) {
        let Some(b) = self.breakers.get_mut(&id) else {
            return;
        };
        if front {
            b.pending.push_front((at, op));
        } else {
            b.pending.push_back((at, op));
        }
        while b.pending.len() > PENDING_MAX {
            b.pending.pop_front();
        }
    }

    /// Subscribes the breaker's channel (once per key) and adopts its record.
    async fn join(&mut self, id: u64) -> Result<(), Fail> {
        let Some(channel) = self.breakers.get(&id).map(|b| b.keys.state.clone()) else {
            return Ok(());
        };
        self.subscribe(&channel).await?;
        let reply = self.script(id, ScriptName::Read, Vec::new()).await?;
        self.adopt(&channel, reply.record, Force::Only(id)).await
    }

    async fn subscribe(&mut self, channel: &str) -> Result<(), Fail> {
        let limit = self.target.command_timeout();
        let Some(link) = self.link.as_mut() else {
            return Ok(());
        };
        if link.subscribed.contains(channel) {
            return Ok(());
        }
        within(limit, link.sink.subscribe(channel)).await?;
        link.subscribed.insert(channel.to_owned());
        Ok(())
    }

    async fn unsubscribe(&mut self, channel: &str) {
        let limit = self.target.command_timeout();
        if let Some(link) = self.link.as_mut() {
            if link.subscribed.remove(channel) {
                // Best effort: a message on a channel nobody listens to is dropped.
                let _ = within(limit, link.sink.unsubscribe(channel)).await;
            }
        }
    }

    async fn on_heard(&mut self, heard: Heard) {
        match heard {
            Heard::Message {
                generation,
                channel,
                payload,
            } => {
                if generation != self.generation {
                    return;
                }
                if let Some(record) = Record::parse_message(&payload) {
                    if let Err(e) = self.adopt(&channel, record, Force::No).await {
                        self.fail(e);
                    }
                }
            }
            Heard::Closed { generation } => {
                if generation == self.generation && self.link.is_some() {
                    self.fail(redis::RedisError::from(std::io::Error::new(
                        std::io::ErrorKind::ConnectionReset,
                        "the subscription connection closed",
                    )));
                }
            }
        }
    }

    async fn on_timer(&mut self) {
        let now = Instant::now();
        if self.link.is_none() {
            if now >= self.next_connect {
                self.establish().await;
            }
            return;
        }
        if now >= self.next_reread {
            self.next_reread = now + Duration::from_millis(self.options.reread_ms);
            if let Err(e) = self.reread().await {
                self.fail(e);
                return;
            }
        }
        let due: Vec<u64> = self
            .breakers
            .iter()
            .filter(|(_, b)| b.next_acquire.is_some_and(|t| t <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            if let Err(e) = self.acquire(id).await {
                self.fail(e);
                return;
            }
        }
    }

    /// Re-reads every breaker's record and adopts the newer ones.
    async fn reread(&mut self) -> Result<(), Fail> {
        let limit = self.target.command_timeout();
        if let Some(link) = self.link.as_mut() {
            // The subscription link answers too, or it is gone.
            within(limit, link.sink.ping::<()>()).await?;
        }
        for (channel, record) in self.read_all().await? {
            self.adopt(&channel, record, Force::No).await?;
        }
        Ok(())
    }

    /// The record of every registered key (one read per key).
    async fn read_all(&mut self) -> Result<Vec<(String, Record)>, Fail> {
        let mut by_key: HashMap<String, u64> = HashMap::new();
        for (id, b) in &self.breakers {
            by_key.entry(b.keys.state.clone()).or_insert(*id);
        }
        let mut records = Vec::with_capacity(by_key.len());
        for (channel, id) in by_key {
            let reply = self.script(id, ScriptName::Read, Vec::new()).await?;
            records.push((channel, reply.record));
        }
        Ok(records)
    }

    /// Connects both links, subscribes, re-reads; then reports `Recovered`,
    /// sends the ops kept during the outage and every breaker's view.
    async fn establish(&mut self) {
        let (commands, sink, mut stream) = match self.target.connect().await {
            Ok(c) => c,
            Err(e) => return self.fail(e),
        };
        self.generation += 1;
        let generation = self.generation;
        let heard = self.heard_tx.clone();
        let listener = tokio::spawn(async move {
            while let Some(msg) = stream.next().await {
                let channel = msg.get_channel_name().to_owned();
                let Ok(payload) = msg.get_payload::<String>() else {
                    continue;
                };
                if heard
                    .send(Heard::Message {
                        generation,
                        channel,
                        payload,
                    })
                    .is_err()
                {
                    return;
                }
            }
            let _ = heard.send(Heard::Closed { generation });
        })
        .abort_handle();
        self.link = Some(Link {
            commands,
            sink,
            subscribed: HashSet::new(),
            listener,
        });
        let channels: HashSet<String> = self
            .breakers
            .values()
            .map(|b| b.keys.state.clone())
            .collect();
        for channel in channels {
            if let Err(e) = self.subscribe(&channel).await {
                return self.fail(e);
            }
        }
        // Read before announcing anything: a paused or half-dead store fails here.
        let records = match self.read_all().await {
            Ok(r) => r,
            Err(e) => return self.fail(e),
        };
        self.attempt = 0;
        self.next_reread = Instant::now() + Duration::from_millis(self.options.reread_ms);
        let recovering = self.degraded.take().is_some();
        if recovering {
            for b in self.breakers.values() {
                emit(&b.sink, FleetEvent::Recovered);
            }
        }
        if let Err(e) = self.replay().await {
            return self.fail(e);
        }
        // After an outage every breaker gets the fleet's view, changed or not.
        for (channel, record) in records {
            let force = if recovering { Force::All } else { Force::No };
            if let Err(e) = self.adopt(&channel, record, force).await {
                return self.fail(e);
            }
        }
    }

    /// Sends the ops kept while the store was away, oldest first. A vote
    /// older than its vote window no longer counts and is dropped.
    async fn replay(&mut self) -> Result<(), Fail> {
        let ids: Vec<u64> = self.breakers.keys().copied().collect();
        for id in ids {
            while let Some((window, (at, op))) = self
                .breakers
                .get_mut(&id)
                .and_then(|b| Some((b.spec.vote_window_ms, b.pending.pop_front()?)))
            {
                if matches!(op, Op::Vote) && at.elapsed() >= Duration::from_millis(window) {
                    continue;
                }
                if let Err(e) = self.apply(id, &op).await {
                    self.keep(id, at, op, true);
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// The store is away: drop both links, report `Degraded` once, and try
    /// again after an exponential backoff with jitter.
    fn fail(&mut self, err: Fail) {
        self.link = None;
        self.generation += 1;
        let min = self.options.reconnect_min_ms;
        let max = self.options.reconnect_max_ms;
        let ceiling = min.saturating_mul(1u64 << self.attempt.min(20)).min(max);
        let wait = ceiling / 2 + self.random(ceiling / 2 + 1);
        self.attempt = self.attempt.saturating_add(1);
        self.next_connect = Instant::now() + Duration::from_millis(wait);
        if self.degraded.is_none() {
            let reason = describe(&err);
            for b in self.breakers.values() {
                emit(
                    &b.sink,
                    FleetEvent::Degraded {
                        reason: reason.clone(),
                    },
                );
            }
            self.degraded = Some(reason);
        }
    }

    async fn script(
        &mut self,
        id: u64,
        name: ScriptName,
        args: Vec<String>,
    ) -> Result<Reply, Fail> {
        let limit = self.target.command_timeout();
        let Some(b) = self.breakers.get(&id) else {
            return Err(redis::RedisError::from((
                redis::ErrorKind::Client,
                "breaker unregistered",
            )));
        };
        let keys = b.keys.clone();
        let Some(link) = self.link.as_mut() else {
            return Err(redis::RedisError::from((
                redis::ErrorKind::Client,
                "not connected",
            )));
        };
        let script = self.scripts.get(name);
        let value = link.commands.run(limit, script, &keys.all(), &args).await?;
        Reply::parse(value).ok_or_else(|| {
            redis::RedisError::from((redis::ErrorKind::Parse, "unexpected fleet script reply"))
        })
    }

    /// Runs one op and adopts the record it returns.
    async fn apply(&mut self, id: u64, op: &Op) -> Result<(), Fail> {
        let Some(b) = self.breakers.get(&id) else {
            return Ok(());
        };
        let s = &b.spec;
        let channel = b.keys.state.clone();
        let (name, args) = match op {
            Op::Vote => (
                ScriptName::Vote,
                vec![
                    s.host_id.clone(),
                    s.quorum.to_string(),
                    s.vote_window_ms.to_string(),
                    s.open_ms.to_string(),
                ],
            ),
            Op::ProbeResult { token, ok } => (
                ScriptName::Result,
                vec![
                    token.clone(),
                    if *ok { "1" } else { "0" }.to_owned(),
                    s.open_ms.to_string(),
                    s.max_open_ms.to_string(),
                ],
            ),
            Op::Isolate => (ScriptName::Isolate, Vec::new()),
            Op::Release => (ScriptName::Release, Vec::new()),
            Op::Reset => (ScriptName::Reset, Vec::new()),
            Op::Disable(d) => (
                ScriptName::Disable,
                vec![if *d { "1" } else { "0" }.to_owned()],
            ),
            Op::RequestProbe => return Ok(()),
        };
        let reply = self.script(id, name, args).await?;
        self.adopt(&channel, reply.record, Force::No).await
    }

    /// Asks the store for the fleet's probe lease.
    async fn acquire(&mut self, id: u64) -> Result<(), Fail> {
        let Some(b) = self.breakers.get_mut(&id) else {
            return Ok(());
        };
        b.next_acquire = None;
        let lease_ms = b.spec.lease_ms;
        let channel = b.keys.state.clone();
        let args = vec![b.spec.host_id.clone(), lease_ms.to_string()];
        let reply = self.script(id, ScriptName::Acquire, args).await?;
        let record = reply.record.clone();
        self.adopt(&channel, reply.record, Force::No).await?;
        let now = Instant::now();
        let again = match reply.status.as_str() {
            "granted" => {
                if let Some(b) = self.breakers.get(&id) {
                    let lease = Lease {
                        token: reply.extra.clone(),
                        version: record.version,
                        lease_ms,
                    };
                    emit(&b.sink, FleetEvent::ProbeGranted { lease });
                }
                // Still open when the lease has run out: ask again.
                Some(after(now, lease_ms))
            }
            "busy" | "wait" => {
                let ms = reply.extra.parse::<u64>().unwrap_or(lease_ms);
                Some(after(now, ms.saturating_add(1 + self.random(10))))
            }
            _ => None,
        };
        if let Some(b) = self.breakers.get_mut(&id) {
            if record.probing()
                && b.known
                    .as_ref()
                    .is_some_and(|k| k.version == record.version)
            {
                b.next_acquire = again;
            }
        }
        Ok(())
    }

    /// Adopts a record for every breaker on `channel` if it is newer than
    /// what they know; `force` also sends the view when it is not newer. A
    /// record that vanished never closes a host: the host's open view is
    /// written back instead.
    async fn adopt(&mut self, channel: &str, record: Record, force: Force) -> Result<(), Fail> {
        let ids: Vec<u64> = self
            .breakers
            .iter()
            .filter(|(_, b)| b.keys.state == channel)
            .map(|(id, _)| *id)
            .collect();
        if ids.is_empty() {
            return Ok(());
        }
        if !record.exists() {
            let remembered = ids
                .iter()
                .filter_map(|id| self.breakers.get(id))
                .filter_map(|b| b.known.as_ref().map(|k| (k.clone(), b.retry_deadline)))
                .max_by_key(|(k, _)| k.version);
            if let Some((known, deadline)) = remembered {
                if known.exists() && (known.effectively_open() || known.disabled) {
                    let restored = self.restore(ids[0], &known, deadline).await?;
                    return Box::pin(self.adopt(channel, restored, force)).await;
                }
            }
        }
        let now = Instant::now();
        for id in ids {
            let Some(b) = self.breakers.get_mut(&id) else {
                continue;
            };
            let newer = match &b.known {
                None => true,
                Some(k) => record.version > k.version,
            };
            let same = b
                .known
                .as_ref()
                .is_some_and(|k| k.version == record.version);
            let forced = match force {
                Force::No => false,
                Force::All => true,
                Force::Only(only) => only == id,
            };
            if !(newer || (forced && (same || !record.exists()))) {
                continue;
            }
            if newer {
                b.known = Some(record.clone());
                if record.effectively_open() && record.open == Some(true) {
                    let at = after(now, record.retry_in_ms());
                    b.retry_deadline = Some(at);
                    b.next_acquire = record.probing().then_some(at);
                } else {
                    b.retry_deadline = None;
                    b.next_acquire = None;
                }
            }
            let shown = b.known.clone().unwrap_or(record.clone());
            emit(&b.sink, shown.event());
        }
        Ok(())
    }

    async fn restore(
        &mut self,
        id: u64,
        known: &Record,
        deadline: Option<Instant>,
    ) -> Result<Record, Fail> {
        let remaining = deadline.map_or(0, |d| {
            d.saturating_duration_since(Instant::now()).as_millis() as u64
        });
        let state = if known.open == Some(true) {
            "open"
        } else {
            "closed"
        };
        let args = vec![
            state.to_owned(),
            remaining.to_string(),
            known.reopenings.to_string(),
            known.isolations.to_string(),
            if known.disabled { "1" } else { "0" }.to_owned(),
        ];
        Ok(self.script(id, ScriptName::Restore, args).await?.record)
    }
}

/// Who gets a view that is not newer than what they know.
#[derive(Clone, Copy)]
enum Force {
    No,
    All,
    Only(u64),
}

#[derive(Clone, Copy)]
enum ScriptName {
    Read,
    Vote,
    Acquire,
    Result,
    Isolate,
    Release,
    Reset,
    Disable,
    Restore,
}

impl Scripts {
    fn get(&self, name: ScriptName) -> &redis::Script {
        match name {
            ScriptName::Read => &self.read,
            ScriptName::Vote => &self.vote,
            ScriptName::Acquire => &self.acquire,
            ScriptName::Result => &self.result,
            ScriptName::Isolate => &self.isolate,
            ScriptName::Release => &self.release,
            ScriptName::Reset => &self.reset,
            ScriptName::Disable => &self.disable,
            ScriptName::Restore => &self.restore,
        }
    }
}

/// `ms` after `now`; store times beyond a day (a corrupt record) count as a
/// day, so no deadline can overflow.
fn after(now: Instant, ms: u64) -> Instant {
    now + Duration::from_millis(ms.min(86_400_000))
}

/// A short reason for `Degraded`, without secrets.
fn describe(err: &redis::RedisError) -> String {
    if err.kind() == redis::ErrorKind::AuthenticationFailed
        || err.code() == Some("WRONGPASS")
        || err.code() == Some("NOAUTH")
    {
        return format!("the store refused the credentials: {err}");
    }
    if err.is_timeout() {
        return format!("the store did not answer in time: {err}");
    }
    if err.is_io_error() || err.is_connection_refusal() || err.is_connection_dropped() {
        return format!("the store cannot be reached: {err}");
    }
    // NOPERM, a script error, an unexpected reply: a fault, not an outage,
    // but the host still runs on its own until a command succeeds.
    format!("the store answered with an error: {err}")
}
