//! A rate limiter shared by every thread and process over one memory: the
//! generic cell rate algorithm (GCRA) in one 64-bit word.
//!
//! ```text
//!  slot 2 TAT (+3)       theoretical arrival time: ns on the host's
//!                        monotonic clock; 0 in a fresh memory
//!       4 CONFIG (+5)    fingerprint of the rate:32 | RATE_MAGIC:32
//!                        (slot 5 is a breaker's LAYOUT_VERSION)
//!       6 ADMITTED (+7)  calls admitted (64-bit)
//!       8 DELAYED (+9)   of which waited first (64-bit)
//!      10 REJECTED (+11) calls refused (64-bit)
//!  SLOTS slots in all: one 64-byte line
//! ```
//!
//! `limit` calls per `interval` ms make an emission interval
//! `e = ceil(interval * 10^6 / limit)` ns; `burst` calls may go at once
//! (tolerance `tau = (burst - 1) * e`). A call arriving at `now` is due at
//! `max(TAT, now) - tau`, or now if that is earlier; it is admitted, and TAT
//! moves to `max(TAT, now) + e` by one compare-and-swap, if it is due within
//! the caller's `max_wait`. So for any two admitted calls i < j, due at
//! `d_i` and `d_j`, `d_j - d_i >= (j - i) * e - tau`: any span of `interval`
//! ms holds at most `limit + burst - 1` calls' due times (`limit` with the
//! default burst of 1, evenly spaced), and any span of `D` ms at most
//! `burst + D / e`.
//!
//! A TAT further ahead of now than any caller could have put it (more than
//! `tau + e +` [`MAX_WAIT_MS`]) was written on an earlier boot (a file kept
//! across a reboot): it counts as now.

use crate::cells::Cells;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};

/// "RTL" and layout version 1, in the high half of CONFIG.
pub const RATE_MAGIC: u32 = 0x5254_4c01;
/// Slots a rate limiter needs.
pub const SLOTS: usize = 16;
/// Longest `interval` and `maxWait`, ms.
pub const MAX_WAIT_MS: u32 = i32::MAX as u32;
/// Largest `limit` and `burst`.
pub const MAX_LIMIT: u32 = u32::MAX;

pub const TAT: usize = 2;
/// CONFIG's high half is slot 5, a breaker's LAYOUT_VERSION: a breaker and
/// a rate limiter refuse each other's memory.
pub const CONFIG: usize = 4;
pub const ADMITTED: usize = 6;
pub const DELAYED: usize = 8;
pub const REJECTED: usize = 10;

const NS_PER_MS: u64 = 1_000_000;

/// Why a rate limiter cannot be built.
#[derive(Debug, Clone, PartialEq)]
pub enum RateError {
    Limit {
        got: f64,
    },
    Interval {
        got: f64,
    },
    Burst {
        got: f64,
    },
    MaxWait {
        got: f64,
    },
    TooShort {
        length: usize,
    },
    /// The memory serves a rate limiter of another rate.
    Mismatch,
    /// The memory holds something that is not a rate limiter.
    Foreign {
        found: u64,
    },
}

/// In the core's words; the binding words them with the JavaScript options.
impl std::fmt::Display for RateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RateError::Limit { got } => write!(f, "limit: 1 to {MAX_LIMIT}, got {got}"),
            RateError::Interval { got } => write!(f, "interval: 1 to {MAX_WAIT_MS} ms, got {got}"),
            RateError::Burst { got } => write!(f, "burst: 1 to {MAX_LIMIT}, got {got}"),
            RateError::MaxWait { got } => write!(f, "max wait: 0 to {MAX_WAIT_MS} ms, got {got}"),
            RateError::TooShort { length } => write!(f, "memory: {length} slots, {SLOTS} needed"),
            RateError::Mismatch => write!(f, "memory: a rate limiter of another rate"),
            RateError::Foreign { found } => write!(f, "memory: not a rate limiter ({found:#x})"),
        }
    }
}

impl std::error::Error for RateError {}

/// A rate, checked: the emission interval and the tolerance, in ns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub emission_ns: u64,
    pub tau_ns: u64,
}

impl Rate {
    pub fn new(limit: f64, interval_ms: f64, burst: f64) -> Result<Rate, RateError> {
        let integer = |v: f64, max: f64| v.fract() == 0.0 && (1.0..=max).contains(&v);
        if !integer(limit, f64::from(MAX_LIMIT)) {
            return Err(RateError::Limit { got: limit });
        }
        if !integer(interval_ms, f64::from(MAX_WAIT_MS)) {
            return Err(RateError::Interval { got: interval_ms });
        }
        if !integer(burst, f64::from(MAX_LIMIT)) {
            return Err(RateError::Burst { got: burst });
        }
        let emission_ns = (interval_ms as u64 * NS_PER_MS).div_ceil(limit as u64);
        Ok(Rate {
            emission_ns,
            tau_ns: (burst as u64 - 1).saturating_mul(emission_ns),
        })
    }

    /// CONFIG: the magic and a fingerprint (FNV-1a) of the rate.
    fn config(&self) -> u64 {
        let mut hash: u32 = 0x811c_9dc5;
        for byte in self
            .emission_ns
            .to_le_bytes()
            .into_iter()
            .chain(self.tau_ns.to_le_bytes())
        {
            hash = (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193);
        }
        u64::from(hash) | u64::from(RATE_MAGIC) << 32
    }
}

/// `maxWait` in ns, checked.
pub fn max_wait_ns(max_wait_ms: f64) -> Result<u64, RateError> {
    if !(0.0..=f64::from(MAX_WAIT_MS)).contains(&max_wait_ms) {
        return Err(RateError::MaxWait { got: max_wait_ms });
    }
    Ok((max_wait_ms * NS_PER_MS as f64) as u64)
}

/// What a call got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Admitted; it may go after `delay_ns` (0: now).
    Admitted { delay_ns: u64 },
    /// Refused: it would have had to wait `wait_ns`, more than its maxWait.
    Refused { wait_ns: u64 },
}

/// Counters of a rate limiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RateStats {
    pub admitted: u64,
    pub delayed: u64,
    pub rejected: u64,
}

pub struct RateLimiter<C> {
    cells: C,
    rate: Rate,
}

/// Marks `cells` (of `length` slots) as a rate limiter of `rate`, or joins
/// the one there.
pub fn claim<C: Cells>(cells: C, length: usize, rate: Rate) -> Result<RateLimiter<C>, RateError> {
    if length < SLOTS {
        return Err(RateError::TooShort { length });
    }
    match cells
        .wide(CONFIG)
        .compare_exchange(0, rate.config(), SeqCst, SeqCst)
    {
        Ok(_) => {}
        Err(found) if found == rate.config() => {}
        Err(found) if (found >> 32) as u32 == RATE_MAGIC => return Err(RateError::Mismatch),
        Err(found) => return Err(RateError::Foreign { found }),
    }
    Ok(RateLimiter { cells, rate })
}

impl<C: Cells> RateLimiter<C> {
    pub fn rate(&self) -> Rate {
        self.rate
    }

    /// Admits a call arriving at `now_ns` if it is due within `max_wait_ns`.
    pub fn acquire(&self, now_ns: u64, max_wait_ns: u64) -> Decision {
        let Rate {
            emission_ns,
            tau_ns,
        } = self.rate;
        let tat_word = self.cells.wide(TAT);
        let stale_after = tau_ns
            .saturating_add(emission_ns)
            .saturating_add(u64::from(MAX_WAIT_MS) * NS_PER_MS);
        let mut tat = tat_word.load(SeqCst);
        loop {
            let ahead = tat.saturating_sub(now_ns);
            let base = if ahead > stale_after {
                now_ns
            } else {
                tat.max(now_ns)
            };
            let due = base.saturating_sub(tau_ns).max(now_ns);
            let delay_ns = due - now_ns;
            if delay_ns > max_wait_ns {
                self.cells.wide(REJECTED).fetch_add(1, Relaxed);
                return Decision::Refused { wait_ns: delay_ns };
            }
            match tat_word.compare_exchange(tat, base.saturating_add(emission_ns), SeqCst, SeqCst) {
                Ok(_) => {
                    self.cells.wide(ADMITTED).fetch_add(1, Relaxed);
                    if delay_ns > 0 {
                        self.cells.wide(DELAYED).fetch_add(1, Relaxed);
                    }
                    return Decision::Admitted { delay_ns };
                }
                Err(actual) => tat = actual,
            }
        }
    }

    pub fn stats(&self) -> RateStats {
        RateStats {
            admitted: self.cells.wide(ADMITTED).load(Relaxed),
            delayed: self.cells.wide(DELAYED).load(Relaxed),
            rejected: self.cells.wide(REJECTED).load(Relaxed),
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::OwnedSlots;

    #[test]
    fn rates_out_of_range_are_refused() {
        assert_eq!(
            Rate::new(0.0, 1000.0, 1.0),
            Err(RateError::Limit { got: 0.0 })
        );
        assert_eq!(
            Rate::new(10.0, 0.5, 1.0),
            Err(RateError::Interval { got: 0.5 })
        );
        assert_eq!(
            Rate::new(10.0, 1000.0, 0.0),
            Err(RateError::Burst { got: 0.0 })
        );
        assert!(max_wait_ns(-1.0).is_err());
        assert!(max_wait_ns(f64::NAN).is_err());
        assert_eq!(max_wait_ns(1.5), Ok(1_500_000));
    }

    #[test]
    fn the_emission_interval_rounds_up() {
        let rate = Rate::new(3.0, 1.0, 2.0).unwrap();
        assert_eq!(rate.emission_ns, 333_334);
        assert_eq!(rate.tau_ns, 333_334);
    }

    #[test]
    fn another_rate_is_refused_over_the_same_memory() {
        let memory = OwnedSlots::with_len(SLOTS);
        let cells = crate::Slots::any_length(memory.slots()).unwrap();
        claim(cells, SLOTS, Rate::new(10.0, 1000.0, 1.0).unwrap()).unwrap();
        assert!(claim(cells, SLOTS, Rate::new(10.0, 1000.0, 1.0).unwrap()).is_ok());
        assert_eq!(
            claim(cells, SLOTS, Rate::new(11.0, 1000.0, 1.0).unwrap()).err(),
            Some(RateError::Mismatch)
        );
    }
}
