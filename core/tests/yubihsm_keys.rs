//! Keys the board registers from a YubiHSM2 through its own session, against the yubihsm
//! crate's MockHsm: `GenerateHsmKey` (the HSM makes the key; the board reads its public key
//! back) and `ImportHsmKey` (an existing key by id). What the board registers is checked
//! against the crate's own client (public key, algorithm, capabilities, label); signatures
//! with the new keys are verified with libsecp256k1/OpenSSL; a relay that alters the public
//! key reply gets no key registered; refusals send nothing to the HSM.

mod support;

use pawl_core::keys::{Curve, PublicKey, PublicKeyHash, SigningVersion};
use pawl_core::policy::Policy;
use pawl_core::protocol::{Backend, KeyInfo, Mode, Refusal, Request, Response};
use pawl_core::store::MemoryStore;
use pawl_core::yubihsm::{HsmError, command};
use yubihsm::{Capability, object};

use support::board::{TestBoard, attestation, board};
use support::hsm::{AUTH_ID, Hsm, K256_ID, P256_ID, PASSWORD, Relay, derive, drive, honest};
use support::verify_independently;

const CHAIN: [u8; 4] = [0x7a, 0x06, 0xa7, 0x70];

/// A provisioning board set up with the mock's default authentication key.
fn set_up() -> TestBoard {
    let mut b = board(MemoryStore::new(), Mode::Provisioning);
    assert_eq!(
        b.handle(Request::YubiHsmSetup {
            auth_key_id: AUTH_ID,
            keys: derive(PASSWORD),
        }),
        Response::Done
    );
    b
}

fn generate(b: &mut TestBoard, hsm: &mut Hsm, id: u16, curve: Curve, relay: Relay<'_>) -> Response {
    drive(
        b,
        hsm,
        Request::GenerateHsmKey {
            key_id: id,
            curve,
            label: "pawl baker",
            domains: 1,
            policy: Policy::default(),
        },
        relay,
    )
}

fn import(
    b: &mut TestBoard,
    hsm: &mut Hsm,
    id: u16,
    expect: Option<PublicKey>,
    relay: Relay<'_>,
) -> Response {
    drive(
        b,
        hsm,
        Request::ImportHsmKey {
            key_id: id,
            expect,
            policy: Policy::default(),
        },
        relay,
    )
}

/// The key's public key as the crate's own client reads it (independent of pawl's parser:
/// compared as raw bytes).
fn their_public_key(hsm: &Hsm, id: u16) -> Vec<u8> {
    hsm.client()
        .get_public_key(id)
        .expect("public key")
        .as_ref()
        .to_vec()
}

/// Raw HSM public-key bytes of a Tezos key: Ed25519 as is, EC keys as `x ‖ y` (decompressed
/// by OpenSSL).
fn raw_point(public: &PublicKey) -> Vec<u8> {
    use openssl::bn::BigNumContext;
    use openssl::ec::{EcGroup, EcPoint, PointConversionForm};
    use openssl::nid::Nid;
    let (nid, compressed) = match public {
        PublicKey::Ed25519(pk) => return pk.to_vec(),
        PublicKey::Secp256k1(pk) => (Nid::SECP256K1, pk),
        PublicKey::P256(pk) => (Nid::X9_62_PRIME256V1, pk),
        PublicKey::Bls(_) => panic!("no BLS in a YubiHSM2"),
    };
    let group = EcGroup::from_curve_name(nid).expect("group");
    let mut ctx = BigNumContext::new().expect("ctx");
    let point = EcPoint::from_bytes(&group, compressed, &mut ctx).expect("point");
    point
        .to_bytes(&group, PointConversionForm::UNCOMPRESSED, &mut ctx)
        .expect("bytes")[1..]
        .to_vec()
}

fn keys(b: &mut TestBoard) -> Vec<KeyInfo> {
    match b.handle(Request::ListKeys) {
        Response::Keys(k) => k.to_vec(),
        other => panic!("list: {other:?}"),
    }
}

fn sign(b: &mut TestBoard, hsm: &mut Hsm, pkh: PublicKeyHash, level: u32) -> Response {
    let payload = attestation(CHAIN, level, 0, 1);
    drive(
        b,
        hsm,
        Request::Sign {
            pkh,
            version: SigningVersion::LATEST,
            payload: &payload,
        },
        &mut honest(),
    )
}

#[test]
fn keys_generated_inside_the_hsm_are_registered_and_sign() {
    let mut hsm = Hsm::new();
    let mut b = set_up();
    for (curve, id, algorithm, capability) in [
        (
            Curve::Ed25519,
            0x20,
            yubihsm::asymmetric::Algorithm::Ed25519,
            Capability::SIGN_EDDSA,
        ),
        (
            Curve::Secp256k1,
            0x21,
            yubihsm::asymmetric::Algorithm::EcK256,
            Capability::SIGN_ECDSA,
        ),
        (
            Curve::P256,
            0x22,
            yubihsm::asymmetric::Algorithm::EcP256,
            Capability::SIGN_ECDSA,
        ),
    ] {
        let before = hsm.messages;
        let info = match generate(&mut b, &mut hsm, id, curve, &mut honest()) {
            Response::KeyInfo(info) => info,
            other => panic!("{curve:?}: {other:?}"),
        };
        assert_eq!(info.backend, Backend::YubiHsm);
        assert_eq!(info.public_key.curve(), curve);
        // The HSM holds exactly that key, made as asked: sign-only, not exportable.
        assert_eq!(their_public_key(&hsm, id), raw_point(&info.public_key));
        let object = hsm
            .client()
            .get_object_info(id, object::Type::AsymmetricKey)
            .expect("object info");
        assert_eq!(object.algorithm, yubihsm::Algorithm::Asymmetric(algorithm));
        assert_eq!(object.capabilities, capability);
        assert!(
            !object
                .capabilities
                .contains(Capability::EXPORTABLE_UNDER_WRAP)
        );
        assert_eq!(object.label.to_string(), "pawl baker");
        assert_eq!(object.origin, object::Origin::Generated);
        // Generate and Get Public Key, plus the session's opening the first time.
        assert!(hsm.messages - before <= 4, "{}", hsm.messages - before);

        let payload = attestation(CHAIN, 30, 0, 1);
        match sign(&mut b, &mut hsm, info.pkh, 30) {
            Response::Signature(sig) => {
                assert!(verify_independently(&info.public_key, &payload, &sig));
            }
            other => panic!("{curve:?} sign: {other:?}"),
        }
    }
    assert_eq!(keys(&mut b).len(), 3);
}

#[test]
fn import_reads_the_public_key_through_the_session() {
    let mut hsm = Hsm::new();
    let mut b = set_up();
    let info = match import(&mut b, &mut hsm, K256_ID, None, &mut honest()) {
        Response::KeyInfo(info) => info,
        other => panic!("import: {other:?}"),
    };
    assert_eq!(raw_point(&info.public_key), their_public_key(&hsm, K256_ID));
    assert!(matches!(
        sign(&mut b, &mut hsm, info.pkh, 5),
        Response::Signature(_)
    ));

    // The operator's expected key must be what the HSM holds under that id.
    let other = info.public_key;
    assert_eq!(
        import(&mut b, &mut hsm, P256_ID, Some(other), &mut honest()),
        Response::Refused(Refusal::Hsm(HsmError::KeyMismatch))
    );
    assert_eq!(keys(&mut b).len(), 1);
    let p256 = {
        let mut data = vec![yubihsm::asymmetric::Algorithm::EcP256 as u8];
        data.extend(their_public_key(&hsm, P256_ID));
        command::public_key(&data).expect("p256")
    };
    assert!(matches!(
        import(&mut b, &mut hsm, P256_ID, Some(p256), &mut honest()),
        Response::KeyInfo(i) if i.public_key == p256
    ));
    // The same key again: already on the board.
    assert!(matches!(
        import(&mut b, &mut hsm, P256_ID, None, &mut honest()),
        Response::Refused(Refusal::KeyExists { .. })
    ));
    // A key id the HSM does not have: the HSM's own refusal, nothing registered.
    assert!(matches!(
        import(&mut b, &mut hsm, 0x0777, None, &mut honest()),
        Response::Refused(Refusal::Hsm(_))
    ));
    assert_eq!(keys(&mut b).len(), 2);
}

#[test]
fn a_relay_that_alters_any_reply_gets_no_key_registered() {
    for target in 0..4 {
        // Code, length, inside the challenge / ciphertext, the last MAC byte. (Not the session
        // id byte: the board would then authenticate another session, which a real HSM
        // refuses but MockHsm asserts on, poisoning itself for the rest of the test.)
        for byte in [0usize, 2, 9, usize::MAX] {
            let mut hsm = Hsm::new();
            let mut b = set_up();
            let mut flip = |n: usize, mut r: Vec<u8>| {
                if n == target {
                    let at = byte.min(r.len() - 1);
                    r[at] ^= 0x01;
                }
                Some(r)
            };
            let answer = generate(&mut b, &mut hsm, 0x30, Curve::Secp256k1, &mut flip);
            let touched = hsm.messages > target;
            if touched {
                assert!(
                    matches!(answer, Response::Refused(Refusal::Hsm(_))),
                    "reply {target} byte {byte}: {answer:?}"
                );
                assert!(keys(&mut b).is_empty(), "reply {target} byte {byte}");
            }
            // The board recovers: a fresh session, the import of the (maybe) generated key
            // or a generation under a new id works.
            let again = if hsm.client().get_public_key(0x30).is_ok() {
                import(&mut b, &mut hsm, 0x30, None, &mut honest())
            } else {
                generate(&mut b, &mut hsm, 0x31, Curve::Secp256k1, &mut honest())
            };
            assert!(
                matches!(again, Response::KeyInfo(_)),
                "after {target}/{byte}: {again:?}"
            );
        }
    }
    // A reply of another key substituted for the public key reply: the MAC says no.
    let mut hsm = Hsm::new();
    let mut b = set_up();
    let mut captured = vec![];
    let mut keep = |_, r: Vec<u8>| {
        captured.push(r.clone());
        Some(r)
    };
    assert!(matches!(
        import(&mut b, &mut hsm, K256_ID, None, &mut keep),
        Response::KeyInfo(_)
    ));
    let foreign = captured.last().expect("a reply").clone();
    let mut substitute = |_, _| Some(foreign.clone());
    let answer = import(&mut b, &mut hsm, P256_ID, None, &mut substitute);
    assert!(
        matches!(answer, Response::Refused(Refusal::Hsm(_))),
        "{answer:?}"
    );
    assert_eq!(keys(&mut b).len(), 1);
}

#[test]
fn refusals_send_nothing_to_the_hsm() {
    let mut hsm = Hsm::new();
    // Not set up.
    let mut b = board(MemoryStore::new(), Mode::Provisioning);
    assert_eq!(
        import(&mut b, &mut hsm, K256_ID, None, &mut honest()),
        Response::Refused(Refusal::Hsm(HsmError::NotSetUp))
    );
    let mut b = set_up();
    assert_eq!(
        generate(&mut b, &mut hsm, 0x40, Curve::Bls12_381, &mut honest()),
        Response::Refused(Refusal::Hsm(HsmError::UnsupportedCurve))
    );
    let long = "x".repeat(41);
    assert_eq!(
        drive(
            &mut b,
            &mut hsm,
            Request::GenerateHsmKey {
                key_id: 0x40,
                curve: Curve::P256,
                label: &long,
                domains: 1,
                policy: Policy::default(),
            },
            &mut honest(),
        ),
        Response::Refused(Refusal::Hsm(HsmError::LabelTooLong))
    );
    // Operational mode: no provisioning, no HSM byte.
    let store = b.into_store();
    let mut b = board(store, Mode::Operational);
    assert_eq!(
        generate(&mut b, &mut hsm, 0x40, Curve::P256, &mut honest()),
        Response::Refused(Refusal::ProvisioningOnly)
    );
    assert_eq!(
        import(&mut b, &mut hsm, K256_ID, None, &mut honest()),
        Response::Refused(Refusal::ProvisioningOnly)
    );
    assert_eq!(hsm.messages, 0);
    assert!(hsm.client().get_public_key(0x40).is_err());
}

#[test]
fn a_generated_key_survives_a_reboot_into_operational_mode() {
    let mut hsm = Hsm::new();
    let mut b = set_up();
    let info = match generate(&mut b, &mut hsm, 0x50, Curve::Ed25519, &mut honest()) {
        Response::KeyInfo(info) => info,
        other => panic!("{other:?}"),
    };
    let mut b = board(b.into_store(), Mode::Operational);
    assert_eq!(keys(&mut b), vec![info.clone()]);
    let payload = attestation(CHAIN, 9, 0, 1);
    match sign(&mut b, &mut hsm, info.pkh, 9) {
        Response::Signature(sig) => assert!(verify_independently(&info.public_key, &payload, &sig)),
        other => panic!("{other:?}"),
    }
}
