//! Model checking of the failure-rate window with loom: every interleaving
//! of two threads' atomic operations, with the invariants checked once the
//! threads have stopped.
//!
//! Run: `cd core && RUSTFLAGS='--cfg loom' CARGO_TARGET_DIR=../target/loom \
//!       cargo test --release --test loom_regions -- --nocapture`
//!
//! Invariants (the messages the assertions panic with):
//! - [`RING_MISMATCH`]: in a count window at quiescence, CALLS equals the
//!   entries holding a call and BAD the entries holding a bad call, whatever
//!   order records and clears ran in (positions collide: the windows here
//!   are smaller than what the threads record).
//! - [`LOST_CALL`]: calls recorded into a time window in one epoch are all
//!   counted, even when both threads race to start a stale bucket afresh.
//!
//! The last test runs a deliberately broken record (load then store instead
//! of `swap`) and asserts that loom finds the violation.
#![cfg(loom)]

mod loom_support;

use breaker_core::cells::{Cells, ModelCells};
use breaker_core::features::Features;
use breaker_core::window::WindowSpec;
use breaker_core::window::{self, WindowCounts, BAD, BAD_ENTRY, CALLS, CURSOR, GOOD, RING};
use loom::sync::Arc;
use loom::thread;
use loom_support::{expect_violation, explore};
use std::sync::atomic::Ordering::Relaxed;

const RING_MISMATCH: &str =
    "INVARIANT ring-counters: CALLS/BAD differ from the entries of the ring at quiescence";
const LOST_CALL: &str = "INVARIANT no-lost-call: the time window lost or invented a call";

/// Runs `body` in every interleaving loom explores within `preemption_bound`
/// (`None`: unbounded), prints how many, and returns the count.

struct Region {
    cells: ModelCells,
    base: usize,
    spec: WindowSpec,
}

fn region(spec: WindowSpec) -> Arc<Region> {
    let features = Features {
        window: Some(spec),
        histogram: false,
        bulkhead: false,
    };
    Arc::new(Region {
        cells: ModelCells::with_len(features.slots_needed()),
        base: features.window_base(),
        spec,
    })
}

/// Preemption bound of the three-thread model.
const PREEMPTIONS: usize = 4;

type RecordOp = fn(&Region, u64, u64);

fn real_record(r: &Region, good: u64, bad: u64) {
    window::record(&r.cells, r.base, &r.spec, good, bad, 0);
}

fn assert_ring_matches(r: &Region) {
    let WindowSpec::Count { calls: size } = r.spec else {
        unreachable!("a count window")
    };
    let entries: Vec<i32> = (0..size as usize)
        .map(|i| r.cells.word(r.base + RING + i).load(Relaxed))
        .collect();
    let calls = entries
        .iter()
        .filter(|&&e| e == GOOD || e == BAD_ENTRY)
        .count() as i32;
    let bad = entries.iter().filter(|&&e| e == BAD_ENTRY).count() as i32;
    let counters = (
        r.cells.word(r.base + CALLS).load(Relaxed),
        r.cells.word(r.base + BAD).load(Relaxed),
    );
    assert!(
        counters == (calls, bad),
        "{RING_MISMATCH}: (CALLS, BAD) = {counters:?}, ring {entries:?}"
    );
}

/// Both recorders of the models below: a good and a bad call in one batch,
/// and one bad call. In a window of 2 the third position laps onto the first.
const BOTH: &[(u64, u64)] = &[(1, 1), (0, 1)];

/// One thread per batch of `recorders` records into a count window of 2,
/// and with `with_clear` one more thread clears the window meanwhile.
fn records_model(
    record: RecordOp,
    recorders: &'static [(u64, u64)],
    with_clear: bool,
) -> impl Fn() + Sync + Send {
    move || {
        let r = region(WindowSpec::Count { calls: 2 });
        let mut threads = Vec::new();
        for &(good, bad) in recorders {
            let r = r.clone();
            threads.push(thread::spawn(move || record(&r, good, bad)));
        }
        if with_clear {
            let r = r.clone();
            threads.push(thread::spawn(move || {
                window::clear(&r.cells, r.base, &r.spec, 0)
            }));
        }
        for t in threads {
            t.join().unwrap();
        }
        assert_ring_matches(&r);
        let positions: u64 = recorders.iter().map(|(g, b)| g + b).sum();
        assert_eq!(r.cells.wide(r.base + CURSOR).load(Relaxed), positions);
        let seen = window::read(&r.cells, r.base, &r.spec, 0);
        assert!(seen.calls <= 2 && seen.bad <= seen.calls, "{seen:?}");
        if !with_clear {
            // The last two positions survive, at least one of them bad.
            assert!(seen.calls == 2 && seen.bad >= 1, "{seen:?}");
        }
    }
}

#[test]
fn count_window_counters_match_the_ring_after_two_concurrent_records() {
    explore(
        "count window/2 records",
        None,
        records_model(real_record, BOTH, false),
    );
}

#[test]
fn count_window_counters_match_the_ring_after_a_record_racing_a_clear() {
    explore(
        "count window/record vs clear",
        None,
        records_model(real_record, &BOTH[..1], true),
    );
}

#[test]
fn count_window_counters_match_the_ring_after_two_records_racing_a_clear() {
    // Three threads: unbounded takes too long; each thread makes at most 5
    // atomic operations, so a few preemptions reach the interesting orders.
    explore(
        "count window/2 records vs clear",
        Some(PREEMPTIONS),
        records_model(real_record, BOTH, true),
    );
}

#[test]
fn time_window_loses_no_call_when_two_threads_start_a_stale_bucket() {
    explore("time window/2 threads roll a bucket", None, || {
        // 2 ms in 2 buckets of 1 ms; both buckets hold calls from the
        // previous window, and both threads land in bucket 0 of the next.
        let r = region(WindowSpec::Time { ms: 2, buckets: 2 });
        record_at(&r, 5, 5, 0);
        record_at(&r, 5, 0, 1);
        let threads: Vec<_> = [(1, 0), (0, 1)]
            .into_iter()
            .map(|(good, bad)| {
                let r = r.clone();
                thread::spawn(move || record_at(&r, good, bad, 2))
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        // At 2, bucket 1 (time 1) is still in the window.
        let seen = window::read(&r.cells, r.base, &r.spec, 2);
        let expected = WindowCounts { calls: 7, bad: 1 };
        assert!(
            seen == expected,
            "{LOST_CALL}: {seen:?}, expected {expected:?}"
        );
        let seen = window::read(&r.cells, r.base, &r.spec, 3);
        let expected = WindowCounts { calls: 2, bad: 1 };
        assert!(
            seen == expected,
            "{LOST_CALL}: {seen:?}, expected {expected:?}"
        );
    });
}

fn record_at(r: &Region, good: u64, bad: u64, now_ms: u64) {
    window::record(&r.cells, r.base, &r.spec, good, bad, now_ms);
}

// ---------------------------------------------------------------------------
// A deliberately broken variant: loom must catch it
// ---------------------------------------------------------------------------

/// `record` with each entry replaced by load-then-store instead of `swap`,
/// against the same cells: two threads replacing one entry both count what
/// they think they removed.
fn broken_record(r: &Region, good: u64, bad: u64) {
    let WindowSpec::Count { calls: size } = r.spec else {
        return;
    };
    let size = u64::from(size);
    let start = r.cells.wide(r.base + CURSOR).fetch_add(good + bad, Relaxed);
    let (mut calls, mut bads) = (0, 0);
    for j in 0..good + bad {
        let outcome = if j < good { GOOD } else { BAD_ENTRY };
        let entry = r.cells.word(r.base + RING + ((start + j) % size) as usize);
        // The defect.
        let old = entry.load(Relaxed);
        entry.store(outcome, Relaxed);
        calls += 1 - i32::from(old != 0);
        bads += i32::from(outcome == BAD_ENTRY) - i32::from(old == BAD_ENTRY);
    }
    r.cells.word(r.base + CALLS).fetch_add(calls, Relaxed);
    r.cells.word(r.base + BAD).fetch_add(bads, Relaxed);
}

#[test]
fn loom_catches_ring_entries_replaced_by_load_then_store() {
    let name = "broken count window/2 records";
    let model = records_model(broken_record, BOTH, false);
    expect_violation(name, RING_MISMATCH, model);
}
