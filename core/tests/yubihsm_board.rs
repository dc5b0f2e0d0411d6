//! The board with YubiHSM2 keys, talking to the yubihsm crate's MockHsm directly (no bridge):
//! tz1/tz2/tz3 keys generated inside the mock sign through the board's own SCP03 session;
//! every watermark refusal happens with zero HSM messages; a relay that flips, replays,
//! reorders or drops bytes gets no signature and no mark beyond what was already durable, and
//! the board recovers with a fresh session. Signatures are verified with libsecp256k1/OpenSSL.

mod support;

use core::sync::atomic::{AtomicU64, Ordering};
use pawl_core::keys::{Curve, PublicKey, PublicKeyHash, Signature, SigningVersion};
use pawl_core::policy::Policy;
use pawl_core::protocol::{Backend, Mode, Refusal, Request, Response};
use pawl_core::request::ChainId;
use pawl_core::store::MemoryStore;
use pawl_core::watermark::{MarkId, MarkKind, WatermarkError};
use pawl_core::yubihsm::HsmError;
use pawl_core::yubihsm::command;

use pawl_core::board::{Board, NoButton};
use support::board::{INFO, TestBoard, TestEntropy, attestation, board, consensus};
use support::hsm::{
    ED25519_ID, Hsm, K256_ID, P256_ID, Relay, SIGNER_AUTH_ID, SIGNER_PASSWORD, derive, drive,
    honest,
};
use support::verify_independently;

const CHAIN: [u8; 4] = [0xb3, 0xd7, 0x9f, 0x99];
const KEYS: [(Curve, u16); 3] = [
    (Curve::Ed25519, ED25519_ID),
    (Curve::Secp256k1, K256_ID),
    (Curve::P256, P256_ID),
];

fn sign_via(
    b: &mut TestBoard,
    hsm: &mut Hsm,
    pkh: &PublicKeyHash,
    payload: &[u8],
    relay: Relay<'_>,
) -> Result<Signature, Refusal> {
    match drive(
        b,
        hsm,
        Request::Sign {
            pkh: *pkh,
            version: SigningVersion::LATEST,
            payload,
        },
        relay,
    ) {
        Response::Signature(s) => Ok(s),
        Response::Refused(r) => Err(r),
        other => panic!("sign: {other:?}"),
    }
}

fn public_of(hsm: &mut Hsm, id: u16) -> PublicKey {
    let theirs = hsm.client().get_public_key(id).expect("public key");
    let bytes = theirs.as_ref();
    let mut data = vec![theirs.algorithm as u8];
    data.extend_from_slice(bytes);
    command::public_key(&data).expect("parse")
}

/// A board with its own entropy stream (host challenges differ between boards, as with a TRNG).
fn fresh_board(store: MemoryStore, mode: Mode) -> TestBoard {
    static SEED: AtomicU64 = AtomicU64::new(1);
    let seed = SEED
        .fetch_add(1, Ordering::Relaxed)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15);
    Board::open(store, TestEntropy(seed), NoButton, mode, INFO)
}

/// A provisioning board with the signer authentication key and the three mock keys.
fn setup(hsm: &mut Hsm) -> (TestBoard, Vec<(PublicKeyHash, PublicKey)>) {
    let mut b = fresh_board(MemoryStore::new(), Mode::Provisioning);
    assert_eq!(
        b.handle(Request::YubiHsmSetup {
            auth_key_id: SIGNER_AUTH_ID,
            keys: derive(SIGNER_PASSWORD),
        }),
        Response::Done
    );
    let mut keys = vec![];
    for (curve, id) in KEYS {
        let public = public_of(hsm, id);
        assert_eq!(public.curve(), curve);
        match b.handle(Request::RegisterHsmKey {
            key_id: id,
            public_key: public,
            policy: Policy::default(),
        }) {
            Response::KeyInfo(info) => {
                assert_eq!(info.backend, Backend::YubiHsm);
                keys.push((info.pkh, public));
            }
            other => panic!("register: {other:?}"),
        }
    }
    (b, keys)
}

fn mark_id(pkh: PublicKeyHash) -> MarkId {
    MarkId {
        chain: ChainId(CHAIN),
        key: pkh,
        kind: MarkKind::Attestation,
    }
}

#[test]
fn tz1_tz2_tz3_in_the_hsm_sign_blocks_and_attestations() {
    let mut hsm = Hsm::new();
    let (mut b, keys) = setup(&mut hsm);
    for (pkh, public) in &keys {
        for (level, payload) in [
            (10, support::power::block(CHAIN, 10, 0, 1)),
            (10, consensus(0x12, 20, CHAIN, 10, 0, 1)),
            (10, attestation(CHAIN, 10, 0, 1)),
            (11, attestation(CHAIN, 11, 0, 1)),
        ] {
            let before = hsm.messages;
            let sig = sign_via(&mut b, &mut hsm, pkh, &payload, &mut honest())
                .unwrap_or_else(|e| panic!("{level}: {e}"));
            assert!(verify_independently(public, &payload, &sig), "{public:?}");
            assert!(hsm.messages > before);
        }
    }
    // One session for all: the first sign opened it (3 messages), the rest took one each.
    let mut hsm2 = Hsm::new();
    let (mut b2, keys2) = setup(&mut hsm2);
    let (pkh, _) = &keys2[1];
    sign_via(
        &mut b2,
        &mut hsm2,
        pkh,
        &attestation(CHAIN, 5, 0, 1),
        &mut honest(),
    )
    .expect("first");
    assert_eq!(hsm2.messages, 3);
    sign_via(
        &mut b2,
        &mut hsm2,
        pkh,
        &attestation(CHAIN, 6, 0, 1),
        &mut honest(),
    )
    .expect("second");
    assert_eq!(hsm2.messages, 4);
}

#[test]
fn watermark_refusals_and_repeats_send_nothing_to_the_hsm() {
    let mut hsm = Hsm::new();
    let (mut b, keys) = setup(&mut hsm);
    for (pkh, public) in &keys {
        let payload = attestation(CHAIN, 20, 1, 1);
        let first = sign_via(&mut b, &mut hsm, pkh, &payload, &mut honest()).expect("sign");
        let before = hsm.messages;
        // Identical retry: the recorded signature, no HSM traffic.
        assert_eq!(
            sign_via(&mut b, &mut hsm, pkh, &payload, &mut honest()),
            Ok(first)
        );
        // Same position, other data; lower round; lower level: refused.
        for other in [
            attestation(CHAIN, 20, 1, 2),
            attestation(CHAIN, 20, 0, 1),
            attestation(CHAIN, 19, 5, 1),
        ] {
            assert!(matches!(
                sign_via(&mut b, &mut hsm, pkh, &other, &mut honest()),
                Err(Refusal::Watermark(_))
            ));
        }
        // Policy refusal (a transfer for a consensus-only key): nothing either.
        assert!(sign_via(&mut b, &mut hsm, pkh, &[0x03; 40], &mut honest()).is_err());
        assert_eq!(hsm.messages, before, "{public:?}");
    }
    // A store that cannot make the mark durable: refused before the first HSM byte.
    let mut hsm = Hsm::new();
    let (b, keys) = setup(&mut hsm);
    let mut store = b.into_store();
    store.fail_after = Some(0);
    let mut b = board(store, Mode::Operational);
    let before = hsm.messages;
    assert!(matches!(
        sign_via(
            &mut b,
            &mut hsm,
            &keys[0].0,
            &attestation(CHAIN, 30, 0, 1),
            &mut honest()
        ),
        Err(Refusal::Store(_))
    ));
    assert_eq!(hsm.messages, before);
}

/// Run one relay attack on every step of a sign that opens a session (3 replies), and check:
/// refused with a secure-channel error, nothing released, the durable mark exactly the
/// request's position, other data at it refused, and the identical request then signed
/// through a fresh session.
fn attack(name: &str, mut tamper: impl FnMut(usize, Vec<u8>, &[Vec<u8>]) -> Option<Vec<u8>>) {
    for step in 0..3 {
        for i in 0..KEYS.len() {
            let mut hsm = Hsm::new();
            // Genuine replies of another session on the same HSM, for replays.
            let (mut warm, warm_keys) = setup(&mut hsm);
            let mut seen: Vec<Vec<u8>> = vec![];
            sign_via(
                &mut warm,
                &mut hsm,
                &warm_keys[i].0,
                &attestation(CHAIN, 1, 0, 1),
                &mut |_, r| {
                    seen.push(r.clone());
                    Some(r)
                },
            )
            .expect("warm-up");
            assert_eq!(seen.len(), 3);
            // The attacked board has no session yet: its sign takes all three steps.
            let (mut b, keys) = setup(&mut hsm);
            let (pkh, public) = &keys[i];
            let level = 100;
            let payload = attestation(CHAIN, level, 0, 1);
            let mut changed = false;
            let result = sign_via(&mut b, &mut hsm, pkh, &payload, &mut |n, r| {
                if n != step {
                    return Some(r);
                }
                let t = tamper(step, r.clone(), &seen);
                changed = t.as_ref() != Some(&r);
                t
            });
            if !changed {
                // The "attack" relayed the genuine bytes (Authenticate's `84 0000` is the same
                // in every session): nothing to refuse.
                assert!(result.is_ok(), "{name} step {step}: {result:?}");
                continue;
            }
            match &result {
                Err(Refusal::Hsm(_)) => {}
                Ok(_) => panic!("{name} step {step}: a tampered exchange released a signature"),
                Err(e) => panic!("{name} step {step}: unexpected refusal {e}"),
            }
            // The durable mark is the request's position, never beyond it.
            assert_eq!(
                b.store().mark(&mark_id(*pkh)),
                Some((level, 0)),
                "{name} step {step}"
            );
            // Other data at that position: refused, with no HSM traffic.
            let before = hsm.messages;
            assert!(matches!(
                sign_via(
                    &mut b,
                    &mut hsm,
                    pkh,
                    &attestation(CHAIN, level, 0, 2),
                    &mut honest()
                ),
                Err(Refusal::Watermark(WatermarkError::DifferentData { .. }))
            ));
            assert_eq!(hsm.messages, before);
            // The identical request, relayed honestly: a fresh session, a valid signature.
            let sig = sign_via(&mut b, &mut hsm, pkh, &payload, &mut honest())
                .unwrap_or_else(|e| panic!("{name} step {step}: retry refused: {e}"));
            assert!(verify_independently(public, &payload, &sig));
        }
    }
}

#[test]
fn a_replayed_sign_reply_in_the_same_session_is_refused() {
    let mut hsm = Hsm::new();
    let (mut b, keys) = setup(&mut hsm);
    let (pkh, public) = &keys[1];
    let mut last = vec![];
    sign_via(
        &mut b,
        &mut hsm,
        pkh,
        &attestation(CHAIN, 8, 0, 1),
        &mut |_, r| {
            last = r.clone();
            Some(r)
        },
    )
    .expect("first");
    let payload = attestation(CHAIN, 9, 0, 1);
    assert_eq!(
        sign_via(&mut b, &mut hsm, pkh, &payload, &mut |_, _| Some(
            last.clone()
        )),
        Err(Refusal::Hsm(HsmError::BadMac))
    );
    assert_eq!(b.store().mark(&mark_id(*pkh)), Some((9, 0)));
    let sig = sign_via(&mut b, &mut hsm, pkh, &payload, &mut honest()).expect("retry");
    assert!(verify_independently(public, &payload, &sig));
}

#[test]
fn a_relay_that_flips_bytes_gets_nothing() {
    for byte in [0usize, 3, 5, 9, 15] {
        attack("flip", |_, mut r, _| {
            let i = byte.min(r.len() - 1);
            r[i] ^= 0x01;
            Some(r)
        });
    }
    // The last byte (the MAC or cryptogram).
    attack("flip last", |_, mut r, _| {
        let n = r.len() - 1;
        r[n] ^= 0x80;
        Some(r)
    });
}

#[test]
fn a_relay_that_replays_or_reorders_gets_nothing() {
    // Replay: the genuine reply of another session at the same step.
    attack("replay", |step, _, seen| Some(seen[step].clone()));
    // Reorder: a genuine reply of another step.
    attack("reorder", |step, _, seen| {
        Some(seen[(step + 1) % 3].clone())
    });
    // Truncated and empty replies.
    attack("truncate", |_, r, _| Some(r[..r.len() / 2].to_vec()));
    attack("empty", |_, _, _| Some(vec![]));
}

#[test]
fn a_relay_that_drops_a_reply_leaves_the_identical_retry_possible() {
    let mut hsm = Hsm::new();
    let (mut b, keys) = setup(&mut hsm);
    let (pkh, public) = &keys[2];
    let payload = attestation(CHAIN, 50, 0, 1);
    // The sign reply never comes back (HSM may have signed; the host cannot read it).
    let r = drive(
        &mut b,
        &mut hsm,
        Request::Sign {
            pkh: *pkh,
            version: SigningVersion::LATEST,
            payload: &payload,
        },
        &mut |n, r| (n < 2).then_some(r),
    );
    assert!(matches!(r, Response::RelayToHsm { .. }));
    assert_eq!(b.store().mark(&mark_id(*pkh)), Some((50, 0)));
    // A late reply for nothing, then the identical retry: fresh session, signed.
    let sig = sign_via(&mut b, &mut hsm, pkh, &payload, &mut honest()).expect("retry");
    assert!(verify_independently(public, &payload, &sig));
    assert_eq!(
        b.handle(Request::HsmReply {
            sealed: &[0x85, 0, 0]
        }),
        Response::Refused(Refusal::NoPendingSign)
    );
}

#[test]
fn an_expired_session_is_reopened_once() {
    let mut hsm = Hsm::new();
    let (mut b, keys) = setup(&mut hsm);
    let (pkh, public) = &keys[1];
    sign_via(
        &mut b,
        &mut hsm,
        pkh,
        &attestation(CHAIN, 60, 0, 1),
        &mut honest(),
    )
    .expect("open");
    // The HSM answers the next sign command with "invalid session" (0x0e, unauthenticated).
    let payload = attestation(CHAIN, 61, 0, 1);
    let sig = sign_via(&mut b, &mut hsm, pkh, &payload, &mut |n, r| {
        Some(if n == 0 { vec![0x7f, 0, 1, 0x0e] } else { r })
    })
    .expect("reopened");
    assert!(verify_independently(public, &payload, &sig));
    // Twice in one operation: refused.
    let payload = attestation(CHAIN, 62, 0, 1);
    let r = sign_via(&mut b, &mut hsm, pkh, &payload, &mut |n, r| {
        Some(if n == 0 || n == 3 {
            vec![0x7f, 0, 1, 0x0e]
        } else {
            r
        })
    });
    assert_eq!(r, Err(Refusal::Hsm(HsmError::Device { code: 0x0e })));
}

#[test]
fn a_wrong_registered_key_or_wrong_credential_releases_nothing() {
    let mut hsm = Hsm::new();
    let mut b = board(MemoryStore::new(), Mode::Provisioning);
    // Register before setup: refused.
    let p256 = public_of(&mut hsm, P256_ID);
    assert_eq!(
        b.handle(Request::RegisterHsmKey {
            key_id: P256_ID,
            public_key: p256,
            policy: Policy::default()
        }),
        Response::Refused(Refusal::Hsm(HsmError::NotSetUp))
    );
    b.handle(Request::YubiHsmSetup {
        auth_key_id: SIGNER_AUTH_ID,
        keys: derive(SIGNER_PASSWORD),
    });
    // P-256 public key registered for the secp256k1 object... wrong curve in the HSM: the
    // signature (for another key) does not verify.
    let other = {
        let mut h2 = Hsm::new();
        public_of(&mut h2, P256_ID)
    };
    let pkh = match b.handle(Request::RegisterHsmKey {
        key_id: P256_ID,
        public_key: other,
        policy: Policy::default(),
    }) {
        Response::KeyInfo(i) => i.pkh,
        r => panic!("{r:?}"),
    };
    assert_eq!(
        sign_via(
            &mut b,
            &mut hsm,
            &pkh,
            &attestation(CHAIN, 5, 0, 1),
            &mut honest()
        ),
        Err(Refusal::Key(pawl_core::keys::KeyError::BadSignature))
    );
    // Wrong password on the board: the card cryptogram does not verify.
    let mut b = board(MemoryStore::new(), Mode::Provisioning);
    b.handle(Request::YubiHsmSetup {
        auth_key_id: SIGNER_AUTH_ID,
        keys: derive(b"guess"),
    });
    let pkh = match b.handle(Request::RegisterHsmKey {
        key_id: P256_ID,
        public_key: p256,
        policy: Policy::default(),
    }) {
        Response::KeyInfo(i) => i.pkh,
        r => panic!("{r:?}"),
    };
    assert_eq!(
        sign_via(
            &mut b,
            &mut hsm,
            &pkh,
            &attestation(CHAIN, 5, 0, 1),
            &mut honest()
        ),
        Err(Refusal::Hsm(HsmError::BadCardCryptogram))
    );
}

#[test]
fn provisioning_only_and_survives_a_reboot() {
    let mut hsm = Hsm::new();
    let (b, keys) = setup(&mut hsm);
    let store = b.into_store();
    let mut b = board(store, Mode::Operational);
    assert_eq!(
        b.handle(Request::YubiHsmSetup {
            auth_key_id: 1,
            keys: derive(b"x")
        }),
        Response::Refused(Refusal::ProvisioningOnly)
    );
    assert_eq!(
        b.handle(Request::RegisterHsmKey {
            key_id: 1,
            public_key: keys[0].1,
            policy: Policy::default()
        }),
        Response::Refused(Refusal::ProvisioningOnly)
    );
    // The rebooted board still holds the credential (sealed with each key) and signs.
    for (pkh, public) in &keys {
        let payload = attestation(CHAIN, 7, 0, 3);
        let sig = sign_via(&mut b, &mut hsm, pkh, &payload, &mut honest()).expect("sign");
        assert!(verify_independently(public, &payload, &sig));
    }
    // Debug output of the setup request shows no key bytes.
    let text = format!(
        "{:?}",
        Request::YubiHsmSetup {
            auth_key_id: 2,
            keys: derive(SIGNER_PASSWORD)
        }
    );
    assert!(
        !text.contains(&format!("{:?}", derive(SIGNER_PASSWORD).expose()[0]))
            || text.contains("redacted")
    );
    assert!(text.contains("redacted"), "{text}");
}
