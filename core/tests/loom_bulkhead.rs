//! Model checking of the bulkhead and the rate limiter with loom: every
//! interleaving of the atomic operations of 2 or 3 threads, with these
//! invariants checked in every one (the messages the assertions panic with):
//!
//! - [`OVER_LIMIT`]: never more than `permits` calls hold a permit at once.
//! - [`SLEEPING_WAITER`]: a waiter that queued while every permit was held
//!   either gets a permit on its retry, or finds WAKE moved (its wait
//!   returns at once): a released permit is never slept through.
//! - [`RECLAIMED_TWICE`]: a permit whose lease ran out is reclaimed by one
//!   caller only, and never both reclaimed and freed by its old holder.
//! - [`TOO_MANY_CALLS`]: the rate limiter's admitted calls keep the GCRA
//!   spacing whatever the interleaving: `limit + burst - 1` calls at most per
//!   interval.
//!
//! Run: `cd core && RUSTFLAGS='--cfg loom' CARGO_TARGET_DIR=../target/loom \
//!       cargo test --release --test loom_bulkhead -- --nocapture`
//!
//! The last test runs a waiter written in the wrong order (it reads WAKE
//! and tries again before it queues) and asserts that loom finds the sleeping waiter.
#![cfg(loom)]

mod loom_support;

use breaker_core::bulkhead::{self, Bulkhead, Hold, Released, Size, Taken};
use breaker_core::cells::ModelCells;
use breaker_core::rate_limiter::{self, Decision, Rate};
use loom::sync::atomic::AtomicU32;
use loom::sync::Arc;
use loom::thread;
use loom_support::{expect_violation, explore};
use std::sync::atomic::Ordering::SeqCst;

const OVER_LIMIT: &str = "INVARIANT permits: more calls hold a permit than maxConcurrent";
const SLEEPING_WAITER: &str =
    "INVARIANT wake: a waiter sleeps although a permit was released after it queued";
const RECLAIMED_TWICE: &str = "INVARIANT reclaim-once: an expired permit was handed out twice";
const TOO_MANY_CALLS: &str = "INVARIANT gcra: admitted calls closer together than the rate allows";

const T0: u64 = 5_000_000;
const LEASE: u32 = 1_000;

fn bulkhead(permits: u32, places: u32) -> Arc<Bulkhead<ModelCells>> {
    let size = Size::new(permits.into(), places.into()).expect("valid size");
    let length = size.slots_needed();
    let cells = ModelCells::with_len(length);
    Arc::new(bulkhead::claim(cells, length, size).expect("fresh model memory"))
}

/// Three callers, two permits: each takes a permit (or is refused), counts
/// itself in flight, checks the count, leaves and releases.
#[test]
fn permits_never_exceed_max_concurrent() {
    explore("permits/3 threads, 2 permits", Some(2), || {
        let b = bulkhead(2, 0);
        let in_flight = Arc::new(AtomicU32::new(0));
        let callers: Vec<_> = (0..3)
            .map(|start| {
                let (b, in_flight) = (b.clone(), in_flight.clone());
                thread::spawn(move || {
                    if let Some(taken) = b.acquire(start, LEASE, T0) {
                        let now = in_flight.fetch_add(1, SeqCst) + 1;
                        assert!(now <= 2, "{OVER_LIMIT}: {now}");
                        in_flight.fetch_sub(1, SeqCst);
                        assert!(matches!(b.release(taken.hold()), Released::Freed { .. }));
                    }
                })
            })
            .collect();
        for caller in callers {
            caller.join().unwrap();
        }
        assert_eq!(b.stats().in_use, 0);
    });
}

/// The waiter as the facade runs it: refused, it queues, reads WAKE, tries
/// again, and would then wait for WAKE to move, still queued. `broken`: it
/// reads WAKE and tries again before it queues. Returns whether it got a
/// permit, the WAKE it would wait on, and its place.
fn waiter(b: &Bulkhead<ModelCells>, broken: bool) -> (bool, i32, Option<Hold>) {
    if b.try_acquire(0).is_some() {
        return (true, 0, None);
    }
    if broken {
        let seen = b.wake_sequence();
        let admitted = b.try_acquire(0).is_some();
        let place = b.enqueue(0, LEASE, T0).expect("a free place");
        (admitted, seen, Some(place))
    } else {
        let place = b.enqueue(0, LEASE, T0).expect("a free place");
        let seen = b.wake_sequence();
        (b.try_acquire(0).is_some(), seen, Some(place))
    }
}

fn wake_model(broken: bool) -> impl Fn() + Sync + Send + 'static {
    move || {
        let b = bulkhead(1, 1);
        let held = b.try_acquire(0).expect("a free permit");
        let holder = {
            let b = b.clone();
            thread::spawn(move || b.release(held))
        };
        let (admitted, seen, place) = waiter(&b, broken);
        let released = holder.join().unwrap();
        assert!(matches!(released, Released::Freed { .. }));
        assert!(
            admitted || b.wake_sequence() != seen,
            "{SLEEPING_WAITER} (WAKE still {seen})"
        );
        if let Some(place) = place {
            assert!(b.dequeue(place));
        }
    }
}

#[test]
fn a_released_permit_wakes_or_admits_a_waiter() {
    explore("wake/holder and waiter", None, wake_model(false));
}

/// A permit held by a dead holder, first seen at T0; two callers needing a
/// permit at T0 + LEASE race to reclaim it.
#[test]
fn an_expired_lease_is_reclaimed_exactly_once() {
    explore("reclaim/2 reclaimers", None, || {
        let b = bulkhead(1, 0);
        b.try_acquire(0).expect("a free permit"); // its holder dies
        assert_eq!(b.acquire(0, LEASE, T0), None); // first sighting
        let reclaimers: Vec<_> = (0..2)
            .map(|_| {
                let b = b.clone();
                thread::spawn(move || b.acquire(0, LEASE, T0 + u64::from(LEASE)))
            })
            .collect();
        let got: Vec<_> = reclaimers.into_iter().map(|r| r.join().unwrap()).collect();
        let reclaimed = got
            .iter()
            .filter(|g| matches!(g, Some(Taken::Reclaimed(_))))
            .count();
        assert_eq!(reclaimed, 1, "{RECLAIMED_TWICE}: {got:?}");
        assert_eq!(b.stats().reclaimed, 1);
    });
}

/// The old holder, alive after all, releases while a caller reclaims: the
/// permit ends up either freed or reclaimed, never both.
#[test]
fn a_release_racing_a_reclaim_frees_or_loses_the_permit_never_both() {
    explore("reclaim/holder releasing", None, || {
        let b = bulkhead(1, 0);
        let held: Hold = b.try_acquire(0).expect("a free permit");
        assert_eq!(b.acquire(0, LEASE, T0), None);
        let reclaimer = {
            let b = b.clone();
            thread::spawn(move || b.acquire(0, LEASE, T0 + u64::from(LEASE)))
        };
        let released = b.release(held);
        let got = reclaimer.join().unwrap();
        let freed = matches!(released, Released::Freed { .. });
        let reclaimed = matches!(got, Some(Taken::Reclaimed(_)));
        assert!(
            !(freed && reclaimed),
            "{RECLAIMED_TWICE}: {released:?} {got:?}"
        );
        // Freed first, then taken free: also one holder.
        let holders = usize::from(got.is_some());
        assert_eq!(b.stats().in_use as usize, holders, "{RECLAIMED_TWICE}");
    });
}

/// Three callers at the same instant and one a little later, limit 2 per
/// 10 ms (e = 5 ms), burst 2, maxWait 5 ms: whatever the interleaving,
/// sorted due times keep `d_j - d_i >= (j - i) * e - tau`.
#[test]
fn gcra_never_admits_more_than_the_rate_allows() {
    explore("gcra/3 callers", Some(3), || {
        let rate = Rate::new(2.0, 10.0, 2.0).expect("valid rate");
        let cells = ModelCells::with_len(rate_limiter::SLOTS);
        let limiter = Arc::new(rate_limiter::claim(cells, rate_limiter::SLOTS, rate).unwrap());
        let arrivals = [T0, T0, T0 + 1_000_000];
        let callers: Vec<_> = arrivals
            .iter()
            .map(|&now| {
                let limiter = limiter.clone();
                thread::spawn(move || match limiter.acquire(now, 5_000_000) {
                    Decision::Admitted { delay_ns } => Some(now + delay_ns),
                    Decision::Refused { .. } => None,
                })
            })
            .collect();
        let mut due: Vec<u64> = callers
            .into_iter()
            .filter_map(|c| c.join().unwrap())
            .collect();
        due.sort_unstable();
        for i in 0..due.len() {
            for j in i + 1..due.len() {
                let spacing = (j - i) as u64 * rate.emission_ns;
                assert!(
                    due[j] + rate.tau_ns >= due[i] + spacing,
                    "{TOO_MANY_CALLS}: {due:?}"
                );
            }
        }
        assert_eq!(limiter.stats().admitted as usize, due.len());
    });
}

#[test]
fn loom_catches_a_waiter_that_reads_wake_before_it_queues() {
    expect_violation(
        "broken wake/holder and waiter",
        SLEEPING_WAITER,
        wake_model(true),
    );
}
