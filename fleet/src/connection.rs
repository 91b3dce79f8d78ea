//! The agent's two links to the store: one for commands (a multiplexed
//! connection, or a cluster connection), one for the subscription.
//!
//! Neither reconnects by itself: a command that times out may sit on a
//! blackholed socket that never errors, so on any failure the agent drops
//! both links and builds new ones (with backoff), then re-reads everything.

use std::time::Duration;

use redis::aio::{MultiplexedConnection, PubSubSink, PubSubStream};
use redis::cluster_async::ClusterConnection;
use redis::{AsyncConnectionConfig, IntoConnectionInfo, RedisResult, Value};

use crate::options::{redact, AgentOptions, FleetError};

/// A validated way to the store: building one never touches the network.
pub struct Target {
    /// How to reach the URL's server (credentials, TLS, database).
    seed: redis::ConnectionInfo,
    tls_ca_pem: Option<Vec<u8>>,
    cluster: bool,
    /// Cluster nodes learnt at the last connection: the next connection
    /// tries them too, so losing the node named in the URL is survivable.
    known_nodes: Vec<(String, u16)>,
    command_timeout: Duration,
    connect_timeout: Duration,
}

pub enum Commands {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

fn invalid(url: &str, err: impl std::fmt::Display) -> FleetError {
    FleetError::InvalidUrl {
        url: redact(url),
        detail: err.to_string(),
    }
}

impl Target {
    pub fn new(url: &str, options: &AgentOptions) -> Result<Target, FleetError> {
        let scheme = url.split("://").next().unwrap_or("");
        if !url.contains("://") || !matches!(scheme, "redis" | "rediss" | "valkey" | "valkeys") {
            return Err(invalid(
                url,
                "the scheme must be redis, rediss, valkey or valkeys",
            ));
        }
        // rustls needs one crypto provider; installing it twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let seed = url.into_connection_info().map_err(|e| invalid(url, e))?;
        let target = Target {
            seed,
            tls_ca_pem: options.tls_ca_pem.clone(),
            cluster: options.cluster,
            known_nodes: Vec::new(),
            command_timeout: Duration::from_millis(options.command_timeout_ms),
            connect_timeout: Duration::from_millis(options.connect_timeout_ms),
        };
        // Build the clients once now, so a URL they refuse fails here.
        target.client(&target.seed).map_err(|e| invalid(url, e))?;
        if target.cluster {
            target.cluster_client().map_err(|e| invalid(url, e))?;
        }
        Ok(target)
    }

    pub fn command_timeout(&self) -> Duration {
        self.command_timeout
    }

    fn certs(&self) -> redis::TlsCertificates {
        redis::TlsCertificates {
            client_tls: None,
            root_cert: self.tls_ca_pem.clone(),
        }
    }

    fn client(&self, info: &redis::ConnectionInfo) -> RedisResult<redis::Client> {
        match self.tls_ca_pem {
            Some(_) => redis::Client::build_with_tls(info.clone(), self.certs()),
            None => redis::Client::open(info.clone()),
        }
    }

    /// The URL's server, then every cluster node learnt so far.
    fn nodes(&self) -> Vec<redis::ConnectionInfo> {
        let mut nodes = vec![self.seed.clone()];
        for (host, port) in &self.known_nodes {
            let addr = match self.seed.addr() {
                redis::ConnectionAddr::TcpTls {
                    insecure,
                    tls_params,
                    ..
                } => redis::ConnectionAddr::TcpTls {
                    host: host.clone(),
                    port: *port,
                    insecure: *insecure,
                    tls_params: tls_params.clone(),
                },
                _ => redis::ConnectionAddr::Tcp(host.clone(), *port),
            };
            if &addr != self.seed.addr() {
                nodes.push(self.seed.clone().set_addr(addr));
            }
        }
        nodes
    }

    fn cluster_client(&self) -> RedisResult<redis::cluster::ClusterClient> {
        let mut builder = redis::cluster::ClusterClientBuilder::new(self.nodes())
            .connection_timeout(self.connect_timeout)
            .response_timeout(self.command_timeout)
            .retries(2);
        if self.tls_ca_pem.is_some() {
            builder = builder.certs(self.certs());
        }
        builder.build()
    }

    /// Opens both links, each within the connect timeout. In a cluster the
    /// subscription goes to the first node that answers (classic PUBLISH
    /// reaches every node), and the cluster's nodes are remembered.
    pub async fn connect(&mut self) -> RedisResult<(Commands, PubSubSink, PubSubStream)> {
        let limit = self.connect_timeout;
        if !self.cluster {
            let config = AsyncConnectionConfig::new()
                .set_connection_timeout(Some(limit))
                .set_response_timeout(Some(self.command_timeout));
            let client = self.client(&self.seed)?;
            let commands = within(
                limit,
                client.get_multiplexed_async_connection_with_config(&config),
            )
            .await?;
            let (sink, stream) = within(limit, client.get_async_pubsub()).await?.split();
            return Ok((Commands::Single(commands), sink, stream));
        }
        let mut commands = within(limit, self.cluster_client()?.get_async_connection()).await?;
        if let Ok(nodes) = within(self.command_timeout, cluster_nodes(&mut commands)).await {
            if !nodes.is_empty() {
                self.known_nodes = nodes;
            }
        }
        let mut last = None;
        for node in self.nodes() {
            match within(limit, self.client(&node)?.get_async_pubsub()).await {
                Ok(pubsub) => {
                    let (sink, stream) = pubsub.split();
                    return Ok((Commands::Cluster(commands), sink, stream));
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            redis::RedisError::from((redis::ErrorKind::Client, "no cluster node"))
        }))
    }
}

/// The masters' addresses, from CLUSTER SLOTS.
async fn cluster_nodes(commands: &mut ClusterConnection) -> RedisResult<Vec<(String, u16)>> {
    let slots: Value = redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query_async(commands)
        .await?;
    let mut nodes = Vec::new();
    let Value::Array(ranges) = slots else {
        return Ok(nodes);
    };
    for range in ranges {
        let Value::Array(fields) = range else {
            continue;
        };
        // [start, end, [host, port, id, ...] (the master), replicas...]
        let Some(Value::Array(master)) = fields.get(2) else {
            continue;
        };
        let host = match master.first() {
            Some(Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
            _ => continue,
        };
        let Some(Value::Int(port)) = master.get(1) else {
            continue;
        };
        let Ok(port) = u16::try_from(*port) else {
            continue;
        };
        if !host.is_empty() && !nodes.contains(&(host.clone(), port)) {
            nodes.push((host, port));
        }
    }
    Ok(nodes)
}

/// Runs `fut` with a deadline; past it, a timeout error.
pub async fn within<T>(
    limit: Duration,
    fut: impl std::future::Future<Output = RedisResult<T>>,
) -> RedisResult<T> {
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r,
        Err(_) => Err(redis::RedisError::from(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("no answer within {} ms", limit.as_millis()),
        ))),
    }
}

impl Commands {
    /// Runs one protocol script (EVALSHA; on NOSCRIPT the script is loaded
    /// and run again) within the command timeout.
    pub async fn run(
        &mut self,
        limit: Duration,
        script: &redis::Script,
        keys: &[&str],
        args: &[String],
    ) -> RedisResult<Value> {
        let mut invocation = script.prepare_invoke();
        for k in keys {
            invocation.key(*k);
        }
        for a in args {
            invocation.arg(a.as_str());
        }
        match self {
            Commands::Single(c) => within(limit, invocation.invoke_async(c)).await,
            Commands::Cluster(c) => within(limit, invocation.invoke_async(c)).await,
        }
    }
}
