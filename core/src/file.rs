//! The format of a breaker file: the same slots as a `SharedArrayBuffer`
//! breaker, behind a small header, so processes can share one breaker by
//! mapping the same file.
//!
//! ```text
//!   bytes 0..8    magic "CBJSFILE"
//!   bytes 8..12   file format version (u32, little-endian)
//!   bytes 12..16  layout magic of the slots (LAYOUT_MAGIC, i32)
//!   bytes 16..20  slot count (u32)
//!   bytes 20..24  header length in bytes (u32) = where the slots start
//!   bytes 24..64  zero
//!   bytes 64..    the slots, 4 bytes each, starting zeroed: SLOT_COUNT, or
//!                 more when the breakers' options need optional regions
//! ```
//!
//! Opening a file checks all of it before anything is mapped or written, so a
//! file that is not exactly a breaker of this layout is refused untouched.

use crate::layout::{LAYOUT_MAGIC, LAYOUT_VERSION, SLOT_COUNT};

/// The first eight bytes of every breaker file.
pub const FILE_MAGIC: [u8; 8] = *b"CBJSFILE";
/// Version of this header format.
pub const FILE_VERSION: u32 = 1;
/// Header length; the slots start here, on a cache line.
pub const HEADER_BYTES: usize = 64;
/// Length of a breaker file of the base layout.
pub const FILE_BYTES: usize = HEADER_BYTES + SLOT_COUNT * 4;
/// Most slots a breaker file may hold (64 MiB of slots).
pub const MAX_FILE_SLOTS: usize = 1 << 24;

/// Length of a breaker file of `slots` slots.
pub fn file_bytes(slots: usize) -> usize {
    HEADER_BYTES + slots * 4
}

/// Why a file is not a breaker file this build can share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileError {
    /// Shorter than its header says (a truncated file, or not one at all).
    TooShort { length: u64 },
    /// The magic is not there: some other file.
    NotABreakerFile,
    /// A breaker file of another header version.
    Version { found: u32 },
    /// A breaker file of another slot layout or size.
    Layout { magic: i32, slots: u32, header: u32 },
    /// Longer than its header says.
    TooLong { length: u64, expected: u64 },
}

impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FileError::TooShort { length } => write!(
                f,
                "is {length} bytes long; a breaker file is at least {FILE_BYTES} bytes, \
                 as long as its header says (truncated, or not a breaker file)"
            ),
            FileError::NotABreakerFile => {
                write!(f, "is not a circuit-breaker-js file (no CBJSFILE magic)")
            }
            FileError::Version { found } => write!(
                f,
                "is a circuit-breaker-js file of format version {found}; this build reads version {FILE_VERSION}"
            ),
            FileError::Layout { magic, slots, header } => write!(
                f,
                "is a circuit-breaker-js file of another layout (layout {magic:#x}, {slots} slots, \
                 {header}-byte header); this build uses layout {LAYOUT_MAGIC:#x}, an even number of \
                 slots from {SLOT_COUNT} to {MAX_FILE_SLOTS}, {HEADER_BYTES}-byte header"
            ),
            FileError::TooLong { length, expected } => write!(
                f,
                "is {length} bytes long; its header says {expected} bytes"
            ),
        }
    }
}

impl std::error::Error for FileError {}

/// The whole content of a new breaker file: the header, then zeroed slots
/// with the layout already claimed.
pub fn new_file_image() -> Vec<u8> {
    new_file_image_of(SLOT_COUNT)
}

/// [`new_file_image`] with `slots` slots (even, from [`SLOT_COUNT`] to
/// [`MAX_FILE_SLOTS`]; clamped and rounded up to that).
pub fn new_file_image_of(slots: usize) -> Vec<u8> {
    let slots = slots.clamp(SLOT_COUNT, MAX_FILE_SLOTS).div_ceil(2) * 2;
    let mut image = vec![0u8; file_bytes(slots)];
    image[0..8].copy_from_slice(&FILE_MAGIC);
    image[8..12].copy_from_slice(&FILE_VERSION.to_le_bytes());
    image[12..16].copy_from_slice(&LAYOUT_MAGIC.to_le_bytes());
    image[16..20].copy_from_slice(&(slots as u32).to_le_bytes());
    image[20..24].copy_from_slice(&(HEADER_BYTES as u32).to_le_bytes());
    let claimed = HEADER_BYTES + LAYOUT_VERSION * 4;
    image[claimed..claimed + 4].copy_from_slice(&LAYOUT_MAGIC.to_le_bytes());
    image
}

/// Checks a file of `length` bytes whose first bytes are `header` (at least
/// [`HEADER_BYTES`] of them when the file is that long). Returns its number of slots.
pub fn check_file(header: &[u8], length: u64) -> Result<usize, FileError> {
    let field = |at: usize| -> u32 {
        let mut bytes = [0u8; 4];
        bytes.copy_from_slice(&header[at..at + 4]);
        u32::from_le_bytes(bytes)
    };
    if length < HEADER_BYTES as u64 || header.len() < HEADER_BYTES {
        return Err(FileError::TooShort { length });
    }
    if header[0..8] != FILE_MAGIC {
        return Err(FileError::NotABreakerFile);
    }
    let version = field(8);
    if version != FILE_VERSION {
        return Err(FileError::Version { found: version });
    }
    let (magic, slots, header_len) = (field(12) as i32, field(16), field(20));
    let slots_ok = (SLOT_COUNT..=MAX_FILE_SLOTS).contains(&(slots as usize)) && slots % 2 == 0;
    if magic != LAYOUT_MAGIC || !slots_ok || header_len as usize != HEADER_BYTES {
        return Err(FileError::Layout {
            magic,
            slots,
            header: header_len,
        });
    }
    let expected = file_bytes(slots as usize) as u64;
    if length < expected {
        return Err(FileError::TooShort { length });
    }
    if length > expected {
        return Err(FileError::TooLong { length, expected });
    }
    Ok(slots as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_image_passes_the_check() {
        let image = new_file_image();
        assert_eq!(image.len(), FILE_BYTES);
        assert_eq!(check_file(&image, image.len() as u64), Ok(SLOT_COUNT));
        let longer = new_file_image_of(SLOT_COUNT + 101);
        assert_eq!(
            check_file(&longer, longer.len() as u64),
            Ok(SLOT_COUNT + 102)
        );
        assert_eq!(FILE_BYTES % 8, 0);
    }

    #[test]
    fn every_kind_of_wrong_file_is_named() {
        let good = new_file_image();
        let length = good.len() as u64;
        assert_eq!(
            check_file(&good[..10], 10),
            Err(FileError::TooShort { length: 10 })
        );
        let mut other = good.clone();
        other[0] = b'X';
        assert_eq!(check_file(&other, length), Err(FileError::NotABreakerFile));
        let mut version = good.clone();
        version[8] = 9;
        assert_eq!(
            check_file(&version, length),
            Err(FileError::Version { found: 9 })
        );
        let mut layout = good.clone();
        layout[16..20].copy_from_slice(&7u32.to_le_bytes());
        assert!(matches!(
            check_file(&layout, length),
            Err(FileError::Layout { slots: 7, .. })
        ));
        assert_eq!(
            check_file(&good, length - 4),
            Err(FileError::TooShort { length: length - 4 })
        );
        assert_eq!(
            check_file(&good, length + 1),
            Err(FileError::TooLong {
                length: length + 1,
                expected: length
            })
        );
    }
}
