//! The transition log: the last [`LOG_ENTRIES`](crate::layout::LOG_ENTRIES) transitions, so a thread
//! that sees the generation move can learn what happened and when.
//!
//! Entry `g % LOG_ENTRIES` holds generation `g`, as three 64-bit words: a
//! [`LogHead`], a [`LogInfo`] and a [`LogPid`] (bits and invariants there).
//!
//! A writer can be held up for longer than `LOG_ENTRIES` transitions
//! (preempted, or its thread paused): the newest generation always keeps the
//! entry, so a late writer of an older one writes nothing. The entry is
//! claimed (head marked writing), then its info and process are written, then
//! the head is published; readers take only a published head whose info and
//! process both carry its generation.

use crate::cells::{AtomicU64, Cells};
use crate::layout::TRANSITION_LOG;
use crate::words::{precedes, LogHead, LogInfo, LogPid, State};
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed};

/// One entry of the transition log: the transition that made generation `generation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogEntry {
    pub generation: u32,
    /// The state it moved to.
    pub state: State,
    /// Wall-clock ms since the epoch when it was made (0 unknown).
    pub time_ms: u64,
    /// Who made it (the binding's thread number), 20 bits.
    pub actor: u32,
    /// The process it was made in (0 unknown).
    pub pid: u32,
}

fn entry_slot(generation: u32) -> usize {
    TRANSITION_LOG + LogHead::offset(generation)
}

/// The entry of `generation`, if the log still holds it and its writer has
/// finished writing it.
pub(crate) fn read<C: Cells>(cells: &C, generation: u32) -> Option<LogEntry> {
    let at = entry_slot(generation);
    let head = LogHead(cells.wide(at).load(Acquire));
    if head.generation() != generation || head.is_writing() {
        return None;
    }
    let info = LogInfo(cells.wide(at + 2).load(Acquire));
    let pid = LogPid(cells.wide(at + 4).load(Acquire));
    if cells.wide(at).load(Acquire) != head.0 || !info.is_for(generation) || !pid.is_for(generation)
    {
        return None;
    }
    Some(LogEntry {
        generation,
        state: head.state()?,
        time_ms: info.ms(),
        actor: head.actor(),
        pid: pid.pid(),
    })
}

/// What the transition log answers for one generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogRead {
    /// Its entry, written and published.
    Ready(LogEntry),
    /// Not written yet: the transition is a moment old, or its writer died
    /// mid-write (a process killed, over a breaker file).
    Pending,
    /// Overwritten: the log holds only the last `LOG_ENTRIES` transitions.
    Gone,
}

/// The entry of `generation`, and when it is not there, why: its writer has
/// not published it yet (the control word moves first, the entry a moment
/// later), or a newer generation holds its place.
pub(crate) fn read_or_why<C: Cells>(cells: &C, generation: u32) -> LogRead {
    if let Some(entry) = read(cells, generation) {
        return LogRead::Ready(entry);
    }
    let head = LogHead(cells.wide(entry_slot(generation)).load(Acquire));
    // The generation in the place now: older (not written yet), the same
    // (being written), or newer (overwritten), counted modulo 2^32.
    let ahead = head.generation().wrapping_sub(generation) as i32;
    if ahead > 0 {
        LogRead::Gone
    } else {
        LogRead::Pending
    }
}

/// Who makes a transition: the binding's thread number (20 bits kept) and
/// the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Actor {
    pub thread: u32,
    pub pid: u32,
}

/// Writes the entry of the transition that made `generation`, by `actor`,
/// at wall-clock `now_ms`. Transitions call it right after moving the
/// control word.
pub(crate) fn write<C: Cells>(cells: &C, actor: Actor, generation: u32, state: State, now_ms: u64) {
    let at = entry_slot(generation);
    let head = cells.wide(at);
    let published = LogHead::new(generation, actor.thread, state);
    let claim = published.claimed();
    let mut seen = head.load(Acquire);
    loop {
        if !precedes(LogHead(seen).generation(), generation) {
            return;
        }
        match head.compare_exchange_weak(seen, claim.0, AcqRel, Acquire) {
            Ok(_) => break,
            Err(now) => seen = now,
        }
    }
    // A newer writer's words stay: that writer has claimed the head too.
    replace_older(
        cells.wide(at + 2),
        LogInfo::new(generation, now_ms).0,
        |seen| LogInfo(seen).precedes(generation),
    );
    replace_older(
        cells.wide(at + 4),
        LogPid::new(generation, actor.pid).0,
        |seen| LogPid(seen).precedes(generation),
    );
    // Fails only if a newer writer claimed the entry meanwhile.
    let _ = head.compare_exchange(claim.0, published.0, AcqRel, Relaxed);
}

/// Stores `mine` in `word` unless the word holds a newer generation's value.
fn replace_older(word: &AtomicU64, mine: u64, older: impl Fn(u64) -> bool) {
    let mut seen = word.load(Acquire);
    while older(seen) {
        match word.compare_exchange_weak(seen, mine, AcqRel, Acquire) {
            Ok(_) => break,
            Err(now) => seen = now,
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::{Breaker, Config, OwnedSlots, Slots};

    #[test]
    fn a_log_writer_held_up_past_eight_transitions_writes_nothing() {
        let memory = OwnedSlots::new();
        let slots = Slots::new(memory.slots()).expect("owned slots are valid");
        let b = Breaker::new(slots, Config::new(1.0, 0.0).expect("valid")).with_actor(3, 4_000_001);
        for i in 0..12 {
            b.force_half_open_at(1_000 + i);
        }
        // Generation 4's writer comes back after generation 12 took its entry.
        let late = Actor { thread: 5, pid: 77 };
        write(&slots, late, 4, State::Open, 1_500);
        let kept = b
            .log_entry(12)
            .expect("the newest generation keeps its entry");
        assert_eq!(
            (kept.state, kept.time_ms, kept.actor, kept.pid),
            (State::HalfOpen, 1_011, 3, 4_000_001)
        );
        assert_eq!(b.log_entry(4), None);
    }
}

/// The log under loom: a writer held up past `LOG_ENTRIES` transitions
/// races the writer of the newest generation for the same entry, while a
/// reader (a listening thread) reads both generations. Run with the other
/// loom models (`npm run test:loom`).
#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use crate::cells::ModelCells;
    use loom::sync::Arc;
    use loom::thread;
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::sync::atomic::Ordering::Release;

    const TORN_ENTRY: &str =
        "INVARIANT whole-entry: a log entry was read with another writer's parts";
    const NEWEST_LOST: &str = "INVARIANT newest-kept: the newest generation lost its log entry";
    const T0: u64 = 1_764_000_000_000;

    type LogWrite = fn(&ModelCells, u32, State, u64);

    /// Each generation's writer runs in its own process, `PID0 + generation`.
    const PID0: u32 = 4_000_000;

    fn real_write(cells: &ModelCells, generation: u32, state: State, now: u64) {
        let actor = Actor {
            thread: generation,
            pid: PID0 + generation,
        };
        write(cells, actor, generation, state, now);
    }

    /// The pre-fix writer: info, then head, whatever the entry held.
    fn broken_write(cells: &ModelCells, generation: u32, state: State, now: u64) {
        let at = entry_slot(generation);
        cells
            .wide(at + 2)
            .store(LogInfo::new(generation, now).0, Release);
        cells
            .wide(at + 4)
            .store(LogPid::new(generation, PID0 + generation).0, Release);
        cells
            .wide(at)
            .store(LogHead::new(generation, generation, state).0, Release);
    }

    /// Generation 1 (OPEN at T0+1) and generation 9 (HALF_OPEN at T0+9) share
    /// entry 1. Whatever the reader gets is a whole entry of the generation it
    /// asked for; once both writers are done, generation 9 holds the entry.
    fn model(write: LogWrite) {
        let cells = Arc::new(ModelCells::new());
        let writers: Vec<_> = [(1, State::Open), (9, State::HalfOpen)]
            .into_iter()
            .map(|(generation, state)| {
                let cells = cells.clone();
                thread::spawn(move || write(&cells, generation, state, T0 + u64::from(generation)))
            })
            .collect();
        for (generation, want) in [(9, State::HalfOpen), (1, State::Open)] {
            if let Some(entry) = read(&*cells, generation) {
                assert!(
                    entry.state == want
                        && entry.time_ms == T0 + u64::from(generation)
                        && entry.actor == generation
                        && entry.pid == PID0 + generation,
                    "{TORN_ENTRY}: {entry:?}"
                );
            }
        }
        for writer in writers {
            writer.join().expect("writer");
        }
        let newest = read(&*cells, 9);
        assert!(
            newest.is_some_and(|e| e.state == State::HalfOpen
                && e.time_ms == T0 + 9
                && e.pid == PID0 + 9),
            "{NEWEST_LOST}: {newest:?}"
        );
        assert_eq!(read(&*cells, 1), None, "generation 1 is overwritten");
    }

    #[test]
    fn a_held_up_log_writer_never_overwrites_the_newest_entry_3_threads() {
        loom::model(|| model(real_write));
    }

    #[test]
    fn loom_catches_a_log_writer_that_overwrites_a_newer_entry() {
        let caught = catch_unwind(AssertUnwindSafe(|| loom::model(|| model(broken_write))));
        let payload = caught.expect_err("loom found nothing wrong with the broken writer");
        let message = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        assert!(message.contains(NEWEST_LOST), "another failure: {message}");
    }
}
