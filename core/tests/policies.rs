//! The policies past the seed, with an injected clock: half-open probes,
//! backoff, manual control, the failure rate, slow calls, filtered errors,
//! the transition log.

use breaker_core::features::{claim_features, FeaturesError};
use breaker_core::layout::{LOG_ENTRY_SLOTS, TRANSITION_LOG};
use breaker_core::LogRead;
use breaker_core::{
    claim_layout, Admission, Breaker, Cells, Config, ConfigError, OwnedSlots, Range, Setting,
    Slots, State, Stripe, Ticket, Transition,
};
use breaker_core::{Marks, Policies};
use std::sync::atomic::Ordering::Relaxed;

const T0: u64 = 1_764_000_000_000;
const MAIN: Stripe = Stripe::new(0);
const OTHER: Stripe = Stripe::new(1);

fn config(threshold: u32, timeout: u64, policies: Policies) -> Config {
    Config::with_policies(threshold as f64, timeout as f64, &policies).expect("valid config")
}

fn memory_for(config: &Config) -> OwnedSlots {
    OwnedSlots::with_len(config.slots_needed())
}

fn breaker(memory: &OwnedSlots, config: Config) -> Breaker<Slots<'_>> {
    let slots = Slots::new(memory.slots()).expect("owned slots are valid");
    claim_layout(&slots).expect("fresh memory");
    claim_features(&slots, slots.len(), &config.features()).expect("room for the features");
    Breaker::new(slots, config)
}

fn probe(b: &Breaker<Slots<'_>>, now: u64) -> Ticket {
    match b.admit(now, MAIN).0 {
        Admission::Probe(ticket) => ticket,
        other => panic!("expected a probe, got {other:?}"),
    }
}

fn open(b: &Breaker<Slots<'_>>, threshold: u32, now: u64) {
    for _ in 0..threshold {
        b.on_failure(now, MAIN);
    }
    assert_eq!(b.state(now), State::Open);
}

#[test]
fn half_open_max_calls_admits_that_many_probes_at_once() {
    let c = config(
        1,
        1000,
        Policies {
            half_open_max_calls: Some(3.0),
            ..Policies::default()
        },
    );
    let memory = memory_for(&c);
    let b = breaker(&memory, c);
    open(&b, 1, T0);
    let t = T0 + 1000;
    let admitted: Vec<_> = (0..5).map(|_| b.admit(t, MAIN).0).collect();
    let probes = admitted
        .iter()
        .filter(|a| matches!(a, Admission::Probe(_)))
        .count();
    assert_eq!(probes, 3, "{admitted:?}");
    assert_eq!(admitted[3], Admission::Reject);
    assert_eq!(b.totals().probes, 3);
}

#[test]
fn a_probe_success_frees_its_place_until_the_success_threshold_closes() {
    let c = config(
        1,
        1000,
        Policies {
            success_threshold: Some(3.0),
            ..Policies::default()
        },
    );
    let memory = memory_for(&c);
    let b = breaker(&memory, c);
    open(&b, 1, T0);
    let t = T0 + 1000;
    for round in 1..=3 {
        let ticket = probe(&b, t);
        assert_eq!(b.admit(t, MAIN).0, Admission::Reject, "one at a time");
        let result = b.on_probe_result(ticket, true, t, MAIN);
        if round < 3 {
            assert_eq!(result, None, "success {round} of 3 does not close");
            assert_eq!(b.state(t), State::HalfOpen);
        } else {
            assert_eq!(result, Some(Transition::Closed));
        }
    }
    assert_eq!(b.state(t), State::Closed);
}

#[test]
fn any_probe_failure_reopens_even_after_successes() {
    let c = config(
        1,
        1000,
        Policies {
            half_open_max_calls: Some(2.0),
            success_threshold: Some(2.0),
            ..Policies::default()
        },
    );
    let memory = memory_for(&c);
    let b = breaker(&memory, c);
    open(&b, 1, T0);
    let t = T0 + 1000;
    let first = probe(&b, t);
    let second = probe(&b, t);
    assert_eq!(b.on_probe_result(first, true, t, MAIN), None);
    assert_eq!(
        b.on_probe_result(second, false, t, MAIN),
        Some(Transition::Opened)
    );
    assert_eq!(b.admit(t + 999, MAIN).0, Admission::Reject);
}

#[test]
fn the_open_period_grows_with_each_failed_probe_and_starts_over_on_close() {
    let c = config(
        1,
        100,
        Policies {
            max_reset_timeout: Some(350.0),
            backoff_multiplier: Some(2.0),
            ..Policies::default()
        },
    );
    let memory = memory_for(&c);
    let b = breaker(&memory, c);
    open(&b, 1, T0);
    // Opened at T0 for 100 ms; each failed probe doubles it: 200, then 350 (capped).
    let mut t = T0;
    for expected in [100, 200, 350, 350] {
        assert_eq!(b.open_ms(), expected);
        assert_eq!(b.admit(t + expected - 1, MAIN).0, Admission::Reject);
        t += expected;
        let ticket = probe(&b, t);
        assert_eq!(
            b.on_probe_result(ticket, false, t, MAIN),
            Some(Transition::Opened)
        );
    }
    t += 350;
    let ticket = probe(&b, t);
    assert_eq!(
        b.on_probe_result(ticket, true, t, MAIN),
        Some(Transition::Closed)
    );
    assert_eq!(b.open_ms(), 100, "closing starts the backoff over");
}

#[test]
fn isolation_holds_the_breaker_open_past_the_reset_timeout_until_released() {
    let c = config(5, 100, Policies::default());
    let memory = memory_for(&c);
    let b = breaker(&memory, c);
    let (epoch, opened) = b.isolate(T0).expect("taken");
    assert_eq!(opened, Some(Transition::Opened));
    assert_eq!(b.isolate(T0), Some((epoch, None)), "a second isolation");
    assert_eq!(b.admit(T0 + 10_000, MAIN).0, Admission::Reject);
    assert_eq!(b.state(T0 + 10_000), State::Open);
    assert_eq!(
        b.release_isolation(epoch, T0 + 10_000),
        None,
        "one still held"
    );
    assert_eq!(b.admit(T0 + 10_000, OTHER).0, Admission::Reject);
    assert_eq!(
        b.release_isolation(epoch, T0 + 10_000),
        Some(Transition::Closed),
        "the last release closes"
    );
    assert_eq!(b.admit(T0 + 10_000, MAIN).0, Admission::Run);
    assert_eq!(
        b.release_isolation(epoch, T0),
        None,
        "releasing more than taken is harmless"
    );
    assert_eq!(b.overrides().isolations, 0);
}

#[test]
fn an_isolation_from_before_a_reset_releases_nothing() {
    let c = config(5, 100, Policies::default());
    let memory = memory_for(&c);
    let b = breaker(&memory, c);
    let (stale, _) = b.isolate(T0).expect("taken");
    b.reset(T0);
    let (current, _) = b.isolate(T0).expect("taken");
    assert_ne!(stale, current);
    assert_eq!(b.release_isolation(stale, T0), None);
    assert_eq!(b.state(T0), State::Open, "the new isolation still holds");
    assert_eq!(b.release_isolation(current, T0), Some(Transition::Closed));
}

#[test]
fn an_isolation_from_32768_and_65536_resets_before_releases_nothing() {
    let c = config(5, 100, Policies::default());
    let memory = memory_for(&c);
    let b = breaker(&memory, c);
    let (stale, _) = b.isolate(T0).expect("taken");
    for resets in 1..=65_536 {
        b.reset(T0);
        if resets == 32_768 || resets == 65_536 {
            let (current, _) = b.isolate(T0).expect("taken");
            assert_ne!(current, stale, "after {resets} resets");
            assert_eq!(
                b.release_isolation(stale, T0),
                None,
                "after {resets} resets"
            );
            assert_eq!(b.state(T0), State::Open, "the live isolation still holds");
            assert_eq!(b.overrides().isolations, 1);
            assert_eq!(b.release_isolation(current, T0), Some(Transition::Closed));
        }
    }
}

#[test]
fn isolations_past_the_most_held_at_once_are_refused_and_none_is_lost() {
    use breaker_core::MAX_ISOLATIONS;
    let c = config(5, 100, Policies::default());
    let memory = memory_for(&c);
    let b = breaker(&memory, c);
    let (epoch, _) = b.isolate(T0).expect("taken");
    for _ in 1..MAX_ISOLATIONS {
        assert_eq!(b.isolate(T0), Some((epoch, None)));
    }
    assert_eq!(b.overrides().isolations, MAX_ISOLATIONS);
    assert_eq!(b.isolate(T0), None, "one more than the most is refused");
    assert_eq!(
        b.overrides().isolations,
        MAX_ISOLATIONS,
        "and takes nothing"
    );
    for _ in 1..MAX_ISOLATIONS {
        assert_eq!(b.release_isolation(epoch, T0), None);
    }
    assert_eq!(b.state(T0), State::Open, "one isolation still held");
    assert_eq!(b.admit(T0 + 10_000, MAIN).0, Admission::Reject);
    assert_eq!(b.release_isolation(epoch, T0), Some(Transition::Closed));
    assert_eq!(
        b.release_isolation(epoch, T0),
        None,
        "nothing left to release"
    );
    assert_eq!(b.isolate(T0).map(|(e, _)| e), Some(epoch), "a place again");
}

#[test]
fn a_count_window_smaller_than_the_default_minimum_still_opens() {
    let c = config(5, 100, rate(50.0, f64::NAN, 5.0));
    let memory = memory_for(&c);
    let b = breaker(&memory, c);
    let opened: Vec<_> = (0..5).map(|_| b.on_failure(T0, MAIN)).collect();
    assert_eq!(
        opened[4],
        Some(Transition::Opened),
        "the minimum shrinks to the window's 5"
    );
}

#[test]
fn isolation_wins_over_a_forced_half_open() {
    let c = config(5, 100, Policies::default());
    let memory = memory_for(&c);
    let b = breaker(&memory, c);
    assert_eq!(
        b.isolate(T0).map(|(_, made)| made),
        Some(Some(Transition::Opened))
    );
    assert_eq!(b.force_half_open_at(T0), None, "held OPEN: no transition");
    assert_eq!(b.admit(T0 + 1, MAIN), (Admission::Reject, None));
    assert_eq!(b.state(T0 + 1), State::Open);
}

#[test]
fn reset_closes_and_clears_isolations_failures_and_backoff() {
    let c = config(
        2,
        100,
        Policies {
            max_reset_timeout: Some(1000.0),
            ..Policies::default()
        },
    );
    let memory = memory_for(&c);
    let b = breaker(&memory, c);
    open(&b, 2, T0);
    let ticket = probe(&b, T0 + 100);
    b.on_probe_result(ticket, false, T0 + 100, MAIN);
    assert_eq!(b.open_ms(), 200);
    b.isolate(T0 + 100);
    assert_eq!(b.reset(T0 + 101), Some(Transition::Closed));
    assert_eq!(
        b.state(T0 + 101),
        State::Closed,
        "the isolation ended with the reset"
    );
    assert_eq!(b.state(T0 + 101), State::Closed);
    assert_eq!(b.consecutive_failures(), 0);
    assert_eq!(b.open_ms(), 100);
    assert_eq!(b.overrides().isolations, 0);
    // One failure is not two in a row after the reset.
    assert_eq!(b.on_failure(T0 + 102, MAIN), None);
    assert_eq!(b.totals().failures, 4, "lifetime counts are kept");
}

#[test]
fn a_disabled_breaker_runs_everything_and_never_opens_but_counts() {
    let c = config(2, 100, Policies::default());
    let memory = memory_for(&c);
    let b = breaker(&memory, c);
    open(&b, 2, T0);
    assert_eq!(b.set_disabled(true, T0), Some(Transition::Closed));
    for _ in 0..10 {
        assert_eq!(b.admit(T0, MAIN).0, Admission::Run);
        assert_eq!(b.on_failure(T0, MAIN), None);
    }
    assert_eq!(b.state(T0), State::Closed);
    assert_eq!(b.totals().failures, 12);
    b.set_disabled(false, T0);
    assert_eq!(b.on_failure(T0, MAIN), Some(Transition::Opened));
}

/// A count-window rate policy; a NaN `minimum` leaves the default.
fn rate(percent: f64, minimum: f64, window: f64) -> Policies {
    Policies {
        failure_rate_threshold: Some(percent),
        minimum_calls: (!minimum.is_nan()).then_some(minimum),
        window_size: Some(window),
        ..Policies::default()
    }
}

#[test]
fn the_failure_rate_opens_once_the_window_has_minimum_calls() {
    let c = config(5, 100, rate(50.0, 10.0, 20.0));
    assert_eq!(c.failure_threshold(), 0, "only the rate decides");
    let memory = memory_for(&c);
    let b = breaker(&memory, c);
    // 4 successes, then failures: 5 failures of 9 calls is over 50% but
    // under the minimum; the 6th failure makes 10 calls, 60%.
    b.on_successes(4, T0, MAIN);
    for _ in 0..5 {
        assert_eq!(b.on_failure(T0, MAIN), None);
    }
    assert_eq!(b.on_failure(T0, OTHER), Some(Transition::Opened));
    let counts = b.window_counts(T0).expect("a window");
    assert_eq!((counts.calls, counts.bad), (10, 6));
}

#[test]
fn under_the_rate_even_long_failure_runs_do_not_open() {
    let c = config(5, 100, rate(60.0, 10.0, 10.0));
    let memory = memory_for(&c);
    let b = breaker(&memory, c);
    // Alternate one success, one failure: 50% < 60%, runs never above 1.
    for _ in 0..50 {
        b.on_success(T0, MAIN);
        assert_eq!(b.on_failure(T0, MAIN), None);
    }
    assert_eq!(b.state(T0), State::Closed);
}

#[test]
fn with_both_an_explicit_threshold_and_a_rate_either_opens() {
    let mut policies = rate(90.0, 100.0, 100.0);
    policies.consecutive_too = true;
    let c = config(3, 100, policies);
    let memory = memory_for(&c);
    let b = breaker(&memory, c);
    b.on_failure(T0, MAIN);
    b.on_failure(T0, MAIN);
    assert_eq!(b.on_failure(T0, MAIN), Some(Transition::Opened));
}

#[test]
fn slow_successes_count_as_bad_for_the_rate() {
    let c = config(5, 100, rate(50.0, 4.0, 10.0));
    let memory = memory_for(&c);
    let b = breaker(&memory, c);
    let slow = Marks {
        slow: true,
        ..Marks::default()
    };
    b.on_successes(2, T0, MAIN);
    assert_eq!(
        b.on_marked_success(slow, T0, MAIN),
        None,
        "3 calls < minimum 4"
    );
    assert_eq!(
        b.on_marked_success(slow, T0, MAIN),
        Some(Transition::Opened),
        "2 slow of 4"
    );
    let totals = b.totals();
    assert_eq!((totals.successes, totals.slow_calls), (4, 2));
}

#[test]
fn filtered_errors_count_as_successes_and_end_the_run() {
    let c = config(2, 100, Policies::default());
    let memory = memory_for(&c);
    let b = breaker(&memory, c);
    b.on_failure(T0, MAIN);
    let filtered = Marks {
        filtered: true,
        ..Marks::default()
    };
    b.on_marked_success(filtered, T0, MAIN);
    assert_eq!(b.on_failure(T0, MAIN), None, "the run started over");
    let totals = b.totals();
    assert_eq!(
        (totals.successes, totals.filtered, totals.failures),
        (1, 1, 2)
    );
}

#[test]
fn closing_clears_the_window_so_old_failures_do_not_reopen_it() {
    let c = config(5, 100, rate(50.0, 2.0, 10.0));
    let memory = memory_for(&c);
    let b = breaker(&memory, c);
    b.on_failure(T0, MAIN);
    assert_eq!(b.on_failure(T0, MAIN), Some(Transition::Opened));
    let ticket = probe(&b, T0 + 100);
    assert_eq!(
        b.on_probe_result(ticket, true, T0 + 100, MAIN),
        Some(Transition::Closed)
    );
    assert_eq!(b.window_counts(T0 + 100).map(|w| w.calls), Some(0));
    b.on_success(T0 + 101, MAIN);
    assert_eq!(
        b.on_failure(T0 + 101, MAIN),
        Some(Transition::Opened),
        "1 of 2 is 50%"
    );
}

#[test]
fn marks_are_counted_beside_the_outcome() {
    let c = config(10, 100, Policies::default());
    let memory = memory_for(&c);
    let b = breaker(&memory, c);
    b.on_marked_failure(
        Marks {
            timed_out: true,
            fallback: true,
            ..Marks::default()
        },
        T0,
        MAIN,
    );
    b.on_fallback(OTHER);
    let t = b.totals();
    assert_eq!((t.failures, t.timeouts, t.fallbacks), (1, 1, 2));
}

#[test]
fn the_log_tells_each_transition_its_state_time_and_actor() {
    let c = config(1, 100, Policies::default());
    let memory = memory_for(&c);
    let b = breaker(&memory, c).with_actor(7, 4_000_007);
    let g0 = b.generation();
    b.on_failure(T0, MAIN);
    let ticket = probe(&b, T0 + 100);
    b.on_probe_result(ticket, true, T0 + 150, MAIN);
    let states: Vec<_> = (1..=3)
        .map(|i| b.log_entry(g0 + i).expect("logged"))
        .map(|e| (e.state, e.time_ms, e.actor, e.pid))
        .collect();
    assert_eq!(
        states,
        vec![
            (State::Open, T0, 7, 4_000_007),
            (State::HalfOpen, T0 + 100, 7, 4_000_007),
            (State::Closed, T0 + 150, 7, 4_000_007)
        ]
    );
    assert_eq!(b.state_since(), Some(T0 + 150));
    assert_eq!(b.log_entry(g0 + 4), None, "not yet");
}

#[test]
fn the_log_keeps_the_last_eight_transitions() {
    let c = config(1, 0, Policies::default());
    let memory = memory_for(&c);
    let b = breaker(&memory, c);
    for i in 0..20 {
        b.force_half_open_at(T0 + i);
    }
    let g = b.generation();
    assert_eq!(g, 20);
    for back in 0..8 {
        assert_eq!(
            b.log_entry(g - back).map(|e| e.time_ms),
            Some(T0 + 19 - u64::from(back))
        );
    }
    assert_eq!(b.log_entry(g - 8), None, "overwritten");
}

#[test]
fn a_log_entry_is_read_only_once_its_writer_has_finished() {
    let c = config(1, 0, Policies::default());
    let memory = memory_for(&c);
    let b = breaker(&memory, c);
    // Generation 9 was moved in the control word; its writer claims entry 1
    // (head marked writing), writes the info (tag 9, time) and the process
    // (generation 9, pid), then publishes.
    let head = TRANSITION_LOG + LOG_ENTRY_SLOTS;
    let published = (9u64 << 32) | State::Open as u64;
    b.cells().wide(head).store(published | 1 << 31, Relaxed);
    assert_eq!(b.log_entry(9), None, "claimed, info not written");
    b.cells().wide(head + 2).store(9 << 44 | T0, Relaxed);
    b.cells().wide(head + 4).store(1 << 32 | 4_321, Relaxed);
    assert_eq!(b.log_entry(9), None, "info written, head not published");
    b.cells().wide(head).store(published, Relaxed);
    assert_eq!(
        b.log_entry(9),
        None,
        "published, the process word of generation 1"
    );
    b.cells().wide(head + 4).store(9 << 32 | 4_321, Relaxed);
    assert_eq!(
        b.log_entry(9).map(|e| (e.time_ms, e.pid)),
        Some((T0, 4_321))
    );
}

#[test]
fn reading_the_log_tells_a_pending_entry_from_an_overwritten_one() {
    let c = config(1, 0, Policies::default());
    let memory = memory_for(&c);
    let b = breaker(&memory, c);
    for i in 0..20 {
        b.force_half_open_at(T0 + i);
    }
    for g in 13..=20 {
        let read = b.read_log(g);
        assert!(
            matches!(read, LogRead::Ready(e) if e.generation == g && e.time_ms == T0 + u64::from(g) - 1),
            "generation {g}: {read:?}"
        );
    }
    assert_eq!(
        b.read_log(12),
        LogRead::Gone,
        "generation 20 took its place"
    );
    assert_eq!(b.read_log(5), LogRead::Gone);
    assert_eq!(b.read_log(21), LogRead::Pending, "not made yet");

    // Generation 25's place (entry 1) holds generation 17: 25's writer has
    // not come yet. Then it claims the place (being written), writes the
    // info, and publishes the head.
    let head = TRANSITION_LOG + LOG_ENTRY_SLOTS;
    assert_eq!(
        b.read_log(25),
        LogRead::Pending,
        "an older generation there"
    );
    let published = (25u64 << 32) | State::Open as u64;
    b.cells().wide(head).store(published | 1 << 31, Relaxed);
    assert_eq!(b.read_log(25), LogRead::Pending, "claimed, being written");
    assert_eq!(b.read_log(17), LogRead::Gone, "its place taken by 25");
    b.cells().wide(head + 2).store(25 << 44 | T0, Relaxed);
    b.cells().wide(head + 4).store(25 << 32 | 4_321, Relaxed);
    b.cells().wide(head).store(published, Relaxed);
    assert!(matches!(b.read_log(25), LogRead::Ready(e) if e.state == State::Open));

    // Generations count modulo 2^32: 2^32 - 7 sits in entry 1 too, and is
    // older than 25 (a breaker file that went round).
    assert_eq!(b.read_log(0u32.wrapping_sub(7)), LogRead::Gone);
}

#[test]
fn options_out_of_range_are_refused_naming_the_setting() {
    let cases: [(Policies, Setting); 11] = [
        (
            Policies {
                half_open_max_calls: Some(0.0),
                ..Policies::default()
            },
            Setting::HalfOpenMaxCalls,
        ),
        (
            Policies {
                success_threshold: Some(1.5),
                ..Policies::default()
            },
            Setting::SuccessThreshold,
        ),
        (
            Policies {
                max_reset_timeout: Some(10.0),
                ..Policies::default()
            },
            Setting::MaxResetTimeout,
        ),
        (
            Policies {
                backoff_multiplier: Some(0.5),
                max_reset_timeout: Some(1000.0),
                ..Policies::default()
            },
            Setting::BackoffMultiplier,
        ),
        (rate(0.0, 1.0, 10.0), Setting::FailureRateThreshold),
        (rate(50.0, 1.0, 1e9), Setting::WindowSize),
        (
            Policies {
                window_size: Some(0.0),
                ..Policies::default()
            },
            Setting::WindowSize,
        ),
        (rate(50.0, 11.0, 10.0), Setting::MinimumCalls),
        (
            Policies {
                minimum_calls: Some(101.0),
                ..Policies::default()
            },
            Setting::MinimumCalls,
        ),
        (
            Policies {
                window_is_time: true,
                window_buckets: Some(5.0),
                ..Policies::default()
            },
            Setting::WindowSize,
        ),
        (
            Policies {
                backoff_multiplier: Some(0.5),
                ..Policies::default()
            },
            Setting::BackoffMultiplier,
        ),
    ];
    for (policies, setting) in cases {
        let error = Config::with_policies(5.0, 100.0, &policies).expect_err("refused");
        assert_eq!(error.setting, setting, "{error}");
    }
}

#[test]
fn a_refused_setting_is_reported_with_its_range_and_the_value_received() {
    let refused = |threshold, timeout, policies: Policies| {
        Config::with_policies(threshold, timeout, &policies).expect_err("refused")
    };
    assert_eq!(
        refused(0.5, 100.0, Policies::default()),
        ConfigError {
            setting: Setting::FailureThreshold,
            range: Range::Integer {
                low: 1,
                high: i32::MAX as u64
            },
            received: 0.5,
        }
    );
    assert_eq!(
        refused(
            5.0,
            99.5,
            Policies {
                max_reset_timeout: Some(50.0),
                ..Policies::default()
            }
        ),
        ConfigError {
            setting: Setting::MaxResetTimeout,
            range: Range::Milliseconds {
                low: 100,
                high: 1 << 43
            },
            received: 50.0,
        },
        "from the reset timeout, rounded up"
    );
    let missing = refused(
        5.0,
        100.0,
        Policies {
            window_is_time: true,
            failure_rate_threshold: Some(50.0),
            ..Policies::default()
        },
    );
    assert_eq!(
        (missing.setting, missing.range),
        (Setting::WindowSize, Range::Required)
    );
    assert!(missing.received.is_nan());
}

#[test]
fn options_that_matter_only_with_another_are_accepted_alone_and_change_nothing() {
    let plain = Config::with_policies(5.0, 100.0, &Policies::default()).expect("plain");
    let alone = [
        Policies {
            backoff_multiplier: Some(2.0),
            ..Policies::default()
        },
        Policies {
            minimum_calls: Some(10.0),
            ..Policies::default()
        },
        Policies {
            window_size: Some(100.0),
            ..Policies::default()
        },
        Policies {
            window_buckets: Some(10.0),
            ..Policies::default()
        },
        Policies {
            window_is_time: true,
            window_size: Some(60_000.0),
            window_buckets: Some(6.0),
            minimum_calls: Some(20.0),
            ..Policies::default()
        },
    ];
    for policies in alone {
        let config = Config::with_policies(5.0, 100.0, &policies).expect("accepted");
        assert_eq!(config, plain, "{policies:?}");
    }
    // Another multiplier without a longer maxResetTimeout: no backoff either.
    let other = Policies {
        backoff_multiplier: Some(3.0),
        ..Policies::default()
    };
    let config = Config::with_policies(5.0, 100.0, &other).expect("accepted");
    assert_eq!(config.features(), plain.features());
    for reopenings in 0..5 {
        assert_eq!(config.open_ms(reopenings), 100);
    }
}

#[test]
fn breakers_with_other_regions_cannot_join_an_array() {
    let windowed = config(5, 100, rate(50.0, 10.0, 10.0));
    let memory = memory_for(&windowed);
    let slots = Slots::new(memory.slots()).expect("valid");
    claim_layout(&slots).expect("fresh");
    claim_features(&slots, slots.len(), &windowed.features()).expect("first");
    let plain = config(5, 100, Policies::default());
    assert!(matches!(
        claim_features(&slots, slots.len(), &plain.features()),
        Err(FeaturesError::Mismatch { .. })
    ));
    let short = OwnedSlots::new();
    let slots = Slots::new(short.slots()).expect("valid");
    let required = windowed.features().slots_needed();
    assert_eq!(
        claim_features(&slots, slots.len(), &windowed.features()),
        Err(FeaturesError::TooShort {
            length: breaker_core::layout::SLOT_COUNT,
            required
        })
    );
}

#[test]
fn a_bulkhead_is_a_region_every_breaker_over_the_array_must_ask_for() {
    let guarded = Policies {
        max_concurrent: Some(3.0),
        max_queue: Some(2.0),
        ..Policies::default()
    };
    let guarded = Config::with_policies(5.0, 100.0, &guarded).expect("accepted");
    let size = guarded.bulkhead().expect("a bulkhead");
    assert_eq!((size.permits, size.places), (3, 2));
    let features = guarded.features();
    assert!(features.bulkhead);
    assert_eq!(features.bulkhead_base(), breaker_core::layout::SLOT_COUNT);
    assert_eq!(
        guarded.slots_needed(),
        features.bulkhead_base() + breaker_core::bulkhead::slots_needed(3, 2)
    );
    let plain = config(5, 100, Policies::default());
    assert_eq!(plain.bulkhead(), None);
    assert_eq!(plain.slots_needed(), breaker_core::layout::SLOT_COUNT);
    let memory = memory_for(&guarded);
    let slots = Slots::new(memory.slots()).expect("valid");
    claim_layout(&slots).expect("fresh");
    claim_features(&slots, slots.len(), &plain.features()).expect("first");
    assert!(matches!(
        claim_features(&slots, slots.len(), &features),
        Err(FeaturesError::Mismatch { .. })
    ));
    for (permits, places, setting) in [
        (Some(0.0), None, Setting::MaxConcurrent),
        (Some(1.5), None, Setting::MaxConcurrent),
        (Some(70_000.0), None, Setting::MaxConcurrent),
        (Some(1.0), Some(-1.0), Setting::MaxQueue),
        (None, Some(65_536.0), Setting::MaxQueue),
    ] {
        let policies = Policies {
            max_concurrent: permits,
            max_queue: places,
            ..Policies::default()
        };
        let refused = Config::with_policies(5.0, 100.0, &policies).expect_err("refused");
        assert_eq!(refused.setting, setting);
    }
}

#[test]
fn an_abandoned_probe_gives_its_place_back_and_counts_nothing() {
    let c = config(1, 1000, Policies::default());
    let memory = memory_for(&c);
    let b = breaker(&memory, c);
    open(&b, 1, T0);
    let ticket = probe(&b, T0 + 1000);
    assert_eq!(b.admit(T0 + 1001, MAIN).0, Admission::Reject);
    let before = b.totals();
    b.abandon_probe(ticket);
    assert_eq!(b.state(T0 + 1001), State::HalfOpen);
    assert_eq!(b.totals().failures, before.failures);
    assert_eq!(b.totals().successes, before.successes);
    // The place is free again: the next caller probes at once.
    let again = probe(&b, T0 + 1002);
    assert_eq!(b.admit(T0 + 1003, MAIN).0, Admission::Reject);
    // Abandoned after its episode ended: frees nothing, changes nothing.
    b.on_probe_result(again, true, T0 + 1004, MAIN);
    assert_eq!(b.state(T0 + 1004), State::Closed);
    b.abandon_probe(again);
    assert_eq!(b.state(T0 + 1005), State::Closed);
}
