//! A circuit breaker whose whole state lives in shared memory.
//!
//! Everything here works on slots (`&[AtomicI32]`) that many threads, or many
//! processes, may share. Nothing reads a clock (the time is a [`Clock`] argument),
//! nothing blocks, nothing panics on any slot contents, and nothing knows
//! about Node.js: the napi binding only converts values.
//!
//! ```text
//!   breaker    the Breaker type; breaker::machine (the state machine),
//!              breaker::overrides (isolate, reset, disable, force half-open)
//!   words      the packed header words, their bits and invariants
//!   layout     where every slot lives; Stripe
//!   config     settings, checked; ConfigError as values
//!   counters   striped counters, the failure run, Totals, Marks
//!   log        the transition log
//!   features   the optional regions: window (failure rate), histogram (latency)
//!   cells      the memory (slots, or loom's model atomics); clock; file
//!   bulkhead   a bulkhead: permits shared by every thread and process
//!   rate_limiter  a rate limiter: GCRA in one 64-bit word
//! ```
//!
//! Modules depend downwards only: `breaker` uses everything below it,
//! `features` uses `window` and `histogram`, and those use `layout`/`cells`.

pub mod breaker;
pub mod bulkhead;
pub mod cells;
pub mod clock;
pub mod config;
pub mod counters;
pub mod features;
pub mod file;
pub mod fleet;
pub mod histogram;
pub mod layout;
pub mod log;
pub mod rate_limiter;
pub mod window;
mod words;

pub use breaker::{Admission, Breaker, Overrides, Ticket, Transition};
#[cfg(not(loom))]
pub use cells::Slots;
pub use cells::{claim_layout, Cells, MemoryError};
pub use clock::{Clock, Now, ReadOnce};
pub use config::{Config, ConfigError, Policies, Range, RatePolicy, Setting};
pub use counters::{Marks, Totals, WALL_STEP_MS};
pub use layout::Stripe;
pub use log::{LogEntry, LogRead};
#[cfg(not(loom))]
pub use owned::OwnedSlots;
pub use words::{State, MAX_ISOLATIONS};

#[cfg(not(loom))]
mod owned {
    use crate::cells::{AtomicI32, AtomicU64};
    use crate::layout::SLOT_COUNT;

    /// Breaker memory allocated by Rust, for Rust users and tests: zeroed,
    /// 8-byte aligned, [`SLOT_COUNT`] slots.
    pub struct OwnedSlots {
        storage: Box<[AtomicU64]>,
    }

    impl OwnedSlots {
        pub fn new() -> Self {
            Self::with_len(SLOT_COUNT)
        }

        /// Zeroed memory of `len` slots (rounded up to even), for breakers
        /// whose options need more than the base layout.
        pub fn with_len(len: usize) -> Self {
            OwnedSlots {
                storage: (0..len.div_ceil(2)).map(|_| AtomicU64::new(0)).collect(),
            }
        }

        pub fn slots(&self) -> &[AtomicI32] {
            // SAFETY: each `AtomicU64` is 8 bytes, 8-aligned, with no invalid
            // bit patterns; two `AtomicI32` (4 bytes, 4-aligned each) tile it
            // exactly, so the storage is also `2 * len` valid `AtomicI32`,
            // borrowed for as long as `self`.
            unsafe {
                std::slice::from_raw_parts(
                    self.storage.as_ptr() as *const AtomicI32,
                    self.storage.len() * 2,
                )
            }
        }
    }

    impl Default for OwnedSlots {
        fn default() -> Self {
            Self::new()
        }
    }
}
