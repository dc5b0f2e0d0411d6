//! pawl's no_std SCP03 client against an independent card side: the yubihsm crate's MockHsm,
//! spoken to with raw message bytes. The mock accepting our sessions (its own KDF, cryptogram
//! and C-MAC checks) is the check that the client follows the protocol; every signature is
//! verified with libsecp256k1 or OpenSSL; every altered, replayed, reordered or foreign reply
//! is refused by the client.

mod support;

use pawl_core::digest::blake2b_256;
use pawl_core::keys::{Curve, PublicKey, Signature, secp256k1_normalize};
use pawl_core::yubihsm::command::{self, Command};
use pawl_core::yubihsm::scp03::{Handshake, Session};
use pawl_core::yubihsm::{AuthKey, HsmError, code};
use support::hsm::{
    AUTH_ID, ED25519_ID, Hsm, K256_ID, P256_ID, PASSWORD, SIGNER_AUTH_ID, SIGNER_PASSWORD, derive,
};
use support::verify_independently;

const CHALLENGE: [u8; 8] = [1, 2, 3, 4, 5, 6, 7, 8];

#[derive(Debug, PartialEq)]
enum Failure {
    Client(HsmError),
    Mock(String),
}

fn open(hsm: &mut Hsm, key: &AuthKey, challenge: [u8; 8]) -> Result<Session, Failure> {
    let mut buf = [0u8; 2048];
    let (handshake, n) = Handshake::start(key, challenge, &mut buf).map_err(Failure::Client)?;
    let reply = hsm.send(&buf[..n]).map_err(Failure::Mock)?;
    let (opening, n) = handshake
        .answer(key, &reply, &mut buf)
        .map_err(Failure::Client)?;
    let reply = hsm.send(&buf[..n]).map_err(Failure::Mock)?;
    opening.confirm(&reply).map_err(Failure::Client)
}

/// Seal `cmd`, send it, return the raw reply.
fn exchange(hsm: &mut Hsm, session: &mut Session, cmd: &Command) -> Vec<u8> {
    let mut buf = [0u8; 2048];
    let n = session.seal(cmd.code, cmd.data(), &mut buf).expect("seal");
    hsm.send(&buf[..n]).expect("session message")
}

fn call(hsm: &mut Hsm, session: &mut Session, cmd: &Command) -> Result<Vec<u8>, HsmError> {
    let reply = exchange(hsm, session, cmd);
    let mut out = [0u8; 2048];
    session.open(cmd.code, &reply, &mut out).map(<[u8]>::to_vec)
}

fn sign(hsm: &mut Hsm, s: &mut Session, curve: Curve, id: u16, digest: &[u8; 32]) -> Signature {
    let data = call(hsm, s, &Command::sign(curve, id, digest).expect("cmd")).expect("sign");
    let raw = command::signature(curve, &data).expect("signature");
    match curve {
        Curve::Secp256k1 => Signature::Secp256k1(secp256k1_normalize(&raw).expect("low-S")),
        Curve::P256 => Signature::P256(raw),
        _ => Signature::Ed25519(raw),
    }
}

fn admin() -> AuthKey {
    AuthKey::new(AUTH_ID, &derive(PASSWORD))
}

#[test]
fn password_derivation_matches_yubihsm_crate() {
    let ours = derive(PASSWORD);
    let theirs = yubihsm::authentication::Key::derive_from_password(PASSWORD);
    assert_eq!(ours.expose().as_slice(), theirs.as_secret_slice());
}

#[test]
fn session_signs_with_every_curve_and_reads_public_keys() {
    let mut hsm = Hsm::new();
    let client = hsm.client();
    let key = AuthKey::new(SIGNER_AUTH_ID, &derive(SIGNER_PASSWORD));
    let mut session = open(&mut hsm, &key, CHALLENGE).expect("open");
    assert_eq!(session.counter(), 1);
    for (curve, id) in [
        (Curve::Secp256k1, K256_ID),
        (Curve::P256, P256_ID),
        (Curve::Ed25519, ED25519_ID),
    ] {
        let data = call(&mut hsm, &mut session, &Command::get_public_key(id)).expect("pk");
        let public = command::public_key(&data).expect("public key");
        assert_eq!(public.curve(), curve);
        // The crate's own client reads the same key.
        let theirs = client.get_public_key(id).expect("their pk");
        let theirs_bytes = theirs.as_ref();
        match public {
            PublicKey::Ed25519(pk) => assert_eq!(pk.as_slice(), theirs_bytes),
            PublicKey::Secp256k1(pk) | PublicKey::P256(pk) => {
                assert_eq!(&pk[1..], &theirs_bytes[..32])
            }
            PublicKey::Bls(_) => unreachable!(),
        }
        for i in 0..5u8 {
            let message = [0x11, i, 0x42];
            let digest = blake2b_256(&message);
            let sig = sign(&mut hsm, &mut session, curve, id, &digest);
            assert!(verify_independently(&public, &message, &sig), "{curve:?}");
            public
                .verify(&message, &sig, pawl_core::keys::SigningVersion::LATEST)
                .expect("pawl verifies too");
        }
    }
    assert_eq!(session.counter(), 1 + 3 * 6);
}

#[test]
fn wrong_password_is_caught_by_the_card_cryptogram() {
    let mut hsm = Hsm::new();
    let wrong = AuthKey::new(AUTH_ID, &derive(b"not the password"));
    assert_eq!(
        open(&mut hsm, &wrong, CHALLENGE).err(),
        Some(Failure::Client(HsmError::BadCardCryptogram))
    );
    // Unknown authentication key id: refused by the HSM (the mock panics, a real one answers
    // with an error); either way no session.
    let mut hsm = Hsm::new();
    let unknown = AuthKey::new(0x0999, &derive(PASSWORD));
    assert!(open(&mut hsm, &unknown, CHALLENGE).is_err());
}

#[test]
fn every_flipped_bit_of_a_reply_is_refused() {
    let mut hsm = Hsm::new();
    let digest = blake2b_256(b"flip");
    let cmd = Command::sign(Curve::Ed25519, ED25519_ID, &digest).expect("cmd");
    let mut session = open(&mut hsm, &admin(), CHALLENGE).expect("open");
    let reply = exchange(&mut hsm, &mut session, &cmd);
    let mut tries = 0;
    for byte in 0..reply.len() {
        for bit in [0x01u8, 0x80] {
            // Session keys are private (no copies), so each try runs the exchange on a fresh
            // session; a fresh mock every few tries, as it holds at most 16 sessions.
            tries += 1;
            if tries % 12 == 0 {
                hsm = Hsm::new();
            }
            let mut s = open(&mut hsm, &admin(), CHALLENGE).expect("open");
            let good = exchange(&mut hsm, &mut s, &cmd);
            let mut bad = good.clone();
            bad[byte] ^= bit;
            let mut out = [0u8; 2048];
            let err = s
                .open(cmd.code, &bad, &mut out)
                .expect_err("tampered reply accepted");
            assert!(
                matches!(
                    err,
                    HsmError::BadMac
                        | HsmError::Malformed
                        | HsmError::SessionMismatch
                        | HsmError::UnexpectedReply { .. }
                        | HsmError::Device { .. }
                ),
                "byte {byte}: {err:?}"
            );
        }
    }
}

#[test]
fn replayed_reordered_and_foreign_replies_are_refused() {
    let mut hsm = Hsm::new();
    let d1 = blake2b_256(b"one");
    let d2 = blake2b_256(b"two");
    let c1 = Command::sign(Curve::Secp256k1, K256_ID, &d1).expect("cmd");
    let c2 = Command::sign(Curve::Secp256k1, K256_ID, &d2).expect("cmd");
    let mut out = [0u8; 2048];

    // Replay: the reply to the first command offered for the second.
    let mut s = open(&mut hsm, &admin(), CHALLENGE).expect("open");
    let r1 = exchange(&mut hsm, &mut s, &c1);
    s.open(c1.code, &r1, &mut out).expect("first reply");
    let _r2 = exchange(&mut hsm, &mut s, &c2);
    assert_eq!(s.open(c2.code, &r1, &mut out).err(), Some(HsmError::BadMac));

    // Reorder: a relay that holds back reply 1, lets command 2 through and answers it with
    // reply 1 — the board never has two commands outstanding, so reply 1 is a replay.
    let mut s = open(&mut hsm, &admin(), CHALLENGE).expect("open");
    let r1 = exchange(&mut hsm, &mut s, &c1);
    let mut fresh = open(&mut hsm, &admin(), [9; 8]).expect("open");
    let r2 = exchange(&mut hsm, &mut fresh, &c2);
    // Reply from another session (same HSM, same key, other session keys).
    assert!(matches!(
        s.open(c1.code, &r2, &mut out).err(),
        Some(HsmError::SessionMismatch | HsmError::BadMac)
    ));
    // A reply with no command outstanding.
    assert!(s.open(c1.code, &r1, &mut out).is_err());

    // Drop: the relay never answers; sealing another command while one is outstanding is
    // refused (the board drops the session instead).
    let mut s = open(&mut hsm, &admin(), CHALLENGE).expect("open");
    let mut buf = [0u8; 2048];
    s.seal(c1.code, c1.data(), &mut buf).expect("seal");
    assert!(s.seal(c2.code, c2.data(), &mut buf).is_err());

    // A reply for another command code (a genuine Get Public Key reply offered for a sign).
    let mut s = open(&mut hsm, &admin(), CHALLENGE).expect("open");
    let pk = Command::get_public_key(K256_ID);
    let reply = exchange(&mut hsm, &mut s, &pk);
    assert_eq!(
        s.open(c1.code, &reply, &mut out).err(),
        Some(HsmError::UnexpectedReply {
            code: code::GET_PUBLIC_KEY | code::REPLY
        })
    );
}

#[test]
fn hsm_errors_inside_and_outside_the_session() {
    let mut hsm = Hsm::new();
    let mut s = open(&mut hsm, &admin(), CHALLENGE).expect("open");
    // Inside: no such key — an authenticated refusal.
    let cmd = Command::sign(Curve::P256, 0x0777, &[7; 32]).expect("cmd");
    assert!(matches!(
        call(&mut hsm, &mut s, &cmd),
        Err(HsmError::Refused { .. })
    ));
    // Outside: the HSM was reset (a fresh mock knows no session): an unauthenticated error.
    let mut reset = Hsm::new();
    let mut buf = [0u8; 2048];
    let n = s
        .seal(code::GET_PUBLIC_KEY, &K256_ID.to_be_bytes(), &mut buf)
        .expect("seal");
    let reply = reset.send(&buf[..n]);
    // The mock may report an unknown session as a connector error instead of a reply.
    if let Ok(reply) = reply {
        let mut out = [0u8; 2048];
        assert!(matches!(
            s.open(code::GET_PUBLIC_KEY, &reply, &mut out),
            Err(HsmError::Device { .. } | HsmError::BadMac)
        ));
    }
}

#[test]
fn a_host_that_saw_every_relayed_byte_cannot_open_a_session() {
    // What the host sees: the messages (challenges, cryptograms, MACs, ciphertext) and the
    // HSM's replies. Without K-ENC/K-MAC it cannot compute the host cryptogram for a new
    // card challenge; replaying the old Authenticate Session message into a new session fails.
    let mut hsm = Hsm::new();
    let key = admin();
    let mut buf = [0u8; 2048];
    let (handshake, n) = Handshake::start(&key, CHALLENGE, &mut buf).expect("start");
    let create = buf[..n].to_vec();
    let reply = hsm.send(&create).expect("create");
    let (opening, n) = handshake.answer(&key, &reply, &mut buf).expect("answer");
    let authenticate = buf[..n].to_vec();
    let confirm = hsm.send(&authenticate).expect("auth");
    opening.confirm(&confirm).expect("confirm");

    // The host replays Create Session (same host challenge), then the old Authenticate.
    let reply2 = hsm.send(&create).expect("create again");
    assert_ne!(reply2[4..12], reply[4..12], "card challenge must be fresh");
    let mut replayed = authenticate.clone();
    replayed[3] = reply2[3]; // the new session's id
    let answer = hsm.send(&replayed);
    assert!(
        !matches!(answer, Ok(ref a) if a.first() == Some(&(code::AUTHENTICATE_SESSION | code::REPLY))),
        "the HSM accepted a replayed authentication: {answer:?}"
    );
    // The same with the key the host does know (the default password is not the board's).
    let mut hsm = Hsm::new();
    let guessed = AuthKey::new(SIGNER_AUTH_ID, &derive(PASSWORD));
    assert!(open(&mut hsm, &guessed, CHALLENGE).is_err());
}

#[test]
fn der_signatures_are_parsed_strictly() {
    // Cross-check with OpenSSL-made DER (random r, s, some with the top bit set).
    use openssl::ec::{EcGroup, EcKey};
    use openssl::ecdsa::EcdsaSig;
    use openssl::nid::Nid;
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("group");
    let key = EcKey::generate(&group).expect("key");
    for i in 0..200u8 {
        let sig = EcdsaSig::sign(&[i; 32], &key).expect("sign");
        let der = sig.to_der().expect("der");
        let raw = command::der_to_raw(&der).expect("parse");
        assert_eq!(&raw[..32], sig.r().to_vec_padded(32).expect("r").as_slice());
        assert_eq!(&raw[32..], sig.s().to_vec_padded(32).expect("s").as_slice());
        let mut trailing = der.clone();
        trailing.push(0);
        assert!(command::der_to_raw(&trailing).is_err());
        assert!(command::der_to_raw(&der[..der.len() - 1]).is_err());
    }
    for bad in [
        &[0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x01][..], // r = 0
        &[0x30, 0x06, 0x02, 0x01, 0x81, 0x02, 0x01, 0x01],     // negative r
        &[0x30, 0x07, 0x02, 0x02, 0x00, 0x01, 0x02, 0x01, 0x01], // non-minimal
        &[0x31, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01],     // not a sequence
        &[],
    ] {
        assert!(command::der_to_raw(bad).is_err(), "{bad:02x?}");
    }
}
