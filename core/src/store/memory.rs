//! An in-memory [`Store`] for tests, with write counting and fault injection.

use super::{Record, Store, StoreError, StoredKey};
use crate::protocol::MAX_KEYS;
use crate::watermark::MarkId;

/// Most marks [`MemoryStore`] keeps.
pub const MEMORY_MARKS: usize = 128;

/// An in-memory [`Store`] for tests: clone it to "reboot" from the same state.
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    keys: heapless::Vec<(u8, StoredKey), MAX_KEYS>,
    marks: heapless::Vec<(MarkId, u32, u32), MEMORY_MARKS>,
    /// Successful [`Store::persist_mark`] calls.
    pub mark_writes: u32,
    /// When `Some(n)`: the next `n` writes succeed, every later one fails with
    /// [`StoreError::Io`] and changes nothing.
    pub fail_after: Option<u32>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn write_allowed(&mut self) -> Result<(), StoreError> {
        match &mut self.fail_after {
            Some(0) => Err(StoreError::Io),
            Some(n) => {
                *n -= 1;
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// The stored position for `id`.
    pub fn mark(&self, id: &MarkId) -> Option<(u32, u32)> {
        self.marks
            .iter()
            .find(|(i, _, _)| i == id)
            .map(|(_, l, r)| (*l, *r))
    }
}

impl Store for MemoryStore {
    fn load(
        &mut self,
        visit: &mut dyn FnMut(Record<'_>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        for (slot, key) in &self.keys {
            visit(Record::Key { slot: *slot, key })?;
        }
        for (id, level, round) in &self.marks {
            visit(Record::Mark {
                id: *id,
                level: *level,
                round: *round,
            })?;
        }
        Ok(())
    }

    fn persist_mark(&mut self, id: &MarkId, level: u32, round: u32) -> Result<(), StoreError> {
        self.write_allowed()?;
        match self.marks.iter_mut().find(|(i, _, _)| i == id) {
            Some(entry) => {
                // A store never lowers a mark, whatever it is asked.
                if (level, round) > (entry.1, entry.2) {
                    entry.1 = level;
                    entry.2 = round;
                }
            }
            None => self
                .marks
                .push((*id, level, round))
                .map_err(|_| StoreError::Full)?,
        }
        self.mark_writes += 1;
        Ok(())
    }

    fn forget_marks(&mut self, ids: &[MarkId]) -> Result<(), StoreError> {
        // One write for all of them, as on flash: all or none.
        self.write_allowed()?;
        self.marks.retain(|(i, _, _)| !ids.contains(i));
        Ok(())
    }

    fn lower_mark(&mut self, id: &MarkId, level: u32, round: u32) -> Result<(), StoreError> {
        self.write_allowed()?;
        let entry = self
            .marks
            .iter_mut()
            .find(|(i, _, _)| i == id)
            .ok_or(StoreError::Corrupted)?;
        entry.1 = level;
        entry.2 = round;
        Ok(())
    }

    fn persist_key(&mut self, slot: u8, key: &StoredKey) -> Result<(), StoreError> {
        self.write_allowed()?;
        match self.keys.iter_mut().find(|(s, _)| *s == slot) {
            Some(entry) => entry.1 = key.clone(),
            None => self
                .keys
                .push((slot, key.clone()))
                .map_err(|_| StoreError::Full)?,
        }
        Ok(())
    }

    fn remove_key(&mut self, slot: u8) -> Result<(), StoreError> {
        self.write_allowed()?;
        self.keys.retain(|(s, _)| *s != slot);
        Ok(())
    }

    fn reprovision(&mut self, erase: bool) -> Result<(), StoreError> {
        if erase {
            self.keys.clear();
            self.marks.clear();
        }
        Ok(())
    }
}
