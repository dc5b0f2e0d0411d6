//! The simulator's anti-rollback counter: a small file next to the flash image.
//!
//! It stands in for the RP2350's flash-side guard. Restoring an old copy of the flash file
//! without the counter file is detected here; restoring both together (a backup of the whole
//! state directory) is caught by the OTP epoch beside the directory ([`super::epoch`]), as a
//! whole-flash image is on the RP2350.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::store::{RollbackGuard, StoreError};

/// A [`RollbackGuard`] kept in a file.
///
/// Advances are written in place but not `fdatasync`ed: the store advances the guard only after
/// the flash record is durable, so after a host crash the file can only be *behind* the flash
/// (rollback detection loses the last few records' worth; it never refuses a good image). A
/// process that is killed loses nothing (the write is in the page cache). This spares one disk
/// flush per record, a quarter of the virtual board's flushes.
pub struct FileGuard {
    file: File,
    value: u32,
}

impl FileGuard {
    /// Open (or create, at zero) the counter file.
    pub fn open(path: &Path) -> io::Result<Self> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let mut bytes = std::vec::Vec::new();
        file.read_to_end(&mut bytes)?;
        let value = match bytes.len() {
            0 => 0,
            4 => u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]),
            n => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    std::format!("{} is {n} bytes, expected 4", path.display()),
                ));
            }
        };
        Ok(FileGuard { file, value })
    }
}

impl RollbackGuard for FileGuard {
    fn floor(&mut self) -> Result<u32, StoreError> {
        Ok(self.value)
    }

    fn advance(&mut self, seq: u32) -> Result<(), StoreError> {
        if seq <= self.value {
            return Ok(());
        }
        self.file
            .write_all_at(&seq.to_le_bytes(), 0)
            .map_err(|_| StoreError::Io)?;
        self.value = seq;
        Ok(())
    }
}
