//! Idle-time work: what the store does while no request waits, so that a request finds it
//! done.
//!
//! 1. **Ceiling reservation**: a mark signed to within N/8 levels of its ceiling gets its next
//!    ceiling now (see "Ceiling reservation" in the module above).
//! 2. **Page closing**: `sequential-storage` reclaims a page — copies the live items of the
//!    oldest page forward and erases it, tens of milliseconds on a board's flash — inside the
//!    write that does not fit the page being filled. When fewer than [`PAD_ROOM`] bytes are
//!    left in it, a pad item one byte too large for the rest is written now, so that the page
//!    is closed and the next one reclaimed in idle time, and the next durable write on a
//!    request's path (a new mark's name and first ceiling: 80 bytes) finds room without an
//!    erase. The pad carries nothing, costs at most [`PAD_ROOM`] + 10 bytes per page (about
//!    3 % more erases, `docs/wear.md`) and only the newest one is ever copied forward.

use embassy_futures::block_on;
use embedded_storage_async::nor_flash::NorFlash;

use super::super::durable::Durability;
use super::super::wear::{page_size, word_size};
use super::super::{RollbackGuard, StoreError};
use super::NorStore;
use super::record::{BUF, FORMAT_VERSION, TAG_PAD, flash_error, map_key};

/// Free bytes under which idle time closes the page being filled: a new mark's name and
/// ceiling (48 + 32 bytes) and a ceiling more fit in it.
pub const PAD_ROOM: u32 = 128;

impl<F: NorFlash, G: RollbackGuard, D: Durability> NorStore<F, G, D> {
    /// One step of idle-time work; `true` if it wrote anything (call again).
    pub(super) fn idle_work(&mut self) -> Result<bool, StoreError> {
        // A boot's first record opens an OTP epoch and is a request's, charged for it by the
        // write budget (`store::epoch`): no reservation before it.
        if !self.epoch_due() && self.reserve_ceiling()? {
            return Ok(true);
        }
        self.close_full_page()
    }

    /// The mark with the least headroom, if under N/8, gets its next ceiling.
    fn reserve_ceiling(&mut self) -> Result<bool, StoreError> {
        if self.ceiling_ahead == 0 {
            return Ok(false);
        }
        // The mark with the least headroom left between what was signed since boot and its
        // ceiling, if that is under an eighth of N (2 levels for N = 16): raising it now costs
        // about one extra write per N levels and spares the next signature the flash wait.
        let due = (self.ceiling_ahead / 8).max(1);
        let closest = self
            .marks
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                let signed = m.signed?;
                Some((i, signed, m.ceiling?.0.saturating_sub(signed)))
            })
            .filter(|&(_, _, headroom)| headroom < due)
            .min_by_key(|&(_, _, headroom)| headroom);
        let Some((i, signed, _)) = closest else {
            return Ok(false);
        };
        let target = (signed.saturating_add(self.ceiling_ahead), u32::MAX);
        if self.marks[i].ceiling.is_some_and(|c| target <= c) {
            // Saturated at the top of the level range: nothing higher to reserve.
            return Ok(false);
        }
        self.catch_up_guard();
        self.reserving = true;
        let written = self.write_ceiling(i, target);
        self.reserving = false;
        written?;
        Ok(true)
    }

    /// Free bytes left in the page being filled, if known (an item was written since boot).
    pub(super) fn page_free(&mut self) -> Option<u32> {
        let end = self.map.as_mut()?.flash().item_end?;
        let page = page_size::<F>();
        let data_end = end - end % page + page - word_size::<F>();
        Some(data_end.saturating_sub(end))
    }

    /// Close the page being filled when fewer than [`PAD_ROOM`] bytes are left (module doc).
    fn close_full_page(&mut self) -> Result<bool, StoreError> {
        let Some(free) = self.page_free() else {
            return Ok(false);
        };
        // Only a store with keys signs; the pad needs a format-2 store (older firmware meets
        // the raised format record and refuses the store instead of misreading it).
        let Some(format) = self.format else {
            return Ok(false);
        };
        if free >= PAD_ROOM {
            return Ok(false);
        }
        if format < FORMAT_VERSION {
            self.reserving = true;
            let written = self.write_format();
            self.reserving = false;
            written?;
            return Ok(true);
        }
        // Key (2 bytes) + value: larger than what is left, whatever the header.
        let len = usize::try_from(free).map_or(BUF, |f| f.min(BUF));
        let pad = [0u8; BUF];
        let map = self.map.as_mut().ok_or(StoreError::Io)?;
        let written = block_on(map.store_item(&mut self.buf, &map_key(TAG_PAD, 0), &&pad[..len]));
        self.sync_wear();
        written.map_err(flash_error)?;
        Ok(true)
    }
}
