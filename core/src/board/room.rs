//! Room in the watermark table: one key cannot take another key's.
//!
//! The table is bounded ([`MAX_MARKS`] = 64 (chain, key, kind) entries) and never evicts: an
//! evicted mark would let its key sign below it again. Without a rule for sharing it, a
//! compromised host fills it — 64 consensus requests on invented chains for a key allowed any
//! chain — and from then on every key's next new entry (a baker's first block after weeks of
//! attesting, a key added later) is refused, across reboots, until an erase. The rule:
//!
//! * **Every key slot keeps a minimum of [`KEY_MINIMUM`] = 3 entries**: block,
//!   preattestation and attestation on one chain. For a key pinned to chains, those are the
//!   three kinds on its *first* pinned chain; for a key allowed any chain, any three entries.
//!   [`MAX_KEYS`] = 16 slots × 3 = 48 ≤ 64, so every slot's minimum fits at once, filled slots
//!   and empty ones (a key added later) alike, and 16 entries are left to share.
//! * **A new entry is accepted only if, after it, the free entries still cover every slot's
//!   unmet minimum** (the new entry's own key included, so a pinned key's second chain cannot
//!   take its first chain's room). An entry that meets part of its own key's minimum never
//!   fails this test, by induction: each accepted entry keeps
//!   `entries + unmet minima ≤ MAX_MARKS`.
//! * **Each key has a quota**: 3 × its pinned chains (at most 4 × 3 = 12: every kind on every
//!   chain it may sign for, so a pinned key is never stopped by its own quota), or
//!   [`ANY_CHAIN_QUOTA`] = 6 for a key allowed any chain (a main chain and one test chain).
//!   Invented chains can use up only the key's own quota; the refusal
//!   ([`WatermarkError::KeyQuota`]) names it. The operator's remedies are pinning the key
//!   (`SetPolicy`) and forgetting the marks of chains it no longer allows (provisioning).
//!
//! Entries loaded from a store written before this rule are kept as they are, whatever the
//! quota: the rule only decides which *new* entries are accepted. A genuinely full table is
//! still [`WatermarkError::TableFull`].

use super::{Board, Entropy, MAX_MARKS, Presence};
use crate::keys::PublicKeyHash;
use crate::policy::Policy;
use crate::protocol::MAX_KEYS;
use crate::store::Store;
use crate::watermark::{MarkId, MarkKind, WatermarkError};

/// Entries every key slot keeps for itself: the three mark kinds on one chain.
pub const KEY_MINIMUM: usize = 3;

/// Most entries a key allowed any chain may hold: two chains' worth.
pub const ANY_CHAIN_QUOTA: usize = 2 * KEY_MINIMUM;

const KINDS: [MarkKind; 3] = [
    MarkKind::Block,
    MarkKind::Preattestation,
    MarkKind::Attestation,
];

// The minimum of every slot must fit in the table together.
const _: () = assert!(MAX_KEYS * KEY_MINIMUM <= MAX_MARKS);

/// A key's quota of entries under `policy`.
pub fn quota(policy: &Policy) -> usize {
    if policy.chains.is_empty() {
        ANY_CHAIN_QUOTA
    } else {
        KEY_MINIMUM * policy.chains.len()
    }
}

fn small(n: usize) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
}

impl<S: Store, E: Entropy, P: Presence> Board<S, E, P> {
    /// Entries the table holds for `key`.
    fn entries_of(&self, key: &PublicKeyHash) -> usize {
        self.marks.iter().filter(|(id, _)| id.key == *key).count()
    }

    /// How many of `key`'s minimum entries are not in the table, counting `new` as if it were.
    fn unmet(&self, key: &PublicKeyHash, policy: &Policy, new: &MarkId) -> usize {
        let has = |id: &MarkId| id == new || self.marks.get(id).is_some();
        match policy.chains.first() {
            Some(first) => KINDS
                .iter()
                .filter(|&&kind| {
                    !has(&MarkId {
                        chain: *first,
                        key: *key,
                        kind,
                    })
                })
                .count(),
            None => {
                let mut used = self.entries_of(key);
                if new.key == *key {
                    used += 1;
                }
                KEY_MINIMUM.saturating_sub(used)
            }
        }
    }

    /// Whether a new entry `id` (not in the table yet) may be added: the one place the rule is
    /// decided. Changes nothing.
    pub(super) fn room_for(&self, id: &MarkId) -> Result<(), WatermarkError> {
        if self.marks.get(id).is_some() {
            return Ok(());
        }
        if self.marks.len() >= MAX_MARKS {
            return Err(WatermarkError::TableFull {
                capacity: small(MAX_MARKS),
            });
        }
        let policy = match self.keys.iter().find(|k| k.material.pkh() == &id.key) {
            Some(slot) => &slot.policy,
            // Not a key of this board: nothing of its own to reserve, and no room either.
            None => {
                return Err(WatermarkError::KeyQuota { used: 0, quota: 0 });
            }
        };
        let used = self.entries_of(&id.key);
        let quota = quota(policy);
        if used >= quota {
            return Err(WatermarkError::KeyQuota {
                used: small(used),
                quota: small(quota),
            });
        }
        let empty_slots = MAX_KEYS.saturating_sub(self.keys.len());
        let reserved = self
            .keys
            .iter()
            .map(|k| self.unmet(k.material.pkh(), &k.policy, id))
            .sum::<usize>()
            + empty_slots * KEY_MINIMUM;
        let free_after = MAX_MARKS - self.marks.len() - 1;
        if reserved > free_after {
            return Err(WatermarkError::Reserved {
                used: small(used),
                quota: small(quota),
                free: small(MAX_MARKS - self.marks.len()),
                reserved: small(reserved),
            });
        }
        Ok(())
    }
}
