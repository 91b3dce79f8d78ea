//! A failure-rate window in shared memory: how many of the recent calls
//! failed, kept by every thread and process sharing the breaker.
//!
//! Two kinds, chosen by [`WindowSpec`]:
//!
//! ```text
//!  Count { calls: N }                    the last N calls
//!    base+0  CURSOR (+1 _HI)             positions handed out, ever (64-bit)
//!    base+2  CALLS                       non-empty entries in the ring
//!    base+3  BAD                         bad entries in the ring
//!    base+4 .. base+4+N                  ring: 0 empty, 1 good, 2 bad
//!
//!  Time { ms, buckets: B }               the last B buckets of w = ceil(ms / B) ms
//!    base+4b    CALLS of bucket b        64-bit, epoch:24 | count:40
//!    base+4b+2  BAD of bucket b          64-bit, epoch:24 | count:40
//! ```
//!
//! Count window: a caller claims positions with one `fetch_add` on CURSOR,
//! `swap`s each entry to its outcome and adds to CALLS and BAD what the swaps
//! changed (new entry minus old). Every change to an entry is thus counted
//! exactly once, whatever the interleaving, so once the callers have stopped
//! CALLS and BAD equal what the ring holds. While they run, a reader may see
//! a counter a little ahead of or behind the ring (even negative, or BAD above
//! CALLS): [`read`] clamps.
//!
//! Time window: `now_ms` is the host's monotonic clock (see
//! [`crate::clock`]), so stepping the wall clock neither ages nor empties
//! it. Time `t = now_ms / w` is epoch `t mod 2^24` in bucket
//! `t mod B`. A word whose epoch is the caller's is bumped with `fetch_add`;
//! an older (or empty) one is replaced by `(epoch, n)` with a CAS; one with
//! calls in it that is ahead of the caller by at most [`AHEAD_WINDOWS`]
//! windows (the caller read the clock before another caller who recorded
//! first) is left alone and the calls are not counted. A word further ahead
//! than that is taken as older, so stamps of an earlier boot (a breaker file
//! kept across a reboot), or a 24-bit epoch that wrapped while the breaker
//! sat idle, cost at most a few windows of counts and never stop the window
//! for long. A reader sums the words whose age is below B (a
//! BAD word only while its epoch is its bucket's CALLS word's).
//!
//! Known limit of 24-bit epochs: a bucket left untouched for exactly a
//! multiple of 2^24 bucket widths (4.6 hours at w = 1 ms) looks current
//! again, and its old counts are read until the bucket is next written.
//!
//! All counters are plain `Relaxed` atomics: nothing else is published
//! through them, and a reader tolerates any momentary mix of old and new.
//! Any slot contents, junk included, are read without panicking.

use crate::cells::Cells;
use std::sync::atomic::Ordering::Relaxed;

/// Largest count window, in calls.
pub const MAX_WINDOW_CALLS: u32 = 100_000;
/// Largest time window, in ms (about 24.8 days).
pub const MAX_WINDOW_MS: u32 = i32::MAX as u32;
/// Most buckets a time window may have.
pub const MAX_WINDOW_BUCKETS: u32 = 255;

/// A failure-rate window kept in shared memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowSpec {
    /// The last `calls` calls.
    Count { calls: u32 },
    /// The last `ms` milliseconds, in `buckets` buckets of `ms / buckets`
    /// (rounded up) each.
    Time { ms: u32, buckets: u32 },
}

impl WindowSpec {
    /// Checks the limits: 1..=MAX_WINDOW_CALLS calls; 1..=MAX_WINDOW_MS ms in
    /// 1..=MAX_WINDOW_BUCKETS buckets, no more buckets than ms.
    pub fn is_valid(&self) -> bool {
        match *self {
            WindowSpec::Count { calls } => (1..=MAX_WINDOW_CALLS).contains(&calls),
            WindowSpec::Time { ms, buckets } => {
                (1..=MAX_WINDOW_MS).contains(&ms)
                    && (1..=MAX_WINDOW_BUCKETS).contains(&buckets)
                    && buckets <= ms
            }
        }
    }

    /// Slots the window occupies (always even).
    pub fn slots(&self) -> usize {
        slots(self)
    }
}

/// What a window holds now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WindowCounts {
    /// Calls recorded in the window.
    pub calls: u64,
    /// Of those, failures (and slow calls).
    pub bad: u64,
}

/// Count window: the 64-bit cursor.
pub const CURSOR: usize = 0;
/// Count window: non-empty entries in the ring.
pub const CALLS: usize = 2;
/// Count window: bad entries in the ring.
pub const BAD: usize = 3;
/// Count window: first entry of the ring.
pub const RING: usize = 4;
/// Ring entry: no call.
pub const EMPTY: i32 = 0;
/// Ring entry: a good call.
pub const GOOD: i32 = 1;
/// Ring entry: a bad call (failure or slow call).
pub const BAD_ENTRY: i32 = 2;

/// Time window: slots per bucket (two 64-bit words, CALLS then BAD).
pub const BUCKET_SLOTS: usize = 4;
/// Bits of a time-window word holding the count (the epoch is above them).
pub const COUNT_BITS: u32 = 40;
/// Bits of the epoch of a time-window word.
pub const EPOCH_BITS: u32 = 24;
/// How far ahead, in windows, a bucket's epoch may be of the caller's before
/// the caller takes it for an old one (a stamp of an earlier boot, or an
/// epoch that wrapped around while the breaker was idle).
pub const AHEAD_WINDOWS: u64 = 4;

const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;
const EPOCH_MASK: u64 = (1 << EPOCH_BITS) - 1;
/// Largest count added to a time-window word at once, so that even a huge
/// batch cannot carry into the epoch of a word holding a sane count.
const MAX_ADD: u64 = 1 << 32;

/// Slots a window of `spec` occupies (even).
pub fn slots(spec: &WindowSpec) -> usize {
    match *spec {
        WindowSpec::Count { calls } => RING + (calls as usize).div_ceil(2) * 2,
        WindowSpec::Time { buckets, .. } => BUCKET_SLOTS * buckets as usize,
    }
}

/// Width of one time-window bucket in ms: `ceil(ms / buckets)`, at least 1.
pub fn bucket_width_ms(ms: u32, buckets: u32) -> u64 {
    u64::from(ms).div_ceil(u64::from(buckets.max(1))).max(1)
}

/// Records `good` good and `bad` bad calls that ended at `now_ms`.
///
/// In a count window the batch takes consecutive positions, the good calls
/// first, so when a batch is longer than the window the bad calls are the
/// ones kept. A spec that is not valid records nothing.
pub fn record<C: Cells>(
    cells: &C,
    base: usize,
    spec: &WindowSpec,
    good: u64,
    bad: u64,
    now_ms: u64,
) {
    if !spec.is_valid() {
        return;
    }
    match *spec {
        WindowSpec::Count { calls } => record_count(cells, base, u64::from(calls), good, bad),
        WindowSpec::Time { ms, buckets } => {
            let now = TimePoint::new(ms, buckets, now_ms);
            let bucket = base + BUCKET_SLOTS * now.bucket;
            if good.saturating_add(bad) > 0 {
                add(cells, bucket, &now, good.saturating_add(bad));
            }
            if bad > 0 {
                add(cells, bucket + 2, &now, bad);
            }
        }
    }
}

/// [`record`], then [`read`]: what an outcome that may open the breaker
/// needs, in one call.
#[inline]
pub fn record_and_read<C: Cells>(
    cells: &C,
    base: usize,
    spec: &WindowSpec,
    good: u64,
    bad: u64,
    now_ms: u64,
) -> WindowCounts {
    record(cells, base, spec, good, bad, now_ms);
    read(cells, base, spec, now_ms)
}

/// The calls in the window at `now_ms` (`bad <= calls`; a count window never
/// reports more than its size).
pub fn read<C: Cells>(cells: &C, base: usize, spec: &WindowSpec, now_ms: u64) -> WindowCounts {
    if !spec.is_valid() {
        return WindowCounts::default();
    }
    match *spec {
        WindowSpec::Count { calls } => {
            let size = i64::from(calls);
            let counted = i64::from(cells.word(base + CALLS).load(Relaxed)).clamp(0, size);
            let bad = i64::from(cells.word(base + BAD).load(Relaxed)).clamp(0, counted);
            WindowCounts {
                calls: counted as u64,
                bad: bad as u64,
            }
        }
        WindowSpec::Time { ms, buckets } => {
            let now = TimePoint::new(ms, buckets, now_ms);
            let mut counts = WindowCounts::default();
            for b in 0..buckets as usize {
                let bucket = base + BUCKET_SLOTS * b;
                let calls = cells.wide(bucket).load(Relaxed);
                let bad = cells.wide(bucket + 2).load(Relaxed);
                counts.calls += now.live_count(calls);
                // Bad calls count with the calls of their epoch only: a
                // bucket whose CALLS word moved on has dropped them too.
                if bad >> COUNT_BITS == calls >> COUNT_BITS {
                    counts.bad += now.live_count(bad);
                }
            }
            counts.bad = counts.bad.min(counts.calls);
            counts
        }
    }
}

/// Forgets every call recorded so far. Calls recorded concurrently may or may
/// not survive, but a count window's counters still match its ring once every
/// caller has stopped.
pub fn clear<C: Cells>(cells: &C, base: usize, spec: &WindowSpec, _now_ms: u64) {
    if !spec.is_valid() {
        return;
    }
    match *spec {
        WindowSpec::Count { calls } => {
            let mut delta = Delta::default();
            for i in 0..calls as usize {
                let old = cells.word(base + RING + i).swap(EMPTY, Relaxed);
                delta.replace(old, EMPTY);
            }
            delta.apply(cells, base);
        }
        WindowSpec::Time { buckets, .. } => {
            // One read-modify-write per word: a concurrent `fetch_add` or
            // CAS is either before it (cleared) or after it (kept), never lost
            // half-way, and the epoch stays so the rules above still hold.
            for word in 0..2 * buckets as usize {
                cells.wide(base + 2 * word).fetch_and(!COUNT_MASK, Relaxed);
            }
        }
    }
}

/// What swaps did to the ring, to add to CALLS and BAD.
#[derive(Default)]
struct Delta {
    calls: i64,
    bad: i64,
}

impl Delta {
    /// An entry went from `old` to `new`. Only [`GOOD`] and [`BAD_ENTRY`]
    /// count as calls; junk counts as empty, the same way on the way out.
    fn replace(&mut self, old: i32, new: i32) {
        let call = |v: i32| i64::from(v == GOOD || v == BAD_ENTRY);
        let bad = |v: i32| i64::from(v == BAD_ENTRY);
        self.calls += call(new) - call(old);
        self.bad += bad(new) - bad(old);
    }

    fn apply<C: Cells>(&self, cells: &C, base: usize) {
        // |delta| <= MAX_WINDOW_CALLS, so the casts are exact; the counters
        // themselves wrap if junk put them near the ends of i32.
        if self.calls != 0 {
            cells
                .word(base + CALLS)
                .fetch_add(self.calls as i32, Relaxed);
        }
        if self.bad != 0 {
            cells.word(base + BAD).fetch_add(self.bad as i32, Relaxed);
        }
    }
}

fn record_count<C: Cells>(cells: &C, base: usize, size: u64, good: u64, bad: u64) {
    let total = good.saturating_add(bad);
    if total == 0 {
        return;
    }
    let start = cells.wide(base + CURSOR).fetch_add(total, Relaxed);
    // Only the last `size` positions of the batch survive it: write those,
    // the bad calls last (`total` may have saturated: count from the end).
    let kept = total.min(size);
    let good_kept = kept - bad.min(kept);
    let first = start.wrapping_add(total - kept);
    let mut delta = Delta::default();
    for j in 0..kept {
        let outcome = if j < good_kept { GOOD } else { BAD_ENTRY };
        let index = first.wrapping_add(j) % size;
        let old = cells
            .word(base + RING + index as usize)
            .swap(outcome, Relaxed);
        delta.replace(old, outcome);
    }
    delta.apply(cells, base);
}

/// The caller's time, as a time window sees it.
struct TimePoint {
    /// `(now_ms / w) mod 2^24`.
    epoch: u64,
    /// `(now_ms / w) mod B`.
    bucket: usize,
    /// B.
    buckets: u64,
}

impl TimePoint {
    fn new(ms: u32, buckets: u32, now_ms: u64) -> Self {
        let t = now_ms / bucket_width_ms(ms, buckets);
        let buckets = u64::from(buckets.max(1));
        TimePoint {
            epoch: t & EPOCH_MASK,
            bucket: (t % buckets) as usize,
            buckets,
        }
    }

    /// Bucket widths from `word`'s epoch to ours, modulo 2^24.
    fn age(&self, word: u64) -> u64 {
        self.epoch.wrapping_sub(word >> COUNT_BITS) & EPOCH_MASK
    }

    /// `word`'s count if its epoch lies inside the window, else 0.
    fn live_count(&self, word: u64) -> u64 {
        if self.age(word) < self.buckets {
            word & COUNT_MASK
        } else {
            0
        }
    }

    /// Whether `word`'s epoch is ahead of ours, by little enough to be
    /// trusted (see [`AHEAD_WINDOWS`]).
    fn is_behind(&self, word: u64) -> bool {
        let ahead = (word >> COUNT_BITS).wrapping_sub(self.epoch) & EPOCH_MASK;
        ahead != 0 && ahead <= AHEAD_WINDOWS * self.buckets
    }
}

/// Adds `n` to the time-window word at `index` for the caller's epoch.
fn add<C: Cells>(cells: &C, index: usize, now: &TimePoint, n: u64) {
    let n = n.min(MAX_ADD);
    let word = cells.wide(index);
    let mut current = word.load(Relaxed);
    loop {
        if current >> COUNT_BITS == now.epoch {
            // Same epoch: a plain add. Should another caller roll the bucket
            // on between the load and the add (only after B widths have
            // passed), these calls land in the new epoch: counted a little
            // late, never lost or double counted. (A count of 2^40 in one
            // bucket would carry into the epoch: the word then reads as ahead,
            // harmless and unreachable in practice.)
            word.fetch_add(n, Relaxed);
            return;
        }
        // A word ahead of us with calls in it keeps them. An empty one
        // (fresh memory is epoch 0) loses nothing by being taken over.
        if current & COUNT_MASK != 0 && now.is_behind(current) {
            return;
        }
        // Older, empty or junk: start the bucket afresh. Losing the CAS means
        // another caller changed the word: look again.
        match word.compare_exchange_weak(current, now.epoch << COUNT_BITS | n, Relaxed, Relaxed) {
            Ok(_) => return,
            Err(actual) => current = actual,
        }
    }
}
