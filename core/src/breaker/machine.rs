//! The state machine, as compare-and-swap transitions on shared words.
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
//! Every transition is one CAS on the control word that bumps its generation
//! ([`ControlWord`]); the open stamp and the probe lease are entries of the
//! timer word ([`TimerWord`]) tagged with that generation; the half-open
//! episode's probes are counted in the probe word ([`ProbeWord`]).
//!
//! `STATE` set to OPEN from JavaScript leaves the generation alone, so the
//! timer's tag does not match and the first breaker to see it stamps the
//! opening with its own clock, as SPEC.md asks.
//!
//! A lease older than the reset timeout (its probe's thread died) starts a new
//! half-open episode, so another caller may probe.
//!
//! [`ControlWord`]: crate::words::ControlWord
//! [`TimerWord`]: crate::words::TimerWord
//! [`ProbeWord`]: crate::words::ProbeWord

use super::{Breaker, Transition, View};
use crate::cells::Cells;
use crate::clock::Clock;
use crate::counters::Marks;
use crate::layout::{Stripe, FAILURE_COUNT, HALF_OPEN, ISOLATIONS, MODE, REOPENINGS};
use crate::window;
use crate::words::{ControlWord, IsolationWord, ProbeWord, State, TimerKind, MODE_DISABLED};
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};

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

impl<C: Cells> Breaker<C> {
    /// Decides whether a call may run. Counts a rejection when it may not.
    /// Also returns the transition deciding made, if any (the last one, when
    /// it made two: a state JavaScript wrote moved to OPEN, then HALF_OPEN).
    pub fn admit(&self, now: impl Clock, stripe: Stripe) -> (Admission, Option<Transition>) {
        let now = &now;
        if !self.control_word().is(State::Closed) {
            let overrides = self.overrides();
            if overrides.isolations > 0 || self.fleet_held() {
                let made = self.hold_open(now);
                return (self.reject(stripe), made);
            }
            if overrides.disabled && self.control_word().state().is_some() {
                return (Admission::Run, None);
            }
        }
        let mut made = None;
        loop {
            let (word, timer, view) = self.view();
            let generation = word.generation();
            match view {
                View::Closed => return (Admission::Run, made),
                View::OpenUnstamped => {
                    self.stamp_timer(word, timer, TimerKind::Opened, now);
                }
                View::Open { since } if now.mono_ms() < since => {
                    // Stamped later than now: by an earlier boot (a breaker
                    // file kept across a reboot). The wait starts over from now.
                    self.stamp_timer(word, timer, TimerKind::Opened, now);
                }
                View::Open { since } if now.mono_ms() - since < self.open_ms() => {
                    return (self.reject(stripe), made);
                }
                View::Open { .. } => {
                    // Open long enough: start a half-open episode; the
                    // probes are whoever then take its places.
                    if self.swap_control(word, State::HalfOpen, now).is_some() {
                        made = Some(Transition::HalfOpened);
                    }
                }
                View::HalfOpen {
                    running,
                    succeeded,
                    probes,
                    lease,
                } => {
                    if running < self.config.half_open_max_calls() {
                        let taken = ProbeWord::new(generation, running + 1, succeeded);
                        if self
                            .cells
                            .wide(HALF_OPEN)
                            .compare_exchange(probes.0, taken.0, AcqRel, Acquire)
                            .is_ok()
                        {
                            self.stamp_timer(word, timer, TimerKind::Lease, now);
                            self.counters().count_probe();
                            return (Admission::Probe(Ticket(generation)), made);
                        }
                        continue;
                    }
                    match lease {
                        // Full, its lease not stamped yet: stamp it from now.
                        None => {
                            self.stamp_timer(word, timer, TimerKind::Lease, now);
                        }
                        Some(since) if now.mono_ms() < since => {
                            self.stamp_timer(word, timer, TimerKind::Lease, now);
                        }
                        Some(since) if now.mono_ms() - since < self.config.lease_ms() => {
                            return (self.reject(stripe), made);
                        }
                        Some(_) => {
                            // The probes' lease ran out (their threads died or
                            // they hang): a new episode, so their late results
                            // no longer count.
                            if self.swap_control(word, State::HalfOpen, now).is_some() {
                                made = Some(Transition::HalfOpened);
                            }
                        }
                    }
                }
                View::Invalid => {
                    if self.swap_control(word, State::Open, now).is_some() {
                        made = Some(Transition::Opened);
                    }
                }
            }
        }
    }

    /// Reports that a call admitted with [`Admission::Run`] succeeded.
    pub fn on_success(&self, now: impl Clock, stripe: Stripe) {
        let now = &now;
        self.on_successes(1, now, stripe);
    }

    /// Reports `count` successes of calls admitted with [`Admission::Run`]
    /// at once, the last of them at `now`: a thread may publish its
    /// successes in batches. Like one success, it ends a run of failures.
    pub fn on_successes(&self, count: u64, now: impl Clock, stripe: Stripe) {
        let now = &now;
        if count != 0 {
            self.counters().count_successes(count, now, stripe);
            self.record_good(count, now);
            self.counters().end_failure_run();
        }
    }

    /// Adds `count` successes to the counters and the window, and nothing
    /// else: successes published after the fact, whose effect on the run of
    /// failures was already had when they happened (the run was 0 then). Unlike
    /// [`Breaker::on_successes`] it leaves the run alone, so failures counted
    /// since those successes still count.
    pub fn publish_successes(&self, count: u64, now: impl Clock, stripe: Stripe) {
        let now = &now;
        if count != 0 {
            self.counters().count_successes(count, now, stripe);
            self.record_good(count, now);
        }
    }

    /// Reports one success with marks: a slow call (bad for the rate, so it
    /// may open the breaker) or an error the filter accepted. Ends the run.
    pub fn on_marked_success(
        &self,
        marks: Marks,
        now: impl Clock,
        stripe: Stripe,
    ) -> Option<Transition> {
        let now = &now;
        let counters = self.counters();
        counters.count_successes(1, now, stripe);
        counters.count_marks(marks, stripe);
        counters.end_failure_run();
        if !marks.slow {
            self.record_good(1, now);
            return None;
        }
        self.record_bad(false, now)
    }

    /// Reports that a call admitted with [`Admission::Run`] failed. Opens the
    /// breaker when the run of failures reaches the threshold while CLOSED.
    pub fn on_failure(&self, now: impl Clock, stripe: Stripe) -> Option<Transition> {
        let now = &now;
        self.on_marked_failure(Marks::default(), now, stripe)
    }

    /// [`Breaker::on_failure`] with marks (timed out, answered by a fallback, slow).
    pub fn on_marked_failure(
        &self,
        marks: Marks,
        now: impl Clock,
        stripe: Stripe,
    ) -> Option<Transition> {
        let now = &now;
        let counters = self.counters();
        counters.count_marks(marks, stripe);
        let run = counters.count_failure(now, stripe);
        let threshold = self.config.failure_threshold();
        self.record_bad(threshold != 0 && run >= threshold, now)
    }

    /// Records good calls in the failure-rate window, if there is one.
    #[inline]
    fn record_good(&self, count: u64, now: &impl Clock) {
        if let Some(rate) = self.config.rate() {
            let base = self.features.window_base();
            window::record(&self.cells, base, &rate.window, count, 0, now.mono_ms());
        }
    }

    /// Records one bad call in the failure-rate window, if there is one, and
    /// opens the breaker if `consecutive` (the run reached the threshold) or
    /// else the rate, read in the same pass, says so.
    #[inline]
    fn record_bad(&self, consecutive: bool, now: &impl Clock) -> Option<Transition> {
        let open = match self.config.rate() {
            None => consecutive,
            Some(rate) => {
                let (base, mono) = (self.features.window_base(), now.mono_ms());
                if consecutive {
                    window::record(&self.cells, base, &rate.window, 0, 1, mono);
                    true
                } else {
                    let counts =
                        window::record_and_read(&self.cells, base, &rate.window, 0, 1, mono);
                    rate.is_reached(counts)
                }
            }
        };
        if open {
            self.trip(now)
        } else {
            None
        }
    }

    /// Opens a CLOSED breaker (a failure condition was met), unless disabled.
    fn trip(&self, now: &impl Clock) -> Option<Transition> {
        loop {
            let word = self.control_word();
            if !word.is(State::Closed) || self.overrides().disabled {
                return None;
            }
            if let Some(opened) = self.swap_control(word, State::Open, now) {
                self.stamp_opening(opened, now);
                // `disable()` may have closed the breaker just before this
                // opened it: a read-modify-write, so that it or `disable`'s sees the other.
                if self.cells.word(MODE).fetch_add(0, AcqRel) & MODE_DISABLED != 0 {
                    // Undone: CLOSED again, but two transitions were logged,
                    // so the caller is told (and tells the listeners).
                    return self
                        .swap_control(opened, State::Closed, now)
                        .map(|_| Transition::Closed);
                }
                return Some(Transition::Opened);
            }
        }
    }

    /// Reports the result of the probe holding `ticket`. A failure opens the
    /// breaker again; `successThreshold` successes of one episode close it.
    /// A ticket of an episode that has ended (lease taken over, forced
    /// transition) changes no state.
    pub fn on_probe_result(
        &self,
        ticket: Ticket,
        succeeded: bool,
        now: impl Clock,
        stripe: Stripe,
    ) -> Option<Transition> {
        let now = &now;
        self.on_marked_probe_result(ticket, succeeded, Marks::default(), now, stripe)
    }

    /// [`Breaker::on_probe_result`] with marks.
    pub fn on_marked_probe_result(
        &self,
        ticket: Ticket,
        succeeded: bool,
        marks: Marks,
        now: impl Clock,
        stripe: Stripe,
    ) -> Option<Transition> {
        let now = &now;
        let counters = self.counters();
        counters.count_marks(marks, stripe);
        let probing = ControlWord::new(State::HalfOpen, ticket.0);
        if !succeeded {
            counters.count_failure(now, stripe);
            let opened = self.swap_control(probing, State::Open, now)?;
            self.cells.word(REOPENINGS).fetch_add(1, Relaxed);
            self.stamp_opening(opened, now);
            return Some(Transition::Opened);
        }
        counters.count_successes(1, now, stripe);
        counters.end_failure_run();
        // The success counts, and this probe's place is free again, except
        // after the success that closes the breaker: freed, it could admit
        // one more probe into an episode about to end.
        let threshold = self.config.success_threshold();
        let probes = self.cells.wide(HALF_OPEN);
        let mut word = ProbeWord(probes.load(Acquire));
        let succeeded = loop {
            if word.generation() != ticket.0 {
                return None; // another episode's word: this one has ended
            }
            let (running, done) = word.probes_of(ticket.0);
            let done_now = done.saturating_add(1);
            let freed = if done_now >= threshold { 0 } else { 1 };
            let next = ProbeWord::new(ticket.0, running.saturating_sub(freed), done_now);
            match probes.compare_exchange(word.0, next.0, AcqRel, Acquire) {
                Ok(_) => break done_now,
                Err(seen) => word = ProbeWord(seen),
            }
        };
        if succeeded < threshold {
            return None;
        }
        let closed = self.swap_control(probing, State::Closed, now)?;
        Some(self.after_closing(closed, now))
    }

    /// Gives back the half-open place of the probe holding `ticket`, which
    /// never ran (its breaker's bulkhead refused it): another caller may
    /// probe at once instead of after the probe lease. Counts nothing and
    /// changes no state; a ticket of an episode that has ended frees nothing.
    pub fn abandon_probe(&self, ticket: Ticket) {
        let probes = self.cells.wide(HALF_OPEN);
        let mut word = ProbeWord(probes.load(Acquire));
        loop {
            if word.generation() != ticket.0 {
                return;
            }
            let (running, done) = word.probes_of(ticket.0);
            if running == 0 {
                return;
            }
            let next = ProbeWord::new(ticket.0, running - 1, done);
            match probes.compare_exchange(word.0, next.0, AcqRel, Acquire) {
                Ok(_) => return,
                Err(seen) => word = ProbeWord(seen),
            }
        }
    }

    /// A closed breaker starts over: no backoff, an empty window.
    fn start_over(&self, now: &impl Clock) {
        self.cells.word(REOPENINGS).store(0, Relaxed);
        if let Some(rate) = self.config.rate() {
            window::clear(
                &self.cells,
                self.features.window_base(),
                &rate.window,
                now.mono_ms(),
            );
        }
    }

    /// What must follow every close: the backoff and the window start over,
    /// and whatever happened meanwhile that should keep the breaker open
    /// (failures reaching the threshold, an isolation) reopens it.
    fn after_closing(&self, closed: ControlWord, now: &impl Clock) -> Transition {
        self.start_over(now);
        // Failures counted since the run was reset saw HALF_OPEN and left the
        // decision to this close: they come after the success, so if they
        // reach the threshold they open the breaker again. Read-modify-writes,
        // so that they or `count_failure`'s / `isolate`'s see the other.
        let run = self.cells.word(FAILURE_COUNT).fetch_add(0, AcqRel) as u32;
        let threshold = self.config.failure_threshold();
        let isolated = IsolationWord(self.cells.wide(ISOLATIONS).fetch_add(0, AcqRel)).count() > 0;
        // A disabled breaker never opens on failures (loom found `disable()`
        // closing a breaker that a racing failure had just opened, and this
        // reopening it on that failure's run).
        let disabled = self.cells.word(MODE).fetch_add(0, AcqRel) & MODE_DISABLED != 0;
        if isolated || (!disabled && threshold != 0 && run >= threshold) {
            if let Some(opened) = self.swap_control(closed, State::Open, now) {
                self.stamp_opening(opened, now);
                return Transition::Opened;
            }
        }
        Transition::Closed
    }

    /// The state a caller would meet now: HALF_OPEN as soon as a call would be
    /// admitted as a probe. Stamps an opening made from JavaScript.
    pub fn state(&self, now: impl Clock) -> State {
        let now = &now;
        loop {
            let (word, timer, view) = self.view();
            let held = self.overrides().isolations > 0 || self.fleet_held();
            if held && !matches!(view, View::Invalid) {
                return State::Open;
            }
            match view {
                View::Closed => return State::Closed,
                View::OpenUnstamped => {
                    self.stamp_timer(word, timer, TimerKind::Opened, now);
                }
                View::Open { since } => {
                    let mono = now.mono_ms();
                    let due = mono >= since && mono - since >= self.open_ms();
                    return if due { State::HalfOpen } else { State::Open };
                }
                View::HalfOpen { .. } => return State::HalfOpen,
                View::Invalid => {
                    self.swap_control(word, State::Open, now);
                }
            }
        }
    }

    /// Moves any state but OPEN to OPEN.
    pub(crate) fn hold_open(&self, now: &impl Clock) -> Option<Transition> {
        loop {
            let word = self.control_word();
            if word.is(State::Open) {
                return None;
            }
            if let Some(opened) = self.swap_control(word, State::Open, now) {
                self.stamp_opening(opened, now);
                return Some(Transition::Opened);
            }
        }
    }

    /// Closes the breaker now, whatever its state, and starts its counts
    /// over. Returns the transition it made: CLOSED, or OPEN when what came
    /// in meanwhile reopened it at once.
    pub(crate) fn close_now(&self, now: &impl Clock) -> Option<Transition> {
        self.cells.word(FAILURE_COUNT).store(0, Release);
        loop {
            let word = self.control_word();
            if word.is(State::Closed) {
                self.start_over(now);
                return None;
            }
            if let Some(closed) = self.swap_control(word, State::Closed, now) {
                // Reopened at once (an isolation or failures came in
                // meanwhile): two transitions, reported as the last.
                return Some(self.after_closing(closed, now));
            }
        }
    }

    fn reject(&self, stripe: Stripe) -> Admission {
        self.counters().count_rejection(stripe);
        Admission::Reject
    }
}
