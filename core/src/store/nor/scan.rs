//! Reading the store at boot: every record checked (MACs, seals), undo records applied, keys
//! opened, marks named and positioned — or the whole image refused.

use embassy_futures::block_on;
use embedded_storage_async::nor_flash::NorFlash;
use zeroize::Zeroize;

use super::super::durable::Durability;
use super::super::resets::Resets;
use super::super::{RollbackGuard, StoreError, StoredKey};
use super::record::*;
use super::{MarkSlot, NorStore};
use crate::board::MAX_MARKS;
use crate::protocol::MAX_KEYS;

impl<F: NorFlash, G: RollbackGuard, D: Durability> NorStore<F, G, D> {
    /// Read every record: marks into RAM, keys opened and returned (newest per slot).
    pub(super) fn scan(&mut self) -> Result<heapless::Vec<(u8, StoredKey), MAX_KEYS>, StoreError> {
        self.marks.clear();
        self.seq = 0;
        let mut keys: heapless::Vec<(u8, StoredKey), MAX_KEYS> = heapless::Vec::new();
        let mut buf = [0u8; BUF];
        let mut max_seq = 0u32;
        let mut names: heapless::Vec<MarkSlot, MAX_MARKS> = heapless::Vec::new();
        let mut ceilings: heapless::Vec<(u8, u32, u32), MAX_MARKS> = heapless::Vec::new();
        // (seq, note) of the newest ceiling record.
        let mut newest_note: Option<(u32, u16)> = None;
        let mut format = None;
        // `fetch_all_items` (8.0.2) does not run the crate's automatic repair when it meets an
        // interrupted erase (its page-state lookup returns early with `?`), but `fetch_item`
        // does: on `Corrupted`, look one record up to finish the repair, then scan.
        let interrupted = matches!(
            block_on(
                self.map
                    .as_mut()
                    .ok_or(StoreError::Io)?
                    .fetch_all_items(&mut self.buf)
            )
            .map(|_| ()),
            Err(sequential_storage::Error::Corrupted { .. })
        );
        if interrupted {
            block_on(
                self.map
                    .as_mut()
                    .ok_or(StoreError::Io)?
                    .fetch_item::<&[u8]>(&mut self.buf, &map_key(TAG_META, 0)),
            )
            .map_err(flash_error)?;
        }
        // First pass: the undo records, which decide which names and ceilings still count.
        let mut resets = Resets::new();
        {
            let mut items = block_on(
                self.map
                    .as_mut()
                    .ok_or(StoreError::Io)?
                    .fetch_all_items(&mut self.buf),
            )
            .map_err(flash_error)?;
            loop {
                let item = block_on(items.next::<&[u8]>(&mut buf)).map_err(flash_error)?;
                let Some((key, value)) = item else { break };
                let [tag, index] = key.to_be_bytes();
                if tag != TAG_FORGET && tag != TAG_LOWER && tag != TAG_FORGET_TABLE {
                    continue;
                }
                let seq = seq_of(value)?;
                let fields = verified(&self.seal, key, value)?;
                if tag == TAG_FORGET_TABLE {
                    if index != 0 {
                        return Err(StoreError::Corrupted);
                    }
                    resets.forget_table(seq, fields)?;
                } else if tag == TAG_FORGET {
                    if fields != [0, 0] {
                        return Err(StoreError::Corrupted);
                    }
                    resets.forget(index, seq)?;
                } else {
                    let (level, round) = position_of(fields).ok_or(StoreError::Corrupted)?;
                    resets.lower(index, seq, level, round)?;
                }
            }
        }
        {
            let mut items = block_on(
                self.map
                    .as_mut()
                    .ok_or(StoreError::Io)?
                    .fetch_all_items(&mut self.buf),
            )
            .map_err(flash_error)?;
            loop {
                let item = block_on(items.next::<&[u8]>(&mut buf)).map_err(flash_error)?;
                let Some((key, value)) = item else { break };
                let [tag, index] = key.to_be_bytes();
                if tag == TAG_PAD {
                    // Filler (format 2): no record number, nothing to check or keep.
                    continue;
                }
                let seq = seq_of(value)?;
                max_seq = max_seq.max(seq);
                // Copy out: `value` borrows `buf`, which the next item reuses.
                let mut copy = [0u8; BUF];
                let copy = &mut copy[..value.len()];
                copy.copy_from_slice(value);
                match tag {
                    TAG_META if index == META_REPROVISION => {
                        verified(&self.seal, key, copy)?;
                    }
                    TAG_META if index == META_FORMAT => {
                        let fields = verified(&self.seal, key, copy)?;
                        let version = match fields {
                            [a, b] => u16::from_le_bytes([*a, *b]),
                            _ => return Err(StoreError::Corrupted),
                        };
                        if version > FORMAT_VERSION {
                            return Err(StoreError::NewerFormat { version });
                        }
                        format = Some(version);
                    }
                    TAG_KEY => {
                        let stored = open_key(&self.seal, key, copy);
                        copy.zeroize();
                        // Items come oldest first: a newer record for a slot replaces the older,
                        // and a removal takes the slot's key away.
                        match (stored?, keys.iter().position(|(slot, _)| *slot == index)) {
                            (Some(stored), Some(at)) => keys[at].1 = stored,
                            (Some(stored), None) => keys
                                .push((index, stored))
                                .map_err(|_| StoreError::Corrupted)?,
                            (None, Some(at)) => {
                                keys.swap_remove(at);
                            }
                            (None, None) => {}
                        }
                    }
                    TAG_NAME if resets.voids_name(index, seq) => {}
                    TAG_CEILING if resets.voids_ceiling(index, seq) => {}
                    // Checked in the first pass.
                    TAG_FORGET | TAG_LOWER | TAG_FORGET_TABLE => {}
                    TAG_NAME => {
                        let fields = verified(&self.seal, key, copy)?;
                        let id = name_of(fields).ok_or(StoreError::Corrupted)?;
                        // One index per mark: a second name for the same mark is damage.
                        if names.iter().any(|n| n.id == id && n.index != index) {
                            return Err(StoreError::Corrupted);
                        }
                        match names.iter().find(|n| n.index == index) {
                            Some(n) if n.id != id => return Err(StoreError::Corrupted),
                            Some(_) => {}
                            None => names
                                .push(MarkSlot {
                                    id,
                                    index,
                                    ceiling: None,
                                    named: true,
                                    signed: None,
                                    point: 0,
                                })
                                .map_err(|_| StoreError::Corrupted)?,
                        }
                    }
                    TAG_CEILING => {
                        let fields = verified(&self.seal, key, copy)?;
                        let ((level, round), note) =
                            ceiling_of(fields).ok_or(StoreError::Corrupted)?;
                        if newest_note.is_none_or(|(newest, _)| seq > newest) {
                            newest_note = Some((seq, note));
                        }
                        match ceilings.iter_mut().find(|c| c.0 == index) {
                            Some(c) => {
                                if (level, round) > (c.1, c.2) {
                                    *c = (index, level, round);
                                }
                            }
                            None => ceilings
                                .push((index, level, round))
                                .map_err(|_| StoreError::Corrupted)?,
                        }
                    }
                    _ => return Err(StoreError::Corrupted),
                }
            }
        }
        self.sync_wear();
        for (index, level, round) in ceilings {
            // A name is always written before its first ceiling.
            let name = names
                .iter_mut()
                .find(|n| n.index == index)
                .ok_or(StoreError::Corrupted)?;
            name.ceiling = Some((level, round));
        }
        for name in names.iter_mut() {
            if let Some(lowered) = resets.lowered(name.index) {
                // Ceilings written after the lowering are above it.
                name.ceiling = Some(name.ceiling.map_or(lowered, |c| c.max(lowered)));
            }
        }
        buf.zeroize();
        self.marks = names;
        self.forgotten = resets.forgotten();
        self.seq = max_seq;
        self.note = newest_note.map(|(_, note)| note);
        self.format = format;
        Ok(keys)
    }
}
