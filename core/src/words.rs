//! The packed words of the header, one small type each: its bits, its
//! invariants, its encoder and its decoders side by side. Every other module
//! reads and writes these words only through these types; `layout` says only
//! where each word lives.
//!
//! The types are plain values (`Copy` newtypes over the word): loading,
//! comparing and exchanging them is the caller's business, as is the
//! memory ordering.

use crate::layout::LOG_ENTRIES;

/// The three states, as stored in the low half of the [`ControlWord`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    Closed = 0,
    Open = 1,
    HalfOpen = 2,
}

impl State {
    pub const ALL: [State; 3] = [State::Closed, State::Open, State::HalfOpen];

    /// The name JavaScript sees (`'CLOSED' | 'OPEN' | 'HALF_OPEN'`).
    pub fn name(self) -> &'static str {
        match self {
            State::Closed => "CLOSED",
            State::Open => "OPEN",
            State::HalfOpen => "HALF_OPEN",
        }
    }

    /// The state a raw value stands for; `None` for anything else (a value
    /// JavaScript wrote).
    pub(crate) fn from_raw(raw: u32) -> Option<State> {
        match raw {
            0 => Some(State::Closed),
            1 => Some(State::Open),
            2 => Some(State::HalfOpen),
            _ => None,
        }
    }
}

/// The control word (slots `STATE`, `GENERATION`), one 64-bit atomic:
///
/// ```text
///   bits 63..32  generation   bumped by every transition the core makes
///   bits 31..0   state        0 CLOSED, 1 OPEN, 2 HALF_OPEN
/// ```
///
/// Invariants:
/// - The state sits in the low half, so JavaScript's
///   `Atomics.load(array, STATE)` reads the state alone.
/// - Every transition the core makes is one CAS from the word it decided on
///   to [`ControlWord::next`]: a transition decided on a stale read fails and
///   is decided again, and whatever is tagged with a generation (a probe's
///   ticket, a timer entry, a log entry) counts only for its own episode.
/// - JavaScript may store any 32-bit value into the state half and leaves the
///   generation alone: a state the core does not know reads as `None` and is
///   moved to OPEN by the next caller; an OPEN stored from JavaScript has no
///   [`TimerWord`] entry for its generation, so it is stamped by whoever sees
///   it first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ControlWord(pub u64);

impl ControlWord {
    #[inline]
    pub fn new(state: State, generation: u32) -> Self {
        ControlWord((u64::from(generation) << 32) | state as u64)
    }

    /// The state half as stored, whatever it holds.
    #[inline]
    pub fn state_raw(self) -> u32 {
        self.0 as u32
    }

    #[inline]
    pub fn state(self) -> Option<State> {
        State::from_raw(self.state_raw())
    }

    #[inline]
    pub fn is(self, state: State) -> bool {
        self.state_raw() == state as u32
    }

    #[inline]
    pub fn generation(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// The word a transition from `self` to `to` writes: the next generation.
    #[inline]
    pub fn next(self, to: State) -> Self {
        ControlWord::new(to, self.generation().wrapping_add(1))
    }
}

/// What a [`TimerWord`] entry stamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimerKind {
    /// When the breaker opened (state OPEN).
    Opened = 1,
    /// When the latest probe was admitted (state HALF_OPEN).
    Lease = 2,
}

/// The timer word (slots `TIMER`, `TIMER_HI`), one 64-bit atomic:
///
/// ```text
///   bits 63..46  tag    low 18 bits of the generation it was stamped for
///   bits 45..44  kind   0 none, 1 Opened, 2 Lease (see TimerKind)
///   bits 43..0   ms     the host's monotonic clock (Clock::mono_ms)
/// ```
///
/// It means something only while its tag equals the low 18 bits of the
/// current generation and its kind is the one the state expects:
///
/// ```text
///   state      entry for the generation           otherwise
///   OPEN       kind Opened: opened at `ms`        not stamped yet: the first
///                                                 caller to see it stamps it
///   HALF_OPEN  kind Lease: probe admitted at `ms` free: the next caller probes
/// ```
///
/// Invariants:
/// - Kind 0 never matches, so the zeroes of a fresh buffer are no entry for
///   generation 0.
/// - An entry for an older generation is harmless, so the word is only ever
///   written by CAS from a value read while the control word was unchanged:
///   a stale writer can never destroy the entry of a newer generation.
/// - `ms` is monotonic: stepping the wall clock moves no open period and no lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimerWord(pub u64);

/// Bits of a millisecond time in the timer word and in a [`LogInfo`].
const TIME_BITS: u32 = 44;
const TIME_MASK: u64 = (1 << TIME_BITS) - 1;
const TIMER_KIND_MASK: u64 = 0b11 << TIME_BITS;
const TIMER_TAG_SHIFT: u32 = TIME_BITS + 2;
const TIMER_TAG_MASK: u64 = (1 << (64 - TIMER_TAG_SHIFT)) - 1;

impl TimerWord {
    /// An entry of `kind` for `generation`, stamped at `ms`.
    #[inline]
    pub fn new(generation: u32, kind: TimerKind, ms: u64) -> Self {
        TimerWord(
            ((u64::from(generation) & TIMER_TAG_MASK) << TIMER_TAG_SHIFT)
                | ((kind as u64) << TIME_BITS)
                | (ms & TIME_MASK),
        )
    }

    /// The time stamped, if this is an entry of `kind` for `generation`.
    #[inline]
    pub fn entry(self, generation: u32, kind: TimerKind) -> Option<u64> {
        let tag_matches = (self.0 >> TIMER_TAG_SHIFT) == u64::from(generation) & TIMER_TAG_MASK;
        let kind_matches = (self.0 & TIMER_KIND_MASK) >> TIME_BITS == kind as u64;
        (tag_matches && kind_matches).then_some(self.0 & TIME_MASK)
    }
}

/// The probe word (slots `HALF_OPEN`, `HALF_OPEN_HI`), one 64-bit atomic:
///
/// ```text
///   bits 63..32  generation  the half-open episode it counts for
///   bits 31..16  running     probes admitted and not reported yet
///   bits 15..0   succeeded   probe successes reported in the episode
/// ```
///
/// Invariants:
/// - A word of another generation counts as (0, 0): a new episode starts
///   empty without anyone clearing the word.
/// - `running` never exceeds `halfOpenMaxCalls` and `succeeded` never exceeds
///   `successThreshold` (both at most [`crate::config::MAX_PROBES`], the
///   16-bit fields' largest value): admissions and results change it by CAS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProbeWord(pub u64);

impl ProbeWord {
    #[inline]
    pub fn new(generation: u32, running: u32, succeeded: u32) -> Self {
        ProbeWord(
            (u64::from(generation) << 32)
                | (u64::from(running & 0xffff) << 16)
                | u64::from(succeeded & 0xffff),
        )
    }

    #[inline]
    pub fn generation(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// The probes of episode `generation`: (running, succeeded); (0, 0) when
    /// the word belongs to another episode.
    #[inline]
    pub fn probes_of(self, generation: u32) -> (u32, u32) {
        if self.generation() == generation {
            (((self.0 >> 16) & 0xffff) as u32, (self.0 & 0xffff) as u32)
        } else {
            (0, 0)
        }
    }
}

/// Most isolations held at once: [`crate::Breaker::isolate`] refuses another.
pub const MAX_ISOLATIONS: u32 = u16::MAX as u32;

/// The isolation word (slots `ISOLATIONS`, `ISOLATIONS_HI`), one 64-bit atomic:
///
/// ```text
///   bits 63..16  epoch  bumped by every reset()
///   bits 15..0   count  isolate() handles not yet released
/// ```
///
/// Invariants:
/// - While `count` > 0 the breaker is held OPEN.
/// - `count` never exceeds [`MAX_ISOLATIONS`]: a taker that would overflow it
///   takes nothing.
/// - A handle is the epoch it was taken in and releases only in that epoch:
///   a handle from before a reset could match again only after 2^48 resets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IsolationWord(pub u64);

const ISOLATION_COUNT: u64 = MAX_ISOLATIONS as u64;

impl IsolationWord {
    #[inline]
    pub fn count(self) -> u32 {
        (self.0 & ISOLATION_COUNT) as u32
    }

    #[inline]
    pub fn epoch(self) -> u64 {
        self.0 >> 16
    }

    /// One more isolation, unless [`MAX_ISOLATIONS`] are held.
    pub fn taken(self) -> Option<Self> {
        (self.0 & ISOLATION_COUNT < ISOLATION_COUNT).then(|| IsolationWord(self.0 + 1))
    }

    /// One isolation of `epoch` fewer, if one of that epoch is held.
    pub fn released(self, epoch: u64) -> Option<Self> {
        (self.epoch() == epoch && self.count() > 0).then(|| IsolationWord(self.0 - 1))
    }

    /// No isolation held, in the next epoch.
    pub fn next_epoch(self) -> Self {
        IsolationWord((self.0 & !ISOLATION_COUNT).wrapping_add(ISOLATION_COUNT + 1))
    }
}

/// The mode word (slot `MODE`), a 32-bit atomic of switches. Bit 0 set: the
/// breaker is disabled (every call runs and nothing opens
/// it; counting goes on). Set and cleared with `fetch_or`/`fetch_and`, read
/// with read-modify-writes where a racing transition must see it (see
/// `machine`).
pub(crate) const MODE_DISABLED: i32 = 1;
/// Bit 1 of the mode word: while set the fleet holds the breaker OPEN, as an
/// isolation does (no local probe). A flag, not a count: every process of a
/// host sets and clears it alike (see `fleet`).
pub(crate) const MODE_FLEET_HOLD: i32 = 2;

/// Bits of an actor (who made a transition) in a [`LogHead`].
const ACTOR_BITS: u32 = 20;
pub(crate) const ACTOR_MASK: u32 = (1 << ACTOR_BITS) - 1;
const LOG_ACTOR_SHIFT: u32 = 8;
const LOG_STATE_MASK: u32 = 0xff;
const LOG_WRITING: u64 = 1 << 31;
const LOG_TAG_MASK: u64 = (1 << (64 - TIME_BITS)) - 1;

/// The head of a transition-log entry (its first 64-bit word; the entry of
/// generation `g` is entry `g % LOG_ENTRIES`):
///
/// ```text
///   bits 63..32  generation  the transition that made it
///   bit  31      writing     claimed by a writer, info not published yet
///   bits 30..28  (unused)
///   bits 27..8   actor       who made it (the binding's thread number)
///   bits 7..0    state       the state it moved to
/// ```
///
/// Invariants: an entry holds the newest generation that claimed it (a
/// writer of an older one writes nothing); a head with `writing` set, or
/// whose [`LogInfo`] or [`LogPid`] carries another generation, is not read. The protocol is in
/// `log`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LogHead(pub u64);

impl LogHead {
    /// The published head (not writing).
    #[inline]
    pub fn new(generation: u32, actor: u32, state: State) -> Self {
        LogHead(
            (u64::from(generation) << 32)
                | u64::from((actor & ACTOR_MASK) << LOG_ACTOR_SHIFT)
                | u64::from(state as u32),
        )
    }

    /// The same head, claimed by its writer.
    #[inline]
    pub fn claimed(self) -> Self {
        LogHead(self.0 | LOG_WRITING)
    }

    #[inline]
    pub fn is_writing(self) -> bool {
        self.0 & LOG_WRITING != 0
    }

    #[inline]
    pub fn generation(self) -> u32 {
        (self.0 >> 32) as u32
    }

    #[inline]
    pub fn state(self) -> Option<State> {
        State::from_raw(self.0 as u32 & LOG_STATE_MASK)
    }

    #[inline]
    pub fn actor(self) -> u32 {
        (self.0 as u32 >> LOG_ACTOR_SHIFT) & ACTOR_MASK
    }

    /// Where the entry of `generation` starts, in slots past `TRANSITION_LOG`.
    #[inline]
    pub fn offset(generation: u32) -> usize {
        (generation as usize % LOG_ENTRIES) * crate::layout::LOG_ENTRY_SLOTS
    }
}

/// The info of a transition-log entry (its second 64-bit word):
///
/// ```text
///   bits 63..44  tag   low 20 bits of the generation
///   bits 43..0   ms    wall clock, ms since the Unix epoch (0 unknown)
/// ```
///
/// Invariant: a writer replaces the info only when its tag is older (tags
/// wrap at 2^20, compared within half of that), so a newer writer's info stays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LogInfo(pub u64);

impl LogInfo {
    #[inline]
    pub fn new(generation: u32, ms: u64) -> Self {
        LogInfo((Self::tag_of(generation) << TIME_BITS) | (ms & TIME_MASK))
    }

    #[inline]
    fn tag_of(generation: u32) -> u64 {
        u64::from(generation) & LOG_TAG_MASK
    }

    #[inline]
    pub fn is_for(self, generation: u32) -> bool {
        self.0 >> TIME_BITS == Self::tag_of(generation)
    }

    #[inline]
    pub fn ms(self) -> u64 {
        self.0 & TIME_MASK
    }

    /// Whether this info belongs to a generation before `generation`.
    #[inline]
    pub fn precedes(self, generation: u32) -> bool {
        let distance = Self::tag_of(generation).wrapping_sub(self.0 >> TIME_BITS) & LOG_TAG_MASK;
        distance != 0 && distance <= LOG_TAG_MASK >> 1
    }
}

/// The writer's process of a transition-log entry (its third 64-bit word):
///
/// ```text
///   bits 63..32  generation  the transition it belongs to
///   bits 31..0   pid         the process that made it (0 unknown)
/// ```
///
/// Invariant: as for [`LogInfo`], a writer replaces it only when it belongs
/// to an older generation, so a newer writer's word stays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LogPid(pub u64);

impl LogPid {
    #[inline]
    pub fn new(generation: u32, pid: u32) -> Self {
        LogPid((u64::from(generation) << 32) | u64::from(pid))
    }

    #[inline]
    pub fn is_for(self, generation: u32) -> bool {
        (self.0 >> 32) as u32 == generation
    }

    #[inline]
    pub fn pid(self) -> u32 {
        self.0 as u32
    }

    /// Whether this word belongs to a generation before `generation`.
    #[inline]
    pub fn precedes(self, generation: u32) -> bool {
        precedes((self.0 >> 32) as u32, generation)
    }
}

/// Whether generation `a` comes before `b` (wrapping: within 2^31 of each other).
#[inline]
pub(crate) fn precedes(a: u32, b: u32) -> bool {
    (b.wrapping_sub(a) as i32) > 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timer_entry_matches_only_its_generation_and_kind() {
        let entry = TimerWord::new(7, TimerKind::Opened, 1234);
        assert_eq!(entry.entry(7, TimerKind::Opened), Some(1234));
        assert_eq!(entry.entry(7, TimerKind::Lease), None);
        assert_eq!(entry.entry(8, TimerKind::Opened), None);
        assert_eq!(entry.entry(7 + (1 << 18), TimerKind::Opened), Some(1234));
        assert_eq!(TimerWord(0).entry(0, TimerKind::Opened), None);
        assert_eq!(TimerWord(0).entry(0, TimerKind::Lease), None);
    }

    #[test]
    fn words_round_trip() {
        let control = ControlWord::new(State::HalfOpen, u32::MAX);
        assert_eq!(control.state(), Some(State::HalfOpen));
        assert_eq!(control.next(State::Open), ControlWord::new(State::Open, 0));
        let probes = ProbeWord::new(9, 3, 2);
        assert_eq!(
            (probes.probes_of(9), probes.probes_of(10)),
            ((3, 2), (0, 0))
        );
        let head = LogHead::new(5, 0xfffff, State::Open);
        assert_eq!(
            (head.generation(), head.actor(), head.state()),
            (5, 0xfffff, Some(State::Open))
        );
        assert!(head.claimed().is_writing() && !head.is_writing());
        let info = LogInfo::new(5, 99);
        assert!(info.is_for(5) && !info.is_for(6) && info.precedes(6) && !info.precedes(5));
        let pid = LogPid::new(5, u32::MAX);
        assert_eq!(pid.pid(), u32::MAX);
        assert!(pid.is_for(5) && !pid.is_for(6) && pid.precedes(6) && !pid.precedes(5));
        assert!(precedes(u32::MAX, 0) && !precedes(0, u32::MAX));
    }

    #[test]
    fn isolations_stop_at_the_most_and_release_only_in_their_epoch() {
        let mut word = IsolationWord(0);
        for _ in 0..MAX_ISOLATIONS {
            word = word.taken().expect("room");
        }
        assert_eq!(word.taken(), None);
        assert_eq!(word.released(1), None);
        let reset = word.next_epoch();
        assert_eq!((reset.epoch(), reset.count()), (1, 0));
        assert_eq!(
            word.released(0).map(|w| w.count()),
            Some(MAX_ISOLATIONS - 1)
        );
    }
}
