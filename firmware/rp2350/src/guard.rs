//! The anti-rollback counter, kept in a reserved flash area (not OTP — see below).
//!
//! # Layout
//!
//! [`GUARD_SIZE`](crate::layout::GUARD_SIZE) bytes of sectors used as a ring of 8-byte
//! entries `seq (u32 LE) ‖ !seq (u32 LE)`. An entry is valid only when the second word is
//! the complement of the first; since NOR programming only clears bits, a write cut short
//! can never leave a valid entry with a value other than the one being written. Erased slots
//! read `ff…ff`. The floor is the largest valid entry; values only grow, so the newest entry
//! is the largest.
//!
//! # Power failure
//!
//! * Cut while an entry is written: it is invalid; the previous entry still holds the floor
//!   (the store is then one record ahead of the guard, which it accepts), and the slot is
//!   skipped next time.
//! * Cut while the next sector is erased: that sector only held older, smaller entries; the
//!   newest entry is in the sector before it.
//!
//! # Why not OTP
//!
//! The store writes a record — and advances this counter — about once per 16 levels per mark
//! (`NorStoreConfig::DEFAULT_CEILING_AHEAD`), so a few thousand times a day for a busy baker.
//! The RP2350's user OTP is 7,424 bytes (59,392 bits): even one bit per record would be used up
//! within weeks. This counter lives in the same external QSPI flash as the store, so on its
//! own it only catches a rollback of the store area alone (a partial restore, a stale copy of
//! the store sectors); someone who reflashes the whole chip (BOOTSEL + picotool, or desoldering
//! it) rolls back both together. The OTP epoch (`src/epoch.rs`, one OTP bit per boot that
//! writes, `pawl_core::store::epoch`) anchors it and catches that.

use embassy_futures::block_on;
use embedded_storage_async::nor_flash::NorFlash;
use pawl_core::store::{RollbackGuard, StoreError};

const ENTRY: u32 = 8;

/// A [`RollbackGuard`] over a ring of flash sectors (the whole of `flash`).
pub struct FlashGuard<F: NorFlash> {
    flash: F,
    /// Largest valid entry (0 when none).
    floor: u32,
    /// Byte offset of the next slot to write.
    cursor: u32,
}

impl<F: NorFlash> FlashGuard<F> {
    /// Scan `flash` for the newest entry. Fails with [`StoreError::Io`] on a read error or
    /// a partition that is not at least two whole sectors.
    pub fn open(mut flash: F) -> Result<Self, StoreError> {
        let size = u32::try_from(flash.capacity()).map_err(|_| StoreError::Io)?;
        let sector = u32::try_from(F::ERASE_SIZE).map_err(|_| StoreError::Io)?;
        // Two sectors at least: erasing the next sector must never touch the newest entry.
        if size < 2 * sector || !size.is_multiple_of(sector) || !sector.is_multiple_of(ENTRY) {
            return Err(StoreError::Io);
        }
        let mut floor = 0;
        let mut newest: Option<u32> = None;
        let mut chunk = [0u8; 256];
        let mut offset = 0;
        while offset < size {
            block_on(flash.read(offset, &mut chunk)).map_err(|_| StoreError::Io)?;
            for (i, entry) in chunk.chunks_exact(8).enumerate() {
                if let Some(value) = decode(entry)
                    && (newest.is_none() || value > floor)
                {
                    floor = value;
                    newest = Some(offset + (i as u32) * ENTRY);
                }
            }
            offset += chunk.len() as u32;
        }
        let cursor = match newest {
            Some(at) => (at + ENTRY) % size,
            None => 0,
        };
        Ok(FlashGuard {
            flash,
            floor,
            cursor,
        })
    }

    fn size(&self) -> u32 {
        // `open` checked it fits.
        self.flash.capacity() as u32
    }

    fn sector_erased(&mut self, start: u32) -> Result<bool, StoreError> {
        let mut chunk = [0u8; 256];
        let mut offset = start;
        while offset < start + F::ERASE_SIZE as u32 {
            block_on(self.flash.read(offset, &mut chunk)).map_err(|_| StoreError::Io)?;
            if chunk.iter().any(|&b| b != 0xff) {
                return Ok(false);
            }
            offset += chunk.len() as u32;
        }
        Ok(true)
    }

    /// Move the cursor to a slot that reads erased, erasing the next sector when the current
    /// one has none left.
    fn free_slot(&mut self) -> Result<u32, StoreError> {
        let sector = F::ERASE_SIZE as u32;
        let size = self.size();
        // At most one full lap over the ring looking for an erased slot in the current sector.
        for _ in 0..size / ENTRY {
            if self.cursor.is_multiple_of(sector) && !self.sector_erased(self.cursor)? {
                block_on(self.flash.erase(self.cursor, self.cursor + sector))
                    .map_err(|_| StoreError::Io)?;
            }
            let mut slot = [0u8; 8];
            block_on(self.flash.read(self.cursor, &mut slot)).map_err(|_| StoreError::Io)?;
            if slot.iter().all(|&b| b == 0xff) {
                return Ok(self.cursor);
            }
            // A torn entry: skip it.
            self.cursor = (self.cursor + ENTRY) % size;
        }
        Err(StoreError::Io)
    }
}

fn decode(entry: &[u8]) -> Option<u32> {
    let value = u32::from_le_bytes([entry[0], entry[1], entry[2], entry[3]]);
    let check = u32::from_le_bytes([entry[4], entry[5], entry[6], entry[7]]);
    (check == !value).then_some(value)
}

impl<F: NorFlash> RollbackGuard for FlashGuard<F> {
    fn floor(&mut self) -> Result<u32, StoreError> {
        Ok(self.floor)
    }

    fn advance(&mut self, seq: u32) -> Result<(), StoreError> {
        if seq <= self.floor {
            return Ok(());
        }
        let at = self.free_slot()?;
        let mut entry = [0u8; 8];
        entry[..4].copy_from_slice(&seq.to_le_bytes());
        entry[4..].copy_from_slice(&(!seq).to_le_bytes());
        block_on(self.flash.write(at, &entry)).map_err(|_| StoreError::Io)?;
        let mut back = [0u8; 8];
        block_on(self.flash.read(at, &mut back)).map_err(|_| StoreError::Io)?;
        if decode(&back) != Some(seq) {
            return Err(StoreError::Io);
        }
        self.floor = seq;
        self.cursor = (at + ENTRY) % self.size();
        Ok(())
    }
}
