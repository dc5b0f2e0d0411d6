//! CometBFT votes and proposals signed by an Ed25519 key inside a YubiHSM2
//! (`core/src/board/cometbft_hsm.rs`), against the yubihsm crate's MockHsm: the board seals
//! Sign EdDSA over the whole sign bytes (tendermint-rs vectors) in its own session; every
//! signature is checked with OpenSSL and against the crate's own client signing the same
//! bytes; every refusal sends zero HSM bytes and leaves the board as it was; a forged or
//! altered HSM answer releases nothing.

mod support;

use pawl_core::board::{Board, NoButton};
use pawl_core::keys::{PublicKey, PublicKeyHash, Signature};
use pawl_core::policy::Policy;
use pawl_core::protocol::cometbft::{CometError, CometRequest, CometResponse, Step, Timestamp};
use pawl_core::protocol::{Backend, Mode, Refusal, Request, Response, Role};
use pawl_core::store::MemoryStore;
use pawl_core::yubihsm::{HsmError, command};
use support::board::{INFO, TestBoard, TestEntropy};
use support::cometbft::{CHAIN, SECONDS, set_chain, state, v, verifies};
use support::hsm::{
    ED25519_ID, Hsm, Relay, SIGNER_AUTH_ID, SIGNER_PASSWORD, derive, drive, honest,
};
use yubihsm::asymmetric::Algorithm;
use yubihsm::{Capability, Domain, object::Label};

/// A second Ed25519 key in the mock, registered under the first key's public key: the HSM's
/// signatures with it do not verify (a forged answer inside an authentic session).
const OTHER_ED25519_ID: u16 = 0x13;

fn public_of(hsm: &Hsm, id: u16) -> PublicKey {
    let theirs = hsm.client().get_public_key(id).expect("public key");
    let mut data = vec![theirs.algorithm as u8];
    data.extend_from_slice(theirs.as_ref());
    command::public_key(&data).expect("parse")
}

/// A board with the mock's Ed25519 key registered under `key_id` with `public`, made a
/// Cosmos key of `cosmoshub-4`.
fn cosmos_with(key_id: u16, public: PublicKey) -> (TestBoard, PublicKeyHash) {
    let mut b = Board::open(
        MemoryStore::new(),
        TestEntropy(7),
        NoButton,
        Mode::Provisioning,
        INFO,
    );
    assert_eq!(
        b.handle(Request::YubiHsmSetup {
            auth_key_id: SIGNER_AUTH_ID,
            keys: derive(SIGNER_PASSWORD),
        }),
        Response::Done
    );
    let pkh = match b.handle(Request::RegisterHsmKey {
        key_id,
        public_key: public,
        policy: Policy::default(),
    }) {
        Response::KeyInfo(info) => {
            assert_eq!(info.backend, Backend::YubiHsm);
            info.pkh
        }
        other => panic!("register: {other:?}"),
    };
    match set_chain(&mut b, &pkh, CHAIN) {
        Response::KeyInfo(info) => assert_eq!(info.duty.role, Role::Cosmos),
        other => panic!("set chain: {other:?}"),
    }
    (b, pkh)
}

fn cosmos(hsm: &mut Hsm) -> (TestBoard, PublicKeyHash, PublicKey) {
    let public = public_of(hsm, ED25519_ID);
    let (b, pkh) = cosmos_with(ED25519_ID, public);
    (b, pkh, public)
}

type Voted = (Signature, Option<Timestamp>);

fn vote(
    b: &mut TestBoard,
    hsm: &mut Hsm,
    pkh: &PublicKeyHash,
    sign_bytes: &[u8],
    relay: Relay<'_>,
) -> Result<Voted, Refusal> {
    let request = Request::CometBft(CometRequest::SignVote {
        pkh: *pkh,
        sign_bytes,
        extension: None,
    });
    match drive(b, hsm, request, relay) {
        Response::CometBft(CometResponse::Vote {
            signature,
            timestamp,
            extension_signature: None,
        }) => Ok((signature, timestamp)),
        Response::Refused(r) => Err(r),
        other => panic!("vote: {other:?}"),
    }
}

fn proposal(
    b: &mut TestBoard,
    hsm: &mut Hsm,
    pkh: &PublicKeyHash,
    sign_bytes: &[u8],
) -> Result<Voted, Refusal> {
    let request = Request::CometBft(CometRequest::SignProposal {
        pkh: *pkh,
        sign_bytes,
    });
    match drive(b, hsm, request, &mut honest()) {
        Response::CometBft(CometResponse::Proposal {
            signature,
            timestamp,
        }) => Ok((signature, timestamp)),
        Response::Refused(r) => Err(r),
        other => panic!("proposal: {other:?}"),
    }
}

/// What a refusal must leave as it was: marks in RAM, stored records, mark writes, and the
/// key's CometBFT state.
fn snapshot(b: &mut TestBoard, pkh: &PublicKeyHash) -> (Vec<String>, Vec<String>, u32, String) {
    let (marks, stored, writes) = support::board::memory_state(b);
    (marks, stored, writes, format!("{:?}", state(b, pkh)))
}

/// `sign_bytes` refused with `want`, zero HSM messages, the board unchanged.
fn refused_quietly(
    b: &mut TestBoard,
    hsm: &mut Hsm,
    pkh: &PublicKeyHash,
    sign_bytes: &[u8],
    want: Refusal,
) {
    let before = snapshot(b, pkh);
    let messages = hsm.messages;
    assert_eq!(vote(b, hsm, pkh, sign_bytes, &mut honest()), Err(want));
    assert_eq!(hsm.messages, messages, "{want:?}: HSM bytes sent");
    assert_eq!(snapshot(b, pkh), before, "{want:?}: the board changed");
}

/// The mock HSM's own client signing `message` with the key (Ed25519 is deterministic).
fn crate_signature(hsm: &Hsm, message: &[u8]) -> Signature {
    let sig = hsm
        .client()
        .sign_ed25519(ED25519_ID, message)
        .expect("crate sign");
    Signature::Ed25519(sig.to_bytes())
}

fn signed_here(b: &mut TestBoard, pkh: &PublicKeyHash) -> bool {
    match state(b, pkh) {
        Response::CometBft(CometResponse::State { mark, .. }) => {
            mark.is_some_and(|m| m.signed_here)
        }
        other => panic!("state: {other:?}"),
    }
}

#[test]
fn votes_and_proposals_are_signed_in_the_hsm_over_the_whole_sign_bytes() {
    let mut hsm = Hsm::new();
    let (mut b, pkh, pk) = cosmos(&mut hsm);
    for name in ["prevote_100_0", "precommit_100_0", "prevote_100_1"] {
        let bytes = v(name);
        let before = hsm.messages;
        let (sig, ts) = vote(&mut b, &mut hsm, &pkh, &bytes, &mut honest()).expect(name);
        assert_eq!(ts, None);
        assert!(hsm.messages > before, "{name}: through the HSM");
        assert!(verifies(&pk, &bytes, &sig), "{name}: OpenSSL");
        assert_eq!(sig, crate_signature(&hsm, &bytes), "{name}: the sign bytes");
    }
    let bytes = v("proposal_101_0");
    let (sig, ts) = proposal(&mut b, &mut hsm, &pkh, &bytes).expect("proposal");
    assert_eq!(ts, None);
    assert!(verifies(&pk, &bytes, &sig));
    assert!(signed_here(&mut b, &pkh));
}

#[test]
fn retries_are_answered_from_the_record_without_the_hsm() {
    let mut hsm = Hsm::new();
    let (mut b, pkh, pk) = cosmos(&mut hsm);
    let first = v("precommit_100_0");
    let (sig, _) = vote(&mut b, &mut hsm, &pkh, &first, &mut honest()).expect("precommit");
    let messages = hsm.messages;
    let writes = support::board::memory_state(&b).2;
    assert_eq!(
        vote(&mut b, &mut hsm, &pkh, &first, &mut honest()),
        Ok((sig, None))
    );
    let later = v("precommit_100_0_later");
    let recorded = Timestamp {
        seconds: SECONDS,
        nanos: 0,
    };
    assert_eq!(
        vote(&mut b, &mut hsm, &pkh, &later, &mut honest()),
        Ok((sig, Some(recorded)))
    );
    assert!(verifies(&pk, &first, &sig));
    assert_eq!(hsm.messages, messages, "a retry relays nothing");
    assert_eq!(support::board::memory_state(&b).2, writes, "nor writes");
}

#[test]
fn refusals_send_zero_hsm_bytes() {
    let mut hsm = Hsm::new();
    let (mut b, pkh, _) = cosmos(&mut hsm);
    vote(&mut b, &mut hsm, &pkh, &v("prevote_100_0"), &mut honest()).expect("prevote");
    refused_quietly(
        &mut b,
        &mut hsm,
        &pkh,
        &v("prevote_100_0_other_block"),
        Refusal::CometBft(CometError::DoubleSign {
            height: 100,
            round: 0,
            step: Step::Prevote,
        }),
    );
    refused_quietly(
        &mut b,
        &mut hsm,
        &pkh,
        &v("prevote_99_5"),
        Refusal::CometBft(CometError::Regression {
            height: 99,
            round: 5,
            step: Step::Prevote,
            mark_height: 100,
            mark_round: 0,
        }),
    );
    refused_quietly(
        &mut b,
        &mut hsm,
        &pkh,
        &v("prevote_100_0_other_chain"),
        Refusal::CometBft(CometError::WrongChain),
    );
    // A vote extension: refused for an HSM key, before anything happens.
    let before = snapshot(&mut b, &pkh);
    let messages = hsm.messages;
    let request = Request::CometBft(CometRequest::SignVote {
        pkh,
        sign_bytes: &v("precommit_100_0"),
        extension: Some(&v("extension_100_0")),
    });
    assert_eq!(
        drive(&mut b, &mut hsm, request, &mut honest()),
        Response::Refused(Refusal::CometBft(CometError::HsmExtension))
    );
    assert_eq!(hsm.messages, messages);
    assert_eq!(snapshot(&mut b, &pkh), before);
}

#[test]
fn a_forged_hsm_signature_releases_nothing() {
    let mut hsm = Hsm::new();
    hsm.client()
        .generate_asymmetric_key(
            OTHER_ED25519_ID,
            Label::from("other"),
            Domain::DOM1,
            Capability::SIGN_EDDSA,
            Algorithm::Ed25519,
        )
        .expect("generate");
    // Registered under the first key's public key: the HSM signs with another key.
    let public = public_of(&hsm, ED25519_ID);
    let (mut b, pkh) = cosmos_with(OTHER_ED25519_ID, public);
    let bytes = v("prevote_100_0");
    let before = hsm.messages;
    assert_eq!(
        vote(&mut b, &mut hsm, &pkh, &bytes, &mut honest()),
        Err(Refusal::Key(pawl_core::keys::KeyError::BadSignature))
    );
    assert!(hsm.messages > before, "the HSM was asked");
    assert!(!signed_here(&mut b, &pkh), "nothing recorded");
    // The approval stays: a timestamp-only retry has no signature to hand back, another block
    // is a double sign; neither reaches the HSM.
    refused_quietly(
        &mut b,
        &mut hsm,
        &pkh,
        &v("prevote_100_0_later"),
        Refusal::CometBft(CometError::NoRecord {
            height: 100,
            round: 0,
        }),
    );
    refused_quietly(
        &mut b,
        &mut hsm,
        &pkh,
        &v("prevote_100_0_other_block"),
        Refusal::CometBft(CometError::DoubleSign {
            height: 100,
            round: 0,
            step: Step::Prevote,
        }),
    );
}

#[test]
fn an_altered_hsm_reply_releases_nothing_and_the_same_bytes_are_signed_again() {
    let mut hsm = Hsm::new();
    let (mut b, pkh, pk) = cosmos(&mut hsm);
    let bytes = v("prevote_100_0");
    // Flip a byte of the sign command's reply (the fourth: after Create and Authenticate).
    let mut flip = |n: usize, mut r: Vec<u8>| {
        if n == 2 {
            r[6] ^= 1;
        }
        Some(r)
    };
    assert_eq!(
        vote(&mut b, &mut hsm, &pkh, &bytes, &mut flip),
        Err(Refusal::Hsm(HsmError::BadMac))
    );
    assert!(!signed_here(&mut b, &pkh));
    // The identical request goes to the HSM again (a fresh session) and is verified.
    let before = hsm.messages;
    let (sig, ts) = vote(&mut b, &mut hsm, &pkh, &bytes, &mut honest()).expect("again");
    assert!(hsm.messages > before);
    assert_eq!(ts, None);
    assert!(verifies(&pk, &bytes, &sig));
    assert!(signed_here(&mut b, &pkh));
}

#[test]
fn a_state_change_forgets_the_pending_sign() {
    let mut hsm = Hsm::new();
    let (mut b, pkh, pk) = cosmos(&mut hsm);
    let bytes = v("prevote_100_0");
    let request = Request::CometBft(CometRequest::SignVote {
        pkh,
        sign_bytes: &bytes,
        extension: None,
    });
    // Keep the sign command's reply instead of relaying it.
    let mut kept = None;
    let mut stop = |n: usize, r: Vec<u8>| {
        if n < 2 {
            Some(r)
        } else {
            kept = Some(r);
            None
        }
    };
    let pending = drive(&mut b, &mut hsm, request, &mut stop);
    assert!(
        matches!(pending, Response::RelayToHsm { .. }),
        "{pending:?}"
    );
    let reply = kept.expect("the HSM answered");
    // A state change (the chain pinned again) forgets it.
    assert!(matches!(
        set_chain(&mut b, &pkh, CHAIN),
        Response::KeyInfo(_)
    ));
    assert_eq!(
        b.handle(Request::HsmReply { sealed: &reply }),
        Response::Refused(Refusal::NoPendingSign)
    );
    assert!(!signed_here(&mut b, &pkh));
    let (sig, _) = vote(&mut b, &mut hsm, &pkh, &bytes, &mut honest()).expect("again");
    assert!(verifies(&pk, &bytes, &sig));
}
