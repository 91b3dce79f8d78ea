//! Real threads on one shared slice. These check invariants, not
//! interleavings: whatever order the threads ran in, the counts add up and no
//! two probes ran at once.

use breaker_core::layout::STATE;
use breaker_core::{
    claim_layout, Admission, Breaker, Config, OwnedSlots, Slots, State, Stripe, Transition,
};
use std::sync::atomic::Ordering::SeqCst;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize};
use std::sync::Barrier;
use std::thread;

const T0: u64 = 1_764_000_000_000;

#[test]
fn threads_sharing_one_slice_count_every_call_and_probe_one_at_a_time() {
    const THREADS: usize = 4;
    const CALLS: usize = 50_000;
    let memory = OwnedSlots::new();
    let slots = Slots::new(memory.slots()).unwrap();
    claim_layout(&slots).unwrap();
    let clock = AtomicU64::new(T0);
    let probes_running = AtomicI64::new(0);
    let most_probes_at_once = AtomicI64::new(0);
    let probes = AtomicUsize::new(0);
    let opened = AtomicUsize::new(0);
    let closed = AtomicUsize::new(0);
    let invalid_state_seen = AtomicBool::new(false);
    let barrier = Barrier::new(THREADS);

    thread::scope(|scope| {
        for t in 0..THREADS {
            let (clock, barrier, memory) = (&clock, &barrier, &memory);
            let (probes_running, most_probes_at_once) = (&probes_running, &most_probes_at_once);
            let (probes, opened, closed) = (&probes, &opened, &closed);
            let invalid_state_seen = &invalid_state_seen;
            scope.spawn(move || {
                let breaker = Breaker::new(
                    Slots::new(memory.slots()).unwrap(),
                    Config::new(5.0, 20.0).unwrap(),
                );
                let stripe = Stripe::new(t);
                barrier.wait();
                for i in 0..CALLS {
                    // Time moves 1 ms every 64 calls of each thread; the
                    // dependency fails for bursts of 200 calls in every 1000.
                    if i % 64 == 0 {
                        clock.fetch_add(1, SeqCst);
                    }
                    let now = clock.load(SeqCst);
                    let failing = (i + t * 37) % 1000 < 200;
                    let raw = memory.slots()[STATE].load(SeqCst);
                    if !(0..=2).contains(&raw) {
                        invalid_state_seen.store(true, SeqCst);
                    }
                    match breaker.admit(now, stripe).0 {
                        Admission::Run => {
                            let transition = if failing {
                                breaker.on_failure(now, stripe)
                            } else {
                                breaker.on_success(now, stripe);
                                None
                            };
                            if transition == Some(Transition::Opened) {
                                opened.fetch_add(1, SeqCst);
                            }
                        }
                        Admission::Probe(ticket) => {
                            probes.fetch_add(1, SeqCst);
                            let running = probes_running.fetch_add(1, SeqCst) + 1;
                            most_probes_at_once.fetch_max(running, SeqCst);
                            probes_running.fetch_sub(1, SeqCst);
                            match breaker.on_probe_result(ticket, !failing, now, stripe) {
                                Some(Transition::Closed) => closed.fetch_add(1, SeqCst),
                                Some(Transition::Opened) => opened.fetch_add(1, SeqCst),
                                _ => 0,
                            };
                        }
                        Admission::Reject => {}
                    }
                }
            });
        }
    });

    let breaker = Breaker::new(
        Slots::new(memory.slots()).unwrap(),
        Config::new(5.0, 20.0).unwrap(),
    );
    let totals = breaker.totals();
    assert_eq!(
        totals.requests,
        (THREADS * CALLS) as u64,
        "every call counted once"
    );
    assert_eq!(
        totals.successes + totals.failures + totals.rejections,
        totals.requests
    );
    assert_eq!(
        most_probes_at_once.load(SeqCst),
        1,
        "never two probes at once"
    );
    assert!(!invalid_state_seen.load(SeqCst));
    assert!(State::ALL.contains(&breaker.state(clock.load(SeqCst))));
    // The workload really exercised the machine, many times over.
    assert!(
        opened.load(SeqCst) >= 10,
        "opened {} times",
        opened.load(SeqCst)
    );
    assert!(
        closed.load(SeqCst) >= 10,
        "closed {} times",
        closed.load(SeqCst)
    );
    assert!(probes.load(SeqCst) >= closed.load(SeqCst));
    assert!(totals.rejections > 0);
}

#[test]
fn racing_callers_after_the_timeout_admit_exactly_one_probe() {
    const THREADS: usize = 8;
    for round in 0..200 {
        let memory = OwnedSlots::new();
        let slots = Slots::new(memory.slots()).unwrap();
        claim_layout(&slots).unwrap();
        let config = Config::new(1.0, 100.0).unwrap();
        Breaker::new(slots, config).on_failure(T0, Stripe::new(0));
        let barrier = Barrier::new(THREADS);
        let probes = AtomicUsize::new(0);
        thread::scope(|scope| {
            for t in 0..THREADS {
                let (barrier, probes, memory) = (&barrier, &probes, &memory);
                scope.spawn(move || {
                    let breaker = Breaker::new(Slots::new(memory.slots()).unwrap(), config);
                    barrier.wait();
                    if let Admission::Probe(_) = breaker.admit(T0 + 100, Stripe::new(t)).0 {
                        probes.fetch_add(1, SeqCst);
                    }
                });
            }
        });
        assert_eq!(probes.load(SeqCst), 1, "round {round}");
    }
}

#[test]
fn racing_failures_open_the_breaker_exactly_once() {
    const THREADS: usize = 8;
    for round in 0..200 {
        let memory = OwnedSlots::new();
        Slots::new(memory.slots())
            .map(|s| claim_layout(&s))
            .unwrap()
            .unwrap();
        let barrier = Barrier::new(THREADS);
        let opened = AtomicUsize::new(0);
        thread::scope(|scope| {
            for t in 0..THREADS {
                let (barrier, opened, memory) = (&barrier, &opened, &memory);
                scope.spawn(move || {
                    let config = Config::new(3.0, 1000.0).unwrap();
                    let breaker = Breaker::new(Slots::new(memory.slots()).unwrap(), config);
                    barrier.wait();
                    if breaker.on_failure(T0, Stripe::new(t)) == Some(Transition::Opened) {
                        opened.fetch_add(1, SeqCst);
                    }
                });
            }
        });
        assert_eq!(opened.load(SeqCst), 1, "round {round}");
        let breaker = Breaker::new(
            Slots::new(memory.slots()).unwrap(),
            Config::new(3.0, 1000.0).unwrap(),
        );
        assert_eq!(
            breaker.consecutive_failures(),
            THREADS as u32,
            "no failure lost"
        );
        assert_eq!(breaker.state(T0), State::Open);
    }
}
