//! What an operator does to a breaker from outside its policies: isolate it
//! (held OPEN until released), reset it, disable it (every call runs), or
//! force a new half-open episode. Each reports the transition it made.
//!
//! The switches live in the isolation word ([`IsolationWord`]) and the mode
//! word ([`MODE_DISABLED`]); isolation wins over everything else.
//!
//! [`IsolationWord`]: crate::words::IsolationWord
//! [`MODE_DISABLED`]: crate::words::MODE_DISABLED

use super::{Breaker, Transition};
use crate::cells::Cells;
use crate::clock::Clock;
use crate::layout::{ISOLATIONS, MODE};
use crate::words::{IsolationWord, MODE_DISABLED};
use std::sync::atomic::Ordering::{AcqRel, Acquire};

/// The overrides in force, shared by every breaker over the cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Overrides {
    /// Isolations held (not released, not reset).
    pub isolations: u32,
    /// Every call runs and nothing opens the breaker.
    pub disabled: bool,
}

impl<C: Cells> Breaker<C> {
    /// The overrides in force.
    #[inline]
    pub fn overrides(&self) -> Overrides {
        Overrides {
            isolations: IsolationWord(self.cells.wide(ISOLATIONS).load(Acquire)).count(),
            disabled: self.cells.word(MODE).load(Acquire) & MODE_DISABLED != 0,
        }
    }

    /// Forces a new half-open episode: the next caller probes, and a probe
    /// already running no longer decides anything.
    pub fn force_half_open(&self) -> Option<Transition> {
        self.force_half_open_at(0)
    }

    /// [`Breaker::force_half_open`], logged at `now`. An isolated breaker
    /// stays OPEN: isolation wins (and the transition, if any, is to OPEN).
    pub fn force_half_open_at(&self, now: impl Clock) -> Option<Transition> {
        let now = &now;
        loop {
            if self.overrides().isolations > 0 {
                return self.hold_open(now);
            }
            let word = self.control_word();
            if self
                .swap_control(word, crate::State::HalfOpen, now)
                .is_some()
            {
                return Some(Transition::HalfOpened);
            }
        }
    }

    /// Holds the breaker OPEN for every thread until every isolation is
    /// released or the breaker is reset. Returns the isolation's epoch (pass
    /// it to [`Breaker::release_isolation`]) and the transition, if it made
    /// one; `None` (and takes nothing) when [`crate::MAX_ISOLATIONS`] are held.
    pub fn isolate(&self, now: impl Clock) -> Option<(u64, Option<Transition>)> {
        let now = &now;
        let taken = self
            .cells
            .wide(ISOLATIONS)
            .fetch_update(AcqRel, Acquire, |n| IsolationWord(n).taken().map(|w| w.0))
            .ok()?;
        Some((IsolationWord(taken).epoch(), self.hold_open(now)))
    }

    /// Releases one isolation taken in `epoch`; the last one closes the
    /// breaker. An isolation from before a `reset()` (another epoch) releases
    /// nothing. Returns the transition, if it made one.
    pub fn release_isolation(&self, epoch: u64, now: impl Clock) -> Option<Transition> {
        let now = &now;
        let released = self
            .cells
            .wide(ISOLATIONS)
            .fetch_update(AcqRel, Acquire, |n| {
                IsolationWord(n).released(epoch).map(|w| w.0)
            });
        match released {
            Ok(n) if IsolationWord(n).count() == 1 => self.close_now(now),
            _ => None,
        }
    }

    /// Closes the breaker and clears the run of failures, the backoff, the
    /// window and every isolation (a new isolation epoch begins, so handles
    /// taken before release nothing). Lifetime counters are kept.
    pub fn reset(&self, now: impl Clock) -> Option<Transition> {
        let now = &now;
        let _ = self
            .cells
            .wide(ISOLATIONS)
            .fetch_update(AcqRel, Acquire, |n| Some(IsolationWord(n).next_epoch().0));
        self.close_now(now)
    }

    /// Lets every call through (and never opens) while `disabled`; counting goes on.
    pub fn set_disabled(&self, disabled: bool, now: impl Clock) -> Option<Transition> {
        let now = &now;
        if disabled {
            self.cells.word(MODE).fetch_or(MODE_DISABLED, AcqRel);
            if self.overrides().isolations == 0 {
                return self.close_now(now);
            }
        } else {
            self.cells.word(MODE).fetch_and(!MODE_DISABLED, AcqRel);
        }
        None
    }
}
