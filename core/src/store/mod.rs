//! What the board keeps across power cycles, behind one trait.
//!
//! The core never writes flash itself: it asks a [`Store`] to make a mark durable **before** it
//! releases a signature, and to save keys and policies at provisioning. The NOR-flash store is
//! its own module (issue "durable watermark store"); [`MemoryStore`] here is for tests and
//! counts writes and can be told to fail.

use core::fmt;

use serde::{Deserialize, Serialize};

use crate::keys::{Curve, SecretBytes};
use crate::policy::Policy;
use crate::protocol::MAX_KEYS;
use crate::watermark::MarkId;

/// Why the store could not do what was asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StoreError {
    /// The storage medium failed (write, erase or read error).
    Io,
    /// No room left.
    Full,
    /// The stored data is damaged; the board refuses to sign rather than start from zero.
    Corrupted,
    /// The storage holds an older image than the board last wrote (rollback).
    RolledBack,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StoreError::Io => "storage write failed",
            StoreError::Full => "storage full",
            StoreError::Corrupted => "stored state is corrupted; re-provision the board",
            StoreError::RolledBack => {
                "storage holds an older image than the board last wrote; re-provision the board"
            }
        })
    }
}

impl core::error::Error for StoreError {}

/// A key as stored (the store seals it; the core hands it over in the clear).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredKey {
    /// Curve.
    pub curve: Curve,
    /// Secret, in the Tezos encoding of the curve.
    pub secret: SecretBytes,
    /// Policy.
    pub policy: Policy,
}

/// One record handed back at boot.
#[derive(Debug)]
pub enum Record<'a> {
    /// A key in `slot`.
    Key {
        /// Slot number.
        slot: u8,
        /// The key.
        key: &'a StoredKey,
    },
    /// A mark position: nothing at or below it may be signed.
    Mark {
        /// Which mark.
        id: MarkId,
        /// Level.
        level: u32,
        /// Round.
        round: u32,
    },
}

/// The board's persistent state.
pub trait Store {
    /// Hand every stored record to `visit`, in any order.
    fn load(
        &mut self,
        visit: &mut dyn FnMut(Record<'_>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;

    /// Make (`level`, `round`) durable for `id`: when this returns `Ok`, a power cut at any
    /// later moment leaves a store whose [`Store::load`] reports a mark at or above it.
    fn persist_mark(&mut self, id: &MarkId, level: u32, round: u32) -> Result<(), StoreError>;

    /// Save the key in `slot` (new key, or a policy change), durably.
    fn persist_key(&mut self, slot: u8, key: &StoredKey) -> Result<(), StoreError>;
}

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
}
