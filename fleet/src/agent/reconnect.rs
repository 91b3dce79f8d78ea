//! The link to the store: connecting, subscribing, checking it on every
//! re-read, and after a failure reconnecting with backoff and jitter.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::time::Instant;

use super::records::{Force, ScriptName};
use super::worker::{emit, Fail, Heard, Link, Worker};
use crate::connection::within;
use crate::event::FleetEvent;
use crate::store::Record;

impl Worker {
    /// Subscribes the breaker's channel (once per key) and adopts its record.
    pub(crate) async fn join(&mut self, id: u64) -> Result<(), Fail> {
        let Some(channel) = self.breakers.get(&id).map(|b| b.keys.state.clone()) else {
            return Ok(());
        };
        self.subscribe(&channel).await?;
        let reply = self.script(id, ScriptName::Read, Vec::new()).await?;
        self.adopt(&channel, reply.record, Force::Only(id)).await
    }

    async fn subscribe(&mut self, channel: &str) -> Result<(), Fail> {
        let limit = self.target.command_timeout();
        let Some(link) = self.link.as_mut() else {
            return Ok(());
        };
        if link.subscribed.contains(channel) {
            return Ok(());
        }
        within(limit, link.sink.subscribe(channel)).await?;
        link.subscribed.insert(channel.to_owned());
        Ok(())
    }

    pub(crate) async fn unsubscribe(&mut self, channel: &str) {
        let limit = self.target.command_timeout();
        if let Some(link) = self.link.as_mut() {
            if link.subscribed.remove(channel) {
                // Best effort: a message on a channel nobody listens to is dropped.
                let _ = within(limit, link.sink.unsubscribe(channel)).await;
            }
        }
    }

    /// Re-reads every breaker's record and adopts the newer ones.
    pub(crate) async fn reread(&mut self) -> Result<(), Fail> {
        let limit = self.target.command_timeout();
        if let Some(link) = self.link.as_mut() {
            // The subscription link answers too, or it is gone.
            within(limit, link.sink.ping::<()>()).await?;
        }
        for (channel, record) in self.read_all().await? {
            self.adopt(&channel, record, Force::No).await?;
        }
        Ok(())
    }

    /// The record of every registered key (one read per key).
    async fn read_all(&mut self) -> Result<Vec<(String, Record)>, Fail> {
        let mut by_key: HashMap<String, u64> = HashMap::new();
        for (id, b) in &self.breakers {
            by_key.entry(b.keys.state.clone()).or_insert(*id);
        }
        let mut records = Vec::with_capacity(by_key.len());
        for (channel, id) in by_key {
            let reply = self.script(id, ScriptName::Read, Vec::new()).await?;
            records.push((channel, reply.record));
        }
        Ok(records)
    }

    /// Connects both links, subscribes, re-reads; then reports `Recovered`,
    /// sends the ops kept during the outage and every breaker's view.
    pub(crate) async fn establish(&mut self) {
        let (commands, sink, mut stream) = match self.target.connect().await {
            Ok(c) => c,
            Err(e) => return self.fail(e),
        };
        self.generation += 1;
        let generation = self.generation;
        let heard = self.heard_tx.clone();
        let listener = tokio::spawn(async move {
            while let Some(msg) = stream.next().await {
                let channel = msg.get_channel_name().to_owned();
                let Ok(payload) = msg.get_payload::<String>() else {
                    continue;
                };
                if heard
                    .send(Heard::Message {
                        generation,
                        channel,
                        payload,
                    })
                    .is_err()
                {
                    return;
                }
            }
            let _ = heard.send(Heard::Closed { generation });
        })
        .abort_handle();
        self.link = Some(Link {
            commands,
            sink,
            subscribed: HashSet::new(),
            listener,
        });
        let channels: HashSet<String> = self
            .breakers
            .values()
            .map(|b| b.keys.state.clone())
            .collect();
        for channel in channels {
            if let Err(e) = self.subscribe(&channel).await {
                return self.fail(e);
            }
        }
        // Read before announcing anything: a paused or half-dead store fails here.
        let records = match self.read_all().await {
            Ok(r) => r,
            Err(e) => return self.fail(e),
        };
        self.attempt = 0;
        self.next_reread = Instant::now() + Duration::from_millis(self.options.reread_ms);
        let recovering = self.degraded.take().is_some();
        if recovering {
            for b in self.breakers.values() {
                emit(&b.sink, FleetEvent::Recovered);
            }
        }
        if let Err(e) = self.replay().await {
            return self.fail(e);
        }
        // After an outage every breaker gets the fleet's view, changed or not.
        for (channel, record) in records {
            let force = if recovering { Force::All } else { Force::No };
            if let Err(e) = self.adopt(&channel, record, force).await {
                return self.fail(e);
            }
        }
    }

    /// The store is away: drop both links, report `Degraded` once, and try
    /// again after an exponential backoff with jitter.
    pub(crate) fn fail(&mut self, err: Fail) {
        self.link = None;
        self.generation += 1;
        let min = self.options.reconnect_min_ms;
        let max = self.options.reconnect_max_ms;
        let ceiling = min.saturating_mul(1u64 << self.attempt.min(20)).min(max);
        let wait = ceiling / 2 + self.random(ceiling / 2 + 1);
        self.attempt = self.attempt.saturating_add(1);
        self.next_connect = Instant::now() + Duration::from_millis(wait);
        if self.degraded.is_none() {
            let reason = describe(&err);
            for b in self.breakers.values() {
                emit(
                    &b.sink,
                    FleetEvent::Degraded {
                        reason: reason.clone(),
                    },
                );
            }
            self.degraded = Some(reason);
        }
    }

    /// A random number in 0..n (xorshift; jitter needs no more).
    pub(crate) fn random(&mut self, n: u64) -> u64 {
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        if n == 0 {
            0
        } else {
            self.seed % n
        }
    }
}

/// A short reason for `Degraded`, without secrets.
fn describe(err: &redis::RedisError) -> String {
    if err.kind() == redis::ErrorKind::AuthenticationFailed
        || err.code() == Some("WRONGPASS")
        || err.code() == Some("NOAUTH")
    {
        return format!("the store refused the credentials: {err}");
    }
    if err.is_timeout() {
        return format!("the store did not answer in time: {err}");
    }
    if err.is_io_error() || err.is_connection_refusal() || err.is_connection_dropped() {
        return format!("the store cannot be reached: {err}");
    }
    // NOPERM, a script error, an unexpected reply: a fault, not an outage,
    // but the host still runs on its own until a command succeeds.
    format!("the store answered with an error: {err}")
}
