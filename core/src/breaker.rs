//! The state machine, as compare-and-swap transitions on shared slots.
//!
//! ## Encoding
//!
//! The **control word** (slots `STATE`, `GENERATION`) is one 64-bit atomic:
//! the state (0 CLOSED, 1 OPEN, 2 HALF_OPEN) in its low half, so JavaScript's
//! `Atomics.load(array, STATE)` reads the state alone, and a generation in its
//! high half. Every transition the core makes is one CAS on this word that
//! bumps the generation, so a transition decided on a stale read fails and is
//! decided again, and a probe's result only counts for its own episode.
//!
//! The **timer word** (slot `TIMER`) holds `tag:18 | kind:2 | ms:44`. It means
//! something only while its tag equals the low 18 bits of the current
//! generation and its kind is not 0 (so the zeroes of a fresh buffer are no
//! entry):
//!
//! ```text
//!   state      timer tag == generation            otherwise
//!   OPEN       kind OPEN:  opened at `ms`         not stamped yet: the first
//!                                                 caller to see it stamps it
//!   HALF_OPEN  kind LEASE: probe admitted at `ms` free: the next caller probes
//! ```
//!
//! An entry for an older generation is harmless, so the timer is only ever
//! written by CAS from a value read while the control word was unchanged: a
//! stale writer can never destroy the entry of a newer generation.
//!
//! `STATE` set to OPEN from JavaScript leaves the generation alone, so the
//! timer's tag does not match and the first breaker to see it stamps the
//! opening with its own clock, as SPEC.md asks.
//!
//! ## Transitions
//!
//! ```text
//!            failures reach threshold            reset timeout passed,
//!   CLOSED ─────────────────────────────▶ OPEN ───────────────────────▶ HALF_OPEN
//!     ▲                                    ▲   first caller claims it      │  │
//!     │            probe fails             │                               │  │
//!     │   ◀────────────────────────────────┴───────────────────────────────┘  │
//!     └──────────────────────── probe succeeds ───────────────────────────────┘
//! ```
//!
//! A lease older than the reset timeout (its probe's thread died) starts a new
//! half-open episode, so another caller may probe.

use crate::cells::Cells;
use crate::layout::{
    stripe_slot, FAILURES, FAILURE_COUNT, LAST_FAILURE_TIME, LAST_SUCCESS_TIME, REJECTIONS,
    REQUESTS, STATE, STRIPES, SUCCESSES, TIMER,
};
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed};

/// The three states, as stored in the `STATE` slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    Closed = 0,
    Open = 1,
    HalfOpen = 2,
}

impl State {
    pub const ALL: [State; 3] = [State::Closed, State::Open, State::HalfOpen];

    /// The name JavaScript sees (`'CLOSED' | 'OPEN' | 'HALF_OPEN'`).
    pub fn name(self) -> &'static str {
        match self {
            State::Closed => "CLOSED",
            State::Open => "OPEN",
            State::HalfOpen => "HALF_OPEN",
        }
    }

    fn from_raw(raw: u32) -> Option<State> {
        match raw {
            0 => Some(State::Closed),
            1 => Some(State::Open),
            2 => Some(State::HalfOpen),
            _ => None,
        }
    }
}

/// A breaker's settings. Every thread sharing a buffer should use the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    failure_threshold: u32,
    reset_timeout_ms: u64,
}

/// Largest accepted threshold: `FAILURE_COUNT` is an `Int32Array` slot.
pub const MAX_FAILURE_THRESHOLD: u32 = i32::MAX as u32;
/// Largest accepted reset timeout: about 278 years, far inside the 44-bit timer.
pub const MAX_RESET_TIMEOUT_MS: u64 = 1 << 43;

/// Why a setting was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigError {
    FailureThreshold(f64),
    ResetTimeout(f64),
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigError::FailureThreshold(got) => write!(
                f,
                "failureThreshold must be an integer from 1 to {MAX_FAILURE_THRESHOLD}, got {got}"
            ),
            ConfigError::ResetTimeout(got) => write!(
                f,
                "resetTimeout must be a finite number of milliseconds from 0 to \
                 {MAX_RESET_TIMEOUT_MS}, got {got}"
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Validates settings as JavaScript numbers. A fractional reset timeout is
    /// rounded up to whole milliseconds.
    pub fn new(failure_threshold: f64, reset_timeout_ms: f64) -> Result<Config, ConfigError> {
        let threshold_ok = failure_threshold.fract() == 0.0
            && failure_threshold >= 1.0
            && failure_threshold <= MAX_FAILURE_THRESHOLD as f64;
        if !threshold_ok {
            return Err(ConfigError::FailureThreshold(failure_threshold));
        }
        let timeout_ok = reset_timeout_ms.is_finite()
            && reset_timeout_ms >= 0.0
            && reset_timeout_ms <= MAX_RESET_TIMEOUT_MS as f64;
        if !timeout_ok {
            return Err(ConfigError::ResetTimeout(reset_timeout_ms));
        }
        Ok(Config {
            failure_threshold: failure_threshold as u32,
            reset_timeout_ms: reset_timeout_ms.ceil() as u64,
        })
    }

    pub fn failure_threshold(&self) -> u32 {
        self.failure_threshold
    }

    pub fn reset_timeout_ms(&self) -> u64 {
        self.reset_timeout_ms
    }

    /// How long a probe may run before another caller may take over: the
    /// reset timeout, and at least 1 ms so a zero timeout still admits one
    /// probe at a time.
    fn lease_ms(&self) -> u64 {
        self.reset_timeout_ms.max(1)
    }
}

/// Which of the per-thread counter stripes a caller writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stripe(usize);

impl Stripe {
    /// The stripe for the `n`-th thread (wraps around [`STRIPES`]).
    pub const fn new(n: usize) -> Stripe {
        Stripe(n % STRIPES)
    }
}

/// Proof that a caller was admitted as the half-open probe of one episode.
/// Its number is that episode's generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket(pub u32);

/// What `admit` decided for one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// CLOSED: run the task, then report with `on_success` / `on_failure`.
    Run,
    /// This caller is the half-open probe: run the task, then report with `on_probe_result`.
    Probe(Ticket),
    /// OPEN (or another caller is probing): do not run the task. Already counted.
    Reject,
}

/// A change of state this call made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Opened,
    HalfOpened,
    Closed,
}

/// Counters summed over every stripe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Totals {
    /// Calls that settled or were rejected: successes + failures + rejections.
    pub requests: u64,
    pub successes: u64,
    pub failures: u64,
    pub rejections: u64,
    /// ms since the epoch, 0 if never.
    pub last_success_ms: u64,
    /// ms since the epoch, 0 if never.
    pub last_failure_ms: u64,
}

// Control word: state in the low half, generation in the high half.
fn control(state: u32, generation: u32) -> u64 {
    (u64::from(generation) << 32) | u64::from(state)
}
fn state_raw(control: u64) -> u32 {
    control as u32
}
fn generation(control: u64) -> u32 {
    (control >> 32) as u32
}

// Timer word: tag:18 | kind:2 | ms:44. Kind 0 never matches, so the zero
// word of a fresh buffer is no entry for generation 0.
const TIME_BITS: u32 = 44;
const TIME_MASK: u64 = (1 << TIME_BITS) - 1;
const KIND_MASK: u64 = 0b11 << TIME_BITS;
const TAG_SHIFT: u32 = TIME_BITS + 2;
const TAG_MASK: u64 = (1 << (64 - TAG_SHIFT)) - 1;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Opened = 1,
    Lease = 2,
}

fn timer(generation: u32, kind: Kind, now_ms: u64) -> u64 {
    ((u64::from(generation) & TAG_MASK) << TAG_SHIFT)
        | ((kind as u64) << TIME_BITS)
        | (now_ms & TIME_MASK)
}

/// The time in `word` if it is an entry of `kind` for `generation`.
fn timer_entry(word: u64, generation: u32, kind: Kind) -> Option<u64> {
    let tag_matches = (word >> TAG_SHIFT) == u64::from(generation) & TAG_MASK;
    let kind_matches = (word & KIND_MASK) >> TIME_BITS == kind as u64;
    (tag_matches && kind_matches).then_some(word & TIME_MASK)
}

/// What the control and timer words say, read consistently.
enum View {
    Closed,
    /// OPEN, stamped at `since`.
    Open {
        since: u64,
    },
    /// OPEN, not stamped for this generation yet.
    OpenUnstamped,
    /// HALF_OPEN with a probe admitted at `since`.
    Probing {
        since: u64,
    },
    /// HALF_OPEN, no probe yet.
    HalfOpenFree,
    /// Something other than a state (written from JavaScript).
    Invalid,
}

/// One breaker over shared cells. Cheap to build; holds no state of its own
/// beyond its settings, so any number of them may share the same cells.
pub struct Breaker<C: Cells> {
    cells: C,
    config: Config,
}

impl<C: Cells> Breaker<C> {
    pub fn new(cells: C, config: Config) -> Self {
        Breaker { cells, config }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn cells(&self) -> &C {
        &self.cells
    }

    /// Decides whether a call may run. Counts a rejection when it may not.
    pub fn admit(&self, now_ms: u64, stripe: Stripe) -> Admission {
        loop {
            let (word, timer_word, view) = self.view();
            let generation = generation(word);
            match view {
                View::Closed => return Admission::Run,
                View::OpenUnstamped => {
                    self.stamp_timer(word, timer_word, Kind::Opened, now_ms);
                }
                View::Open { since } if now_ms < since => {
                    // The clock went back: the wait starts over from now.
                    self.stamp_timer(word, timer_word, Kind::Opened, now_ms);
                }
                View::Open { since } if now_ms - since < self.config.reset_timeout_ms => {
                    return self.reject(stripe);
                }
                View::Open { .. } => {
                    // Reset timeout passed: start a half-open episode; the
                    // probe is whoever then takes the lease.
                    self.swap_control(word, State::HalfOpen);
                }
                View::HalfOpenFree => {
                    if self.stamp_timer(word, timer_word, Kind::Lease, now_ms) {
                        return Admission::Probe(Ticket(generation));
                    }
                }
                View::Probing { since } if now_ms < since => {
                    self.stamp_timer(word, timer_word, Kind::Lease, now_ms);
                }
                View::Probing { since } if now_ms - since < self.config.lease_ms() => {
                    return self.reject(stripe);
                }
                View::Probing { .. } => {
                    // The probe's lease ran out (its thread died or it hangs):
                    // a new episode, so its late result no longer counts.
                    self.swap_control(word, State::HalfOpen);
                }
                View::Invalid => {
                    self.swap_control(word, State::Open);
                }
            }
        }
    }

    /// Reports that a call admitted with [`Admission::Run`] succeeded.
    pub fn on_success(&self, now_ms: u64, stripe: Stripe) {
        self.on_successes(1, now_ms, stripe);
    }

    /// Reports `count` successes of calls admitted with [`Admission::Run`]
    /// at once, the last of them at `now_ms`: a thread may publish its
    /// successes in batches. Like one success, it ends a run of failures.
    pub fn on_successes(&self, count: u64, now_ms: u64, stripe: Stripe) {
        if count != 0 {
            self.count_successes(count, now_ms, stripe);
            self.end_failure_run();
        }
    }

    /// Adds `count` successes to the counters and nothing else: successes
    /// published after the fact, whose effect on the run of failures was
    /// already had when they happened (the run was 0 then). Unlike
    /// [`Breaker::on_successes`] it leaves the run alone, so failures counted
    /// since those successes still count.
    pub fn publish_successes(&self, count: u64, now_ms: u64, stripe: Stripe) {
        if count != 0 {
            self.count_successes(count, now_ms, stripe);
        }
    }

    /// Reports that a call admitted with [`Admission::Run`] failed. Opens the
    /// breaker when the run of failures reaches the threshold while CLOSED.
    pub fn on_failure(&self, now_ms: u64, stripe: Stripe) -> Option<Transition> {
        let run = self.count_failure(now_ms, stripe);
        if run < self.config.failure_threshold {
            return None;
        }
        loop {
            let word = self.control().load(Acquire);
            if state_raw(word) != State::Closed as u32 {
                return None;
            }
            if let Some(opened) = self.swap_control(word, State::Open) {
                self.stamp_opening(opened, now_ms);
                return Some(Transition::Opened);
            }
        }
    }

    /// Reports the result of the probe holding `ticket`. Success closes the
    /// breaker, failure opens it again; a ticket of an episode that has ended
    /// (lease taken over, forced transition) changes no state.
    pub fn on_probe_result(
        &self,
        ticket: Ticket,
        succeeded: bool,
        now_ms: u64,
        stripe: Stripe,
    ) -> Option<Transition> {
        let probing = control(State::HalfOpen as u32, ticket.0);
        if succeeded {
            self.count_successes(1, now_ms, stripe);
            self.end_failure_run();
            let closed = self.swap_control(probing, State::Closed)?;
            // Failures counted since the reset above saw HALF_OPEN and left
            // the decision to this close: they come after the success, so if
            // they reach the threshold they open the breaker again. A
            // read-modify-write, so that it or `count_failure`'s sees the other.
            let run = self.cells.word(FAILURE_COUNT).fetch_add(0, AcqRel) as u32;
            if run >= self.config.failure_threshold {
                if let Some(opened) = self.swap_control(closed, State::Open) {
                    self.stamp_opening(opened, now_ms);
                    return Some(Transition::Opened);
                }
            }
            Some(Transition::Closed)
        } else {
            self.count_failure(now_ms, stripe);
            let opened = self.swap_control(probing, State::Open)?;
            self.stamp_opening(opened, now_ms);
            Some(Transition::Opened)
        }
    }

    /// The state a caller would meet now: HALF_OPEN as soon as a call would be
    /// admitted as a probe. Stamps an opening made from JavaScript.
    pub fn state(&self, now_ms: u64) -> State {
        loop {
            let (word, timer_word, view) = self.view();
            match view {
                View::Closed => return State::Closed,
                View::OpenUnstamped => {
                    self.stamp_timer(word, timer_word, Kind::Opened, now_ms);
                }
                View::Open { since } => {
                    let due = now_ms >= since && now_ms - since >= self.config.reset_timeout_ms;
                    return if due { State::HalfOpen } else { State::Open };
                }
                View::Probing { .. } | View::HalfOpenFree => return State::HalfOpen,
                View::Invalid => {
                    self.swap_control(word, State::Open);
                }
            }
        }
    }

    /// Forces a new half-open episode: the next caller probes, and a probe
    /// already running no longer decides anything.
    pub fn force_half_open(&self) -> Transition {
        loop {
            let word = self.control().load(Acquire);
            if self.swap_control(word, State::HalfOpen).is_some() {
                return Transition::HalfOpened;
            }
        }
    }

    /// The run of consecutive failures.
    pub fn consecutive_failures(&self) -> u32 {
        self.cells.word(FAILURE_COUNT).load(Relaxed) as u32
    }

    /// Counters summed over all stripes.
    pub fn totals(&self) -> Totals {
        let mut totals = Totals {
            last_failure_ms: self.cells.wide(LAST_FAILURE_TIME).load(Relaxed),
            ..Totals::default()
        };
        for stripe in 0..STRIPES {
            let read = |offset| self.cells.wide(stripe_slot(stripe, offset)).load(Relaxed);
            totals.requests = totals.requests.wrapping_add(read(REQUESTS));
            totals.successes = totals.successes.wrapping_add(read(SUCCESSES));
            totals.failures = totals.failures.wrapping_add(read(FAILURES));
            totals.rejections = totals.rejections.wrapping_add(read(REJECTIONS));
            totals.last_success_ms = totals.last_success_ms.max(read(LAST_SUCCESS_TIME));
        }
        totals
    }

    fn control(&self) -> &crate::cells::AtomicU64 {
        self.cells.wide(STATE)
    }

    fn timer(&self) -> &crate::cells::AtomicU64 {
        self.cells.wide(TIMER)
    }

    /// Reads the control word and the timer word as one consistent view: the
    /// control word did not change while the timer was read.
    fn view(&self) -> (u64, u64, View) {
        loop {
            let word = self.control().load(Acquire);
            let timer_word = self.timer().load(Acquire);
            if self.control().load(Acquire) != word {
                continue;
            }
            let generation = generation(word);
            let view = match State::from_raw(state_raw(word)) {
                Some(State::Closed) => View::Closed,
                Some(State::Open) => match timer_entry(timer_word, generation, Kind::Opened) {
                    Some(since) => View::Open { since },
                    None => View::OpenUnstamped,
                },
                Some(State::HalfOpen) => match timer_entry(timer_word, generation, Kind::Lease) {
                    Some(since) => View::Probing { since },
                    None => View::HalfOpenFree,
                },
                None => View::Invalid,
            };
            return (word, timer_word, view);
        }
    }

    /// Moves the control word from `expected` to `to` with the next
    /// generation. Returns the new word, or `None` if another caller moved it
    /// first.
    fn swap_control(&self, expected: u64, to: State) -> Option<u64> {
        let next = control(to as u32, generation(expected).wrapping_add(1));
        self.control()
            .compare_exchange(expected, next, AcqRel, Acquire)
            .ok()
            .map(|_| next)
    }

    /// Writes a timer entry for the generation of `word`, replacing
    /// `timer_word`, which was read while the control word was `word`.
    /// Returns whether this caller's entry was written.
    fn stamp_timer(&self, word: u64, timer_word: u64, kind: Kind, now_ms: u64) -> bool {
        let entry = timer(generation(word), kind, now_ms);
        self.timer()
            .compare_exchange(timer_word, entry, AcqRel, Acquire)
            .is_ok()
    }

    /// Stamps the opening that made control word `opened`, unless another
    /// caller has stamped it or the breaker has moved on.
    fn stamp_opening(&self, opened: u64, now_ms: u64) {
        let timer_word = self.timer().load(Acquire);
        if self.control().load(Acquire) != opened {
            return;
        }
        if timer_entry(timer_word, generation(opened), Kind::Opened).is_none() {
            self.stamp_timer(opened, timer_word, Kind::Opened, now_ms);
        }
    }

    fn reject(&self, stripe: Stripe) -> Admission {
        self.bump(stripe, REQUESTS);
        self.bump(stripe, REJECTIONS);
        Admission::Reject
    }

    fn count_successes(&self, count: u64, now_ms: u64, stripe: Stripe) {
        self.add(stripe, REQUESTS, count);
        self.add(stripe, SUCCESSES, count);
        raise(
            self.cells.wide(stripe_slot(stripe.0, LAST_SUCCESS_TIME)),
            now_ms,
        );
    }

    /// A success ends the run of failures. Most successes find it at 0
    /// already and write nothing to the shared header line.
    fn end_failure_run(&self) {
        let failures = self.cells.word(FAILURE_COUNT);
        if failures.load(Relaxed) != 0 {
            failures.store(0, Relaxed);
        }
    }

    /// Counts a failure; returns the run of consecutive failures it makes.
    fn count_failure(&self, now_ms: u64, stripe: Stripe) -> u32 {
        self.bump(stripe, REQUESTS);
        self.bump(stripe, FAILURES);
        raise(self.cells.wide(LAST_FAILURE_TIME), now_ms);
        (self.cells.word(FAILURE_COUNT).fetch_add(1, AcqRel) as u32).wrapping_add(1)
    }

    fn bump(&self, stripe: Stripe, offset: usize) {
        self.add(stripe, offset, 1);
    }

    fn add(&self, stripe: Stripe, offset: usize, count: u64) {
        self.cells
            .wide(stripe_slot(stripe.0, offset))
            .fetch_add(count, Relaxed);
    }
}

/// Raises a timestamp to `now_ms`; writes nothing when it is already there.
fn raise(slot: &crate::cells::AtomicU64, now_ms: u64) {
    if slot.load(Relaxed) < now_ms {
        slot.fetch_max(now_ms, Relaxed);
    }
}
