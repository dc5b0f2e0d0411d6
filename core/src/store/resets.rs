//! The records of [`super::NorStore`] that undo marks, and how a scan applies them.
//!
//! Forgetting and lowering are operator acts in provisioning mode, confirmed on the board's
//! button (`crate::board` module `undo`). The one write of an undo record on a signing path
//! is the forget table that voids a slot with a name and no position (nothing was ever
//! signed under it: a power cut between a name and its first ceiling), when a new mark needs
//! its room.
//!
//! | key | value after `seq` | meaning |
//! |---|---|---|
//! | `0x04_ii` forget mark `ii` (read only: written by stores before the table) | 0x0000 ‖ MAC | every record of mark index `ii` older than this `seq` is void: the mark is gone and `ii` may name another mark |
//! | `0x05_ii` lower mark `ii` | level ‖ round ‖ 0x0000 ‖ MAC | every ceiling of `ii` older than this `seq` is void; the mark is exactly (level, round) |
//! | `0x06_00` forget table | 64 × u32 (LE) ‖ MAC | entry `ii`, when not 0: every record of index `ii` older than that number is void |
//!
//! The forget table makes a forget of several marks **one record**, so a power cut leaves all
//! of them forgotten or none (`ForgetWatermarks`). Each table carries every index's entry of
//! the table before it (and of the old per-index records) on, with the marks it forgets now
//! at its own `seq`: entries only grow, so the newest table says everything the older ones
//! did, and page reclaiming dropping a superseded table loses nothing. An entry is never
//! above its table's `seq`.
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

/// Bytes of a forget table's fields: one u32 per mark index.
pub(super) const FORGET_TABLE_FIELDS: usize = 4 * MAX_MARKS;

/// A forget table's fields.
pub(super) fn table_fields(table: &[u32; MAX_MARKS]) -> [u8; FORGET_TABLE_FIELDS] {
    let mut out = [0u8; FORGET_TABLE_FIELDS];
    for (chunk, entry) in out.chunks_exact_mut(4).zip(table) {
        chunk.copy_from_slice(&entry.to_le_bytes());
    }
    out
}

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

    /// A forget table numbered `seq`, its fields as written by [`table_fields`].
    pub(super) fn forget_table(&mut self, seq: u32, fields: &[u8]) -> Result<(), StoreError> {
        if fields.len() != FORGET_TABLE_FIELDS {
            return Err(StoreError::Corrupted);
        }
        for (index, chunk) in (0..=u8::MAX).zip(fields.chunks_exact(4)) {
            let entry = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            if entry > seq {
                return Err(StoreError::Corrupted);
            }
            if entry > 0 {
                self.forget(index, entry)?;
            }
        }
        Ok(())
    }

    /// Per index, the number before which its records are void: what the next table carries.
    pub(super) fn forgotten(&self) -> [u32; MAX_MARKS] {
        self.forget
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
