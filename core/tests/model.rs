//! The core against a sequential reference model of SPEC.md.
//!
//! `Model` below is SPEC.md written as plain Rust (no atomics, no encoding):
//! proptest drives the core and the model with the same random operations
//! and checks that they agree on every admission decision, every transition,
//! every state reading and every counter. `PROPTEST_CASES=N` runs more cases
//! than the default [`DEFAULT_CASES`].
//!
//! The last tests replay, step by step, interleavings of two calls on one
//! shared memory (a `Cells` wrapper runs the second call at a chosen point of
//! the first), and check that the outcome is one the model allows for some
//! order of the two calls.
//!
//! Where SPEC.md is silent the model follows the decisions documented in
//! `breaker.rs`: a clock that goes back restarts the wait from the earlier
//! time; a probe's lease lasts `max(resetTimeout, 1)` ms; any success ends
//! the run of failures and any failure extends it, whatever the state; only
//! a failure reported with `on_failure` while CLOSED opens on the threshold.
#![cfg(not(loom))]

use breaker_core::layout::STATE;
use breaker_core::{
    claim_layout, Admission, Breaker, Cells, Config, OwnedSlots, Slots, State, Stripe, Ticket,
    Transition,
};
use proptest::prelude::*;
use std::cell::RefCell;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::atomic::{AtomicI32, AtomicU64};

const T0: u64 = 1_764_000_000_000; // a Date.now()-scale time
const DEFAULT_CASES: u32 = 512;

// ---------------------------------------------------------------------------
// The reference model
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ModelState {
    Closed,
    /// `since: None`: set OPEN from JavaScript and not seen by a call yet.
    Open {
        since: Option<u64>,
    },
    /// `lease`: when the episode's probe was admitted, if it has been.
    HalfOpen {
        episode: u64,
        lease: Option<u64>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    Run,
    Probe(u64),
    Reject,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Counters {
    requests: u64,
    successes: u64,
    failures: u64,
    rejections: u64,
    last_success_ms: u64,
    last_failure_ms: u64,
}

#[derive(Debug)]
struct Model {
    threshold: u32,
    timeout: u64,
    state: ModelState,
    episodes: u64,
    run: u32,
    counters: Counters,
}

impl Model {
    fn new(threshold: u32, timeout: u64) -> Model {
        Model {
            threshold,
            timeout,
            state: ModelState::Closed,
            episodes: 0,
            run: 0,
            counters: Counters::default(),
        }
    }

    fn new_episode(&mut self) {
        self.episodes += 1;
        self.state = ModelState::HalfOpen {
            episode: self.episodes,
            lease: None,
        };
    }

    fn reject(&mut self) -> Decision {
        self.counters.requests += 1;
        self.counters.rejections += 1;
        Decision::Reject
    }

    fn admit(&mut self, now: u64) -> Decision {
        loop {
            match self.state {
                ModelState::Closed => return Decision::Run,
                // An opening from JavaScript counts from its first sighting.
                ModelState::Open { since: None } => {
                    self.state = ModelState::Open { since: Some(now) }
                }
                // The clock went back: the wait starts over from now.
                ModelState::Open { since: Some(s) } if now < s => {
                    self.state = ModelState::Open { since: Some(now) }
                }
                ModelState::Open { since: Some(s) } if now - s < self.timeout => {
                    return self.reject()
                }
                ModelState::Open { .. } => self.new_episode(),
                ModelState::HalfOpen {
                    episode,
                    lease: None,
                } => {
                    self.state = ModelState::HalfOpen {
                        episode,
                        lease: Some(now),
                    };
                    return Decision::Probe(episode);
                }
                ModelState::HalfOpen {
                    episode,
                    lease: Some(s),
                } if now < s => {
                    self.state = ModelState::HalfOpen {
                        episode,
                        lease: Some(now),
                    }
                }
                ModelState::HalfOpen { lease: Some(s), .. } if now - s < self.timeout.max(1) => {
                    return self.reject()
                }
                // The probe's lease ran out: a new episode, a new probe.
                ModelState::HalfOpen { .. } => self.new_episode(),
            }
        }
    }

    fn count_failure(&mut self, now: u64) {
        self.counters.requests += 1;
        self.counters.failures += 1;
        self.counters.last_failure_ms = self.counters.last_failure_ms.max(now);
        self.run += 1;
    }

    fn on_successes(&mut self, count: u64, now: u64) {
        self.publish_successes(count, now);
        if count != 0 {
            self.run = 0;
        }
    }

    fn publish_successes(&mut self, count: u64, now: u64) {
        if count != 0 {
            self.counters.requests += count;
            self.counters.successes += count;
            self.counters.last_success_ms = self.counters.last_success_ms.max(now);
        }
    }

    fn on_failure(&mut self, now: u64) -> Option<Transition> {
        self.count_failure(now);
        if self.state == ModelState::Closed && self.run >= self.threshold {
            self.state = ModelState::Open { since: Some(now) };
            return Some(Transition::Opened);
        }
        None
    }

    fn on_probe_result(&mut self, episode: u64, succeeded: bool, now: u64) -> Option<Transition> {
        if succeeded {
            self.on_successes(1, now);
        } else {
            self.count_failure(now);
        }
        let ModelState::HalfOpen {
            episode: current, ..
        } = self.state
        else {
            return None;
        };
        if current != episode {
            return None;
        }
        if succeeded {
            self.state = ModelState::Closed;
            Some(Transition::Closed)
        } else {
            self.state = ModelState::Open { since: Some(now) };
            Some(Transition::Opened)
        }
    }

    fn force_half_open(&mut self) -> Transition {
        self.new_episode();
        Transition::HalfOpened
    }

    /// `Atomics.store(array, STATE, OPEN)`: a no-op on an OPEN breaker.
    fn js_store_open(&mut self) {
        if !matches!(self.state, ModelState::Open { .. }) {
            self.state = ModelState::Open { since: None };
        }
    }

    /// `getState()`.
    fn state(&mut self, now: u64) -> State {
        match self.state {
            ModelState::Closed => State::Closed,
            ModelState::HalfOpen { .. } => State::HalfOpen,
            ModelState::Open { since } => {
                let since = since.unwrap_or(now);
                self.state = ModelState::Open { since: Some(since) };
                if now >= since && now - since >= self.timeout {
                    State::HalfOpen
                } else {
                    State::Open
                }
            }
        }
    }

    /// What `Atomics.load(array, STATE)` reads.
    fn raw_state(&self) -> i32 {
        match self.state {
            ModelState::Closed => 0,
            ModelState::Open { .. } => 1,
            ModelState::HalfOpen { .. } => 2,
        }
    }
}

// ---------------------------------------------------------------------------
// Operations and the comparison
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum Step {
    Ms(u64),
    Timeout,
    TimeoutMinusOne,
    TimeoutPlusOne,
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Admit,
    Success,
    /// A batch of successes published at once (`on_successes`).
    Successes(u64),
    /// Successes published after the fact (`publish_successes`): counted,
    /// the run of failures left alone.
    Publish(u64),
    Failure,
    /// The result of the `pick`-th probe admitted so far (modulo their number).
    ProbeResult {
        pick: usize,
        succeeded: bool,
    },
    ForceHalfOpen,
    JsStoreOpen,
    ReadState,
    Advance(Step),
    ClockBack(u64),
}

fn op() -> impl Strategy<Value = Op> {
    let step = prop_oneof![
        (0u64..3000).prop_map(Step::Ms),
        Just(Step::Timeout),
        Just(Step::TimeoutMinusOne),
        Just(Step::TimeoutPlusOne),
        Just(Step::Ms(1)),
    ];
    prop_oneof![
        5 => Just(Op::Admit),
        2 => Just(Op::Success),
        1 => (1u64..5).prop_map(Op::Successes),
        1 => (0u64..5).prop_map(Op::Publish),
        4 => Just(Op::Failure),
        3 => (any::<usize>(), any::<bool>())
            .prop_map(|(pick, succeeded)| Op::ProbeResult { pick, succeeded }),
        1 => Just(Op::ForceHalfOpen),
        1 => Just(Op::JsStoreOpen),
        2 => Just(Op::ReadState),
        5 => step.prop_map(Op::Advance),
        1 => (1u64..200).prop_map(Op::ClockBack),
    ]
}

fn timeout() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0u64), Just(1), Just(2), Just(100), 0u64..5000]
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES)
}

fn totals_of<C: Cells>(b: &Breaker<C>) -> Counters {
    let t = b.totals();
    Counters {
        requests: t.requests,
        successes: t.successes,
        failures: t.failures,
        rejections: t.rejections,
        last_success_ms: t.last_success_ms,
        last_failure_ms: t.last_failure_ms,
    }
}

fn config(threshold: u32, timeout: u64) -> Config {
    Config::new(threshold as f64, timeout as f64).expect("valid config")
}

/// Runs `ops` on a fresh core and a fresh model; fails at the first
/// disagreement, naming the step.
fn run_against_model(
    threshold: u32,
    timeout: u64,
    start: u64,
    ops: &[(Op, usize)],
) -> Result<(), TestCaseError> {
    let memory = OwnedSlots::new();
    let slots = Slots::new(memory.slots()).expect("owned slots are valid");
    claim_layout(&slots).expect("fresh memory");
    let core = Breaker::new(slots, config(threshold, timeout));
    let mut model = Model::new(threshold, timeout);
    let mut now = start;
    // Every probe admitted so far: the core's ticket and the model's episode.
    let mut probes: Vec<(Ticket, u64)> = Vec::new();

    for (i, &(op, thread)) in ops.iter().enumerate() {
        let stripe = Stripe::new(thread);
        match op {
            Op::Admit => {
                let got = core.admit(now, stripe);
                let want = model.admit(now);
                match (got, want) {
                    (Admission::Run, Decision::Run) | (Admission::Reject, Decision::Reject) => {}
                    (Admission::Probe(ticket), Decision::Probe(episode)) => {
                        prop_assert!(
                            probes.iter().all(|(t, _)| *t != ticket),
                            "step {i}: ticket {ticket:?} handed out twice"
                        );
                        probes.push((ticket, episode));
                    }
                    _ => prop_assert!(
                        false,
                        "step {i} {op:?} at {now}: core {got:?}, model {want:?}"
                    ),
                }
            }
            Op::Success => {
                core.on_success(now, stripe);
                model.on_successes(1, now);
            }
            Op::Successes(count) => {
                core.on_successes(count, now, stripe);
                model.on_successes(count, now);
            }
            Op::Publish(count) => {
                core.publish_successes(count, now, stripe);
                model.publish_successes(count, now);
            }
            Op::Failure => {
                let got = core.on_failure(now, stripe);
                let want = model.on_failure(now);
                prop_assert_eq!(got, want, "step {} {:?} at {}", i, op, now);
            }
            Op::ProbeResult { pick, succeeded } => {
                if probes.is_empty() {
                    continue;
                }
                let (ticket, episode) = probes[pick % probes.len()];
                let got = core.on_probe_result(ticket, succeeded, now, stripe);
                let want = model.on_probe_result(episode, succeeded, now);
                prop_assert_eq!(
                    got,
                    want,
                    "step {} {:?} ticket {:?} at {}",
                    i,
                    op,
                    ticket,
                    now
                );
            }
            Op::ForceHalfOpen => {
                prop_assert_eq!(core.force_half_open(), model.force_half_open());
            }
            Op::JsStoreOpen => {
                // A plain 32-bit store into the low half, as JavaScript does.
                memory.slots()[STATE].store(State::Open as i32, SeqCst);
                model.js_store_open();
            }
            Op::ReadState => {
                let got = core.state(now);
                let want = model.state(now);
                prop_assert_eq!(got, want, "step {} getState() at {}", i, now);
            }
            Op::Advance(step) => {
                now += match step {
                    Step::Ms(ms) => ms,
                    Step::Timeout => timeout,
                    Step::TimeoutMinusOne => timeout.saturating_sub(1),
                    Step::TimeoutPlusOne => timeout + 1,
                }
            }
            Op::ClockBack(ms) => now -= ms,
        }
        let raw = memory.slots()[STATE].load(SeqCst);
        prop_assert_eq!(raw, model.raw_state(), "step {} {:?}: STATE slot", i, op);
        prop_assert_eq!(
            core.consecutive_failures(),
            model.run,
            "step {} {:?}: FAILURE_COUNT",
            i,
            op
        );
        prop_assert_eq!(
            totals_of(&core),
            model.counters,
            "step {} {:?}: counters",
            i,
            op
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        // Persisted failures would land in the source tree; a failure prints
        // its minimal case instead.
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_core_agrees_with_the_reference_model(
        threshold in 1u32..=5,
        timeout in timeout(),
        start in T0..T0 + 1_000_000,
        ops in prop::collection::vec((op(), 0usize..10), 1..120),
    ) {
        run_against_model(threshold, timeout, start, &ops)?;
    }
}

/// A fixed sequence through every state, so a broken model or core fails
/// here too with a readable step, independent of the random cases.
#[test]
fn a_full_cycle_agrees_with_the_model() {
    use Op::*;
    let ops = [
        Failure,
        ReadState,
        Failure,
        Admit,
        Advance(Step::TimeoutMinusOne),
        Admit,
        ReadState,
        Advance(Step::Ms(1)),
        ReadState,
        Admit,
        Admit,
        ProbeResult {
            pick: 0,
            succeeded: false,
        },
        Advance(Step::Timeout),
        Admit,
        Advance(Step::Timeout),
        Admit,
        ProbeResult {
            pick: 0,
            succeeded: true,
        },
        ProbeResult {
            pick: 1,
            succeeded: true,
        },
        Admit,
        JsStoreOpen,
        Admit,
        ClockBack(50),
        Admit,
        ForceHalfOpen,
        Admit,
        Success,
        Failure,
        Successes(3),
    ];
    let ops: Vec<_> = ops.iter().enumerate().map(|(i, op)| (*op, i)).collect();
    run_against_model(2, 100, T0, &ops).expect("core and model agree");
}

// ---------------------------------------------------------------------------
// Interleavings replayed step by step
// ---------------------------------------------------------------------------

/// Cells that run `hook` (another call on the same memory) just before the
/// first time the core asks for the 64-bit value at `slot`, that is, just
/// before its first atomic operation on it.
struct Interrupted<'a> {
    slots: Slots<'a>,
    slot: usize,
    hook: RefCell<Option<Box<dyn FnOnce() + 'a>>>,
}

impl Cells for Interrupted<'_> {
    fn word(&self, index: usize) -> &AtomicI32 {
        self.slots.word(index)
    }

    fn wide(&self, index: usize) -> &AtomicU64 {
        if index == self.slot {
            let hook = self.hook.borrow_mut().take();
            if let Some(hook) = hook {
                hook();
            }
        }
        self.slots.wide(index)
    }
}

/// Threshold 1, OPEN at T0, probe admitted at T0 + 100. Returns the memory,
/// a plain breaker over it, and the probe's ticket.
fn probing(memory: &OwnedSlots) -> (Breaker<Slots<'_>>, Ticket) {
    let slots = Slots::new(memory.slots()).expect("owned slots are valid");
    claim_layout(&slots).expect("fresh memory");
    let b = Breaker::new(slots, config(1, 100));
    assert_eq!(b.on_failure(T0, Stripe::new(0)), Some(Transition::Opened));
    let Admission::Probe(ticket) = b.admit(T0 + 100, Stripe::new(0)) else {
        panic!("expected a probe");
    };
    (b, ticket)
}

/// The two orders SPEC.md allows for a probe's success and a failure
/// reported at about the same time, as (STATE slot, FAILURE_COUNT).
fn allowed_outcomes() -> [(i32, u32); 2] {
    let mut outcomes = [(0, 0); 2];
    for (i, failure_first) in [true, false].into_iter().enumerate() {
        let mut m = Model::new(1, 100);
        m.on_failure(T0);
        let Decision::Probe(episode) = m.admit(T0 + 100) else {
            unreachable!()
        };
        if failure_first {
            m.on_failure(T0 + 100);
        }
        m.on_probe_result(episode, true, T0 + 100);
        if !failure_first {
            m.on_failure(T0 + 100);
        }
        outcomes[i] = (m.raw_state(), m.run);
    }
    outcomes
}

/// The probe's success resets the run of failures, a failure reported by
/// another thread is counted and sees HALF_OPEN, then the probe closes the
/// breaker. The failure came after the reset, so it counts in the new run
/// and, reaching the threshold, must open the breaker: CLOSED with a run at
/// the threshold is no outcome of any order.
#[test]
fn a_failure_counted_while_the_probe_closes_still_opens_the_breaker() {
    let memory = OwnedSlots::new();
    let (plain, ticket) = probing(&memory);
    let probe = Breaker::new(
        Interrupted {
            slots: *plain.cells(),
            slot: STATE,
            hook: RefCell::new(Some(Box::new(|| {
                assert_eq!(plain.on_failure(T0 + 100, Stripe::new(1)), None);
            }))),
        },
        config(1, 100),
    );
    probe.on_probe_result(ticket, true, T0 + 100, Stripe::new(0));
    let outcome = (
        memory.slots()[STATE].load(SeqCst),
        plain.consecutive_failures(),
    );
    assert!(
        allowed_outcomes().contains(&outcome),
        "(STATE, FAILURE_COUNT) = {outcome:?}, allowed {:?}",
        allowed_outcomes()
    );
}

/// A failure is counted before the probe's success resets the run, and
/// checks the state after the probe closed the breaker. It opens it: the
/// state is the one of "probe, then failure". (FAILURE_COUNT is 0 here, the
/// reset having come after the count: a count that lags one failure behind
/// while OPEN, which decides nothing.)
#[test]
fn a_failure_that_sees_the_close_opens_the_breaker() {
    let memory = OwnedSlots::new();
    let (plain, ticket) = probing(&memory);
    let late = Breaker::new(
        Interrupted {
            slots: *plain.cells(),
            slot: STATE,
            hook: RefCell::new(Some(Box::new(|| {
                plain.on_probe_result(ticket, true, T0 + 100, Stripe::new(0));
            }))),
        },
        config(1, 100),
    );
    assert_eq!(
        late.on_failure(T0 + 100, Stripe::new(1)),
        Some(Transition::Opened)
    );
    assert_eq!(memory.slots()[STATE].load(SeqCst), State::Open as i32);
}
