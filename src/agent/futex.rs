//! Shared (non-private) futexes on a word of a breaker file's mapping: the
//! mapping is `MAP_SHARED`, so a waiter in one process is woken by a writer
//! in another. Linux only; elsewhere `SUPPORTED` is false and the JavaScript
//! watch keeps its poll.

use std::sync::atomic::AtomicI32;

#[cfg(target_os = "linux")]
pub const SUPPORTED: bool = true;
#[cfg(not(target_os = "linux"))]
pub const SUPPORTED: bool = false;

/// Sleeps while `word` holds `expected`, with no timeout. Returns at once if
/// it holds something else; may also return spuriously (the caller reloads).
#[cfg(target_os = "linux")]
pub fn wait(word: &AtomicI32, expected: i32) {
    // SAFETY: `word` is a live, aligned 4-byte atomic; FUTEX_WAIT only reads
    // it (atomically, in the kernel) and sleeps. A null timeout waits forever.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            std::ptr::null::<libc::timespec>(),
        );
    }
}

/// Wakes every waiter on `word`, in any process that maps it.
#[cfg(target_os = "linux")]
pub fn wake(word: &AtomicI32) {
    // SAFETY: as in `wait`; FUTEX_WAKE does not touch the word's content.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, i32::MAX);
    }
}

#[cfg(not(target_os = "linux"))]
pub fn wait(_word: &AtomicI32, _expected: i32) {}

#[cfg(not(target_os = "linux"))]
pub fn wake(_word: &AtomicI32) {}
