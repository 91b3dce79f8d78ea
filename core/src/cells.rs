//! The memory a breaker works on.
//!
//! In production that is the `Int32Array` JavaScript allocated, seen as
//! `&[AtomicI32]`; 64-bit values are two adjacent, 8-byte aligned slots read
//! and written as one `AtomicU64`. Under `cfg(loom)` the same trait is backed
//! by loom's model atomics so every interleaving can be explored.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicI32, AtomicU64};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicI32, AtomicU64};

use crate::layout::{LAYOUT_MAGIC, LAYOUT_VERSION, SLOT_COUNT};
use std::sync::atomic::Ordering;

/// Access to the slots of one breaker.
pub trait Cells {
    /// The 32-bit slot at `index` (within the slots the breaker was given).
    fn word(&self, index: usize) -> &AtomicI32;
    /// The 64-bit value at slots `index` and `index + 1` (`index` even).
    fn wide(&self, index: usize) -> &AtomicU64;
}

/// Why a slice cannot hold a breaker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemoryError {
    /// Fewer than [`SLOT_COUNT`] slots.
    TooShort { length: usize, required: usize },
    /// The first slot is not 8-byte aligned, so 64-bit values cannot be atomic.
    Misaligned { byte_address_mod_8: usize },
    /// [`LAYOUT_VERSION`] holds something other than 0 or [`LAYOUT_MAGIC`].
    ForeignLayout { found: i32 },
}

impl std::fmt::Display for MemoryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MemoryError::TooShort { length, required } => write!(
                f,
                "must have at least {required} elements \
                 (Object.keys(CircuitBreakerKeys).length), got {length}"
            ),
            MemoryError::Misaligned { byte_address_mod_8 } => write!(
                f,
                "must start at a multiple of 8 bytes (its byteOffset must be a multiple of 8), \
                 got an address {byte_address_mod_8} bytes past one"
            ),
            MemoryError::ForeignLayout { found } => write!(
                f,
                "holds data that is not a circuit breaker of this layout \
                 (LAYOUT_VERSION slot is {found}, expected 0 or {LAYOUT_MAGIC})"
            ),
        }
    }
}

impl std::error::Error for MemoryError {}

/// Marks the buffer as used by this layout, or tells why it cannot be.
/// A buffer of zeroes becomes ours; a buffer already ours is joined untouched.
pub fn claim_layout<C: Cells>(cells: &C) -> Result<(), MemoryError> {
    match cells.word(LAYOUT_VERSION).compare_exchange(
        0,
        LAYOUT_MAGIC,
        Ordering::AcqRel,
        Ordering::Acquire,
    ) {
        Ok(_) => Ok(()),
        Err(found) if found == LAYOUT_MAGIC => Ok(()),
        Err(found) => Err(MemoryError::ForeignLayout { found }),
    }
}

#[cfg(not(loom))]
pub use slots::Slots;

#[cfg(not(loom))]
mod slots {
    use super::*;

    /// A breaker's view of a shared `Int32Array`.
    #[derive(Clone, Copy)]
    pub struct Slots<'a> {
        slots: &'a [AtomicI32],
    }

    impl<'a> Slots<'a> {
        /// Checks that `slots` can hold a breaker: long enough for the base
        /// layout and 8-byte aligned. Optional regions past [`SLOT_COUNT`]
        /// are checked by `features::claim_features`.
        pub fn new(slots: &'a [AtomicI32]) -> Result<Self, MemoryError> {
            let slots = Self::any_length(slots)?;
            if slots.len() < SLOT_COUNT {
                return Err(MemoryError::TooShort {
                    length: slots.len(),
                    required: SLOT_COUNT,
                });
            }
            Ok(slots)
        }

        /// Checks only that `slots` is 8-byte aligned: for memory that holds
        /// something other than a breaker (a bulkhead, a rate limiter),
        /// whose length its owner checks.
        pub fn any_length(slots: &'a [AtomicI32]) -> Result<Self, MemoryError> {
            let misalignment = slots.as_ptr() as usize % std::mem::align_of::<AtomicU64>();
            if misalignment != 0 {
                return Err(MemoryError::Misaligned {
                    byte_address_mod_8: misalignment,
                });
            }
            Ok(Slots { slots })
        }
    }

    impl Slots<'_> {
        /// Number of slots.
        pub fn len(&self) -> usize {
            self.slots.len()
        }

        /// Never true for a breaker's `Slots`, which has at least [`SLOT_COUNT`] slots.
        pub fn is_empty(&self) -> bool {
            self.slots.is_empty()
        }
    }

    impl Cells for Slots<'_> {
        #[inline]
        fn word(&self, index: usize) -> &AtomicI32 {
            &self.slots[index]
        }

        #[inline]
        fn wide(&self, index: usize) -> &AtomicU64 {
            let pair = &self.slots[index..index + 2];
            // SAFETY: `pair` is two adjacent `AtomicI32`, 8 bytes in all, and
            // starts 8-byte aligned: the slice start is 8-aligned (checked in
            // `new`) and every 64-bit value sits at an even index (a layout
            // test checks it). `AtomicU64` has the size and alignment of `u64`
            // and no invalid bit patterns, and the pair's lifetime bounds the
            // returned reference. The core only ever touches these slots as
            // one 64-bit atomic; JavaScript may read them as halves, which its
            // memory model defines and the hardware keeps coherent.
            unsafe { &*(pair.as_ptr() as *const AtomicU64) }
        }
    }
}

/// Model memory for loom: the same slots, as loom atomics.
#[cfg(loom)]
pub struct ModelCells {
    words: Vec<AtomicI32>,
    wides: Vec<AtomicU64>,
}

#[cfg(loom)]
impl ModelCells {
    pub fn new() -> Self {
        Self::with_len(SLOT_COUNT)
    }

    /// Model memory of `len` slots (`len` even, at least [`SLOT_COUNT`]).
    pub fn with_len(len: usize) -> Self {
        ModelCells {
            words: (0..len).map(|_| AtomicI32::new(0)).collect(),
            wides: (0..len / 2).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

#[cfg(loom)]
impl Default for ModelCells {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(loom)]
impl Cells for ModelCells {
    fn word(&self, index: usize) -> &AtomicI32 {
        &self.words[index]
    }
    fn wide(&self, index: usize) -> &AtomicU64 {
        &self.wides[index / 2]
    }
}
