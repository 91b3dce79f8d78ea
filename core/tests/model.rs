//! The core against a sequential reference model of SPEC.md and docs/.
//!
//! `Model` below is the contract written as plain Rust (no atomics, no
//! encoding): SPEC.md for the seed's behaviour, and docs/policies.md and
//! docs/decisions.md ("Decisions where the contract left room") for the policies
//! (several probes at once, a success threshold, backoff, isolation epochs,
//! reset, disable, a count window's failure rate, slow and filtered calls,
//! timeouts). proptest drives the core and the model with the same random
//! settings and operations and checks that they agree on every admission
//! decision and transition, and after every operation on the `STATE` slot,
//! `FAILURE_COUNT`, every total, the open period (`open_ms`), the switches
//! (isolations, disabled, failed probes) and the window's content.
//! `PROPTEST_CASES=N` runs more cases than the default [`DEFAULT_CASES`].
//!
//! The last tests replay, step by step, interleavings of two calls on one
//! shared memory (a `Cells` wrapper runs the second call at a chosen point of
//! the first), and check that the outcome is one the model allows for some
//! order of the two calls.
//!
//! Where the documents are silent the model follows the decisions documented
//! in `breaker.rs`'s doc comments: the model decides on the host's
//! monotonic clock alone, and the wall clock (stepped on its own by an hour
//! or a little) only sets the last success and failure times; a monotonic
//! clock that goes back (a breaker file kept across a reboot) restarts the
//! wait from the earlier time; a probe's lease lasts `max(resetTimeout, 1)` ms;
//! any success ends the run of failures and any failure extends it, whatever
//! the state; only a failure (or a slow success) reported while CLOSED
//! opens; marks are counted beside the outcome they come with. Readings of
//! the docs that are this file's own are marked "Reading:" below.
#![cfg(not(loom))]

use breaker_core::features::claim_features;
use breaker_core::layout::{STATE, STRIPES};
use breaker_core::WALL_STEP_MS;
use breaker_core::{
    claim_layout, Admission, Breaker, Cells, Config, Now, OwnedSlots, Slots, State, Stripe, Ticket,
    Transition,
};
use breaker_core::{Marks, Policies};
use proptest::prelude::*;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::atomic::{AtomicI32, AtomicU64};

const T0: u64 = 1_764_000_000_000; // a Date.now()-scale time
const DEFAULT_CASES: u32 = 512;
const HOUR_MS: i64 = 3_600_000;

/// How the lease of a half-open episode with several probes is read.
///
/// The README used to say ("Policies"): "A probe whose thread died holds its
/// place for `resetTimeout` (the lease), after which a new half-open episode
/// starts." Read literally, every probe's lease runs from its own admission, so a
/// full episode starts over once its *oldest* running probe is older than
/// the lease (`true`). The core runs one lease per episode, from its
/// *latest* probe admission (`admit`: "the probes' lease ran out"), so a
/// hung probe holds its place for as long as newer probes keep arriving
/// (`false`). They differ only with `halfOpenMaxCalls` above 1. Minimal
/// case (threshold 1, resetTimeout 0 so the lease is 1 ms, 2 probes):
/// `transitionToHalfOpen()` at t, probe A admitted at t, then at t + 1 probe
/// B admitted and one more caller: A's lease has run out, so the literal
/// reading starts a new episode and admits it as a probe; the core rejects
/// it (B was admitted 0 ms ago). docs/decisions.md now states the core's rule
/// ("until `resetTimeout` has passed since the latest probe of the episode
/// was admitted"). Set to `true` to check the literal reading.
const LEASE_RUNS_FROM_EACH_PROBE: bool = false;

// ---------------------------------------------------------------------------
// The settings
// ---------------------------------------------------------------------------

/// A count-window failure-rate policy.
#[derive(Debug, Clone, Copy, PartialEq)]
struct RateSetup {
    percent: u32,
    /// `None`: the default (10, or the window's size if smaller).
    minimum: Option<u32>,
    window: u32,
    /// An explicit `failureThreshold` too: either opens.
    consecutive_too: bool,
}

/// Random settings: the seed's two, and optionally each policy.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Setup {
    threshold: u32,
    timeout: u64,
    half_open_max_calls: Option<u32>,
    success_threshold: Option<u32>,
    /// `maxResetTimeout` and `backoffMultiplier` (`None`: the default, 2).
    backoff: Option<(u64, Option<u32>)>,
    rate: Option<RateSetup>,
}

impl Setup {
    fn plain(threshold: u32, timeout: u64) -> Setup {
        Setup {
            threshold,
            timeout,
            half_open_max_calls: None,
            success_threshold: None,
            backoff: None,
            rate: None,
        }
    }

    fn config(&self) -> Config {
        let mut policies = Policies {
            half_open_max_calls: self.half_open_max_calls.map(f64::from),
            success_threshold: self.success_threshold.map(f64::from),
            max_reset_timeout: self.backoff.map(|(max, _)| max as f64),
            backoff_multiplier: self.backoff.and_then(|(_, m)| m).map(f64::from),
            ..Policies::default()
        };
        if let Some(rate) = self.rate {
            policies.failure_rate_threshold = Some(f64::from(rate.percent));
            policies.minimum_calls = rate.minimum.map(f64::from);
            policies.window_size = Some(f64::from(rate.window));
            policies.consecutive_too = rate.consecutive_too;
        }
        Config::with_policies(self.threshold as f64, self.timeout as f64, &policies)
            .expect("valid config")
    }
}

// ---------------------------------------------------------------------------
// The reference model
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
enum ModelState {
    Closed,
    /// `since: None`: set OPEN from JavaScript and not seen by a call yet.
    Open {
        since: Option<u64>,
    },
    HalfOpen {
        episode: u64,
        /// The probes of this episode still running: (id, admitted at).
        running: Vec<(u64, u64)>,
        /// Probe successes in this episode.
        succeeded: u32,
        /// When the latest probe of this episode was admitted.
        latest: Option<u64>,
    },
}

/// A probe admitted by the model: which one, and of which episode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Probe {
    id: u64,
    episode: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    Run,
    Probe(Probe),
    Reject,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Counters {
    requests: u64,
    successes: u64,
    failures: u64,
    rejections: u64,
    timeouts: u64,
    fallbacks: u64,
    slow_calls: u64,
    filtered: u64,
    probes: u64,
    last_success_ms: u64,
    last_failure_ms: u64,
}

#[derive(Debug)]
struct Model {
    // Settings, as docs/policies.md defines them.
    /// Consecutive failures that open; `None` when only the rate does
    /// (a rate policy without an explicit threshold).
    threshold: Option<u32>,
    timeout: u64,
    max_timeout: u64,
    multiplier: u64,
    half_open_max_calls: u32,
    success_threshold: u32,
    /// (percent, minimum calls, window size).
    rate: Option<(u32, u32, u32)>,

    state: ModelState,
    episodes: u64,
    probes_admitted: u64,
    run: u32,
    /// Failed probes since the breaker last closed.
    reopenings: u32,
    isolations: u32,
    /// Bumped by `reset()`: isolations of an older epoch release nothing.
    epoch: u32,
    disabled: bool,
    /// The last calls recorded, `true` for a bad one (failure or slow).
    window: VecDeque<bool>,
    counters: Counters,
    /// The wall clock of the current operation: only stored, never decides.
    wall: u64,
    /// The stripe of the current operation.
    stripe: usize,
    /// The latest success each stripe recorded.
    last_success: [u64; STRIPES],
}

/// The time a wall-clock slot holds after a call at `wall`: raised to it,
/// or brought back to it when it lies more than `WALL_STEP_MS` ahead (the
/// wall clock was stepped back since).
fn wall_time_after(held: u64, wall: u64) -> u64 {
    if held < wall || held > wall + WALL_STEP_MS {
        wall
    } else {
        held
    }
}

impl Model {
    fn new(setup: &Setup) -> Model {
        let rate = setup.rate.map(|r| {
            // The default minimum (10) shrinks to a smaller count window.
            let minimum = r.minimum.unwrap_or(10.min(r.window));
            (r.percent, minimum, r.window)
        });
        let threshold = match setup.rate {
            Some(r) if !r.consecutive_too => None,
            _ => Some(setup.threshold),
        };
        let (max_timeout, multiplier) = match setup.backoff {
            Some((max, multiplier)) => (max, u64::from(multiplier.unwrap_or(2))),
            None => (setup.timeout, 2),
        };
        Model {
            threshold,
            timeout: setup.timeout,
            max_timeout,
            multiplier,
            half_open_max_calls: setup.half_open_max_calls.unwrap_or(1),
            success_threshold: setup.success_threshold.unwrap_or(1),
            rate,
            state: ModelState::Closed,
            episodes: 0,
            probes_admitted: 0,
            run: 0,
            reopenings: 0,
            isolations: 0,
            epoch: 0,
            disabled: false,
            window: VecDeque::new(),
            counters: Counters::default(),
            wall: 0,
            stripe: 0,
            last_success: [0; STRIPES],
        }
    }

    /// The open period: `resetTimeout` times the multiplier once per failed
    /// probe since the last close, at most `maxResetTimeout`.
    fn open_ms(&self) -> u64 {
        let mut ms = u128::from(self.timeout);
        for _ in 0..self.reopenings {
            ms = (ms * u128::from(self.multiplier)).min(u128::from(self.max_timeout));
        }
        ms as u64
    }

    fn lease_ms(&self) -> u64 {
        self.timeout.max(1)
    }

    fn new_episode(&mut self) {
        self.episodes += 1;
        self.state = ModelState::HalfOpen {
            episode: self.episodes,
            running: Vec::new(),
            succeeded: 0,
            latest: None,
        };
    }

    fn reject(&mut self) -> Decision {
        self.counters.requests += 1;
        self.counters.rejections += 1;
        Decision::Reject
    }

    fn admit(&mut self, now: u64) -> Decision {
        // Isolation wins over everything; then a disabled breaker runs
        // every call, whatever its state.
        if self.isolations > 0 {
            return self.reject();
        }
        if self.disabled {
            return Decision::Run;
        }
        let open_ms = self.open_ms();
        let lease_ms = self.lease_ms();
        let max_calls = self.half_open_max_calls as usize;
        loop {
            match &mut self.state {
                ModelState::Closed => return Decision::Run,
                // An opening from JavaScript counts from its first sighting.
                ModelState::Open { since: None } => {
                    self.state = ModelState::Open { since: Some(now) }
                }
                // The clock went back: the wait starts over from now.
                ModelState::Open { since: Some(s) } if now < *s => *s = now,
                ModelState::Open { since: Some(s) } if now - *s < open_ms => return self.reject(),
                ModelState::Open { .. } => self.new_episode(),
                ModelState::HalfOpen {
                    episode,
                    running,
                    latest,
                    ..
                } => {
                    if running.len() < max_calls {
                        let probe = Probe {
                            id: self.probes_admitted,
                            episode: *episode,
                        };
                        running.push((probe.id, now));
                        *latest = Some(now);
                        self.probes_admitted += 1;
                        self.counters.probes += 1;
                        return Decision::Probe(probe);
                    }
                    // Every place is taken: wait for the lease.
                    let held_since = if LEASE_RUNS_FROM_EACH_PROBE {
                        for (_, at) in running.iter_mut() {
                            *at = (*at).min(now); // the clock went back
                        }
                        running.iter().map(|&(_, at)| at).min()
                    } else {
                        latest.as_mut().map(|at| {
                            *at = (*at).min(now);
                            *at
                        })
                    };
                    let held_since = held_since.expect("a full episode admitted a probe");
                    if now - held_since < lease_ms {
                        return self.reject();
                    }
                    // The lease ran out: a new episode, new probes.
                    self.new_episode();
                }
            }
        }
    }

    /// May a condition (failures, the rate) open the breaker now?
    fn may_trip(&self) -> bool {
        self.state == ModelState::Closed && !self.disabled && self.isolations == 0
    }

    fn open_now(&mut self, now: u64) -> Option<Transition> {
        self.state = ModelState::Open { since: Some(now) };
        // "an opening by failures while CLOSED uses resetTimeout"
        self.reopenings = 0;
        Some(Transition::Opened)
    }

    fn record(&mut self, good: u64, bad: bool) {
        let Some((_, _, size)) = self.rate else {
            return;
        };
        let entries = std::iter::repeat_n(false, good as usize).chain(bad.then_some(true));
        for entry in entries {
            self.window.push_back(entry);
            if self.window.len() > size as usize {
                self.window.pop_front();
            }
        }
    }

    /// (calls, bad calls) in the window; `None` without a rate policy.
    fn window_counts(&self) -> Option<(u64, u64)> {
        self.rate?;
        let bad = self.window.iter().filter(|&&bad| bad).count();
        Some((self.window.len() as u64, bad as u64))
    }

    /// The window holds `minimumCalls` calls and this share of them is bad.
    fn rate_reached(&self) -> bool {
        let Some((percent, minimum, _)) = self.rate else {
            return false;
        };
        let (calls, bad) = self.window_counts().expect("a window");
        calls >= u64::from(minimum) && bad * 100 >= u64::from(percent) * calls
    }

    fn count_marks(&mut self, marks: Marks) {
        let c = &mut self.counters;
        c.timeouts += u64::from(marks.timed_out);
        c.fallbacks += u64::from(marks.fallback);
        c.slow_calls += u64::from(marks.slow);
        c.filtered += u64::from(marks.filtered);
    }

    fn count_failure(&mut self) {
        self.counters.requests += 1;
        self.counters.failures += 1;
        self.counters.last_failure_ms = wall_time_after(self.counters.last_failure_ms, self.wall);
        self.run += 1;
    }

    fn count_successes(&mut self, count: u64) {
        if count != 0 {
            self.counters.requests += count;
            self.counters.successes += count;
            let held = &mut self.last_success[self.stripe];
            *held = wall_time_after(*held, self.wall);
            self.counters.last_success_ms = self.last_success.iter().copied().max().unwrap_or(0);
        }
    }

    fn on_successes(&mut self, count: u64) {
        self.count_successes(count);
        self.record(count, false);
        if count != 0 {
            self.run = 0;
        }
    }

    /// Successes published late: counted and in the window ("A thread's
    /// plain successes reach the window when they are published"), the run
    /// of failures left alone.
    fn publish_successes(&mut self, count: u64) {
        self.count_successes(count);
        self.record(count, false);
    }

    /// A slow success is bad for the rate (and may open the breaker); an
    /// error the filter accepted is a success for everything.
    fn on_marked_success(&mut self, marks: Marks, now: u64) -> Option<Transition> {
        self.count_successes(1);
        self.count_marks(marks);
        self.run = 0;
        self.record(u64::from(!marks.slow), marks.slow);
        if marks.slow && self.may_trip() && self.rate_reached() {
            return self.open_now(now);
        }
        None
    }

    fn on_failure(&mut self, now: u64) -> Option<Transition> {
        self.on_marked_failure(Marks::default(), now)
    }

    /// A slow call that also fails counts once (in the window), as a failure.
    fn on_marked_failure(&mut self, marks: Marks, now: u64) -> Option<Transition> {
        self.count_marks(marks);
        self.count_failure();
        self.record(0, true);
        let consecutive = self.threshold.is_some_and(|t| self.run >= t);
        if self.may_trip() && (consecutive || self.rate_reached()) {
            return self.open_now(now);
        }
        None
    }

    /// Probes are judged by `successThreshold`, not the rate: they are not
    /// in the window. Any probe failure reopens, and grows the backoff.
    fn on_probe_result(
        &mut self,
        probe: Probe,
        succeeded: bool,
        marks: Marks,
        now: u64,
    ) -> Option<Transition> {
        self.count_marks(marks);
        if succeeded {
            self.count_successes(1);
            self.run = 0;
        } else {
            self.count_failure();
        }
        let success_threshold = self.success_threshold;
        let ModelState::HalfOpen {
            episode,
            running,
            succeeded: successes,
            ..
        } = &mut self.state
        else {
            return None;
        };
        if *episode != probe.episode {
            return None;
        }
        if !succeeded {
            self.state = ModelState::Open { since: Some(now) };
            self.reopenings += 1;
            return Some(Transition::Opened);
        }
        *successes += 1;
        // A success frees the probe's place for the next probe.
        running.retain(|&(id, _)| id != probe.id);
        if *successes >= success_threshold {
            self.close()
        } else {
            None
        }
    }

    /// Closes and starts over: failure run 0, backoff from `resetTimeout`,
    /// the window emptied. Reading: every close (a probe's, `reset()`, the
    /// last release, `disable()`) starts over, also on a breaker CLOSED
    /// already.
    fn close(&mut self) -> Option<Transition> {
        let was_closed = self.state == ModelState::Closed;
        self.state = ModelState::Closed;
        self.run = 0;
        self.reopenings = 0;
        self.window.clear();
        (!was_closed).then_some(Transition::Closed)
    }

    /// `transitionToHalfOpen()`: an isolated breaker stays OPEN (no
    /// transition); otherwise a new episode whose probes are the next callers.
    fn force_half_open(&mut self) -> Option<Transition> {
        if self.isolations > 0 {
            return None; // held OPEN already
        }
        self.new_episode();
        Some(Transition::HalfOpened)
    }

    /// `Atomics.store(array, STATE, OPEN)`: a no-op on an OPEN breaker.
    fn js_store_open(&mut self) {
        if !matches!(self.state, ModelState::Open { .. }) {
            self.state = ModelState::Open { since: None };
        }
    }

    /// `isolate()`: OPEN (from whatever state) until released; returns the
    /// epoch its handle belongs to.
    fn isolate(&mut self, now: u64) -> Option<(u32, Option<Transition>)> {
        if self.isolations == breaker_core::MAX_ISOLATIONS {
            return None;
        }
        self.isolations += 1;
        if matches!(self.state, ModelState::Open { .. }) {
            return Some((self.epoch, None));
        }
        self.state = ModelState::Open { since: Some(now) };
        Some((self.epoch, Some(Transition::Opened)))
    }

    /// Releases one isolation of `epoch`; the last one closes the breaker.
    fn release_isolation(&mut self, epoch: u32) -> Option<Transition> {
        if epoch != self.epoch || self.isolations == 0 {
            return None;
        }
        self.isolations -= 1;
        if self.isolations == 0 {
            self.close()
        } else {
            None
        }
    }

    /// Closes and starts over, isolations cleared (a new epoch).
    fn reset(&mut self) -> Option<Transition> {
        self.epoch += 1;
        self.isolations = 0;
        self.close()
    }

    /// `disable()` closes a breaker that is not isolated; `enable()` changes
    /// no state.
    fn set_disabled(&mut self, disabled: bool) -> Option<Transition> {
        self.disabled = disabled;
        if disabled && self.isolations == 0 {
            self.close()
        } else {
            None
        }
    }

    /// `getState()`: HALF_OPEN as soon as a call would be admitted as a probe.
    /// Reading: the state in shared memory, whether or not disabled.
    fn state(&mut self, now: u64) -> State {
        if self.isolations > 0 {
            return State::Open;
        }
        let open_ms = self.open_ms();
        match self.state {
            ModelState::Closed => State::Closed,
            ModelState::HalfOpen { .. } => State::HalfOpen,
            ModelState::Open { since } => {
                let since = since.unwrap_or(now);
                self.state = ModelState::Open { since: Some(since) };
                if now >= since && now - since >= open_ms {
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
    /// The current open period (backoff included), one short, one past.
    OpenPeriod,
    OpenPeriodMinusOne,
    OpenPeriodPlusOne,
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
    /// A success that was slow and/or an error the filter accepted.
    MarkedSuccess {
        slow: bool,
        filtered: bool,
    },
    /// A failure that timed out, was answered by a fallback, was slow.
    MarkedFailure {
        timed_out: bool,
        fallback: bool,
        slow: bool,
    },
    /// A fallback answered a rejected call.
    Fallback,
    /// The result of the `pick`-th probe still running (modulo their
    /// number), of the current episode or an ended one, with its marks.
    ProbeResult {
        pick: usize,
        succeeded: bool,
        marks: Marks,
    },
    ForceHalfOpen,
    JsStoreOpen,
    ReadState,
    Isolate,
    /// Releases the isolation of the `pick`-th handle ever taken (modulo
    /// their number): current, from before a reset, or released already.
    Release(usize),
    Reset,
    SetDisabled(bool),
    Advance(Step),
    /// The monotonic clock goes back (only a breaker file kept across a
    /// reboot sees that): the wall clock stays.
    ClockBack(u64),
    /// The wall clock alone is stepped (by an hour, or a little): no
    /// decision may change.
    WallStep(i64),
}

fn marks_of(succeeded: bool, a: bool, b: bool, c: bool) -> Marks {
    if succeeded {
        Marks {
            slow: a,
            filtered: b,
            ..Marks::default()
        }
    } else {
        Marks {
            timed_out: a,
            fallback: b,
            slow: c,
            ..Marks::default()
        }
    }
}

/// One operation. Without `manual`, the operator's ones (isolate, release,
/// reset, disable, forced half-open, `STATE` from JavaScript) become
/// admissions, so half the cases go deep into probes, backoff and the window.
fn op(manual: bool) -> impl Strategy<Value = Op> {
    let step = prop_oneof![
        (0u64..3000).prop_map(Step::Ms),
        Just(Step::Timeout),
        Just(Step::TimeoutMinusOne),
        Just(Step::TimeoutPlusOne),
        Just(Step::OpenPeriod),
        Just(Step::OpenPeriodMinusOne),
        Just(Step::OpenPeriodPlusOne),
        Just(Step::Ms(1)),
    ];
    let flags = || (any::<bool>(), any::<bool>(), any::<bool>());
    let any_op = prop_oneof![
        12 => Just(Op::Admit),
        4 => Just(Op::Success),
        2 => (1u64..5).prop_map(Op::Successes),
        2 => (0u64..5).prop_map(Op::Publish),
        8 => Just(Op::Failure),
        3 => (any::<bool>(), any::<bool>())
            .prop_map(|(slow, filtered)| Op::MarkedSuccess { slow, filtered }),
        3 => flags().prop_map(|(timed_out, fallback, slow)| Op::MarkedFailure {
            timed_out,
            fallback,
            slow
        }),
        1 => Just(Op::Fallback),
        10 => (any::<usize>(), prop::bool::weighted(0.6), flags()).prop_map(|(pick, succeeded, (a, b, c))| {
            Op::ProbeResult {
                pick,
                succeeded,
                marks: marks_of(succeeded, a && b, c && b, a && c),
            }
        }),
        1 => Just(Op::ForceHalfOpen),
        1 => Just(Op::JsStoreOpen),
        3 => Just(Op::ReadState),
        1 => Just(Op::Isolate),
        2 => any::<usize>().prop_map(Op::Release),
        1 => Just(Op::Reset),
        1 => prop::bool::weighted(0.4).prop_map(Op::SetDisabled),
        10 => step.prop_map(Op::Advance),
        1 => (1u64..200).prop_map(Op::ClockBack),
        2 => prop_oneof![
            Just(HOUR_MS),
            Just(-HOUR_MS),
            -3000i64..3000,
        ]
        .prop_map(Op::WallStep),
    ];
    any_op.prop_map(move |op| match op {
        Op::ForceHalfOpen
        | Op::JsStoreOpen
        | Op::Isolate
        | Op::Release(_)
        | Op::Reset
        | Op::SetDisabled(_)
            if !manual =>
        {
            Op::Admit
        }
        op => op,
    })
}

fn timeout() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0u64), Just(1), Just(2), Just(100), 0u64..5000]
}

fn setup() -> impl Strategy<Value = Setup> {
    let backoff = (timeout(), 0u32..4, 0u64..10_000, prop::option::of(2u32..=3));
    let rate = (1u32..=8).prop_flat_map(|window| {
        (
            prop_oneof![Just(100u32), Just(50), Just(25), 1u32..=100],
            prop::option::of(1..=window),
            Just(window),
            any::<bool>(),
        )
            .prop_map(|(percent, minimum, window, consecutive_too)| RateSetup {
                percent,
                minimum,
                window,
                consecutive_too,
            })
    });
    (
        1u32..=5,
        prop::option::of(1u32..=3),
        prop::option::of(1u32..=3),
        prop::option::of(backoff),
        prop::option::of(rate),
    )
        .prop_map(|(threshold, probes, successes, backoff, rate)| {
            // Without backoff any timeout; with it, a maximum at or above it.
            let (timeout, backoff) = match backoff {
                None => (None, None),
                Some((timeout, kind, extra, multiplier)) => {
                    let max = match kind {
                        0 => timeout + extra,
                        1 => timeout * 2,
                        2 => timeout * 4 + 1,
                        _ => timeout * 9,
                    };
                    (Some(timeout), Some((max, multiplier)))
                }
            };
            (threshold, timeout, probes, successes, backoff, rate)
        })
        .prop_flat_map(|(threshold, timeout, probes, successes, backoff, rate)| {
            let timeout = match timeout {
                Some(t) => Just(t).boxed(),
                None => self::timeout().boxed(),
            };
            timeout.prop_map(move |timeout| Setup {
                threshold,
                timeout,
                half_open_max_calls: probes,
                success_threshold: successes,
                backoff,
                rate,
            })
        })
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
        timeouts: t.timeouts,
        fallbacks: t.fallbacks,
        slow_calls: t.slow_calls,
        filtered: t.filtered,
        probes: t.probes,
        last_success_ms: t.last_success_ms,
        last_failure_ms: t.last_failure_ms,
    }
}

fn config(threshold: u32, timeout: u64) -> Config {
    Setup::plain(threshold, timeout).config()
}

/// Runs `ops` on a fresh core and a fresh model; fails at the first
/// disagreement, naming the step.
fn run_against_model(setup: &Setup, start: u64, ops: &[(Op, usize)]) -> Result<(), TestCaseError> {
    let config = setup.config();
    let memory = OwnedSlots::with_len(config.features().slots_needed());
    let slots = Slots::new(memory.slots()).expect("owned slots are valid");
    claim_layout(&slots).expect("fresh memory");
    claim_features(&slots, slots.len(), &config.features()).expect("room for the features");
    let core = Breaker::new(slots, config);
    let mut model = Model::new(setup);
    // `now` is the host's monotonic clock, `wall` the wall clock: they move
    // together except where `WallStep` steps the wall clock alone (and
    // `ClockBack` the monotonic one alone). The model decides on `now` only.
    let mut now = start;
    let mut wall = start;
    // Probes admitted and not reported yet: the core's ticket, the model's probe.
    let mut running: Vec<(Ticket, Probe)> = Vec::new();
    // Every episode's ticket: one per episode, another for each episode.
    let mut tickets: Vec<(Ticket, u64)> = Vec::new();
    // Every isolation handle taken: the core's epoch, the model's.
    let mut handles: Vec<(u64, u32)> = Vec::new();
    let trace = std::env::var_os("MODEL_TRACE").is_some();

    for (i, &(op, thread)) in ops.iter().enumerate() {
        let stripe = Stripe::new(thread);
        let at = Now {
            wall_ms: wall,
            mono_ms: now,
        };
        model.wall = wall;
        model.stripe = stripe.index();
        match op {
            Op::Admit => {
                let (got, made) = core.admit(at, stripe);
                let episodes = model.episodes;
                let want = model.admit(now);
                // Admission makes a transition only by starting an episode.
                let started = (model.episodes > episodes).then_some(Transition::HalfOpened);
                prop_assert_eq!(made, started, "step {}: admit's transition", i);
                match (got, want) {
                    (Admission::Run, Decision::Run) | (Admission::Reject, Decision::Reject) => {}
                    (Admission::Probe(ticket), Decision::Probe(probe)) => {
                        for &(t, episode) in &tickets {
                            prop_assert_eq!(
                                t == ticket,
                                episode == probe.episode,
                                "step {}: ticket {:?} of episode {} against {:?} of {}",
                                i,
                                ticket,
                                probe.episode,
                                t,
                                episode
                            );
                        }
                        tickets.push((ticket, probe.episode));
                        running.push((ticket, probe));
                    }
                    _ => prop_assert!(
                        false,
                        "step {i} {op:?} at {now}: core {got:?}, model {want:?}"
                    ),
                }
            }
            Op::Success => {
                core.on_success(at, stripe);
                model.on_successes(1);
            }
            Op::Successes(count) => {
                core.on_successes(count, at, stripe);
                model.on_successes(count);
            }
            Op::Publish(count) => {
                core.publish_successes(count, at, stripe);
                model.publish_successes(count);
            }
            Op::Failure => {
                let got = core.on_failure(at, stripe);
                let want = model.on_failure(now);
                prop_assert_eq!(got, want, "step {} {:?} at {}", i, op, now);
            }
            Op::MarkedSuccess { slow, filtered } => {
                let marks = Marks {
                    slow,
                    filtered,
                    ..Marks::default()
                };
                let got = core.on_marked_success(marks, at, stripe);
                let want = model.on_marked_success(marks, now);
                prop_assert_eq!(got, want, "step {} {:?} at {}", i, op, now);
            }
            Op::MarkedFailure {
                timed_out,
                fallback,
                slow,
            } => {
                let marks = Marks {
                    timed_out,
                    fallback,
                    slow,
                    ..Marks::default()
                };
                let got = core.on_marked_failure(marks, at, stripe);
                let want = model.on_marked_failure(marks, now);
                prop_assert_eq!(got, want, "step {} {:?} at {}", i, op, now);
            }
            Op::Fallback => {
                core.on_fallback(stripe);
                model.count_marks(Marks {
                    fallback: true,
                    ..Marks::default()
                });
            }
            Op::ProbeResult {
                pick,
                succeeded,
                marks,
            } => {
                if running.is_empty() {
                    continue;
                }
                let (ticket, probe) = running.remove(pick % running.len());
                let got = core.on_marked_probe_result(ticket, succeeded, marks, at, stripe);
                let want = model.on_probe_result(probe, succeeded, marks, now);
                prop_assert_eq!(
                    got,
                    want,
                    "step {} {:?} ticket {:?} ({:?}) at {}",
                    i,
                    op,
                    ticket,
                    probe,
                    now
                );
            }
            Op::ForceHalfOpen => {
                prop_assert_eq!(
                    core.force_half_open_at(at),
                    model.force_half_open(),
                    "step {} {:?}",
                    i,
                    op
                );
            }
            Op::JsStoreOpen => {
                // A plain 32-bit store into the low half, as JavaScript does.
                memory.slots()[STATE].store(State::Open as i32, SeqCst);
                model.js_store_open();
            }
            Op::ReadState => {
                let got = core.state(at);
                let want = model.state(now);
                prop_assert_eq!(got, want, "step {} getState() at {}", i, now);
            }
            Op::Isolate => {
                let (got, want) = (core.isolate(at), model.isolate(now));
                prop_assert_eq!(got.is_some(), want.is_some(), "step {} {:?}", i, op);
                let (Some((epoch, got)), Some((model_epoch, want))) = (got, want) else {
                    continue;
                };
                prop_assert_eq!(got, want, "step {} {:?} at {}", i, op, now);
                for &(e, m) in &handles {
                    prop_assert_eq!(
                        e == epoch,
                        m == model_epoch,
                        "step {}: epoch {} of model epoch {} against {} of {}",
                        i,
                        epoch,
                        model_epoch,
                        e,
                        m
                    );
                }
                handles.push((epoch, model_epoch));
            }
            Op::Release(pick) => {
                if handles.is_empty() {
                    continue;
                }
                let (epoch, model_epoch) = handles[pick % handles.len()];
                let got = core.release_isolation(epoch, at);
                let want = model.release_isolation(model_epoch);
                prop_assert_eq!(
                    got,
                    want,
                    "step {} {:?} epoch {} (model {}) at {}",
                    i,
                    op,
                    epoch,
                    model_epoch,
                    now
                );
            }
            Op::Reset => {
                prop_assert_eq!(core.reset(at), model.reset(), "step {} {:?}", i, op);
            }
            Op::SetDisabled(disabled) => {
                prop_assert_eq!(
                    core.set_disabled(disabled, at),
                    model.set_disabled(disabled),
                    "step {} {:?}",
                    i,
                    op
                );
            }
            Op::Advance(step) => {
                let open = model.open_ms();
                let ms = match step {
                    Step::Ms(ms) => ms,
                    Step::Timeout => setup.timeout,
                    Step::TimeoutMinusOne => setup.timeout.saturating_sub(1),
                    Step::TimeoutPlusOne => setup.timeout + 1,
                    Step::OpenPeriod => open,
                    Step::OpenPeriodMinusOne => open.saturating_sub(1),
                    Step::OpenPeriodPlusOne => open + 1,
                };
                now += ms;
                wall += ms;
            }
            Op::ClockBack(ms) => now -= ms,
            Op::WallStep(ms) => wall = wall.saturating_add_signed(ms),
        }
        if trace {
            eprintln!("{i:3} {op:?} at +{}: {:?}", now - start, model.state);
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
        prop_assert_eq!(
            core.open_ms(),
            model.open_ms(),
            "step {} {:?}: open period",
            i,
            op
        );
        let overrides = core.overrides();
        prop_assert_eq!(
            (overrides.isolations, overrides.disabled, core.reopenings()),
            (model.isolations, model.disabled, model.reopenings),
            "step {} {:?}: switches (isolations, disabled, failed probes)",
            i,
            op
        );
        prop_assert_eq!(
            core.window_counts(at).map(|w| (w.calls, w.bad)),
            model.window_counts(),
            "step {} {:?}: window (calls, bad)",
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
        setup in setup(),
        start in T0..T0 + 1_000_000,
        ops in any::<bool>().prop_flat_map(|manual| prop::collection::vec((op(manual), 0usize..10), 1..160)),
    ) {
        run_against_model(&setup, start, &ops)?;
    }
}

/// A fixed sequence through every state, so a broken model or core fails
/// here too with a readable step, independent of the random cases.
#[test]
fn a_full_cycle_agrees_with_the_model() {
    use Op::*;
    let probe = |pick, succeeded| ProbeResult {
        pick,
        succeeded,
        marks: Marks::default(),
    };
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
        probe(0, false),
        Advance(Step::Timeout),
        Admit,
        Advance(Step::Timeout),
        Admit,
        probe(0, true),
        probe(0, true),
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
    run_against_model(&Setup::plain(2, 100), T0, &ops).expect("core and model agree");
}

/// The same for the policies: two probes at once, two successes to close,
/// backoff 100 → 300 → 500 (capped), isolation across a reset, disable,
/// and a window of 4 calls opening at 50% once it holds 3.
#[test]
fn a_policy_cycle_agrees_with_the_model() {
    use Op::*;
    let setup = Setup {
        threshold: 2,
        timeout: 100,
        half_open_max_calls: Some(2),
        success_threshold: Some(2),
        backoff: Some((500, Some(3))),
        rate: Some(RateSetup {
            percent: 50,
            minimum: Some(3),
            window: 4,
            consecutive_too: true,
        }),
    };
    let probe = |pick, succeeded| ProbeResult {
        pick,
        succeeded,
        marks: Marks::default(),
    };
    let ops = [
        Success,
        MarkedSuccess {
            slow: true,
            filtered: false,
        },
        Failure, // 2 bad of 3: opens on the rate
        Advance(Step::OpenPeriod),
        Admit,
        Admit,
        Admit, // both places taken
        probe(0, true),
        Admit,           // the freed place: running [second, third]
        probe(0, false), // the second fails: reopens for 300 ms
        Advance(Step::OpenPeriodMinusOne),
        Admit,
        Advance(Step::Ms(1)),
        Admit,           // running [third (stale), fourth]
        probe(1, false), // the fourth fails: 900 capped to 500 ms
        Advance(Step::OpenPeriod),
        Admit,
        Admit,
        probe(2, true),
        probe(1, true), // closes: the window and backoff start over
        probe(0, true), // the third, late: changes nothing
        Isolate,
        Reset,
        Isolate,
        Release(0), // from before the reset: nothing
        Admit,
        Release(1),
        SetDisabled(true),
        Failure,
        Failure,
        Failure,
        SetDisabled(false),
        Failure,
        MarkedFailure {
            timed_out: true,
            fallback: true,
            slow: true,
        },
        Fallback,
    ];
    let ops: Vec<_> = ops.iter().enumerate().map(|(i, op)| (*op, i)).collect();
    run_against_model(&setup, T0, &ops).expect("core and model agree");
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
    let Admission::Probe(ticket) = b.admit(T0 + 100, Stripe::new(0)).0 else {
        panic!("expected a probe");
    };
    (b, ticket)
}

/// The two orders SPEC.md allows for a probe's success and a failure
/// reported at about the same time, as (STATE slot, FAILURE_COUNT).
fn allowed_outcomes() -> [(i32, u32); 2] {
    let mut outcomes = [(0, 0); 2];
    for (i, failure_first) in [true, false].into_iter().enumerate() {
        let mut m = Model::new(&Setup::plain(1, 100));
        m.on_failure(T0);
        let Decision::Probe(probe) = m.admit(T0 + 100) else {
            unreachable!()
        };
        if failure_first {
            m.on_failure(T0 + 100);
        }
        m.on_probe_result(probe, true, Marks::default(), T0 + 100);
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
