//! The store's scripts run for a breaker, the records they return adopted,
//! and each adopted view emitted to the breakers' sinks.

use std::time::Duration;

use tokio::time::Instant;

use super::worker::{emit, Fail, Op, Worker};
use crate::event::{FleetEvent, Lease};
use crate::store::{Record, Reply, Scripts};

impl Worker {
    pub(crate) async fn script(
        &mut self,
        id: u64,
        name: ScriptName,
        args: Vec<String>,
    ) -> Result<Reply, Fail> {
        let limit = self.target.command_timeout();
        let Some(b) = self.breakers.get(&id) else {
            return Err(redis::RedisError::from((
                redis::ErrorKind::Client,
                "breaker unregistered",
            )));
        };
        let keys = b.keys.clone();
        let Some(link) = self.link.as_mut() else {
            return Err(redis::RedisError::from((
                redis::ErrorKind::Client,
                "not connected",
            )));
        };
        let script = self.scripts.get(name);
        let value = link.commands.run(limit, script, &keys.all(), &args).await?;
        Reply::parse(value).ok_or_else(|| {
            redis::RedisError::from((redis::ErrorKind::Parse, "unexpected fleet script reply"))
        })
    }

    /// Runs one op and adopts the record it returns.
    pub(crate) async fn apply(&mut self, id: u64, op: &Op) -> Result<(), Fail> {
        let Some(b) = self.breakers.get(&id) else {
            return Ok(());
        };
        let s = &b.spec;
        let channel = b.keys.state.clone();
        let (name, args) = match op {
            Op::Vote => (
                ScriptName::Vote,
                vec![
                    s.host_id.clone(),
                    s.quorum.to_string(),
                    s.vote_window_ms.to_string(),
                    s.open_ms.to_string(),
                ],
            ),
            Op::ProbeResult { token, ok } => (
                ScriptName::Result,
                vec![
                    token.clone(),
                    if *ok { "1" } else { "0" }.to_owned(),
                    s.open_ms.to_string(),
                    s.max_open_ms.to_string(),
                ],
            ),
            Op::Isolate => (ScriptName::Isolate, Vec::new()),
            Op::Release => (ScriptName::Release, Vec::new()),
            Op::Reset => (ScriptName::Reset, Vec::new()),
            Op::Disable(d) => (
                ScriptName::Disable,
                vec![if *d { "1" } else { "0" }.to_owned()],
            ),
            Op::RequestProbe => return Ok(()),
        };
        let reply = self.script(id, name, args).await?;
        self.adopt(&channel, reply.record, Force::No).await
    }

    /// Asks the store for the fleet's probe lease.
    pub(crate) async fn acquire(&mut self, id: u64) -> Result<(), Fail> {
        let Some(b) = self.breakers.get_mut(&id) else {
            return Ok(());
        };
        b.next_acquire = None;
        let lease_ms = b.spec.lease_ms;
        let channel = b.keys.state.clone();
        let args = vec![b.spec.host_id.clone(), lease_ms.to_string()];
        let reply = self.script(id, ScriptName::Acquire, args).await?;
        let record = reply.record.clone();
        self.adopt(&channel, reply.record, Force::No).await?;
        let now = Instant::now();
        let again = match reply.status.as_str() {
            "granted" => {
                if let Some(b) = self.breakers.get(&id) {
                    let lease = Lease {
                        token: reply.extra.clone(),
                        version: record.version,
                        lease_ms,
                    };
                    emit(&b.sink, FleetEvent::ProbeGranted { lease });
                }
                // Still open when the lease has run out: ask again.
                Some(after(now, lease_ms))
            }
            "busy" | "wait" => {
                let ms = reply.extra.parse::<u64>().unwrap_or(lease_ms);
                Some(after(now, ms.saturating_add(1 + self.random(10))))
            }
            _ => None,
        };
        if let Some(b) = self.breakers.get_mut(&id) {
            if record.probing()
                && b.known
                    .as_ref()
                    .is_some_and(|k| k.version == record.version)
            {
                b.next_acquire = again;
            }
        }
        Ok(())
    }

    /// Adopts a record for every breaker on `channel` if it is newer than
    /// what they know; `force` also sends the view when it is not newer. A
    /// record that vanished never closes a host: the host's open view is
    /// written back instead.
    pub(crate) async fn adopt(
        &mut self,
        channel: &str,
        record: Record,
        force: Force,
    ) -> Result<(), Fail> {
        let ids: Vec<u64> = self
            .breakers
            .iter()
            .filter(|(_, b)| b.keys.state == channel)
            .map(|(id, _)| *id)
            .collect();
        if ids.is_empty() {
            return Ok(());
        }
        if !record.exists() {
            let remembered = ids
                .iter()
                .filter_map(|id| self.breakers.get(id))
                .filter_map(|b| b.known.as_ref().map(|k| (k.clone(), b.retry_deadline)))
                .max_by_key(|(k, _)| k.version);
            if let Some((known, deadline)) = remembered {
                if known.exists() && (known.effectively_open() || known.disabled) {
                    let restored = self.restore(ids[0], &known, deadline).await?;
                    return Box::pin(self.adopt(channel, restored, force)).await;
                }
            }
        }
        let now = Instant::now();
        for id in ids {
            let Some(b) = self.breakers.get_mut(&id) else {
                continue;
            };
            let newer = match &b.known {
                None => true,
                Some(k) => record.version > k.version,
            };
            let same = b
                .known
                .as_ref()
                .is_some_and(|k| k.version == record.version);
            let forced = match force {
                Force::No => false,
                Force::All => true,
                Force::Only(only) => only == id,
            };
            if !(newer || (forced && (same || !record.exists()))) {
                continue;
            }
            if newer {
                b.known = Some(record.clone());
                if record.effectively_open() && record.open == Some(true) {
                    let at = after(now, record.retry_in_ms());
                    b.retry_deadline = Some(at);
                    b.next_acquire = record.probing().then_some(at);
                } else {
                    b.retry_deadline = None;
                    b.next_acquire = None;
                }
            }
            let shown = b.known.clone().unwrap_or(record.clone());
            emit(&b.sink, shown.event());
        }
        Ok(())
    }

    async fn restore(
        &mut self,
        id: u64,
        known: &Record,
        deadline: Option<Instant>,
    ) -> Result<Record, Fail> {
        let remaining = deadline.map_or(0, |d| {
            d.saturating_duration_since(Instant::now()).as_millis() as u64
        });
        let state = if known.open == Some(true) {
            "open"
        } else {
            "closed"
        };
        let args = vec![
            state.to_owned(),
            remaining.to_string(),
            known.reopenings.to_string(),
            known.isolations.to_string(),
            if known.disabled { "1" } else { "0" }.to_owned(),
        ];
        Ok(self.script(id, ScriptName::Restore, args).await?.record)
    }
}

/// Who gets a view that is not newer than what they know.
#[derive(Clone, Copy)]
pub(crate) enum Force {
    No,
    All,
    Only(u64),
}

#[derive(Clone, Copy)]
pub(crate) enum ScriptName {
    Read,
    Vote,
    Acquire,
    Result,
    Isolate,
    Release,
    Reset,
    Disable,
    Restore,
}

impl Scripts {
    fn get(&self, name: ScriptName) -> &redis::Script {
        match name {
            ScriptName::Read => &self.read,
            ScriptName::Vote => &self.vote,
            ScriptName::Acquire => &self.acquire,
            ScriptName::Result => &self.result,
            ScriptName::Isolate => &self.isolate,
            ScriptName::Release => &self.release,
            ScriptName::Reset => &self.reset,
            ScriptName::Disable => &self.disable,
            ScriptName::Restore => &self.restore,
        }
    }
}

/// `ms` after `now`; store times beyond a day (a corrupt record) count as a
/// day, so no deadline can overflow.
fn after(now: Instant, ms: u64) -> Instant {
    now + Duration::from_millis(ms.min(86_400_000))
}
