//! The store going away and coming back: killed and restarted, flushed,
//! paused, slow, dropped or blackholed by a proxy, refusing the password,
//! forgetting its scripts. No host closes by itself, every outage is
//! reported once and its end too, and nothing hangs.

mod support;

use std::time::{Duration, Instant};

use breaker_fleet::{
    Agent, AgentOptions, BreakerSpec, CloseReason, FleetError, FleetEvent, OpenReason,
};
use support::proxy::{Mode, Proxy};
use support::{
    available, closed_by, is_closed, is_open, opened_by, quick, within, Events, Host, Server,
};

const SEC: Duration = Duration::from_secs(1);

fn spec(name: &str, host: &str) -> BreakerSpec {
    BreakerSpec {
        quorum: 2,
        vote_window_ms: 5_000,
        open_ms: 60_000,
        max_open_ms: 60_000,
        lease_ms: 1_000,
        ..BreakerSpec::new(name, host)
    }
}

fn degraded(e: &FleetEvent) -> bool {
    matches!(e, FleetEvent::Degraded { .. })
}

fn recovered(e: &FleetEvent) -> bool {
    matches!(e, FleetEvent::Recovered)
}

/// Two hosts on `url`, the fleet opened by both their votes.
fn open_fleet(url: &str, name: &str) -> Vec<Host> {
    let h: Vec<Host> = (0..2)
        .map(|i| Host::new(url, quick(), spec(name, &format!("host-{i}"))))
        .collect();
    for x in &h {
        x.events.wait(6 * SEC, is_closed).expect("initial view");
    }
    h[0].handle.trip_vote();
    h[1].handle.trip_vote();
    for x in &h {
        x.events.wait(6 * SEC, is_open).expect("the fleet opens");
    }
    h
}

/// No Closed event after index `from` (a vanished record closed nobody).
fn stayed_open(h: &Host, from: usize) -> bool {
    h.events.all()[from..].iter().all(|e| !is_closed(e)) && h.events.is_open()
}

#[test]
fn redis_killed_and_restarted_degrades_then_recovers_and_no_host_closes() {
    if !available("redis_killed_and_restarted_degrades_then_recovers_and_no_host_closes") {
        return;
    }
    let mut server = Server::start();
    let h = open_fleet(&server.url, "k1");
    let marks: Vec<usize> = h.iter().map(|x| x.events.len()).collect();
    server.kill();
    let killed = Instant::now();
    for (x, m) in h.iter().zip(&marks) {
        x.events.wait_from(*m, 6 * SEC, degraded).expect("Degraded");
    }
    println!("kill to Degraded on both hosts: {:?}", killed.elapsed());
    server.restart();
    let back = Instant::now();
    for (x, m) in h.iter().zip(&marks) {
        x.events
            .wait_from(*m, 8 * SEC, recovered)
            .expect("Recovered");
    }
    println!("restart to Recovered on both hosts: {:?}", back.elapsed());
    // The restarted server is empty; the hosts wrote their open view back.
    assert!(within(6 * SEC, || server
        .cmd::<Option<String>>(&["HGET", "cb:{k1}", "state"])
        .as_deref()
        == Some("open")));
    for (x, m) in h.iter().zip(&marks) {
        assert!(stayed_open(x, *m), "{:?}", x.events.all());
    }
    // Exactly one Degraded per host for the outage.
    for (x, m) in h.iter().zip(&marks) {
        assert_eq!(
            x.events.all()[*m..].iter().filter(|e| degraded(e)).count(),
            1
        );
    }
}

#[test]
fn flushall_during_open_closes_no_host_and_the_open_view_is_written_back() {
    if !available("flushall_during_open_closes_no_host_and_the_open_view_is_written_back") {
        return;
    }
    let server = Server::start();
    let h = open_fleet(&server.url, "f1");
    let marks: Vec<usize> = h.iter().map(|x| x.events.len()).collect();
    let _: () = server.cmd(&["FLUSHALL"]);
    // The periodic re-read finds no record and writes the open view back.
    for (x, m) in h.iter().zip(&marks) {
        x.events
            .wait_from(*m, 6 * SEC, opened_by(OpenReason::Restored))
            .expect("the restored record reaches every host");
    }
    assert_eq!(server.cmd::<String>(&["HGET", "cb:{f1}", "state"]), "open");
    std::thread::sleep(Duration::from_millis(300));
    for (x, m) in h.iter().zip(&marks) {
        assert!(stayed_open(x, *m), "{:?}", x.events.all());
    }
}

#[test]
fn client_pause_degrades_then_recovers() {
    if !available("client_pause_degrades_then_recovers") {
        return;
    }
    let server = Server::start();
    let h = open_fleet(&server.url, "c1");
    let mark = h[0].events.len();
    let _: () = server.cmd(&["CLIENT", "PAUSE", "800", "ALL"]);
    h[0].handle.isolate();
    h[0].events
        .wait_from(mark, 6 * SEC, degraded)
        .expect("a paused store degrades");
    h[0].events
        .wait_from(mark, 8 * SEC, recovered)
        .expect("and recovers");
    // The isolation asked for during the pause reached the store afterwards.
    assert!(h[1]
        .events
        .wait(6 * SEC, opened_by(OpenReason::Isolated))
        .is_some());
}

#[test]
fn a_wrong_password_degrades_with_a_clear_reason_and_the_right_one_works() {
    if !available("a_wrong_password_degrades_with_a_clear_reason_and_the_right_one_works") {
        return;
    }
    let server = Server::with_password("right-one");
    let bad = format!("redis://:wrong-one@127.0.0.1:{}", server.port);
    let host = Host::new(&bad, quick(), spec("w1", "host-0"));
    let Some(FleetEvent::Degraded { reason }) = host.events.wait(6 * SEC, degraded) else {
        panic!("no Degraded: {:?}", host.events.all())
    };
    println!("wrong password: {reason}");
    assert!(reason.contains("credentials"), "{reason}");
    assert!(
        !reason.contains("wrong-one"),
        "the password is not shown: {reason}"
    );
    let stopped = Instant::now();
    drop(host);
    assert!(
        stopped.elapsed() < SEC,
        "stops promptly: {:?}",
        stopped.elapsed()
    );
    let good = Host::new(&server.url, quick(), spec("w1", "host-1"));
    assert!(good.events.wait(6 * SEC, is_closed).is_some());
}

#[test]
fn a_bad_url_is_a_clear_error_without_the_password() {
    for url in [
        "http://127.0.0.1:6379",
        "127.0.0.1:6379",
        "redis://:hunter2@127.0.0.1:notaport",
    ] {
        let Err(err) = Agent::start(url, AgentOptions::default()) else {
            panic!("{url} accepted")
        };
        assert!(matches!(err, FleetError::InvalidUrl { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.starts_with("fleet url must be"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }
    let err = Agent::start(
        "redis://127.0.0.1:1",
        AgentOptions {
            command_timeout_ms: 0,
            ..AgentOptions::default()
        },
    )
    .err()
    .expect("a zero timeout is refused");
    assert_eq!(
        err.to_string(),
        "fleet option commandTimeoutMs must be an integer in 1..=60000, received 0"
    );
}

#[test]
fn an_unreachable_store_degrades_and_the_agent_stops_promptly() {
    let port = support::free_port();
    let host = Host::new(
        &format!("redis://127.0.0.1:{port}"),
        quick(),
        spec("u1", "host-0"),
    );
    assert!(host.events.wait(6 * SEC, degraded).is_some());
    let stopped = Instant::now();
    drop(host);
    assert!(stopped.elapsed() < SEC, "{:?}", stopped.elapsed());
}

#[test]
fn one_agent_uses_two_connections_whatever_the_number_of_breakers() {
    if !available("one_agent_uses_two_connections_whatever_the_number_of_breakers") {
        return;
    }
    let server = Server::start();
    let agent = Agent::start(&server.url, quick()).unwrap();
    let events: Vec<Events> = (0..20).map(|_| Events::default()).collect();
    let handles: Vec<_> = events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            agent
                .register(spec(&format!("n{}", i % 7), "host-0"), e.sink())
                .unwrap()
        })
        .collect();
    for e in &events {
        e.wait(6 * SEC, is_closed)
            .expect("each breaker gets its view");
    }
    let clients = server.clients();
    println!("CLIENT LIST with 20 breakers on one agent: {clients} connections");
    assert_eq!(clients, 2);
    drop(handles);
    drop(agent);
    assert!(
        within(6 * SEC, || server.clients() == 0),
        "the stopped agent closed its connections"
    );
}

#[test]
fn one_process_agent_serves_one_store() {
    if !available("one_process_agent_serves_one_store") {
        return;
    }
    let a = Server::start();
    let b = Server::start();
    let first = Agent::shared(&a.url, quick()).unwrap();
    let again = Agent::shared(&a.url, quick()).unwrap();
    let events = Events::default();
    let _h = again.register(spec("s1", "host-0"), events.sink()).unwrap();
    assert!(events.wait(6 * SEC, is_closed).is_some());
    let other = format!("redis://:secret@127.0.0.1:{}", b.port);
    let err = Agent::shared(&other, quick())
        .err()
        .expect("a second store is refused");
    assert!(matches!(err, FleetError::OtherStore { .. }));
    assert!(!err.to_string().contains("secret"));
    assert_eq!(a.clients(), 2, "one agent for both callers");
    drop((first, again, _h));
    // Once the last user is gone, another store may be used.
    let _b = Agent::shared(&b.url, quick()).unwrap();
}

#[test]
fn noscript_after_a_script_flush_is_handled() {
    if !available("noscript_after_a_script_flush_is_handled") {
        return;
    }
    let server = Server::start();
    let h: Vec<Host> = (0..2)
        .map(|i| Host::new(&server.url, quick(), spec("s2", &format!("host-{i}"))))
        .collect();
    for x in &h {
        x.events.wait(6 * SEC, is_closed).unwrap();
    }
    let _: () = server.cmd(&["SCRIPT", "FLUSH"]);
    h[0].handle.trip_vote();
    h[1].handle.trip_vote();
    assert!(h[0].events.wait(6 * SEC, is_open).is_some());
    assert!(h[0].events.all().iter().all(|e| !degraded(e)));
}

#[test]
fn a_slow_store_within_the_timeout_is_not_an_outage() {
    if !available("a_slow_store_within_the_timeout_is_not_an_outage") {
        return;
    }
    let server = Server::start();
    let proxy = Proxy::start(server.port);
    let slow = Host::new(&proxy.url(), quick(), spec("d1", "host-0"));
    let other = Host::new(&server.url, quick(), spec("d1", "host-1"));
    slow.events.wait(6 * SEC, is_closed).unwrap();
    other.events.wait(6 * SEC, is_closed).unwrap();
    proxy.set(Mode::Delay(40));
    let sent = Instant::now();
    other.handle.trip_vote();
    slow.handle.trip_vote();
    let (_, at, _) = slow
        .events
        .wait_from(0, 6 * SEC, is_open)
        .expect("opens through the slow link");
    println!("open through a 40 ms-per-chunk proxy: {:?}", at - sent);
    std::thread::sleep(Duration::from_millis(400));
    assert!(
        slow.events.all().iter().all(|e| !degraded(e)),
        "{:?}",
        slow.events.all()
    );
}

#[test]
fn a_blackholed_store_times_out_degrades_and_recovers_when_it_answers_again() {
    if !available("a_blackholed_store_times_out_degrades_and_recovers_when_it_answers_again") {
        return;
    }
    let server = Server::start();
    let proxy = Proxy::start(server.port);
    let cut = Host::new(&proxy.url(), quick(), spec("b1", "host-0"));
    let other = Host::new(&server.url, quick(), spec("b1", "host-1"));
    cut.events.wait(6 * SEC, is_closed).unwrap();
    other.events.wait(6 * SEC, is_closed).unwrap();
    proxy.set(Mode::Blackhole);
    let since = Instant::now();
    cut.events
        .wait(6 * SEC, degraded)
        .expect("a silent socket times out");
    println!(
        "blackhole to Degraded: {:?} (re-read every 200 ms, timeout 200 ms)",
        since.elapsed()
    );
    // Meanwhile the fleet opens; the cut host hears it once it is back.
    other.handle.isolate();
    cut.handle.trip_vote();
    std::thread::sleep(Duration::from_millis(300));
    assert!(!cut.events.is_open());
    proxy.set(Mode::Pass);
    let back = Instant::now();
    cut.events.wait(8 * SEC, recovered).expect("Recovered");
    let e = cut
        .events
        .wait(6 * SEC, is_open)
        .expect("adopts the fleet's state");
    println!(
        "proxy passing again to Recovered: {:?}; then {e:?}",
        back.elapsed()
    );
    let stopped = Instant::now();
    proxy.set(Mode::Blackhole);
    drop(cut);
    assert!(
        stopped.elapsed() < SEC,
        "a blackholed agent stops promptly: {:?}",
        stopped.elapsed()
    );
}

#[test]
fn dropped_connections_degrade_and_reconnect() {
    if !available("dropped_connections_degrade_and_reconnect") {
        return;
    }
    let server = Server::start();
    let proxy = Proxy::start(server.port);
    let host = Host::new(&proxy.url(), quick(), spec("x1", "host-0"));
    host.events.wait(6 * SEC, is_closed).unwrap();
    proxy.set(Mode::Drop);
    host.events
        .wait(6 * SEC, degraded)
        .expect("a dropped link degrades");
    std::thread::sleep(Duration::from_millis(200));
    proxy.set(Mode::Pass);
    host.events
        .wait(8 * SEC, recovered)
        .expect("and reconnects");
    let mark = host.events.len();
    host.handle.isolate();
    assert!(host.events.wait_from(mark, 6 * SEC, is_open).is_some());
}

#[test]
fn reconnecting_leaves_two_connections() {
    if !available("reconnecting_leaves_two_connections") {
        return;
    }
    let server = Server::start();
    let host = Host::new(&server.url, quick(), spec("r1", "host-0"));
    host.events.wait(6 * SEC, is_closed).unwrap();
    for round in 0..3 {
        let mark = host.events.len();
        // Commands stall while the subscription link stays healthy.
        let _: () = server.cmd(&["CLIENT", "PAUSE", "500", "WRITE"]);
        host.events
            .wait_from(mark, 6 * SEC, degraded)
            .expect("Degraded");
        host.events
            .wait_from(mark, 8 * SEC, recovered)
            .expect("Recovered");
        let settled = within(SEC, || server.clients() == 2);
        assert!(settled, "round {round}: {} connections", server.clients());
    }
}

#[test]
fn a_record_with_absurd_times_does_not_stop_the_agent() {
    if !available("a_record_with_absurd_times_does_not_stop_the_agent") {
        return;
    }
    let server = Server::start();
    let _: () = server.cmd(&[
        "HSET",
        "cb:{z1}",
        "epoch",
        "1",
        "version",
        "1",
        "state",
        "open",
        "opened_at",
        "0",
        "retry_at",
        "18000000000000000000",
        "reason",
        "quorum",
    ]);
    let host = Host::new(&server.url, quick(), spec("z1", "host-0"));
    host.events
        .wait(6 * SEC, is_open)
        .expect("adopts the open record");
    host.handle.reset();
    assert!(
        host.events.wait(6 * SEC, is_closed).is_some(),
        "the agent still works: {:?}",
        host.events.all()
    );
}

#[test]
fn an_agent_stuck_connecting_to_a_blackhole_stops_promptly() {
    if !available("an_agent_stuck_connecting_to_a_blackhole_stops_promptly") {
        return;
    }
    let server = Server::start();
    let proxy = Proxy::start(server.port);
    proxy.set(Mode::Blackhole);
    let options = AgentOptions {
        connect_timeout_ms: 10_000,
        ..quick()
    };
    let host = Host::new(&proxy.url(), options, spec("h1", "host-0"));
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        host.events.all().is_empty(),
        "still connecting: {:?}",
        host.events.all()
    );
    let stopped = Instant::now();
    drop(host);
    assert!(stopped.elapsed() < SEC, "{:?}", stopped.elapsed());
}

#[test]
fn a_second_breaker_of_one_name_gets_the_view_and_the_first_hears_nothing_new() {
    if !available("a_second_breaker_of_one_name_gets_the_view_and_the_first_hears_nothing_new") {
        return;
    }
    let server = Server::start();
    let agent = Agent::start(&server.url, quick()).unwrap();
    let (first, second) = (Events::default(), Events::default());
    let a = agent.register(spec("t1", "host-0"), first.sink()).unwrap();
    first.wait(6 * SEC, is_closed).unwrap();
    let _b = agent.register(spec("t1", "host-1"), second.sink()).unwrap();
    second.wait(6 * SEC, is_closed).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(first.len(), 1, "{:?}", first.all());
    // Both hear the fleet's changes.
    a.isolate();
    assert!(second.wait(6 * SEC, is_open).is_some());
    assert!(first.wait(6 * SEC, is_open).is_some());
}

#[test]
fn an_acl_user_limited_to_the_fleet_keys_and_channels_works() {
    if !available("an_acl_user_limited_to_the_fleet_keys_and_channels_works") {
        return;
    }
    // The least a fleet agent needs (documented in the README).
    let acl = "fleet on >fleet-pass ~cb:* &cb:* -@all +evalsha +eval +script|load +time +exists +get +set +pttl +del \
    +hmget +hset +zadd +zremrangebyscore +zcard +pexpire +publish +subscribe +unsubscribe +ping +hello +auth";
    let mut args = vec!["--user"];
    args.extend(acl.split_whitespace());
    let server = Server::with(&args, None);
    let url = format!("redis://fleet:fleet-pass@127.0.0.1:{}", server.port);
    let h: Vec<Host> = (0..2)
        .map(|i| Host::new(&url, quick(), spec("a1", &format!("host-{i}"))))
        .collect();
    for x in &h {
        x.events
            .wait(6 * SEC, is_closed)
            .unwrap_or_else(|| panic!("initial view: {:?}", x.events.all()));
    }
    let _: () = server.cmd(&["SCRIPT", "FLUSH"]);
    h[0].handle.trip_vote();
    h[1].handle.trip_vote();
    assert!(
        h[1].events.wait(6 * SEC, is_open).is_some(),
        "{:?}",
        h[1].events.all()
    );
    assert!(h
        .iter()
        .all(|x| x.events.all().iter().all(|e| !degraded(e))));
    // Another user's password is refused with a clear reason.
    let wrong = format!("redis://fleet:nope@127.0.0.1:{}", server.port);
    let refused = Host::new(&wrong, quick(), spec("a1", "host-2"));
    let Some(FleetEvent::Degraded { reason }) = refused.events.wait(6 * SEC, degraded) else {
        panic!("{:?}", refused.events.all())
    };
    assert!(reason.contains("credentials"), "{reason}");
}

#[test]
fn a_user_without_the_fleet_commands_is_told_what_the_store_answered() {
    if !available("a_user_without_the_fleet_commands_is_told_what_the_store_answered") {
        return;
    }
    let server = Server::with(
        &[
            "--user",
            "weak",
            "on",
            ">weak-pass",
            "~*",
            "&*",
            "-@all",
            "+ping",
            "+hello",
            "+auth",
        ],
        None,
    );
    let url = format!("redis://weak:weak-pass@127.0.0.1:{}", server.port);
    let host = Host::new(&url, quick(), spec("a2", "host-0"));
    let Some(FleetEvent::Degraded { reason }) = host.events.wait(6 * SEC, degraded) else {
        panic!("{:?}", host.events.all())
    };
    println!("user without permissions: {reason}");
    assert!(
        reason.starts_with("the store answered with an error"),
        "{reason}"
    );
}

#[test]
fn flushall_while_isolated_keeps_every_host_isolated() {
    if !available("flushall_while_isolated_keeps_every_host_isolated") {
        return;
    }
    let server = Server::start();
    let h: Vec<Host> = (0..2)
        .map(|i| Host::new(&server.url, quick(), spec("f2", &format!("host-{i}"))))
        .collect();
    h[0].handle.isolate();
    for x in &h {
        x.events
            .wait(6 * SEC, opened_by(OpenReason::Isolated))
            .expect("isolated");
    }
    let marks: Vec<usize> = h.iter().map(|x| x.events.len()).collect();
    let _: () = server.cmd(&["FLUSHALL"]);
    assert!(within(6 * SEC, || server
        .cmd::<Option<String>>(&["HGET", "cb:{f2}", "isolations"])
        .as_deref()
        == Some("1")));
    std::thread::sleep(Duration::from_millis(300));
    for (x, m) in h.iter().zip(&marks) {
        assert!(stayed_open(x, *m), "{:?}", x.events.all());
    }
    // The written-back isolation is released like the original one.
    h[0].handle.release_isolation();
    for x in &h {
        assert!(x
            .events
            .wait(6 * SEC, closed_by(CloseReason::Released))
            .is_some());
    }
}

/// Run by `a_process_exits_while_its_agent_is_still_connecting` in a child
/// process: an agent stuck connecting to a server that never answers, never
/// dropped.
#[test]
#[ignore = "run as a child process by another test"]
fn child_leaves_an_agent_connecting() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("redis://127.0.0.1:{}", silent.local_addr().unwrap().port());
    let options = AgentOptions {
        connect_timeout_ms: 60_000,
        ..quick()
    };
    let host = Host::new(&url, options, spec("e1", "host-0"));
    std::thread::sleep(Duration::from_millis(100));
    std::mem::forget(host);
}

#[test]
fn a_process_exits_while_its_agent_is_still_connecting() {
    let started = Instant::now();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_leaves_an_agent_connecting",
            "--ignored",
            "--test-threads=1",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let exited = within(10 * SEC, || child.try_wait().unwrap().is_some());
    if !exited {
        let _ = child.kill();
    }
    assert!(exited, "the process did not exit");
    assert!(child.wait().unwrap().success());
    println!(
        "process with a connecting agent exited after {:?}",
        started.elapsed()
    );
    assert!(started.elapsed() < 5 * SEC);
}

#[test]
fn a_sink_that_panics_does_not_stop_the_agent() {
    if !available("a_sink_that_panics_does_not_stop_the_agent") {
        return;
    }
    let server = Server::start();
    let agent = Agent::start(&server.url, quick()).unwrap();
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = calls.clone();
    let _bad = agent
        .register(
            spec("g1", "host-0"),
            std::sync::Arc::new(move |_| {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                panic!("a sink that panics");
            }),
        )
        .unwrap();
    let good = Events::default();
    let handle = agent.register(spec("g1", "host-0"), good.sink()).unwrap();
    good.wait(6 * SEC, is_closed)
        .expect("the agent still serves");
    handle.isolate();
    assert!(good.wait(6 * SEC, is_open).is_some());
    // The sinks of one name are called one after the other: the panicking one
    // may hear the opening just after the good one does.
    let deadline = std::time::Instant::now() + 6 * SEC;
    while calls.load(std::sync::atomic::Ordering::SeqCst) < 2
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    assert!(calls.load(std::sync::atomic::Ordering::SeqCst) >= 2);
}
