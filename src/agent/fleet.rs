//! Fleet mode in the binding: between a host's shared memory and the
//! process's fleet agent (`breaker-fleet`). See docs/fleet.md.
//!
//! A process joins the fleet once per shared memory (a breaker file, or a
//! `SharedArrayBuffer`) whatever the number of breakers and threads over it:
//! that is a **member**, registered with the agent under the fleet's key.
//! Each breaker over it is a **listener** of the member (a token), told of
//! `fleetDegraded` / `fleetRecovered` through its thread's threadsafe
//! function.
//!
//! - Nothing here runs per call. JavaScript calls `fleetNoticed` after a
//!   transition only; a local opening (one not made by the fleet) is this
//!   host's trip vote.
//! - The agent's events run `sink` on the agent's thread: an open fleet holds
//!   the host OPEN (`fleet_hold`, logged with [`FLEET_ACTOR`]); a closed one
//!   closes a host it held; an outage drops the hold (the host runs on its
//!   own); a granted probe lease takes the host's FLEET_LEASE slot, drops
//!   the hold and starts a half-open episode; a short-lived thread watches
//!   that episode (every ms, for at most the lease) and reports its result.
//! - A member over a `SharedArrayBuffer` holds a raw view of it, valid
//!   because its last listener leaves (synchronously, in the breaker's
//!   release, under `MEMBERS`' lock) before the breaker lets the buffer go.
//! - The agent stops when the last member leaves (its handle is dropped).

use super::{futex, tsfn};
use crate::clock::host_clock;
use crate::file::Mapping;
use breaker_core::{Breaker, Slots, State};
use breaker_fleet::{
    Agent, AgentOptions, BreakerHandle, BreakerSpec, FleetError, FleetEvent, Lease,
};
use napi::{Env, Result};
use napi_derive::napi;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The actor id of transitions the fleet makes (20 bits; above any thread id
/// Node hands out in practice). JavaScript marks their events `fleet: true`.
pub const FLEET_ACTOR: u32 = 0xF_FFFF;

/// Message kinds (see `tsfn`): a transition made here on a shared array
/// (JavaScript wakes its watches), an outage, its end.
const KIND_CHANGED: u32 = 1;
const KIND_DEGRADED: u32 = 2;
const KIND_RECOVERED: u32 = 3;

struct Listener {
    token: u32,
    env: usize,
    instance: u32,
}

struct Probing {
    lease_number: i32,
    lease: Lease,
}

struct Member {
    breaker: Breaker<Slots<'static>>,
    /// Keeps a breaker file mapped; None over a SharedArrayBuffer.
    mapping: Option<Arc<Mapping>>,
    handle: Option<BreakerHandle>,
    listeners: Vec<Listener>,
    host: String,
    quorum: u32,
    connected: bool,
    state: &'static str,
    version: String,
    /// The last generation looked at for trip votes.
    noticed: u32,
    probing: Option<Probing>,
}

impl Member {
    /// Tells whoever listens that the fleet made a transition: other
    /// processes' watchers through the futex; this process's JavaScript
    /// watches of a shared array through a message.
    fn changed(&self, out: &mut Vec<(usize, tsfn::Message)>) {
        if self.mapping.is_some() {
            futex::wake(self.breaker.cells().word(breaker_core::layout::GENERATION));
        }
        for l in &self.listeners {
            out.push((l.env, message(KIND_CHANGED, l.token, None)));
        }
    }
}

fn message(kind: u32, id: u32, text: Option<String>) -> tsfn::Message {
    tsfn::Message { kind, id, text }
}

static MEMBERS: Mutex<Option<HashMap<usize, Member>>> = Mutex::new(None);
static NEXT_TOKEN: AtomicU32 = AtomicU32::new(1);

fn members() -> MutexGuard<'static, Option<HashMap<usize, Member>>> {
    MEMBERS.lock().unwrap_or_else(|p| p.into_inner())
}

use breaker_core::Cells;

fn send_all(out: Vec<(usize, tsfn::Message)>) {
    for (env, m) in out {
        tsfn::send(env, m);
    }
}

/// What the facade passes after checking every option (docs/fleet.md).
#[napi(object)]
pub struct FleetJoinOptions {
    pub url: String,
    pub host: String,
    pub key: String,
    pub quorum: u32,
    pub vote_window: f64,
    pub open_ms: f64,
    pub max_open_ms: f64,
    pub lease: f64,
    pub command_timeout: f64,
    pub refresh: f64,
    pub cluster: bool,
}

/// Joins breaker `id` of this thread to the fleet; returns its listener
/// token. A bad URL throws a TypeError; an unreachable store or a refused
/// password arrives later as `fleetDegraded`.
#[napi(catch_unwind)]
pub fn fleet_join(env: Env, id: u32, options: FleetJoinOptions) -> Result<u32> {
    let Ok((slots, config, mapping)) = crate::table::with(id, |i| {
        (*i.breaker.cells(), *i.breaker.config(), i._mapping.clone())
    }) else {
        return crate::errors::throw(
            &env,
            crate::errors::Thrown::Type(format!("{id} is not a live breaker")),
        );
    };
    let key = slots.word(0) as *const _ as usize;
    let token = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed);
    let listener = Listener {
        token,
        env: env.raw() as usize,
        instance: id,
    };
    let mut guard = members();
    let map = guard.get_or_insert_with(HashMap::new);
    if let Some(member) = map.get_mut(&key) {
        member.listeners.push(listener);
        return Ok(token);
    }
    let agent_options = AgentOptions {
        cluster: options.cluster,
        command_timeout_ms: options.command_timeout as u64,
        reread_ms: options.refresh as u64,
        ..AgentOptions::default()
    };
    let spec = BreakerSpec {
        name: options.key.clone(),
        host_id: options.host.clone(),
        quorum: options.quorum,
        vote_window_ms: options.vote_window as u64,
        open_ms: options.open_ms as u64,
        max_open_ms: options.max_open_ms as u64,
        lease_ms: options.lease as u64,
    };
    let registered = Agent::shared(&options.url, agent_options)
        .and_then(|agent| agent.register(spec, Arc::new(move |event| sink(key, event))));
    let handle = match registered {
        Ok(handle) => handle,
        Err(error) => {
            drop(guard);
            let thrown = match error {
                FleetError::InvalidUrl { .. } => crate::errors::Thrown::Type(error.to_string()),
                FleetError::InvalidOption { .. } => crate::errors::Thrown::Range(error.to_string()),
                other => crate::errors::Thrown::Type(other.to_string()),
            };
            return crate::errors::throw(&env, thrown);
        }
    };
    let breaker = Breaker::new(slots, config).with_actor(FLEET_ACTOR, std::process::id());
    let noticed = breaker.generation();
    map.insert(
        key,
        Member {
            breaker,
            mapping,
            handle: Some(handle),
            listeners: vec![listener],
            host: options.host,
            quorum: options.quorum,
            connected: false,
            state: "unknown",
            version: String::new(),
            noticed,
            probing: None,
        },
    );
    Ok(token)
}

/// Removes the listeners `leaves` picks; a member left without any leaves
/// the fleet (its handle is dropped after the lock: the agent may be waiting
/// for it in `sink`, and the last handle stops the agent).
fn remove(leaves: impl Fn(&Listener) -> bool) {
    let mut gone = Vec::new();
    if let Some(map) = members().as_mut() {
        map.retain(|_, m| {
            m.listeners.retain(|l| !leaves(l));
            if m.listeners.is_empty() {
                gone.push(m.handle.take());
                false
            } else {
                true
            }
        });
    }
    drop(gone);
}

/// Breaker `token` leaves the fleet (dispose).
#[napi(catch_unwind)]
pub fn fleet_leave(token: u32) {
    remove(|l| l.token == token);
}

/// Breaker `instance` of `env` is being freed (collected, or disposed).
pub(crate) fn forget(env: usize, instance: u32) {
    remove(|l| l.env == env && l.instance == instance);
}

/// The env is going away: its listeners leave.
pub(crate) fn env_gone(env: usize) {
    remove(|l| l.env == env);
}

fn with_member<R>(token: u32, f: impl FnOnce(&mut Member) -> R) -> Option<R> {
    let mut guard = members();
    let member = guard
        .as_mut()?
        .values_mut()
        .find(|m| m.listeners.iter().any(|l| l.token == token))?;
    Some(f(member))
}

/// A transition was made through breaker `token`: a local opening (one the
/// fleet did not make, and not an isolation) is this host's trip vote. Only
/// ever called on a transition, never per call.
#[napi(catch_unwind)]
pub fn fleet_noticed(token: u32) {
    with_member(token, |m| {
        let current = m.breaker.generation();
        let mut tripped = false;
        for g in unseen(m.noticed, current) {
            if let Some(entry) = m.breaker.log_entry(g) {
                tripped |= entry.state == State::Open && entry.actor != FLEET_ACTOR;
            }
        }
        m.noticed = current;
        // An isolation opens the breaker too (logged like a trip), and is
        // noticed while it holds: that opening is no vote.
        if tripped && m.breaker.overrides().isolations == 0 {
            if let Some(h) = &m.handle {
                h.trip_vote();
            }
        }
    });
}

/// Operator actions on the whole fleet (the local effect is the caller's):
/// 0 isolate, 1 release an isolation, 2 reset, 3 disable, 4 enable.
#[napi(catch_unwind)]
pub fn fleet_op(token: u32, op: u32) {
    with_member(token, |m| {
        let Some(h) = &m.handle else { return };
        match op {
            0 => h.isolate(),
            1 => h.release_isolation(),
            2 => {
                m.breaker.fleet_release();
                h.reset();
            }
            3 => h.disable(true),
            4 => h.disable(false),
            _ => {}
        }
    });
}

/// `getStats().fleet`.
#[napi(object)]
pub struct FleetStats {
    pub host: String,
    pub connected: bool,
    /// 'open', 'closed', or 'unknown' before the store first answered.
    pub state: String,
    /// The fleet record's version (`epoch.seq`), '' before the first.
    pub version: String,
    pub quorum: u32,
    /// Whether the fleet holds this host OPEN now.
    pub held: bool,
}

#[napi(catch_unwind)]
pub fn fleet_stats(token: u32) -> Option<FleetStats> {
    with_member(token, |m| FleetStats {
        host: m.host.clone(),
        connected: m.connected,
        state: m.state.to_string(),
        version: m.version.clone(),
        quorum: m.quorum,
        held: m.breaker.fleet_held(),
    })
}

/// The generations after `seen` up to `current` that the transition log
/// may still hold (the last `LOG_ENTRIES`), oldest first: at most
/// `LOG_ENTRIES` of them, however far the generation moved. (It moves by
/// one per transition, but another thread or process may write anything
/// into it: scanning a jump of 2^30 entry by entry held the members' lock,
/// and every fleet call of the process, for seconds.)
fn unseen(seen: u32, current: u32) -> impl Iterator<Item = u32> {
    let count = current
        .wrapping_sub(seen)
        .min(breaker_core::layout::LOG_ENTRIES as u32);
    (0..count).map(move |k| current.wrapping_sub(count - 1 - k))
}

/// A lease's number in the FLEET_LEASE slot: its token hashed to 31 bits, never 0.
fn lease_number(lease: &Lease) -> i32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in lease.token.bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    ((h & 0x7fff_ffff) | 1) as i32
}

/// Runs on the agent's thread for every event of member `key`.
fn sink(key: usize, event: FleetEvent) {
    let mut out = Vec::new();
    let mut watch_probe = None;
    {
        let mut guard = members();
        let Some(m) = guard.as_mut().and_then(|map| map.get_mut(&key)) else {
            return;
        };
        let now = host_clock();
        match event {
            FleetEvent::Open { version, .. } => {
                m.connected = true;
                m.state = "open";
                m.version = version.to_string();
                let probing = m
                    .probing
                    .as_ref()
                    .is_some_and(|p| p.lease.version == version);
                if !probing && m.breaker.fleet_hold(now).is_some() {
                    m.changed(&mut out);
                }
            }
            FleetEvent::Closed {
                version, disabled, ..
            } => {
                m.connected = true;
                m.state = "closed";
                m.version = version.to_string();
                let mut changed = false;
                if m.breaker.overrides().disabled != disabled {
                    changed |= m.breaker.set_disabled(disabled, host_clock()).is_some();
                }
                changed |= m.breaker.fleet_close(now).is_some();
                if changed {
                    m.changed(&mut out);
                }
            }
            FleetEvent::ProbeGranted { lease } => {
                let number = lease_number(&lease);
                if let Some(episode) = m.breaker.fleet_probe(number, now) {
                    let lease_ms = lease.lease_ms;
                    m.probing = Some(Probing {
                        lease_number: number,
                        lease,
                    });
                    m.changed(&mut out);
                    watch_probe = Some((number, episode, lease_ms));
                }
            }
            FleetEvent::Degraded { reason } => {
                m.connected = false;
                m.breaker.fleet_release();
                for l in &m.listeners {
                    out.push((l.env, message(KIND_DEGRADED, l.token, Some(reason.clone()))));
                }
            }
            FleetEvent::Recovered => {
                m.connected = true;
                for l in &m.listeners {
                    out.push((l.env, message(KIND_RECOVERED, l.token, None)));
                }
            }
        }
    }
    send_all(out);
    if let Some((number, episode, lease_ms)) = watch_probe {
        let _ = std::thread::Builder::new()
            .name("breaker-probe".into())
            .stack_size(64 * 1024)
            .spawn(move || watch_episode(key, number, episode, lease_ms));
    }
}

/// Watches the fleet probe's half-open episode on this host (any process of
/// it may run the probe) and reports its end: CLOSED succeeded, OPEN failed.
/// If no probe ends it within the lease, the host is held OPEN again (the
/// store gives the lease to another host).
fn watch_episode(key: usize, number: i32, mut episode: u32, lease_ms: u64) {
    let deadline = Instant::now() + Duration::from_millis(lease_ms);
    loop {
        let mut out = Vec::new();
        let done = {
            let mut guard = members();
            let Some(m) = guard.as_mut().and_then(|map| map.get_mut(&key)) else {
                return;
            };
            if m.probing.as_ref().map(|p| p.lease_number) != Some(number) {
                return;
            }
            let mut result = None;
            let current = m.breaker.generation();
            // A generation behind the episode's was written by someone else
            // (another thread or process may write anything): nothing to read.
            let ahead = current.wrapping_sub(episode) < u32::MAX / 2;
            for g in unseen(episode, current).filter(|_| ahead) {
                match m.breaker.log_entry(g).map(|e| e.state) {
                    Some(State::Closed) => result = Some(true),
                    Some(State::Open) => result = Some(false),
                    Some(State::HalfOpen) => episode = g,
                    None => {}
                }
                if result.is_some() {
                    break;
                }
            }
            match result {
                Some(ok) => {
                    if let (Some(p), Some(h)) = (m.probing.take(), &m.handle) {
                        h.probe_result(&p.lease, ok);
                    }
                    m.breaker.fleet_end_lease(number);
                    true
                }
                None if Instant::now() >= deadline => {
                    m.probing = None;
                    m.breaker.fleet_end_lease(number);
                    if m.state == "open" && m.breaker.fleet_hold(host_clock()).is_some() {
                        m.changed(&mut out);
                    }
                    true
                }
                None => false,
            }
        };
        send_all(out);
        if done {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}
