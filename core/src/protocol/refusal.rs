//! Why the board refused: [`Refusal`], carried in [`super::Response::Refused`]. Variants are
//! only ever appended (postcard encodes the variant index).

use core::fmt;

use serde::{Deserialize, Serialize};

use super::FrameError;
use crate::keys::{KeyError, PublicKeyHash};
use crate::policy::PolicyError;
use crate::request::{ChainId, ParseError};
use crate::store::StoreError;
use crate::watermark::{MarkKind, WatermarkError};
use crate::yubihsm::HsmError;

/// Why the board refused. Every refusal leaves the board's state as it was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Refusal {
    /// The frame could not be read.
    Frame(FrameError),
    /// The host speaks another protocol version.
    ProtocolMismatch {
        /// Board's version.
        board: u16,
        /// Host's version.
        host: u16,
    },
    /// No such key on this board.
    UnknownKey {
        /// The key asked for.
        pkh: PublicKeyHash,
    },
    /// The payload is not a request pawl signs.
    Parse(ParseError),
    /// The key's policy forbids it.
    Policy(PolicyError),
    /// The watermark forbids it (double-sign protection).
    Watermark(WatermarkError),
    /// The key refused (wrong signature version, not BLS for a proof of possession, …).
    Key(KeyError),
    /// Provisioning requests are refused in operational mode.
    ProvisioningOnly,
    /// The store failed or is untrustworthy; nothing was signed.
    Store(StoreError),
    /// No room for another key.
    KeyTableFull {
        /// Keys the board holds.
        capacity: u16,
    },
    /// The key is already on the board.
    KeyExists {
        /// The key.
        pkh: PublicKeyHash,
    },
    /// The request needs a button press on the board and none came.
    NotConfirmed,
    /// A continuation arrived with no sign waiting for it.
    NoPendingSign,
    /// The request is larger than the board signs.
    PayloadTooLarge {
        /// Payload length.
        len: u32,
        /// Limit.
        max: u32,
    },
    /// The YubiHSM2 exchange failed (secure channel, HSM error, or not set up); nothing was
    /// released and the session was dropped.
    Hsm(HsmError),
    /// In operational mode this key does not prove possession: it was not allowed to at
    /// provisioning ([`Request::AllowPossession`](super::Request::AllowPossession)).
    PossessionNotAllowed,
    /// [`Request::LowerWatermark`](super::Request::LowerWatermark) for a mark the board does not hold.
    NoSuchMark {
        /// Which mark.
        kind: MarkKind,
        /// Chain.
        chain: ChainId,
    },
    /// [`Request::LowerWatermark`](super::Request::LowerWatermark) to a position not below the mark (raising is
    /// [`Request::ImportWatermark`](super::Request::ImportWatermark)).
    NotBelowMark {
        /// Which mark.
        kind: MarkKind,
        /// Its level.
        mark_level: u32,
        /// Its round.
        mark_round: u32,
    },
    /// The request is more levels above the key's mark than its jump limit, and the board's
    /// button was not pressed ([`Request::SetJumpLimit`](super::Request::SetJumpLimit)).
    TooFarAhead {
        /// Which mark.
        kind: MarkKind,
        /// Requested level.
        level: u32,
        /// Marked level.
        mark_level: u32,
        /// The key's jump limit, in levels.
        limit: u32,
    },
    /// The key's duty on this board refuses it: standby, a companion key asked for something
    /// other than an attestation, or a level outside the window this board signs
    /// ([`Request::SetDuty`](super::Request::SetDuty)).
    OffDuty(super::OffDuty),
    /// A CometBFT request refused by the chain, height/round/step or sign-bytes rules
    /// ([`cometbft`](super::cometbft)).
    CometBft(super::cometbft::CometError),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Frame(e) => write!(f, "bad frame: {e}"),
            Refusal::ProtocolMismatch { board, host } => write!(
                f,
                "device protocol mismatch: board speaks version {board}, host version {host}"
            ),
            Refusal::UnknownKey { pkh } => write!(f, "unknown key {pkh}"),
            Refusal::Parse(e) => write!(f, "{e}"),
            Refusal::Policy(e) => write!(f, "{e}"),
            Refusal::Watermark(e) => write!(f, "{e}"),
            Refusal::Key(e) => write!(f, "{e}"),
            Refusal::ProvisioningOnly => f.write_str(
                "the board is in operational mode; provisioning requests need provisioning mode",
            ),
            Refusal::Store(e) => write!(f, "watermark store: {e}"),
            Refusal::KeyTableFull { capacity } => {
                write!(f, "the board already holds {capacity} keys")
            }
            Refusal::KeyExists { pkh } => write!(f, "key {pkh} is already on the board"),
            Refusal::NotConfirmed => f.write_str("not confirmed on the device"),
            Refusal::NoPendingSign => f.write_str("no signature is waiting for this answer"),
            Refusal::PayloadTooLarge { len, max } => {
                write!(
                    f,
                    "request of {len} bytes exceeds the board's limit of {max}"
                )
            }
            Refusal::Hsm(e) => write!(f, "YubiHSM2: {e}"),
            Refusal::PossessionNotAllowed => f.write_str(
                "this key proves possession only in provisioning mode: it was not allowed to in operational mode (`pawl keys … --allow-pop`)",
            ),
            Refusal::NoSuchMark { kind, chain } => {
                write!(f, "no {kind} watermark for this key on chain {chain}")
            }
            Refusal::NotBelowMark {
                kind,
                mark_level,
                mark_round,
            } => write!(
                f,
                "lowering must go below the {kind} watermark ({mark_level},{mark_round}); raising is an import"
            ),
            Refusal::TooFarAhead {
                kind,
                level,
                mark_level,
                limit,
            } => write!(
                f,
                "{kind} level {level} is more than {limit} levels (the key's jump limit) above high watermark {mark_level}: not confirmed on the device"
            ),
            Refusal::OffDuty(e) => write!(f, "{e}"),
            Refusal::CometBft(e) => write!(f, "{e}"),
        }
    }
}

impl From<ParseError> for Refusal {
    fn from(e: ParseError) -> Self {
        Refusal::Parse(e)
    }
}
impl From<PolicyError> for Refusal {
    fn from(e: PolicyError) -> Self {
        Refusal::Policy(e)
    }
}
impl From<WatermarkError> for Refusal {
    fn from(e: WatermarkError) -> Self {
        Refusal::Watermark(e)
    }
}
impl From<KeyError> for Refusal {
    fn from(e: KeyError) -> Self {
        Refusal::Key(e)
    }
}
impl From<super::OffDuty> for Refusal {
    fn from(e: super::OffDuty) -> Self {
        Refusal::OffDuty(e)
    }
}
impl From<super::cometbft::CometError> for Refusal {
    fn from(e: super::cometbft::CometError) -> Self {
        Refusal::CometBft(e)
    }
}
impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Self {
        Refusal::Store(e)
    }
}
