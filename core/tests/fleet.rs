//! Fleet mode's local side, with an injected clock: the fleet hold keeps a
//! host OPEN past its open period (no local probe), closes only a host it
//! held, and the lease slot lets one process of a host act on a lease.

use breaker_core::features::claim_features;
use breaker_core::{
    claim_layout, Admission, Breaker, Cells, Config, OwnedSlots, Policies, Slots, State, Stripe,
    Transition,
};

const T0: u64 = 1_764_000_000_000;
const MAIN: Stripe = Stripe::new(0);

fn config() -> Config {
    Config::with_policies(2.0, 100.0, &Policies::default()).expect("valid config")
}

/// The decision alone (admit also says which transition it made).
fn admit<C: Cells>(b: &Breaker<C>, now: u64) -> Admission {
    b.admit(now, MAIN).0
}

fn breaker(memory: &OwnedSlots, actor: u32) -> Breaker<Slots<'_>> {
    let slots = Slots::new(memory.slots()).expect("owned slots are valid");
    claim_layout(&slots).expect("fresh memory");
    claim_features(&slots, slots.len(), &config().features()).expect("room");
    Breaker::new(slots, config()).with_actor(actor, 100 + actor)
}

#[test]
fn the_hold_keeps_a_host_open_past_its_open_period_and_logs_the_fleet_actor() {
    let memory = OwnedSlots::with_len(config().features().slots_needed());
    let local = breaker(&memory, 7);
    let fleet = breaker(&memory, 0xFFFFF);
    assert_eq!(fleet.fleet_hold(T0), Some(Transition::Opened));
    assert_eq!(fleet.fleet_hold(T0), None, "idempotent");
    let entry = local.log_entry(local.generation()).expect("logged");
    assert_eq!(entry.state, State::Open);
    assert_eq!(entry.actor, 0xFFFFF, "the fleet made it");
    assert_eq!(entry.pid, 100 + 0xFFFFF, "in the fleet agent's process");
    // Long past the open period: still no local probe.
    assert_eq!(admit(&local, T0 + 10_000), Admission::Reject);
    assert_eq!(local.state(T0 + 10_000), State::Open);
    // The store went away: the host runs on its own and probes.
    assert!(fleet.fleet_release());
    assert!(matches!(admit(&local, T0 + 10_000), Admission::Probe(_)));
}

#[test]
fn the_fleet_closing_closes_a_host_it_held_and_no_other() {
    let memory = OwnedSlots::with_len(config().features().slots_needed());
    let local = breaker(&memory, 7);
    let fleet = breaker(&memory, 0xFFFFF);
    // Tripped on its own; the fleet never opened: a fleet "closed" view
    // must not drop this host's protection.
    local.on_failure(T0, MAIN);
    assert_eq!(local.on_failure(T0, MAIN), Some(Transition::Opened));
    assert_eq!(fleet.fleet_close(T0), None);
    assert_eq!(local.state(T0), State::Open);
    // Held by the fleet, then the fleet closes: the host closes.
    fleet.fleet_hold(T0);
    assert_eq!(fleet.fleet_close(T0 + 1), Some(Transition::Closed));
    assert_eq!(admit(&local, T0 + 1), Admission::Run);
}

#[test]
fn one_process_of_a_host_acts_on_a_lease_and_its_probe_is_the_only_one() {
    let memory = OwnedSlots::with_len(config().features().slots_needed());
    let a = breaker(&memory, 0xFFFFF);
    let b = breaker(&memory, 0xFFFFF);
    a.fleet_hold(T0);
    let episode = a.fleet_probe(11, T0 + 5).expect("took the lease");
    assert_eq!(
        b.fleet_probe(12, T0 + 5),
        None,
        "another process of the host is probing"
    );
    assert_eq!(a.fleet_lease(), 11);
    assert!(!a.fleet_held());
    assert!(matches!(admit(&a, T0 + 5), Admission::Probe(t) if t.0 == episode));
    assert_eq!(admit(&b, T0 + 5), Admission::Reject, "one probe");
    assert!(!b.fleet_end_lease(12));
    assert!(a.fleet_end_lease(11));
    assert_eq!(a.fleet_lease(), 0);
}

#[test]
fn an_isolated_host_takes_no_lease() {
    let memory = OwnedSlots::with_len(config().features().slots_needed());
    let a = breaker(&memory, 1);
    a.isolate(T0);
    a.fleet_hold(T0);
    assert_eq!(a.fleet_probe(3, T0), None);
    assert_eq!(a.fleet_lease(), 0);
    assert_eq!(a.fleet_close(T0), None, "the isolation still holds");
    assert_eq!(a.state(T0), State::Open);
}
