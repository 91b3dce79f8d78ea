//! Breaker files: the slots of one breaker in a memory-mapped file, so that
//! processes (and the threads inside them) share one breaker.
//!
//! JavaScript opens or creates the file (with `fs`, so errors are Node's own)
//! and hands the descriptor to `mapFile`, which checks the whole header before
//! mapping anything, maps the file shared, and returns an `Int32Array` over its
//! slots. The mapping lives as long as anything holds it: the `ArrayBuffer`
//! (through its finalizer) and every breaker built over it (through an `Arc`),
//! so a breaker never sees its memory unmapped. The file is never deleted.
//!
//! A process maps each file once: opening a file that is already mapped
//! (the same device and inode, so any path or link to it) shares the live
//! mapping. An `ArrayBuffer`'s finalizer runs only when the event loop turns,
//! so a loop that opened and disposed a mapping of its own each time would
//! run out of mappings (`vm.max_map_count`) before any was released. The
//! inode cannot be reused while its mapping lives (the mapping holds the
//! file), so a live entry never names another file.

use napi::bindgen_prelude::Buffer;
use napi::sys;
use std::ffi::c_void;
use std::sync::{Arc, Mutex, Weak};

/// One shared mapping of a breaker file.
pub struct Mapping {
    address: usize,
    length: usize,
    /// The mapped file's device and inode.
    file: (u64, u64),
}

/// Every mapping alive in this process (one per file), so `map` can share
/// them and `create` can recognise an `Int32Array` over one (it is not a
/// `SharedArrayBuffer`, but it is shared memory that cannot move or shrink
/// while the mapping lives).
static MAPPINGS: Mutex<Vec<Weak<Mapping>>> = Mutex::new(Vec::new());

/// The live mapping that holds `length` bytes at `address`, if any.
pub fn mapping_containing(address: usize, length: usize) -> Option<Arc<Mapping>> {
    let mut mappings = MAPPINGS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    mappings.retain(|weak| weak.strong_count() > 0);
    mappings.iter().filter_map(Weak::upgrade).find(|mapping| {
        address >= mapping.address
            && address
                .checked_add(length)
                .is_some_and(|end| end <= mapping.address + mapping.length)
    })
}

#[cfg(unix)]
mod os {
    use super::{Mapping, MAPPINGS};
    use breaker_core::file::{check_file, HEADER_BYTES};
    use std::fs::File;
    use std::io;
    use std::mem::ManuallyDrop;
    use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt};
    use std::os::unix::io::FromRawFd;
    use std::sync::{Arc, Weak};

    /// Why a descriptor could not be mapped: an OS error, or a file that is
    /// not a breaker file of this layout.
    pub enum MapError {
        Io(io::Error),
        Format(breaker_core::file::FileError),
        NotAFile,
    }

    /// Checks the breaker file open as `fd` (read and write) and maps it, or
    /// shares this process's live mapping of it. The caller keeps ownership
    /// of `fd`.
    pub fn map(fd: i32) -> Result<Arc<Mapping>, MapError> {
        // SAFETY: the caller passes a descriptor it owns and keeps open for
        // this call; ManuallyDrop keeps `File` from closing it.
        let file = ManuallyDrop::new(unsafe { File::from_raw_fd(fd) });
        let metadata = file.metadata().map_err(MapError::Io)?;
        let kind = metadata.file_type();
        if !kind.is_file() || kind.is_fifo() || kind.is_socket() {
            return Err(MapError::NotAFile);
        }
        let length = metadata.len();
        let mut header = [0u8; HEADER_BYTES];
        let mut read = 0;
        while read < HEADER_BYTES && (read as u64) < length {
            match file.read_at(&mut header[read..], read as u64) {
                Ok(0) => break,
                Ok(n) => read += n,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(MapError::Io(error)),
            }
        }
        check_file(&header[..read], length).map_err(MapError::Format)?;
        let length = length as usize;
        let file = (metadata.dev(), metadata.ino());
        // Held while mapping, so two threads opening one file share one mapping.
        let mut mappings = MAPPINGS
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        mappings.retain(|weak| weak.strong_count() > 0);
        // A file rewritten to another length since it was mapped gets a
        // mapping of its new length.
        let live = mappings
            .iter()
            .filter_map(Weak::upgrade)
            .find(|mapping| mapping.file == file && mapping.length == length);
        if let Some(mapping) = live {
            return Ok(mapping);
        }
        // SAFETY: a fresh shared read-write mapping of `length` bytes of an
        // open regular file; the result is checked before use.
        let address = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                length,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            )
        };
        if address == libc::MAP_FAILED {
            return Err(MapError::Io(io::Error::last_os_error()));
        }
        let mapping = Arc::new(Mapping {
            address: address as usize,
            length,
            file,
        });
        mappings.push(Arc::downgrade(&mapping));
        Ok(mapping)
    }

    impl Drop for Mapping {
        fn drop(&mut self) {
            // SAFETY: the region was mapped by `map` and nothing refers to it
            // any more: every holder owned an `Arc` of this mapping.
            unsafe { libc::munmap(self.address as *mut libc::c_void, self.length) };
        }
    }
}

#[cfg(unix)]
pub use os::{map, MapError};

impl Mapping {
    /// Where the slots start: right after the file header.
    pub fn slots_address(&self) -> usize {
        self.address + breaker_core::file::HEADER_BYTES
    }

    /// How many slots the file holds.
    pub fn slot_count(&self) -> usize {
        (self.length - breaker_core::file::HEADER_BYTES) / 4
    }
}

#[cfg(not(unix))]
pub enum MapError {
    Unsupported,
}

/// Breaker files need `mmap`: Linux and macOS.
#[cfg(not(unix))]
pub fn map(_fd: i32) -> Result<Arc<Mapping>, MapError> {
    Err(MapError::Unsupported)
}

/// Reserves the blocks of the first `bytes` bytes of the new breaker file
/// open as `fd` before it is written, so that a full filesystem fails the
/// creation instead of leaving a sparse file whose mapping `SIGBUS`es its
/// users later. Returns 0, or the error number (`ENOSPC`, `EFBIG`, ...).
/// Where the system or filesystem has no `posix_fallocate`, reserves nothing
/// and returns 0.
#[napi_derive::napi(catch_unwind)]
pub fn reserve_file(fd: i32, bytes: u32) -> i32 {
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    {
        loop {
            // SAFETY: a system call on a descriptor number and a length (a
            // breaker file is at most 64 MiB, so it fits `off_t`); it reads
            // and writes no memory of this process.
            let error = unsafe { libc::posix_fallocate(fd, 0, bytes as libc::off_t) };
            match error {
                libc::EINTR => continue,
                libc::EOPNOTSUPP | libc::ENOSYS => return 0,
                error => return error,
            }
        }
    }
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
    {
        let _ = (fd, bytes);
        0
    }
}

/// `mapFile(fd)`: checks the breaker file open as `fd` and returns an
/// `Int32Array` over its slots, mapped shared. Throws an `Error` with `code`
/// `ERR_CIRCUIT_BREAKER_FILE` and a message that completes "the file ...".
pub(crate) unsafe extern "C" fn map_file(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    // SAFETY: forwarded from N-API with its live env and callback info.
    crate::hot::guarded(env, || unsafe { map_file_guarded(env, info) })
}

/// `map_file`'s body.
unsafe fn map_file_guarded(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    let mut fd = -1;
    // SAFETY: live callback arguments (N-API calls this with them).
    let ok = unsafe { crate::hot::arguments::<1>(env, info) }.is_some_and(|[value]| {
        // SAFETY: `value` is an argument handle of this call.
        let status = unsafe { sys::napi_get_value_int32(env, value, &mut fd) };
        status == sys::Status::napi_ok
    });
    if !ok || fd < 0 {
        // SAFETY: live env; static NUL-terminated strings.
        unsafe {
            sys::napi_throw_type_error(
                env,
                c"ERR_INVALID_ARG_TYPE".as_ptr(),
                c"fd must be an open file descriptor".as_ptr(),
            )
        };
        return std::ptr::null_mut();
    }
    let mapping = match map(fd) {
        Ok(mapping) => mapping,
        Err(error) => {
            let message = match error {
                #[cfg(unix)]
                MapError::Io(error) => format!("could not be mapped: {error}"),
                #[cfg(unix)]
                MapError::Format(error) => error.to_string(),
                #[cfg(unix)]
                MapError::NotAFile => "is not a regular file".to_string(),
                #[cfg(not(unix))]
                MapError::Unsupported => {
                    "cannot be shared here: breaker files need mmap (Linux, macOS)".to_string()
                }
            };
            let message = std::ffi::CString::new(message).unwrap_or_default();
            // SAFETY: live env; NUL-terminated strings that outlive the call.
            unsafe {
                sys::napi_throw_error(env, c"ERR_CIRCUIT_BREAKER_FILE".as_ptr(), message.as_ptr())
            };
            return std::ptr::null_mut();
        }
    };
    // SAFETY: live env; the mapping stays valid while the Arc in the hint lives.
    match unsafe { int32_array_over(env, mapping) } {
        Ok(array) => array,
        Err(_) => {
            // SAFETY: live env; static strings.
            unsafe {
                sys::napi_throw_error(
                    env,
                    c"ERR_CIRCUIT_BREAKER_FILE".as_ptr(),
                    c"could not be exposed as an Int32Array".as_ptr(),
                )
            };
            std::ptr::null_mut()
        }
    }
}

/// An `Int32Array` of the file's slots over an external `ArrayBuffer` whose
/// finalizer releases its share of the mapping.
///
/// # Safety
/// `env` must be live.
unsafe fn int32_array_over(
    env: sys::napi_env,
    mapping: Arc<Mapping>,
) -> napi::Result<sys::napi_value> {
    let slots = mapping.slots_address();
    let slot_count = mapping.slot_count();
    let hint = Box::into_raw(Box::new(mapping));
    let mut buffer = std::ptr::null_mut();
    // SAFETY: `slots` is valid for `slot_count` * 4 bytes while `hint` lives;
    // the finalizer frees `hint` exactly once.
    let status = unsafe {
        sys::napi_create_external_arraybuffer(
            env,
            slots as *mut c_void,
            slot_count * 4,
            Some(release_mapping),
            hint.cast(),
            &mut buffer,
        )
    };
    if status != sys::Status::napi_ok {
        // SAFETY: the buffer was not made, so the finalizer will never run.
        drop(unsafe { Box::from_raw(hint) });
        return crate::errors::check(status).map(|_| std::ptr::null_mut());
    }
    let mut array = std::ptr::null_mut();
    // SAFETY: live env; `buffer` was just made with room for the slots.
    crate::errors::check(unsafe {
        sys::napi_create_typedarray(
            env,
            sys::TypedarrayType::int32_array,
            slot_count,
            buffer,
            0,
            &mut array,
        )
    })?;
    Ok(array)
}

unsafe extern "C" fn release_mapping(_env: sys::napi_env, _data: *mut c_void, hint: *mut c_void) {
    // SAFETY: `hint` is the Box made in `int32_array_over`, freed only here.
    let mapping = unsafe { Box::from_raw(hint.cast::<Arc<Mapping>>()) };
    // A panic must not unwind into N-API; a finalizer has nobody to tell.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(mapping)));
}

/// The whole content of a new breaker file of `slots` slots: header and zeroed slots.
#[napi_derive::napi(catch_unwind)]
pub fn file_image(slots: u32) -> Buffer {
    breaker_core::file::new_file_image_of(slots as usize).into()
}
