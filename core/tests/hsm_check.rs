//! `pawl device selftest --yubihsm` on the board ([`HsmCheckRequest`]), against the yubihsm
//! crate's MockHsm (its own card side): the session check runs Echo through the board's
//! session; a key check compares the HSM's public key with the board's record and reports a
//! different one as a mismatch; the throw-away round signs, verifies and deletes its key —
//! and deletes it even when the signature does not verify — without adding a board key;
//! operational mode refuses the throw-away round before any HSM byte.

mod support;

use pawl_core::keys::{Curve, PublicKey};
use pawl_core::policy::Policy;
use pawl_core::protocol::hsm_check::{HsmCheckRequest, HsmCheckResponse};
use pawl_core::protocol::{Mode, Refusal, Request, Response};
use pawl_core::store::MemoryStore;
use pawl_core::yubihsm::command;

use support::board::{TestBoard, board};
use support::hsm::{AUTH_ID, ED25519_ID, Hsm, K256_ID, P256_ID, PASSWORD, derive, drive, honest};

fn public_of(hsm: &Hsm, id: u16) -> PublicKey {
    let theirs = hsm.client().get_public_key(id).expect("public key");
    let mut data = vec![theirs.algorithm as u8];
    data.extend_from_slice(theirs.as_ref());
    command::public_key(&data).expect("parse")
}

fn set_up(mode_after: Mode) -> (TestBoard, Hsm) {
    let hsm = Hsm::new();
    let mut b = board(MemoryStore::new(), Mode::Provisioning);
    assert_eq!(
        b.handle(Request::YubiHsmSetup {
            auth_key_id: AUTH_ID,
            keys: derive(PASSWORD),
        }),
        Response::Done
    );
    for id in [ED25519_ID, K256_ID, P256_ID] {
        let public = public_of(&hsm, id);
        assert!(matches!(
            b.handle(Request::RegisterHsmKey {
                key_id: id,
                public_key: public,
                policy: Policy::default(),
            }),
            Response::KeyInfo(_)
        ));
    }
    let b = board(b.into_store(), mode_after);
    (b, hsm)
}

fn check(b: &mut TestBoard, hsm: &mut Hsm, request: HsmCheckRequest) -> Response {
    drive(b, hsm, Request::HsmCheck(request), &mut honest())
}

fn key_list(b: &mut TestBoard) -> usize {
    match b.handle(Request::ListKeys) {
        Response::Keys(k) => k.len(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_session_check_runs_echo_through_the_session() {
    let (mut b, mut hsm) = set_up(Mode::Operational);
    let before = hsm.messages;
    assert_eq!(
        check(&mut b, &mut hsm, HsmCheckRequest::Session),
        Response::HsmCheck(HsmCheckResponse::Session {
            auth_key_id: AUTH_ID
        })
    );
    // Create, authenticate, echo.
    assert_eq!(hsm.messages - before, 3);
}

#[test]
fn a_forged_echo_fails_the_session_check() {
    let (mut b, mut hsm) = set_up(Mode::Operational);
    // Flip a byte of the session message reply (the echo): the MAC no longer verifies.
    let mut flip = |n: usize, mut r: Vec<u8>| {
        if n == 2 {
            let last = r.len() - 1;
            r[last] ^= 1;
        }
        Some(r)
    };
    let r = drive(
        &mut b,
        &mut hsm,
        Request::HsmCheck(HsmCheckRequest::Session),
        &mut flip,
    );
    assert!(matches!(r, Response::Refused(Refusal::Hsm(_))), "{r:?}");
}

#[test]
fn key_checks_compare_the_hsm_key_with_the_record() {
    let (mut b, mut hsm) = set_up(Mode::Operational);
    let Response::Keys(keys) = b.handle(Request::ListKeys) else {
        panic!()
    };
    for key in &keys {
        match check(&mut b, &mut hsm, HsmCheckRequest::Key { pkh: key.pkh }) {
            Response::HsmCheck(HsmCheckResponse::Key {
                pkh,
                matches,
                key_id,
            }) => {
                assert_eq!(pkh, key.pkh);
                assert!(matches, "{key_id}");
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn a_key_the_hsm_holds_differently_is_a_mismatch() {
    let hsm = Hsm::new();
    let mut b = board(MemoryStore::new(), Mode::Provisioning);
    b.handle(Request::YubiHsmSetup {
        auth_key_id: AUTH_ID,
        keys: derive(PASSWORD),
    });
    // Registered unchecked: object P256_ID, with the secp256k1 key's public key.
    let wrong = public_of(&hsm, K256_ID);
    let Response::KeyInfo(info) = b.handle(Request::RegisterHsmKey {
        key_id: P256_ID,
        public_key: wrong,
        policy: Policy::default(),
    }) else {
        panic!()
    };
    let mut hsm = hsm;
    match check(&mut b, &mut hsm, HsmCheckRequest::Key { pkh: info.pkh }) {
        Response::HsmCheck(HsmCheckResponse::Key {
            matches, key_id, ..
        }) => {
            assert!(!matches);
            assert_eq!(key_id, P256_ID);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn throw_away_keys_sign_verify_and_are_deleted_without_becoming_board_keys() {
    let (mut b, mut hsm) = set_up(Mode::Provisioning);
    let keys = key_list(&mut b);
    for curve in [Curve::Ed25519, Curve::Secp256k1, Curve::P256] {
        match check(
            &mut b,
            &mut hsm,
            HsmCheckRequest::ThrowAway { curve, domains: 1 },
        ) {
            Response::HsmCheck(HsmCheckResponse::ThrowAway {
                curve: c,
                key_id,
                verified,
                deleted,
            }) => {
                assert_eq!(c, curve);
                assert!(verified, "{curve:?}");
                assert!(deleted, "{curve:?}");
                // Gone from the HSM, as the crate's own client sees it.
                assert!(
                    hsm.client()
                        .get_object_info(key_id, yubihsm::object::Type::AsymmetricKey)
                        .is_err(),
                    "{curve:?}: object {key_id} still there"
                );
            }
            other => panic!("{curve:?}: {other:?}"),
        }
    }
    assert_eq!(key_list(&mut b), keys, "no board key added");
    let listed = hsm.client().list_objects(&[]).expect("list");
    assert!(
        listed
            .iter()
            .all(|o| o.object_id != 0 || o.object_type != yubihsm::object::Type::AsymmetricKey),
        "{listed:?}"
    );
}

/// Drive a throw-away round for Ed25519, letting `meddle` act on the HSM (through the crate's
/// own client) when the board's reply number `at` passes: replies are 0 create session,
/// 1 authenticate, 2 generate, 3 public key, 4 sign, 5 delete.
fn throw_away_with(
    b: &mut TestBoard,
    hsm: &mut Hsm,
    at: usize,
    meddle: impl Fn(&yubihsm::Client),
) -> (Response, usize) {
    let client = hsm.client();
    let mut last = 0usize;
    let mut relay = |n: usize, r: Vec<u8>| {
        last = n;
        if n == at {
            meddle(&client);
        }
        Some(r)
    };
    let r = drive(
        b,
        hsm,
        Request::HsmCheck(HsmCheckRequest::ThrowAway {
            curve: Curve::Ed25519,
            domains: 1,
        }),
        &mut relay,
    );
    (r, last)
}

#[test]
fn a_throw_away_key_whose_signature_does_not_verify_is_deleted_all_the_same() {
    let (mut b, mut hsm) = set_up(Mode::Provisioning);
    // After the board read the key's public key, another key takes its object id: the HSM
    // signs with that one, so the signature does not verify under the key the board read.
    let (r, last) = throw_away_with(&mut b, &mut hsm, 3, |client| {
        client
            .delete_object(0, yubihsm::object::Type::AsymmetricKey)
            .expect("delete");
        client
            .generate_asymmetric_key(
                0,
                yubihsm::object::Label::from("swapped"),
                yubihsm::Domain::DOM1,
                yubihsm::Capability::SIGN_EDDSA,
                yubihsm::asymmetric::Algorithm::Ed25519,
            )
            .expect("generate");
    });
    assert_eq!(
        r,
        Response::HsmCheck(HsmCheckResponse::ThrowAway {
            curve: Curve::Ed25519,
            key_id: 0,
            verified: false,
            deleted: true,
        })
    );
    assert_eq!(last, 5, "the delete's reply was the last");
    assert!(
        hsm.client()
            .get_object_info(0, yubihsm::object::Type::AsymmetricKey)
            .is_err(),
        "object 0 still there"
    );
}

#[test]
fn a_throw_away_key_the_hsm_refuses_to_use_is_still_sent_a_delete() {
    let (mut b, mut hsm) = set_up(Mode::Provisioning);
    // Deleted behind the board's back right after its generation: the read is refused by the
    // HSM (object not found, authenticated); the board goes on to the delete.
    let (r, last) = throw_away_with(&mut b, &mut hsm, 2, |client| {
        client
            .delete_object(0, yubihsm::object::Type::AsymmetricKey)
            .expect("delete");
    });
    assert_eq!(
        r,
        Response::HsmCheck(HsmCheckResponse::ThrowAway {
            curve: Curve::Ed25519,
            key_id: 0,
            verified: false,
            deleted: false,
        })
    );
    // Replies: create, authenticate, generate, (refused) read, (refused) delete.
    assert_eq!(last, 4);
}

#[test]
fn operational_mode_runs_no_throw_away_round() {
    let (mut b, mut hsm) = set_up(Mode::Operational);
    let before = hsm.messages;
    assert_eq!(
        check(
            &mut b,
            &mut hsm,
            HsmCheckRequest::ThrowAway {
                curve: Curve::Ed25519,
                domains: 1
            }
        ),
        Response::Refused(Refusal::ProvisioningOnly)
    );
    assert_eq!(hsm.messages, before, "no HSM byte");
}
