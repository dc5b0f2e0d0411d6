//! The board end to end in process: watermark scenarios from Signatory's tests, Octez's rule
//! table, policy refusals, provisioning mode, confirm-on-device, store failures, restarts and
//! frames. Every refusal is checked to leave the board's state as it was.

mod support;

use pawl_core::board::{Board, MAX_MARKS};
use pawl_core::keys::SigningVersion;
use pawl_core::policy::{BallotSet, Policy, PolicyError};
use pawl_core::protocol::{
    Envelope, Fed, FrameAccumulator, FrameError, MAX_FRAME, Mode, Refusal, Request, Response,
    StoreHealth, decode_frame, encode_frame,
};
use pawl_core::request::{
    Ballot, ChainId, ConsensusForm, KindSet, OpKind, OpKindSet, ParseError, RequestKind,
};
use pawl_core::store::{MemoryStore, StoreError};
use pawl_core::watermark::{MarkId, MarkKind, WatermarkError};
use support::board::{
    INFO, TestBoard, TestButton, TestEntropy, attestation, board, consensus, import, sign,
};
use support::{unhex, verify_independently};

const TZ1: &str = "edsk4FTF78Qf1m2rykGpHqostAiq5gYW4YZEoGUSWBTJr2njsDHSnd";
const TZ2: &str = "spsk1zkqrmst1yg2c4xi3crWcZPqgdc9KtPtb9SAZWYHAdiQzdHy7j";
const TZ4: &str = "BLsk1hKAHyGqY9qRbgoSVnjiSmDWpKGjFF3WNQ7BaiaMUA6RMA6Pfq";
const CHAIN: [u8; 4] = [0xb3, 0xd7, 0x9f, 0x99]; // NetXo5iVw1vBoxM

// ecadlabs/signatory integration_test/tests/server/watermark_test.go
const A1: &str = "11b3d79f990000000218954ac461a1b7642a78880e485b1db8da1e96f6cac6ee7dae541c7b6a8e66840b0000000069a8c3a3043c218c11c12df01faa1113bb827d7de00cc6f95993e220901ca35ff0cec5954000000021000000010200000004000000020000000000000004ffffffff0000000400000000ecbf5c99c96392b252bb846394c12c422e0cb2e050aa018dcc2a880f9c9c636858335430566f4b95401c110f33e74d3a324f83ad6003ed9d5e93ce617fa11e4400000000d7d4b0aea9d000000000";
const A2: &str = "11b3d79f990000000218e790bc8332da94dfdf97b041d5fb918500d56e3647125732b737da8dcf1aa4040000000069a8c39d0429599f0c1222b23808083de0b51e47ea45f2cd3e916dcdd5bd5fdbc7ef5c2c3b00000021000000010200000004000000020000000000000004ffffffff00000004000000007cf2ed78325f41df290d68f691c691c976107148beae12495d946a419750ab7b03f9321cbf1a85d7701522fae4938181944dc8b746ef4e8f85260f528bfa1a2c000000005a3ca147d36b02000000";
const B1: &str = "11b3d79f9900000007184572152267169504aff4d7cb486684d7e36ffed77523565eb2981d05f00f95520000000069a8c397042b9ee182b36afeb571d6d7218853177fff8d2aca0738eaf9a32284eb932bca3500000021000000010200000004000000070000000000000004ffffffff0000000400000002be32a3976c093ad2a4ce5168b38e0756589b740ca2477fc07c5fa52f55c241f222497e0fc752e228440e90f23f104c8de0aec6b5c502dfbfe8e5e21857bacf01000000025a3ca147680601000000";
const C1: &str = "11b3d79f990000002218954ac461a1b7642a78880e485b1db8da1e96f6cac6ee7dae541c7b6a8e66840b0000000069a8c3a3043c218c11c12df01faa1113bb827d7de00cc6f95993e220901ca35ff0cec5954000000021000000010200000004000000220000000000000004ffffffff0000000400000004ecbf5c99c96392b252bb846394c12c422e0cb2e050aa018dcc2a880f9c9c636858335430566f4b95401c110f33e74d3a324f83ad6003ed9d5e93ce617fa11e4400000004d7d4b0aea9d000000000";
const C2: &str = "12b3d79f993222f293d2f293230ec36b0bef1caead619f1a7206ff54a0c198f07ae25bb151140014000000220000000458335430566f4b95401c110f33e74d3a324f83ad6003ed9d5e93ce617fa11e44";
const C3: &str = "13b3d79f993222f293d2f293230ec36b0bef1caead619f1a7206ff54a0c198f07ae25bb151150015000000220000000458335430566f4b95401c110f33e74d3a324f83ad6003ed9d5e93ce617fa11e44";

fn fresh(
    sk: &str,
    policy: Policy,
) -> (
    TestBoard,
    pawl_core::keys::PublicKeyHash,
    pawl_core::keys::PublicKey,
) {
    let mut b = board(MemoryStore::new(), Mode::Provisioning);
    let (pkh, pk) = import(&mut b, sk, policy);
    (b, pkh, pk)
}

fn import_mark(
    b: &mut TestBoard,
    pkh: pawl_core::keys::PublicKeyHash,
    kind: MarkKind,
    level: u32,
    round: u32,
) -> Response {
    b.handle(Request::ImportWatermark {
        chain: ChainId(CHAIN),
        pkh,
        kind,
        level,
        round,
    })
}

/// Snapshot of everything a refusal must not change.
fn state(b: &TestBoard) -> (Vec<String>, Vec<String>, u32) {
    let marks = b.watermarks().iter().map(|e| format!("{e:?}")).collect();
    let mut stored = Vec::new();
    pawl_core::store::Store::load(&mut b.store().clone(), &mut |r| {
        stored.push(format!("{r:?}"));
        Ok(())
    })
    .expect("load");
    (marks, stored, b.store().mark_writes)
}

#[test]
fn signatory_watermark_scenarios() {
    // [A1, A2] → [200, 409]: A2 is a double bake of A1.
    let (mut b, pkh, pk) = fresh(TZ1, Policy::default());
    let s1 = sign(&mut b, &pkh, &unhex(A1)).expect("A1");
    assert!(verify_independently(&pk, &unhex(A1), &s1));
    assert_eq!(
        sign(&mut b, &pkh, &unhex(A2)),
        Err(Refusal::Watermark(WatermarkError::DifferentData {
            kind: MarkKind::Block,
            level: 2,
            round: 0
        }))
    );
    // [A1, A1] → [200, 200], and Octez semantics: the very same signature.
    assert_eq!(sign(&mut b, &pkh, &unhex(A1)), Ok(s1));

    // stored {block: L6 R3} + B1 (7/2) → 200
    let (mut b, pkh, _) = fresh(TZ1, Policy::default());
    assert_eq!(
        import_mark(&mut b, pkh, MarkKind::Block, 6, 3),
        Response::Done
    );
    assert!(sign(&mut b, &pkh, &unhex(B1)).is_ok());
    // stored {block: L8 R1} + B1 → 409
    let (mut b, pkh, _) = fresh(TZ1, Policy::default());
    assert_eq!(
        import_mark(&mut b, pkh, MarkKind::Block, 8, 1),
        Response::Done
    );
    assert_eq!(
        sign(&mut b, &pkh, &unhex(B1)),
        Err(Refusal::Watermark(WatermarkError::Below {
            kind: MarkKind::Block,
            level: 7,
            mark_level: 8
        }))
    );
    // stored {block: L7 R3} + B1 → 409
    let (mut b, pkh, _) = fresh(TZ1, Policy::default());
    assert_eq!(
        import_mark(&mut b, pkh, MarkKind::Block, 7, 3),
        Response::Done
    );
    assert!(matches!(
        sign(&mut b, &pkh, &unhex(B1)),
        Err(Refusal::Watermark(WatermarkError::NotAbove { .. }))
    ));
    // stored {block: L33 R2} + [C1, C2, C3] → all 200; and [C2, C3, C1] → all 200.
    for order in [[C1, C2, C3], [C2, C3, C1]] {
        let (mut b, pkh, pk) = fresh(TZ1, Policy::default());
        assert_eq!(
            import_mark(&mut b, pkh, MarkKind::Block, 33, 2),
            Response::Done
        );
        for hex in order {
            let s = sign(&mut b, &pkh, &unhex(hex)).expect(hex);
            assert!(verify_independently(&pk, &unhex(hex), &s));
        }
    }
}

#[test]
fn octez_rule_table() {
    // docs/protocol.md §8.3 (Signatory watermark_test.go), with Octez's stored-signature variant.
    // Stored (1, 1) without a payload hash (an imported mark).
    let (base, pkh, _) = fresh(TZ1, Policy::default());
    let mut b = base;
    assert_eq!(
        import_mark(&mut b, pkh, MarkKind::Attestation, 1, 1),
        Response::Done
    );
    let store = b.into_store();
    for ((level, round), ok) in [
        ((2, 0), true),
        ((1, 2), true),
        ((1, 1), false),
        ((1, 0), false),
        ((0, 2), false),
    ] {
        let mut b = board(store.clone(), Mode::Operational);
        assert_eq!(
            sign(&mut b, &pkh, &attestation(CHAIN, level, round, 1)).is_ok(),
            ok,
            "no hash, ({level},{round})"
        );
    }
    // Stored (1, 1) with payload H0 and its signature.
    let (mut b, pkh, _) = fresh(TZ1, Policy::default());
    let s0 = sign(&mut b, &pkh, &attestation(CHAIN, 1, 1, 0)).expect("H0");
    let cases = [
        ((2, 0, 5), Some(true)),
        ((1, 2, 5), Some(true)),
        ((1, 1, 0), None),
        ((1, 0, 5), Some(false)),
        ((0, 2, 5), Some(false)),
        ((1, 1, 1), Some(false)),
    ];
    for ((level, round, p), expect) in cases {
        let before = state(&b);
        let got = sign(&mut b, &pkh, &attestation(CHAIN, level, round, p));
        match expect {
            None => assert_eq!(got, Ok(s0), "identical retry returns the stored signature"),
            Some(true) => {
                assert!(got.is_ok(), "({level},{round})");
                // Reset for the next case: a fresh board with the same H0 mark.
                let (nb, npkh, _) = fresh(TZ1, Policy::default());
                b = nb;
                assert_eq!(npkh, pkh);
                assert_eq!(sign(&mut b, &pkh, &attestation(CHAIN, 1, 1, 0)), Ok(s0));
            }
            Some(false) => {
                assert!(
                    matches!(got, Err(Refusal::Watermark(_))),
                    "({level},{round}): {got:?}"
                );
                assert_eq!(state(&b), before, "refusal changed state");
            }
        }
    }
}

#[test]
fn kinds_and_chains_have_separate_marks() {
    let (mut b, pkh, _) = fresh(TZ1, Policy::default());
    assert!(sign(&mut b, &pkh, &consensus(0x12, 20, CHAIN, 10, 0, 1)).is_ok());
    assert!(sign(&mut b, &pkh, &consensus(0x13, 21, CHAIN, 10, 0, 1)).is_ok());
    // Tag 23 shares the attestation mark with tag 21: same (level, round), other bytes: refused.
    let mut dal = consensus(0x13, 23, CHAIN, 10, 0, 2);
    dal.push(0x01);
    assert!(matches!(
        sign(&mut b, &pkh, &dal),
        Err(Refusal::Watermark(WatermarkError::DifferentData { .. }))
    ));
    // Another chain is independent.
    assert!(sign(&mut b, &pkh, &attestation([1, 2, 3, 4], 10, 0, 9)).is_ok());
}

#[test]
fn policy_refusals_leave_state_untouched() {
    // ecadlabs/signatory signatory_test.go: transfer and transfer + delegation batch.
    let tx = unhex(
        "03a60703a9567bf69ec66b368c3d8562eba4cbf29278c2c10447a684e3aa1436856c00a0c7a9b0bcd6a48ee0c13094327f215ba2adeaa7d40dabc1af25e36fde02c096b10201f525eabd8b0eeace1494233ea0230d2c9ad6619b00ffff0b66756c66696c6c5f61736b0000000907070088f0f6010306",
    );
    let mut batch = tx.clone();
    batch.extend(unhex("6e00e1ba5449f2938568ace14b5dd54f31936dc86722ba08e0eaa917f53800ff0002298c03ed7d454a101eb7022bc95f7e5f41ac78"));

    // Default policy: consensus only.
    let (mut b, pkh, _) = fresh(TZ2, Policy::default());
    let before = state(&b);
    assert_eq!(
        sign(&mut b, &pkh, &tx),
        Err(Refusal::Policy(PolicyError::KindNotAllowed {
            kind: RequestKind::Generic
        }))
    );
    assert_eq!(
        sign(
            &mut b,
            &pkh,
            &unhex("050a00000016000032041dca76bac940b478aae673e362bd15847ed8")
        ),
        Err(Refusal::Policy(PolicyError::KindNotAllowed {
            kind: RequestKind::Michelson
        }))
    );
    assert_eq!(state(&b), before);

    // Transactions allowed, delegation not: the batch is refused as a whole.
    let policy = Policy {
        kinds: KindSet::CONSENSUS.with(RequestKind::Generic),
        ops: OpKindSet::EMPTY.with(OpKind::Transaction),
        ..Policy::default()
    };
    let (mut b, pkh, pk) = fresh(TZ2, policy);
    let s = sign(&mut b, &pkh, &tx).expect("transfer");
    assert!(verify_independently(&pk, &tx, &s));
    assert_eq!(
        sign(&mut b, &pkh, &batch),
        Err(Refusal::Policy(PolicyError::OperationNotAllowed {
            op: OpKind::Delegation
        }))
    );

    // Chain pinning.
    let mut chains = heapless::Vec::new();
    chains.push(ChainId(CHAIN)).expect("room");
    let (mut b, pkh, _) = fresh(
        TZ1,
        Policy {
            chains,
            ..Policy::default()
        },
    );
    assert!(sign(&mut b, &pkh, &attestation(CHAIN, 5, 0, 1)).is_ok());
    let before = state(&b);
    assert_eq!(
        sign(&mut b, &pkh, &attestation([9, 9, 9, 9], 6, 0, 1)),
        Err(Refusal::Policy(PolicyError::ChainNotAllowed {
            chain: ChainId([9, 9, 9, 9])
        }))
    );
    assert_eq!(state(&b), before);

    // Ballots.
    let policy = Policy {
        kinds: KindSet::CONSENSUS.with(RequestKind::Generic),
        ops: OpKindSet::EMPTY.with(OpKind::Ballot),
        ballots: BallotSet::EMPTY.with(Ballot::Nay),
        ..Policy::default()
    };
    let (mut b, pkh, _) = fresh(TZ1, policy);
    let ballot = |v: u8| {
        unhex(&format!(
            "03{}0600{}0000002a{}{v:02x}",
            "00".repeat(32),
            "22".repeat(20),
            "33".repeat(32)
        ))
    };
    assert!(sign(&mut b, &pkh, &ballot(1)).is_ok());
    assert_eq!(
        sign(&mut b, &pkh, &ballot(0)),
        Err(Refusal::Policy(PolicyError::BallotNotAllowed {
            ballot: Ballot::Yay
        }))
    );
}

#[test]
fn consensus_form_must_match_key_curve() {
    let (mut b, tz4, pk4) = fresh(TZ4, Policy::default());
    let (tz1, _) = import(&mut b, TZ1, Policy::default());
    let slotted = attestation(CHAIN, 3, 0, 1);
    let bls = consensus(0x13, 41, CHAIN, 3, 0, 1);
    assert_eq!(
        sign(&mut b, &tz4, &slotted),
        Err(Refusal::Policy(PolicyError::WrongConsensusForm {
            form: ConsensusForm::WithSlot
        }))
    );
    assert_eq!(
        sign(&mut b, &tz1, &bls),
        Err(Refusal::Policy(PolicyError::WrongConsensusForm {
            form: ConsensusForm::BlsMode
        }))
    );
    // BLS signature versions 0/1 are refused before the watermark moves.
    let r = b.handle(Request::Sign {
        pkh: tz4,
        version: SigningVersion(1),
        payload: &bls,
    });
    assert!(matches!(r, Response::Refused(Refusal::Key(_))), "{r:?}");
    let s = sign(&mut b, &tz4, &bls).expect("tz4 BLS mode");
    assert!(verify_independently(&pk4, &bls, &s));
    // Proof of possession through the board.
    match b.handle(Request::ProvePossession {
        pkh: tz4,
        override_pk: None,
    }) {
        Response::Signature(proof) => {
            let pawl_core::keys::PublicKey::Bls(raw) = pk4 else {
                panic!("bls")
            };
            assert!(support::verify_pop_independently(&raw, &proof));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn operational_mode_refuses_every_provisioning_request() {
    let (b, pkh, _) = fresh(TZ1, Policy::default());
    let mut b = board(b.into_store(), Mode::Operational);
    let (curve, secret) = pawl_core::keys::SecretBytes::from_b58(TZ2).expect("sk");
    let before = state(&b);
    for req in [
        Request::GenerateKey {
            curve: pawl_core::keys::Curve::Ed25519,
            policy: Policy::default(),
        },
        Request::ImportKey {
            curve,
            secret,
            policy: Policy::default(),
        },
        Request::SetPolicy {
            pkh,
            policy: Policy {
                kinds: KindSet::CONSENSUS.with(RequestKind::Generic),
                ..Policy::default()
            },
        },
        Request::ImportWatermark {
            chain: ChainId(CHAIN),
            pkh,
            kind: MarkKind::Block,
            level: 100,
            round: 0,
        },
    ] {
        assert_eq!(b.handle(req), Response::Refused(Refusal::ProvisioningOnly));
    }
    assert_eq!(state(&b), before);
    // Operational requests still work.
    assert!(matches!(b.handle(Request::ListKeys), Response::Keys(k) if k.len() == 1));
    assert!(sign(&mut b, &pkh, &attestation(CHAIN, 1, 0, 0)).is_ok());
}

#[test]
fn confirm_on_device() {
    let policy = Policy {
        kinds: KindSet::CONSENSUS.with(RequestKind::Michelson),
        confirm: KindSet::EMPTY.with(RequestKind::Michelson),
        ..Policy::default()
    };
    let pack = unhex("050a00000016000032041dca76bac940b478aae673e362bd15847ed8");
    let mut b = Board::open(
        MemoryStore::new(),
        TestEntropy(3),
        TestButton::default(),
        Mode::Provisioning,
        INFO,
    );
    let (pkh, _) = import(&mut b, TZ1, policy);
    assert_eq!(sign(&mut b, &pkh, &pack), Err(Refusal::NotConfirmed));
    // Consensus needs no press.
    assert!(sign(&mut b, &pkh, &attestation(CHAIN, 1, 0, 0)).is_ok());
    let mut b = Board::open(
        b.into_store(),
        TestEntropy(3),
        TestButton {
            answer: true,
            asked: 0,
        },
        Mode::Operational,
        INFO,
    );
    assert!(sign(&mut b, &pkh, &pack).is_ok());
}

#[test]
fn store_failure_releases_nothing_and_changes_nothing() {
    let mut store = MemoryStore::new();
    store.fail_after = Some(1); // the key import succeeds, the first mark write fails
    let mut b = board(store, Mode::Provisioning);
    let (pkh, _) = import(&mut b, TZ1, Policy::default());
    let before = state(&b);
    assert_eq!(
        sign(&mut b, &pkh, &attestation(CHAIN, 7, 0, 0)),
        Err(Refusal::Store(StoreError::Io))
    );
    assert_eq!(state(&b), before);
    assert!(b.watermarks().is_empty());
    match b.handle(Request::Status) {
        Response::Status(s) => assert_eq!((s.signatures, s.refusals), (0, 1)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn restart_refuses_at_or_below_persisted_marks() {
    let (mut b, pkh, _) = fresh(TZ1, Policy::default());
    let req = attestation(CHAIN, 10, 2, 0);
    sign(&mut b, &pkh, &req).expect("sign");
    // Power cycle: RAM (and the recorded signature) is gone, the store remains.
    let mut b = board(b.into_store(), Mode::Operational);
    for (level, round) in [(10, 2), (10, 1), (9, 5)] {
        assert!(
            matches!(
                sign(&mut b, &pkh, &attestation(CHAIN, level, round, 0)),
                Err(Refusal::Watermark(_))
            ),
            "({level},{round})"
        );
    }
    assert!(sign(&mut b, &pkh, &attestation(CHAIN, 10, 3, 0)).is_ok());
}

#[test]
fn watermark_import_only_raises() {
    let (mut b, pkh, _) = fresh(TZ1, Policy::default());
    assert_eq!(
        import_mark(&mut b, pkh, MarkKind::Block, 50, 1),
        Response::Done
    );
    let before = state(&b);
    assert!(matches!(
        import_mark(&mut b, pkh, MarkKind::Block, 49, 9),
        Response::Refused(Refusal::Watermark(WatermarkError::Below { .. }))
    ));
    assert!(matches!(
        import_mark(&mut b, pkh, MarkKind::Block, 50, 1),
        Response::Refused(Refusal::Watermark(WatermarkError::NotAbove { .. }))
    ));
    assert_eq!(state(&b), before);
    assert_eq!(
        import_mark(&mut b, pkh, MarkKind::Block, 50, 2),
        Response::Done
    );
}

#[test]
fn full_watermark_table_refuses_new_chains_without_evicting() {
    // Signing alone no longer fills the table (per-key quotas, `core/tests/table_room.rs`); a
    // store written before the quotas can hold a full table: reboot on one.
    let (b, pkh, _) = fresh(TZ1, Policy::default());
    let mut store = b.into_store();
    for i in 0..u32::try_from(MAX_MARKS).expect("small") {
        let id = MarkId {
            chain: ChainId(i.to_be_bytes()),
            key: pkh,
            kind: MarkKind::Attestation,
        };
        pawl_core::store::Store::persist_mark(&mut store, &id, 1, 0).expect("fill");
    }
    let mut b = board(store, Mode::Provisioning);
    let before = state(&b);
    assert_eq!(
        sign(&mut b, &pkh, &attestation([0xff; 4], 1, 0, 0)),
        Err(Refusal::Watermark(WatermarkError::TableFull {
            capacity: u16::try_from(MAX_MARKS).expect("small")
        }))
    );
    assert_eq!(state(&b), before);
    // The old marks are all still enforced.
    assert!(matches!(
        sign(&mut b, &pkh, &attestation(0u32.to_be_bytes(), 1, 0, 1)),
        Err(Refusal::Watermark(WatermarkError::NotAbove { .. }))
    ));
    assert!(sign(&mut b, &pkh, &attestation(0u32.to_be_bytes(), 2, 0, 1)).is_ok());
}

#[test]
fn unknown_key_and_bad_payloads() {
    let (mut b, pkh, _) = fresh(TZ1, Policy::default());
    let other = pawl_core::keys::PublicKeyHash::from_b58("tz1eKkWU5hGtfLUiqNpucHrXymm83z3DG9Sq")
        .expect("pkh");
    assert_eq!(
        sign(&mut b, &other, &attestation(CHAIN, 1, 0, 0)),
        Err(Refusal::UnknownKey { pkh: other })
    );
    assert_eq!(
        sign(&mut b, &pkh, &[0x04, 1, 2]),
        Err(Refusal::Parse(ParseError::UnknownMagicByte { byte: 4 }))
    );
    let big = vec![0x03; pawl_core::protocol::MAX_SIGN_PAYLOAD + 1];
    assert!(matches!(
        sign(&mut b, &pkh, &big),
        Err(Refusal::PayloadTooLarge { .. })
    ));
}

#[test]
fn corrupted_store_refuses_to_sign_with_clear_status() {
    struct Broken;
    impl pawl_core::store::Store for Broken {
        fn load(
            &mut self,
            _: &mut dyn FnMut(pawl_core::store::Record<'_>) -> Result<(), StoreError>,
        ) -> Result<(), StoreError> {
            Err(StoreError::Corrupted)
        }
        fn persist_mark(
            &mut self,
            _: &pawl_core::watermark::MarkId,
            _: u32,
            _: u32,
        ) -> Result<(), StoreError> {
            Ok(())
        }
        fn persist_key(
            &mut self,
            _: u8,
            _: &pawl_core::store::StoredKey,
        ) -> Result<(), StoreError> {
            Ok(())
        }
        fn reprovision(&mut self, _: bool) -> Result<(), StoreError> {
            Err(StoreError::Corrupted)
        }
    }
    let mut b = Board::open(
        Broken,
        TestEntropy(1),
        pawl_core::board::NoButton,
        Mode::Provisioning,
        INFO,
    );
    match b.handle(Request::Status) {
        Response::Status(s) => assert_eq!(s.store, StoreHealth::Refusing(StoreError::Corrupted)),
        other => panic!("{other:?}"),
    }
    let r = b.handle(Request::GenerateKey {
        curve: pawl_core::keys::Curve::Ed25519,
        policy: Policy::default(),
    });
    assert_eq!(r, Response::Refused(Refusal::Store(StoreError::Corrupted)));
}

#[test]
fn frames_round_trip_and_garbage_is_answered() {
    let (mut b, pkh, pk) = fresh(TZ1, Policy::default());
    let payload = attestation(CHAIN, 4, 0, 0);
    let mut scratch = vec![0u8; MAX_FRAME];
    let mut frame = vec![0u8; MAX_FRAME];
    let n = encode_frame(
        77,
        &Request::Sign {
            pkh,
            version: SigningVersion::LATEST,
            payload: &payload,
        },
        &mut scratch,
        &mut frame,
    )
    .expect("encode");
    assert_eq!(frame[n - 1], 0);
    assert!(!frame[..n - 1].contains(&0));
    let mut out = vec![0u8; MAX_FRAME];
    let m = b.handle_frame(&mut frame[..n], &mut out).expect("answer");
    let env: Envelope<Response> = decode_frame(&mut out[..m]).expect("decode");
    assert_eq!(env.id, 77);
    let Response::Signature(sig) = env.message else {
        panic!("{:?}", env.message)
    };
    assert!(verify_independently(&pk, &payload, &sig));

    // A flipped bit fails the CRC; the board answers with id 0 and changes nothing.
    let n = encode_frame(
        78,
        &Request::Sign {
            pkh,
            version: SigningVersion::LATEST,
            payload: &attestation(CHAIN, 5, 0, 0),
        },
        &mut scratch,
        &mut frame,
    )
    .expect("encode");
    frame[5] ^= 0x01;
    if frame[5] == 0 {
        frame[5] = 0x02;
    }
    let before = state(&b);
    let m = b.handle_frame(&mut frame[..n], &mut out).expect("answer");
    let env: Envelope<Response> = decode_frame(&mut out[..m]).expect("decode");
    assert_eq!(env.id, 0);
    assert!(
        matches!(env.message, Response::Refused(Refusal::Frame(_))),
        "{:?}",
        env.message
    );
    assert_eq!(state(&b), before);
}

#[test]
fn accumulator_resyncs_after_garbage_and_overflow() {
    let mut acc: FrameAccumulator<64> = FrameAccumulator::new();
    let mut scratch = [0u8; 128];
    let mut frame = [0u8; 128];
    let n = encode_frame(5, &Request::Status, &mut scratch, &mut frame).expect("encode");
    // Garbage longer than the buffer, then a zero, then a good frame.
    let mut stream = vec![0x55u8; 100];
    stream.push(0);
    stream.extend_from_slice(&frame[..n]);
    let (used, fed) = acc.feed(&stream);
    assert!(
        matches!(fed, Fed::Dropped(FrameError::TooLong { len: 100, .. })),
        "{fed:?}"
    );
    let (_, fed) = acc.feed(&stream[used..]);
    match fed {
        Fed::Frame(f) => {
            let env: Envelope<Request<'_>> = decode_frame(f).expect("decode");
            assert_eq!((env.id, env.message), (5, Request::Status));
        }
        other => panic!("{other:?}"),
    }
}
