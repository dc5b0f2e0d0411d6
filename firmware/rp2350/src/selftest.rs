//! The self-test's instruments on the Pico 2 ([`pawl_core::board::Instruments`]), lent to the
//! board by `main`:
//!
//! * **clock**: the RP2350's TIMER through `embassy_time` (1 MHz, 64-bit: it does not wrap);
//! * **scratch flash**: the one 4 KiB sector `build.rs` reserves between the image and the
//!   rollback guard ([`SCRATCH_OFFSET`]), erased and programmed with the blocking flash
//!   routines (from RAM, interrupts off, as the store's writes); never the store's pages;
//! * **board key**: whether `otp::board_key` found a secret, and whether OTP page 48 is locked
//!   as the README says (`PAGE48_LOCK1`, row `0xfe1`: Secure read-only, Non-secure and
//!   bootloader inaccessible; the row holds its byte three times, read by majority vote).
//!
//! **Untested on silicon** (like the rest of this image): the TIMER reading, the scratch
//! sector's erase and program on the real QSPI flash, and the OTP lock row's decoding. The
//! same `Board` code runs on QEMU and the virtual board in CI.

use embassy_rp::otp;
use pawl_core::board::Instruments;
use pawl_core::protocol::selftest::{BoardKeyState, ScratchError};
use pawl_core::store::BoardKey;

use crate::layout::{SCRATCH_OFFSET, SCRATCH_SIZE};
use crate::otp::OtpKeyError;
use crate::storage::SharedFlash;

/// OTP row of `PAGE48_LOCK1` (raw rows: `0xf80 + 2 × page + 1`).
const PAGE48_LOCK1_ROW: usize = 0xf80 + 2 * 48 + 1;

/// The Pico 2's instruments.
pub struct PicoBench {
    flash: &'static SharedFlash,
    key: BoardKeyState,
}

impl PicoBench {
    /// Instruments over the shared flash, with the board key's state found at boot.
    pub fn new(flash: &'static SharedFlash, key: BoardKeyState) -> PicoBench {
        PicoBench { flash, key }
    }

    fn with_flash<R>(
        &self,
        f: impl FnOnce(&mut crate::storage::BoardFlash) -> Result<R, embassy_rp::flash::Error>,
    ) -> Result<R, ScratchError> {
        // The serve loop is the only user while a frame is answered: the lock is free.
        let mut flash = self.flash.try_lock().map_err(|_| ScratchError::Io)?;
        f(&mut flash).map_err(|_| ScratchError::Io)
    }
}

/// The board key's state from `otp::board_key`'s answer and the page lock row.
pub fn key_state(key: &Result<BoardKey, OtpKeyError>) -> BoardKeyState {
    match key {
        Err(_) => BoardKeyState::Absent,
        Ok(_) => match otp::read_raw_word(PAGE48_LOCK1_ROW) {
            Ok(raw) if locked(raw) => BoardKeyState::OtpLocked,
            _ => BoardKeyState::OtpUnlocked,
        },
    }
}

/// Whether a raw `PAGEn_LOCK1` row locks the page as the README asks: the majority of its
/// three copies has Secure at least read-only (bits 1:0 ≠ 0), Non-secure (3:2) and bootloader
/// (5:4) inaccessible (3).
fn locked(raw: u32) -> bool {
    let [a, b, c, _] = raw.to_le_bytes();
    let byte = (a & b) | (a & c) | (b & c);
    byte & 0x03 != 0 && (byte >> 2) & 0x03 == 0x03 && (byte >> 4) & 0x03 == 0x03
}

fn within(offset: u32, len: usize) -> Result<u32, ScratchError> {
    let len = u32::try_from(len).map_err(|_| ScratchError::Io)?;
    match offset.checked_add(len) {
        Some(end) if end <= SCRATCH_SIZE => Ok(SCRATCH_OFFSET + offset),
        _ => Err(ScratchError::Io),
    }
}

impl Instruments for PicoBench {
    fn now_us(&self) -> u64 {
        embassy_time::Instant::now().as_micros()
    }

    fn clock(&self) -> &'static str {
        "RP2350 TIMER, 1 MHz"
    }

    fn board_key(&self) -> BoardKeyState {
        self.key
    }

    fn scratch_len(&self) -> Option<u32> {
        Some(SCRATCH_SIZE)
    }

    fn scratch_erase(&self) -> Result<(), ScratchError> {
        self.with_flash(|f| f.blocking_erase(SCRATCH_OFFSET, SCRATCH_OFFSET + SCRATCH_SIZE))
    }

    fn scratch_program(&self, offset: u32, bytes: &[u8]) -> Result<(), ScratchError> {
        let at = within(offset, bytes.len())?;
        self.with_flash(|f| f.blocking_write(at, bytes))
    }

    fn scratch_read(&self, offset: u32, bytes: &mut [u8]) -> Result<(), ScratchError> {
        let at = within(offset, bytes.len())?;
        self.with_flash(|f| f.blocking_read(at, bytes))
    }
}
