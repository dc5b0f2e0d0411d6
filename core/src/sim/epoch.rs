//! The virtual board's OTP epoch counter ([`crate::store::epoch`]): a file **beside** the
//! state directory (`<dir>.otp`), not in it, so that restoring a copy of the directory — the
//! virtual board's "whole flash" — leaves it where it was, as OTP would be.
//!
//! The file holds the epoch as 4 bytes little-endian; a burn is written and `fdatasync`ed
//! before it counts (OTP programming is durable when it returns). It holds
//! [`OTP_EPOCHS`] epochs, as the RP2350 image's rows do.

use std::io;
use std::path::{Path, PathBuf};

use super::counter::CounterFile;
use crate::store::epoch::OTP_EPOCHS;
use crate::store::{EpochCounter, StoreError};

/// Where the counter of the board whose state is in `dir` lives: `<dir>.otp`.
pub fn otp_path(dir: &Path) -> PathBuf {
    // Through the components: a trailing slash must not put the file inside the directory.
    let dir: PathBuf = dir.components().collect();
    let mut name = dir.into_os_string();
    name.push(".otp");
    PathBuf::from(name)
}

/// An [`EpochCounter`] in a file.
pub struct FileEpoch {
    counter: CounterFile,
    capacity: u32,
}

impl FileEpoch {
    /// Open (or create, at zero) the counter file, holding [`OTP_EPOCHS`] epochs.
    pub fn open(path: &Path) -> io::Result<Self> {
        Self::open_with(path, OTP_EPOCHS)
    }

    /// As [`FileEpoch::open`], holding `capacity` epochs (tests of exhaustion).
    pub fn open_with(path: &Path, capacity: u32) -> io::Result<Self> {
        Ok(FileEpoch {
            counter: CounterFile::open(path)?,
            capacity,
        })
    }
}

impl EpochCounter for FileEpoch {
    fn read(&mut self) -> Result<u32, StoreError> {
        Ok(self.counter.value())
    }

    fn burn_to(&mut self, epoch: u32) -> Result<(), StoreError> {
        if epoch <= self.counter.value() {
            return Ok(());
        }
        if epoch > self.capacity {
            return Err(StoreError::Full);
        }
        self.counter.raise(epoch, true)
    }

    fn capacity(&self) -> u32 {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_sits_beside_the_directory() {
        assert_eq!(
            otp_path(Path::new("/var/lib/pawl/virtual-board/")),
            PathBuf::from("/var/lib/pawl/virtual-board.otp")
        );
        assert_eq!(otp_path(Path::new("board")), PathBuf::from("board.otp"));
    }

    #[test]
    fn burns_survive_reopening_and_stop_at_capacity() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("board.otp");
        let mut otp = FileEpoch::open_with(&path, 3).expect("open");
        assert_eq!(otp.read(), Ok(0));
        otp.burn_to(2).expect("burn");
        // A lower or equal epoch changes nothing: OTP bits only go one way.
        otp.burn_to(1).expect("no-op");
        drop(otp);
        let mut otp = FileEpoch::open_with(&path, 3).expect("reopen");
        assert_eq!(otp.read(), Ok(2));
        assert_eq!(otp.burn_to(4), Err(StoreError::Full));
        assert_eq!(otp.read(), Ok(2));
        std::fs::write(&path, [1, 2, 3]).expect("damage");
        assert!(
            FileEpoch::open(&path).is_err(),
            "a file of another length is refused"
        );
    }
}
