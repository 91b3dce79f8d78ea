//! Test harness: real redis-server processes (standalone, password, TLS, a
//! 3-master cluster) started by the tests themselves, a TCP proxy that
//! injects faults, and hosts (one agent each) that record their events.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use breaker_fleet::{
    Agent, AgentOptions, BreakerHandle, BreakerSpec, CloseReason, FleetEvent, OpenReason, Sink,
};

pub mod proxy;

/// Whether redis-server is here. Without it a test prints why and passes,
/// unless FLEET_TESTS_REQUIRED=1 (CI), where it fails.
pub fn available(test: &str) -> bool {
    let found = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        if std::env::var("FLEET_TESTS_REQUIRED").as_deref() == Ok("1") {
            panic!("{test}: redis-server is not installed and FLEET_TESTS_REQUIRED=1");
        }
        eprintln!("{test}: SKIPPED, redis-server is not installed (set FLEET_TESTS_REQUIRED=1 to fail instead)");
    }
    found
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

static NEXT_DIR: AtomicU64 = AtomicU64::new(0);

fn temp_dir() -> PathBuf {
    let n = NEXT_DIR.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("breaker-fleet-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Polls `check` until it holds or `limit` passes.
pub fn within(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// One redis-server, killed (and its folder removed) on drop.
pub struct Server {
    pub port: u16,
    dir: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
    /// The URL clients use (with the password, `rediss://` for TLS).
    pub url: String,
    /// The root certificate of a TLS server.
    pub ca_pem: Option<Vec<u8>>,
    admin_password: Option<String>,
}

impl Server {
    pub fn start() -> Server {
        Server::with(&[], None)
    }

    /// A server whose default user needs `password`.
    pub fn with_password(password: &str) -> Server {
        let mut s = Server::with(&["--requirepass", password], Some(password.to_owned()));
        s.url = format!("redis://:{password}@127.0.0.1:{}", s.port);
        s
    }

    /// A server that only speaks TLS, with certificates made now.
    pub fn tls() -> Server {
        let dir = temp_dir();
        make_certificates(&dir);
        let d = |f: &str| dir.join(f).to_string_lossy().into_owned();
        let port = free_port();
        let args = [
            "--port".to_owned(),
            "0".to_owned(),
            "--tls-port".to_owned(),
            port.to_string(),
            "--tls-cert-file".to_owned(),
            d("server.crt"),
            "--tls-key-file".to_owned(),
            d("server.key"),
            "--tls-ca-cert-file".to_owned(),
            d("ca.crt"),
            "--tls-auth-clients".to_owned(),
            "no".to_owned(),
        ];
        let mut s = Server::spawn_in(dir.clone(), port, args.to_vec(), None);
        s.url = format!("rediss://localhost:{port}");
        s.ca_pem = Some(std::fs::read(dir.join("ca.crt")).unwrap());
        s
    }

    pub fn with(extra: &[&str], admin_password: Option<String>) -> Server {
        let port = free_port();
        let mut args = vec!["--port".to_owned(), port.to_string()];
        args.extend(extra.iter().map(|s| s.to_string()));
        Server::spawn_in(temp_dir(), port, args, admin_password)
    }

    fn spawn_in(
        dir: PathBuf,
        port: u16,
        args: Vec<String>,
        admin_password: Option<String>,
    ) -> Server {
        let mut s = Server {
            port,
            dir,
            args,
            child: None,
            url: format!("redis://127.0.0.1:{port}"),
            ca_pem: None,
            admin_password,
        };
        s.launch();
        s
    }

    fn launch(&mut self) {
        let log = self.dir.join("redis.log");
        let _ = std::fs::remove_file(&log);
        let child = Command::new("redis-server")
            .args([
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "no",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg(&log)
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let ready = within(Duration::from_secs(10), || {
            std::fs::read_to_string(&log).is_ok_and(|l| l.contains("Ready to accept connections"))
        });
        assert!(
            ready,
            "redis-server on port {} did not start: {:?}",
            self.port,
            std::fs::read_to_string(&log)
        );
    }

    /// Kills the server (SIGKILL): its data is gone, as after a crash.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port, empty.
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    /// A plain connection for the test's own commands (not through an agent).
    pub fn admin(&self) -> redis::Connection {
        let url = match &self.admin_password {
            Some(p) => format!("redis://:{p}@127.0.0.1:{}", self.port),
            None => format!("redis://127.0.0.1:{}", self.port),
        };
        redis::Client::open(url).unwrap().get_connection().unwrap()
    }

    pub fn cmd<T: redis::FromRedisValue>(&self, args: &[&str]) -> T {
        let mut c = redis::cmd(args[0]);
        for a in &args[1..] {
            c.arg(*a);
        }
        c.query(&mut self.admin()).unwrap()
    }

    /// Client connections the server has, not counting the one asking.
    pub fn clients(&self) -> usize {
        let list: String = self.cmd(&["CLIENT", "LIST"]);
        list.lines().count() - 1
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn make_certificates(dir: &Path) {
    let run = |args: &[&str]| {
        let ok = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "openssl {args:?} failed");
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec![
        "req",
        "-x509",
        "-days",
        "1",
        "-subj",
        "/CN=breaker-fleet test CA",
    ];
    ca.extend(ec);
    ca.extend(["-keyout", "ca.key", "-out", "ca.crt"]);
    run(&ca);
    let mut req = vec!["req", "-subj", "/CN=localhost"];
    req.extend(ec);
    req.extend(["-keyout", "server.key", "-out", "server.csr"]);
    run(&req);
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "san.ext",
        "-out",
        "server.crt",
    ]);
}

/// Three masters in one Redis Cluster, each on its own port.
pub struct Cluster {
    pub nodes: Vec<Server>,
}

impl Cluster {
    pub fn start() -> Cluster {
        let nodes: Vec<Server> = (0..3)
            .map(|_| {
                Server::with(
                    &[
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                    ],
                    None,
                )
            })
            .collect();
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for n in &nodes {
            create.arg(format!("127.0.0.1:{}", n.port));
        }
        let out = create
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli runs");
        assert!(
            out.status.success(),
            "cluster create failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let ok = within(Duration::from_secs(10), || {
            nodes.iter().all(|n| {
                let info: String = n.cmd(&["CLUSTER", "INFO"]);
                info.contains("cluster_state:ok")
            })
        });
        assert!(ok, "the cluster did not become ok");
        Cluster { nodes }
    }
}

/// One host: an agent of its own, one breaker, the events it got.
pub struct Host {
    pub agent: Agent,
    pub handle: BreakerHandle,
    pub events: Events,
}

impl Host {
    pub fn new(url: &str, options: AgentOptions, spec: BreakerSpec) -> Host {
        let agent = Agent::start(url, options).expect("agent starts");
        let events = Events::default();
        let handle = agent
            .register(spec, events.sink())
            .expect("breaker registers");
        Host {
            agent,
            handle,
            events,
        }
    }
}

/// Test options: short timeouts and re-reads so faults show quickly.
pub fn quick() -> AgentOptions {
    AgentOptions {
        command_timeout_ms: 200,
        connect_timeout_ms: 300,
        reread_ms: 200,
        reconnect_min_ms: 20,
        reconnect_max_ms: 200,
        ..AgentOptions::default()
    }
}

/// Every event a host got, with when it arrived.
type Log = Mutex<Vec<(Instant, FleetEvent)>>;

#[derive(Clone, Default)]
pub struct Events {
    inner: Arc<(Log, Condvar)>,
}

impl Events {
    pub fn sink(&self) -> Sink {
        let inner = self.inner.clone();
        Arc::new(move |e| {
            let (list, cv) = &*inner;
            list.lock().unwrap().push((Instant::now(), e));
            cv.notify_all();
        })
    }

    pub fn all(&self) -> Vec<FleetEvent> {
        self.inner
            .0
            .lock()
            .unwrap()
            .iter()
            .map(|(_, e)| e.clone())
            .collect()
    }

    pub fn len(&self) -> usize {
        self.inner.0.lock().unwrap().len()
    }

    /// The first event from index `from` on that matches, waiting up to
    /// `limit` for it; with the time it arrived and its index.
    pub fn wait_from(
        &self,
        from: usize,
        limit: Duration,
        pred: impl Fn(&FleetEvent) -> bool,
    ) -> Option<(usize, Instant, FleetEvent)> {
        let (list, cv) = &*self.inner;
        let end = Instant::now() + limit;
        let mut guard = list.lock().unwrap();
        loop {
            if let Some((i, (t, e))) = guard
                .iter()
                .enumerate()
                .skip(from)
                .find(|(_, (_, e))| pred(e))
            {
                return Some((i, *t, e.clone()));
            }
            let now = Instant::now();
            if now >= end {
                return None;
            }
            guard = cv.wait_timeout(guard, end - now).unwrap().0;
        }
    }

    pub fn wait(&self, limit: Duration, pred: impl Fn(&FleetEvent) -> bool) -> Option<FleetEvent> {
        self.wait_from(0, limit, pred).map(|(_, _, e)| e)
    }

    /// The last Open/Closed event: the fleet view this host adopted last.
    pub fn last_view(&self) -> Option<FleetEvent> {
        self.all()
            .into_iter()
            .rev()
            .find(|e| matches!(e, FleetEvent::Open { .. } | FleetEvent::Closed { .. }))
    }

    pub fn is_open(&self) -> bool {
        matches!(self.last_view(), Some(FleetEvent::Open { .. }))
    }
}

pub fn is_open(e: &FleetEvent) -> bool {
    matches!(e, FleetEvent::Open { .. })
}

pub fn is_closed(e: &FleetEvent) -> bool {
    matches!(e, FleetEvent::Closed { .. })
}

pub fn opened_by(reason: OpenReason) -> impl Fn(&FleetEvent) -> bool {
    move |e| matches!(e, FleetEvent::Open { reason: r, .. } if *r == reason)
}

pub fn closed_by(reason: CloseReason) -> impl Fn(&FleetEvent) -> bool {
    move |e| matches!(e, FleetEvent::Closed { reason: r, .. } if *r == reason)
}
