//! Where each value lives in the shared `Int32Array`.
//!
//! The layout is defined here once; the binding exports it to JavaScript as
//! `CircuitBreakerKeys`, so `Object.keys(CircuitBreakerKeys).length` is
//! [`SLOT_COUNT`] and every slot has a name.
//!
//! ```text
//!  slot  0..80   header: written on transitions, failures and control only
//!        0  STATE (+1 GENERATION)      the control word (words::ControlWord)
//!        2  TIMER (+3 TIMER_HI)        open stamp or probe lease (words::TimerWord)
//!        4  FAILURE_COUNT              consecutive failures
//!        5  LAYOUT_VERSION             0 in a fresh buffer, LAYOUT_MAGIC once used
//!        6  LAST_FAILURE_TIME (+7 _HI) ms since the epoch, 0 = never
//!        8  MODE                       switches (words::MODE_DISABLED, words::MODE_FLEET_HOLD)
//!        9  FLEET_LEASE                the fleet probe lease this host acts on, see `fleet`
//!       10  REOPENINGS                 failed probes since the breaker last closed
//!       12  HALF_OPEN (+13 _HI)        the probe word (words::ProbeWord)
//!       14  FEATURES (+15 _HI)         what lies past SLOT_COUNT (features::Features)
//!       16  PROBE_COUNT (+17 _HI)      probes admitted, ever
//!       18  ISOLATIONS (+19 _HI)       the isolation word (words::IsolationWord)
//!       32..80  TRANSITION_LOG         the last 8 transitions, 6 slots each
//!                                      (words::LogHead, words::LogInfo,
//!                                      words::LogPid)
//!  slot 80 + 32*k  stripe k of STRIPES, one per group of threads
//!        +0 TOTAL_REQUEST_COUNT  +2 SUCCESS_COUNT  +4 FAILURE_TOTAL
//!        +6 REJECTION_COUNT      +8 LAST_SUCCESS_TIME  +10 TIMEOUT_COUNT
//!        +12 FALLBACK_COUNT      +14 SLOW_CALL_COUNT   +16 FILTERED_COUNT
//!        (each 64-bit)           +18..32 reserved
//!  slot SLOT_COUNT..  optional regions (failure-rate window, latency
//!        histogram) when the breaker's options ask for them
//! ```
//!
//! 64-bit values take two slots, low half first (little-endian), at an even
//! index, so JavaScript can read them with `Atomics.load` on a
//! `BigInt64Array` over the same buffer at `index / 2`.
//!
//! Counters that every call bumps are striped: each thread writes its own
//! stripe, 128 bytes from the next, so two cores never fight over one cache
//! line on the success path. A stripe's content is at most 18 slots, which
//! keeps stripes on distinct cache lines for any 8-byte aligned buffer.

/// The control word ([`crate::words::ControlWord`]); its low half, the state, is this slot.
pub const STATE: usize = 0;
/// High half of the control word: bumped by every transition the core makes.
pub const GENERATION: usize = 1;
/// The timer word ([`crate::words::TimerWord`]): the open stamp or the probe lease.
pub const TIMER: usize = 2;
/// The run of consecutive failures, reset by any success.
pub const FAILURE_COUNT: usize = 4;
/// Zero in a fresh buffer; [`LAYOUT_MAGIC`] once a breaker has used it.
pub const LAYOUT_VERSION: usize = 5;
/// Time of the most recent failure, ms since the Unix epoch (64-bit).
pub const LAST_FAILURE_TIME: usize = 6;
/// Shared switches (32-bit): see [`crate::words::MODE_DISABLED`].
pub const MODE: usize = 8;
/// The fleet probe lease this host is acting on (0: none), so that one
/// process of the host acts on a lease. See `fleet`.
pub const FLEET_LEASE: usize = 9;
/// The isolation word ([`crate::words::IsolationWord`]): while it holds
/// any isolation the breaker stays OPEN.
pub const ISOLATIONS: usize = 18;
/// Failed probes since the breaker last closed: the backoff exponent.
pub const REOPENINGS: usize = 10;
/// The probe word ([`crate::words::ProbeWord`]): the half-open episode's probes.
pub const HALF_OPEN: usize = 12;
/// Describes the optional regions past [`SLOT_COUNT`] (64-bit, 0 = unclaimed).
pub const FEATURES: usize = 14;
/// Probes admitted, ever (64-bit).
pub const PROBE_COUNT: usize = 16;
/// First slot of the transition log.
pub const TRANSITION_LOG: usize = 32;
/// Entries in the transition log; entry `g % LOG_ENTRIES` holds generation `g`.
pub const LOG_ENTRIES: usize = 8;
/// Slots per log entry: three 64-bit words ([`crate::words::LogHead`],
/// [`crate::words::LogInfo`], [`crate::words::LogPid`]).
pub const LOG_ENTRY_SLOTS: usize = 6;
const _: () = assert!(TRANSITION_LOG + LOG_ENTRIES * LOG_ENTRY_SLOTS <= STRIPE_BASE);
const _: () = assert!(LOG_ENTRY_SLOTS.is_multiple_of(2));

/// First slot of the first stripe.
pub const STRIPE_BASE: usize = 80;
/// Slots from one stripe to the next: 128 bytes.
pub const STRIPE_STRIDE: usize = 32;
/// Number of stripes. Threads beyond this share stripes (still exact, only slower).
pub const STRIPES: usize = 8;

/// Offsets of the 64-bit counters inside a stripe.
pub const REQUESTS: usize = 0;
pub const SUCCESSES: usize = 2;
pub const FAILURES: usize = 4;
pub const REJECTIONS: usize = 6;
pub const LAST_SUCCESS_TIME: usize = 8;
/// Calls that timed out (also counted as failures).
pub const TIMEOUTS: usize = 10;
/// Calls answered by a fallback (open or failure).
pub const FALLBACKS: usize = 12;
/// Calls slower than `slowCallDuration` (successes or failures).
pub const SLOW_CALLS: usize = 14;
/// Errors the `errorFilter` accepted (also counted as successes).
pub const FILTERED: usize = 16;

/// Length of the array a breaker needs.
pub const SLOT_COUNT: usize = STRIPE_BASE + STRIPES * STRIPE_STRIDE;

/// "CB" and layout version 4 (3 had 4-slot log entries, 2 a 32-bit isolation
/// word). A buffer holding anything else in
/// [`LAYOUT_VERSION`] is not a breaker of this layout.
pub const LAYOUT_MAGIC: i32 = 0x4342_0004;

/// Index of a counter in stripe `stripe` (taken modulo [`STRIPES`]).
pub const fn stripe_slot(stripe: usize, offset: usize) -> usize {
    STRIPE_BASE + (stripe % STRIPES) * STRIPE_STRIDE + offset
}

/// Which of the per-thread counter stripes a caller writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stripe(usize);

impl Stripe {
    /// The stripe for the `n`-th thread (wraps around [`STRIPES`]).
    pub const fn new(n: usize) -> Stripe {
        Stripe(n % STRIPES)
    }

    /// Which stripe this is, from 0 to [`STRIPES`] - 1.
    pub const fn index(self) -> usize {
        self.0
    }

    /// Index of the counter at `offset` in this stripe.
    #[inline]
    pub const fn slot(self, offset: usize) -> usize {
        stripe_slot(self.0, offset)
    }
}

const HEADER_NAMES: [(usize, &str); 19] = [
    (STATE, "STATE"),
    (GENERATION, "GENERATION"),
    (TIMER, "TIMER"),
    (TIMER + 1, "TIMER_HI"),
    (FAILURE_COUNT, "FAILURE_COUNT"),
    (LAYOUT_VERSION, "LAYOUT_VERSION"),
    (LAST_FAILURE_TIME, "LAST_FAILURE_TIME"),
    (LAST_FAILURE_TIME + 1, "LAST_FAILURE_TIME_HI"),
    (MODE, "MODE"),
    (FLEET_LEASE, "FLEET_LEASE"),
    (REOPENINGS, "REOPENINGS"),
    (HALF_OPEN, "HALF_OPEN"),
    (HALF_OPEN + 1, "HALF_OPEN_HI"),
    (FEATURES, "FEATURES"),
    (FEATURES + 1, "FEATURES_HI"),
    (PROBE_COUNT, "PROBE_COUNT"),
    (PROBE_COUNT + 1, "PROBE_COUNT_HI"),
    (ISOLATIONS, "ISOLATIONS"),
    (ISOLATIONS + 1, "ISOLATIONS_HI"),
];

/// Stripe offsets and names of the per-thread 64-bit counters.
pub const STRIPE_COUNTERS: [(usize, &str); 9] = [
    (REQUESTS, "TOTAL_REQUEST_COUNT"),
    (SUCCESSES, "SUCCESS_COUNT"),
    (FAILURES, "FAILURE_TOTAL"),
    (REJECTIONS, "REJECTION_COUNT"),
    (LAST_SUCCESS_TIME, "LAST_SUCCESS_TIME"),
    (TIMEOUTS, "TIMEOUT_COUNT"),
    (FALLBACKS, "FALLBACK_COUNT"),
    (SLOW_CALLS, "SLOW_CALL_COUNT"),
    (FILTERED, "FILTERED_COUNT"),
];

/// Every slot's name, in index order: `names()[i]` names slot `i`.
///
/// Stripe 0 carries the plain names (`TOTAL_REQUEST_COUNT`, ...), stripe `k`
/// the same names with `_k` appended; high halves end in `_HI`; unused slots
/// are `RESERVED_<index>`.
pub fn names() -> Vec<String> {
    let mut names: Vec<String> = (0..SLOT_COUNT).map(|i| format!("RESERVED_{i}")).collect();
    for (index, name) in HEADER_NAMES {
        names[index] = name.to_string();
    }
    for entry in 0..LOG_ENTRIES {
        for (offset, part) in ["", "_HI", "_INFO", "_INFO_HI", "_PID", "_PID_TAG"]
            .iter()
            .enumerate()
        {
            names[TRANSITION_LOG + entry * LOG_ENTRY_SLOTS + offset] =
                format!("TRANSITION_LOG_{entry}{part}");
        }
    }
    for stripe in 0..STRIPES {
        let suffix = if stripe == 0 {
            String::new()
        } else {
            format!("_{stripe}")
        };
        for (offset, name) in STRIPE_COUNTERS {
            let slot = stripe_slot(stripe, offset);
            names[slot] = format!("{name}{suffix}");
            names[slot + 1] = format!("{name}{suffix}_HI");
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_slot_has_one_unique_name() {
        let names = names();
        assert_eq!(names.len(), SLOT_COUNT);
        let unique: HashSet<&String> = names.iter().collect();
        assert_eq!(unique.len(), SLOT_COUNT);
        assert_eq!(names[STATE], "STATE");
        assert_eq!(names[FAILURE_COUNT], "FAILURE_COUNT");
        assert_eq!(names[stripe_slot(0, REQUESTS)], "TOTAL_REQUEST_COUNT");
        assert_eq!(names[stripe_slot(3, SUCCESSES) + 1], "SUCCESS_COUNT_3_HI");
    }

    #[test]
    fn wide_values_sit_at_even_slots() {
        for index in [
            STATE,
            TIMER,
            LAST_FAILURE_TIME,
            HALF_OPEN,
            FEATURES,
            PROBE_COUNT,
            ISOLATIONS,
        ] {
            assert_eq!(index % 2, 0);
        }
        for entry in 0..LOG_ENTRIES {
            assert_eq!((TRANSITION_LOG + entry * LOG_ENTRY_SLOTS) % 2, 0);
        }
        for stripe in 0..STRIPES {
            for (offset, _) in STRIPE_COUNTERS {
                assert_eq!(stripe_slot(stripe, offset) % 2, 0);
            }
        }
    }

    #[test]
    fn stripes_never_share_a_cache_line_in_an_8_byte_aligned_buffer() {
        // Largest byte a stripe touches, for every 8-byte alignment of the
        // buffer inside a 64-byte line.
        let used = (STRIPE_COUNTERS.iter().map(|(o, _)| o).max().unwrap() + 2) * 4;
        assert!(used <= 18 * 4);
        for misalignment in (0..64).step_by(8) {
            let line = |byte: usize| (misalignment + byte) / 64;
            // The header and every stripe, as byte ranges.
            // The header's busy part (the transition log is written on transitions only).
            let mut ranges = vec![(0, (ISOLATIONS + 2) * 4)];
            for stripe in 0..STRIPES {
                let start = stripe_slot(stripe, 0) * 4;
                ranges.push((start, start + used));
            }
            for pair in ranges.windows(2) {
                assert!(
                    line(pair[0].1 - 1) < line(pair[1].0),
                    "misalignment {misalignment}"
                );
            }
        }
    }
}
