//! Issue 13 (the hostile host), finding 4: pending work — a host-held approval, a YubiHSM2
//! operation and its session — dies with every state change, so nothing started under the old
//! policy, keys or marks is released under the new ones (`core/src/board/pending.rs`).
//!
//! Independent sources: the yubihsm crate's MockHsm for the HSM side, libsecp256k1 for the
//! key service.

mod support;

use pawl_core::digest::blake2b_256;
use pawl_core::keys::{Curve, PublicKey, PublicKeyHash, SecretBytes, Signature};
use pawl_core::policy::Policy;
use pawl_core::protocol::{Mode, Refusal, Request, Response};
use pawl_core::request::{ChainId, KindSet, OpKind, OpKindSet, RequestKind};
use pawl_core::store::MemoryStore;
use pawl_core::watermark::MarkKind;
use pawl_core::yubihsm::command;
use support::board::{TestBoard, attestation, board, import};
use support::hsm::{
    ED25519_ID, Hsm, K256_ID, P256_ID, SIGNER_AUTH_ID, SIGNER_PASSWORD, derive, drive, honest,
};
use support::{unhex, verify_independently};

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
