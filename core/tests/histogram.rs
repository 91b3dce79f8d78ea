//! The latency histogram: bucket arithmetic, percentiles of known
//! distributions, stripes summed across real threads, junk in the slots.

use breaker_core::cells::Cells;
use breaker_core::features::Features;
use breaker_core::histogram::{
    self, bucket_bounds, bucket_of, Snapshot, BUCKETS, MAX_MICROS, SLOTS, STRIPE_SLOTS, SUM_MICROS,
};
use breaker_core::layout::STRIPES;
use breaker_core::{OwnedSlots, Slots, Stripe};
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Barrier};
use std::thread;

const FEATURES: Features = Features {
    window: None,
    histogram: true,
    bulkhead: false,
};

fn memory() -> OwnedSlots {
    // Two spare slots past the region, to see that nothing writes there.
    OwnedSlots::with_len(FEATURES.slots_needed() + 2)
}

fn slots(memory: &OwnedSlots) -> Slots<'_> {
    Slots::new(memory.slots()).expect("aligned and long enough")
}

fn base() -> usize {
    FEATURES.histogram_base()
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// Values worth checking: small ones, every power of two and its
/// neighbours, random ones of every magnitude, the extremes.
fn probe_values() -> Vec<u64> {
    let mut values: Vec<u64> = (0..5000).collect();
    for e in 0..64 {
        let p = 1u64 << e;
        values.extend([p - 1, p, p + 1, p + p / 2, p + p / 4 + 1]);
    }
    let mut rng = Rng(3);
    values.extend((0..10_000).map(|i| rng.next() >> (i % 64)));
    values.push(u64::MAX);
    values
}

#[test]
fn every_value_lands_in_a_bucket_whose_bounds_contain_it() {
    for v in probe_values() {
        let i = bucket_of(v);
        assert!(i < BUCKETS, "{v} -> bucket {i}");
        let (lower, upper) = bucket_bounds(i);
        assert!(lower <= v, "{v} below bucket {i} [{lower}, {upper})");
        assert!(
            v < upper || i == BUCKETS - 1,
            "{v} above bucket {i} [{lower}, {upper})"
        );
    }
}

#[test]
fn buckets_tile_the_durations_without_gaps() {
    assert_eq!(bucket_bounds(0), (0, 1));
    for i in 0..BUCKETS - 1 {
        let (lower, upper) = bucket_bounds(i);
        assert!(lower < upper);
        assert_eq!(upper, bucket_bounds(i + 1).0, "bucket {i} and the next");
        assert_eq!(bucket_of(lower), i);
        assert_eq!(bucket_of(upper - 1), i);
    }
    assert_eq!(bucket_bounds(BUCKETS - 1).1, u64::MAX);
    // Past the last bucket is the last bucket.
    assert_eq!(bucket_bounds(BUCKETS + 5), bucket_bounds(BUCKETS - 1));
    // Exact (bounded buckets) up to 7 * 2^30 µs, about 2 hours.
    assert_eq!(bucket_bounds(BUCKETS - 2).1, 7 << 30);
}

#[test]
fn buckets_above_4_us_are_at_most_a_quarter_of_their_lower_bound_wide() {
    for i in 0..BUCKETS - 1 {
        let (lower, upper) = bucket_bounds(i);
        if lower >= 4 {
            assert!(
                (upper - lower) * 4 <= lower,
                "bucket {i} [{lower}, {upper}) is too wide"
            );
        } else {
            assert_eq!(upper - lower, 1, "bucket {i} below 4 µs is exact");
        }
    }
}

fn snapshot_of(values: impl IntoIterator<Item = u64>) -> Snapshot {
    let memory = memory();
    let cells = slots(&memory);
    for (n, v) in values.into_iter().enumerate() {
        histogram::record(&cells, base(), Stripe::new(n), v);
    }
    histogram::read(&cells, base())
}

#[test]
fn percentiles_of_a_uniform_distribution_land_in_the_right_bucket() {
    let snapshot = snapshot_of(1..=1000);
    assert_eq!(snapshot.count, 1000);
    assert_eq!(snapshot.sum_micros, 500_500);
    assert_eq!(snapshot.max_micros, 1000);
    for (q, rank) in [(0.5, 500u64), (0.9, 900), (0.99, 990), (0.001, 1)] {
        let p = snapshot.percentile(q);
        // The upper bound of the rank's bucket, capped at the maximum (the
        // bucket of 900 is [896, 1024)).
        assert_eq!(p, bucket_bounds(bucket_of(rank)).1.min(1000), "p{q}");
        // Within a bucket's width (25%) of the true value.
        assert!(p > rank && p <= rank + rank / 4 + 1, "p{q} = {p}");
    }
    // The top bucket ends above the maximum: never report more than it.
    assert_eq!(snapshot.percentile(1.0), 1000);
    assert_eq!(snapshot.percentile(2.0), 1000);
    // q at or below 0, or NaN: the smallest duration's bucket.
    assert_eq!(snapshot.percentile(0.0), 2);
    assert_eq!(snapshot.percentile(f64::NAN), 2);
    assert!((snapshot.mean_micros() - 500.5).abs() < 1e-9);
}

#[test]
fn percentiles_of_a_bimodal_distribution_switch_at_the_right_rank() {
    // 90 fast calls of 10 µs, 10 slow ones of 10 ms.
    let snapshot = snapshot_of(std::iter::repeat_n(10, 90).chain(std::iter::repeat_n(10_000, 10)));
    let fast = bucket_bounds(bucket_of(10));
    assert_eq!(fast, (10, 12));
    assert_eq!(snapshot.percentile(0.5), 12);
    assert_eq!(snapshot.percentile(0.9), 12);
    // Rank ceil(90.1) = 91: the first slow call.
    assert_eq!(snapshot.percentile(0.901), 10_000);
    assert_eq!(snapshot.percentile(0.91), 10_000);
    assert_eq!(snapshot.percentile(0.999), 10_000);
}

#[test]
fn percentiles_of_nothing_are_zero_and_of_one_value_are_that_value() {
    assert_eq!(snapshot_of([]).percentile(0.5), 0);
    assert_eq!(snapshot_of([3]).percentile(0.5), 3);
    assert_eq!(snapshot_of([0]).percentile(0.99), 0);
    assert_eq!(snapshot_of([u64::MAX]).percentile(0.5), u64::MAX);
    assert_eq!(snapshot_of([u64::MAX]).counts[BUCKETS - 1], 1);
}

#[test]
fn cumulative_below_counts_the_calls_of_buckets_ending_at_or_below_the_bound() {
    let snapshot = snapshot_of(1..=1000);
    // The buckets around 100 µs are [96, 112): 1..=95 lie below 96.
    assert_eq!(bucket_bounds(bucket_of(100)), (96, 112));
    assert_eq!(snapshot.cumulative_below(96), 95);
    assert_eq!(snapshot.cumulative_below(100), 95);
    assert_eq!(snapshot.cumulative_below(111), 95);
    assert_eq!(snapshot.cumulative_below(112), 111);
    assert_eq!(snapshot.cumulative_below(0), 0);
    assert_eq!(snapshot.cumulative_below(1), 0); // no call of 0 µs
    assert_eq!(snapshot.cumulative_below(2), 1);
    assert_eq!(snapshot.cumulative_below(u64::MAX), 1000);
    // Monotonic in the bound.
    let mut previous = 0;
    for bound in 0..2000 {
        let below = snapshot.cumulative_below(bound);
        assert!(below >= previous);
        previous = below;
    }
}

#[test]
fn a_call_is_recorded_in_its_stripe_only() {
    let memory = memory();
    let cells = slots(&memory);
    histogram::record(&cells, base(), Stripe::new(3), 1234);
    histogram::record(&cells, base(), Stripe::new(3), 77);
    let stripe = base() + 3 * STRIPE_SLOTS;
    assert_eq!(cells.wide(stripe + 2 * bucket_of(1234)).load(Relaxed), 1);
    assert_eq!(cells.wide(stripe + 2 * bucket_of(77)).load(Relaxed), 1);
    assert_eq!(cells.wide(stripe + SUM_MICROS).load(Relaxed), 1311);
    assert_eq!(cells.wide(stripe + MAX_MICROS).load(Relaxed), 1234);
    let written = [
        stripe + 2 * bucket_of(1234),
        stripe + 2 * bucket_of(77),
        stripe + SUM_MICROS,
        stripe + MAX_MICROS,
    ];
    for i in (0..cells.len()).step_by(2) {
        if !written.contains(&i) {
            assert_eq!(cells.wide(i).load(Relaxed), 0, "slot {i} was written");
        }
    }
}

#[test]
fn stripes_are_summed_exactly_across_threads() {
    // 12 threads over 8 stripes: some share one, all write at once.
    const THREADS: usize = 12;
    const CALLS: u64 = 20_000;
    let memory = Arc::new(memory());
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let memory = memory.clone();
            let barrier = barrier.clone();
            thread::spawn(move || {
                let cells = slots(&memory);
                let mut rng = Rng(t as u64 + 100);
                let mut counts = vec![0u64; BUCKETS];
                let (mut sum, mut max) = (0u64, 0u64);
                barrier.wait();
                for _ in 0..CALLS {
                    let v = rng.next() >> (20 + rng.next() % 40);
                    histogram::record(&cells, base(), Stripe::new(t), v);
                    // MAX_MICROS never goes down: after recording v it holds at least v.
                    let max_slot = base() + (t % STRIPES) * STRIPE_SLOTS + MAX_MICROS;
                    assert!(cells.wide(max_slot).load(Relaxed) >= v, "maximum went down");
                    counts[bucket_of(v)] += 1;
                    sum = sum.wrapping_add(v);
                    max = max.max(v);
                }
                (counts, sum, max)
            })
        })
        .collect();
    let mut expected = Snapshot::empty();
    for handle in handles {
        let (counts, sum, max) = handle.join().expect("recording thread");
        for (total, n) in expected.counts.iter_mut().zip(counts) {
            *total += n;
        }
        expected.sum_micros = expected.sum_micros.wrapping_add(sum);
        expected.max_micros = expected.max_micros.max(max);
    }
    expected.count = THREADS as u64 * CALLS;
    assert_eq!(histogram::read(&slots(&memory), base()), expected);
}

#[test]
fn the_maximum_never_goes_down_while_threads_race_to_raise_it() {
    // 4 threads on one stripe record durations taken from one shared
    // counter, so every record raises MAX_MICROS while the others do too.
    const THREADS: usize = 4;
    const CALLS: u64 = 50_000;
    let memory = Arc::new(memory());
    let next = Arc::new(AtomicU64::new(0));
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let memory = memory.clone();
            let next = next.clone();
            let barrier = barrier.clone();
            thread::spawn(move || {
                let cells = slots(&memory);
                let stripe = Stripe::new(STRIPES * t); // stripe 0 for all
                let max = cells.wide(base() + MAX_MICROS);
                barrier.wait();
                for _ in 0..CALLS {
                    let v = next.fetch_add(1, Relaxed);
                    histogram::record(&cells, base(), stripe, v);
                    let seen = max.load(Relaxed);
                    assert!(seen >= v, "MAX_MICROS went down to {seen} after {v}");
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().expect("recording thread");
    }
    let snapshot = histogram::read(&slots(&memory), base());
    let calls = THREADS as u64 * CALLS;
    assert_eq!(snapshot.max_micros, calls - 1);
    assert_eq!(snapshot.count, calls);
    assert_eq!(snapshot.sum_micros, calls * (calls - 1) / 2);
}

#[test]
fn clear_empties_every_stripe() {
    let memory = memory();
    let cells = slots(&memory);
    for stripe in 0..STRIPES {
        histogram::record(
            &cells,
            base(),
            Stripe::new(stripe),
            1000 * stripe as u64 + 5,
        );
    }
    assert_eq!(histogram::read(&cells, base()).count, STRIPES as u64);
    histogram::clear(&cells, base());
    assert_eq!(histogram::read(&cells, base()), Snapshot::empty());
    for i in 0..cells.len() {
        assert_eq!(cells.word(i).load(Relaxed), 0, "slot {i} left");
    }
}

#[test]
fn junk_in_the_slots_does_not_panic() {
    let memory = memory();
    let cells = slots(&memory);
    let mut rng = Rng(99);
    for round in 0..50 {
        for i in (0..SLOTS).step_by(2) {
            // Some rounds near the top of u64, so sums and counts overflow.
            let junk = if round % 2 == 0 {
                rng.next()
            } else {
                u64::MAX - rng.next() % 4
            };
            cells.wide(base() + i).store(junk, Relaxed);
        }
        let snapshot = histogram::read(&cells, base());
        assert_eq!(snapshot.counts.len(), BUCKETS);
        for q in [0.0, 0.5, 0.99, 1.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(snapshot.percentile(q) <= snapshot.max_micros);
        }
        for bound in [0, 1, 1000, u64::MAX] {
            assert!(snapshot.cumulative_below(bound) <= snapshot.count);
        }
        let _ = snapshot.mean_micros();
        histogram::record(&cells, base(), Stripe::new(round), rng.next());
    }
    histogram::clear(&cells, base());
    assert_eq!(histogram::read(&cells, base()), Snapshot::empty());
    // The two spare slots past the region were never touched.
    assert_eq!(cells.wide(FEATURES.slots_needed()).load(Relaxed), 0);
}

#[test]
fn a_hand_made_snapshot_whose_count_disagrees_still_answers() {
    let mut snapshot = Snapshot::empty();
    snapshot.count = 10; // no bucket holds anything
    snapshot.max_micros = 42;
    assert_eq!(snapshot.percentile(0.5), 42);
    let mut short = Snapshot::empty();
    short.counts.truncate(3);
    short.count = 1;
    assert_eq!(short.percentile(0.5), 0);
    assert_eq!(short.cumulative_below(u64::MAX), 0);
}
