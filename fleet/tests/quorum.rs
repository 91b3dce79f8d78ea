//! Fleet semantics against a real redis-server: quorum, propagation, the one
//! probe, stale results, backoff, and the operator's isolate/reset/disable.
//! Each host is one agent; they share one server.

mod support;

use std::time::{Duration, Instant};

use breaker_fleet::{BreakerSpec, CloseReason, FleetEvent, OpenReason};
use support::{available, closed_by, is_closed, is_open, opened_by, quick, within, Host, Server};

const SEC: Duration = Duration::from_secs(1);

fn spec(name: &str, host: &str) -> BreakerSpec {
    BreakerSpec {
        quorum: 2,
        vote_window_ms: 2_000,
        open_ms: 300,
        max_open_ms: 1_200,
        lease_ms: 400,
        ..BreakerSpec::new(name, host)
    }
}

fn hosts(server: &Server, name: &str, n: usize, f: impl Fn(&mut BreakerSpec)) -> Vec<Host> {
    let hosts: Vec<Host> = (0..n)
        .map(|i| {
            let mut s = spec(name, &format!("host-{i}"));
            f(&mut s);
            Host::new(&server.url, quick(), s)
        })
        .collect();
    // Every host has read the (empty) record: the fleet starts closed.
    for h in &hosts {
        assert!(h.events.wait(6 * SEC, is_closed).is_some(), "initial view");
    }
    hosts
}

fn opened(e: &FleetEvent) -> bool {
    opened_by(OpenReason::Quorum)(e)
}

#[test]
fn one_vote_does_not_open_a_fleet_of_quorum_two() {
    if !available("one_vote_does_not_open_a_fleet_of_quorum_two") {
        return;
    }
    let server = Server::start();
    let h = hosts(&server, "q1", 2, |_| {});
    h[0].handle.trip_vote();
    // The vote is in the store, and nothing opened.
    assert!(within(6 * SEC, || server
        .cmd::<u32>(&["ZCARD", "cb:{q1}:votes"])
        == 1));
    assert!(h[1]
        .events
        .wait(Duration::from_millis(300), is_open)
        .is_none());
    assert!(!h[0].events.is_open());
}

#[test]
fn two_distinct_hosts_within_the_window_open_every_host() {
    if !available("two_distinct_hosts_within_the_window_open_every_host") {
        return;
    }
    let server = Server::start();
    let h = hosts(&server, "q2", 4, |_| {});
    h[0].handle.trip_vote();
    assert!(within(6 * SEC, || server
        .cmd::<u32>(&["ZCARD", "cb:{q2}:votes"])
        == 1));
    let sent = Instant::now();
    h[1].handle.trip_vote();
    let mut latencies = Vec::new();
    for host in &h {
        let (_, at, e) = host
            .events
            .wait_from(0, 6 * SEC, opened)
            .expect("every host hears the opening");
        assert!(matches!(e, FleetEvent::Open { retry_in_ms: Some(ms), .. } if ms <= 300));
        latencies.push(at.saturating_duration_since(sent));
    }
    println!("quorum vote to open event on each of 4 hosts: {latencies:?}");
}

#[test]
fn the_same_host_voting_twice_counts_once() {
    if !available("the_same_host_voting_twice_counts_once") {
        return;
    }
    let server = Server::start();
    let h = hosts(&server, "q3", 2, |_| {});
    h[0].handle.trip_vote();
    h[0].handle.trip_vote();
    h[0].handle.trip_vote();
    assert!(within(6 * SEC, || server
        .cmd::<u32>(&["ZCARD", "cb:{q3}:votes"])
        == 1));
    assert!(h[1]
        .events
        .wait(Duration::from_millis(300), is_open)
        .is_none());
}

#[test]
fn votes_older_than_the_window_do_not_count() {
    if !available("votes_older_than_the_window_do_not_count") {
        return;
    }
    let server = Server::start();
    let h = hosts(&server, "q4", 2, |s| s.vote_window_ms = 400);
    h[0].handle.trip_vote();
    assert!(within(6 * SEC, || server
        .cmd::<u32>(&["ZCARD", "cb:{q4}:votes"])
        == 1));
    std::thread::sleep(Duration::from_millis(500));
    h[1].handle.trip_vote();
    assert!(h[0]
        .events
        .wait(Duration::from_millis(300), is_open)
        .is_none());
    // Within the window they do.
    h[0].handle.trip_vote();
    h[1].handle.trip_vote();
    assert!(h[1].events.wait(6 * SEC, opened).is_some());
}

#[test]
fn a_quorum_of_one_opens_on_the_first_vote() {
    if !available("a_quorum_of_one_opens_on_the_first_vote") {
        return;
    }
    let server = Server::start();
    let h = hosts(&server, "q5", 2, |s| s.quorum = 1);
    h[1].handle.trip_vote();
    assert!(h[0].events.wait(6 * SEC, opened).is_some());
}

fn granted(h: &Host, from: usize) -> Option<breaker_fleet::Lease> {
    h.events
        .wait_from(from, Duration::ZERO, |e| {
            matches!(e, FleetEvent::ProbeGranted { .. })
        })
        .map(|(_, _, e)| match e {
            FleetEvent::ProbeGranted { lease } => lease,
            _ => unreachable!(),
        })
}

/// The host holding a lease granted after event index `from`, waiting up to `limit`.
fn prober(h: &[Host], from: &[usize], limit: Duration) -> Option<(usize, breaker_fleet::Lease)> {
    let mut found = None;
    within(limit, || {
        found = h
            .iter()
            .enumerate()
            .find_map(|(i, x)| granted(x, from[i]).map(|l| (i, l)));
        found.is_some()
    });
    found
}

#[test]
fn exactly_one_probe_among_four_hosts_with_two_breakers_each() {
    if !available("exactly_one_probe_among_four_hosts_with_two_breakers_each") {
        return;
    }
    let server = Server::start();
    // Leases longer than the test: no second grant can come from expiry.
    let h = hosts(&server, "p1", 4, |s| s.lease_ms = 10_000);
    // A second breaker of the same name in each host (another worker thread).
    let workers: Vec<(breaker_fleet::BreakerHandle, support::Events)> = (0..4)
        .map(|i| {
            let events = support::Events::default();
            let mut s = spec("p1", &format!("host-{i}"));
            s.lease_ms = 10_000;
            (h[i].agent.register(s, events.sink()).unwrap(), events)
        })
        .collect();
    h[0].handle.trip_vote();
    workers[1].0.trip_vote();
    for x in &h {
        x.events.wait(6 * SEC, opened).unwrap();
    }
    // All eight ask as the open period ends (300 ms), and ask again on demand.
    let all: Vec<&support::Events> = h
        .iter()
        .map(|x| &x.events)
        .chain(workers.iter().map(|w| &w.1))
        .collect();
    let grants = || {
        all.iter()
            .flat_map(|e| e.all())
            .filter(|e| matches!(e, FleetEvent::ProbeGranted { .. }))
            .collect::<Vec<_>>()
    };
    assert!(
        within(6 * SEC, || !grants().is_empty()),
        "a probe is granted"
    );
    for x in &h {
        x.handle.request_probe();
    }
    for w in &workers {
        w.0.request_probe();
    }
    std::thread::sleep(Duration::from_millis(300));
    let granted = grants();
    assert_eq!(
        granted.len(),
        1,
        "one probe for the whole fleet: {granted:?}"
    );
    let FleetEvent::ProbeGranted { lease } = &granted[0] else {
        unreachable!()
    };
    // Its success (reported through any breaker) closes every breaker.
    h[0].handle.probe_result(lease, true);
    for e in &all {
        assert!(e.wait(6 * SEC, closed_by(CloseReason::Probe)).is_some());
    }
}

#[test]
fn a_lease_whose_host_died_expires_and_another_host_probes() {
    if !available("a_lease_whose_host_died_expires_and_another_host_probes") {
        return;
    }
    let server = Server::start();
    let mut h = hosts(&server, "p2", 3, |_| {});
    h[0].handle.trip_vote();
    h[1].handle.trip_vote();
    for x in &h {
        x.events.wait(6 * SEC, opened).unwrap();
    }
    let (dead, _) = prober(&h, &[0; 3], 6 * SEC).expect("a probe is granted");
    let marks: Vec<usize> = h.iter().map(|x| x.events.len()).collect();
    let died = Instant::now();
    let gone = h.remove(dead);
    drop(gone);
    let rest: Vec<usize> = (0..3).filter(|i| *i != dead).map(|i| marks[i]).collect();
    let (next, lease) =
        prober(&h, &rest, 6 * SEC).expect("another host probes once the lease expired");
    let waited = died.elapsed();
    println!("lease (400 ms) of a dead host taken over after {waited:?}");
    assert!(
        waited >= Duration::from_millis(150),
        "not before the lease expired: {waited:?}"
    );
    h[next].handle.probe_result(&lease, true);
    for x in &h {
        assert!(x
            .events
            .wait(6 * SEC, closed_by(CloseReason::Probe))
            .is_some());
    }
}

#[test]
fn a_stale_probe_result_changes_nothing() {
    if !available("a_stale_probe_result_changes_nothing") {
        return;
    }
    let server = Server::start();
    // Leases long enough that a slow test thread still holds the second one.
    let h = hosts(&server, "p3", 2, |s| s.lease_ms = 1000);
    h[0].handle.trip_vote();
    h[1].handle.trip_vote();
    let (first, old) = prober(&h, &[0; 2], 6 * SEC).expect("a first lease");
    // The first lease expires; a later grant (to either host) replaces it.
    let marks: Vec<usize> = h.iter().map(|x| x.events.len()).collect();
    let (second, new) = prober(&h, &marks, 6 * SEC).expect("a second lease after expiry");
    assert_ne!(old.token, new.token);
    let version: u64 = server
        .cmd::<String>(&["HGET", "cb:{p3}", "version"])
        .parse()
        .unwrap();
    // The expired lease's success is ignored: still open, same version.
    h[first].handle.probe_result(&old, true);
    std::thread::sleep(Duration::from_millis(100));
    let state: String = server.cmd(&["HGET", "cb:{p3}", "state"]);
    assert_eq!(state, "open");
    let after: u64 = server
        .cmd::<String>(&["HGET", "cb:{p3}", "version"])
        .parse()
        .unwrap();
    assert_eq!(after, version);
    // The current lease's failure reopens (a newer version); its old token
    // then is stale too.
    h[second].handle.probe_result(&new, false);
    assert!(h[first]
        .events
        .wait(6 * SEC, opened_by(OpenReason::Reopened))
        .is_some());
    let reopened: u64 = server
        .cmd::<String>(&["HGET", "cb:{p3}", "version"])
        .parse()
        .unwrap();
    h[second].handle.probe_result(&new, true);
    std::thread::sleep(Duration::from_millis(100));
    let last: u64 = server
        .cmd::<String>(&["HGET", "cb:{p3}", "version"])
        .parse()
        .unwrap();
    assert_eq!(last, reopened);
    assert_eq!(server.cmd::<String>(&["HGET", "cb:{p3}", "state"]), "open");
}

#[test]
fn each_failed_probe_doubles_the_open_period_up_to_the_maximum() {
    if !available("each_failed_probe_doubles_the_open_period_up_to_the_maximum") {
        return;
    }
    let server = Server::start();
    let h = hosts(&server, "p4", 2, |s| {
        s.open_ms = 100;
        s.max_open_ms = 350;
        s.lease_ms = 5_000;
    });
    h[0].handle.trip_vote();
    h[1].handle.trip_vote();
    let mut periods = Vec::new();
    let mut marks = vec![0usize; 2];
    for _ in 0..3 {
        let (i, lease) = prober(&h, &marks, 6 * SEC).expect("a lease");
        marks = h.iter().map(|x| x.events.len()).collect();
        h[i].handle.probe_result(&lease, false);
        let (_, _, e) = h[1 - i]
            .events
            .wait_from(marks[1 - i], 6 * SEC, opened_by(OpenReason::Reopened))
            .expect("reopened everywhere");
        let opened_at: u64 = server
            .cmd::<String>(&["HGET", "cb:{p4}", "opened_at"])
            .parse()
            .unwrap();
        let retry_at: u64 = server
            .cmd::<String>(&["HGET", "cb:{p4}", "retry_at"])
            .parse()
            .unwrap();
        periods.push(retry_at - opened_at);
        assert!(
            matches!(e, FleetEvent::Open { reopenings, .. } if reopenings as usize == periods.len())
        );
    }
    assert_eq!(periods, vec![200, 350, 350]);
}

#[test]
fn isolate_holds_every_host_open_until_released() {
    if !available("isolate_holds_every_host_open_until_released") {
        return;
    }
    let server = Server::start();
    let h = hosts(&server, "o1", 3, |_| {});
    h[2].handle.isolate();
    h[2].handle.isolate();
    for x in &h {
        assert!(x
            .events
            .wait(6 * SEC, |e| matches!(
                e,
                FleetEvent::Open {
                    reason: OpenReason::Isolated,
                    retry_in_ms: None,
                    ..
                }
            ))
            .is_some());
    }
    // No probe while isolated, even after the open period.
    h[0].handle.request_probe();
    std::thread::sleep(Duration::from_millis(400));
    assert!(h.iter().all(|x| !x
        .events
        .all()
        .iter()
        .any(|e| matches!(e, FleetEvent::ProbeGranted { .. }))));
    let mark = h[0].events.len();
    h[1].handle.release_isolation();
    std::thread::sleep(Duration::from_millis(150));
    assert!(h[0].events.is_open(), "one isolation still holds it");
    h[0].handle.release_isolation();
    assert!(h[0]
        .events
        .wait_from(mark, 6 * SEC, closed_by(CloseReason::Released))
        .is_some());
}

#[test]
fn reset_closes_every_host_and_clears_isolations() {
    if !available("reset_closes_every_host_and_clears_isolations") {
        return;
    }
    let server = Server::start();
    let h = hosts(&server, "o2", 3, |_| {});
    h[0].handle.trip_vote();
    h[1].handle.trip_vote();
    h[1].handle.isolate();
    for x in &h {
        x.events
            .wait(6 * SEC, opened_by(OpenReason::Isolated))
            .unwrap();
    }
    h[2].handle.reset();
    for x in &h {
        assert!(x
            .events
            .wait(6 * SEC, closed_by(CloseReason::Reset))
            .is_some());
    }
    assert_eq!(
        server.cmd::<String>(&["HGET", "cb:{o2}", "isolations"]),
        "0"
    );
    assert_eq!(server.cmd::<u32>(&["EXISTS", "cb:{o2}:votes"]), 0);
}

#[test]
fn disable_closes_every_host_and_no_quorum_opens_it_until_enabled() {
    if !available("disable_closes_every_host_and_no_quorum_opens_it_until_enabled") {
        return;
    }
    let server = Server::start();
    let h = hosts(&server, "o3", 2, |_| {});
    h[0].handle.trip_vote();
    h[1].handle.trip_vote();
    h[0].events.wait(6 * SEC, opened).unwrap();
    h[0].handle.disable(true);
    for x in &h {
        assert!(x
            .events
            .wait(6 * SEC, |e| matches!(
                e,
                FleetEvent::Closed {
                    reason: CloseReason::Disabled,
                    disabled: true,
                    ..
                }
            ))
            .is_some());
    }
    let mark = h[1].events.len();
    h[0].handle.trip_vote();
    h[1].handle.trip_vote();
    assert!(h[1]
        .events
        .wait_from(mark, Duration::from_millis(300), is_open)
        .is_none());
    let mark0 = h[0].events.len();
    h[1].handle.disable(false);
    assert!(h[0]
        .events
        .wait_from(mark0, 6 * SEC, |e| matches!(
            e,
            FleetEvent::Closed {
                disabled: false,
                ..
            }
        ))
        .is_some());
    h[0].handle.trip_vote();
    h[1].handle.trip_vote();
    assert!(h[0].events.wait_from(mark, 6 * SEC, opened).is_some());
}

#[test]
fn two_hundred_openings_reach_three_other_hosts_through_pub_sub() {
    if !available("two_hundred_openings_reach_three_other_hosts_through_pub_sub") {
        return;
    }
    let server = Server::start();
    // Re-reads a minute apart: only pub/sub can deliver within the test.
    let options = breaker_fleet::AgentOptions {
        reread_ms: 60_000,
        ..quick()
    };
    let h: Vec<Host> = (0..4)
        .map(|i| {
            let s = BreakerSpec {
                quorum: 1,
                ..spec("lat", &format!("host-{i}"))
            };
            Host::new(&server.url, options.clone(), s)
        })
        .collect();
    for x in &h {
        x.events.wait(6 * SEC, is_closed).unwrap();
    }
    let mut latencies = Vec::new();
    for round in 0..200 {
        let marks: Vec<usize> = h.iter().map(|x| x.events.len()).collect();
        let sent = Instant::now();
        h[round % 4].handle.trip_vote();
        for (i, x) in h.iter().enumerate() {
            let (_, at, _) = x
                .events
                .wait_from(marks[i], SEC, opened)
                .expect("the opening arrives");
            if i != round % 4 {
                latencies.push(at.saturating_duration_since(sent));
            }
        }
        let marks: Vec<usize> = h.iter().map(|x| x.events.len()).collect();
        h[(round + 1) % 4].handle.reset();
        for (i, x) in h.iter().enumerate() {
            x.events
                .wait_from(marks[i], SEC, is_closed)
                .expect("the reset arrives");
        }
    }
    latencies.sort();
    let pct = |p: usize| latencies[(latencies.len() * p / 100).min(latencies.len() - 1)];
    println!(
        "vote on one host to Open on the 3 others, {} samples: p50 {:?}, p99 {:?}, max {:?}",
        latencies.len(),
        pct(50),
        pct(99),
        latencies[latencies.len() - 1]
    );
}
