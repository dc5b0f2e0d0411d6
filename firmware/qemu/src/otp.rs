//! The QEMU board's "OTP": the epoch counter of the rollback anchor
//! (`pawl_core::store::epoch`) in a host file **outside** the state directory, so that writing
//! back a copy of the state directory — this board's whole flash — does not roll it back, as
//! the RP2350's OTP rows cannot be.
//!
//! The path comes from the semihosting command line (`otp=PATH`); `pawl-sim qemu` passes
//! `<state directory>.otp`. The file holds the epoch as 4 bytes little-endian (absent or empty:
//! 0) and [`OTP_EPOCHS`] epochs, as the RP2350 image's rows do. Without `otp=` the board runs
//! unanchored and says so in its status (no `epoch`) and its log.

use core::ffi::CStr;

use pawl_core::store::epoch::OTP_EPOCHS;
use pawl_core::store::{EpochCounter, RollbackGuard, StoreError};

use crate::semihost::HostError;
use crate::state::{CounterFile, FileGuard};

/// Longest `otp=` path, NUL included.
pub const OTP_PATH_MAX: usize = 160;

/// The `otp=` path from the command line, NUL-terminated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OtpPath {
    bytes: [u8; OTP_PATH_MAX],
}

impl OtpPath {
    /// `path` as given on the command line; refused if empty, too long or holding a NUL.
    pub fn new(path: &str) -> Result<OtpPath, &'static str> {
        let raw = path.as_bytes();
        if raw.is_empty() || raw.len() >= OTP_PATH_MAX || raw.contains(&0) {
            return Err("otp= needs a path shorter than 160 bytes");
        }
        let mut bytes = [0u8; OTP_PATH_MAX];
        bytes[..raw.len()].copy_from_slice(raw);
        Ok(OtpPath { bytes })
    }

    /// The path for semihosting.
    pub fn as_cstr(&self) -> &CStr {
        // `new` leaves at least one NUL after the path and none inside it.
        CStr::from_bytes_until_nul(&self.bytes).unwrap_or(c"")
    }
}

/// The epoch counter in the `otp=` file.
pub struct FileEpoch(CounterFile);

impl FileEpoch {
    /// Open (or create, at zero) the counter file.
    pub fn open(path: &CStr) -> Result<FileEpoch, HostError> {
        CounterFile::open(path).map(FileEpoch)
    }
}

impl EpochCounter for FileEpoch {
    fn read(&mut self) -> Result<u32, StoreError> {
        Ok(self.0.value())
    }

    fn burn_to(&mut self, epoch: u32) -> Result<(), StoreError> {
        if epoch > OTP_EPOCHS && epoch > self.0.value() {
            return Err(StoreError::Full);
        }
        self.0.raise(epoch)
    }

    fn capacity(&self) -> u32 {
        OTP_EPOCHS
    }
}

/// The board's rollback guard: `rollback-counter` in the state directory, anchored by the
/// `otp=` file when there is one.
pub struct QemuGuard {
    flash: FileGuard,
    otp: Option<FileEpoch>,
}

impl QemuGuard {
    /// `flash`, anchored by `otp` (if any).
    pub fn new(flash: FileGuard, otp: Option<FileEpoch>) -> QemuGuard {
        QemuGuard { flash, otp }
    }
}

impl RollbackGuard for QemuGuard {
    fn floor(&mut self) -> Result<u32, StoreError> {
        self.flash.floor()
    }

    fn advance(&mut self, seq: u32) -> Result<(), StoreError> {
        self.flash.advance(seq)
    }

    fn anchor(&mut self) -> Option<&mut dyn EpochCounter> {
        self.otp.as_mut().map(|c| c as &mut dyn EpochCounter)
    }
}
