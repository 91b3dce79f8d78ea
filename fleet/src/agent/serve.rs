//! The agent's loop on its tokio thread: one control message, subscription
//! message or timer at a time, until stopped or every handle is gone.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::records::Force;
use super::worker::{emit, Breaker, Ctl, Heard, Op, Worker};
use crate::event::FleetEvent;
use crate::store::{Keys, Record};

impl Worker {
    /// Serves until stopped; a stop cancels whatever is in flight (a
    /// connection attempt to a silent server included).
    pub(crate) async fn run(&mut self, stop: Arc<tokio::sync::Notify>) {
        let stopped = stop.notified();
        tokio::pin!(stopped);
        loop {
            tokio::select! {
                biased;
                _ = &mut stopped => break,
                more = self.step() => if !more { break },
            }
        }
        self.link = None;
    }

    /// Handles one control message, subscription message or timer; false
    /// once every handle is gone.
    async fn step(&mut self) -> bool {
        let wake = self.next_wake();
        tokio::select! {
            biased;
            ctl = self.control.recv() => match ctl {
                None => return false,
                Some(ctl) => self.on_control(ctl).await,
            },
            Some(heard) = self.heard_rx.recv() => self.on_heard(heard).await,
            _ = tokio::time::sleep_until(wake) => self.on_timer().await,
        }
        true
    }

    fn next_wake(&self) -> Instant {
        if self.link.is_none() {
            return self.next_connect;
        }
        self.breakers
            .values()
            .filter_map(|b| b.next_acquire)
            .fold(self.next_reread, Instant::min)
    }

    async fn on_control(&mut self, ctl: Ctl) {
        match ctl {
            Ctl::Register { id, spec, sink } => {
                let keys = Keys::new(&self.options.key_prefix, &spec.name);
                if let Some(reason) = &self.degraded {
                    emit(
                        &sink,
                        FleetEvent::Degraded {
                            reason: reason.clone(),
                        },
                    );
                }
                self.breakers.insert(
                    id,
                    Breaker {
                        spec,
                        keys,
                        sink,
                        known: None,
                        retry_deadline: None,
                        next_acquire: None,
                        pending: VecDeque::new(),
                    },
                );
                if self.link.is_some() {
                    if let Err(e) = self.join(id).await {
                        self.fail(e);
                    }
                }
            }
            Ctl::Unregister { id } => {
                if let Some(b) = self.breakers.remove(&id) {
                    let still_used = self.breakers.values().any(|o| o.keys == b.keys);
                    if !still_used {
                        self.unsubscribe(&b.keys.state).await;
                    }
                }
            }
            Ctl::Op { id, op, at } => {
                let at = Instant::from_std(at);
                if let Op::RequestProbe = op {
                    if let Some(b) = self.breakers.get_mut(&id) {
                        b.next_acquire = Some(Instant::now());
                    }
                    return;
                }
                if self.link.is_none() {
                    self.keep(id, at, op, false);
                    return;
                }
                if let Err(e) = self.apply(id, &op).await {
                    self.keep(id, at, op, true);
                    self.fail(e);
                }
            }
        }
    }

    async fn on_heard(&mut self, heard: Heard) {
        match heard {
            Heard::Message {
                generation,
                channel,
                payload,
            } => {
                if generation != self.generation {
                    return;
                }
                if let Some(record) = Record::parse_message(&payload) {
                    if let Err(e) = self.adopt(&channel, record, Force::No).await {
                        self.fail(e);
                    }
                }
            }
            Heard::Closed { generation } => {
                if generation == self.generation && self.link.is_some() {
                    self.fail(redis::RedisError::from(std::io::Error::new(
                        std::io::ErrorKind::ConnectionReset,
                        "the subscription connection closed",
                    )));
                }
            }
        }
    }

    async fn on_timer(&mut self) {
        let now = Instant::now();
        if self.link.is_none() {
            if now >= self.next_connect {
                self.establish().await;
            }
            return;
        }
        if now >= self.next_reread {
            self.next_reread = now + Duration::from_millis(self.options.reread_ms);
            if let Err(e) = self.reread().await {
                self.fail(e);
                return;
            }
        }
        let due: Vec<u64> = self
            .breakers
            .iter()
            .filter(|(_, b)| b.next_acquire.is_some_and(|t| t <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            if let Err(e) = self.acquire(id).await {
                self.fail(e);
                return;
            }
        }
    }
}
