//! One breaker over shared cells: the type callers hold, and what it reads.
//!
//! A [`Breaker`] holds no state of its own beyond its settings; everything
//! lives in the cells, which any number of breakers (threads, processes)
//! share. Its methods are spread over the modules that own each
//! responsibility:
//!
//! ```text
//!   breaker::machine     the state machine: admission, outcomes, probes
//!   breaker::overrides   isolate / release / reset / disable / force half-open
//!   counters             the striped counters and the run of failures
//!   log                  the transition log
//!   window, histogram    the optional regions (features)
//!   words                the bits of every packed header word
//! ```
//!
//! This module holds the type, its reads, and the few steps every
//! transition shares (moving the control word, stamping the timer).

use crate::cells::{AtomicU64, Cells};
use crate::clock::Clock;
use crate::config::Config;
use crate::counters::{Counters, Totals};
use crate::features::Features;
use crate::layout::{Stripe, FALLBACKS, HALF_OPEN, REOPENINGS, STATE, TIMER};
use crate::log::{self, Actor, LogEntry, LogRead};
use crate::words::{ControlWord, ProbeWord, State, TimerKind, TimerWord, ACTOR_MASK};
use crate::{histogram, window};
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed};

mod machine;
mod overrides;

pub use machine::{Admission, Ticket};
pub use overrides::Overrides;

/// A change of state a call made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Opened,
    HalfOpened,
    Closed,
}

/// One breaker over shared cells. Cheap to build; holds no state of its own
/// beyond its settings, so any number of them may share the same cells.
pub struct Breaker<C: Cells> {
    cells: C,
    config: Config,
    features: Features,
    actor: Actor,
}

/// What the control, timer and probe words say, read consistently.
enum View {
    Closed,
    /// OPEN, stamped at `since`.
    Open {
        since: u64,
    },
    /// OPEN, not stamped for this generation yet.
    OpenUnstamped,
    /// HALF_OPEN: `running` probes admitted and not reported, `succeeded`
    /// reported successes; the lease stamped at `lease` (the latest admission).
    HalfOpen {
        running: u32,
        succeeded: u32,
        probes: ProbeWord,
        lease: Option<u64>,
    },
    /// Something other than a state (written from JavaScript).
    Invalid,
}

impl<C: Cells> Breaker<C> {
    /// A breaker over `cells`, which must be long enough for
    /// `config.features()` (see `features::claim_features`).
    pub fn new(cells: C, config: Config) -> Self {
        Breaker {
            cells,
            features: config.features(),
            config,
            actor: Actor::default(),
        }
    }

    /// Names who makes this breaker's transitions in the log: the thread
    /// (20 bits kept) and the process.
    pub fn with_actor(mut self, thread: u32, pid: u32) -> Self {
        self.actor = Actor {
            thread: thread & ACTOR_MASK,
            pid,
        };
        self
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn cells(&self) -> &C {
        &self.cells
    }

    /// Counts that a fallback answered a call (one rejected while open).
    pub fn on_fallback(&self, stripe: Stripe) {
        self.counters().bump(stripe, FALLBACKS);
    }

    /// The failure-rate window's content: (calls, bad calls); `None` without a rate policy.
    pub fn window_counts(&self, now: impl Clock) -> Option<window::WindowCounts> {
        let rate = self.config.rate()?;
        Some(window::read(
            &self.cells,
            self.features.window_base(),
            &rate.window,
            now.mono_ms(),
        ))
    }

    /// Records a call's duration in the latency histogram, if there is one.
    pub fn record_latency(&self, micros: u64, stripe: Stripe) {
        if self.features.histogram {
            histogram::record(&self.cells, self.features.histogram_base(), stripe, micros);
        }
    }

    /// The latency histogram summed over every thread; `None` without one.
    pub fn latency(&self) -> Option<histogram::Snapshot> {
        self.features
            .histogram
            .then(|| histogram::read(&self.cells, self.features.histogram_base()))
    }

    /// When the current state began (ms), if the log still knows.
    pub fn state_since(&self) -> Option<u64> {
        let word = self.control_word();
        match self.log_entry(word.generation()) {
            Some(entry) if word.is(entry.state) => Some(entry.time_ms),
            _ => None,
        }
    }

    /// Failed probes since the breaker last closed: the backoff exponent.
    pub fn reopenings(&self) -> u32 {
        self.cells.word(REOPENINGS).load(Relaxed).max(0) as u32
    }

    /// How long the breaker stays open this time, backoff included.
    pub fn open_ms(&self) -> u64 {
        self.config.open_ms(self.reopenings())
    }

    /// The run of consecutive failures.
    pub fn consecutive_failures(&self) -> u32 {
        self.counters().consecutive_failures()
    }

    /// Counters summed over all stripes.
    pub fn totals(&self) -> Totals {
        self.counters().totals()
    }

    /// The generation of the control word: bumped by every transition.
    pub fn generation(&self) -> u32 {
        self.control_word().generation()
    }

    /// The log entry of the transition that made `generation`, if the log
    /// still holds it (it keeps the last `LOG_ENTRIES`) and its writer has
    /// finished writing it.
    pub fn log_entry(&self, generation: u32) -> Option<LogEntry> {
        log::read(&self.cells, generation)
    }

    /// The log entry of the transition that made `generation`, or why it is
    /// not there: pending (not published yet) or gone (overwritten).
    pub fn read_log(&self, generation: u32) -> LogRead {
        log::read_or_why(&self.cells, generation)
    }

    #[inline]
    fn counters(&self) -> Counters<'_, C> {
        Counters(&self.cells)
    }

    #[inline]
    fn control(&self) -> &AtomicU64 {
        self.cells.wide(STATE)
    }

    #[inline]
    fn control_word(&self) -> ControlWord {
        ControlWord(self.control().load(Acquire))
    }

    #[inline]
    fn timer_word(&self) -> TimerWord {
        TimerWord(self.cells.wide(TIMER).load(Acquire))
    }

    /// Reads the control, timer and probe words as one consistent view: the
    /// control word did not change while the others were read.
    fn view(&self) -> (ControlWord, TimerWord, View) {
        loop {
            let word = self.control_word();
            let timer = self.timer_word();
            let probes = ProbeWord(self.cells.wide(HALF_OPEN).load(Acquire));
            if self.control_word() != word {
                continue;
            }
            let generation = word.generation();
            let view = match word.state() {
                Some(State::Closed) => View::Closed,
                Some(State::Open) => match timer.entry(generation, TimerKind::Opened) {
                    Some(since) => View::Open { since },
                    None => View::OpenUnstamped,
                },
                Some(State::HalfOpen) => {
                    let (running, succeeded) = probes.probes_of(generation);
                    View::HalfOpen {
                        running,
                        succeeded,
                        probes,
                        lease: timer.entry(generation, TimerKind::Lease),
                    }
                }
                None => View::Invalid,
            };
            return (word, timer, view);
        }
    }

    /// Moves the control word from `expected` to `to` with the next
    /// generation, and logs it. Returns the new word, or `None` if another
    /// caller moved it first.
    fn swap_control(
        &self,
        expected: ControlWord,
        to: State,
        now: &impl Clock,
    ) -> Option<ControlWord> {
        let next = expected.next(to);
        self.control()
            .compare_exchange(expected.0, next.0, AcqRel, Acquire)
            .ok()?;
        log::write(
            &self.cells,
            self.actor,
            next.generation(),
            to,
            now.wall_ms(),
        );
        Some(next)
    }

    /// Writes a timer entry for the generation of `word`, replacing `timer`,
    /// which was read while the control word was `word`. Returns whether this
    /// caller's entry was written.
    fn stamp_timer(
        &self,
        word: ControlWord,
        timer: TimerWord,
        kind: TimerKind,
        now: &impl Clock,
    ) -> bool {
        let entry = TimerWord::new(word.generation(), kind, now.mono_ms());
        self.cells
            .wide(TIMER)
            .compare_exchange(timer.0, entry.0, AcqRel, Acquire)
            .is_ok()
    }

    /// Stamps the opening that made control word `opened`, unless another
    /// caller has stamped it or the breaker has moved on.
    fn stamp_opening(&self, opened: ControlWord, now: &impl Clock) {
        let timer = self.timer_word();
        if self.control_word() != opened {
            return;
        }
        if timer
            .entry(opened.generation(), TimerKind::Opened)
            .is_none()
        {
            self.stamp_timer(opened, timer, TimerKind::Opened, now);
        }
    }
}
