//! The board's NOR flash: a host file (`flash.bin`, 64 pages of 4 KiB) reached through
//! semihosting, with NOR rules enforced here as on the RP2350's QSPI flash:
//!
//! * erase works on whole, aligned 4 KiB pages and sets them to `0xFF`;
//! * programming works on aligned 4-byte words and can only clear bits (new = old AND data);
//! * every operation goes to the file before it returns (the host `write(2)` has completed),
//!   so a mark the store reports durable survives QEMU being killed.
//!
//! QEMU models no flash on the mps2 machines (`-drive if=pflash` is refused), hence the file.

use embedded_storage_async::nor_flash::{
    ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};

use crate::semihost::{HostError, HostFile, Open};

/// Erase page.
pub const PAGE: usize = 4096;
/// Program word.
pub const WORD: usize = 4;
/// Pages in the region (256 KiB, as the RP2350 image reserves).
pub const PAGES: usize = 64;
/// Bytes in the region.
pub const SIZE: usize = PAGE * PAGES;

/// Bytes moved per semihosting call.
const CHUNK: usize = 256;

/// Why a flash operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlashError {
    /// Outside the region.
    OutOfBounds,
    /// Not aligned to a word (program) or a page (erase).
    NotAligned,
    /// The host file could not be read or written.
    Host,
}

impl From<HostError> for FlashError {
    fn from(_: HostError) -> Self {
        FlashError::Host
    }
}

impl NorFlashError for FlashError {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            FlashError::OutOfBounds => NorFlashErrorKind::OutOfBounds,
            FlashError::NotAligned => NorFlashErrorKind::NotAligned,
            FlashError::Host => NorFlashErrorKind::Other,
        }
    }
}

/// The flash file.
pub struct HostFlash {
    file: HostFile,
}

impl HostFlash {
    /// Open `flash.bin` in the state directory, creating an erased one on first boot. A file
    /// shorter than the region (a first boot killed while erasing) is completed with erased
    /// pages; a longer one is refused.
    pub fn open() -> Result<HostFlash, FlashError> {
        let path = c"flash.bin";
        let file = match HostFile::open(path, Open::ReadWrite) {
            Ok(f) => f,
            Err(_) => {
                drop(HostFile::open(path, Open::Create)?);
                HostFile::open(path, Open::ReadWrite)?
            }
        };
        let mut flash = HostFlash { file };
        let len = flash.file.size()?;
        if len > SIZE {
            return Err(FlashError::OutOfBounds);
        }
        // Bytes past the end were never programmed: they are erased.
        let erased = [0xFF; CHUNK];
        let mut at = len;
        while at < SIZE {
            let n = (SIZE - at).min(CHUNK);
            flash.file.write_at(at, &erased[..n])?;
            at += n;
        }
        Ok(flash)
    }

    fn range(offset: u32, len: usize) -> Result<usize, FlashError> {
        let from = usize::try_from(offset).map_err(|_| FlashError::OutOfBounds)?;
        let to = from.checked_add(len).ok_or(FlashError::OutOfBounds)?;
        if to > SIZE {
            return Err(FlashError::OutOfBounds);
        }
        Ok(from)
    }
}

impl ErrorType for HostFlash {
    type Error = FlashError;
}

impl ReadNorFlash for HostFlash {
    const READ_SIZE: usize = 1;

    async fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), FlashError> {
        let from = Self::range(offset, bytes.len())?;
        for (i, chunk) in bytes.chunks_mut(CHUNK).enumerate() {
            self.file.read_at(from + i * CHUNK, chunk)?;
        }
        Ok(())
    }

    fn capacity(&self) -> usize {
        SIZE
    }
}

impl NorFlash for HostFlash {
    const WRITE_SIZE: usize = WORD;
    const ERASE_SIZE: usize = PAGE;

    async fn erase(&mut self, from: u32, to: u32) -> Result<(), FlashError> {
        let len = to.checked_sub(from).ok_or(FlashError::OutOfBounds)? as usize;
        let start = Self::range(from, len)?;
        if !start.is_multiple_of(PAGE) || !len.is_multiple_of(PAGE) {
            return Err(FlashError::NotAligned);
        }
        let erased = [0xFF; CHUNK];
        for at in (start..start + len).step_by(CHUNK) {
            self.file.write_at(at, &erased)?;
        }
        Ok(())
    }

    async fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), FlashError> {
        let start = Self::range(offset, bytes.len())?;
        if !start.is_multiple_of(WORD) || !bytes.len().is_multiple_of(WORD) {
            return Err(FlashError::NotAligned);
        }
        let mut cell = [0u8; CHUNK];
        for (i, chunk) in bytes.chunks(CHUNK).enumerate() {
            let at = start + i * CHUNK;
            let cell = &mut cell[..chunk.len()];
            self.file.read_at(at, cell)?;
            // NOR programming only clears bits.
            for (old, new) in cell.iter_mut().zip(chunk) {
                *old &= *new;
            }
            self.file.write_at(at, cell)?;
        }
        Ok(())
    }
}
