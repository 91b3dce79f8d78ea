//! The ops kept while the store is away, and their replay once it is back.

use std::time::Duration;

use tokio::time::Instant;

use super::worker::{Fail, Op, Worker};

/// Ops kept while the store is away, per breaker (the oldest are dropped).
const PENDING_MAX: usize = 1024;

impl Worker {
    /// Keeps an op for the store's return (in order; `front` puts back the
    /// one that just failed ahead of those that waited behind it).
    pub(crate) fn keep(&mut self, id: u64, at: Instant, op: Op, front: bool) {
        let Some(b) = self.breakers.get_mut(&id) else {
            return;
        };
        if front {
            b.pending.push_front((at, op));
        } else {
            b.pending.push_back((at, op));
        }
        while b.pending.len() > PENDING_MAX {
            b.pending.pop_front();
        }
    }

    /// Sends the ops kept while the store was away, oldest first. A vote
    /// older than its vote window no longer counts and is dropped.
    pub(crate) async fn replay(&mut self) -> Result<(), Fail> {
        let ids: Vec<u64> = self.breakers.keys().copied().collect();
        for id in ids {
            while let Some((window, (at, op))) = self
                .breakers
                .get_mut(&id)
                .and_then(|b| Some((b.spec.vote_window_ms, b.pending.pop_front()?)))
            {
                if matches!(op, Op::Vote) && at.elapsed() >= Duration::from_millis(window) {
                    continue;
                }
                if let Err(e) = self.apply(id, &op).await {
                    self.keep(id, at, op, true);
                    return Err(e);
                }
            }
        }
        Ok(())
    }
}
