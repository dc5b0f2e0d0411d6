//! The two records of [`super::NorStore`] that undo a mark, and how a scan applies them.
//!
//! Both are operator acts in provisioning mode, confirmed on the board's button
//! (`crate::board` module `undo`); neither is ever written on a signing path.
//!
//! | key | value after `seq` | meaning |
//! |---|---|---|
//! | `0x04_ii` forget mark `ii` | 0x0000 ‖ MAC | every record of mark index `ii` older than this `seq` is void: the mark is gone and `ii` may name another mark |
//! | `0x05_ii` lower mark `ii` | level ‖ round ‖ 0x0000 ‖ MAC | every ceiling of `ii` older than this `seq` is void; the mark is exactly (level, round) |
//!
//! Ceilings only ever rise while signing, so the newest ceilings of a mark are its highest
//! and a scan could take the maximum of all. A lowering breaks that on purpose; the record
//! number `seq` (which grows by one per record, whatever the page order after reclaiming)
//! says which ceilings came before it. Each undo is **one record**: a power cut before it is
//! complete leaves its CRC failing and the mark as it was (the operator asks again); after it,
//! the undo holds. Never half: a lowering never passes through "no mark".
//!
//! Records superseded in the map (an older forget or lowering of the same index) are voided by
//! the newer one too, so page reclaiming dropping them changes nothing. A store with these
//! records does not load on firmware from before them (an unknown record is damage there).

use super::StoreError;
use crate::board::MAX_MARKS;

/// Per mark index, the newest forget and lowering seen by a scan.
pub(super) struct Resets {
    forget: [u32; MAX_MARKS],
    lower: [Option<(u32, u32, u32)>; MAX_MARKS],
}

impl Resets {
    pub(super) const fn new() -> Self {
        Resets {
            forget: [0; MAX_MARKS],
            lower: [None; MAX_MARKS],
        }
    }

    /// A forget record of `index`, numbered `seq`.
    pub(super) fn forget(&mut self, index: u8, seq: u32) -> Result<(), StoreError> {
        let slot = self
            .forget
            .get_mut(usize::from(index))
            .ok_or(StoreError::Corrupted)?;
        *slot = (*slot).max(seq);
        Ok(())
    }

    /// A lowering of `index` to (`level`, `round`), numbered `seq`.
    pub(super) fn lower(
        &mut self,
        index: u8,
        seq: u32,
        level: u32,
        round: u32,
    ) -> Result<(), StoreError> {
        let slot = self
            .lower
            .get_mut(usize::from(index))
            .ok_or(StoreError::Corrupted)?;
        if slot.is_none_or(|(s, _, _)| seq > s) {
            *slot = Some((seq, level, round));
        }
        Ok(())
    }

    fn forgotten_at(&self, index: u8) -> u32 {
        self.forget.get(usize::from(index)).copied().unwrap_or(0)
    }

    /// The lowering of `index` that still holds: newer than its last forget.
    pub(super) fn lowered(&self, index: u8) -> Option<(u32, u32)> {
        let (seq, level, round) = (*self.lower.get(usize::from(index))?)?;
        (seq > self.forgotten_at(index)).then_some((level, round))
    }

    /// Whether a name record of `index` numbered `seq` was forgotten since.
    pub(super) fn voids_name(&self, index: u8, seq: u32) -> bool {
        seq < self.forgotten_at(index)
    }

    /// Whether a ceiling record of `index` numbered `seq` was forgotten or lowered since.
    pub(super) fn voids_ceiling(&self, index: u8, seq: u32) -> bool {
        let lowered_at = self
            .lower
            .get(usize::from(index))
            .copied()
            .flatten()
            .map_or(0, |(s, _, _)| s);
        seq < self.forgotten_at(index) || seq < lowered_at
    }
}
