//! Host-held keys (Azure Key Vault tier): registration, digest approval with the mark durable
//! first, verification of the key service's signature (high-S brought to low-S), identical
//! retries from the table, and every refusal leaving the board as it was.
//!
//! The "key service" here is libsecp256k1 (`secp256k1` crate) for tz2 and OpenSSL for tz3;
//! every released signature is verified again with `support::verify_independently`.

mod support;

use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey, PointConversionForm};
use openssl::ecdsa::EcdsaSig;
use openssl::nid::Nid;
use pawl_core::board::{Board, Presence};
use pawl_core::digest::blake2b_256;
use pawl_core::keys::Entropy;
use pawl_core::keys::{Curve, KeyError, PublicKey, PublicKeyHash, Signature, SigningVersion};
use pawl_core::policy::Policy;
use pawl_core::protocol::{Backend, Mode, Refusal, Request, Response};
use pawl_core::request::ChainId;
use pawl_core::store::Store;
use pawl_core::store::{MemoryStore, StoreError, StoredKey};
use pawl_core::watermark::{MarkId, MarkKind, WatermarkError};
use support::board::{TestBoard, attestation, board, import, sign};
use support::power::{SharedGuard, boot};
use support::verify_independently;

const CHAIN: [u8; 4] = [0xb3, 0xd7, 0x9f, 0x99];
const TZ1: &str = "edsk4FTF78Qf1m2rykGpHqostAiq5gYW4YZEoGUSWBTJr2njsDHSnd";

/// A key in the simulated key service.
enum ServiceKey {
    Secp(secp256k1::SecretKey),
    P256(EcKey<openssl::pkey::Private>),
}

impl ServiceKey {
    fn secp(seed: u8) -> Self {
        ServiceKey::Secp(secp256k1::SecretKey::from_byte_array([seed; 32]).expect("secret"))
    }

    fn p256() -> Self {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("group");
        ServiceKey::P256(EcKey::generate(&group).expect("key"))
    }

    fn public(&self) -> PublicKey {
        match self {
            ServiceKey::Secp(sk) => {
                PublicKey::Secp256k1(secp256k1::PublicKey::from_secret_key_global(sk).serialize())
            }
            ServiceKey::P256(k) => {
                let mut ctx = BigNumContext::new().expect("ctx");
                let bytes = k
                    .public_key()
                    .to_bytes(k.group(), PointConversionForm::COMPRESSED, &mut ctx)
                    .expect("point");
                PublicKey::from_curve_bytes(Curve::P256, &bytes).expect("p256")
            }
        }
    }

    /// Sign the digest as Key Vault does: raw `r ‖ s`, and for secp256k1 optionally high-S.
    fn sign(&self, digest: &[u8; 32], high_s: bool) -> Signature {
        match self {
            ServiceKey::Secp(sk) => {
                let sig = secp256k1::SECP256K1
                    .sign_ecdsa(secp256k1::Message::from_digest(*digest), sk)
                    .serialize_compact();
                Signature::Secp256k1(if high_s { flip_s(&sig) } else { sig })
            }
            ServiceKey::P256(k) => {
                let sig = EcdsaSig::sign(digest, k).expect("sign");
                let mut raw = [0u8; 64];
                raw[..32].copy_from_slice(&sig.r().to_vec_padded(32).expect("r"));
                raw[32..].copy_from_slice(&sig.s().to_vec_padded(32).expect("s"));
                Signature::P256(raw)
            }
        }
    }
}

/// `s → n − s` on secp256k1 (computed with OpenSSL's big numbers): the high-S twin of a
/// low-S signature, equally valid for plain ECDSA, refused by Octez.
fn flip_s(sig: &[u8; 64]) -> [u8; 64] {
    let n =
        BigNum::from_hex_str("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141")
            .expect("n");
    let s = BigNum::from_slice(&sig[32..]).expect("s");
    let mut high = BigNum::new().expect("bn");
    high.checked_sub(&n, &s).expect("sub");
    let mut out = *sig;
    out[32..].copy_from_slice(&high.to_vec_padded(32).expect("pad"));
    out
}

fn register<S: Store, E: Entropy, P: Presence>(
    b: &mut Board<S, E, P>,
    public: PublicKey,
    policy: Policy,
) -> Result<PublicKeyHash, Refusal> {
    match b.handle(Request::RegisterHostKey {
        public_key: public,
        policy,
    }) {
        Response::KeyInfo(info) => {
            assert_eq!(info.backend, Backend::HostHeld);
            assert_eq!(info.public_key, public);
            Ok(info.pkh)
        }
        Response::Refused(r) => Err(r),
        other => panic!("register: {other:?}"),
    }
}

fn ask<S: Store, E: Entropy, P: Presence>(
    b: &mut Board<S, E, P>,
    pkh: &PublicKeyHash,
    payload: &[u8],
) -> Response {
    b.handle(Request::Sign {
        pkh: *pkh,
        version: SigningVersion::LATEST,
        payload,
    })
}

fn approved<S: Store, E: Entropy, P: Presence>(
    b: &mut Board<S, E, P>,
    pkh: &PublicKeyHash,
    payload: &[u8],
) -> [u8; 32] {
    match ask(b, pkh, payload) {
        Response::DigestApproved { pkh: p, digest } => {
            assert_eq!(&p, pkh);
            assert_eq!(digest, blake2b_256(payload));
            digest
        }
        other => panic!("expected an approval, got {other:?}"),
    }
}

fn bring<S: Store, E: Entropy, P: Presence>(
    b: &mut Board<S, E, P>,
    pkh: &PublicKeyHash,
    signature: Signature,
) -> Result<Signature, Refusal> {
    match b.handle(Request::HostSignature {
        pkh: *pkh,
        signature,
    }) {
        Response::Signature(s) => Ok(s),
        Response::Refused(r) => Err(r),
        other => panic!("host signature: {other:?}"),
    }
}

fn mark_id(pkh: PublicKeyHash) -> MarkId {
    MarkId {
        chain: ChainId(CHAIN),
        key: pkh,
        kind: MarkKind::Attestation,
    }
}

fn setup(key: &ServiceKey) -> (TestBoard, PublicKeyHash) {
    let mut b = board(MemoryStore::new(), Mode::Provisioning);
    let pkh = register(&mut b, key.public(), Policy::default()).expect("register");
    (b, pkh)
}

#[test]
fn tz2_high_s_from_the_service_is_released_low_s_and_repeated_from_the_table() {
    let key = ServiceKey::secp(7);
    let (mut b, pkh) = setup(&key);
    let payload = attestation(CHAIN, 100, 0, 1);
    let digest = approved(&mut b, &pkh, &payload);
    // The mark is durable before the digest leaves the board.
    assert_eq!(b.store().mark(&mark_id(pkh)), Some((100, 0)));

    let high = key.sign(&digest, true);
    let released = bring(&mut b, &pkh, high).expect("released");
    assert_ne!(released, high, "the high-S form is never released");
    assert!(verify_independently(&key.public(), &payload, &released));
    assert!(!verify_independently(&key.public(), &payload, &high));

    // Identical retry: the recorded signature, no new approval (so no key-service traffic).
    assert_eq!(ask(&mut b, &pkh, &payload), Response::Signature(released));
    // The approval was consumed.
    assert_eq!(bring(&mut b, &pkh, high), Err(Refusal::NoPendingSign));
}

/// A tz4 public key (made on a board: any valid BLS key will do).
fn board_bls_public() -> PublicKey {
    let mut b = board(MemoryStore::new(), Mode::Provisioning);
    match b.handle(Request::GenerateKey {
        curve: Curve::Bls12_381,
        policy: Policy::default(),
    }) {
        Response::KeyInfo(info) => info.public_key,
        other => panic!("generate: {other:?}"),
    }
}

#[test]
fn tz1_ed25519_over_the_digest_is_verified_and_released() {
    // The token's key: OpenSSL's Ed25519 (not the core's), signing the 32-byte digest as
    // PKCS#11 CKM_EDDSA does.
    let key = openssl::pkey::PKey::generate_ed25519().expect("ed25519");
    let raw: [u8; 32] = key
        .raw_public_key()
        .expect("raw")
        .try_into()
        .expect("32 bytes");
    let public = PublicKey::Ed25519(raw);
    let sign = |digest: &[u8; 32]| {
        let mut signer = openssl::sign::Signer::new_without_digest(&key).expect("signer");
        let sig: [u8; 64] = signer
            .sign_oneshot_to_vec(digest)
            .expect("sign")
            .try_into()
            .expect("64 bytes");
        Signature::Ed25519(sig)
    };
    let mut b = board(MemoryStore::new(), Mode::Provisioning);
    let pkh = register(&mut b, public, Policy::default()).expect("register");
    assert_eq!(pkh.curve, Curve::Ed25519);
    for level in [5, 6] {
        let payload = attestation(CHAIN, level, 0, 2);
        let digest = approved(&mut b, &pkh, &payload);
        // A signature of the wrong digest is refused and the approval stays.
        let mut other = digest;
        other[0] ^= 1;
        assert_eq!(
            bring(&mut b, &pkh, sign(&other)),
            Err(Refusal::Key(KeyError::BadSignature))
        );
        let sig = bring(&mut b, &pkh, sign(&digest)).expect("released");
        assert!(verify_independently(&public, &payload, &sig));
        // Released once; the identical request is answered from the table.
        assert_eq!(ask(&mut b, &pkh, &payload), Response::Signature(sig));
    }
}

#[test]
fn tz3_signature_is_verified_and_released() {
    let key = ServiceKey::p256();
    let (mut b, pkh) = setup(&key);
    assert_eq!(pkh.curve, Curve::P256);
    for level in [5, 6, 9] {
        let payload = attestation(CHAIN, level, 0, 2);
        let digest = approved(&mut b, &pkh, &payload);
        let sig = bring(&mut b, &pkh, key.sign(&digest, false)).expect("released");
        assert!(verify_independently(&key.public(), &payload, &sig));
    }
}

#[test]
fn a_signature_that_does_not_verify_is_refused_and_the_approval_stays() {
    let key = ServiceKey::secp(3);
    let other = ServiceKey::secp(4);
    let (mut b, pkh) = setup(&key);
    let payload = attestation(CHAIN, 10, 1, 1);
    let digest = approved(&mut b, &pkh, &payload);
    let mut wrong_digest = digest;
    wrong_digest[0] ^= 1;
    let mut garbage = [0u8; 64];
    garbage[31] = 1;
    garbage[63] = 1;
    let bad = [
        other.sign(&digest, false),     // another key
        key.sign(&wrong_digest, false), // another digest
        Signature::Secp256k1(garbage),  // not a signature of anything
        Signature::Secp256k1([0; 64]),  // not even a valid (r, s)
    ];
    for sig in bad {
        assert_eq!(
            bring(&mut b, &pkh, sig),
            Err(Refusal::Key(KeyError::BadSignature))
        );
    }
    assert_eq!(
        bring(&mut b, &pkh, Signature::P256([1; 64])),
        Err(Refusal::Key(KeyError::CurveMismatch))
    );
    // Nothing was recorded: the mark is still an approval without a signature.
    let mark = b.watermarks().get(&mark_id(pkh)).expect("mark");
    assert_eq!((mark.level, mark.round, mark.signature), (10, 1, None));
    // The approval is still there: the right signature is released.
    let sig = bring(&mut b, &pkh, key.sign(&digest, false)).expect("released");
    assert!(verify_independently(&key.public(), &payload, &sig));
}

#[test]
fn while_pending_only_the_identical_request_is_approved_again() {
    let key = ServiceKey::secp(9);
    let (mut b, pkh) = setup(&key);
    let payload = attestation(CHAIN, 50, 2, 1);
    let digest = approved(&mut b, &pkh, &payload);
    let writes = b.store().mark_writes;

    // Same position, other bytes: the approved digest counts as signed.
    assert!(matches!(
        ask(&mut b, &pkh, &attestation(CHAIN, 50, 2, 9)),
        Response::Refused(Refusal::Watermark(WatermarkError::DifferentData { .. }))
    ));
    // Below it.
    for (level, round) in [(50, 1), (49, 7)] {
        assert!(matches!(
            ask(&mut b, &pkh, &attestation(CHAIN, level, round, 1)),
            Response::Refused(Refusal::Watermark(_))
        ));
    }
    // The identical request: the same digest again, no new durable write.
    assert_eq!(approved(&mut b, &pkh, &payload), digest);
    assert_eq!(b.store().mark_writes, writes);
    let sig = bring(&mut b, &pkh, key.sign(&digest, false)).expect("released");
    assert!(verify_independently(&key.public(), &payload, &sig));
}

#[test]
fn other_requests_in_between_do_not_release_or_bypass() {
    let key = ServiceKey::secp(11);
    let key2 = ServiceKey::p256();
    let (mut b, pkh) = setup(&key);
    let pkh2 = register(&mut b, key2.public(), Policy::default()).expect("register");
    let (tz1, tz1_pk) = import(&mut b, TZ1, Policy::default());

    let payload = attestation(CHAIN, 70, 0, 1);
    let digest = approved(&mut b, &pkh, &payload);
    // An on-board signature and status in between leave the approval pending.
    let p1 = attestation(CHAIN, 70, 0, 3);
    let s1 = sign(&mut b, &tz1, &p1).expect("tz1 signs");
    assert!(verify_independently(&tz1_pk, &p1, &s1));
    assert!(matches!(b.handle(Request::Status), Response::Status(_)));
    // A signature for the approved digest offered for another key: no pending sign for it.
    assert_eq!(
        bring(&mut b, &pkh2, key2.sign(&digest, false)),
        Err(Refusal::NoPendingSign)
    );
    assert_eq!(
        bring(&mut b, &tz1, Signature::Secp256k1([1; 64])),
        Err(Refusal::NoPendingSign)
    );
    let sig = bring(&mut b, &pkh, key.sign(&digest, false)).expect("released");
    assert!(verify_independently(&key.public(), &payload, &sig));

    // A newer approval replaces the older one: the older digest's signature no longer fits.
    let old = attestation(CHAIN, 71, 0, 1);
    let old_digest = approved(&mut b, &pkh, &old);
    let new = attestation(CHAIN, 72, 0, 1);
    let new_digest = approved(&mut b, &pkh, &new);
    assert_eq!(
        bring(&mut b, &pkh, key.sign(&old_digest, false)),
        Err(Refusal::Key(KeyError::BadSignature))
    );
    let sig = bring(&mut b, &pkh, key.sign(&new_digest, false)).expect("released");
    assert!(verify_independently(&key.public(), &new, &sig));
    // The replaced request can never be released now: level 71 is below the mark.
    assert!(matches!(
        ask(&mut b, &pkh, &old),
        Response::Refused(Refusal::Watermark(WatermarkError::Below { .. }))
    ));
}

#[test]
fn host_signature_without_an_approval_is_refused() {
    let key = ServiceKey::secp(12);
    let (mut b, pkh) = setup(&key);
    let digest = blake2b_256(&attestation(CHAIN, 1, 0, 1));
    assert_eq!(
        bring(&mut b, &pkh, key.sign(&digest, false)),
        Err(Refusal::NoPendingSign)
    );
    assert!(b.watermarks().is_empty());
}

#[test]
fn a_store_failure_approves_nothing() {
    let key = ServiceKey::secp(13);
    let (b, pkh) = setup(&key);
    let mut store = b.into_store();
    store.fail_after = Some(0);
    let mut b = board(store, Mode::Operational);
    let payload = attestation(CHAIN, 5, 0, 1);
    assert_eq!(
        ask(&mut b, &pkh, &payload),
        Response::Refused(Refusal::Store(StoreError::Io))
    );
    assert!(b.watermarks().is_empty());
    let digest = blake2b_256(&payload);
    assert_eq!(
        bring(&mut b, &pkh, key.sign(&digest, false)),
        Err(Refusal::NoPendingSign)
    );
}

#[test]
fn registration_rules() {
    let mut b = board(MemoryStore::new(), Mode::Provisioning);
    let (_, tz1_pk) = import(&mut b, TZ1, Policy::default());
    let mut b = board(MemoryStore::new(), Mode::Provisioning);
    // tz1 can be host-held (a PKCS#11 token signs Ed25519 over the digest); tz4 cannot.
    assert_eq!(
        register(&mut b, tz1_pk, Policy::default()),
        Ok(tz1_pk.hash())
    );
    let bls = board_bls_public();
    assert_eq!(
        register(&mut b, bls, Policy::default()),
        Err(Refusal::Key(KeyError::NotHostHeldCurve {
            curve: Curve::Bls12_381
        }))
    );
    // 0x02 ‖ x with x not on the curve (x = 5 has no square root on secp256k1).
    let mut off = [0u8; 33];
    off[0] = 2;
    off[32] = 5;
    assert_eq!(
        register(&mut b, PublicKey::Secp256k1(off), Policy::default()),
        Err(Refusal::Key(KeyError::InvalidPublicKey))
    );
    let key = ServiceKey::secp(14);
    let pkh = register(&mut b, key.public(), Policy::default()).expect("register");
    assert_eq!(
        register(&mut b, key.public(), Policy::default()),
        Err(Refusal::KeyExists { pkh })
    );
    // Operational mode: refused.
    let mut b = board(MemoryStore::new(), Mode::Operational);
    assert_eq!(
        register(&mut b, key.public(), Policy::default()),
        Err(Refusal::ProvisioningOnly)
    );
    assert!(matches!(b.handle(Request::ListKeys), Response::Keys(k) if k.is_empty()));
}

#[test]
fn restart_keeps_the_key_and_the_durable_mark_but_not_the_approval() {
    let key = ServiceKey::secp(15);
    let (mut b, pkh) = setup(&key);
    let payload = attestation(CHAIN, 30, 0, 1);
    let digest = approved(&mut b, &pkh, &payload);
    let mut b = board(b.into_store(), Mode::Operational);
    match b.handle(Request::ListKeys) {
        Response::Keys(keys) => {
            assert_eq!(keys.len(), 1);
            assert_eq!(keys[0].backend, Backend::HostHeld);
            assert_eq!(keys[0].public_key, key.public());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        bring(&mut b, &pkh, key.sign(&digest, false)),
        Err(Refusal::NoPendingSign)
    );
    // Only the position survived: even the identical request is refused, never re-approved.
    assert!(matches!(
        ask(&mut b, &pkh, &payload),
        Response::Refused(Refusal::Watermark(WatermarkError::NotAbove { .. }))
    ));
    let next = attestation(CHAIN, 31, 0, 1);
    let digest = approved(&mut b, &pkh, &next);
    let sig = bring(&mut b, &pkh, key.sign(&digest, true)).expect("released");
    assert!(verify_independently(&key.public(), &next, &sig));
}

#[test]
fn host_held_keys_have_no_proof_of_possession() {
    let key = ServiceKey::p256();
    let (mut b, pkh) = setup(&key);
    assert_eq!(
        b.handle(Request::ProvePossession {
            pkh,
            override_pk: None
        }),
        Response::Refused(Refusal::Key(KeyError::PossessionNeedsBls))
    );
}

#[test]
fn stored_key_records_from_before_host_keys_still_load() {
    // A record as written before `host_public` existed: postcard of (curve, secret, policy).
    let secret = pawl_core::keys::SecretBytes::new([7; 32]);
    let mut buf = [0u8; 256];
    let legacy = postcard::to_slice(
        &(Curve::Secp256k1, secret.clone(), Policy::default()),
        &mut buf,
    )
    .expect("encode")
    .to_vec();
    let decoded = StoredKey::decode(&legacy).expect("decode");
    assert_eq!(decoded.host_public, None);
    assert_eq!(decoded.secret, secret);
    let key = ServiceKey::p256();
    let host = StoredKey {
        curve: Curve::P256,
        secret: pawl_core::keys::SecretBytes::zero(),
        policy: Policy::default(),
        host_public: Some(key.public()),
        hsm: None,
        pop_operational: Some(false),
        jump_limit: None,
        duty: None,
        cometbft_chain: None,
    };
    let bytes = postcard::to_slice(&host, &mut buf)
        .expect("encode")
        .to_vec();
    assert_eq!(StoredKey::decode(&bytes).expect("decode"), host);
    // Without its last byte (the `None` of the CometBFT chain), a record from before CometBFT.
    let bytes = bytes[..bytes.len() - 1].to_vec();
    assert_eq!(StoredKey::decode(&bytes).expect("decode"), host);
    // Without its last byte (the `None` of the duty), a record from before duties; without
    // two (and the `None` of the jump limit), one from before the jump guard: the same key.
    let before_duties = bytes[..bytes.len() - 1].to_vec();
    assert_eq!(StoredKey::decode(&before_duties).expect("decode"), host);
    let bytes = bytes[..bytes.len() - 2].to_vec();
    assert_eq!(StoredKey::decode(&bytes).expect("decode"), host);
    // Without the last two bytes (the `Some(false)` of the proof-of-possession permission)
    // this is a record as YubiHSM2 support wrote it; without a third (the `hsm: None`), one as
    // host-held keys first wrote it. Both still load; a cut into the public key does not.
    let older = StoredKey {
        pop_operational: None,
        ..host.clone()
    };
    assert_eq!(
        StoredKey::decode(&bytes[..bytes.len() - 2]),
        Ok(older.clone())
    );
    assert_eq!(StoredKey::decode(&bytes[..bytes.len() - 3]), Ok(older));
    assert_eq!(
        StoredKey::decode(&bytes[..bytes.len() - 4]),
        Err(StoreError::Corrupted)
    );
}

#[test]
fn host_held_key_and_mark_survive_a_reboot_of_the_flash_store() {
    let key = ServiceKey::secp(21);
    let flash = pawl_core::sim::flash::SimFlash::new(16);
    let mut b = boot(flash, 16, 4, SharedGuard::default());
    let pkh = register(&mut b, key.public(), Policy::default()).expect("register");
    let payload = attestation(CHAIN, 200, 0, 1);
    let digest = approved(&mut b, &pkh, &payload);
    let sig = bring(&mut b, &pkh, key.sign(&digest, true)).expect("released");
    assert!(verify_independently(&key.public(), &payload, &sig));
    let store = b.into_store();
    let mut b = Board::open(
        store,
        support::board::TestEntropy(3),
        pawl_core::board::NoButton,
        Mode::Operational,
        support::board::INFO,
    );
    match b.handle(Request::ListKeys) {
        Response::Keys(keys) => {
            assert_eq!(keys.len(), 1);
            assert_eq!(keys[0].backend, Backend::HostHeld);
            assert_eq!(keys[0].public_key, key.public());
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        ask(&mut b, &pkh, &payload),
        Response::Refused(Refusal::Watermark(_))
    ));
    // After a reboot the board refuses up to the reserved ceiling (200 + 4).
    let next = attestation(CHAIN, 205, 0, 1);
    let digest = approved(&mut b, &pkh, &next);
    let sig = bring(&mut b, &pkh, key.sign(&digest, false)).expect("released");
    assert!(verify_independently(&key.public(), &next, &sig));
}
