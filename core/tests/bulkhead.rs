//! The bulkhead and the rate limiter against sequential models, and with
//! real threads.
//!
//! The bulkhead model is the contract in plain Rust: `permits` places, each
//! free or held by a caller since a time, with the time a caller needing a
//! permit first found it held; a caller gets a free permit if there is one,
//! else one first found held `lease` ms ago or more (taken from its holder),
//! else nothing; every permit it looked at (from the one it tries first
//! round to the one it takes, or all of them) held without a first
//! sighting gets one now. A holder whose permit was taken frees nothing. proptest
//! drives the core and the model with the same operations and checks that
//! they agree on every outcome and on the permits held, and that no permit
//! is ever taken from a holder sooner than `lease` ms after it got it.
//!
//! The rate limiter model is the continuous-state leaky bucket, the other
//! formulation of GCRA: a level that drains 1 ns per ns and fills by the
//! emission interval per call; a call arriving at `t` is due once the level
//! is at most `tau`. The core keeps a theoretical arrival time instead; they
//! must agree on every admission and every delay, and the admitted calls'
//! due times must keep `limit + burst - 1` per interval at most.
#![cfg(not(loom))]

use breaker_core::bulkhead::{self, Bulkhead, Hold, Released, Size, Taken};
use breaker_core::rate_limiter::{self, Decision, Rate};
use breaker_core::{OwnedSlots, Slots};
use proptest::prelude::*;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::{Arc, Barrier};

const T0: u64 = 1_000_000;

fn bulkhead(memory: &OwnedSlots, permits: u32, places: u32) -> Bulkhead<Slots<'_>> {
    let slots = Slots::any_length(memory.slots()).expect("aligned");
    let size = Size::new(permits.into(), places.into()).expect("valid size");
    bulkhead::claim(slots, slots.len(), size).expect("fresh memory")
}

#[derive(Debug, Clone)]
enum Op {
    /// A caller asks for a permit, trying `start` first.
    Acquire { start: u32 },
    /// The `k`-th held permit (modulo) is released by its holder.
    Release { k: usize },
    /// Time passes.
    Advance { ms: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u32..8).prop_map(|start| Op::Acquire { start }),
        2 => (0usize..8).prop_map(|k| Op::Release { k }),
        2 => (0u64..80).prop_map(|ms| Op::Advance { ms }),
    ]
}

/// One permit of the model.
#[derive(Debug, Clone, Copy, Default)]
struct Permit {
    /// The caller holding it, and since when.
    holder: Option<(usize, u64)>,
    /// When a caller needing a permit first found this holder on it.
    first_seen: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Outcome {
    Free,
    Reclaimed,
    Refused,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_bulkhead_agrees_with_the_model(
        permits in 1u32..4,
        lease in 1u32..100,
        ops in prop::collection::vec(op(), 1..60),
    ) {
        let memory = OwnedSlots::with_len(bulkhead::slots_needed(permits, 0));
        let b = bulkhead(&memory, permits, 0);
        let mut model = vec![Permit::default(); permits as usize];
        // Callers holding (or thinking they hold) a permit: id, hold.
        let mut holding: Vec<(usize, Hold)> = Vec::new();
        let mut now = T0;
        for (caller, op) in ops.into_iter().enumerate() {
            match op {
                Op::Advance { ms } => now += ms,
                Op::Acquire { start } => {
                    let got = b.acquire(start, lease, now);
                    let outcome = match got {
                        None => Outcome::Refused,
                        Some(Taken::Free(_)) => Outcome::Free,
                        Some(Taken::Reclaimed(_)) => Outcome::Reclaimed,
                    };
                    let expected = if model.iter().any(|p| p.holder.is_none()) {
                        Outcome::Free
                    } else if model.iter().any(|p| {
                        p.first_seen.is_some_and(|t| now - t >= u64::from(lease))
                    }) {
                        Outcome::Reclaimed
                    } else {
                        Outcome::Refused
                    };
                    prop_assert_eq!(outcome, expected);
                    match got {
                        Some(taken) => {
                            let hold = taken.hold();
                            let permit = &mut model[hold.index as usize];
                            if outcome == Outcome::Free {
                                prop_assert!(permit.holder.is_none(), "took a held permit");
                            } else {
                                let (_, since) = permit.holder.expect("reclaimed a free permit");
                                let seen = permit.first_seen.expect("reclaimed before any sighting");
                                prop_assert!(now - seen >= u64::from(lease));
                                prop_assert!(now - since >= u64::from(lease), "reclaimed within the lease");
                            }
                            *permit = Permit { holder: Some((caller, now)), first_seen: None };
                            holding.push((caller, hold));
                            if outcome == Outcome::Reclaimed {
                                // It looked at the permits from `start` round
                                // to the one it took, sighting them.
                                let n = permits as usize;
                                let mut i = start as usize % n;
                                while i != hold.index as usize {
                                    model[i].first_seen.get_or_insert(now);
                                    i = (i + 1) % n;
                                }
                            }
                        }
                        None => {
                            for permit in &mut model {
                                permit.first_seen.get_or_insert(now);
                            }
                        }
                    }
                }
                Op::Release { k } => {
                    if holding.is_empty() {
                        continue;
                    }
                    let (caller, hold) = holding.remove(k % holding.len());
                    let permit = &mut model[hold.index as usize];
                    let owns = permit.holder.is_some_and(|(id, _)| id == caller);
                    let released = b.release(hold);
                    prop_assert_eq!(matches!(released, Released::Freed { .. }), owns);
                    if owns {
                        *permit = Permit::default();
                    }
                }
            }
            let held = model.iter().filter(|p| p.holder.is_some()).count() as u32;
            prop_assert_eq!(b.stats().in_use, held);
        }
    }

    #[test]
    fn gcra_agrees_with_the_leaky_bucket(
        limit in 1u32..20,
        interval in 1u32..200,
        burst in 1u32..5,
        arrivals in prop::collection::vec((0u64..30_000_000, 0u64..20_000_000), 1..60),
    ) {
        let rate = Rate::new(limit.into(), interval.into(), burst.into()).expect("valid rate");
        let memory = OwnedSlots::with_len(rate_limiter::SLOTS);
        let slots = Slots::any_length(memory.slots()).expect("aligned");
        let limiter = rate_limiter::claim(slots, slots.len(), rate).expect("fresh memory");
        // The leaky bucket: its level (ns of work) at the last conforming arrival.
        let (mut level, mut last) = (0u64, 0u64);
        let mut now = T0 * 1_000_000;
        let mut due = Vec::new();
        for (gap, max_wait) in arrivals {
            now += gap;
            let drained = level.saturating_sub(now - last);
            let wait = drained.saturating_sub(rate.tau_ns);
            let expected = if wait <= max_wait {
                level = drained + rate.emission_ns;
                last = now;
                Decision::Admitted { delay_ns: wait }
            } else {
                Decision::Refused { wait_ns: wait }
            };
            let got = limiter.acquire(now, max_wait);
            prop_assert_eq!(got, expected);
            if let Decision::Admitted { delay_ns } = got {
                due.push(now + delay_ns);
            }
        }
        due.sort_unstable();
        let span = u64::from(interval) * 1_000_000;
        let most = (limit + burst - 1) as usize;
        for i in 0..due.len() {
            let within = due[i..].iter().take_while(|&&d| d - due[i] < span).count();
            prop_assert!(within <= most, "{} calls due within one interval", within);
        }
    }
}

/// Eight threads behind a barrier, 3 permits, each thread taking and
/// releasing permits in a loop: never more than 3 in flight.
#[test]
fn threads_never_hold_more_permits_than_max_concurrent() {
    let memory = Arc::new(OwnedSlots::with_len(bulkhead::slots_needed(3, 0)));
    bulkhead(&memory, 3, 0);
    let in_flight = Arc::new(AtomicU32::new(0));
    let most = Arc::new(AtomicU32::new(0));
    let admitted = Arc::new(AtomicU32::new(0));
    let barrier = Arc::new(Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (memory, in_flight, most, admitted, barrier) = (
                memory.clone(),
                in_flight.clone(),
                most.clone(),
                admitted.clone(),
                barrier.clone(),
            );
            std::thread::spawn(move || {
                let slots = Slots::any_length(memory.slots()).expect("aligned");
                let b = bulkhead::join(slots, slots.len()).expect("a bulkhead");
                barrier.wait();
                for _ in 0..20_000 {
                    if let Some(hold) = b.try_acquire(t) {
                        let now = in_flight.fetch_add(1, SeqCst) + 1;
                        most.fetch_max(now, SeqCst);
                        admitted.fetch_add(1, SeqCst);
                        std::hint::spin_loop();
                        in_flight.fetch_sub(1, SeqCst);
                        assert!(matches!(b.release(hold), Released::Freed { .. }));
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("no panic");
    }
    assert!(most.load(SeqCst) <= 3, "{} in flight", most.load(SeqCst));
    assert!(admitted.load(SeqCst) > 0);
    let slots = Slots::any_length(memory.slots()).expect("aligned");
    assert_eq!(
        bulkhead::join(slots, slots.len()).unwrap().stats().in_use,
        0
    );
}

/// A waiter's place: taken while full, counted in QUEUED, given back once;
/// a release with calls waiting moves WAKE.
#[test]
fn a_release_with_waiters_moves_wake() {
    let memory = OwnedSlots::with_len(bulkhead::slots_needed(1, 2));
    let b = bulkhead(&memory, 1, 2);
    let held = b.try_acquire(0).expect("free");
    let place = b.enqueue(0, 1000, T0).expect("a place");
    assert_eq!(b.stats().queued, 1);
    let seen = b.wake_sequence();
    assert_eq!(b.release(held), Released::Freed { wake: true });
    assert_ne!(b.wake_sequence(), seen);
    assert!(b.dequeue(place));
    assert!(!b.dequeue(place), "given back once");
    let again = b.try_acquire(0).expect("free");
    assert_eq!(b.release(again), Released::Freed { wake: false });
}

#[test]
fn joining_memory_too_short_for_a_bulkhead_finds_none_at_every_length() {
    let needed = bulkhead::slots_needed(2, 1);
    let memory = OwnedSlots::with_len(needed);
    bulkhead(&memory, 2, 1);
    for length in 0..=needed {
        let prefix = &memory.slots()[..length];
        let slots = Slots::any_length(prefix).expect("aligned");
        // Every length short of the bulkhead, even short of its header,
        // finds none (and reads nothing past the memory).
        assert_eq!(
            bulkhead::join(slots, length).is_some(),
            length == needed,
            "length {length}"
        );
    }
}

/// Memory filled with `junk` (as another thread or process may leave it),
/// with `config` in the CONFIG word when given.
fn junk_memory(len: usize, junk: &[i32], config: Option<u64>) -> OwnedSlots {
    let memory = OwnedSlots::with_len(len);
    for (i, slot) in memory.slots().iter().enumerate() {
        slot.store(junk[i % junk.len()], SeqCst);
    }
    if let (Some(config), true) = (config, len > bulkhead::CONFIG + 1) {
        memory.slots()[bulkhead::CONFIG].store(config as i32, SeqCst);
        memory.slots()[bulkhead::CONFIG + 1].store((config >> 32) as i32, SeqCst);
    }
    memory
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any slot contents, any length, any CONFIG (often a bulkhead larger
    /// than the memory), any arguments: every operation returns (debug
    /// builds check every addition for overflow), and what it reports
    /// stays within the bulkhead's size.
    #[test]
    fn a_bulkhead_over_junk_never_panics(
        len in 0usize..200,
        junk in prop::collection::vec(any::<i32>(), 1..40),
        sizes in (0u32..70_000, 0u32..70_000),
        magic in prop::bool::weighted(0.8),
        ops in prop::collection::vec((any::<u32>(), any::<u64>(), any::<u32>(), any::<u64>(), 0u8..6), 1..20),
    ) {
        let config = magic.then(|| u64::from(sizes.0 & 0xffff) | u64::from(sizes.1 & 0xffff) << 16
            | u64::from(bulkhead::BULKHEAD_MAGIC) << 32);
        let memory = junk_memory(len, &junk, config);
        let slots = Slots::any_length(memory.slots()).expect("aligned");
        let Some(b) = bulkhead::join(slots, len) else {
            return Ok(());
        };
        let size = b.size();
        prop_assert!(size.slots_needed() <= len);
        for (start, token, lease, now, which) in ops {
            let hold = Hold::from_token(token);
            match which {
                0 => { b.acquire(start, lease, now); }
                1 => { b.try_acquire(start); }
                2 => { b.release(hold); }
                3 => { b.enqueue(start, lease, now); }
                4 => { b.dequeue(hold); }
                _ => b.count_rejection(start & 1 == 1),
            }
            let stats = b.stats();
            prop_assert!(stats.in_use <= size.permits && stats.queued <= size.places);
        }
    }

    /// A rate limiter at the ends of every range, over a TAT word holding
    /// anything, at any time: no overflow, and an admitted call never
    /// waits longer than its max wait.
    #[test]
    fn a_rate_limiter_at_extremes_never_panics(
        limit in prop_oneof![Just(1u32), Just(u32::MAX), any::<u32>().prop_map(|v| v.max(1))],
        interval in prop_oneof![Just(1u32), Just(rate_limiter::MAX_WAIT_MS), 1u32..=rate_limiter::MAX_WAIT_MS],
        burst in prop_oneof![Just(1u32), Just(u32::MAX), any::<u32>().prop_map(|v| v.max(1))],
        tat in prop_oneof![Just(0u64), Just(u64::MAX), any::<u64>()],
        calls in prop::collection::vec((prop_oneof![Just(0u64), Just(u64::MAX), any::<u64>()],
            prop_oneof![Just(0.0f64), Just(f64::from(rate_limiter::MAX_WAIT_MS)), 0.0f64..1e9]), 1..10),
    ) {
        let rate = Rate::new(limit.into(), interval.into(), burst.into()).expect("valid rate");
        let memory = OwnedSlots::with_len(rate_limiter::SLOTS);
        let slots = Slots::any_length(memory.slots()).expect("aligned");
        let limiter = rate_limiter::claim(slots, slots.len(), rate).expect("fresh memory");
        memory.slots()[rate_limiter::TAT].store(tat as i32, SeqCst);
        memory.slots()[rate_limiter::TAT + 1].store((tat >> 32) as i32, SeqCst);
        for (now, max_wait_ms) in calls {
            let max_wait = rate_limiter::max_wait_ns(max_wait_ms).expect("valid max wait");
            if let Decision::Admitted { delay_ns } = limiter.acquire(now, max_wait) {
                prop_assert!(delay_ns <= max_wait);
            }
        }
        limiter.stats();
    }
}
