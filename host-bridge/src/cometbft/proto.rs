//! The privval messages, and the canonical forms CometBFT signs, as our own prost structs.
//!
//! Field numbers are those of CometBFT's `cometbft.privval.v1` / `cometbft.types.v1` protos
//! (the same numbers as 0.38's `tendermint.privval` / `tendermint.types`: the packages were
//! renamed, the wire kept). Only what the signer reads or writes is here. Where 0.38 and 1.0
//! differ, both are carried:
//!
//! * `PubKeyResponse`: 0.38 reads `pub_key` (field 1, a `crypto.PublicKey`), 1.0 reads
//!   `pub_key_bytes` and `pub_key_type` (fields 3 and 4; field 1 is reserved there). The answer
//!   fills all three; each node skips the fields it does not know.
//! * `SignVoteRequest.skip_extension_signing` (field 3) exists from 1.0 on; a 0.38 node never
//!   sends it, which reads as `false`.
//! * `SignBytesRequest` / `SignBytesResponse` (fields 9 and 10 of `Message`, 1.0): arbitrary
//!   bytes, which pawl never signs; they are answered with an error.

/// `google.protobuf.Timestamp`.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct Timestamp {
    /// Seconds since the Unix epoch.
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    /// Nanoseconds.
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

/// Go's zero `time.Time` (0001-01-01T00:00:00Z) as a timestamp: what a Go node reads for an
/// absent, non-nullable timestamp, and so what it signs for one.
pub const GO_ZERO_TIME: Timestamp = Timestamp {
    seconds: -62_135_596_800,
    nanos: 0,
};

/// `types.PartSetHeader`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct PartSetHeader {
    /// Number of parts.
    #[prost(uint32, tag = "1")]
    pub total: u32,
    /// Merkle root of the parts.
    #[prost(bytes = "vec", tag = "2")]
    pub hash: Vec<u8>,
}

/// `types.BlockID`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct BlockId {
    /// Block hash.
    #[prost(bytes = "vec", tag = "1")]
    pub hash: Vec<u8>,
    /// Part set header.
    #[prost(message, optional, tag = "2")]
    pub part_set_header: Option<PartSetHeader>,
}

/// `SignedMsgType`: prevote.
pub const PREVOTE: i32 = 1;
/// `SignedMsgType`: precommit.
pub const PRECOMMIT: i32 = 2;
/// `SignedMsgType`: proposal.
pub const PROPOSAL: i32 = 32;

/// `types.Vote`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Vote {
    /// `SignedMsgType`.
    #[prost(int32, tag = "1")]
    pub r#type: i32,
    /// Height.
    #[prost(int64, tag = "2")]
    pub height: i64,
    /// Round.
    #[prost(int32, tag = "3")]
    pub round: i32,
    /// The block voted for (zero: nil).
    #[prost(message, optional, tag = "4")]
    pub block_id: Option<BlockId>,
    /// Timestamp.
    #[prost(message, optional, tag = "5")]
    pub timestamp: Option<Timestamp>,
    /// Validator address.
    #[prost(bytes = "vec", tag = "6")]
    pub validator_address: Vec<u8>,
    /// Validator index.
    #[prost(int32, tag = "7")]
    pub validator_index: i32,
    /// Signature over the vote's sign bytes.
    #[prost(bytes = "vec", tag = "8")]
    pub signature: Vec<u8>,
    /// Vote extension (non-nil precommits).
    #[prost(bytes = "vec", tag = "9")]
    pub extension: Vec<u8>,
    /// Signature over the extension's sign bytes.
    #[prost(bytes = "vec", tag = "10")]
    pub extension_signature: Vec<u8>,
}

/// `types.Proposal`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Proposal {
    /// `SignedMsgType` (proposal).
    #[prost(int32, tag = "1")]
    pub r#type: i32,
    /// Height.
    #[prost(int64, tag = "2")]
    pub height: i64,
    /// Round.
    #[prost(int32, tag = "3")]
    pub round: i32,
    /// Proof-of-lock round (-1: none).
    #[prost(int32, tag = "4")]
    pub pol_round: i32,
    /// The block proposed.
    #[prost(message, optional, tag = "5")]
    pub block_id: Option<BlockId>,
    /// Timestamp.
    #[prost(message, optional, tag = "6")]
    pub timestamp: Option<Timestamp>,
    /// Signature over the proposal's sign bytes.
    #[prost(bytes = "vec", tag = "7")]
    pub signature: Vec<u8>,
}

/// `crypto.PublicKey` with its Ed25519 member (a oneof of one here: the wire is the same).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct PublicKey {
    /// Ed25519 public key, 32 bytes.
    #[prost(bytes = "vec", tag = "1")]
    pub ed25519: Vec<u8>,
}

/// `privval.RemoteSignerError`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct RemoteSignerError {
    /// Error code (pawl: [`super::answer::CODE_REFUSED`], [`super::answer::CODE_DOUBLE_SIGN`]).
    #[prost(int32, tag = "1")]
    pub code: i32,
    /// What happened, for the node's log.
    #[prost(string, tag = "2")]
    pub description: String,
}

/// `privval.PubKeyRequest`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct PubKeyRequest {
    /// Chain id.
    #[prost(string, tag = "1")]
    pub chain_id: String,
}

/// `privval.PubKeyResponse` (0.38 and 1.0 fields, see the module docs).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct PubKeyResponse {
    /// The key (0.38).
    #[prost(message, optional, tag = "1")]
    pub pub_key: Option<PublicKey>,
    /// Error.
    #[prost(message, optional, tag = "2")]
    pub error: Option<RemoteSignerError>,
    /// The key's bytes (1.0).
    #[prost(bytes = "vec", tag = "3")]
    pub pub_key_bytes: Vec<u8>,
    /// The key's type, `ed25519` (1.0).
    #[prost(string, tag = "4")]
    pub pub_key_type: String,
}

/// `privval.SignVoteRequest`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct SignVoteRequest {
    /// The vote.
    #[prost(message, optional, tag = "1")]
    pub vote: Option<Vote>,
    /// Chain id.
    #[prost(string, tag = "2")]
    pub chain_id: String,
    /// 1.0: the node does not want the extension signed (extensions off).
    #[prost(bool, tag = "3")]
    pub skip_extension_signing: bool,
}

/// `privval.SignedVoteResponse`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct SignedVoteResponse {
    /// The signed vote.
    #[prost(message, optional, tag = "1")]
    pub vote: Option<Vote>,
    /// Error.
    #[prost(message, optional, tag = "2")]
    pub error: Option<RemoteSignerError>,
}

/// `privval.SignProposalRequest`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct SignProposalRequest {
    /// The proposal.
    #[prost(message, optional, tag = "1")]
    pub proposal: Option<Proposal>,
    /// Chain id.
    #[prost(string, tag = "2")]
    pub chain_id: String,
}

/// `privval.SignedProposalResponse`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct SignedProposalResponse {
    /// The signed proposal.
    #[prost(message, optional, tag = "1")]
    pub proposal: Option<Proposal>,
    /// Error.
    #[prost(message, optional, tag = "2")]
    pub error: Option<RemoteSignerError>,
}

/// `privval.PingRequest`.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct PingRequest {}

/// `privval.PingResponse`.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct PingResponse {}

/// `privval.SignBytesRequest` (1.0): never signed.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct SignBytesRequest {
    /// The bytes.
    #[prost(bytes = "vec", tag = "1")]
    pub value: Vec<u8>,
}

/// `privval.SignBytesResponse` (1.0).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct SignBytesResponse {
    /// Signature.
    #[prost(bytes = "vec", tag = "1")]
    pub signature: Vec<u8>,
    /// Error.
    #[prost(message, optional, tag = "2")]
    pub error: Option<RemoteSignerError>,
}

/// `privval.Message`: every message either way.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Message {
    /// Which message.
    #[prost(oneof = "Sum", tags = "1, 2, 3, 4, 5, 6, 7, 8, 9, 10")]
    pub sum: Option<Sum>,
}

/// The members of [`Message`].
#[derive(Clone, PartialEq, Eq, prost::Oneof)]
pub enum Sum {
    /// Field 1.
    #[prost(message, tag = "1")]
    PubKeyRequest(PubKeyRequest),
    /// Field 2.
    #[prost(message, tag = "2")]
    PubKeyResponse(PubKeyResponse),
    /// Field 3.
    #[prost(message, tag = "3")]
    SignVoteRequest(SignVoteRequest),
    /// Field 4.
    #[prost(message, tag = "4")]
    SignedVoteResponse(SignedVoteResponse),
    /// Field 5.
    #[prost(message, tag = "5")]
    SignProposalRequest(SignProposalRequest),
    /// Field 6.
    #[prost(message, tag = "6")]
    SignedProposalResponse(SignedProposalResponse),
    /// Field 7.
    #[prost(message, tag = "7")]
    PingRequest(PingRequest),
    /// Field 8.
    #[prost(message, tag = "8")]
    PingResponse(PingResponse),
    /// Field 9 (1.0).
    #[prost(message, tag = "9")]
    SignBytesRequest(SignBytesRequest),
    /// Field 10 (1.0).
    #[prost(message, tag = "10")]
    SignBytesResponse(SignBytesResponse),
}

impl Message {
    /// A message holding `sum`.
    pub fn of(sum: Sum) -> Message {
        Message { sum: Some(sum) }
    }
}

/// `types.CanonicalPartSetHeader`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct CanonicalPartSetHeader {
    /// Number of parts.
    #[prost(uint32, tag = "1")]
    pub total: u32,
    /// Merkle root.
    #[prost(bytes = "vec", tag = "2")]
    pub hash: Vec<u8>,
}

/// `types.CanonicalBlockID`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct CanonicalBlockId {
    /// Block hash.
    #[prost(bytes = "vec", tag = "1")]
    pub hash: Vec<u8>,
    /// Part set header (non-nullable in Go: always written).
    #[prost(message, optional, tag = "2")]
    pub part_set_header: Option<CanonicalPartSetHeader>,
}

/// `types.CanonicalVote`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct CanonicalVote {
    /// `SignedMsgType`.
    #[prost(int32, tag = "1")]
    pub r#type: i32,
    /// Height, fixed size.
    #[prost(sfixed64, tag = "2")]
    pub height: i64,
    /// Round, fixed size.
    #[prost(sfixed64, tag = "3")]
    pub round: i64,
    /// Absent for a nil vote.
    #[prost(message, optional, tag = "4")]
    pub block_id: Option<CanonicalBlockId>,
    /// Non-nullable in Go: always written.
    #[prost(message, optional, tag = "5")]
    pub timestamp: Option<Timestamp>,
    /// Chain id.
    #[prost(string, tag = "6")]
    pub chain_id: String,
}

/// `types.CanonicalProposal`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct CanonicalProposal {
    /// `SignedMsgType` (proposal).
    #[prost(int32, tag = "1")]
    pub r#type: i32,
    /// Height, fixed size.
    #[prost(sfixed64, tag = "2")]
    pub height: i64,
    /// Round, fixed size.
    #[prost(sfixed64, tag = "3")]
    pub round: i64,
    /// Proof-of-lock round, a varint (-1: none).
    #[prost(int64, tag = "4")]
    pub pol_round: i64,
    /// Absent for a zero block id.
    #[prost(message, optional, tag = "5")]
    pub block_id: Option<CanonicalBlockId>,
    /// Non-nullable in Go: always written.
    #[prost(message, optional, tag = "6")]
    pub timestamp: Option<Timestamp>,
    /// Chain id.
    #[prost(string, tag = "7")]
    pub chain_id: String,
}

/// `types.CanonicalVoteExtension`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct CanonicalVoteExtension {
    /// The extension.
    #[prost(bytes = "vec", tag = "1")]
    pub extension: Vec<u8>,
    /// Height, fixed size.
    #[prost(sfixed64, tag = "2")]
    pub height: i64,
    /// Round, fixed size.
    #[prost(sfixed64, tag = "3")]
    pub round: i64,
    /// Chain id.
    #[prost(string, tag = "4")]
    pub chain_id: String,
}
