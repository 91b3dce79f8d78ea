//! Every count a breaker keeps: the per-thread striped counters (see
//! `layout`), the run of consecutive failures, the times of the last
//! success and failure, and the probes admitted.
//!
//! Striped counters are plain `Relaxed` adds into the caller's own stripe:
//! nothing is published through them, and readers sum every stripe.

use crate::cells::{AtomicU64, Cells};
use crate::clock::Clock;
use crate::layout::{
    stripe_slot, Stripe, FAILURES, FAILURE_COUNT, FALLBACKS, FILTERED, LAST_FAILURE_TIME,
    LAST_SUCCESS_TIME, PROBE_COUNT, REJECTIONS, REQUESTS, SLOW_CALLS, STRIPES, SUCCESSES, TIMEOUTS,
};
use std::sync::atomic::Ordering::{AcqRel, Relaxed};

/// Counters summed over every stripe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Totals {
    /// Calls that settled or were rejected: successes + failures + rejections.
    pub requests: u64,
    /// Includes errors the error filter accepted.
    pub successes: u64,
    /// Includes timeouts.
    pub failures: u64,
    pub rejections: u64,
    pub timeouts: u64,
    /// Calls answered by a fallback.
    pub fallbacks: u64,
    pub slow_calls: u64,
    /// Errors the error filter accepted.
    pub filtered: u64,
    /// Probes admitted.
    pub probes: u64,
    /// Wall-clock ms since the epoch, 0 if never.
    pub last_success_ms: u64,
    /// Wall-clock ms since the epoch, 0 if never.
    pub last_failure_ms: u64,
}

/// Extra facts about a call's outcome, counted beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Marks {
    /// The call timed out (a failure).
    pub timed_out: bool,
    /// A fallback answered the call.
    pub fallback: bool,
    /// The call took longer than `slowCallDuration`: bad for the rate.
    pub slow: bool,
    /// The error filter accepted the call's error (a success).
    pub filtered: bool,
}

/// How far ahead of a caller's wall clock a stored time may be and still be
/// taken for another caller's slightly later reading; further ahead, the wall
/// clock was stepped back since it was stored.
pub const WALL_STEP_MS: u64 = 1000;

/// The counters of one breaker's cells.
pub(crate) struct Counters<'c, C: Cells>(pub &'c C);

impl<C: Cells> Counters<'_, C> {
    #[inline]
    pub fn bump(&self, stripe: Stripe, offset: usize) {
        self.add(stripe, offset, 1);
    }

    #[inline]
    fn add(&self, stripe: Stripe, offset: usize, count: u64) {
        self.0.wide(stripe.slot(offset)).fetch_add(count, Relaxed);
    }

    /// A call rejected without running.
    #[inline]
    pub fn count_rejection(&self, stripe: Stripe) {
        self.bump(stripe, REQUESTS);
        self.bump(stripe, REJECTIONS);
    }

    /// A probe admitted.
    #[inline]
    pub fn count_probe(&self) {
        self.0.wide(PROBE_COUNT).fetch_add(1, Relaxed);
    }

    #[inline]
    pub fn count_marks(&self, marks: Marks, stripe: Stripe) {
        if marks.timed_out {
            self.bump(stripe, TIMEOUTS);
        }
        if marks.fallback {
            self.bump(stripe, FALLBACKS);
        }
        if marks.slow {
            self.bump(stripe, SLOW_CALLS);
        }
        if marks.filtered {
            self.bump(stripe, FILTERED);
        }
    }

    #[inline]
    pub fn count_successes(&self, count: u64, now: &impl Clock, stripe: Stripe) {
        self.add(stripe, REQUESTS, count);
        self.add(stripe, SUCCESSES, count);
        raise(self.0.wide(stripe.slot(LAST_SUCCESS_TIME)), now.wall_ms());
    }

    /// A success ends the run of failures. Most successes find it at 0
    /// already and write nothing to the shared header line.
    #[inline]
    pub fn end_failure_run(&self) {
        let failures = self.0.word(FAILURE_COUNT);
        if failures.load(Relaxed) != 0 {
            failures.store(0, Relaxed);
        }
    }

    /// Counts a failure; returns the run of consecutive failures it makes.
    #[inline]
    pub fn count_failure(&self, now: &impl Clock, stripe: Stripe) -> u32 {
        self.bump(stripe, REQUESTS);
        self.bump(stripe, FAILURES);
        raise(self.0.wide(LAST_FAILURE_TIME), now.wall_ms());
        (self.0.word(FAILURE_COUNT).fetch_add(1, AcqRel) as u32).wrapping_add(1)
    }

    /// The run of consecutive failures.
    pub fn consecutive_failures(&self) -> u32 {
        self.0.word(FAILURE_COUNT).load(Relaxed) as u32
    }

    /// Every counter, summed over the stripes.
    pub fn totals(&self) -> Totals {
        let mut totals = Totals {
            last_failure_ms: self.0.wide(LAST_FAILURE_TIME).load(Relaxed),
            probes: self.0.wide(PROBE_COUNT).load(Relaxed),
            ..Totals::default()
        };
        for stripe in 0..STRIPES {
            let read = |offset| self.0.wide(stripe_slot(stripe, offset)).load(Relaxed);
            totals.requests = totals.requests.wrapping_add(read(REQUESTS));
            totals.successes = totals.successes.wrapping_add(read(SUCCESSES));
            totals.failures = totals.failures.wrapping_add(read(FAILURES));
            totals.rejections = totals.rejections.wrapping_add(read(REJECTIONS));
            totals.timeouts = totals.timeouts.wrapping_add(read(TIMEOUTS));
            totals.fallbacks = totals.fallbacks.wrapping_add(read(FALLBACKS));
            totals.slow_calls = totals.slow_calls.wrapping_add(read(SLOW_CALLS));
            totals.filtered = totals.filtered.wrapping_add(read(FILTERED));
            totals.last_success_ms = totals.last_success_ms.max(read(LAST_SUCCESS_TIME));
        }
        totals
    }
}

/// Raises a wall-clock time to `now_ms`; writes nothing when it is already
/// there. A time more than [`WALL_STEP_MS`] ahead of `now_ms` was stored
/// before the wall clock was stepped back: it is replaced, so the slot says
/// when the latest call happened on the clock as it is now.
fn raise(slot: &AtomicU64, now_ms: u64) {
    let mut seen = slot.load(Relaxed);
    while seen < now_ms || seen > now_ms.saturating_add(WALL_STEP_MS) {
        match slot.compare_exchange_weak(seen, now_ms, Relaxed, Relaxed) {
            Ok(_) => return,
            Err(actual) => seen = actual,
        }
    }
}
