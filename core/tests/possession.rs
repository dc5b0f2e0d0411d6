//! Issue 13 (the hostile host), finding 5: proofs of possession (`core/src/board/possession.rs`).
//! `override_pk` must be a BLS12-381 public key (a subgroup point, not the identity), and in
//! operational mode only keys allowed at provisioning prove possession; the permission is
//! stored compatibly with records written before it existed.
//!
//! Independent source: the zkcrypto `bls12_381` crate for every point and proof check.

mod support;

use bls12_381::hash_to_curve::{ExpandMsgXmd, HashToCurve};
use bls12_381::{G1Affine, G2Affine, G2Projective, Scalar, pairing};
use pawl_core::keys::{Curve, KeyError, PublicKey, PublicKeyHash, SecretBytes, Signature};
use pawl_core::policy::Policy;
use pawl_core::protocol::{Mode, Refusal, Request, Response};
use pawl_core::store::{HsmLink, MemoryStore, Store, StoredKey};
use support::board::{TestBoard, board, import};
use support::verify_pop_independently;

const TZ1: &str = "edsk4FTF78Qf1m2rykGpHqostAiq5gYW4YZEoGUSWBTJr2njsDHSnd";
const TZ4: &str = "BLsk1hKAHyGqY9qRbgoSVnjiSmDWpKGjFF3WNQ7BaiaMUA6RMA6Pfq";

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

fn key_info(r: Response) -> PublicKeyHash {
    match r {
        Response::KeyInfo(info) => info.pkh,
        other => panic!("expected KeyInfo, got {other:?}"),
    }
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
    // (`0 0 0` after it are the `None`s of the jump limit, the duty and the CometBFT chain
    // appended since; a byte after those is junk.)
    junk.extend_from_slice(&[1, 1, 0, 0, 0, 0]);
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
