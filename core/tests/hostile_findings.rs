//! Regression tests for issue 13 (the hostile host), findings 4–6:
//!
//! * 4 — pending work (a host-held approval, a YubiHSM2 operation and its session) dies with
//!   every state change, so nothing started under the old policy is released under the new;
//! * 5 — proofs of possession: `override_pk` must be a BLS12-381 public key (a subgroup
//!   point, not the identity), and in operational mode only keys allowed at provisioning
//!   prove possession; the permission is stored compatibly;
//! * 6 — Micheline `TooDeep` reports the offset of the too-deep node.
//!
//! Independent sources: the yubihsm crate's MockHsm for the HSM side, libsecp256k1 for the
//! key service, the zkcrypto `bls12_381` crate for every BLS point and proof check, and offsets
//! worked out by hand.

mod support;

use bls12_381::hash_to_curve::{ExpandMsgXmd, HashToCurve};
use bls12_381::{G1Affine, G2Affine, G2Projective, Scalar, pairing};
use pawl_core::digest::blake2b_256;
use pawl_core::keys::{Curve, KeyError, PublicKey, PublicKeyHash, SecretBytes, Signature};
use pawl_core::policy::Policy;
use pawl_core::protocol::{Mode, Refusal, Request, Response};
use pawl_core::request::{ChainId, KindSet, OpKind, OpKindSet, ParseError, RequestKind};
use pawl_core::store::{HsmLink, MemoryStore, Store, StoredKey};
use pawl_core::watermark::MarkKind;
use pawl_core::yubihsm::command;
use support::board::{TestBoard, attestation, board, import};
use support::hsm::{
    ED25519_ID, Hsm, K256_ID, P256_ID, SIGNER_AUTH_ID, SIGNER_PASSWORD, derive, drive, honest,
};
use support::{unhex, verify_independently, verify_pop_independently};

const TZ1: &str = "edsk4FTF78Qf1m2rykGpHqostAiq5gYW4YZEoGUSWBTJr2njsDHSnd";
const TZ4: &str = "BLsk1hKAHyGqY9qRbgoSVnjiSmDWpKGjFF3WNQ7BaiaMUA6RMA6Pfq";
const CHAIN: [u8; 4] = [0xb3, 0xd7, 0x9f, 0x99];
/// A transaction (magic 0x03), from ecadlabs/signatory's request tests (also in requests.rs).
const TX: &str = "03573a2d2d49a3b9634d1605c3aa48ebdd5d21a5885ad17aa44c2b1d0dbcbcac686c004b415314d2b56b0481a3ae8c992ce8bb8dba0369d086039ecb2dc35000c0843d000076b2f1ea1cf6753888ac5488693977446652d79e00";

// ---------------------------------------------------------------------------------------------
// Finding 4: pending work dies with every state change.
// ---------------------------------------------------------------------------------------------

/// Consensus and `transaction` operations: what the key may sign before the policy changes.
fn transfer_policy() -> Policy {
    Policy {
        kinds: KindSet::CONSENSUS.with(RequestKind::Generic),
        ops: OpKindSet::EMPTY.with(OpKind::Transaction),
        ..Policy::default()
    }
}

fn hsm_public(hsm: &Hsm, id: u16) -> PublicKey {
    let theirs = hsm.client().get_public_key(id).expect("public key");
    let mut data = vec![theirs.algorithm as u8];
    data.extend_from_slice(theirs.as_ref());
    command::public_key(&data).expect("parse")
}

fn key_info(r: Response) -> PublicKeyHash {
    match r {
        Response::KeyInfo(info) => info.pkh,
        other => panic!("expected KeyInfo, got {other:?}"),
    }
}

/// A provisioning board with the HSM set up, the mock's tz2 key registered with `policy`, and
/// an on-board tz4 key (for `AllowPossession`).
fn hsm_board(hsm: &Hsm, policy: Policy) -> (TestBoard, PublicKeyHash, PublicKeyHash) {
    let mut b = board(MemoryStore::new(), Mode::Provisioning);
    assert_eq!(
        b.handle(Request::YubiHsmSetup {
            auth_key_id: SIGNER_AUTH_ID,
            keys: derive(SIGNER_PASSWORD),
        }),
        Response::Done
    );
    let tz2 = key_info(b.handle(Request::RegisterHsmKey {
        key_id: K256_ID,
        public_key: hsm_public(hsm, K256_ID),
        policy,
    }));
    let (tz4, _) = import(&mut b, TZ4, Policy::default());
    (b, tz2, tz4)
}

fn sign_request<'a>(pkh: &PublicKeyHash, payload: &'a [u8]) -> Request<'a> {
    Request::Sign {
        pkh: *pkh,
        version: pawl_core::keys::SigningVersion::LATEST,
        payload,
    }
}

/// The sealed message the board asks to relay.
fn relayed(r: Response) -> Vec<u8> {
    match r {
        Response::RelayToHsm { sealed } => sealed.to_vec(),
        other => panic!("expected RelayToHsm, got {other:?}"),
    }
}

/// Hand `reply` to the board and keep relaying until its final answer.
fn finish(b: &mut TestBoard, hsm: &mut Hsm, reply: &[u8]) -> Response {
    let mut response = b.handle(Request::HsmReply { sealed: reply });
    while let Response::RelayToHsm { sealed } = &response {
        let next = hsm.send(sealed).unwrap_or_else(|_| vec![0x7f, 0, 1, 0x0e]);
        response = b.handle(Request::HsmReply { sealed: &next });
    }
    response
}

/// The exact scenario of the issue: a tz2 HSM key allowed `transaction` starts a 0x03 sign, the
/// policy is set back to the default (no generic operations), and the HSM's replies are then
/// relayed: no signature may come out. Twice: with the board opening a session for the sign
/// (three messages), and with a session already open (the sign command is the first message).
#[test]
fn set_policy_ends_a_pending_hsm_sign() {
    let tx = unhex(TX);
    for session_open in [false, true] {
        let mut hsm = Hsm::new();
        let (mut b, tz2, _) = hsm_board(&hsm, transfer_policy());
        if session_open {
            let payload = attestation(CHAIN, 5, 0, 1);
            let r = drive(
                &mut b,
                &mut hsm,
                sign_request(&tz2, &payload),
                &mut honest(),
            );
            assert!(matches!(r, Response::Signature(_)), "{r:?}");
        }
        let first = relayed(b.handle(sign_request(&tz2, &tx)));
        let reply = hsm.send(&first).expect("the HSM answers");
        assert!(matches!(
            b.handle(Request::SetPolicy {
                pkh: tz2,
                policy: Policy::default(),
            }),
            Response::KeyInfo(_)
        ));
        assert_eq!(
            finish(&mut b, &mut hsm, &reply),
            Response::Refused(Refusal::NoPendingSign),
            "session open: {session_open}"
        );
        // The new policy refuses the transfer before any HSM byte.
        let before = hsm.messages;
        assert_eq!(
            b.handle(sign_request(&tz2, &tx)),
            Response::Refused(Refusal::Policy(
                pawl_core::policy::PolicyError::KindNotAllowed {
                    kind: RequestKind::Generic
                }
            ))
        );
        assert_eq!(hsm.messages, before);
    }
}

/// Every state-changing request, built for a board from [`hsm_board`] (or the host-held board,
/// which has the same keys around it). Each must succeed on such a board.
fn state_changes(tz2: PublicKeyHash, tz4: PublicKeyHash, hsm: &Hsm) -> Vec<Request<'static>> {
    let (curve, secret) = SecretBytes::from_b58(TZ1).expect("tz1 secret");
    let other_host = PublicKey::Secp256k1(
        secp256k1::PublicKey::from_secret_key_global(
            &secp256k1::SecretKey::from_byte_array([0x33; 32]).expect("secret"),
        )
        .serialize(),
    );
    vec![
        Request::SetPolicy {
            pkh: tz2,
            policy: transfer_policy(),
        },
        Request::GenerateKey {
            curve: Curve::Ed25519,
            policy: Policy::default(),
        },
        Request::ImportKey {
            curve,
            secret,
            policy: Policy::default(),
        },
        Request::RegisterHostKey {
            public_key: other_host,
            policy: Policy::default(),
        },
        Request::RegisterHsmKey {
            key_id: P256_ID,
            public_key: hsm_public(hsm, P256_ID),
            policy: Policy::default(),
        },
        Request::ImportHsmKey {
            key_id: ED25519_ID,
            expect: None,
            policy: Policy::default(),
        },
        Request::GenerateHsmKey {
            key_id: 0x30,
            curve: Curve::P256,
            label: "pawl test",
            domains: 1,
            policy: Policy::default(),
        },
        Request::YubiHsmSetup {
            auth_key_id: SIGNER_AUTH_ID,
            keys: derive(SIGNER_PASSWORD),
        },
        Request::ImportWatermark {
            chain: ChainId(CHAIN),
            pkh: tz2,
            kind: MarkKind::Block,
            level: 3,
            round: 0,
        },
        Request::Reprovision { erase: false },
        Request::AllowPossession {
            pkh: tz4,
            operational: true,
        },
    ]
}

fn succeeded(r: &Response) -> bool {
    matches!(
        r,
        Response::Done | Response::KeyInfo(_) | Response::RelayToHsm { .. }
    )
}

/// Each state change between the board's first `RelayToHsm` and the HSM's reply ends the
/// pending sign: the reply gets no signature. Requests that start an HSM exchange of their own
/// (import, generation) replace the sign; for all others the reply is `NoPendingSign`.
#[test]
fn every_state_change_ends_a_pending_hsm_operation() {
    let names = [
        "SetPolicy",
        "GenerateKey",
        "ImportKey",
        "RegisterHostKey",
        "RegisterHsmKey",
        "ImportHsmKey",
        "GenerateHsmKey",
        "YubiHsmSetup",
        "ImportWatermark",
        "Reprovision",
        "AllowPossession",
    ];
    for (i, name) in names.iter().enumerate() {
        let mut hsm = Hsm::new();
        let (mut b, tz2, tz4) = hsm_board(&hsm, transfer_policy());
        let mut changes = state_changes(tz2, tz4, &hsm);
        assert_eq!(changes.len(), names.len());
        let change = changes.swap_remove(i);
        assert!(
            format!("{change:?}").starts_with(name),
            "{name}: {change:?}"
        );
        let payload = attestation(CHAIN, 10, 0, 1);
        let first = relayed(b.handle(sign_request(&tz2, &payload)));
        let reply = hsm.send(&first).expect("the HSM answers");
        let answer = b.handle(change);
        assert!(succeeded(&answer), "{name}: {answer:?}");
        let starts_hsm_work = matches!(answer, Response::RelayToHsm { .. });
        let end = finish(&mut b, &mut hsm, &reply);
        if starts_hsm_work {
            assert!(!matches!(end, Response::Signature(_)), "{name}: {end:?}");
        } else {
            assert_eq!(end, Response::Refused(Refusal::NoPendingSign), "{name}");
        }
    }
}

/// A state change also drops an open session: the next sign opens a fresh one (Create,
/// Authenticate, then the command: three HSM messages instead of one).
#[test]
fn a_state_change_drops_the_hsm_session() {
    let mut hsm = Hsm::new();
    let (mut b, tz2, _) = hsm_board(&hsm, Policy::default());
    let sign = |b: &mut TestBoard, hsm: &mut Hsm, level: u32| {
        let payload = attestation(CHAIN, level, 0, 1);
        let before = hsm.messages;
        let r = drive(b, hsm, sign_request(&tz2, &payload), &mut honest());
        assert!(matches!(r, Response::Signature(_)), "{r:?}");
        hsm.messages - before
    };
    assert_eq!(sign(&mut b, &mut hsm, 20), 3);
    assert_eq!(sign(&mut b, &mut hsm, 21), 1, "the session stays open");
    assert_eq!(
        b.handle(Request::ImportWatermark {
            chain: ChainId(CHAIN),
            pkh: tz2,
            kind: MarkKind::Block,
            level: 3,
            round: 0,
        }),
        Response::Done
    );
    assert_eq!(
        sign(&mut b, &mut hsm, 22),
        3,
        "a fresh session after the change"
    );
}

/// The host-held counterpart: the key service's valid signature over an approved digest is not
/// released once a state change came in between; the identical request is approved again.
#[test]
fn every_state_change_ends_a_pending_host_held_approval() {
    let service = secp256k1::SecretKey::from_byte_array([7; 32]).expect("secret");
    let public =
        PublicKey::Secp256k1(secp256k1::PublicKey::from_secret_key_global(&service).serialize());
    let service_sign = |digest: &[u8; 32]| {
        Signature::Secp256k1(
            secp256k1::SECP256K1
                .sign_ecdsa(secp256k1::Message::from_digest(*digest), &service)
                .serialize_compact(),
        )
    };
    // One board per change in `state_changes` (11 of them, checked below).
    for i in 0..11 {
        // The HSM key and tz4 key are there so every change in the list applies. (A fresh
        // mock each time: it holds at most 16 sessions.)
        let hsm = Hsm::new();
        let (mut b, tz2, tz4) = hsm_board(&hsm, transfer_policy());
        let host = key_info(b.handle(Request::RegisterHostKey {
            public_key: public,
            policy: Policy::default(),
        }));
        let mut changes = state_changes(tz2, tz4, &hsm);
        assert_eq!(changes.len(), 11);
        let change = changes.swap_remove(i);
        let name = format!("{change:?}");
        let payload = attestation(CHAIN, 30, 0, 1);
        let digest = blake2b_256(&payload);
        assert_eq!(
            b.handle(sign_request(&host, &payload)),
            Response::DigestApproved { pkh: host, digest }
        );
        let answer = b.handle(change);
        assert!(succeeded(&answer), "{name}: {answer:?}");
        assert_eq!(
            b.handle(Request::HostSignature {
                pkh: host,
                signature: service_sign(&digest),
            }),
            Response::Refused(Refusal::NoPendingSign),
            "{name}"
        );
    }
    // A key addition in between, then the host retries: approved again, and released.
    let hsm = Hsm::new();
    let (mut b, _, _) = hsm_board(&hsm, transfer_policy());
    let host = key_info(b.handle(Request::RegisterHostKey {
        public_key: public,
        policy: Policy::default(),
    }));
    let payload = attestation(CHAIN, 31, 0, 1);
    let digest = blake2b_256(&payload);
    assert!(matches!(
        b.handle(sign_request(&host, &payload)),
        Response::DigestApproved { .. }
    ));
    import(&mut b, TZ1, Policy::default());
    let signature = service_sign(&digest);
    assert_eq!(
        b.handle(Request::HostSignature {
            pkh: host,
            signature
        }),
        Response::Refused(Refusal::NoPendingSign)
    );
    assert_eq!(
        b.handle(sign_request(&host, &payload)),
        Response::DigestApproved { pkh: host, digest }
    );
    match b.handle(Request::HostSignature {
        pkh: host,
        signature,
    }) {
        Response::Signature(s) => assert!(verify_independently(&public, &payload, &s)),
        other => panic!("{other:?}"),
    }
}

/// A refused state change is no state change: the pending approval survives it.
#[test]
fn a_refused_state_change_leaves_pending_work_alone() {
    let service = secp256k1::SecretKey::from_byte_array([9; 32]).expect("secret");
    let public =
        PublicKey::Secp256k1(secp256k1::PublicKey::from_secret_key_global(&service).serialize());
    let mut b = board(MemoryStore::new(), Mode::Provisioning);
    let host = key_info(b.handle(Request::RegisterHostKey {
        public_key: public,
        policy: Policy::default(),
    }));
    let payload = attestation(CHAIN, 40, 0, 1);
    let digest = blake2b_256(&payload);
    assert!(matches!(
        b.handle(sign_request(&host, &payload)),
        Response::DigestApproved { .. }
    ));
    // The same key again: refused (it exists), so the approval stays.
    assert_eq!(
        b.handle(Request::RegisterHostKey {
            public_key: public,
            policy: Policy::default(),
        }),
        Response::Refused(Refusal::KeyExists { pkh: host })
    );
    let signature = Signature::Secp256k1(
        secp256k1::SECP256K1
            .sign_ecdsa(secp256k1::Message::from_digest(digest), &service)
            .serialize_compact(),
    );
    assert!(matches!(
        b.handle(Request::HostSignature {
            pkh: host,
            signature
        }),
        Response::Signature(_)
    ));
}

// ---------------------------------------------------------------------------------------------
// Finding 5: proofs of possession.
// ---------------------------------------------------------------------------------------------

fn prove(b: &mut TestBoard, pkh: &PublicKeyHash, override_pk: Option<PublicKey>) -> Response {
    b.handle(Request::ProvePossession {
        pkh: *pkh,
        override_pk,
    })
}

fn bls(pk: &PublicKey) -> [u8; 48] {
    match pk {
        PublicKey::Bls(raw) => *raw,
        other => panic!("not BLS: {other:?}"),
    }
}

/// A proof by `signer` over `proven`, checked with the zkcrypto `bls12_381` crate: the pairing
/// equation e(signer, H(proven)) = e(g1, proof) with the POP domain tag.
fn proof_verifies(signer: &[u8; 48], proven: &[u8; 48], proof: &Signature) -> bool {
    let Signature::Bls(sig) = proof else {
        return false;
    };
    let (Some(pk), Some(sig)) = (
        Option::<G1Affine>::from(G1Affine::from_compressed(signer)),
        Option::<G2Affine>::from(G2Affine::from_compressed(sig)),
    ) else {
        return false;
    };
    let h = <G2Projective as HashToCurve<ExpandMsgXmd<sha2_010::Sha256>>>::hash_to_curve(
        [proven.as_slice()],
        support::BLS_POP_DST,
    );
    pairing(&pk, &G2Affine::from(h)) == pairing(&G1Affine::generator(), &sig)
}

/// Compressed G1 encodings that are on the curve but outside the prime-order subgroup, found
/// and checked with the `bls12_381` crate (not blst, which pawl uses).
fn off_subgroup_points() -> Vec<[u8; 48]> {
    // (0, 2): on y² = x³ + 4 (2² = 0³ + 4). A point with x = 0 on y² = x³ + b is an inflection
    // point, of order 3; 3 divides the G1 cofactor but not the prime order r, so it is not in
    // G1. Compressed: flag 0x80, y = 2 is the smaller root (sign flag clear), x = 0.
    let mut order_three = [0u8; 48];
    order_three[0] = 0x80;
    // And the first x = 1, 2, … whose point exists and is not torsion-free.
    let mut found = None;
    for x in 1u8..=255 {
        let mut enc = [0u8; 48];
        enc[0] = 0x80;
        enc[47] = x;
        let point = Option::<G1Affine>::from(G1Affine::from_compressed_unchecked(&enc));
        if point.is_some_and(|p| bool::from(p.is_on_curve()) && !bool::from(p.is_torsion_free())) {
            found = Some(enc);
            break;
        }
    }
    let points = vec![order_three, found.expect("a small x off the subgroup")];
    for enc in &points {
        let point = Option::<G1Affine>::from(G1Affine::from_compressed_unchecked(enc))
            .expect("a point of the curve");
        assert!(bool::from(point.is_on_curve()));
        assert!(!bool::from(point.is_torsion_free()), "outside G1");
        assert!(
            bool::from(G1Affine::from_compressed(enc).is_none()),
            "the checked decoder refuses it"
        );
    }
    points
}

fn signatures(b: &mut TestBoard) -> u32 {
    match b.handle(Request::Status) {
        Response::Status(s) => s.signatures,
        other => panic!("{other:?}"),
    }
}

#[test]
fn override_pk_must_be_a_public_key() {
    let mut b = board(MemoryStore::new(), Mode::Provisioning);
    let (tz4, pk4) = import(&mut b, TZ4, Policy::default());
    // The identity (point at infinity): compression and infinity flags, nothing else.
    let mut identity = [0u8; 48];
    identity[0] = 0xc0;
    assert!(bool::from(
        G1Affine::from_compressed(&identity)
            .expect("the identity encoding")
            .is_identity()
    ));
    let mut bad: Vec<(&str, [u8; 48])> = vec![("0x42 × 48", [0x42; 48]), ("identity", identity)];
    for p in off_subgroup_points() {
        bad.push(("on the curve, outside G1", p));
    }
    for (what, raw) in bad {
        let before = signatures(&mut b);
        assert_eq!(
            prove(&mut b, &tz4, Some(PublicKey::Bls(raw))),
            Response::Refused(Refusal::Key(KeyError::InvalidPossessionKey)),
            "{what}"
        );
        assert_eq!(signatures(&mut b), before, "{what}: nothing signed");
    }
    // Not a BLS key at all.
    let (_, edpk) = import(&mut b, TZ1, Policy::default());
    assert_eq!(
        prove(&mut b, &tz4, Some(edpk)),
        Response::Refused(Refusal::Key(KeyError::InvalidPossessionKey))
    );
    // A valid override (12345·g1, made with bls12_381) is proven, and the proof verifies.
    let other = G1Affine::from(G1Affine::generator() * Scalar::from(12345u64)).to_compressed();
    match prove(&mut b, &tz4, Some(PublicKey::Bls(other))) {
        Response::Signature(proof) => {
            assert!(proof_verifies(&bls(&pk4), &other, &proof));
            assert!(!proof_verifies(&bls(&pk4), &bls(&pk4), &proof));
        }
        r => panic!("{r:?}"),
    }
    // And the key's own proof.
    match prove(&mut b, &tz4, None) {
        Response::Signature(proof) => assert!(verify_pop_independently(&bls(&pk4), &proof)),
        r => panic!("{r:?}"),
    }
}

#[test]
fn operational_proofs_need_the_keys_permission() {
    let mut b = board(MemoryStore::new(), Mode::Provisioning);
    let (allowed, pk_allowed) = import(&mut b, TZ4, Policy::default());
    let not_allowed = key_info(b.handle(Request::GenerateKey {
        curve: Curve::Bls12_381,
        policy: Policy::default(),
    }));
    let (tz1, _) = import(&mut b, TZ1, Policy::default());
    // Provisioning mode: every tz4 key proves possession.
    assert!(matches!(
        prove(&mut b, &not_allowed, None),
        Response::Signature(_)
    ));
    assert_eq!(
        b.handle(Request::AllowPossession {
            pkh: allowed,
            operational: true
        }),
        Response::Done
    );
    // Only tz4 keys on the board have the permission.
    assert_eq!(
        b.handle(Request::AllowPossession {
            pkh: tz1,
            operational: true
        }),
        Response::Refused(Refusal::Key(KeyError::PossessionNeedsBls))
    );

    // Operational mode, after a restart on the same store: the permission was stored.
    let mut b = board(b.into_store(), Mode::Operational);
    match prove(&mut b, &allowed, None) {
        Response::Signature(proof) => {
            assert!(verify_pop_independently(&bls(&pk_allowed), &proof))
        }
        r => panic!("{r:?}"),
    }
    let before = signatures(&mut b);
    assert_eq!(
        prove(&mut b, &not_allowed, None),
        Response::Refused(Refusal::PossessionNotAllowed)
    );
    assert_eq!(signatures(&mut b), before);
    // The permission is set in provisioning mode only.
    assert_eq!(
        b.handle(Request::AllowPossession {
            pkh: not_allowed,
            operational: true
        }),
        Response::Refused(Refusal::ProvisioningOnly)
    );
    // Still refused, and an override does not get around it.
    let other = G1Affine::from(G1Affine::generator() * Scalar::from(7u64)).to_compressed();
    assert_eq!(
        prove(&mut b, &not_allowed, Some(PublicKey::Bls(other))),
        Response::Refused(Refusal::PossessionNotAllowed)
    );

    // Withdrawn at provisioning: refused in operational mode again.
    let mut b = board(b.into_store(), Mode::Provisioning);
    assert_eq!(
        b.handle(Request::AllowPossession {
            pkh: allowed,
            operational: false
        }),
        Response::Done
    );
    let mut b = board(b.into_store(), Mode::Operational);
    assert_eq!(
        prove(&mut b, &allowed, None),
        Response::Refused(Refusal::PossessionNotAllowed)
    );
}

/// A tz4 key record as every store holds it today: postcard of (curve, secret, policy,
/// host_public, hsm), written here field by field rather than through `StoredKey`.
#[test]
fn key_records_from_before_the_permission_still_load_without_it() {
    let (curve, secret) = SecretBytes::from_b58(TZ4).expect("tz4 secret");
    let mut buf = [0u8; 256];
    let today = postcard::to_slice(
        &(
            curve,
            secret.clone(),
            Policy::default(),
            None::<PublicKey>,
            None::<HsmLink>,
        ),
        &mut buf,
    )
    .expect("encode")
    .to_vec();
    let decoded = StoredKey::decode(&today).expect("today's record decodes");
    assert_eq!(decoded.curve, Curve::Bls12_381);
    assert_eq!(decoded.secret, secret);
    assert_eq!(decoded.policy, Policy::default());
    assert_eq!((decoded.host_public, decoded.hsm), (None, None));
    assert_eq!(decoded.pop_operational, None);
    // The new field is one appended `Option<bool>`.
    let mut with = today.clone();
    with.extend_from_slice(&[1, 1]);
    assert_eq!(
        StoredKey::decode(&with).expect("decode").pop_operational,
        Some(true)
    );
    let mut junk = today.clone();
    junk.extend_from_slice(&[1, 1, 0]);
    assert!(StoredKey::decode(&junk).is_err(), "trailing bytes");

    // Loaded by a board: the key signs as before and proves possession in provisioning mode
    // only.
    let mut store = MemoryStore::new();
    store.persist_key(0, &decoded).expect("persist");
    let mut b = board(store, Mode::Operational);
    let pkh = match b.handle(Request::ListKeys) {
        Response::Keys(keys) => keys[0].pkh,
        r => panic!("{r:?}"),
    };
    assert_eq!(
        prove(&mut b, &pkh, None),
        Response::Refused(Refusal::PossessionNotAllowed)
    );
    let mut b = board(b.into_store(), Mode::Provisioning);
    assert!(matches!(prove(&mut b, &pkh, None), Response::Signature(_)));
}

// ---------------------------------------------------------------------------------------------
// Finding 6: Micheline TooDeep offset.
// ---------------------------------------------------------------------------------------------

/// `depth` + 1 nested Micheline nodes around an int 0, each level either a sequence
/// (`02 ‖ len32 ‖ items`) or a primitive application with an argument list and no annotations
/// (`09 ‖ prim ‖ len32 ‖ args ‖ 00000000`).
fn nested(levels: usize, prim_app: bool) -> Vec<u8> {
    let mut node = vec![0x00, 0x00]; // int 0
    for _ in 0..levels {
        let len = u32::try_from(node.len()).expect("small").to_be_bytes();
        let mut outer = if prim_app {
            vec![0x09, 0x00] // prim `parameter`
        } else {
            vec![0x02]
        };
        outer.extend_from_slice(&len);
        outer.extend_from_slice(&node);
        if prim_app {
            outer.extend_from_slice(&[0, 0, 0, 0]); // no annotations
        }
        node = outer;
    }
    let mut payload = vec![0x05];
    payload.extend_from_slice(&node);
    payload
}

#[test]
fn too_deep_reports_the_offset_of_the_too_deep_node() {
    // The outermost node is at depth 0, offset 1 (after the 0x05 magic byte); pawl walks
    // depths 0 to 48, so the node at depth 49 is the first too deep.
    //
    // Sequences: each enclosing level adds its tag byte and 4-byte length, so the node at
    // depth d starts at 1 + 5·d, and the depth-49 node at 1 + 245 = 246.
    assert_eq!(
        pawl_core::request::parse(&nested(49, false)),
        Err(ParseError::TooDeep { offset: 246 })
    );
    // Primitive applications: tag, primitive and 4-byte length, 6 bytes a level: the node at
    // depth 49 starts at 1 + 6·49 = 295.
    assert_eq!(
        pawl_core::request::parse(&nested(49, true)),
        Err(ParseError::TooDeep { offset: 295 })
    );
    // One level less is within the bound and parses.
    assert!(pawl_core::request::parse(&nested(48, false)).is_ok());
    assert!(pawl_core::request::parse(&nested(48, true)).is_ok());
    // Errors further in are placed the same way: a bad tag (0x0b) as the only item of the
    // third nested sequence sits at 1 + 5·3 = 16.
    let mut bad = nested(3, false);
    bad[16] = 0x0b;
    assert_eq!(
        pawl_core::request::parse(&bad),
        Err(ParseError::BadTag {
            offset: 16,
            value: 0x0b
        })
    );
}
