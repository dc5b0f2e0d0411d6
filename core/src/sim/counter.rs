//! A counter kept in a 4-byte file (little-endian), the shape of both of the virtual board's
//! counters outside its flash image: the rollback guard ([`super::guard`]) and the OTP epoch
//! ([`super::epoch`]). The value only ever rises.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::store::StoreError;

/// A rising counter in a file.
pub(super) struct CounterFile {
    file: File,
    value: u32,
}

impl CounterFile {
    /// Open (or create, at zero) the file; anything but 0 or 4 bytes is refused, naming it.
    pub(super) fn open(path: &Path) -> io::Result<Self> {
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
        Ok(CounterFile { file, value })
    }

    /// The value.
    pub(super) fn value(&self) -> u32 {
        self.value
    }

    /// Raise the value to `to` (nothing when it is not higher); with `sync`, `fdatasync` before
    /// it counts.
    pub(super) fn raise(&mut self, to: u32, sync: bool) -> Result<(), StoreError> {
        if to <= self.value {
            return Ok(());
        }
        self.file
            .write_all_at(&to.to_le_bytes(), 0)
            .and_then(|()| if sync { self.file.sync_data() } else { Ok(()) })
            .map_err(|_| StoreError::Io)?;
        self.value = to;
        Ok(())
    }
}
