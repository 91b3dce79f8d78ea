//! The optional regions past [`SLOT_COUNT`]: a failure-rate window, a
//! latency histogram and a bulkhead.
//!
//! A breaker that asks for neither needs exactly [`SLOT_COUNT`] slots. One
//! that asks for a window or a histogram needs a longer array, and every
//! breaker over the same memory must ask for the same regions: the first one
//! records its [`Features`] in the `FEATURES` slot (a 64-bit descriptor), and
//! a breaker whose options describe other regions is refused.
//!
//! ```text
//!   SLOT_COUNT ..                 the window, if any (window::slots)
//!   histogram_base() ..           the histogram, if any (histogram::SLOTS)
//!   bulkhead_base() ..            the bulkhead, if any (bulkhead::slots_needed)
//! ```
//!
//! Descriptor bits: 63 claimed; 0..2 window kind (0 none, 1 count, 2 time);
//! 2 histogram; 3 bulkhead; 8..16 time-window buckets; 16..48 window size
//! (calls or ms). The bulkhead's sizes are not in the descriptor: the
//! bulkhead records them itself, in its own header, and refuses others
//! (`bulkhead::claim`). A bulkhead's length depends on its sizes, so
//! [`Features::slots_needed`] counts the smallest one; `Config::slots_needed`
//! the one the options ask for.

use crate::cells::Cells;
use crate::layout::{FEATURES, SLOT_COUNT};
use crate::window::WindowSpec;
use std::sync::atomic::Ordering::{AcqRel, Acquire};

/// The optional regions of one breaker's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Features {
    pub window: Option<WindowSpec>,
    pub histogram: bool,
    /// A bulkhead region (`maxConcurrent` on the breaker).
    pub bulkhead: bool,
}

const CLAIMED: u64 = 1 << 63;

/// Why a breaker's options do not fit the memory it was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeaturesError {
    /// The memory already serves breakers with other regions.
    Mismatch { found: Features, wanted: Features },
    /// The descriptor slot holds something no breaker writes.
    Unknown { found: u64 },
    /// The memory is too short for the regions asked for.
    TooShort { length: usize, required: usize },
}

impl Features {
    /// First slot of the window region.
    pub fn window_base(&self) -> usize {
        SLOT_COUNT
    }

    /// First slot of the histogram region (64-byte aligned past the window).
    pub fn histogram_base(&self) -> usize {
        let end = SLOT_COUNT + self.window.map_or(0, |w| w.slots());
        end.div_ceil(16) * 16
    }

    /// End of the window and histogram regions.
    fn regions_end(&self) -> usize {
        if self.histogram {
            self.histogram_base() + crate::histogram::SLOTS
        } else {
            SLOT_COUNT + self.window.map_or(0, |w| w.slots())
        }
    }

    /// First slot of the bulkhead region (64-byte aligned past the others,
    /// so that each permit keeps a cache line of its own).
    pub fn bulkhead_base(&self) -> usize {
        self.regions_end().div_ceil(16) * 16
    }

    /// Length of the array these features need, with the smallest bulkhead
    /// if they have one (see `Config::slots_needed` for the exact length).
    pub fn slots_needed(&self) -> usize {
        if self.bulkhead {
            self.bulkhead_base() + crate::bulkhead::slots_needed(1, 0)
        } else {
            self.regions_end()
        }
    }

    /// The 64-bit descriptor stored in `FEATURES`.
    pub fn descriptor(&self) -> u64 {
        let (kind, buckets, size) = match self.window {
            None => (0u64, 0u64, 0u64),
            Some(WindowSpec::Count { calls }) => (1, 0, u64::from(calls)),
            Some(WindowSpec::Time { ms, buckets }) => (2, u64::from(buckets), u64::from(ms)),
        };
        CLAIMED
            | kind
            | (u64::from(self.histogram) << 2)
            | (u64::from(self.bulkhead) << 3)
            | (buckets << 8)
            | (size << 16)
    }

    /// Reads a descriptor; `None` for 0 (unclaimed) or bits no build writes.
    pub fn from_descriptor(word: u64) -> Option<Features> {
        if word & CLAIMED == 0 {
            return None;
        }
        let buckets = ((word >> 8) & 0xff) as u32;
        let size = ((word >> 16) & 0xffff_ffff) as u32;
        let window = match word & 0b11 {
            0 => None,
            1 => Some(WindowSpec::Count { calls: size }),
            2 => Some(WindowSpec::Time { ms: size, buckets }),
            _ => return None,
        };
        let features = Features {
            window,
            histogram: word & 0b100 != 0,
            bulkhead: word & 0b1000 != 0,
        };
        let valid = window.is_none_or(|w| w.is_valid()) && features.descriptor() == word;
        valid.then_some(features)
    }
}

impl std::fmt::Display for Features {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.window {
            None => write!(f, "no failure-rate window")?,
            Some(WindowSpec::Count { calls }) => write!(f, "a window of the last {calls} calls")?,
            Some(WindowSpec::Time { ms, buckets }) => {
                write!(f, "a window of the last {ms} ms in {buckets} buckets")?
            }
        }
        if self.histogram {
            write!(f, ", a latency histogram")?
        } else {
            write!(f, ", no latency histogram")?
        }
        if self.bulkhead {
            write!(f, " and a bulkhead (maxConcurrent)")
        } else {
            write!(f, " and no bulkhead (maxConcurrent)")
        }
    }
}

impl std::fmt::Display for FeaturesError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FeaturesError::Mismatch { found, wanted } => write!(
                f,
                "is already used by breakers with {found}; these options ask for {wanted}, \
                 and every breaker sharing an array must ask for the same"
            ),
            FeaturesError::Unknown { found } => write!(
                f,
                "holds data that is not a circuit breaker of this layout \
                 (FEATURES slots are {found:#x})"
            ),
            FeaturesError::TooShort { length, required } => write!(
                f,
                "must have at least {required} elements for these options \
                 (CircuitBreaker.arrayLength(options)), got {length}"
            ),
        }
    }
}

impl std::error::Error for FeaturesError {}

/// Checks that `cells` (of `length` slots) can hold `features` and records
/// them, or checks that they are the ones already recorded.
pub fn claim_features<C: Cells>(
    cells: &C,
    length: usize,
    features: &Features,
) -> Result<(), FeaturesError> {
    let required = features.slots_needed();
    if length < required {
        return Err(FeaturesError::TooShort { length, required });
    }
    let wanted = features.descriptor();
    match cells
        .wide(FEATURES)
        .compare_exchange(0, wanted, AcqRel, Acquire)
    {
        Ok(_) => Ok(()),
        Err(found) if found == wanted => Ok(()),
        Err(found) => match Features::from_descriptor(found) {
            Some(found) => Err(FeaturesError::Mismatch {
                found,
                wanted: *features,
            }),
            None => Err(FeaturesError::Unknown { found }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_round_trip() {
        let cases = [
            Features::default(),
            Features {
                window: Some(WindowSpec::Count { calls: 100 }),
                histogram: false,
                bulkhead: false,
            },
            Features {
                window: Some(WindowSpec::Time {
                    ms: 10_000,
                    buckets: 10,
                }),
                histogram: true,
                bulkhead: false,
            },
            Features {
                window: None,
                histogram: true,
                bulkhead: false,
            },
            Features {
                window: Some(WindowSpec::Count { calls: 7 }),
                histogram: true,
                bulkhead: true,
            },
        ];
        for features in cases {
            assert_eq!(
                Features::from_descriptor(features.descriptor()),
                Some(features)
            );
        }
        assert_eq!(Features::from_descriptor(0), None);
        assert_eq!(Features::from_descriptor(CLAIMED | 3), None);
    }

    #[test]
    fn plain_breakers_need_exactly_the_base_layout() {
        assert_eq!(Features::default().slots_needed(), SLOT_COUNT);
        let windowed = Features {
            window: Some(WindowSpec::Count { calls: 10 }),
            histogram: false,
            bulkhead: false,
        };
        assert!(windowed.slots_needed() > SLOT_COUNT);
        let both = Features {
            histogram: true,
            bulkhead: false,
            ..windowed
        };
        assert!(both.histogram_base() >= windowed.slots_needed());
        assert_eq!(both.histogram_base() % 16, 0);
        let guarded = Features {
            bulkhead: true,
            ..both
        };
        assert!(guarded.bulkhead_base() >= both.slots_needed());
        assert_eq!(guarded.bulkhead_base() % 16, 0);
    }
}
