//! The agent's two links to the store: one for commands (a multiplexed
//! connection, or a cluster connection), one for the subscription.
//!
//! Neither reconnects by itself: a command that times out may sit on a
//! blackholed socket that never errors, so on any failure the agent drops
//! both links and builds new ones (with backoff), then re-reads everything.

use std::time::Duration;

use redis::aio::{MultiplexedConnection, PubSubSink, PubSubStream};
use redis::cluster_async::ClusterConnection;
use redis::{AsyncConnectionConfig, RedisResult, Value};

use crate::options::{redact, AgentOptions, FleetError};

/// A validated way to the store: building one never touches the network.
pub struct Target {
    client: redis::Client,
    cluster: Option<redis::cluster::ClusterClient>,
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
        let certs = || redis::TlsCertificates {
            client_tls: None,
            root_cert: options.tls_ca_pem.clone(),
        };
        let tls = options.tls_ca_pem.is_some();
        let client = if tls {
            redis::Client::build_with_tls(url, certs())
        } else {
            redis::Client::open(url)
        }
        .map_err(|e| invalid(url, e))?;
        let command_timeout = Duration::from_millis(options.command_timeout_ms);
        let connect_timeout = Duration::from_millis(options.connect_timeout_ms);
        let cluster = if options.cluster {
            let mut builder = redis::cluster::ClusterClientBuilder::new(vec![url])
                .connection_timeout(connect_timeout)
                .response_timeout(command_timeout)
                .retries(2);
            if tls {
                builder = builder.certs(certs());
            }
            Some(builder.build().map_err(|e| invalid(url, e))?)
        } else {
            None
        };
        Ok(Target {
            client,
            cluster,
            command_timeout,
            connect_timeout,
        })
    }

    pub fn command_timeout(&self) -> Duration {
        self.command_timeout
    }

    /// Opens both links, each within the connect timeout.
    pub async fn connect(&self) -> RedisResult<(Commands, PubSubSink, PubSubStream)> {
        let commands = match &self.cluster {
            Some(cluster) => Commands::Cluster(
                within(self.connect_timeout, cluster.get_async_connection()).await?,
            ),
            None => {
                let config = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(self.connect_timeout))
                    .set_response_timeout(Some(self.command_timeout));
                Commands::Single(
                    within(
                        self.connect_timeout,
                        self.client
                            .get_multiplexed_async_connection_with_config(&config),
                    )
                    .await?,
                )
            }
        };
        let pubsub = within(self.connect_timeout, self.client.get_async_pubsub()).await?;
        let (sink, stream) = pubsub.split();
        Ok((commands, sink, stream))
    }
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
