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
