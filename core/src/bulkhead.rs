//! A bulkhead: at most `permits` calls in flight among every thread and
//! process sharing one memory, an optional wait queue of `places` waiting
//! calls, and permits of holders that died coming back after a lease.
//!
//! ```text
//!  slot  0..16   header, written once (by `claim`)
//!        4 CONFIG (+5)  64-bit: permits:16 | places:16 | BULKHEAD_MAGIC:32
//!                       (slot 5 is a breaker's LAYOUT_VERSION: a breaker
//!                       and a bulkhead refuse each other's memory)
//!  slot 16..32   the wake line: read by every release, written when calls queue
//!       16 QUEUED       waiting calls (places taken), a counter
//!       17 WAKE         bumped by a release that found QUEUED above 0;
//!                       waiters wait on it (`Atomics.waitAsync`)
//!  slot 32..48   counters, 64-bit, written only off the fast path
//!       32 REJECTED          calls refused (full, or waited queueTimeout)
//!       34 RECLAIMED         permits taken back from a holder past its lease
//!       36 QUEUE_TIMEOUTS    waiting calls that gave up (also REJECTED)
//!       38 LOST_RELEASES     releases of a permit already reclaimed
//!  slot 48 + 16*i   permit i, one 64-byte line each
//!        +0 HOLDER     generation (i32): even = free, odd = held
//!        +2 SEEN (+3)  64-bit: HOLDER word:32 | host ms:32 when a caller
//!                      that needed a permit first found it held so
//!  slot 48 + 16*permits + 4*j   queue place j
//!        +0 HOLDER, +2 SEEN    as for a permit
//! ```
//!
//! Taking a free permit is one compare-and-swap of its HOLDER word from
//! even `g` to `g + 1`; releasing it, from `g + 1` to `g + 2`. Each permit
//! has its own cache line, and a thread goes back to the permit it released
//! last, so threads that run calls side by side write different lines: the
//! only line every release reads is the wake line, which nobody writes
//! while nobody queues.
//!
//! Leases. A holder that dies (a terminated worker, a killed process) never
//! releases. No clock is read to take a permit: the lease counts from the
//! first time a caller needing a permit finds the permit held by the same
//! generation (it records the generation and the time in SEEN), so a permit
//! is reclaimed `lease` ms or more after it was taken, never sooner. A
//! permit reclaimed goes straight to the caller that reclaimed it (its
//! HOLDER moves from `g` to `g + 2`, still odd), exactly once: only one
//! compare-and-swap from `g` succeeds. The holder it was taken from, if it
//! was alive after all, finds its release refused (`Released::Lost`): it
//! frees nothing, so it cannot free the new holder's permit.
//!
//! Generations are 32-bit and wrap; a SEEN record could only be mistaken
//! for a later holder's after 2^31 uses of that one permit between two
//! looks at it. Times in SEEN are host ms modulo 2^32, compared by wrapping
//! difference: a SEEN time "ahead" of now (another process read the clock a
//! moment later, or a file kept across a reboot) restarts the count.
//!
//! Queue places follow the same rules, so a waiter that died gives its
//! place back after the lease too. QUEUED counts places taken: +1 by the
//! caller that took a free place, -1 by the one that freed it; a place
//! reclaimed changes hands without changing QUEUED.
//!
//! Waking. A waiter increments QUEUED, then reads WAKE, then tries for a
//! permit again, then waits for WAKE to move. A release frees its permit,
//! then reads QUEUED and, above 0, bumps WAKE. All of these are SeqCst, so
//! either the release sees the waiter in QUEUED (and WAKE moves, so the
//! wait returns) or the waiter's try comes after the release (and finds the
//! permit free): no waiter sleeps through a free permit. The loom models in
//! `tests/loom_bulkhead.rs` check it in every interleaving.

use crate::cells::{AtomicI32, AtomicU64, Cells};
use std::sync::atomic::Ordering::{Relaxed, SeqCst};

/// "BKH" and layout version 1, in the high half of CONFIG.
pub const BULKHEAD_MAGIC: u32 = 0x424b_4801;
/// Most permits, and most queue places, one bulkhead may have.
pub const MAX_PERMITS: u32 = 65_535;
/// Longest lease, ms (about 24.8 days): wrapping differences of 32-bit
/// times are exact below it.
pub const MAX_LEASE_MS: u32 = i32::MAX as u32;

pub const CONFIG: usize = 4;
pub const QUEUED: usize = 16;
pub const WAKE: usize = 17;
pub const REJECTED: usize = 32;
pub const RECLAIMED: usize = 34;
pub const QUEUE_TIMEOUTS: usize = 36;
pub const LOST_RELEASES: usize = 38;
/// First slot of permit 0.
pub const PERMIT_BASE: usize = 48;
/// Slots from one permit to the next: 64 bytes.
pub const PERMIT_STRIDE: usize = 16;
/// Slots from one queue place to the next.
pub const PLACE_STRIDE: usize = 4;
/// Offset of the HOLDER word in a permit or place.
pub const HOLDER: usize = 0;
/// Offset of the 64-bit SEEN record in a permit or place.
pub const SEEN: usize = 2;

/// Length of the array a bulkhead of `permits` permits and `places` queue
/// places needs (even).
pub const fn slots_needed(permits: u32, places: u32) -> usize {
    PERMIT_BASE + permits as usize * PERMIT_STRIDE + places as usize * PLACE_STRIDE
}

/// Why a bulkhead cannot be built.
#[derive(Debug, Clone, PartialEq)]
pub enum BulkheadError {
    /// `permits` is not from 1 to [`MAX_PERMITS`].
    Permits { got: f64 },
    /// `places` is not from 0 to [`MAX_PERMITS`].
    Places { got: f64 },
    /// The memory is shorter than the layout needs.
    TooShort { length: usize, required: usize },
    /// The memory serves a bulkhead of another size.
    Mismatch { permits: u32, places: u32 },
    /// The memory holds something that is not a bulkhead.
    Foreign { found: u64 },
}

/// In the core's words; the binding words them with the JavaScript options.
impl std::fmt::Display for BulkheadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BulkheadError::Permits { got } => {
                write!(f, "permits: an integer from 1 to {MAX_PERMITS}, got {got}")
            }
            BulkheadError::Places { got } => {
                write!(
                    f,
                    "queue places: an integer from 0 to {MAX_PERMITS}, got {got}"
                )
            }
            BulkheadError::TooShort { length, required } => {
                write!(f, "memory: {length} slots, {required} needed")
            }
            BulkheadError::Mismatch { permits, places } => {
                write!(
                    f,
                    "memory: a bulkhead of {permits} permits and {places} places"
                )
            }
            BulkheadError::Foreign { found } => write!(f, "memory: not a bulkhead ({found:#x})"),
        }
    }
}

impl std::error::Error for BulkheadError {}

/// Reads a count option: an integer from `min` to [`MAX_PERMITS`].
fn count(value: f64, min: f64) -> Option<u32> {
    (value.fract() == 0.0 && (min..=f64::from(MAX_PERMITS)).contains(&value))
        .then_some(value as u32)
}

/// The sizes of a bulkhead, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    pub permits: u32,
    pub places: u32,
}

impl Size {
    pub fn new(permits: f64, places: f64) -> Result<Size, BulkheadError> {
        let permits = count(permits, 1.0).ok_or(BulkheadError::Permits { got: permits })?;
        let places = count(places, 0.0).ok_or(BulkheadError::Places { got: places })?;
        Ok(Size { permits, places })
    }

    fn config(&self) -> u64 {
        u64::from(self.permits) | u64::from(self.places) << 16 | u64::from(BULKHEAD_MAGIC) << 32
    }

    fn from_config(word: u64) -> Option<Size> {
        let size = Size {
            permits: word as u32 & 0xffff,
            places: (word >> 16) as u32 & 0xffff,
        };
        ((word >> 32) as u32 == BULKHEAD_MAGIC && size.permits > 0).then_some(size)
    }

    /// Length of the array this size needs.
    pub fn slots_needed(&self) -> usize {
        slots_needed(self.permits, self.places)
    }
}

/// A permit or a queue place held: which one, and the HOLDER word its
/// holder wrote (odd).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hold {
    pub index: u32,
    pub word: i32,
}

impl Hold {
    /// As one number below 2^48, exact in a JavaScript number.
    pub fn token(&self) -> u64 {
        u64::from(self.index) << 32 | u64::from(self.word as u32)
    }

    pub fn from_token(token: u64) -> Hold {
        Hold {
            index: (token >> 32) as u32,
            word: token as u32 as i32,
        }
    }
}

/// How a permit (or place) was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// It was free.
    Free(Hold),
    /// Its holder's lease had run out: taken from it.
    Reclaimed(Hold),
}

impl Taken {
    pub fn hold(&self) -> Hold {
        match *self {
            Taken::Free(hold) | Taken::Reclaimed(hold) => hold,
        }
    }
}

/// What a release did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Released {
    /// Freed; `wake` if calls were waiting (WAKE was bumped: notify it).
    Freed { wake: bool },
    /// The permit had been reclaimed after the lease: nothing freed.
    Lost,
}

/// Everything `getStats()` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BulkheadStats {
    pub permits: u32,
    pub places: u32,
    /// Permits held now (by live holders, or dead ones not yet reclaimed).
    pub in_use: u32,
    /// Queue places taken now.
    pub queued: u32,
    pub rejected: u64,
    pub reclaimed: u64,
    pub queue_timeouts: u64,
    pub lost_releases: u64,
}

/// A bulkhead over shared memory.
pub struct Bulkhead<C> {
    cells: C,
    size: Size,
}

/// Marks `cells` (of `length` slots) as a bulkhead of `size`, or joins the
/// one already there.
pub fn claim<C: Cells>(cells: C, length: usize, size: Size) -> Result<Bulkhead<C>, BulkheadError> {
    let required = size.slots_needed();
    if length < required {
        return Err(BulkheadError::TooShort { length, required });
    }
    match cells
        .wide(CONFIG)
        .compare_exchange(0, size.config(), SeqCst, SeqCst)
    {
        Ok(_) => {}
        Err(found) if found == size.config() => {}
        Err(found) => {
            return Err(match Size::from_config(found) {
                Some(other) => BulkheadError::Mismatch {
                    permits: other.permits,
                    places: other.places,
                },
                None => BulkheadError::Foreign { found },
            })
        }
    }
    Ok(Bulkhead { cells, size })
}

/// Joins the bulkhead already in `cells` (of `length` slots), whatever its
/// size; `None` if there is none, or the memory is too short for it.
pub fn join<C: Cells>(cells: C, length: usize) -> Option<Bulkhead<C>> {
    // Too short to hold even the header: its CONFIG word is not there to read.
    if length < PERMIT_BASE {
        return None;
    }
    let size = Size::from_config(cells.wide(CONFIG).load(SeqCst))?;
    (length >= size.slots_needed()).then_some(Bulkhead { cells, size })
}

/// Where a set of holder slots (permits or places) lies.
#[derive(Clone, Copy)]
struct Row {
    base: usize,
    stride: usize,
    count: u32,
}

impl Row {
    /// Every index of the row once, from `start` (modulo the count) round.
    fn from(self, start: u32) -> impl Iterator<Item = u32> {
        let start = start.checked_rem(self.count).unwrap_or(0);
        (0..self.count).map(move |step| (start + step) % self.count)
    }
}

impl<C: Cells> Bulkhead<C> {
    pub fn size(&self) -> Size {
        self.size
    }

    pub fn cells(&self) -> &C {
        &self.cells
    }

    fn permits(&self) -> Row {
        Row {
            base: PERMIT_BASE,
            stride: PERMIT_STRIDE,
            count: self.size.permits,
        }
    }

    fn places(&self) -> Row {
        Row {
            base: PERMIT_BASE + self.size.permits as usize * PERMIT_STRIDE,
            stride: PLACE_STRIDE,
            count: self.size.places,
        }
    }

    fn holder(&self, row: Row, index: u32) -> &AtomicI32 {
        self.cells
            .word(row.base + index as usize * row.stride + HOLDER)
    }

    fn seen(&self, row: Row, index: u32) -> &AtomicU64 {
        self.cells
            .wide(row.base + index as usize * row.stride + SEEN)
    }

    /// Takes a free permit, trying permit `start` first (modulo the count),
    /// without reading a clock or reclaiming anything.
    pub fn try_acquire(&self, start: u32) -> Option<Hold> {
        self.take_free(self.permits(), start)
    }

    /// Takes a free permit, or else reclaims one whose holder's lease ran
    /// out: held by the same generation for `lease_ms` since a caller first
    /// found it so. `now_ms` is the host's monotonic clock; `start` as in
    /// [`Bulkhead::try_acquire`].
    pub fn acquire(&self, start: u32, lease_ms: u32, now_ms: u64) -> Option<Taken> {
        if let Some(hold) = self.take_free(self.permits(), start) {
            return Some(Taken::Free(hold));
        }
        let hold = self.reclaim(self.permits(), start, lease_ms, now_ms)?;
        self.cells.wide(RECLAIMED).fetch_add(1, Relaxed);
        Some(Taken::Reclaimed(hold))
    }

    /// Frees a permit taken by `acquire`. `Lost` if it was reclaimed since.
    pub fn release(&self, hold: Hold) -> Released {
        if hold.index >= self.size.permits || !self.free(self.permits(), hold) {
            self.cells.wide(LOST_RELEASES).fetch_add(1, Relaxed);
            return Released::Lost;
        }
        Released::Freed { wake: self.wake() }
    }

    /// After a permit was freed: bumps WAKE if calls wait. True if it did
    /// (the caller then notifies the waiters of WAKE).
    ///
    /// QUEUED is read with a read-modify-write (adding 0), so that the
    /// argument in "Waking" holds under acquire/release alone: loom models
    /// SeqCst as acquire/release, and with a plain load it finds the waiter
    /// asleep. JavaScript's `Atomics` are sequentially consistent, so the
    /// facade's own release reads QUEUED with `Atomics.load` and writes
    /// nothing on the wake line while nobody queues.
    pub fn wake(&self) -> bool {
        if self.cells.word(QUEUED).fetch_add(0, SeqCst) > 0 {
            self.cells.word(WAKE).fetch_add(1, SeqCst);
            true
        } else {
            false
        }
    }

    /// Takes a queue place (free, or reclaimed from a waiter past its
    /// lease); `None` when every place is taken by live waiters.
    pub fn enqueue(&self, start: u32, lease_ms: u32, now_ms: u64) -> Option<Hold> {
        if let Some(hold) = self.take_free(self.places(), start) {
            self.cells.word(QUEUED).fetch_add(1, SeqCst);
            return Some(hold);
        }
        self.reclaim(self.places(), start, lease_ms, now_ms)
    }

    /// Gives a queue place back. False if it had been reclaimed.
    pub fn dequeue(&self, hold: Hold) -> bool {
        if hold.index >= self.size.places || !self.free(self.places(), hold) {
            return false;
        }
        self.cells.word(QUEUED).fetch_sub(1, SeqCst);
        true
    }

    /// The WAKE sequence a waiter waits on.
    pub fn wake_sequence(&self) -> i32 {
        self.cells.word(WAKE).load(SeqCst)
    }

    /// Counts a refused call; `timed_out` if it had waited in the queue.
    pub fn count_rejection(&self, timed_out: bool) {
        self.cells.wide(REJECTED).fetch_add(1, Relaxed);
        if timed_out {
            self.cells.wide(QUEUE_TIMEOUTS).fetch_add(1, Relaxed);
        }
    }

    pub fn stats(&self) -> BulkheadStats {
        let held = |row: Row| {
            (0..row.count)
                .filter(|&i| self.holder(row, i).load(Relaxed) & 1 == 1)
                .count() as u32
        };
        BulkheadStats {
            permits: self.size.permits,
            places: self.size.places,
            in_use: held(self.permits()),
            queued: held(self.places()),
            rejected: self.cells.wide(REJECTED).load(Relaxed),
            reclaimed: self.cells.wide(RECLAIMED).load(Relaxed),
            queue_timeouts: self.cells.wide(QUEUE_TIMEOUTS).load(Relaxed),
            lost_releases: self.cells.wide(LOST_RELEASES).load(Relaxed),
        }
    }

    fn take_free(&self, row: Row, start: u32) -> Option<Hold> {
        for index in row.from(start) {
            let holder = self.holder(row, index);
            let word = holder.load(SeqCst);
            if word & 1 == 0 {
                let taken = word.wrapping_add(1);
                if holder.compare_exchange(word, taken, SeqCst, SeqCst).is_ok() {
                    return Some(Hold { index, word: taken });
                }
            }
        }
        None
    }

    fn free(&self, row: Row, hold: Hold) -> bool {
        hold.word & 1 == 1
            && self
                .holder(row, hold.index)
                .compare_exchange(hold.word, hold.word.wrapping_add(1), SeqCst, SeqCst)
                .is_ok()
    }

    /// Looks at every held slot of `row`: records the first sighting of a
    /// generation, and takes the first slot held by one generation for
    /// `lease_ms` since its first sighting.
    fn reclaim(&self, row: Row, start: u32, lease_ms: u32, now_ms: u64) -> Option<Hold> {
        let now = now_ms as u32;
        for index in row.from(start) {
            let holder = self.holder(row, index);
            let word = holder.load(SeqCst);
            if word & 1 == 0 {
                continue; // freed meanwhile: take_free's business next time
            }
            let seen = self.seen(row, index);
            let record = seen.load(SeqCst);
            let sighted = u64::from(word as u32) << 32 | u64::from(now);
            if (record >> 32) as u32 != word as u32 {
                // First sighting of this generation: the lease starts now.
                let _ = seen.compare_exchange(record, sighted, SeqCst, SeqCst);
                continue;
            }
            let elapsed = now.wrapping_sub(record as u32);
            if elapsed > MAX_LEASE_MS {
                // Seen "later" than now: restart the count from now.
                let _ = seen.compare_exchange(record, sighted, SeqCst, SeqCst);
                continue;
            }
            if elapsed < lease_ms {
                continue;
            }
            let taken = word.wrapping_add(2);
            if holder.compare_exchange(word, taken, SeqCst, SeqCst).is_ok() {
                return Some(Hold { index, word: taken });
            }
        }
        None
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::OwnedSlots;

    fn bulkhead(slots: &OwnedSlots, permits: u32, places: u32) -> Bulkhead<crate::Slots<'_>> {
        let cells = crate::Slots::any_length(slots.slots()).unwrap();
        claim(
            cells,
            cells.len(),
            Size::new(permits.into(), places.into()).unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn a_second_claim_of_another_size_is_refused() {
        let memory = OwnedSlots::with_len(slots_needed(4, 4));
        let _first = bulkhead(&memory, 2, 1);
        let cells = crate::Slots::any_length(memory.slots()).unwrap();
        let other = claim(cells, cells.len(), Size::new(3.0, 1.0).unwrap());
        assert_eq!(
            other.err(),
            Some(BulkheadError::Mismatch {
                permits: 2,
                places: 1
            })
        );
    }

    #[test]
    fn sizes_out_of_range_are_refused() {
        assert!(Size::new(0.0, 0.0).is_err());
        assert!(Size::new(1.5, 0.0).is_err());
        assert!(Size::new(f64::NAN, 0.0).is_err());
        assert!(Size::new(65_536.0, 0.0).is_err());
        assert!(Size::new(1.0, -1.0).is_err());
        assert!(Size::new(65_535.0, 65_535.0).is_ok());
    }

    #[test]
    fn a_token_round_trips() {
        let hold = Hold {
            index: 65_534,
            word: -7,
        };
        assert_eq!(Hold::from_token(hold.token()), hold);
        assert!(hold.token() < 1 << 48);
    }
}
