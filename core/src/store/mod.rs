//! What the board keeps across power cycles, behind one trait.
//!
//! The core never writes flash itself: it asks a [`Store`] to make a mark durable **before** it
//! releases a signature, and to save keys and policies at provisioning.
//!
//! * [`NorStore`] is the board's store: a log over erased NOR-flash pages with ceiling
//!   reservation, sealed keys and an anti-rollback counter ([`nor`] module doc has the layout
//!   and the power-failure walk-through).
//! * [`MemoryStore`] is for tests: it counts writes and can be told to fail.
//! * [`wear`] models how long a flash region lasts.
//! * [`Budgeted`] bounds the rate of mark writes in operational mode ([`budget`]).

use core::fmt;

use serde::{Deserialize, Serialize};

use crate::keys::{Curve, PublicKey, SecretBytes};
use crate::policy::Policy;
use crate::protocol::Mode;
use crate::watermark::MarkId;

pub mod budget;
pub mod durable;
pub mod epoch;
mod memory;
pub mod nor;
mod resets;
mod seal;
pub mod wear;

pub use budget::{Budgeted, Clock, WriteBudget};
pub use durable::{Durability, Synchronous};
pub use epoch::{Anchored, EpochCounter, EpochReport, EpochState};
pub use memory::{MEMORY_MARKS, MemoryStore};
pub use nor::{BoardKey, FORMAT_VERSION, NorStore, NorStoreConfig};

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
    /// The flash write budget is spent ([`budget`]): nothing was written; the same request
    /// may succeed after `retry_ms` milliseconds. Transient: the store stays healthy.
    WriteBudget {
        /// Milliseconds until the budget holds what the write needs.
        retry_ms: u32,
    },
    /// The store was written in a newer layout than this firmware reads (the store's format
    /// record, `nor.rs` "Format version"): nothing is read or written.
    NewerFormat {
        /// The store's format version.
        version: u16,
    },
    /// The store's newest record is from an older OTP epoch than the board has burned
    /// ([`epoch`]): a copy of the whole flash, taken before a later boot wrote, was written
    /// back. Nothing is read or written until re-provisioning.
    OtpEpochBehind {
        /// Epoch of the newest record on flash.
        flash: u32,
        /// Epoch burned in OTP.
        otp: u32,
    },
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
            StoreError::WriteBudget { retry_ms } => {
                return write!(f, "flash write budget spent: retry in {retry_ms} ms");
            }
            StoreError::NewerFormat { version } => {
                return write!(
                    f,
                    "the store was written by a newer firmware (format {version}); flash that firmware again, or re-provision with erase"
                );
            }
            StoreError::OtpEpochBehind { flash, otp } => {
                return write!(
                    f,
                    "a whole-flash image older than this board's OTP epoch was written back (flash epoch {flash}, OTP epoch {otp}): its marks are stale and the board may have signed above them; import current watermarks and re-provision the board"
                );
            }
        })
    }
}

impl core::error::Error for StoreError {}

/// A key as stored (the store seals it; the core hands it over in the clear).
///
/// Encoded with postcard in field order. `host_public` was appended for host-held keys,
/// `hsm` after it for YubiHSM2 keys, `pop_operational` after that for the
/// proof-of-possession permission, `jump_limit` for the jump guard, `duty` for the key's
/// lifecycle and `cometbft_chain` last for CometBFT keys; a record written before any of them
/// existed ends early and decodes with them `None` ([`StoredKey::decode`]). New fields are only ever appended, as
/// `Option`s.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredKey {
    /// Curve.
    pub curve: Curve,
    /// Secret, in the Tezos encoding of the curve (all zero for a host-held key).
    pub secret: SecretBytes,
    /// Policy.
    pub policy: Policy,
    /// For a host-held key (Azure Key Vault): its registered public key; the board holds no
    /// secret for it. `None` for on-board keys.
    pub host_public: Option<PublicKey>,
    /// For a YubiHSM2 key: where it is. `secret` then holds the authentication key's
    /// `K-ENC ‖ K-MAC` (sealed like any secret) and `host_public` the key's public key.
    pub hsm: Option<HsmLink>,
    /// Whether the key may prove possession (BLS) in operational mode; `None` (a record from
    /// before the permission existed) is "no".
    pub pop_operational: Option<bool>,
    /// Jump guard: a consensus request more than this many levels above the key's mark needs
    /// a press of the board's button; `None` (also a record from before the guard existed) is
    /// the default, `crate::board::DEFAULT_JUMP_LIMIT`.
    pub jump_limit: Option<u32>,
    /// The key's duty on this board (role, standby, signing window); `None` (a record from
    /// before duties existed) is the default duty.
    pub duty: Option<crate::protocol::Duty>,
    /// The CometBFT chain a Cosmos key is pinned to (`protocol::cometbft`); `None` (also a
    /// record from before CometBFT) for every other key.
    pub cometbft_chain: Option<crate::protocol::cometbft::CometChainId>,
}

/// A YubiHSM2 key's place: the authentication key the board opens sessions with, and the
/// key's object id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HsmLink {
    /// Authentication key object id.
    pub auth_key_id: u16,
    /// Asymmetric key object id.
    pub key_id: u16,
}

impl StoredKey {
    /// Decode postcard bytes, accepting records written before `host_public`, `hsm`,
    /// `pop_operational`, `jump_limit`, `duty` or `cometbft_chain` existed.
    pub fn decode(bytes: &[u8]) -> Result<StoredKey, StoreError> {
        let ((curve, secret, policy), rest) =
            postcard::take_from_bytes::<(Curve, SecretBytes, Policy)>(bytes)
                .map_err(|_| StoreError::Corrupted)?;
        let (host_public, rest) = optional::<PublicKey>(rest)?;
        let (hsm, rest) = optional::<HsmLink>(rest)?;
        let (pop_operational, rest) = optional::<bool>(rest)?;
        let (jump_limit, rest) = optional::<u32>(rest)?;
        let (duty, rest) = optional::<crate::protocol::Duty>(rest)?;
        let (cometbft_chain, rest) = optional::<crate::protocol::cometbft::CometChainId>(rest)?;
        if !rest.is_empty() {
            return Err(StoreError::Corrupted);
        }
        Ok(StoredKey {
            curve,
            secret,
            policy,
            host_public,
            hsm,
            pop_operational,
            jump_limit,
            duty,
            cometbft_chain,
        })
    }
}

/// An appended `Option<T>` field: absent (old record) or present.
fn optional<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
) -> Result<(Option<T>, &[u8]), StoreError> {
    if bytes.is_empty() {
        return Ok((None, bytes));
    }
    postcard::take_from_bytes::<Option<T>>(bytes).map_err(|_| StoreError::Corrupted)
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

    /// Forget the marks of `ids`, durably and **all or none**: after `Ok`, [`Store::load`]
    /// reports none of them; after `Err`, the store holds every one as it did. An operator's
    /// act in provisioning mode, confirmed on the board (the board's `undo` module); never on a
    /// signing path. A power cut during it leaves every mark as it was or every one forgotten,
    /// nothing in between. A mark the store does not hold is already forgotten. Stores that
    /// cannot forget refuse ([`StoreError::Io`]).
    fn forget_marks(&mut self, ids: &[MarkId]) -> Result<(), StoreError> {
        let _ = ids;
        Err(StoreError::Io)
    }

    /// Set the mark of `id` to exactly (`level`, `round`), below where it is, durably: after
    /// `Ok`, [`Store::load`] reports this position (or a higher one written since). Like
    /// [`Store::forget_marks`], an operator's act; a power cut during it leaves the mark either
    /// as it was or lowered, never without a mark. A mark the store does not hold is
    /// [`StoreError::Corrupted`] (the board only lowers marks it loaded or wrote).
    fn lower_mark(&mut self, id: &MarkId, level: u32, round: u32) -> Result<(), StoreError> {
        let _ = (id, level, round);
        Err(StoreError::Io)
    }

    /// Save the key in `slot` (new key, or a policy change), durably.
    fn persist_key(&mut self, slot: u8, key: &StoredKey) -> Result<(), StoreError>;

    /// Forget the key in `slot`, durably: after `Ok`, [`Store::load`] no longer reports it and
    /// the slot may take another key. Its marks stay (they are named by key hash, not slot):
    /// the key comes back to them if it is added again. A power cut leaves the key either
    /// there or gone. Stores that cannot remove keys refuse ([`StoreError::Io`]).
    fn remove_key(&mut self, slot: u8) -> Result<(), StoreError> {
        let _ = slot;
        Err(StoreError::Io)
    }

    /// Idle-time work, for board glue to call when no request is waiting: raise, by one
    /// durable write, the reservation of a mark that the next signature would otherwise have
    /// to raise on its own path. `Ok(true)`: something was written (call again while still
    /// idle); `Ok(false)`: nothing is due. Only ever moves a stored position up, so it can
    /// never let anything be signed that [`Store::persist_mark`] would not have allowed.
    fn reserve_ahead(&mut self) -> Result<bool, StoreError> {
        Ok(false)
    }

    /// How many records [`Store::persist_mark`] of this position would write now: 0 when it is
    /// durable already (at or below a stored ceiling), else what it costs. The write budget
    /// ([`budget`]) asks before every mark write; the default (1) counts every call as a write.
    fn persist_cost(&self, id: &MarkId, level: u32, round: u32) -> u32 {
        let _ = (id, level, round);
        1
    }

    /// Whether [`Store::persist_mark`] of this position could write now, asked before the board
    /// waits for its button: a store with a write budget ([`budget`]) refuses as
    /// `persist_mark` would, without spending anything. The default allows.
    fn may_persist(&mut self, id: &MarkId, level: u32, round: u32) -> Result<(), StoreError> {
        let _ = (id, level, round);
        Ok(())
    }

    /// The write budget's note ([`budget`]) as loaded: what the newest ceiling record carried
    /// (0 in records from before the note); `None` only when the store holds no ceiling record
    /// at all (a board that never made a mark durable). Stores that keep no note say `Some(0)`.
    fn budget_note(&self) -> Option<u16> {
        Some(0)
    }

    /// Set the note written into every ceiling record from now on (MAC'd with the record).
    fn set_budget_note(&mut self, note: u16) {
        let _ = note;
    }

    /// The board's mode, told once when the board opens: the write budget applies in
    /// operational mode only.
    fn board_mode(&mut self, mode: Mode) {
        let _ = mode;
    }

    /// The OTP rollback anchor as of now ([`epoch`]); `None` for stores without one.
    fn epoch(&self) -> Option<EpochReport> {
        None
    }

    /// Flash wear so far (zero for stores without flash).
    fn wear(&self) -> WearCounters {
        WearCounters::default()
    }

    /// Re-provisioning after [`StoreError::RolledBack`], [`StoreError::OtpEpochBehind`] or
    /// [`StoreError::Corrupted`]: with
    /// `erase`, start from an empty store; without, adopt the stored image as it is (its marks
    /// are stale: the operator imports current watermarks next). Either way the anti-rollback
    /// counter is brought level with the image, so the store loads again.
    fn reprovision(&mut self, erase: bool) -> Result<(), StoreError>;
}

/// What the store has done to its flash since the board started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WearCounters {
    /// Records written (marks, ceilings, keys).
    pub records: u32,
    /// Bytes programmed.
    pub bytes_written: u64,
    /// Pages erased.
    pub pages_erased: u32,
}

/// Where the board keeps the number of the last record it wrote, outside the flash the
/// records live in (RP2350: OTP rows; simulator: a separate file). A store image whose newest
/// record is older than this number is a rollback.
pub trait RollbackGuard {
    /// The lowest record number the store may hold as its newest.
    fn floor(&mut self) -> Result<u32, StoreError>;

    /// Record `seq` as written. Called after the record is durable, so a power cut in between
    /// leaves the guard behind the flash (accepted), never ahead of it.
    fn advance(&mut self, seq: u32) -> Result<(), StoreError>;

    /// The OTP epoch counter anchoring this guard ([`epoch`]), if the board has one.
    fn anchor(&mut self) -> Option<&mut dyn EpochCounter> {
        None
    }
}

/// A board without a rollback counter: rollback goes undetected.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoGuard;

impl RollbackGuard for NoGuard {
    fn floor(&mut self) -> Result<u32, StoreError> {
        Ok(0)
    }

    fn advance(&mut self, _: u32) -> Result<(), StoreError> {
        Ok(())
    }
}
