//! The simulator's anti-rollback counter: a small file next to the flash image.
//!
//! It stands in for the RP2350's flash-side guard. Restoring an old copy of the flash file
//! without the counter file is detected here; restoring both together (a backup of the whole
//! state directory) is caught by the OTP epoch beside the directory ([`super::epoch`]), as a
//! whole-flash image is on the RP2350.

use std::io;
use std::path::Path;

use super::counter::CounterFile;
use crate::store::{RollbackGuard, StoreError};

/// A [`RollbackGuard`] kept in a file.
///
/// Advances are written in place but not `fdatasync`ed: the store advances the guard only after
/// the flash record is durable, so after a host crash the file can only be *behind* the flash
/// (rollback detection loses the last few records' worth; it never refuses a good image). A
/// process that is killed loses nothing (the write is in the page cache). This spares one disk
/// flush per record, a quarter of the virtual board's flushes.
pub struct FileGuard(CounterFile);

impl FileGuard {
    /// Open (or create, at zero) the counter file.
    pub fn open(path: &Path) -> io::Result<Self> {
        CounterFile::open(path).map(FileGuard)
    }
}

impl RollbackGuard for FileGuard {
    fn floor(&mut self) -> Result<u32, StoreError> {
        Ok(self.0.value())
    }

    fn advance(&mut self, seq: u32) -> Result<(), StoreError> {
        self.0.raise(seq, false)
    }
}
