//! CometBFT privval: the Cosmos request family (canonical votes and proposals, height/round/step
//! marks).
//!
//! One request family of the device protocol: its own request and response types, carried by
//! [`super::Request::CometBft`] and [`super::Response::CometBft`]. Variants are only ever
//! appended. The rules the board applies are in `docs/cometbft.md` and the board's `cometbft`
//! module; in short:
//!
//! * A key signs CometBFT requests only once it is a **Cosmos key**: an Ed25519 (tz1) key on
//!   the board or in a YubiHSM2 (host-held keys: not in this version, [`CometError::Backend`]),
//!   pinned to one CometBFT chain id by [`CometRequest::SetChain`]
//!   (provisioning mode; the key's role becomes [`Role::Cosmos`](super::Role::Cosmos)). A
//!   Cosmos key refuses every Tezos request and a Tezos key every CometBFT signing request
//!   ([`Refusal::OffDuty`](super::Refusal::OffDuty)).
//! * `sign_bytes` are what CometBFT's `VoteSignBytes` / `ProposalSignBytes` produce: a uvarint
//!   length, then a protobuf `CanonicalVote` / `CanonicalProposal`. The board decodes them
//!   itself (nothing the host says about height, round or chain is trusted) and refuses unknown
//!   fields, wrong wire types, duplicates, trailing bytes and a chain id other than the key's.
//! * One mark per (chain, key): height, then round, then step (propose 1, prevote 2,
//!   precommit 3). A regression is refused; at the same position the identical sign bytes get
//!   the recorded signature back, sign bytes that differ only in their timestamp get the
//!   recorded signature **and the recorded timestamp** (the node must put that timestamp into
//!   its vote or proposal, as CometBFT's FilePV does); anything else is a double sign and is
//!   refused. The mark is durable before the signature leaves the board.
//! * A YubiHSM2 key: after every check and with the mark durable, the board answers
//!   [`super::Response::RelayToHsm`] (Sign EdDSA over the whole sign bytes, sealed in the
//!   board's own session); the bridge relays it and the HSM's answers
//!   ([`super::Request::HsmReply`]) until the board, having verified the HSM's signature over
//!   the sign bytes under the registered key, answers [`super::Response::CometBft`]. A vote
//!   extension for a YubiHSM2 key is refused ([`CometError::HsmExtension`]).
//!
//! Requests are answered with [`super::Response::CometBft`], except [`CometRequest::SetChain`]
//! ([`super::Response::KeyInfo`]) and refusals ([`super::Response::Refused`]).

use serde::{Deserialize, Serialize};

use crate::keys::{PublicKeyHash, Signature};

/// Longest CometBFT chain id (CometBFT's own limit, `MaxChainIDLen`).
pub const MAX_CHAIN_ID: usize = 50;

/// Longest vote or proposal sign bytes the board reads. A vote is under 200 bytes with a
/// 50-byte chain id; a proposal a few bytes more.
pub const MAX_COMET_SIGN_BYTES: usize = 512;

/// A CometBFT chain id (`cosmoshub-4`, `osmosis-1`): 1 to [`MAX_CHAIN_ID`] bytes.
pub type CometChainId = heapless::String<MAX_CHAIN_ID>;

/// A request of this family.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum CometRequest<'a> {
    /// Provisioning: make Ed25519 key `pkh` a Cosmos key ([`Role::Cosmos`](super::Role::Cosmos))
    /// that signs CometBFT votes and proposals for `chain_id` and nothing else, stored with the
    /// key (its standby flag and height window stay). Pinning another chain later starts a new
    /// mark for it; the old chain's mark stays and guards the key if it comes back. Answered
    /// with [`super::Response::KeyInfo`].
    SetChain {
        /// Which key (tz1).
        pkh: PublicKeyHash,
        /// The CometBFT chain id, 1 to [`MAX_CHAIN_ID`] bytes of printable ASCII.
        #[serde(borrow)]
        chain_id: &'a str,
    },
    /// Sign a prevote or precommit: [`CometResponse::Vote`].
    SignVote {
        /// Which key.
        pkh: PublicKeyHash,
        /// `VoteSignBytes`: uvarint length ‖ `CanonicalVote`, at most
        /// [`MAX_COMET_SIGN_BYTES`].
        #[serde(borrow)]
        sign_bytes: &'a [u8],
        /// `VoteExtensionSignBytes` (uvarint length ‖ `CanonicalVoteExtension`) when the node
        /// wants the vote's extension signed: only for a precommit for a block, with the
        /// vote's height, round and chain id. Signed every time the vote is answered (also on
        /// a retry), as FilePV does: an extension is not a double-sign hazard.
        #[serde(borrow)]
        extension: Option<&'a [u8]>,
    },
    /// Sign a proposal: [`CometResponse::Proposal`].
    SignProposal {
        /// Which key.
        pkh: PublicKeyHash,
        /// `ProposalSignBytes`: uvarint length ‖ `CanonicalProposal`, at most
        /// [`MAX_COMET_SIGN_BYTES`].
        #[serde(borrow)]
        sign_bytes: &'a [u8],
    },
    /// The key's chain and mark: [`CometResponse::State`]. Any mode, any key.
    State {
        /// Which key.
        pkh: PublicKeyHash,
    },
}

/// A protobuf `google.protobuf.Timestamp` as CometBFT signs it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Timestamp {
    /// Seconds since the Unix epoch.
    pub seconds: i64,
    /// Nanoseconds, 0 to 999,999,999.
    pub nanos: i32,
}

/// The step of a CometBFT signature, in the order a round takes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Step {
    /// A proposal (FilePV step 1).
    Propose,
    /// A prevote (step 2).
    Prevote,
    /// A precommit (step 3).
    Precommit,
}

impl Step {
    /// FilePV's number for the step: propose 1, prevote 2, precommit 3.
    pub const fn number(self) -> u8 {
        match self {
            Step::Propose => 1,
            Step::Prevote => 2,
            Step::Precommit => 3,
        }
    }

    /// The step of FilePV number `n`.
    pub const fn from_number(n: u8) -> Option<Step> {
        match n {
            1 => Some(Step::Propose),
            2 => Some(Step::Prevote),
            3 => Some(Step::Precommit),
            _ => None,
        }
    }

    /// Name, in CometBFT's words.
    pub const fn name(self) -> &'static str {
        match self {
            Step::Propose => "propose",
            Step::Prevote => "prevote",
            Step::Precommit => "precommit",
        }
    }
}

/// Where a key's CometBFT mark stands: nothing at or below (height, round, step) is signed
/// again, except the identical or timestamp-only retry of what this board signed there since
/// it started.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CometMark {
    /// Height.
    pub height: u32,
    /// Round.
    pub round: u32,
    /// Step; `None` for a position imported without one (`ImportWatermark` of a `cometbft`
    /// mark). After a restart the board holds the reserved position: every step of the
    /// persisted height is refused (`docs/cometbft.md`).
    pub step: Option<Step>,
    /// Whether this board signed at exactly this position since it started (a retry can be
    /// answered).
    pub signed_here: bool,
}

/// The board's answer to a [`CometRequest`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum CometResponse {
    /// Answer to [`CometRequest::SignVote`].
    Vote {
        /// Ed25519 signature over `sign_bytes` — or, for a retry, the one recorded.
        signature: Signature,
        /// `Some` when the request differed from the recorded vote only in its timestamp: the
        /// recorded timestamp, which the node must put into its vote (the signature covers it).
        timestamp: Option<Timestamp>,
        /// Ed25519 signature over the extension's sign bytes, when the request carried them.
        extension_signature: Option<Signature>,
    },
    /// Answer to [`CometRequest::SignProposal`].
    Proposal {
        /// Ed25519 signature over `sign_bytes` — or, for a retry, the one recorded.
        signature: Signature,
        /// As for [`CometResponse::Vote`]: the recorded timestamp of a timestamp-only retry.
        timestamp: Option<Timestamp>,
    },
    /// Answer to [`CometRequest::State`].
    State {
        /// The chain the key is pinned to; `None` for a key that is not a Cosmos key.
        chain_id: Option<CometChainId>,
        /// The key's mark on that chain, if any.
        mark: Option<CometMark>,
    },
}

impl CometRequest<'_> {
    /// Whether the request may be written again after its answer was lost (the bridge's
    /// reconnect rule): signing requests and reads yes — the board answers a signing request
    /// it already signed with the recorded signature, or refuses — and provisioning no.
    pub fn reasking_is_safe(&self) -> bool {
        match self {
            CometRequest::SignVote { .. }
            | CometRequest::SignProposal { .. }
            | CometRequest::State { .. } => true,
            CometRequest::SetChain { .. } => false,
        }
    }
}

/// Why the board refused a CometBFT request ([`Refusal::CometBft`](super::Refusal::CometBft)).
/// Every refusal leaves the board's state as it was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CometError {
    /// The sign bytes are not a canonical vote, proposal or vote extension the board reads.
    Parse(SignBytesError),
    /// The key is a Cosmos key with no chain pinned, or not a Cosmos key.
    NoChain,
    /// The sign bytes name another chain than the one the key is pinned to.
    WrongChain,
    /// The chain id is empty, longer than [`MAX_CHAIN_ID`] or not printable ASCII.
    BadChainId,
    /// Only Ed25519 (tz1) keys take the Cosmos role.
    NotEd25519,
    /// The height is 0, negative or above 2³²−1 (the board's marks hold 32 bits).
    HeightOutOfRange,
    /// The round is negative or above 2³⁰−1.
    RoundOutOfRange,
    /// Height, round or step below the key's mark.
    Regression {
        /// Requested height.
        height: u32,
        /// Requested round.
        round: u32,
        /// Requested step.
        step: Step,
        /// Marked height.
        mark_height: u32,
        /// Marked round.
        mark_round: u32,
    },
    /// Same height, round and step as the mark, and the board holds no record of what it
    /// signed there (after a restart, or a reserved position): it cannot tell a retry from a
    /// double sign, so it refuses.
    NoRecord {
        /// Height.
        height: u32,
        /// Round.
        round: u32,
    },
    /// Same height, round and step already signed over sign bytes that differ in more than
    /// the timestamp: a double sign.
    DoubleSign {
        /// Height.
        height: u32,
        /// Round.
        round: u32,
        /// Step.
        step: Step,
    },
    /// An extension was given for a vote that is not a precommit for a block, or its height,
    /// round or chain differ from the vote's.
    ExtensionMismatch,
    /// The key is host-held: only keys on the board and YubiHSM2 keys sign CometBFT requests.
    Backend,
    /// A vote extension was given for a YubiHSM2 key: the board relays one sign command per
    /// request, so extensions are signed only by keys on the board.
    HsmExtension,
}

/// What is wrong with sign bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SignBytesError {
    /// Longer than [`MAX_COMET_SIGN_BYTES`] (an extension: than the frame allows).
    TooLong,
    /// The length prefix does not match the bytes that follow (short, or bytes after them).
    Length,
    /// A varint that is over-long, over 64 bits or cut short.
    Varint,
    /// A field the message does not have, a field out of order or twice, or a wrong wire type.
    Field {
        /// Field number.
        number: u32,
    },
    /// A field's value is out of range: the message type, a hash that is not 32 bytes, the
    /// timestamp's nanoseconds, a chain id that is not UTF-8 or too long.
    Value {
        /// Field number.
        number: u32,
    },
    /// A required field is missing (the timestamp of a vote or proposal, the chain id).
    Missing {
        /// Field number.
        number: u32,
    },
    /// A vote's sign bytes given as a proposal's, or the other way round.
    WrongType,
}

impl core::fmt::Display for SignBytesError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SignBytesError::TooLong => f.write_str("sign bytes too long"),
            SignBytesError::Length => f.write_str("length prefix does not match the sign bytes"),
            SignBytesError::Varint => f.write_str("bad varint"),
            SignBytesError::Field { number } => {
                write!(f, "unexpected, repeated or out-of-order field {number}")
            }
            SignBytesError::Value { number } => write!(f, "field {number} out of range"),
            SignBytesError::Missing { number } => write!(f, "field {number} missing"),
            SignBytesError::WrongType => {
                f.write_str("a vote given as a proposal or a proposal given as a vote")
            }
        }
    }
}

impl core::fmt::Display for CometError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            CometError::Parse(e) => write!(f, "CometBFT sign bytes: {e}"),
            CometError::NoChain => f.write_str(
                "the key is not pinned to a CometBFT chain (pawl keys … cosmos chain, provisioning mode)",
            ),
            CometError::WrongChain => {
                f.write_str("the sign bytes are for another chain than the key is pinned to")
            }
            CometError::BadChainId => f.write_str(
                "a CometBFT chain id is 1 to 50 bytes of printable ASCII",
            ),
            CometError::NotEd25519 => f.write_str("only Ed25519 (tz1) keys sign for CometBFT"),
            CometError::HeightOutOfRange => {
                f.write_str("height 0, negative or above 4294967295: refused")
            }
            CometError::RoundOutOfRange => f.write_str("round negative or above 2^30-1: refused"),
            CometError::Regression {
                height,
                round,
                step,
                mark_height,
                mark_round,
            } => write!(
                f,
                "{} at height {height} round {round} is not above the key's mark (height {mark_height}, round {mark_round})",
                step.name()
            ),
            CometError::NoRecord { height, round } => write!(
                f,
                "height {height} round {round} is at the key's mark and the board holds no record of what it signed there (restart): refused"
            ),
            CometError::DoubleSign {
                height,
                round,
                step,
            } => write!(
                f,
                "{} at height {height} round {round} already signed with different data: double sign refused",
                step.name()
            ),
            CometError::ExtensionMismatch => f.write_str(
                "a vote extension is signed only with a precommit for a block, at its height, round and chain",
            ),
            CometError::Backend => f.write_str(
                "only keys on the board and YubiHSM2 keys sign CometBFT requests (not host-held keys)",
            ),
            CometError::HsmExtension => f.write_str(
                "vote extensions are not signed with YubiHSM2 keys (one HSM sign per request): disable vote extensions or use a key on the board",
            ),
        }
    }
}
