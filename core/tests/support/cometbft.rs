//! CometBFT test helpers: the independent sign-bytes vectors (tendermint-rs, written once by
//! `core/tests/fixtures/cometbft/gen`), requests to a board, and an Ed25519 check that is not
//! the signer's library.
#![allow(dead_code)]

use std::collections::BTreeMap;

use openssl::pkey::{Id, PKey};
use openssl::sign::Verifier;
use pawl_core::board::{Board, Presence};
use pawl_core::keys::{Entropy, PublicKey, PublicKeyHash, Signature};
use pawl_core::protocol::cometbft::{CometRequest, CometResponse, Timestamp};
use pawl_core::protocol::{Refusal, Request, Response};
use pawl_core::store::Store;

/// The chain the vectors are for.
pub const CHAIN: &str = "cosmoshub-4";
/// The seconds of every vector's timestamp (nanos vary).
pub const SECONDS: i64 = 1_700_000_000;

/// Every vector by name.
pub fn vectors() -> BTreeMap<String, Vec<u8>> {
    include_str!("../fixtures/cometbft/sign_bytes.txt")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (name, hex) = l.split_once(' ').expect("name hex");
            (name.to_string(), super::unhex(hex.trim()))
        })
        .collect()
}

/// One vector.
pub fn v(name: &str) -> Vec<u8> {
    vectors()
        .remove(name)
        .unwrap_or_else(|| panic!("no vector {name}"))
}

/// A vote's answer: signature, recorded timestamp, extension signature.
pub type Voted = (Signature, Option<Timestamp>, Option<Signature>);

pub fn set_chain<S: Store, E: Entropy, P: Presence>(
    b: &mut Board<S, E, P>,
    pkh: &PublicKeyHash,
    chain_id: &str,
) -> Response {
    b.handle(Request::CometBft(CometRequest::SetChain {
        pkh: *pkh,
        chain_id,
    }))
}

pub fn vote<S: Store, E: Entropy, P: Presence>(
    b: &mut Board<S, E, P>,
    pkh: &PublicKeyHash,
    sign_bytes: &[u8],
    extension: Option<&[u8]>,
) -> Result<Voted, Refusal> {
    match b.handle(Request::CometBft(CometRequest::SignVote {
        pkh: *pkh,
        sign_bytes,
        extension,
    })) {
        Response::CometBft(CometResponse::Vote {
            signature,
            timestamp,
            extension_signature,
        }) => Ok((signature, timestamp, extension_signature)),
        Response::Refused(r) => Err(r),
        other => panic!("vote: {other:?}"),
    }
}

pub fn proposal<S: Store, E: Entropy, P: Presence>(
    b: &mut Board<S, E, P>,
    pkh: &PublicKeyHash,
    sign_bytes: &[u8],
) -> Result<(Signature, Option<Timestamp>), Refusal> {
    match b.handle(Request::CometBft(CometRequest::SignProposal {
        pkh: *pkh,
        sign_bytes,
    })) {
        Response::CometBft(CometResponse::Proposal {
            signature,
            timestamp,
        }) => Ok((signature, timestamp)),
        Response::Refused(r) => Err(r),
        other => panic!("proposal: {other:?}"),
    }
}

pub fn state<S: Store, E: Entropy, P: Presence>(
    b: &mut Board<S, E, P>,
    pkh: &PublicKeyHash,
) -> Response {
    b.handle(Request::CometBft(CometRequest::State { pkh: *pkh }))
}

/// Plain Ed25519 over `message` itself (CometBFT's scheme), checked with OpenSSL.
pub fn verifies(pk: &PublicKey, message: &[u8], sig: &Signature) -> bool {
    let (PublicKey::Ed25519(pk), Signature::Ed25519(sig)) = (pk, sig) else {
        return false;
    };
    let key = PKey::public_key_from_raw_bytes(pk, Id::ED25519).expect("ed25519 key");
    let mut v = Verifier::new_without_digest(&key).expect("verifier");
    v.verify_oneshot(sig, message).unwrap_or(false)
}

/// `template` (a vote or proposal vector with a round field and no `pol_round`) at another
/// height and round, and with its block hash's first byte set to `block` (different bytes,
/// same position). The offsets are those of tendermint-rs's encoding: length, type (2 bytes),
/// height (1 + 8), round (1 + 8), then the block id (field 4 of a vote, `22`, or 5 of a
/// proposal, `2a`; then `48 0a 20` and the hash).
pub fn patched(template: &[u8], height: u32, round: u32, block: u8) -> Vec<u8> {
    let mut b = template.to_vec();
    assert_eq!(b[3], 0x11, "height field");
    b[4..12].copy_from_slice(&u64::from(height).to_le_bytes());
    assert_eq!(b[12], 0x19, "round field");
    b[13..21].copy_from_slice(&u64::from(round).to_le_bytes());
    assert!(matches!(b[21], 0x22 | 0x2a), "block id");
    assert_eq!(&b[22..25], &[0x48, 0x0a, 0x20], "block id");
    b[25] = block;
    b
}

/// Where CometBFT sign bytes ask to be signed, read by the tests' own protobuf walk (not
/// pawl's reader): the chain id, height, round and step (1 propose, 2 prevote, 3 precommit).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    pub chain_id: Vec<u8>,
    pub height: i64,
    pub round: i64,
    pub step: u8,
}

fn varint(bytes: &[u8], mut at: usize) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(at)?;
        at += 1;
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some((value, at));
        }
    }
    None
}

/// Read length-prefixed `CanonicalVote` / `CanonicalProposal` bytes (CometBFT's
/// `types/canonical.proto`: type = 1, height = 2 and round = 3 as sfixed64; the chain id is
/// field 6 of a vote, 7 of a proposal; type 1 prevote, 2 precommit, 32 proposal). `None` for
/// anything that is not such a message. Lenient on field order: it says where the bytes aim,
/// not whether they are well formed.
pub fn position(bytes: &[u8]) -> Option<Position> {
    let (len, mut at) = varint(bytes, 0)?;
    if (at as u64).checked_add(len)? != bytes.len() as u64 {
        return None;
    }
    let (mut kind, mut height, mut round) = (0u64, 0i64, 0i64);
    let mut strings: Vec<(u64, &[u8])> = Vec::new();
    while at < bytes.len() {
        let (tag, next) = varint(bytes, at)?;
        at = next;
        let field = tag >> 3;
        match tag & 7 {
            0 => {
                let (v, next) = varint(bytes, at)?;
                at = next;
                if field == 1 {
                    kind = v;
                }
            }
            1 => {
                let v = i64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?);
                at += 8;
                match field {
                    2 => height = v,
                    3 => round = v,
                    _ => {}
                }
            }
            2 => {
                let (l, next) = varint(bytes, at)?;
                let end = next.checked_add(usize::try_from(l).ok()?)?;
                strings.push((field, bytes.get(next..end)?));
                at = end;
            }
            5 => {
                bytes.get(at..at + 4)?;
                at += 4;
            }
            _ => return None,
        }
    }
    let (step, chain_field) = match kind {
        32 => (1, 7),
        1 => (2, 6),
        2 => (3, 6),
        _ => return None,
    };
    let chain_id = strings.iter().rev().find(|(f, _)| *f == chain_field)?.1;
    Some(Position {
        chain_id: chain_id.to_vec(),
        height,
        round,
        step,
    })
}
