//! The state machine with an injected clock: every test steps `now` by hand.

use breaker_core::layout::{self, STATE};
use breaker_core::{
    claim_layout, Admission, Breaker, Cells, Config, MemoryError, OwnedSlots, Setting, State,
    Stripe, Ticket, Transition,
};
use std::sync::atomic::Ordering::SeqCst;

const T0: u64 = 1_764_000_000_000; // a Date.now()-scale time
const MAIN: Stripe = Stripe::new(0);

fn breaker(memory: &OwnedSlots, threshold: u32, timeout: u64) -> Breaker<breaker_core::Slots<'_>> {
    let slots = breaker_core::Slots::new(memory.slots()).expect("owned slots are valid");
    claim_layout(&slots).expect("fresh memory");
    Breaker::new(
        slots,
        Config::new(threshold as f64, timeout as f64).expect("valid config"),
    )
}

fn fail_n(b: &Breaker<breaker_core::Slots<'_>>, n: u32, now: u64) -> Vec<Option<Transition>> {
    (0..n).map(|_| b.on_failure(now, MAIN)).collect()
}

fn probe(b: &Breaker<breaker_core::Slots<'_>>, now: u64) -> Ticket {
    match b.admit(now, MAIN).0 {
        Admission::Probe(ticket) => ticket,
        other => panic!("expected a probe, got {other:?}"),
    }
}

#[test]
fn a_buffer_of_zeroes_is_a_closed_breaker() {
    let memory = OwnedSlots::new();
    let b = breaker(&memory, 3, 1000);
    assert_eq!(b.state(T0), State::Closed);
    assert_eq!(b.admit(T0, MAIN).0, Admission::Run);
    assert_eq!(b.totals(), Default::default());
}

#[test]
fn opens_after_n_consecutive_failures() {
    let memory = OwnedSlots::new();
    let b = breaker(&memory, 3, 1000);
    assert_eq!(fail_n(&b, 2, T0), vec![None, None]);
    assert_eq!(b.state(T0), State::Closed);
    assert_eq!(b.on_failure(T0, MAIN), Some(Transition::Opened));
    assert_eq!(b.state(T0), State::Open);
    assert_eq!(b.consecutive_failures(), 3);
    assert_eq!(memory.slots()[STATE].load(SeqCst), State::Open as i32);
}

#[test]
fn a_success_resets_the_run_of_failures() {
    let memory = OwnedSlots::new();
    let b = breaker(&memory, 3, 1000);
    fail_n(&b, 2, T0);
    b.on_success(T0, MAIN);
    assert_eq!(b.consecutive_failures(), 0);
    assert_eq!(fail_n(&b, 2, T0), vec![None, None]);
    assert_eq!(b.state(T0), State::Closed);
}

#[test]
fn a_batch_of_successes_counts_each_and_resets_the_run_once() {
    let memory = OwnedSlots::new();
    let b = breaker(&memory, 3, 1000);
    fail_n(&b, 2, T0);
    b.on_successes(300, T0 + 5, MAIN);
    assert_eq!(b.consecutive_failures(), 0);
    let totals = b.totals();
    assert_eq!(totals.successes, 300);
    assert_eq!(totals.requests, 302);
    assert_eq!(totals.last_success_ms, T0 + 5);
    assert_eq!(b.state(T0 + 5), State::Closed);
}

#[test]
fn successes_published_after_the_fact_leave_later_failures_in_the_run() {
    let memory = OwnedSlots::new();
    let b = breaker(&memory, 3, 1000);
    // Two successes happened with the run at 0, then two failures; the
    // successes are published only now: the run is still 2.
    fail_n(&b, 2, T0);
    b.publish_successes(2, T0 + 1, MAIN);
    assert_eq!(b.consecutive_failures(), 2);
    assert_eq!(b.totals().successes, 2);
    assert_eq!(b.totals().requests, 4);
    assert_eq!(b.on_failure(T0 + 2, MAIN), Some(Transition::Opened));
}

#[test]
fn rejects_while_open_and_counts_the_rejection() {
    let memory = OwnedSlots::new();
    let b = breaker(&memory, 1, 1000);
    b.on_failure(T0, MAIN);
    assert_eq!(b.admit(T0 + 999, MAIN).0, Admission::Reject);
    let totals = b.totals();
    assert_eq!(
        (totals.requests, totals.failures, totals.rejections),
        (2, 1, 1)
    );
}

#[test]
fn after_the_reset_timeout_exactly_one_caller_probes() {
    let memory = OwnedSlots::new();
    let b = breaker(&memory, 1, 1000);
    b.on_failure(T0, MAIN);
    assert_eq!(
        b.state(T0 + 1000),
        State::HalfOpen,
        "due to probe: reported HALF_OPEN"
    );
    let ticket = probe(&b, T0 + 1000);
    assert_eq!(b.admit(T0 + 1000, MAIN).0, Admission::Reject);
    assert_eq!(b.admit(T0 + 1500, MAIN).0, Admission::Reject);
    assert_eq!(b.state(T0 + 1500), State::HalfOpen);
    assert_eq!(
        b.on_probe_result(ticket, true, T0 + 1600, MAIN),
        Some(Transition::Closed)
    );
}

#[test]
fn closes_when_the_half_open_probe_succeeds() {
    let memory = OwnedSlots::new();
    let b = breaker(&memory, 2, 100);
    fail_n(&b, 2, T0);
    let ticket = probe(&b, T0 + 100);
    assert_eq!(
        b.on_probe_result(ticket, true, T0 + 101, MAIN),
        Some(Transition::Closed)
    );
    assert_eq!(b.state(T0 + 101), State::Closed);
    assert_eq!(b.consecutive_failures(), 0);
    assert_eq!(b.admit(T0 + 102, MAIN).0, Admission::Run);
}

#[test]
fn reopens_when_the_probe_fails_and_the_timeout_starts_over() {
    let memory = OwnedSlots::new();
    let b = breaker(&memory, 1, 100);
    b.on_failure(T0, MAIN);
    let ticket = probe(&b, T0 + 100);
    assert_eq!(
        b.on_probe_result(ticket, false, T0 + 150, MAIN),
        Some(Transition::Opened)
    );
    assert_eq!(
        b.state(T0 + 249),
        State::Open,
        "timeout counts from the probe's failure"
    );
    assert_eq!(b.admit(T0 + 249, MAIN).0, Admission::Reject);
    probe(&b, T0 + 250);
}

#[test]
fn a_probe_that_never_settles_frees_the_breaker_after_the_timeout() {
    let memory = OwnedSlots::new();
    let b = breaker(&memory, 1, 100);
    b.on_failure(T0, MAIN);
    let lost = probe(&b, T0 + 100);
    assert_eq!(b.admit(T0 + 199, MAIN).0, Admission::Reject);
    let second = probe(&b, T0 + 200);
    assert_ne!(lost, second);
    // The lost probe's late answer decides nothing; the live probe's does.
    assert_eq!(b.on_probe_result(lost, true, T0 + 210, MAIN), None);
    assert_eq!(b.state(T0 + 210), State::HalfOpen);
    assert_eq!(
        b.on_probe_result(second, true, T0 + 220, MAIN),
        Some(Transition::Closed)
    );
}

#[test]
fn state_set_to_open_from_outside_counts_as_opened_when_first_seen() {
    let memory = OwnedSlots::new();
    let b = breaker(&memory, 5, 1000);
    // What `Atomics.store(array, STATE, OPEN)` does: the low half only.
    memory.slots()[STATE].store(State::Open as i32, SeqCst);
    assert_eq!(
        b.admit(T0 + 5000, MAIN).0,
        Admission::Reject,
        "first sight stamps the opening"
    );
    assert_eq!(b.state(T0 + 5999), State::Open);
    probe(&b, T0 + 6000);
}

#[test]
fn state_set_to_open_from_outside_during_a_probe_starts_a_fresh_wait() {
    let memory = OwnedSlots::new();
    let b = breaker(&memory, 1, 100);
    b.on_failure(T0, MAIN);
    let ticket = probe(&b, T0 + 100);
    memory.slots()[STATE].store(State::Open as i32, SeqCst);
    assert_eq!(b.admit(T0 + 300, MAIN).0, Admission::Reject);
    assert_eq!(
        b.on_probe_result(ticket, true, T0 + 300, MAIN),
        None,
        "the probe's episode ended"
    );
    assert_eq!(b.state(T0 + 399), State::Open);
    probe(&b, T0 + 400);
}

#[test]
fn a_state_slot_holding_garbage_is_repaired_to_open() {
    let memory = OwnedSlots::new();
    let b = breaker(&memory, 1, 100);
    memory.slots()[STATE].store(7, SeqCst);
    assert_eq!(b.state(T0), State::Open);
    assert_eq!(memory.slots()[STATE].load(SeqCst), State::Open as i32);
    assert_eq!(b.admit(T0 + 99, MAIN).0, Admission::Reject);
    probe(&b, T0 + 100);
}

#[test]
fn forced_half_open_lets_the_next_caller_probe() {
    let memory = OwnedSlots::new();
    let b = breaker(&memory, 1, 60_000);
    b.on_failure(T0, MAIN);
    assert_eq!(b.force_half_open(), Some(Transition::HalfOpened));
    assert_eq!(b.state(T0 + 1), State::HalfOpen);
    let ticket = probe(&b, T0 + 1);
    assert_eq!(b.admit(T0 + 2, MAIN).0, Admission::Reject);
    assert_eq!(
        b.on_probe_result(ticket, true, T0 + 3, MAIN),
        Some(Transition::Closed)
    );
}

#[test]
fn forced_half_open_from_closed_admits_one_probe() {
    let memory = OwnedSlots::new();
    let b = breaker(&memory, 5, 1000);
    b.force_half_open();
    let ticket = probe(&b, T0);
    assert_eq!(b.admit(T0, MAIN).0, Admission::Reject);
    assert_eq!(
        b.on_probe_result(ticket, false, T0, MAIN),
        Some(Transition::Opened)
    );
    assert_eq!(b.state(T0 + 999), State::Open);
}

#[test]
fn a_clock_that_goes_back_restarts_the_wait_instead_of_stalling() {
    let memory = OwnedSlots::new();
    let b = breaker(&memory, 1, 100);
    b.on_failure(T0, MAIN);
    // Wall clock stepped back an hour: the wait is measured from the new time.
    let back = T0 - 3_600_000;
    assert_eq!(b.admit(back, MAIN).0, Admission::Reject);
    assert_eq!(b.admit(back + 99, MAIN).0, Admission::Reject);
    probe(&b, back + 100);
}

#[test]
fn a_zero_reset_timeout_still_admits_one_probe_at_a_time() {
    let memory = OwnedSlots::new();
    let b = breaker(&memory, 1, 0);
    b.on_failure(T0, MAIN);
    let ticket = probe(&b, T0);
    assert_eq!(b.admit(T0, MAIN).0, Admission::Reject);
    assert_eq!(
        b.on_probe_result(ticket, false, T0, MAIN),
        Some(Transition::Opened)
    );
    probe(&b, T0);
}

#[test]
fn failures_while_open_count_but_do_not_transition() {
    let memory = OwnedSlots::new();
    let b = breaker(&memory, 1, 1000);
    assert_eq!(b.on_failure(T0, MAIN), Some(Transition::Opened));
    // A call admitted before the breaker opened fails late.
    assert_eq!(b.on_failure(T0 + 1, MAIN), None);
    assert_eq!(b.consecutive_failures(), 2);
    assert_eq!(
        b.state(T0 + 999),
        State::Open,
        "a late failure does not restart the wait"
    );
}

#[test]
fn totals_and_times_are_kept_per_stripe_and_summed() {
    let memory = OwnedSlots::new();
    let b = breaker(&memory, 100, 1000);
    for stripe in 0..layout::STRIPES * 2 {
        b.on_success(T0 + stripe as u64, Stripe::new(stripe));
    }
    b.on_failure(T0 + 50, Stripe::new(3));
    let totals = b.totals();
    let n = layout::STRIPES as u64 * 2;
    assert_eq!(totals.successes, n);
    assert_eq!(totals.failures, 1);
    assert_eq!(totals.requests, n + 1);
    assert_eq!(totals.last_success_ms, T0 + n - 1);
    assert_eq!(totals.last_failure_ms, T0 + 50);
}

#[test]
fn counters_and_times_hold_values_past_32_bits() {
    let memory = OwnedSlots::new();
    let b = breaker(&memory, 100, 1000);
    let slot = layout::stripe_slot(0, layout::SUCCESSES);
    b.cells().wide(slot).store(u64::from(u32::MAX), SeqCst);
    b.on_success(T0, MAIN);
    assert_eq!(b.totals().successes, u64::from(u32::MAX) + 1);
    assert!(b.totals().last_success_ms > u64::from(u32::MAX));
}

#[test]
fn joining_a_used_buffer_keeps_its_state() {
    let memory = OwnedSlots::new();
    let first = breaker(&memory, 1, 1000);
    first.on_failure(T0, MAIN);
    let second = breaker(&memory, 1, 1000);
    assert_eq!(second.state(T0 + 1), State::Open);
    assert_eq!(second.totals().failures, 1);
}

#[test]
fn refuses_memory_it_cannot_use() {
    let memory = OwnedSlots::new();
    let short = &memory.slots()[..layout::SLOT_COUNT - 1];
    assert!(matches!(
        breaker_core::Slots::new(short),
        Err(MemoryError::TooShort {
            required: layout::SLOT_COUNT,
            ..
        })
    ));
    let shifted = &memory.slots()[1..];
    assert!(matches!(
        breaker_core::Slots::new(shifted),
        Err(MemoryError::Misaligned { .. })
    ));
    memory.slots()[layout::LAYOUT_VERSION].store(12345, SeqCst);
    let slots = breaker_core::Slots::new(memory.slots()).unwrap();
    assert_eq!(
        claim_layout(&slots),
        Err(MemoryError::ForeignLayout { found: 12345 })
    );
}

#[test]
fn refuses_bad_settings() {
    for threshold in [0.0, -1.0, 1.5, f64::NAN, f64::INFINITY, 3e9] {
        assert!(
            Config::new(threshold, 1000.0).is_err(),
            "threshold {threshold}"
        );
    }
    for timeout in [-1.0, f64::NAN, f64::INFINITY, 1e300] {
        assert!(Config::new(1.0, timeout).is_err(), "timeout {timeout}");
    }
    let config = Config::new(5.0, 0.5).unwrap();
    assert_eq!(
        (config.failure_threshold(), config.reset_timeout_ms()),
        (5, 1)
    );
    let error = Config::new(0.0, 1.0).unwrap_err();
    assert_eq!(
        (error.setting, error.received),
        (Setting::FailureThreshold, 0.0)
    );
    assert_eq!(
        error.to_string(),
        "FailureThreshold must be an integer from 1 to 2147483647, got 0"
    );
}

/// The whole life of a breaker, one step at a time.
///
/// ```text
///  t=0    F F F        CLOSED ──3 failures──▶ OPEN
///  t=50   call         rejected (OPEN)
///  t=100  call A       probe ──▶ HALF_OPEN;  call B rejected
///  t=120  A fails      OPEN again, wait restarts
///  t=219  call         rejected
///  t=220  call C       probe;  C succeeds ──▶ CLOSED
///  t=221  call         runs
/// ```
#[test]
fn end_to_end_sequence() {
    let memory = OwnedSlots::new();
    let b = breaker(&memory, 3, 100);
    assert_eq!(
        fail_n(&b, 3, T0),
        vec![None, None, Some(Transition::Opened)]
    );
    assert_eq!(b.admit(T0 + 50, MAIN).0, Admission::Reject);
    let a = probe(&b, T0 + 100);
    assert_eq!(b.admit(T0 + 100, MAIN).0, Admission::Reject);
    assert_eq!(
        b.on_probe_result(a, false, T0 + 120, MAIN),
        Some(Transition::Opened)
    );
    assert_eq!(b.admit(T0 + 219, MAIN).0, Admission::Reject);
    let c = probe(&b, T0 + 220);
    assert_eq!(
        b.on_probe_result(c, true, T0 + 220, MAIN),
        Some(Transition::Closed)
    );
    assert_eq!(b.admit(T0 + 221, MAIN).0, Admission::Run);
    let totals = b.totals();
    assert_eq!(totals.failures, 4);
    assert_eq!(totals.successes, 1);
    assert_eq!(totals.rejections, 3);
    assert_eq!(totals.requests, 8);
}

#[test]
fn admit_reports_the_transition_it_made() {
    let memory = OwnedSlots::new();
    let b = breaker(&memory, 1, 1000);
    assert_eq!(b.admit(T0, MAIN), (Admission::Run, None));
    b.on_failure(T0, MAIN);
    assert_eq!(b.admit(T0 + 999, MAIN), (Admission::Reject, None));
    let (admission, made) = b.admit(T0 + 1000, MAIN);
    assert!(matches!(admission, Admission::Probe(_)));
    assert_eq!(made, Some(Transition::HalfOpened), "the open period ended");
    assert_eq!(b.admit(T0 + 1001, MAIN), (Admission::Reject, None));
    // The probe's lease runs out: a new episode, whose probe this caller is.
    let (admission, made) = b.admit(T0 + 2000, MAIN);
    assert!(matches!(admission, Admission::Probe(_)));
    assert_eq!(made, Some(Transition::HalfOpened), "a new episode");
    // A state JavaScript wrote moves to OPEN, stamped now.
    memory.slots()[STATE].store(7, SeqCst);
    assert_eq!(
        b.admit(T0 + 2001, MAIN),
        (Admission::Reject, Some(Transition::Opened))
    );
}
