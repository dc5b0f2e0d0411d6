//! The rollback anchor's epoch counter (`pawl_core::store::epoch`) in the RP2350's OTP.
//! **Built, not run on silicon**: no board has programmed these rows yet.
//!
//! # Where
//!
//! [`EPOCH_ROWS`] raw rows from [`EPOCH_FIRST_ROW`]: OTP pages 49–52 (rows `0xc40`–`0xd3f`),
//! next to the board secret's page 48, inside the datasheet's user range (pages 3–60). Each
//! row holds 24 raw bits (no ECC: ECC rows cannot take more bits once programmed, raw rows
//! can, bit by bit — OTP programming only sets bits). One bit per epoch, filled in order, row
//! by row, low bit first: a thermometer code. 256 × 24 = 6,144 epochs
//! ([`pawl_core::store::epoch::OTP_EPOCHS`]).
//!
//! # Reading
//!
//! The epoch is the number of set bits in the rows. A bit that failed to program reads 0 and
//! makes the count lower than what was burned: the flash is then ahead, which is accepted (the
//! anchor catches less, never locks out). A stray set bit would make it one higher; the board
//! would then refuse its own flash until re-provisioned. Rows read back after every burn: a
//! burn that does not read back as the epoch asked for is a failure (the store reports
//! `BurnFailed` and signs on its flash guard alone for that boot).
//!
//! # Locking
//!
//! Pages 49–52 must stay writable by this Secure firmware. They should be made read-only for
//! the bootloader (the `BL` field of `PAGEn_LOCK1`, rows `0xfe3`, `0xfe5`, `0xfe7`, `0xfe9`):
//! otherwise anyone with the board in BOOTSEL can burn every epoch with picotool and so turn
//! the anchor off (exhaustion falls back to the flash guard). See `docs/hardware.md`.

use embassy_rp::otp;
use pawl_core::store::epoch::OTP_EPOCHS;
use pawl_core::store::{EpochCounter, StoreError};

/// First raw OTP row of the epoch counter (page 49, row 0).
pub const EPOCH_FIRST_ROW: usize = 0xc40;
/// Raw rows of the counter (pages 49–52).
pub const EPOCH_ROWS: usize = 256;
/// Bits a raw row holds.
const ROW_BITS: u32 = 24;
const ROW_MASK: u32 = (1 << ROW_BITS) - 1;

const _: () = assert!(EPOCH_ROWS as u32 * ROW_BITS == OTP_EPOCHS);

/// The counter in OTP rows.
#[derive(Debug, Default)]
pub struct OtpEpoch;

/// Bits `0..n` of a row set.
fn low_bits(n: u32) -> u32 {
    if n >= ROW_BITS {
        ROW_MASK
    } else {
        (1 << n) - 1
    }
}

impl EpochCounter for OtpEpoch {
    fn read(&mut self) -> Result<u32, StoreError> {
        let mut count = 0u32;
        for i in 0..EPOCH_ROWS {
            let row = otp::read_raw_word(EPOCH_FIRST_ROW + i).map_err(|_| StoreError::Io)?;
            count += (row & ROW_MASK).count_ones();
        }
        Ok(count)
    }

    fn burn_to(&mut self, epoch: u32) -> Result<(), StoreError> {
        if epoch > OTP_EPOCHS {
            return Err(StoreError::Full);
        }
        // Rows below the one `epoch` ends in are full; that row gets its low bits; rows above
        // are left alone. Programming a bit that is already set changes nothing.
        let full_rows = (epoch / ROW_BITS) as usize;
        for i in 0..full_rows.min(EPOCH_ROWS) {
            let row = EPOCH_FIRST_ROW + i;
            let now = otp::read_raw_word(row).map_err(|_| StoreError::Io)? & ROW_MASK;
            if now != ROW_MASK {
                otp::write_raw_word(row, ROW_MASK).map_err(|_| StoreError::Io)?;
            }
        }
        let rest = epoch % ROW_BITS;
        if rest > 0 && full_rows < EPOCH_ROWS {
            let row = EPOCH_FIRST_ROW + full_rows;
            let now = otp::read_raw_word(row).map_err(|_| StoreError::Io)? & ROW_MASK;
            let want = now | low_bits(rest);
            if want != now {
                otp::write_raw_word(row, want).map_err(|_| StoreError::Io)?;
            }
        }
        if self.read()? < epoch {
            return Err(StoreError::Io);
        }
        Ok(())
    }

    fn capacity(&self) -> u32 {
        OTP_EPOCHS
    }
}
