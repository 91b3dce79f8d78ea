//! A latency histogram in shared memory, striped per thread like the
//! counters of the base layout.
//!
//! ```text
//!  base + STRIPE_SLOTS*k   stripe k of STRIPES
//!    +2i   (i < BUCKETS)   calls in bucket i (64-bit)
//!    +256  SUM_MICROS      sum of the durations recorded, µs (64-bit, wraps)
//!    +258  MAX_MICROS      longest duration recorded, µs (64-bit)
//!    +260 .. +272          padding: the next stripe starts on another cache line
//! ```
//!
//! Durations are in microseconds. Buckets 0..4 hold 0, 1, 2 and 3 µs
//! exactly; above, every power of two is split into 4 equal sub-buckets, so
//! a bucket is never wider than a quarter of its lower bound. The last
//! bucket, from 7 · 2^30 µs (about 2 hours), holds everything longer.
//!
//! A caller writes only its own stripe; [`read`] sums them all. Counters are
//! `Relaxed`: a snapshot taken while others record may mix old and new
//! values (say, a count whose duration is not in MAX_MICROS yet), and
//! [`Snapshot`]'s methods accept any such mix, as they accept junk.

use crate::cells::Cells;
use crate::layout::{Stripe, STRIPES};
use std::sync::atomic::Ordering::Relaxed;

/// Buckets per stripe.
pub const BUCKETS: usize = 128;
/// Slots per stripe: BUCKETS 64-bit counts, then SUM and MAX (64-bit µs), padded to 64 bytes.
pub const STRIPE_SLOTS: usize = 272;
/// Slots of the whole histogram region.
pub const SLOTS: usize = STRIPE_SLOTS * STRIPES;
/// Offset in a stripe of the sum of durations (64-bit µs).
pub const SUM_MICROS: usize = 2 * BUCKETS;
/// Offset in a stripe of the longest duration (64-bit µs).
pub const MAX_MICROS: usize = SUM_MICROS + 2;

/// The bucket a duration of `micros` falls in.
pub fn bucket_of(micros: u64) -> usize {
    if micros < 4 {
        return micros as usize;
    }
    let e = 63 - micros.leading_zeros() as usize; // >= 2
    let sub = ((micros >> (e - 2)) & 3) as usize;
    (4 * (e - 1) + sub).min(BUCKETS - 1)
}

/// The durations bucket `i` holds: `(lower inclusive, upper exclusive)` in µs.
/// The last bucket's upper bound is `u64::MAX`; `i` past it is taken as it.
pub fn bucket_bounds(i: usize) -> (u64, u64) {
    let i = i.min(BUCKETS - 1);
    if i < 4 {
        return (i as u64, i as u64 + 1);
    }
    let shift = i / 4 - 1; // e - 2
    let sub = (i % 4) as u64;
    let lower = (4 + sub) << shift;
    let upper = if i == BUCKETS - 1 {
        u64::MAX
    } else {
        (5 + sub) << shift
    };
    (lower, upper)
}

fn stripe_base(base: usize, stripe: Stripe) -> usize {
    base + (stripe.index() % STRIPES) * STRIPE_SLOTS
}

/// Records one call of `micros`, in `stripe` only.
pub fn record<C: Cells>(cells: &C, base: usize, stripe: Stripe, micros: u64) {
    let at = stripe_base(base, stripe);
    cells.wide(at + 2 * bucket_of(micros)).fetch_add(1, Relaxed);
    cells.wide(at + SUM_MICROS).fetch_add(micros, Relaxed);
    let max = cells.wide(at + MAX_MICROS);
    // Most calls are not the longest: a load spares the cache line a write.
    if max.load(Relaxed) < micros {
        max.fetch_max(micros, Relaxed);
    }
}

/// All stripes summed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Calls per bucket ([`BUCKETS`] entries; see [`bucket_bounds`]).
    pub counts: Vec<u64>,
    /// Calls in all buckets.
    pub count: u64,
    /// Sum of their durations, µs (wraps around at 2^64).
    pub sum_micros: u64,
    /// Longest duration, µs.
    pub max_micros: u64,
}

impl Snapshot {
    /// An empty histogram.
    pub fn empty() -> Self {
        Snapshot {
            counts: vec![0; BUCKETS],
            count: 0,
            sum_micros: 0,
            max_micros: 0,
        }
    }

    /// The `q`-quantile in µs (`q` in 0..=1, clamped): the upper bound of the
    /// bucket holding the `ceil(q * count)`-th smallest duration (at least
    /// the first), but never above `max_micros`. 0 when nothing was recorded.
    pub fn percentile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        // NaN and q <= 0 ask for the smallest duration.
        let q = if q > 0.0 { q.min(1.0) } else { 0.0 };
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0u64;
        for (i, &n) in self.counts.iter().enumerate().take(BUCKETS) {
            seen = seen.saturating_add(n);
            if seen >= rank {
                return bucket_bounds(i).1.min(self.max_micros);
            }
        }
        // Only when `count` disagrees with `counts` (a hand-made snapshot).
        self.max_micros
    }

    /// Calls in the buckets whose upper bound is at most `upper_micros`: every
    /// one of them took less than `upper_micros` µs. For a Prometheus bucket
    /// `le="x"` pass `x` in µs.
    pub fn cumulative_below(&self, upper_micros: u64) -> u64 {
        self.counts
            .iter()
            .take(BUCKETS)
            .enumerate()
            .take_while(|(i, _)| bucket_bounds(*i).1 <= upper_micros)
            .fold(0u64, |sum, (_, &n)| sum.saturating_add(n))
    }

    /// The mean duration in µs, 0 when nothing was recorded.
    pub fn mean_micros(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum_micros as f64 / self.count as f64
        }
    }
}

/// All stripes summed (counts saturate, the sum wraps like its slots).
pub fn read<C: Cells>(cells: &C, base: usize) -> Snapshot {
    let mut snapshot = Snapshot::empty();
    for stripe in 0..STRIPES {
        let at = stripe_base(base, Stripe::new(stripe));
        for (i, total) in snapshot.counts.iter_mut().enumerate() {
            *total = total.saturating_add(cells.wide(at + 2 * i).load(Relaxed));
        }
        snapshot.sum_micros = snapshot
            .sum_micros
            .wrapping_add(cells.wide(at + SUM_MICROS).load(Relaxed));
        snapshot.max_micros = snapshot
            .max_micros
            .max(cells.wide(at + MAX_MICROS).load(Relaxed));
    }
    snapshot.count = snapshot
        .counts
        .iter()
        .fold(0u64, |sum, &n| sum.saturating_add(n));
    snapshot
}

/// Zeroes the whole region. Calls recorded meanwhile may survive in part
/// (a count without its duration in the sum, say).
pub fn clear<C: Cells>(cells: &C, base: usize) {
    for stripe in 0..STRIPES {
        let at = stripe_base(base, Stripe::new(stripe));
        for slot in (0..=MAX_MICROS).step_by(2) {
            cells.wide(at + slot).store(0, Relaxed);
        }
    }
}
