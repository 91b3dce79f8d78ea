//! Two injected clocks: the host's monotonic clock decides, the wall clock is
//! only stored. Each test steps the wall clock by an hour, forward or back,
//! while the monotonic clock runs on, and checks that no decision moves and
//! that the stored wall-clock times follow the clock users see.

use breaker_core::clock::as_seen;
use breaker_core::features::claim_features;
use breaker_core::Policies;
use breaker_core::{
    claim_layout, Admission, Breaker, Clock, Config, Now, OwnedSlots, ReadOnce, Slots, State,
    Stripe, Transition,
};
use std::cell::Cell;

const WALL: u64 = 1_764_000_000_000; // a Date.now()-scale time
const MONO: u64 = 86_400_000; // a day after boot
const HOUR: u64 = 3_600_000;
const MAIN: Stripe = Stripe::new(0);
const OTHER: Stripe = Stripe::new(1);

/// `ms` after the start on the monotonic clock, with the wall clock stepped
/// by `step` ms on top of the same `ms`.
fn at(ms: u64, step: i64) -> Now {
    Now {
        wall_ms: (WALL + ms).saturating_add_signed(step),
        mono_ms: MONO + ms,
    }
}

fn breaker(memory: &OwnedSlots, config: Config) -> Breaker<Slots<'_>> {
    let slots = Slots::new(memory.slots()).expect("owned slots are valid");
    claim_layout(&slots).expect("fresh memory");
    claim_features(&slots, slots.len(), &config.features()).expect("room for the features");
    Breaker::new(slots, config)
}

fn plain(memory: &OwnedSlots, timeout: u64) -> Breaker<Slots<'_>> {
    breaker(
        memory,
        Config::new(1.0, timeout as f64).expect("valid config"),
    )
}

/// A failure-rate breaker over a time window of `window_ms` in 10 buckets:
/// opens at 50 % of at least 4 calls.
fn rated(window_ms: u64) -> Config {
    let policies = Policies {
        failure_rate_threshold: Some(50.0),
        minimum_calls: Some(4.0),
        window_size: Some(window_ms as f64),
        window_is_time: true,
        window_buckets: Some(10.0),
        ..Policies::default()
    };
    Config::with_policies(1.0, 1000.0, &policies).expect("valid config")
}

#[test]
fn a_wall_clock_stepped_forward_an_hour_does_not_half_open_an_open_breaker() {
    let memory = OwnedSlots::new();
    let b = plain(&memory, 1000);
    assert_eq!(b.on_failure(at(0, 0), MAIN), Some(Transition::Opened));
    assert_eq!(b.admit(at(1, HOUR as i64), MAIN).0, Admission::Reject);
    assert_eq!(b.state(at(999, HOUR as i64)), State::Open);
    assert_eq!(b.admit(at(999, HOUR as i64), MAIN).0, Admission::Reject);
    assert!(matches!(
        b.admit(at(1000, HOUR as i64), MAIN).0,
        Admission::Probe(_)
    ));
}

#[test]
fn a_wall_clock_stepped_back_an_hour_does_not_restart_the_open_period() {
    let memory = OwnedSlots::new();
    let b = plain(&memory, 1000);
    b.on_failure(at(0, 0), MAIN);
    assert_eq!(b.admit(at(500, -(HOUR as i64)), MAIN).0, Admission::Reject);
    assert_eq!(b.state(at(1000, -(HOUR as i64))), State::HalfOpen);
    assert!(matches!(
        b.admit(at(1000, -(HOUR as i64)), MAIN).0,
        Admission::Probe(_)
    ));
}

#[test]
fn a_probe_lease_runs_on_the_monotonic_clock() {
    let memory = OwnedSlots::new();
    let b = plain(&memory, 1000);
    b.on_failure(at(0, 0), MAIN);
    assert!(matches!(b.admit(at(1000, 0), MAIN).0, Admission::Probe(_)));
    // Forward an hour: the lease (1000 ms) has not run out.
    assert_eq!(b.admit(at(1500, HOUR as i64), OTHER).0, Admission::Reject);
    // Back an hour: it has, at 1000 ms after the probe.
    assert_eq!(
        b.admit(at(1999, -(HOUR as i64)), OTHER).0,
        Admission::Reject
    );
    assert!(matches!(
        b.admit(at(2000, -(HOUR as i64)), OTHER).0,
        Admission::Probe(_)
    ));
}

#[test]
fn a_time_window_keeps_its_failures_when_the_wall_clock_steps() {
    for step in [HOUR as i64, -(HOUR as i64)] {
        let config = rated(10_000);
        let memory = OwnedSlots::with_len(config.features().slots_needed());
        let b = breaker(&memory, config);
        b.on_success(at(0, 0), MAIN);
        b.on_success(at(100, 0), MAIN);
        b.on_failure(at(200, 0), MAIN);
        let counts = b.window_counts(at(300, step)).expect("a window");
        assert_eq!((counts.calls, counts.bad), (3, 1), "step {step}");
        // The fourth call, after the step, makes 2 bad of 4: 50 % opens.
        assert_eq!(
            b.on_failure(at(300, step), MAIN),
            Some(Transition::Opened),
            "step {step}"
        );
    }
}

#[test]
fn a_time_window_ages_on_the_monotonic_clock_not_the_wall_clock() {
    let config = rated(10_000);
    let memory = OwnedSlots::with_len(config.features().slots_needed());
    let b = breaker(&memory, config);
    b.on_failure(at(0, 0), MAIN);
    // An hour of wall clock, a second of host time: still in the window.
    let counts = b.window_counts(at(1000, HOUR as i64)).expect("a window");
    assert_eq!((counts.calls, counts.bad), (1, 1));
    // Ten seconds of host time, the wall clock an hour back: aged out.
    let counts = b
        .window_counts(at(10_000, -(HOUR as i64)))
        .expect("a window");
    assert_eq!((counts.calls, counts.bad), (0, 0));
}

#[test]
fn the_times_users_see_are_wall_clock_times() {
    let memory = OwnedSlots::new();
    let b = plain(&memory, 1000);
    b.on_success(at(0, 0), MAIN);
    b.on_failure(at(10, 0), MAIN);
    let totals = b.totals();
    assert_eq!(totals.last_success_ms, WALL);
    assert_eq!(totals.last_failure_ms, WALL + 10);
    assert_eq!(b.state_since(), Some(WALL + 10));
}

#[test]
fn the_last_failure_time_follows_the_wall_clock_back() {
    let memory = OwnedSlots::new();
    let b = plain(&memory, 0);
    b.on_failure(at(0, 0), MAIN);
    b.on_failure(at(10, -(HOUR as i64)), MAIN);
    assert_eq!(b.totals().last_failure_ms, WALL + 10 - HOUR);
    b.on_success(at(20, 0), MAIN);
    b.on_success(at(30, -(HOUR as i64)), MAIN);
    assert_eq!(b.totals().last_success_ms, WALL + 30 - HOUR);
}

#[test]
fn a_slightly_earlier_reading_leaves_the_last_failure_time_alone() {
    // Two threads read the wall clock a moment apart and store in the other
    // order: the later reading stays.
    let memory = OwnedSlots::new();
    let b = plain(&memory, 0);
    b.on_failure(at(500, 0), MAIN);
    b.on_failure(at(0, 0), OTHER);
    assert_eq!(b.totals().last_failure_ms, WALL + 500);
}

#[test]
fn an_opening_stamped_by_an_earlier_boot_in_the_future_restarts_its_wait_from_now() {
    // A breaker file kept across a reboot: the opening was stamped at
    // MONO + HOUR of the old boot, and the new boot's clock reads MONO.
    let memory = OwnedSlots::new();
    let b = plain(&memory, 1000);
    b.on_failure(at(HOUR, 0), MAIN);
    assert_eq!(b.admit(at(0, 0), MAIN).0, Admission::Reject);
    assert_eq!(b.admit(at(999, 0), MAIN).0, Admission::Reject);
    assert!(matches!(b.admit(at(1000, 0), MAIN).0, Admission::Probe(_)));
}

/// Counts how often a call asks for each reading.
#[derive(Default)]
struct Counting {
    mono: Cell<u32>,
    wall: Cell<u32>,
}

impl Clock for Counting {
    fn mono_ms(&self) -> u64 {
        self.mono.set(self.mono.get() + 1);
        MONO
    }

    fn wall_ms(&self) -> u64 {
        self.wall.set(self.wall.get() + 1);
        WALL
    }
}

fn reads(call: impl FnOnce(&Counting)) -> (u32, u32) {
    let clock = Counting::default();
    call(&clock);
    (clock.mono.get(), clock.wall.get())
}

#[test]
fn each_call_asks_only_for_the_readings_it_uses() {
    let memory = OwnedSlots::new();
    let b = plain(&memory, 60_000);
    // CLOSED: admitting needs no time; a failure below the threshold stores
    // the wall clock only (no time window here).
    assert_eq!(
        reads(|c| assert_eq!(b.admit(c, MAIN).0, Admission::Run)),
        (0, 0)
    );
    assert_eq!(reads(|c| b.on_success(c, MAIN)), (0, 1));
    // Opening: the stamp (monotonic), the log and the last failure (wall).
    let (mono, wall) = reads(|c| assert!(b.on_failure(c, MAIN).is_some()));
    assert!(mono >= 1 && wall >= 1, "{mono} {wall}");
    // A rejection while OPEN reads the monotonic clock only.
    let (mono, wall) = reads(|c| assert_eq!(b.admit(c, MAIN).0, Admission::Reject));
    assert!(mono >= 1 && wall == 0, "{mono} {wall}");
}

#[test]
fn a_read_once_clock_reads_each_clock_at_most_once_and_only_when_asked() {
    let memory = OwnedSlots::new();
    let b = plain(&memory, 60_000);
    b.on_failure(at(0, 0), MAIN);
    let (mono_reads, wall_reads) = (Cell::new(0u32), Cell::new(0u32));
    let clock = ReadOnce::new(
        || {
            mono_reads.set(mono_reads.get() + 1);
            MONO + 10 + u64::from(mono_reads.get())
        },
        || {
            wall_reads.set(wall_reads.get() + 1);
            WALL
        },
    );
    assert_eq!(b.admit(&clock, MAIN).0, Admission::Reject);
    assert_eq!(b.admit(&clock, MAIN).0, Admission::Reject);
    assert_eq!((mono_reads.get(), wall_reads.get()), (1, 0));
    assert_eq!(clock.mono_ms(), MONO + 11, "the first reading is kept");
}

#[test]
fn times_stored_before_the_wall_clock_stepped_back_are_never_seen_in_the_future() {
    let memory = OwnedSlots::new();
    let b = plain(&memory, 60_000);
    b.on_failure(at(10, 0), MAIN);
    let since = b.state_since().expect("the opening is logged");
    let back = at(20, -(HOUR as i64));
    assert_eq!(as_seen(since, back), WALL + 20 - HOUR);
    assert_eq!(as_seen(b.totals().last_failure_ms, back), WALL + 20 - HOUR);
    // Once the clock has passed it again, the stored time shows.
    assert_eq!(as_seen(since, at(20 + HOUR, -(HOUR as i64))), WALL + 10);
}
