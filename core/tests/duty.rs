//! A key's duty on one board (`core/src/protocol/duty.rs`, `core/src/board/duty.rs`): the
//! hand-off between two boards with a hostile host talking to both, standby, the companion
//! role — and every refusal leaving the board as it was.

mod support;

use pawl_core::keys::{Curve, SecretBytes};
use pawl_core::policy::Policy;
use pawl_core::protocol::{Duty, Mode, OffDuty, Refusal, Request, Response, Role};
use pawl_core::request::{ChainId, RequestKind};
use pawl_core::store::MemoryStore;
use support::board::{TestBoard, attestation, board, consensus, import, sign};

const TZ1: &str = "edsk4FTF78Qf1m2rykGpHqostAiq5gYW4YZEoGUSWBTJr2njsDHSnd";
const TZ4: &str = "BLsk1hKAHyGqY9qRbgoSVnjiSmDWpKGjFF3WNQ7BaiaMUA6RMA6Pfq";
const CHAIN: [u8; 4] = [0x7a, 0x06, 0xa7, 0x70];

fn pinned() -> Policy {
    let mut p = Policy::default();
    p.chains.push(ChainId(CHAIN)).expect("room");
    p
}

fn set_duty(b: &mut TestBoard, pkh: pawl_core::keys::PublicKeyHash, duty: Duty) -> Response {
    b.handle(Request::SetDuty { pkh, duty })
}

/// What a refusal must leave as it was.
fn state(b: &TestBoard) -> (Vec<String>, Vec<String>, u32) {
    support::board::memory_state(b)
}

/// Reboot `b` on its own store in `mode` (the operator's switch).
fn reboot(b: TestBoard, mode: Mode) -> TestBoard {
    board(b.into_store(), mode)
}

/// The move of a key from board A to board B around level L, as docs/lifecycle.md describes
/// it; then a hostile host sends both boards every consensus kind at every level and round
/// around L, with different bytes to each: A signs nothing above L, B nothing at or below L,
/// so no level is signed by both — across reboots too.
#[test]
fn a_hand_off_leaves_no_level_signed_by_both_boards() {
    const L: u32 = 1000;
    // A: the key, active, has signed up to 990.
    let mut a = board(MemoryStore::new(), Mode::Provisioning);
    let (pkh, _) = import(&mut a, TZ1, pinned());
    sign(&mut a, &pkh, &attestation(CHAIN, 990, 0, 1)).expect("A signs before the move");
    // B: the same key, imported on standby in one request.
    let mut b = board(MemoryStore::new(), Mode::Provisioning);
    let (curve, secret) = SecretBytes::from_b58(TZ1).expect("tz1");
    let standby = Duty {
        standby: true,
        ..Duty::default()
    };
    match b.handle(Request::ImportKeyWithDuty {
        curve,
        secret,
        policy: pinned(),
        duty: standby,
    }) {
        Response::KeyInfo(k) => assert_eq!((k.pkh, k.duty), (pkh, standby)),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        sign(&mut b, &pkh, &attestation(CHAIN, 2000, 0, 2)),
        Err(Refusal::OffDuty(OffDuty::Standby)),
        "a standby key signs nothing, even in provisioning mode"
    );

    // The operator retires A above L and activates B from L + 1, then both go operational.
    let retired = Duty {
        until_level: Some(L),
        ..Duty::default()
    };
    assert!(matches!(set_duty(&mut a, pkh, retired), Response::KeyInfo(k) if k.duty == retired));
    let active = Duty {
        from_level: Some(L + 1),
        ..Duty::default()
    };
    assert!(matches!(set_duty(&mut b, pkh, active), Response::KeyInfo(k) if k.duty == active));
    let mut a = reboot(a, Mode::Operational);
    let mut b = reboot(b, Mode::Operational);

    let mut signed_a = Vec::new();
    let mut signed_b = Vec::new();
    for (round, byte) in [(0u32, 0u8), (1, 1), (2, 2)] {
        for level in (L - 4)..=(L + 4) {
            for (magic, tag) in [(0x12u8, 20u8), (0x13, 21)] {
                let to_a = consensus(magic, tag, CHAIN, level, round, 0x10 + byte);
                let to_b = consensus(magic, tag, CHAIN, level, round, 0x80 + byte);
                match sign(&mut a, &pkh, &to_a) {
                    Ok(_) => signed_a.push(level),
                    Err(Refusal::OffDuty(OffDuty::AfterRetirement { level: l, until })) => {
                        assert_eq!((l, until), (level, L));
                        assert!(level > L);
                    }
                    Err(_) => {}
                }
                match sign(&mut b, &pkh, &to_b) {
                    Ok(_) => signed_b.push(level),
                    Err(Refusal::OffDuty(OffDuty::BeforeActivation { level: l, from })) => {
                        assert_eq!((l, from), (level, L + 1));
                        assert!(level <= L);
                    }
                    Err(_) => {}
                }
            }
        }
        // Reboots change nothing: the duties are stored with the key.
        a = reboot(a, Mode::Operational);
        b = reboot(b, Mode::Operational);
    }
    assert!(
        !signed_a.is_empty() && !signed_b.is_empty(),
        "both boards signed"
    );
    assert!(signed_a.iter().all(|l| *l <= L), "A above L: {signed_a:?}");
    assert!(
        signed_b.iter().all(|l| *l > L),
        "B at or below L: {signed_b:?}"
    );

    // A hostile host cannot change a duty in operational mode.
    let before = state(&a);
    assert_eq!(
        set_duty(&mut a, pkh, Duty::default()),
        Response::Refused(Refusal::ProvisioningOnly)
    );
    assert_eq!(state(&a), before);
}

#[test]
fn a_retired_key_still_signs_operations_its_policy_allows() {
    // Retirement is about consensus levels; a transfer has none (and no watermark to clash).
    let mut a = board(MemoryStore::new(), Mode::Provisioning);
    let mut policy = pinned();
    policy.kinds = policy.kinds.with(RequestKind::Generic);
    policy.ops = policy.ops.with(pawl_core::request::OpKind::Transaction);
    let (pkh, _) = import(&mut a, TZ1, policy);
    let retired = Duty {
        until_level: Some(5),
        ..Duty::default()
    };
    assert!(matches!(
        set_duty(&mut a, pkh, retired),
        Response::KeyInfo(_)
    ));
    assert!(sign(&mut a, &pkh, &attestation(CHAIN, 6, 0, 1)).is_err());
    let standby = Duty {
        standby: true,
        ..retired
    };
    assert!(matches!(
        set_duty(&mut a, pkh, standby),
        Response::KeyInfo(_)
    ));
    assert_eq!(
        sign(&mut a, &pkh, &attestation(CHAIN, 4, 0, 1)),
        Err(Refusal::OffDuty(OffDuty::Standby))
    );
}

#[test]
fn a_companion_key_signs_attestations_only() {
    let mut b = board(MemoryStore::new(), Mode::Provisioning);
    let (consensus_pkh, _) = import(&mut b, TZ4, pinned());
    let companion = match b.handle(Request::GenerateKey {
        curve: Curve::Bls12_381,
        policy: pinned(),
    }) {
        Response::KeyInfo(k) => k.pkh,
        other => panic!("{other:?}"),
    };
    let role = Duty {
        role: Role::Companion,
        ..Duty::default()
    };
    assert!(matches!(set_duty(&mut b, companion, role), Response::KeyInfo(k) if k.duty == role));
    // The same tz4 attestation bytes (BLS mode, tag 41) go to both keys; each has its mark.
    let dal = consensus(0x13, 41, CHAIN, 77, 0, 3);
    sign(&mut b, &consensus_pkh, &dal).expect("consensus key");
    sign(&mut b, &companion, &dal).expect("companion key");
    assert_eq!(b.watermarks().iter().count(), 2);

    let before = state(&b);
    assert_eq!(
        sign(&mut b, &companion, &consensus(0x12, 40, CHAIN, 78, 0, 3)),
        Err(Refusal::OffDuty(OffDuty::CompanionSignsAttestationsOnly))
    );
    assert_eq!(
        state(&b),
        before,
        "a refused preattestation moved something"
    );
    sign(
        &mut b,
        &consensus_pkh,
        &consensus(0x12, 40, CHAIN, 78, 0, 3),
    )
    .expect("consensus key");
}

#[test]
fn impossible_duties_are_refused_and_change_nothing() {
    let mut b = board(MemoryStore::new(), Mode::Provisioning);
    let (pkh, _) = import(&mut b, TZ1, pinned());
    let before = state(&b);
    for bad in [
        Duty {
            role: Role::Companion,
            ..Duty::default()
        },
        Duty {
            from_level: Some(10),
            until_level: Some(9),
            ..Duty::default()
        },
    ] {
        assert_eq!(
            set_duty(&mut b, pkh, bad),
            Response::Refused(Refusal::OffDuty(OffDuty::Invalid)),
            "{bad:?}"
        );
        assert_eq!(state(&b), before);
    }
    let (curve, secret) = SecretBytes::from_b58(TZ1).expect("tz1");
    let mut fresh = board(MemoryStore::new(), Mode::Provisioning);
    assert_eq!(
        fresh.handle(Request::ImportKeyWithDuty {
            curve,
            secret,
            policy: pinned(),
            duty: Duty {
                role: Role::Companion,
                ..Duty::default()
            },
        }),
        Response::Refused(Refusal::OffDuty(OffDuty::Invalid))
    );
    assert!(matches!(fresh.handle(Request::ListKeys), Response::Keys(k) if k.is_empty()));
}
