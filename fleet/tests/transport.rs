//! Other ways to the store: `rediss://` TLS with the test's own CA, and a
//! 3-master Redis Cluster started by the test.

mod support;

use std::time::{Duration, Instant};

use breaker_fleet::{AgentOptions, BreakerSpec, FleetEvent, OpenReason};
use support::{available, is_closed, is_open, opened_by, quick, Cluster, Host, Server};

const SEC: Duration = Duration::from_secs(1);

fn spec(name: &str, host: &str) -> BreakerSpec {
    BreakerSpec {
        quorum: 2,
        open_ms: 200,
        max_open_ms: 200,
        lease_ms: 2_000,
        ..BreakerSpec::new(name, host)
    }
}

/// Two hosts open the fleet by quorum, one probes, its success closes both.
fn full_cycle(url: &str, options: AgentOptions, name: &str) {
    let h: Vec<Host> = (0..2)
        .map(|i| Host::new(url, options.clone(), spec(name, &format!("host-{i}"))))
        .collect();
    for x in &h {
        let first = x.events.wait(8 * SEC, |_| true).expect("an event");
        assert!(is_closed(&first), "{first:?}");
    }
    let sent = Instant::now();
    h[0].handle.trip_vote();
    h[1].handle.trip_vote();
    for x in &h {
        x.events
            .wait(6 * SEC, opened_by(OpenReason::Quorum))
            .expect("opens");
    }
    println!("{name}: votes to open on both hosts {:?}", sent.elapsed());
    let mut lease = None;
    support::within(6 * SEC, || {
        lease = h.iter().enumerate().find_map(|(i, x)| {
            x.events.all().into_iter().find_map(|e| match e {
                FleetEvent::ProbeGranted { lease } => Some((i, lease)),
                _ => None,
            })
        });
        lease.is_some()
    });
    let (i, lease) = lease.expect("a probe");
    h[i].handle.probe_result(&lease, true);
    for x in &h {
        let closed = x.events.wait_from(1, 6 * SEC, is_closed);
        assert!(closed.is_some(), "{:?}", x.events.all());
    }
    assert!(h.iter().all(|x| x
        .events
        .all()
        .iter()
        .all(|e| !matches!(e, FleetEvent::Degraded { .. }))));
}

#[test]
fn tls_with_rediss_and_the_servers_ca() {
    if !available("tls_with_rediss_and_the_servers_ca") {
        return;
    }
    let server = Server::tls();
    // A TLS handshake on a loaded test machine can outlast quick()'s
    // timeouts; this test is about TLS, not about timing.
    let options = AgentOptions {
        tls_ca_pem: server.ca_pem.clone(),
        connect_timeout_ms: 5_000,
        command_timeout_ms: 2_000,
        ..quick()
    };
    full_cycle(&server.url, options, "tls");
}

#[test]
fn tls_without_trusting_the_ca_degrades() {
    if !available("tls_without_trusting_the_ca_degrades") {
        return;
    }
    let server = Server::tls();
    let host = Host::new(&server.url, quick(), spec("tls2", "host-0"));
    let e = host.events.wait(8 * SEC, |_| true).expect("an event");
    println!("untrusted certificate: {e:?}");
    assert!(matches!(e, FleetEvent::Degraded { .. }));
    assert!(!host.events.all().iter().any(is_open));
}

#[test]
fn a_three_master_cluster() {
    if !available("a_three_master_cluster") {
        return;
    }
    let cluster = Cluster::start();
    let url = format!("redis://127.0.0.1:{}", cluster.nodes[0].port);
    let options = AgentOptions {
        cluster: true,
        ..quick()
    };
    // Names whose hash tags land on each of the three masters.
    for name in ["alpha", "bravo", "echo"] {
        full_cycle(&url, options.clone(), name);
    }
    let owners: std::collections::HashSet<u16> = ["alpha", "bravo", "echo"]
        .iter()
        .map(|name| {
            let key = format!("cb:{{{name}}}");
            let slot: u32 = cluster.nodes[0].cmd(&["CLUSTER", "KEYSLOT", &key]);
            let slot = slot.to_string();
            cluster
                .nodes
                .iter()
                .find(|n| n.cmd::<u32>(&["CLUSTER", "COUNTKEYSINSLOT", &slot]) == 1)
                .expect("the record is on one master")
                .port
        })
        .collect();
    println!("records spread over {} masters", owners.len());
    assert_eq!(owners.len(), 3);
}

#[test]
fn a_cluster_agent_outlives_the_node_named_in_its_url() {
    if !available("a_cluster_agent_outlives_the_node_named_in_its_url") {
        return;
    }
    let mut cluster = Cluster::start();
    let url = format!("redis://127.0.0.1:{}", cluster.nodes[0].port);
    let options = AgentOptions {
        cluster: true,
        ..quick()
    };
    // "bravo" lives on the second master: it is served without the first.
    let h: Vec<Host> = (0..2)
        .map(|i| Host::new(&url, options.clone(), spec("bravo", &format!("host-{i}"))))
        .collect();
    for x in &h {
        x.events.wait(8 * SEC, is_closed).expect("initial view");
    }
    let marks: Vec<usize> = h.iter().map(|x| x.events.len()).collect();
    cluster.nodes[0].kill();
    for (x, m) in h.iter().zip(&marks) {
        x.events
            .wait_from(*m, 8 * SEC, |e| matches!(e, FleetEvent::Degraded { .. }))
            .expect("the subscription on the lost node ends");
        let back = x
            .events
            .wait_from(*m, 5 * SEC, |e| matches!(e, FleetEvent::Recovered));
        assert!(
            back.is_some(),
            "reconnects through the other nodes: {:?}",
            x.events.all()
        );
    }
    let marks: Vec<usize> = h.iter().map(|x| x.events.len()).collect();
    h[0].handle.trip_vote();
    h[1].handle.trip_vote();
    for (x, m) in h.iter().zip(&marks) {
        assert!(
            x.events.wait_from(*m, 6 * SEC, is_open).is_some(),
            "{:?}",
            x.events.all()
        );
    }
}
