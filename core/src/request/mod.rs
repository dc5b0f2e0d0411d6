//! Parse what the baker asks to sign: the magic byte, then exactly the fields Octez reads.
//!
//! | magic | kind | what we read |
//! |---|---|---|
//! | `0x11` | block | chain id @1, level @5, fitness length F @83, round = last fitness element @83+F; the rest of the header walked to its exact end |
//! | `0x12` | preattestation | chain id @1, tag @37: 20 (level @40, round @44, 80 bytes) or 40 (BLS mode: level @38, round @42, 78 bytes) |
//! | `0x13` | attestation | as above with tags 21, 23 (+ DAL bitset) or 41 |
//! | `0x03` | generic operation | every content's kind, walked to its exact end (`operation` module) |
//! | `0x05` | Michelson data | a single Micheline expression, walked to its exact end |
//!
//! Anything else — another magic byte, a truncated field, trailing bytes, an operation kind we
//! cannot walk — is a [`ParseError`]: refused, never guessed. Offsets are 0-based and include the
//! magic byte (`docs/protocol.md` §2, §3).

mod consensus;
mod micheline;
mod operation;
mod reader;

use core::fmt;

use serde::{Deserialize, Serialize};

pub use operation::{Ballot, OpKind, OpKindSet};

/// A 4-byte Tezos chain id (`Net…`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ChainId(pub [u8; 4]);

impl ChainId {
    /// Tezos mainnet, `NetXdQprcVkpaWU` (docs/protocol.md §5.2): the chain a key is pinned to
    /// when its operator names none.
    pub const MAINNET: ChainId = ChainId([0x7a, 0x06, 0xa7, 0x70]);

    /// `Net…` text.
    pub fn to_b58(&self) -> crate::encoding::B58String {
        crate::encoding::encode(crate::encoding::Prefix::ChainId, &self.0).unwrap_or_default()
    }

    /// Parse `Net…` text.
    pub fn from_b58(text: &str) -> Result<Self, crate::encoding::EncodingError> {
        let mut buf = [0u8; crate::encoding::MAX_PAYLOAD];
        let p = crate::encoding::decode(crate::encoding::Prefix::ChainId, text, &mut buf)?;
        let mut id = [0u8; 4];
        id.copy_from_slice(p);
        Ok(ChainId(id))
    }
}

impl fmt::Display for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_b58())
    }
}

impl fmt::Debug for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_b58())
    }
}

/// What kind of request this is, in the baker's words.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum RequestKind {
    /// `0x11` Tenderbake block header.
    Block,
    /// `0x12` preattestation.
    Preattestation,
    /// `0x13` attestation (including DAL attestations and tz4 BLS mode).
    Attestation,
    /// `0x03` generic operation (transfers, delegation, ballots, …).
    Generic,
    /// `0x05` Michelson data (`PACK`).
    Michelson,
}

impl RequestKind {
    /// Every kind.
    pub const ALL: [RequestKind; 5] = [
        RequestKind::Block,
        RequestKind::Preattestation,
        RequestKind::Attestation,
        RequestKind::Generic,
        RequestKind::Michelson,
    ];

    /// Name as the CLI and messages spell it.
    pub const fn name(self) -> &'static str {
        match self {
            RequestKind::Block => "block",
            RequestKind::Preattestation => "preattestation",
            RequestKind::Attestation => "attestation",
            RequestKind::Generic => "generic",
            RequestKind::Michelson => "michelson",
        }
    }

    /// Parse a CLI name.
    pub fn from_name(name: &str) -> Option<Self> {
        RequestKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Whether requests of this kind are watermarked (blocks and consensus operations).
    pub const fn is_consensus(self) -> bool {
        matches!(
            self,
            RequestKind::Block | RequestKind::Preattestation | RequestKind::Attestation
        )
    }

    const fn bit(self) -> u8 {
        match self {
            RequestKind::Block => 1,
            RequestKind::Preattestation => 2,
            RequestKind::Attestation => 4,
            RequestKind::Generic => 8,
            RequestKind::Michelson => 16,
        }
    }
}

impl fmt::Display for RequestKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of [`RequestKind`]s.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KindSet(u8);

impl KindSet {
    /// No kind.
    pub const EMPTY: KindSet = KindSet(0);
    /// Block, preattestation and attestation: what a baking key needs.
    pub const CONSENSUS: KindSet = KindSet(1 | 2 | 4);

    /// Whether `kind` is in the set.
    pub const fn contains(self, kind: RequestKind) -> bool {
        self.0 & kind.bit() != 0
    }

    /// The set with `kind` added.
    #[must_use]
    pub const fn with(self, kind: RequestKind) -> KindSet {
        KindSet(self.0 | kind.bit())
    }

    /// The kinds in the set.
    pub fn iter(self) -> impl Iterator<Item = RequestKind> {
        RequestKind::ALL
            .into_iter()
            .filter(move |k| self.contains(*k))
    }
}

/// How a consensus request was encoded, which tells which keys may sign it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConsensusForm {
    /// A block header: any key.
    Block,
    /// Tags 20/21/23, with a slot: tz1/tz2/tz3 keys only.
    WithSlot,
    /// Tags 40/41, "BLS mode", no slot: tz4 keys only.
    BlsMode,
}

/// Level, round and encoding of a watermarked request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consensus {
    /// Chain the request is for.
    pub chain_id: ChainId,
    /// Block level.
    pub level: u32,
    /// Round within the level.
    pub round: u32,
    /// How it was encoded.
    pub form: ConsensusForm,
}

/// The parse result: what the policy and the watermark need to decide.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParsedRequest {
    /// The request kind (from the magic byte).
    pub kind: RequestKind,
    /// Chain, level, round for blocks and consensus operations; `None` otherwise.
    pub consensus: Option<Consensus>,
    /// For generic operations: every operation kind in the batch.
    pub op_kinds: OpKindSet,
    /// Number of operations in a generic batch (0 otherwise).
    pub op_count: u16,
    /// For a ballot: the vote.
    pub ballot: Option<Ballot>,
}

impl ParsedRequest {
    /// Chain id, for the kinds that carry one.
    pub fn chain_id(&self) -> Option<ChainId> {
        self.consensus.map(|c| c.chain_id)
    }

    /// Level, for watermarked kinds.
    pub fn level(&self) -> Option<u32> {
        self.consensus.map(|c| c.level)
    }

    /// Round, for watermarked kinds.
    pub fn round(&self) -> Option<u32> {
        self.consensus.map(|c| c.round)
    }
}

/// Why a request could not be read. Carries the numbers that explain it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ParseError {
    /// Nothing to sign.
    Empty,
    /// A magic byte pawl does not sign (legacy `0x01`/`0x02`, authentication `0x04`, unknown).
    UnknownMagicByte {
        /// The first byte.
        byte: u8,
    },
    /// The request ends inside a field.
    Truncated {
        /// Where the missing field starts.
        offset: usize,
    },
    /// Bytes after the end of a complete request.
    TrailingBytes {
        /// Where the extra bytes start.
        offset: usize,
        /// How many.
        count: usize,
    },
    /// A consensus tag that does not belong under this magic byte.
    UnknownConsensusTag {
        /// Magic byte.
        magic: u8,
        /// Tag found at offset 37.
        tag: u8,
    },
    /// An operation kind pawl cannot walk; refused rather than guessed.
    UnsupportedOperation {
        /// Operation tag.
        tag: u8,
        /// Where it starts.
        offset: usize,
    },
    /// A generic batch mixing a non-manager operation with others (the protocol forbids it).
    NonManagerInBatch {
        /// The non-manager operation's tag.
        tag: u8,
    },
    /// A generic operation without contents.
    NoContents,
    /// More operations than pawl counts in one batch.
    TooManyOperations,
    /// An optional field's tag is neither `0x00` nor `0xff`.
    BadOptionTag {
        /// Where.
        offset: usize,
    },
    /// An enumerated field holds an unknown value (key tag, contract tag, ballot…).
    BadTag {
        /// Where.
        offset: usize,
        /// The value found.
        value: u8,
    },
    /// A Zarith number with a superfluous trailing zero group.
    NonCanonicalNumber {
        /// Where it starts.
        offset: usize,
    },
    /// A negative level or round.
    NegativeLevelOrRound {
        /// Where.
        offset: usize,
    },
    /// The block fitness is not a well-formed list ending in a 4-byte round.
    BadFitness {
        /// Fitness length found at offset 83.
        length: u32,
    },
    /// Micheline nested deeper than pawl walks.
    TooDeep {
        /// Where.
        offset: usize,
    },
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Empty => f.write_str("empty request"),
            ParseError::UnknownMagicByte { byte } => {
                write!(
                    f,
                    "magic byte 0x{byte:02X} not allowed (pawl signs 0x11, 0x12, 0x13, 0x03, 0x05)"
                )
            }
            ParseError::Truncated { offset } => write!(f, "request truncated at byte {offset}"),
            ParseError::TrailingBytes { offset, count } => {
                write!(f, "{count} unexpected trailing byte(s) at byte {offset}")
            }
            ParseError::UnknownConsensusTag { magic, tag } => {
                write!(
                    f,
                    "consensus tag {tag} is not valid under magic byte 0x{magic:02X}"
                )
            }
            ParseError::UnsupportedOperation { tag, offset } => write!(
                f,
                "operation tag {tag} at byte {offset} is not one pawl can decode; refused"
            ),
            ParseError::NonManagerInBatch { tag } => {
                write!(f, "operation tag {tag} must be alone, not in a batch")
            }
            ParseError::NoContents => f.write_str("operation without contents"),
            ParseError::TooManyOperations => f.write_str("too many operations in one batch"),
            ParseError::BadOptionTag { offset } => write!(f, "invalid option tag at byte {offset}"),
            ParseError::BadTag { offset, value } => {
                write!(f, "invalid tag value {value} at byte {offset}")
            }
            ParseError::NonCanonicalNumber { offset } => {
                write!(f, "non-canonical number at byte {offset}")
            }
            ParseError::NegativeLevelOrRound { offset } => {
                write!(f, "negative level or round at byte {offset}")
            }
            ParseError::BadFitness { length } => {
                write!(f, "malformed block fitness (length {length})")
            }
            ParseError::TooDeep { offset } => {
                write!(f, "Michelson value nested too deeply at byte {offset}")
            }
        }
    }
}

impl core::error::Error for ParseError {}

/// Magic byte of a Tenderbake block.
pub const MAGIC_BLOCK: u8 = 0x11;
/// Magic byte of a preattestation.
pub const MAGIC_PREATTESTATION: u8 = 0x12;
/// Magic byte of an attestation.
pub const MAGIC_ATTESTATION: u8 = 0x13;
/// Magic byte of a generic operation.
pub const MAGIC_GENERIC: u8 = 0x03;
/// Magic byte of Michelson data.
pub const MAGIC_MICHELSON: u8 = 0x05;

/// Parse a signing request (the bytes exactly as the baker sent them, magic byte first).
pub fn parse(bytes: &[u8]) -> Result<ParsedRequest, ParseError> {
    let magic = *bytes.first().ok_or(ParseError::Empty)?;
    match magic {
        MAGIC_BLOCK => consensus::block(bytes),
        MAGIC_PREATTESTATION | MAGIC_ATTESTATION => consensus::attestation(bytes),
        MAGIC_GENERIC => operation::generic(bytes),
        MAGIC_MICHELSON => micheline::data(bytes),
        byte => Err(ParseError::UnknownMagicByte { byte }),
    }
}
