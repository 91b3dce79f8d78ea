//! The host's clocks, read lazily for one call into the core.
//!
//! Decisions (open periods, leases, time windows) use a clock that never
//! steps and that every thread and process of the host shares, so breakers
//! in several processes over one breaker file agree on it; the wall clock is
//! read only when a time users see is stored.
//!
//! ```text
//!   Linux     CLOCK_BOOTTIME     counts through suspend; one per host (and
//!                                per container without a time namespace)
//!   macOS     CLOCK_MONOTONIC    mach continuous time: counts through sleep
//!   Windows   GetTickCount64     ms since boot, counts through sleep
//!   other     CLOCK_MONOTONIC
//! ```

use breaker_core::ReadOnce;
use std::time::{SystemTime, UNIX_EPOCH};

/// Both clocks of the host, each read the first time a call asks for it.
pub(crate) type HostClock = ReadOnce<fn() -> u64, fn() -> u64>;

pub(crate) fn host_clock() -> HostClock {
    ReadOnce::new(host_ms, wall_ms)
}

/// Wall-clock ms since the Unix epoch, the scale of `Date.now()`.
pub(crate) fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// ms on the host's monotonic clock (see the table above).
pub(crate) fn host_ms() -> u64 {
    host_ns() / 1_000_000
}

/// ns on the host's monotonic clock (see the table above): what rate
/// limiters decide on.
#[cfg(unix)]
pub(crate) fn host_ns() -> u64 {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    const CLOCK: libc::clockid_t = libc::CLOCK_BOOTTIME;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    const CLOCK: libc::clockid_t = libc::CLOCK_MONOTONIC;
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; clock_gettime writes only
    // into it. It cannot fail for a clock the platform defines; if it did,
    // `ts` stays zero.
    unsafe { libc::clock_gettime(CLOCK, &mut ts) };
    (ts.tv_sec.max(0) as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec.max(0) as u64)
}

#[cfg(windows)]
pub(crate) fn host_ns() -> u64 {
    #[link(name = "kernel32")]
    extern "system" {
        fn GetTickCount64() -> u64;
    }
    // SAFETY: takes no arguments, cannot fail.
    unsafe { GetTickCount64() }.saturating_mul(1_000_000)
}

/// The clock that decides open periods, leases and time windows: ms on the
/// host's monotonic clock (CLOCK_BOOTTIME on Linux: ms since boot, suspend
/// included). Every thread and process of the host reads the same clock.
#[napi_derive::napi(catch_unwind)]
pub fn host_clock_ms() -> f64 {
    host_ms() as f64
}
