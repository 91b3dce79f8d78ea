//! The two clocks a breaker is told about. The core never reads a clock: every
//! call that needs the time is handed a [`Clock`] and asks it only for the
//! reading it uses.
//!
//! ```text
//!   mono_ms   a clock that never steps and that every thread and process of
//!             the host shares (CLOCK_BOOTTIME on Linux): decides open
//!             periods, half-open leases and time-window buckets
//!   wall_ms   ms since the Unix epoch, the scale of `Date.now()`: stored
//!             only for users to read (LAST_SUCCESS_TIME, LAST_FAILURE_TIME,
//!             the time of each transition-log entry)
//! ```
//!
//! So stepping the wall clock moves no decision. A monotonic stamp means
//! something only on the boot that wrote it; what the core does with one left
//! in a breaker file by an earlier boot is described at [`Clock::mono_ms`].

use std::cell::Cell;

/// Where a call gets the time. Readings are taken lazily by the caller's
/// implementation if it likes: a call asks for each reading only when it
/// needs it, and should get the same answer every time it asks.
pub trait Clock {
    /// Milliseconds on the host's monotonic clock.
    ///
    /// A stamp from an earlier boot (a breaker file kept across a reboot) is
    /// handled like any stamp: an OPEN breaker, or a half-open lease, stamped
    /// later than now restarts its wait from now; stamped earlier, its wait
    /// counts from that stamp (so it is usually over). A time-window bucket is
    /// read only when its epoch is one of the last B of now's, and a bucket
    /// holding calls whose epoch is ahead of now's by up to
    /// [`crate::window::AHEAD_WINDOWS`] windows keeps them (unread) until it
    /// is taken for an old one; see [`crate::window`].
    fn mono_ms(&self) -> u64;

    /// Milliseconds since the Unix epoch.
    fn wall_ms(&self) -> u64;
}

/// A stored wall-clock time as users see it at `now`: never later than now.
/// A time stored before the wall clock was stepped back reads as now until
/// the clock passes it again.
pub fn as_seen(stored_ms: u64, now: impl Clock) -> u64 {
    stored_ms.min(now.wall_ms())
}

/// A [`Clock`] over two reading functions, each called at most once, the
/// first time a call asks for its reading: a call that needs no wall-clock
/// time never reads the wall clock, and every question within one call gets
/// the same answer. The core still reads no clock: the functions are given.
pub struct ReadOnce<M, W> {
    read_mono: M,
    read_wall: W,
    mono: Cell<Option<u64>>,
    wall: Cell<Option<u64>>,
}

impl<M: Fn() -> u64, W: Fn() -> u64> ReadOnce<M, W> {
    pub fn new(read_mono: M, read_wall: W) -> Self {
        ReadOnce {
            read_mono,
            read_wall,
            mono: Cell::new(None),
            wall: Cell::new(None),
        }
    }
}

impl<M: Fn() -> u64, W: Fn() -> u64> Clock for ReadOnce<M, W> {
    fn mono_ms(&self) -> u64 {
        once(&self.mono, &self.read_mono)
    }

    fn wall_ms(&self) -> u64 {
        once(&self.wall, &self.read_wall)
    }
}

/// The reading kept in `kept`, taken with `read` if there is none yet.
fn once(kept: &Cell<Option<u64>>, read: impl Fn() -> u64) -> u64 {
    match kept.get() {
        Some(ms) => ms,
        None => {
            let ms = read();
            kept.set(Some(ms));
            ms
        }
    }
}

/// Both readings, taken already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    pub wall_ms: u64,
    pub mono_ms: u64,
}

impl Clock for Now {
    fn mono_ms(&self) -> u64 {
        self.mono_ms
    }

    fn wall_ms(&self) -> u64 {
        self.wall_ms
    }
}

/// One number read as both clocks: for callers (and tests) whose two clocks
/// agree.
impl Clock for u64 {
    fn mono_ms(&self) -> u64 {
        *self
    }

    fn wall_ms(&self) -> u64 {
        *self
    }
}

impl<T: Clock + ?Sized> Clock for &T {
    fn mono_ms(&self) -> u64 {
        (**self).mono_ms()
    }

    fn wall_ms(&self) -> u64 {
        (**self).wall_ms()
    }
}
