//! The high watermark: all double-sign state lives here.
//!
//! Keyed by (chain id, key, kind) where the kind is the magic byte (block `0x11`,
//! preattestation `0x12`, attestation `0x13`; tags 21, 23 and 41 all share "attestation", so a
//! tag-21 and a tag-23 attestation at the same level and round can never both be signed).
//!
//! Rule (Octez `handler.ml: check_mark`, `docs/protocol.md` §4.1):
//!
//! | request vs mark | result |
//! |---|---|
//! | no mark yet | sign, record |
//! | (level, round) strictly greater | sign, record |
//! | same (level, round), same BLAKE2b-256 of the whole request, signature recorded | return the **recorded** signature |
//! | same (level, round), different payload | refuse |
//! | anything lower, or same (level, round) with no recorded payload | refuse |
//!
//! The caller ([`crate::board::Board`]) checks, then makes the new mark durable through the
//! [`crate::store::Store`], then signs, then [`Watermarks::record`]s. A refusal changes nothing.
//!
//! Host-held keys (Azure Key Vault) sign in two steps: after the durable write the mark is
//! [`Watermarks::approve`]d — raised to the position with the request's hash but no signature,
//! so the approved digest counts as signed for everything else at that position — and later
//! [`Watermarks::complete`]d with the signature the board verified. An approved mark answers
//! [`Watermarks::is_approved`] for the identical request (the same digest may be approved
//! again; nothing new becomes signable) and refuses every other request at or below it.
//! The table is bounded: a full table refuses a new (chain, key, kind) rather than evicting.

use core::fmt;

use serde::{Deserialize, Serialize};

use crate::keys::{PublicKeyHash, Signature};
use crate::request::{ChainId, RequestKind};

/// Which watermark a consensus request moves (its magic byte).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum MarkKind {
    /// `0x11`.
    Block,
    /// `0x12`.
    Preattestation,
    /// `0x13`.
    Attestation,
    /// A CometBFT key's one mark per chain (`protocol::cometbft`): height as the level, and
    /// round and step packed into the round (`round × 4 + step`), so that the order of
    /// (level, round) is CometBFT's order of height, then round, then step.
    CometBft,
}

impl MarkKind {
    /// The watermark of a request kind, if it has one.
    pub const fn of(kind: RequestKind) -> Option<MarkKind> {
        match kind {
            RequestKind::Block => Some(MarkKind::Block),
            RequestKind::Preattestation => Some(MarkKind::Preattestation),
            RequestKind::Attestation => Some(MarkKind::Attestation),
            RequestKind::Generic | RequestKind::Michelson => None,
        }
    }

    /// Name, as in Octez's messages.
    pub const fn name(self) -> &'static str {
        match self {
            MarkKind::Block => "block",
            MarkKind::Preattestation => "preattestation",
            MarkKind::Attestation => "attestation",
            MarkKind::CometBft => "cometbft",
        }
    }

    /// Parse a name.
    pub fn from_name(name: &str) -> Option<MarkKind> {
        [
            MarkKind::Block,
            MarkKind::Preattestation,
            MarkKind::Attestation,
            MarkKind::CometBft,
        ]
        .into_iter()
        .find(|k| k.name() == name)
    }
}

impl fmt::Display for MarkKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a watermark is kept for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MarkId {
    /// Chain.
    pub chain: ChainId,
    /// Signing key.
    pub key: PublicKeyHash,
    /// Block, preattestation or attestation.
    pub kind: MarkKind,
}

/// The highest (level, round) signed or reserved for one [`MarkId`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark {
    /// Level.
    pub level: u32,
    /// Round.
    pub round: u32,
    /// BLAKE2b-256 of the request signed at this (level, round), if this board signed it since
    /// it started (after a restart or an import only the level and round are known).
    pub hash: Option<[u8; 32]>,
    /// The signature released for it, to answer an identical retry.
    pub signature: Option<Signature>,
}

impl Mark {
    /// A mark with only a position (after restart or import): everything at or below is refused.
    pub const fn position(level: u32, round: u32) -> Mark {
        Mark {
            level,
            round,
            hash: None,
            signature: None,
        }
    }
}

/// Why the watermark refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WatermarkError {
    /// Level below the mark.
    Below {
        /// Which watermark.
        kind: MarkKind,
        /// Requested level.
        level: u32,
        /// Marked level.
        mark_level: u32,
    },
    /// Same level, round not above the mark (or same round and no signature to repeat).
    NotAbove {
        /// Which watermark.
        kind: MarkKind,
        /// Requested level.
        level: u32,
        /// Requested round.
        round: u32,
        /// Marked level.
        mark_level: u32,
        /// Marked round.
        mark_round: u32,
    },
    /// Same (level, round) already signed over different bytes: a double signature.
    DifferentData {
        /// Which watermark.
        kind: MarkKind,
        /// Level.
        level: u32,
        /// Round.
        round: u32,
    },
    /// No room for a new (chain, key, kind) entry; nothing is evicted.
    TableFull {
        /// Entries the board keeps.
        capacity: u16,
    },
    /// The key already holds as many (chain, kind) entries as its quota allows
    /// (`crate::board` module `room`); nothing is evicted.
    KeyQuota {
        /// Entries the key holds.
        used: u16,
        /// Its quota: 3 per pinned chain, or 6 for a key allowed any chain.
        quota: u16,
    },
    /// The table's free entries are kept for every key slot's minimum (the three kinds on its
    /// first chain) not yet met; this key is within its quota but gets no more room.
    Reserved {
        /// Entries the key holds.
        used: u16,
        /// Its quota.
        quota: u16,
        /// Free entries in the table.
        free: u16,
        /// Entries needed for the key slots' minimums.
        reserved: u16,
    },
}

impl fmt::Display for WatermarkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            WatermarkError::Below {
                kind,
                level,
                mark_level,
            } => write!(f, "{kind} level {level} below high watermark {mark_level}"),
            WatermarkError::NotAbove {
                kind,
                level,
                round,
                mark_level,
                mark_round,
            } => write!(
                f,
                "{kind} level {level} and round {round} not above high watermark ({mark_level},{mark_round})"
            ),
            WatermarkError::DifferentData { kind, level, round } => write!(
                f,
                "{kind} level {level} and round {round} already signed with different data"
            ),
            WatermarkError::TableFull { capacity } => write!(
                f,
                "watermark table full ({capacity} chain/key/kind entries); refusing a new chain rather than forgetting an old mark"
            ),
            WatermarkError::KeyQuota { used, quota } => write!(
                f,
                "watermark quota of this key reached: it holds {used} of its {quota} chain/kind entries (3 per pinned chain, 6 if any chain is allowed); pin the key to its chains or forget the marks of other chains (`pawl watermark forget`)"
            ),
            WatermarkError::Reserved {
                used,
                quota,
                free,
                reserved,
            } => write!(
                f,
                "watermark table: its {free} free entries are kept for the first chain of each key slot ({reserved} reserved); this key holds {used} of its quota of {quota} entries"
            ),
        }
    }
}

impl core::error::Error for WatermarkError {}

/// What the watermark allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Strictly above: sign (after making the mark durable).
    Fresh,
    /// Identical retry: answer with this recorded signature, sign nothing.
    Repeat(Signature),
}

/// The bounded table of marks.
#[derive(Clone, Debug, Default)]
pub struct Watermarks<const N: usize> {
    entries: heapless::Vec<(MarkId, Mark), N>,
}

impl<const N: usize> Watermarks<N> {
    /// An empty table.
    pub const fn new() -> Self {
        Watermarks {
            entries: heapless::Vec::new(),
        }
    }

    /// The mark for `id`, if any.
    pub fn get(&self, id: &MarkId) -> Option<&Mark> {
        self.entries.iter().find(|(i, _)| i == id).map(|(_, m)| m)
    }

    /// Every (id, mark).
    pub fn iter(&self) -> impl Iterator<Item = &(MarkId, Mark)> {
        self.entries.iter()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there is no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The table's capacity.
    pub const fn capacity(&self) -> usize {
        N
    }

    fn full_error() -> WatermarkError {
        WatermarkError::TableFull {
            capacity: u16::try_from(N).unwrap_or(u16::MAX),
        }
    }

    /// Decide a request at (`level`, `round`) whose whole bytes hash to `hash`. Changes nothing.
    pub fn check(
        &self,
        id: &MarkId,
        level: u32,
        round: u32,
        hash: &[u8; 32],
    ) -> Result<Verdict, WatermarkError> {
        let Some(mark) = self.get(id) else {
            return if self.entries.is_full() {
                Err(Self::full_error())
            } else {
                Ok(Verdict::Fresh)
            };
        };
        if (level, round) > (mark.level, mark.round) {
            return Ok(Verdict::Fresh);
        }
        if level < mark.level {
            return Err(WatermarkError::Below {
                kind: id.kind,
                level,
                mark_level: mark.level,
            });
        }
        if round == mark.round {
            match (mark.hash, mark.signature) {
                (Some(h), Some(sig)) if h == *hash => return Ok(Verdict::Repeat(sig)),
                (Some(h), _) if h != *hash => {
                    return Err(WatermarkError::DifferentData {
                        kind: id.kind,
                        level,
                        round,
                    });
                }
                _ => {}
            }
        }
        Err(WatermarkError::NotAbove {
            kind: id.kind,
            level,
            round,
            mark_level: mark.level,
            mark_round: mark.round,
        })
    }

    /// Record a signature released at (`level`, `round`). Refuses (and changes nothing) unless
    /// the position is strictly above the current mark, so a caller bug cannot lower a mark.
    pub fn record(
        &mut self,
        id: &MarkId,
        level: u32,
        round: u32,
        hash: [u8; 32],
        signature: Signature,
    ) -> Result<(), WatermarkError> {
        let mark = Mark {
            level,
            round,
            hash: Some(hash),
            signature: Some(signature),
        };
        self.raise_to(id, mark)
    }

    /// Host-held keys: raise the mark to (`level`, `round`) for the request hashing to `hash`,
    /// with no signature yet. Strictly above the current mark, or refused (changing nothing).
    pub fn approve(
        &mut self,
        id: &MarkId,
        level: u32,
        round: u32,
        hash: [u8; 32],
    ) -> Result<(), WatermarkError> {
        let mark = Mark {
            level,
            round,
            hash: Some(hash),
            signature: None,
        };
        self.raise_to(id, mark)
    }

    /// Whether the mark is exactly an approval of this request (same position, same hash, no
    /// signature recorded yet).
    pub fn is_approved(&self, id: &MarkId, level: u32, round: u32, hash: &[u8; 32]) -> bool {
        self.get(id).is_some_and(|m| {
            (m.level, m.round) == (level, round) && m.hash == Some(*hash) && m.signature.is_none()
        })
    }

    /// Host-held keys: record the verified `signature` for an approval made by
    /// [`Watermarks::approve`]. Refused (changing nothing) unless the mark is still exactly
    /// that approval.
    pub fn complete(
        &mut self,
        id: &MarkId,
        level: u32,
        round: u32,
        hash: &[u8; 32],
        signature: Signature,
    ) -> Result<(), WatermarkError> {
        if !self.is_approved(id, level, round, hash) {
            return Err(match self.get(id) {
                Some(m) if (m.level, m.round) == (level, round) => WatermarkError::DifferentData {
                    kind: id.kind,
                    level,
                    round,
                },
                Some(m) => WatermarkError::NotAbove {
                    kind: id.kind,
                    level,
                    round,
                    mark_level: m.level,
                    mark_round: m.round,
                },
                None => WatermarkError::NotAbove {
                    kind: id.kind,
                    level,
                    round,
                    mark_level: 0,
                    mark_round: 0,
                },
            });
        }
        if let Some((_, m)) = self.entries.iter_mut().find(|(i, _)| i == id) {
            m.signature = Some(signature);
        }
        Ok(())
    }

    /// Raise a mark to a bare position (watermark import): strictly above, or refused.
    pub fn raise(&mut self, id: &MarkId, level: u32, round: u32) -> Result<(), WatermarkError> {
        self.raise_to(id, Mark::position(level, round))
    }

    /// Whether [`Watermarks::raise`] or [`Watermarks::record`] to (`level`, `round`) would be
    /// accepted. Changes nothing.
    pub fn can_raise(&self, id: &MarkId, level: u32, round: u32) -> Result<(), WatermarkError> {
        match self.get(id) {
            Some(m) if (level, round) <= (m.level, m.round) => Err(if level < m.level {
                WatermarkError::Below {
                    kind: id.kind,
                    level,
                    mark_level: m.level,
                }
            } else {
                WatermarkError::NotAbove {
                    kind: id.kind,
                    level,
                    round,
                    mark_level: m.level,
                    mark_round: m.round,
                }
            }),
            Some(_) => Ok(()),
            None if self.entries.is_full() => Err(Self::full_error()),
            None => Ok(()),
        }
    }

    fn raise_to(&mut self, id: &MarkId, mark: Mark) -> Result<(), WatermarkError> {
        self.can_raise(id, mark.level, mark.round)?;
        match self.entries.iter_mut().find(|(i, _)| i == id) {
            Some((_, m)) => {
                *m = mark;
                Ok(())
            }
            None => self
                .entries
                .push((*id, mark))
                .map_err(|_| Self::full_error()),
        }
    }

    /// Forget the mark of `id` (an operator's undo, confirmed on the board; never on a signing
    /// path). Returns whether there was one.
    pub fn forget(&mut self, id: &MarkId) -> bool {
        let before = self.entries.len();
        self.entries.retain(|(i, _)| i != id);
        self.entries.len() != before
    }

    /// Set the mark of `id` to the bare position (`level`, `round`), strictly below where it
    /// is (an operator's undo, confirmed on the board; never on a signing path). Returns
    /// whether it did; with no mark, or a position not below it, nothing changes.
    pub fn lower(&mut self, id: &MarkId, level: u32, round: u32) -> bool {
        match self.entries.iter_mut().find(|(i, _)| i == id) {
            Some((_, m)) if (level, round) < (m.level, m.round) => {
                *m = Mark::position(level, round);
                true
            }
            _ => false,
        }
    }

    /// Load a persisted position at boot: keeps the higher of what is there and `mark`.
    pub fn restore(&mut self, id: &MarkId, level: u32, round: u32) -> Result<(), WatermarkError> {
        match self.get(id) {
            Some(m) if (m.level, m.round) >= (level, round) => Ok(()),
            _ => self.raise(id, level, round),
        }
    }
}
