//! CometBFT's canonical sign bytes, read field by field: `CanonicalVote`, `CanonicalProposal`
//! and `CanonicalVoteExtension` (proto package `cometbft.types.v1`, file `canonical.proto`).
//! The field numbers and types are in `docs/cometbft.md` ("Wire format").
//!
//! Strict on purpose: fields in increasing order, each at most once, with the wire type the
//! schema gives; no unknown field; shortest varints; nothing after the message. CometBFT's Go
//! encoder and tendermint-rs (prost) both write exactly this, so the strictness costs a node
//! nothing and leaves the board one reading of every message.

use blake2::Digest;
use blake2::digest::consts::U32;

use super::wire::{FIXED64, LEN, Reader, VARINT, delimited, expect};
use crate::protocol::cometbft::{CometError, MAX_CHAIN_ID, SignBytesError, Step, Timestamp};

/// `SignedMsgType` values.
const PREVOTE: u64 = 1;
const PRECOMMIT: u64 = 2;
const PROPOSAL: u64 = 32;

/// Highest round the board's marks hold (round and step share 32 bits: `round × 4 + step`).
pub const MAX_ROUND: u32 = (1 << 30) - 1;

/// Valid `google.protobuf.Timestamp` seconds: 0001-01-01 to 9999-12-31.
const MIN_SECONDS: i64 = -62_135_596_800;
const MAX_SECONDS: i64 = 253_402_300_799;

/// A vote or proposal as the board reads it from its sign bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Signable<'a> {
    /// Propose, prevote or precommit.
    pub step: Step,
    /// Height, 1 to 2³²−1.
    pub height: u32,
    /// Round, 0 to [`MAX_ROUND`].
    pub round: u32,
    /// Whether it is for a block (a `block_id` is present) rather than for nil.
    pub for_block: bool,
    /// Its timestamp.
    pub timestamp: Timestamp,
    /// The chain id, 1 to [`MAX_CHAIN_ID`] bytes.
    pub chain_id: &'a [u8],
    /// BLAKE2b-256 of the message with its timestamp field taken out: two requests with the
    /// same value differ at most in their timestamps (FilePV's "only differ by timestamp").
    pub without_timestamp: [u8; 32],
}

/// A vote extension as the board reads it from its sign bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extension<'a> {
    /// Height.
    pub height: u32,
    /// Round.
    pub round: u32,
    /// Chain id.
    pub chain_id: &'a [u8],
}

fn parse(e: SignBytesError) -> CometError {
    CometError::Parse(e)
}

fn height_of(raw: i64) -> Result<u32, CometError> {
    u32::try_from(raw)
        .ok()
        .filter(|h| *h > 0)
        .ok_or(CometError::HeightOutOfRange)
}

fn round_of(raw: i64) -> Result<u32, CometError> {
    u32::try_from(raw)
        .ok()
        .filter(|r| *r <= MAX_ROUND)
        .ok_or(CometError::RoundOutOfRange)
}

fn chain_of(number: u32, bytes: &[u8]) -> Result<&[u8], CometError> {
    if bytes.is_empty() || bytes.len() > MAX_CHAIN_ID || core::str::from_utf8(bytes).is_err() {
        return Err(parse(SignBytesError::Value { number }));
    }
    Ok(bytes)
}

/// Read a `CanonicalVote` (`proposal == false`) or `CanonicalProposal`.
fn signable(sign_bytes: &[u8], proposal: bool) -> Result<Signable<'_>, CometError> {
    let message = delimited(sign_bytes).map_err(parse)?;
    let mut r = Reader::new(message);
    let mut step = None;
    let (mut height, mut round) = (0i64, 0i64);
    let mut for_block = false;
    let mut timestamp = None;
    let mut timestamp_span = (0, 0);
    let mut chain_id = None;
    // A proposal has `pol_round` as field 4; its later fields are the vote's, one number up.
    let shift = u32::from(proposal);
    loop {
        let start = message.len() - r.rest().len();
        let Some((number, wire)) = r.field().map_err(parse)? else {
            break;
        };
        match number {
            1 => {
                expect(number, wire, VARINT).map_err(parse)?;
                step = Some(match (r.varint().map_err(parse)?, proposal) {
                    (PREVOTE, false) => Step::Prevote,
                    (PRECOMMIT, false) => Step::Precommit,
                    (PROPOSAL, true) => Step::Propose,
                    (PREVOTE | PRECOMMIT | PROPOSAL, _) => {
                        return Err(parse(SignBytesError::WrongType));
                    }
                    _ => return Err(parse(SignBytesError::Value { number })),
                });
            }
            2 => {
                expect(number, wire, FIXED64).map_err(parse)?;
                height = r.sfixed64().map_err(parse)?;
            }
            3 => {
                expect(number, wire, FIXED64).map_err(parse)?;
                round = r.sfixed64().map_err(parse)?;
            }
            4 if proposal => {
                expect(number, wire, VARINT).map_err(parse)?;
                // int64: -1 (no proof-of-lock round) is ten bytes of two's complement.
                #[allow(clippy::cast_possible_wrap)]
                let pol_round = r.varint().map_err(parse)? as i64;
                if !(-1..=i64::from(MAX_ROUND)).contains(&pol_round) {
                    return Err(parse(SignBytesError::Value { number }));
                }
            }
            n if n == 4 + shift => {
                expect(number, wire, LEN).map_err(parse)?;
                block_id(r.bytes().map_err(parse)?).map_err(parse)?;
                for_block = true;
            }
            n if n == 5 + shift => {
                expect(number, wire, LEN).map_err(parse)?;
                timestamp = Some(self::timestamp(r.bytes().map_err(parse)?).map_err(parse)?);
                timestamp_span = (start, message.len() - r.rest().len());
            }
            n if n == 6 + shift => {
                expect(number, wire, LEN).map_err(parse)?;
                chain_id = Some(chain_of(number, r.bytes().map_err(parse)?)?);
            }
            _ => return Err(parse(SignBytesError::Field { number })),
        }
    }
    let step = step.ok_or(parse(SignBytesError::Missing { number: 1 }))?;
    let timestamp = timestamp.ok_or(parse(SignBytesError::Missing { number: 5 + shift }))?;
    let chain_id = chain_id.ok_or(parse(SignBytesError::Missing { number: 6 + shift }))?;
    let (from, to) = timestamp_span;
    let mut hash = blake2::Blake2b::<U32>::new();
    hash.update(&message[..from]);
    hash.update(&message[to..]);
    Ok(Signable {
        step,
        height: height_of(height)?,
        round: round_of(round)?,
        for_block,
        timestamp,
        chain_id,
        without_timestamp: hash.finalize().into(),
    })
}

/// Read `VoteSignBytes`: a prevote or precommit.
pub fn vote(sign_bytes: &[u8]) -> Result<Signable<'_>, CometError> {
    signable(sign_bytes, false)
}

/// Read `ProposalSignBytes`.
pub fn proposal(sign_bytes: &[u8]) -> Result<Signable<'_>, CometError> {
    signable(sign_bytes, true)
}

/// Read `VoteExtensionSignBytes`: `extension` bytes 1, `height` sfixed64 2, `round` sfixed64
/// 3, `chain_id` string 4.
pub fn extension(sign_bytes: &[u8]) -> Result<Extension<'_>, CometError> {
    let message = delimited(sign_bytes).map_err(parse)?;
    let mut r = Reader::new(message);
    let (mut height, mut round) = (0i64, 0i64);
    let mut chain_id = None;
    while let Some((number, wire)) = r.field().map_err(parse)? {
        match number {
            1 => {
                expect(number, wire, LEN).map_err(parse)?;
                r.bytes().map_err(parse)?;
            }
            2 => {
                expect(number, wire, FIXED64).map_err(parse)?;
                height = r.sfixed64().map_err(parse)?;
            }
            3 => {
                expect(number, wire, FIXED64).map_err(parse)?;
                round = r.sfixed64().map_err(parse)?;
            }
            4 => {
                expect(number, wire, LEN).map_err(parse)?;
                chain_id = Some(chain_of(number, r.bytes().map_err(parse)?)?);
            }
            _ => return Err(parse(SignBytesError::Field { number })),
        }
    }
    Ok(Extension {
        height: height_of(height)?,
        round: round_of(round)?,
        chain_id: chain_id.ok_or(parse(SignBytesError::Missing { number: 4 }))?,
    })
}

/// `CanonicalBlockID`: `hash` bytes 1 (32 bytes), `part_set_header` 2 (`total` uint32 1,
/// `hash` bytes 2).
fn block_id(message: &[u8]) -> Result<(), SignBytesError> {
    let mut r = Reader::new(message);
    while let Some((number, wire)) = r.field()? {
        expect(number, wire, LEN)?;
        let value = r.bytes()?;
        match number {
            1 => hash(number, value)?,
            2 => part_set_header(value)?,
            _ => return Err(SignBytesError::Field { number }),
        }
    }
    Ok(())
}

fn part_set_header(message: &[u8]) -> Result<(), SignBytesError> {
    let mut r = Reader::new(message);
    while let Some((number, wire)) = r.field()? {
        match number {
            1 => {
                expect(number, wire, VARINT)?;
                u32::try_from(r.varint()?).map_err(|_| SignBytesError::Value { number })?;
            }
            2 => {
                expect(number, wire, LEN)?;
                hash(number, r.bytes()?)?;
            }
            _ => return Err(SignBytesError::Field { number }),
        }
    }
    Ok(())
}

/// A block or part-set hash: SHA-256, 32 bytes (an empty one is left out by the encoders).
fn hash(number: u32, value: &[u8]) -> Result<(), SignBytesError> {
    if value.len() == 32 {
        Ok(())
    } else {
        Err(SignBytesError::Value { number })
    }
}

/// `google.protobuf.Timestamp`: `seconds` int64 1, `nanos` int32 2.
fn timestamp(message: &[u8]) -> Result<Timestamp, SignBytesError> {
    let mut r = Reader::new(message);
    let mut out = Timestamp::default();
    while let Some((number, wire)) = r.field()? {
        expect(number, wire, VARINT)?;
        // int64 / int32: two's complement in a varint.
        #[allow(clippy::cast_possible_wrap)]
        let value = r.varint()? as i64;
        match number {
            1 if (MIN_SECONDS..=MAX_SECONDS).contains(&value) => out.seconds = value,
            2 if (0..=999_999_999).contains(&value) => {
                out.nanos = i32::try_from(value).map_err(|_| SignBytesError::Value { number })?
            }
            1 | 2 => return Err(SignBytesError::Value { number }),
            _ => return Err(SignBytesError::Field { number }),
        }
    }
    Ok(out)
}
