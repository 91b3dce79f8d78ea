//! The failure-rate window, with time stepped by hand (`now_ms` is an
//! argument) and real threads for the concurrent cases.

use breaker_core::cells::Cells;
use breaker_core::features::Features;
use breaker_core::layout::SLOT_COUNT;
use breaker_core::window::WindowSpec;
use breaker_core::window::{self, WindowCounts, BAD, BAD_ENTRY, CALLS, CURSOR, EMPTY, GOOD, RING};
use breaker_core::{OwnedSlots, Slots};
use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Barrier};
use std::thread;

const T0: u64 = 1_764_000_000_000; // a Date.now()-scale time, a multiple of 1000

fn memory(spec: WindowSpec) -> OwnedSlots {
    let features = Features {
        window: Some(spec),
        histogram: false,
        bulkhead: false,
    };
    // Two spare slots past the region, to see that nothing writes there.
    OwnedSlots::with_len(features.slots_needed() + 2)
}

fn slots(memory: &OwnedSlots) -> Slots<'_> {
    Slots::new(memory.slots()).expect("aligned and long enough")
}

const BASE: usize = SLOT_COUNT;

fn counts(calls: u64, bad: u64) -> WindowCounts {
    WindowCounts { calls, bad }
}

/// The ring and its counters, raw: (entries that are calls, entries that are
/// bad, the CALLS slot, the BAD slot).
fn census(cells: &Slots<'_>, size: usize) -> (i64, i64, i64, i64) {
    let entries: Vec<i32> = (0..size)
        .map(|i| cells.word(BASE + RING + i).load(Relaxed))
        .collect();
    let calls = entries
        .iter()
        .filter(|&&e| e == GOOD || e == BAD_ENTRY)
        .count() as i64;
    let bad = entries.iter().filter(|&&e| e == BAD_ENTRY).count() as i64;
    (
        calls,
        bad,
        i64::from(cells.word(BASE + CALLS).load(Relaxed)),
        i64::from(cells.word(BASE + BAD).load(Relaxed)),
    )
}

/// Every slot outside `[BASE, BASE + region)` is still 0.
fn assert_nothing_written_outside(cells: &Slots<'_>, region: usize) {
    for i in (0..cells.len()).filter(|&i| i < BASE || i >= BASE + region) {
        assert_eq!(cells.word(i).load(Relaxed), 0, "slot {i} was written");
    }
}

/// A small deterministic generator (xorshift64*), for junk and mixes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

// ---------------------------------------------------------------------------
// Count window
// ---------------------------------------------------------------------------

#[test]
fn count_window_keeps_exactly_the_last_n_outcomes() {
    let spec = WindowSpec::Count { calls: 7 };
    let memory = memory(spec);
    let cells = slots(&memory);
    let mut last: VecDeque<bool> = VecDeque::new(); // true = bad
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for call in 0..100 {
        let bad = rng.next().is_multiple_of(3);
        window::record(
            &cells,
            BASE,
            &spec,
            u64::from(!bad),
            u64::from(bad),
            T0 + call,
        );
        last.push_back(bad);
        if last.len() > 7 {
            last.pop_front();
        }
        let expected = counts(
            last.len() as u64,
            last.iter().filter(|&&b| b).count() as u64,
        );
        assert_eq!(
            window::read(&cells, BASE, &spec, T0 + call),
            expected,
            "after call {call}"
        );
    }
    assert_nothing_written_outside(&cells, spec.slots());
}

#[test]
fn count_window_counts_a_batch_as_that_many_calls_good_ones_first() {
    let spec = WindowSpec::Count { calls: 10 };
    let memory = memory(spec);
    let cells = slots(&memory);
    window::record(&cells, BASE, &spec, 3, 2, T0);
    assert_eq!(window::read(&cells, BASE, &spec, T0), counts(5, 2));
    // 12 positions in all: the first two (good) fall out.
    window::record(&cells, BASE, &spec, 7, 0, T0);
    assert_eq!(window::read(&cells, BASE, &spec, T0), counts(10, 2));
    // 2 more good: the first bad one (position 3) falls out, then the other.
    window::record(&cells, BASE, &spec, 2, 0, T0);
    assert_eq!(window::read(&cells, BASE, &spec, T0), counts(10, 1));
    window::record(&cells, BASE, &spec, 1, 0, T0);
    assert_eq!(window::read(&cells, BASE, &spec, T0), counts(10, 0));
    assert_eq!(cells.wide(BASE + CURSOR).load(Relaxed), 15);
}

#[test]
fn count_window_batch_longer_than_the_window_keeps_its_bad_calls() {
    let spec = WindowSpec::Count { calls: 4 };
    let memory = memory(spec);
    let cells = slots(&memory);
    window::record(&cells, BASE, &spec, 500, 3, T0);
    assert_eq!(window::read(&cells, BASE, &spec, T0), counts(4, 3));
    // The cursor still moved past every call of the batch.
    assert_eq!(cells.wide(BASE + CURSOR).load(Relaxed), 503);
    window::record(&cells, BASE, &spec, u64::MAX, u64::MAX, T0);
    assert_eq!(window::read(&cells, BASE, &spec, T0), counts(4, 4));
    assert_eq!(census(&cells, 4), (4, 4, 4, 4));
}

#[test]
fn count_window_clear_forgets_every_call() {
    let spec = WindowSpec::Count { calls: 5 };
    let memory = memory(spec);
    let cells = slots(&memory);
    window::record(&cells, BASE, &spec, 2, 2, T0);
    window::clear(&cells, BASE, &spec, T0);
    assert_eq!(window::read(&cells, BASE, &spec, T0), counts(0, 0));
    assert_eq!(census(&cells, 5), (0, 0, 0, 0));
    for i in 0..5 {
        assert_eq!(cells.word(BASE + RING + i).load(Relaxed), EMPTY);
    }
    // Counting starts again from nothing.
    window::record(&cells, BASE, &spec, 0, 1, T0);
    window::record(&cells, BASE, &spec, 7, 0, T0);
    assert_eq!(window::read(&cells, BASE, &spec, T0), counts(5, 0));
}

#[test]
fn count_window_survives_junk_in_every_slot() {
    let spec = WindowSpec::Count { calls: 9 };
    let memory = memory(spec);
    let cells = slots(&memory);
    let mut rng = Rng(42);
    for round in 0..200 {
        for i in 0..spec.slots() {
            cells.word(BASE + i).store(rng.next() as i32, Relaxed);
        }
        if round % 2 == 0 {
            // Entries that are neither empty, good nor bad, and a cursor at the end of u64.
            cells.word(BASE + RING).store(7, Relaxed);
            cells.wide(BASE + CURSOR).store(u64::MAX - 3, Relaxed);
        }
        let seen = window::read(&cells, BASE, &spec, T0);
        assert!(seen.calls <= 9 && seen.bad <= seen.calls, "{seen:?}");
        window::record(&cells, BASE, &spec, rng.next() % 20, rng.next() % 20, T0);
        let seen = window::read(&cells, BASE, &spec, T0);
        assert!(seen.calls <= 9 && seen.bad <= seen.calls, "{seen:?}");
    }
    // Clear and a full lap leave a ring of good calls, whatever was there.
    window::clear(&cells, BASE, &spec, T0);
    window::record(&cells, BASE, &spec, 9, 0, T0);
    let (calls, bad, _, _) = census(&cells, 9);
    assert_eq!((calls, bad), (9, 0));
    assert_nothing_written_outside(&cells, spec.slots());
}

#[test]
fn an_invalid_spec_records_and_reads_nothing() {
    let spec = WindowSpec::Count { calls: 0 };
    let memory = OwnedSlots::with_len(SLOT_COUNT + 8);
    let cells = slots(&memory);
    window::record(&cells, BASE, &spec, 5, 5, T0);
    window::clear(&cells, BASE, &spec, T0);
    assert_eq!(window::read(&cells, BASE, &spec, T0), counts(0, 0));
    let spec = WindowSpec::Time { ms: 5, buckets: 10 };
    window::record(&cells, BASE, &spec, 5, 5, T0);
    assert_eq!(window::read(&cells, BASE, &spec, T0), counts(0, 0));
    assert_nothing_written_outside(&cells, 0);
}

/// 4 threads, behind a barrier, record mixed batches into one count window
/// of `size` (small, so positions lap and collide), `clearer` of them also
/// clearing now and then: at quiescence the counters equal the ring.
fn count_window_under_threads(size: u32, clearer: Option<usize>) {
    const THREADS: usize = 4;
    const ROUNDS: u64 = 20_000;
    let spec = WindowSpec::Count { calls: size };
    let memory = Arc::new(memory(spec));
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let memory = memory.clone();
            let barrier = barrier.clone();
            thread::spawn(move || {
                let cells = slots(&memory);
                let mut rng = Rng(t as u64 + 1);
                barrier.wait();
                for round in 0..ROUNDS {
                    if clearer == Some(t) && round % 16 == 0 {
                        window::clear(&cells, BASE, &spec, T0);
                    }
                    let good = rng.next() % 5;
                    let bad = u64::from(rng.next().is_multiple_of(3));
                    window::record(&cells, BASE, &spec, good, bad, T0 + round);
                    let seen = window::read(&cells, BASE, &spec, T0);
                    assert!(seen.calls <= u64::from(size) && seen.bad <= seen.calls);
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().expect("recording thread");
    }
    let cells = slots(&memory);
    let (calls, bad, calls_slot, bad_slot) = census(&cells, size as usize);
    assert_eq!(
        calls_slot, calls,
        "CALLS differs from the non-empty entries"
    );
    assert_eq!(bad_slot, bad, "BAD differs from the bad entries");
    assert_eq!(
        window::read(&cells, BASE, &spec, T0),
        counts(calls as u64, bad as u64)
    );
    assert_nothing_written_outside(&cells, spec.slots());
}

#[test]
fn count_window_counters_match_the_ring_after_concurrent_records() {
    count_window_under_threads(3, None);
}

#[test]
fn count_window_counters_match_the_ring_after_records_racing_clears() {
    count_window_under_threads(3, Some(0));
}

// ---------------------------------------------------------------------------
// Time window
// ---------------------------------------------------------------------------

/// 1 s in 10 buckets of 100 ms.
const SECOND: WindowSpec = WindowSpec::Time {
    ms: 1000,
    buckets: 10,
};

#[test]
fn bucket_width_is_the_window_over_the_buckets_rounded_up() {
    assert_eq!(window::bucket_width_ms(1000, 10), 100);
    assert_eq!(window::bucket_width_ms(1001, 10), 101);
    assert_eq!(window::bucket_width_ms(7, 7), 1);
    assert_eq!(SECOND.slots(), 40);
}

#[test]
fn time_window_counts_calls_and_bad_calls_of_one_bucket() {
    let memory = memory(SECOND);
    let cells = slots(&memory);
    window::record(&cells, BASE, &SECOND, 3, 2, T0);
    window::record(&cells, BASE, &SECOND, 4, 0, T0 + 99);
    assert_eq!(window::read(&cells, BASE, &SECOND, T0 + 99), counts(9, 2));
    assert_nothing_written_outside(&cells, SECOND.slots());
}

#[test]
fn time_window_rolls_buckets_off_one_width_at_a_time() {
    let memory = memory(SECOND);
    let cells = slots(&memory);
    // One bad call in each of the 10 widths from T0, then good calls later.
    for width in 0..10 {
        window::record(&cells, BASE, &SECOND, 0, 1, T0 + 100 * width + 50);
    }
    assert_eq!(
        window::read(&cells, BASE, &SECOND, T0 + 999),
        counts(10, 10)
    );
    for width in 10..20 {
        // Before recording in a new width, the oldest width has left: the
        // window covers widths width-9 ..= width.
        assert_eq!(
            window::read(&cells, BASE, &SECOND, T0 + 100 * width),
            counts(9, 19 - width),
            "at width {width}"
        );
        window::record(&cells, BASE, &SECOND, 1, 0, T0 + 100 * width + 50);
    }
    assert_eq!(
        window::read(&cells, BASE, &SECOND, T0 + 1999),
        counts(10, 0)
    );
    // Nothing recorded for a whole window: empty.
    assert_eq!(window::read(&cells, BASE, &SECOND, T0 + 2999), counts(0, 0));
}

#[test]
fn time_window_starts_a_reused_bucket_afresh() {
    let memory = memory(SECOND);
    let cells = slots(&memory);
    window::record(&cells, BASE, &SECOND, 5, 5, T0 + 10);
    // Same bucket, one window later.
    window::record(&cells, BASE, &SECOND, 1, 0, T0 + 1010);
    assert_eq!(window::read(&cells, BASE, &SECOND, T0 + 1010), counts(1, 0));
    // Same bucket, many windows later (the BAD word is left behind, unread).
    window::record(&cells, BASE, &SECOND, 0, 2, T0 + 1_000_010);
    assert_eq!(
        window::read(&cells, BASE, &SECOND, T0 + 1_000_010),
        counts(2, 2)
    );
}

#[test]
fn time_window_keeps_counting_across_the_epoch_wrap() {
    // w = 1 ms, so the 24-bit epoch wraps every 2^24 ms.
    let spec = WindowSpec::Time {
        ms: 10,
        buckets: 10,
    };
    let memory = memory(spec);
    let cells = slots(&memory);
    let wrap: u64 = 3 << 24;
    for now in wrap - 20..wrap + 20 {
        let bad = u64::from(now.is_multiple_of(2));
        window::record(&cells, BASE, &spec, 1 - bad, bad, now);
        // The last 10 ms each hold one call, half of them bad.
        let seen = window::read(&cells, BASE, &spec, now);
        let expected = (now - (wrap - 20) + 1).min(10);
        assert_eq!(seen.calls, expected, "at {now}");
        assert!(
            seen.bad == expected / 2 || seen.bad == expected.div_ceil(2),
            "{seen:?} at {now}"
        );
    }
}

#[test]
fn time_window_counts_again_after_idling_past_half_the_epoch_range() {
    // At w = 1 ms an idle of 2^23 + 5 ms makes every stored epoch look a few
    // ms *ahead* modulo 2^24: taken for a clock behind, the window would
    // count nothing for hours.
    let spec = WindowSpec::Time {
        ms: 10,
        buckets: 10,
    };
    let memory = memory(spec);
    let cells = slots(&memory);
    for now in T0..T0 + 10 {
        window::record(&cells, BASE, &spec, 0, 1, now);
    }
    // (Idles that bring an epoch within AHEAD_WINDOWS windows ahead, such as
    // 2^24 - 15 ms, do drop calls, for at most that many windows.)
    for idle in [(1 << 23) + 5, (1 << 24) - 60, (1 << 24) + 1] {
        let now = T0 + 9 + idle;
        window::record(&cells, BASE, &spec, 1, 0, now);
        let seen = window::read(&cells, BASE, &spec, now);
        assert!(
            seen.calls >= 1 && seen.bad <= 9,
            "{seen:?} after {idle} ms idle"
        );
    }
}

#[test]
fn time_window_ignores_calls_from_a_clock_one_window_behind() {
    let memory = memory(SECOND);
    let cells = slots(&memory);
    window::record(&cells, BASE, &SECOND, 4, 1, T0 + 500);
    // A caller whose clock is a window behind lands on the same bucket: it
    // must neither add to it nor take it over.
    window::record(&cells, BASE, &SECOND, 0, 7, T0 - 500);
    window::record(&cells, BASE, &SECOND, 0, 7, T0 - 1500);
    assert_eq!(window::read(&cells, BASE, &SECOND, T0 + 500), counts(5, 1));
    // A reader whose clock is behind sees nothing of the future.
    assert_eq!(window::read(&cells, BASE, &SECOND, T0 - 500), counts(0, 0));
}

#[test]
fn time_window_follows_a_clock_stepped_back_far() {
    let memory = memory(SECOND);
    let cells = slots(&memory);
    for width in 0..10 {
        window::record(&cells, BASE, &SECOND, 1, 1, T0 + 100 * width);
    }
    // The clock goes back an hour and stays there: the window counts anew.
    let back = T0 - 3_600_000;
    window::record(&cells, BASE, &SECOND, 2, 1, back);
    window::record(&cells, BASE, &SECOND, 3, 0, back + 100);
    assert_eq!(
        window::read(&cells, BASE, &SECOND, back + 100),
        counts(6, 1)
    );
    // Read at the old time, the two buckets taken over are gone (bad calls
    // included, though bucket 1's BAD word was not rewritten), the rest stay.
    assert_eq!(window::read(&cells, BASE, &SECOND, T0 + 999), counts(16, 8));
}

#[test]
fn time_window_clear_zeroes_the_counts() {
    let memory = memory(SECOND);
    let cells = slots(&memory);
    window::record(&cells, BASE, &SECOND, 5, 5, T0);
    window::record(&cells, BASE, &SECOND, 5, 5, T0 + 300);
    window::clear(&cells, BASE, &SECOND, T0 + 300);
    assert_eq!(window::read(&cells, BASE, &SECOND, T0 + 300), counts(0, 0));
    window::record(&cells, BASE, &SECOND, 1, 1, T0 + 300);
    assert_eq!(window::read(&cells, BASE, &SECOND, T0 + 300), counts(2, 1));
}

#[test]
fn time_window_survives_junk_in_every_slot() {
    let spec = WindowSpec::Time {
        ms: 700,
        buckets: 7,
    };
    let memory = memory(spec);
    let cells = slots(&memory);
    let mut rng = Rng(7);
    for round in 0..500u64 {
        for i in (0..spec.slots()).step_by(2) {
            cells.wide(BASE + i).store(rng.next(), Relaxed);
        }
        let now = rng.next() >> (round % 64);
        let seen = window::read(&cells, BASE, &spec, now);
        assert!(seen.bad <= seen.calls, "{seen:?}");
        window::record(&cells, BASE, &spec, rng.next() % 100, rng.next() % 3, now);
        let seen = window::read(&cells, BASE, &spec, now);
        assert!(seen.bad <= seen.calls, "{seen:?}");
        window::clear(&cells, BASE, &spec, now);
        assert_eq!(window::read(&cells, BASE, &spec, now), counts(0, 0));
    }
    assert_nothing_written_outside(&cells, spec.slots());
}

/// 4 threads behind a barrier record into the same buckets of one time
/// window; `stale` first fills the window one window earlier, so the threads
/// race to take every bucket over. At quiescence the window holds exactly
/// the calls the threads recorded.
fn time_window_under_threads(stale: bool) {
    const THREADS: usize = 4;
    const ROUNDS: u64 = 2_000;
    let memory = Arc::new(memory(SECOND));
    let start = T0 + 1000;
    if stale {
        let cells = slots(&memory);
        for width in 0..10 {
            window::record(&cells, BASE, &SECOND, 1000, 1000, T0 + 100 * width);
        }
    }
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let memory = memory.clone();
            let barrier = barrier.clone();
            thread::spawn(move || {
                let cells = slots(&memory);
                let mut rng = Rng(t as u64 + 11);
                let (mut calls, mut bad) = (0, 0);
                barrier.wait();
                for round in 0..ROUNDS {
                    // Every thread walks through the same window's widths.
                    let now = start + (round * 37) % 1000;
                    let (g, b) = (rng.next() % 4, rng.next() % 2);
                    window::record(&cells, BASE, &SECOND, g, b, now);
                    calls += g + b;
                    bad += b;
                }
                (calls, bad)
            })
        })
        .collect();
    let (mut calls, mut bad) = (0, 0);
    for handle in handles {
        let (c, b) = handle.join().expect("recording thread");
        calls += c;
        bad += b;
    }
    let cells = slots(&memory);
    assert_eq!(
        window::read(&cells, BASE, &SECOND, start + 999),
        counts(calls, bad)
    );
}

#[test]
fn time_window_loses_no_call_recorded_concurrently() {
    time_window_under_threads(false);
}

#[test]
fn time_window_loses_no_call_when_threads_race_to_roll_buckets() {
    time_window_under_threads(true);
}

#[test]
fn time_window_loses_no_call_when_threads_roll_one_bucket_at_once_round_after_round() {
    // Every round, 4 threads released together record into the same bucket
    // one window after the previous round: all of them race to start it
    // afresh, and the window must then hold exactly this round's calls.
    const THREADS: usize = 4;
    const ROUNDS: u64 = 2_000;
    let memory = Arc::new(memory(SECOND));
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let memory = memory.clone();
            let barrier = barrier.clone();
            thread::spawn(move || {
                let cells = slots(&memory);
                for round in 0..ROUNDS {
                    let now = T0 + 1000 * round + 50;
                    barrier.wait();
                    window::record(&cells, BASE, &SECOND, 1, (t % 2) as u64, now + t as u64);
                    barrier.wait();
                    if t == 0 {
                        let seen = window::read(&cells, BASE, &SECOND, now + 49);
                        assert_eq!(seen, counts(6, 2), "round {round}");
                    }
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().expect("recording thread");
    }
}
