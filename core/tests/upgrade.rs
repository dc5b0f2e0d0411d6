//! Upgrades keep the store (issue: key lifecycle, item 5): `fixtures/store-v1/` is the state
//! directory of the QEMU firmware after a provisioning and some baking, written by
//! `tests/e2e/make_store_fixture.py`, with what the firmware itself reported before it was
//! switched off (`expected.json`: `pawl keys list` and `pawl watermark show`). Every later
//! version must load it, keep its keys, policies, duties and marks, and go on signing above
//! them. And a store written in a newer format than this firmware reads is refused, untouched.

mod support;

use std::path::{Path, PathBuf};

use pawl_core::board::Board;
use pawl_core::keys::PublicKeyHash;
use pawl_core::protocol::{Mode, OffDuty, Refusal, Request, Response, StoreHealth};
use pawl_core::request::ChainId;
use pawl_core::sim::{FileGuard, SimFlash, VIRTUAL_PAGES};
use pawl_core::store::{BoardKey, NorStore, NorStoreConfig, StoreError};
use pawl_core::watermark::{MarkKind, WatermarkError};
use serde_json::Value;
use support::board::{INFO, TestEntropy, consensus, sign};
use support::verify_independently;

type FixtureBoard = Board<NorStore<SimFlash, FileGuard>, TestEntropy, pawl_core::board::NoButton>;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store-v1")
}

/// The store over the state files in `dir`, as the virtual board and the QEMU firmware lay
/// them out.
fn store_in(dir: &Path) -> NorStore<SimFlash, FileGuard> {
    let key: [u8; 32] = std::fs::read(dir.join("board.key"))
        .expect("board key")
        .try_into()
        .expect("32 bytes");
    let flash = SimFlash::open_file(&dir.join("flash.bin"), VIRTUAL_PAGES).expect("flash");
    let guard = FileGuard::open(&dir.join("rollback-counter")).expect("guard");
    let config = NorStoreConfig {
        region: 0..u32::try_from(VIRTUAL_PAGES * 4096).expect("fits"),
        ceiling_ahead: NorStoreConfig::DEFAULT_CEILING_AHEAD,
    };
    NorStore::new(flash, config, &BoardKey::new(key), guard).expect("store")
}

/// A copy of the fixture (the board writes to its files) and the store over it.
fn open_copy(dir: &Path) -> NorStore<SimFlash, FileGuard> {
    for f in ["flash.bin", "board.key", "rollback-counter"] {
        std::fs::copy(fixture().join(f), dir.join(f)).expect("copy fixture");
    }
    store_in(dir)
}

fn expected() -> Value {
    let text = std::fs::read_to_string(fixture().join("expected.json")).expect("expected.json");
    serde_json::from_str(&text).expect("json")
}

fn s(v: &Value) -> &str {
    v.as_str().expect("string")
}

fn mark_kind(name: &str) -> MarkKind {
    match name {
        "block" => MarkKind::Block,
        "preattestation" => MarkKind::Preattestation,
        "attestation" => MarkKind::Attestation,
        other => panic!("kind {other}"),
    }
}

#[test]
fn the_firmwares_store_loads_with_its_keys_policies_duties_and_marks() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut b: FixtureBoard = Board::open(
        open_copy(dir.path()),
        TestEntropy(3),
        pawl_core::board::NoButton,
        Mode::Operational,
        INFO,
    );
    let want = expected();
    let Response::Keys(keys) = b.handle(Request::ListKeys) else {
        panic!("list keys")
    };
    let want_keys = want["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), want_keys.len());
    for (got, want) in keys.iter().zip(want_keys) {
        assert_eq!(got.pkh.to_b58().as_str(), s(&want["pkh"]));
        assert_eq!(got.public_key.to_b58().as_str(), s(&want["public_key"]));
        let kinds: Vec<&str> = got.policy.kinds.iter().map(|k| k.name()).collect();
        let want_kinds: Vec<&str> = want["policy"]["kinds"]
            .as_array()
            .expect("kinds")
            .iter()
            .map(s)
            .collect();
        assert_eq!(kinds, want_kinds, "{}", got.pkh);
        let ops: Vec<&str> = got.policy.ops.iter().map(|k| k.name()).collect();
        let want_ops: Vec<&str> = want["policy"]["ops"]
            .as_array()
            .expect("ops")
            .iter()
            .map(s)
            .collect();
        assert_eq!(ops, want_ops);
        let chains: Vec<String> = got
            .policy
            .chains
            .iter()
            .map(|c| c.to_b58().to_string())
            .collect();
        assert_eq!(chains, vec![s(&want["policy"]["chains"][0]).to_string()]);
        assert_eq!(
            got.duty.until_level,
            want["duty"]["until_level"]
                .as_u64()
                .map(|l| u32::try_from(l).expect("u32"))
        );
        assert_eq!(
            got.duty.standby,
            want["duty"]["standby"].as_bool().expect("bool")
        );
    }

    // Every mark the firmware reported is held at or above where it was (after a restart a
    // mark reads as its reserved ceiling).
    let mut marks = Vec::new();
    let mut start = 0u16;
    loop {
        let Response::Watermarks { entries, next } = b.handle(Request::ExportWatermarks { start })
        else {
            panic!("export watermarks")
        };
        marks.extend(entries.iter().copied());
        match next {
            Some(n) if n > start => start = n,
            _ => break,
        }
    }
    for want in want["watermarks"].as_array().expect("watermarks") {
        let pkh = PublicKeyHash::from_b58(s(&want["pkh"])).expect("pkh");
        let chain = ChainId::from_b58(s(&want["chain"])).expect("chain");
        let kind = mark_kind(s(&want["kind"]));
        let level = u32::try_from(want["level"].as_u64().expect("level")).expect("u32");
        let round = u32::try_from(want["round"].as_u64().expect("round")).expect("u32");
        let got = marks
            .iter()
            .find(|e| e.pkh == pkh && e.chain == chain && e.kind == kind)
            .unwrap_or_else(|| panic!("no {kind:?} mark for {pkh}"));
        assert!(
            (got.level, got.round) >= (level, round),
            "{pkh} {kind:?}: ({}, {}) below the firmware's ({level}, {round})",
            got.level,
            got.round
        );
    }
}

#[test]
fn the_loaded_board_refuses_at_the_old_marks_and_signs_above_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut b: FixtureBoard = Board::open(
        open_copy(dir.path()),
        TestEntropy(4),
        pawl_core::board::NoButton,
        Mode::Operational,
        INFO,
    );
    let want = expected();
    let key = |i: usize| PublicKeyHash::from_b58(s(&want["keys"][i]["pkh"])).expect("pkh");
    let (tz1, tz2) = (key(0), key(1));
    let chain = ChainId::from_b58(s(&want["keys"][0]["policy"]["chains"][0])).expect("chain");
    // The firmware signed attestations at level 140 round 1: other bytes there are refused.
    let again = consensus(0x13, 21, chain.0, 140, 1, 0x77);
    assert!(matches!(
        sign(&mut b, &tz2, &again),
        Err(Refusal::Watermark(
            WatermarkError::NotAbove { .. } | WatermarkError::Below { .. }
        ))
    ));
    // Above the reserved ceilings the key signs, and the signature verifies independently.
    let Response::PublicKey(pk) = b.handle(Request::PublicKey { pkh: tz2 }) else {
        panic!("public key")
    };
    let next = consensus(0x13, 21, chain.0, 200, 0, 0x78);
    let sig = sign(&mut b, &tz2, &next).expect("signs above the old marks");
    assert!(verify_independently(&pk, &next, &sig));
    // tz1 was retired above 100000 on the firmware: still retired.
    assert_eq!(
        sign(&mut b, &tz1, &consensus(0x13, 21, chain.0, 100_001, 0, 1)),
        Err(Refusal::OffDuty(OffDuty::AfterRetirement {
            level: 100_001,
            until: 100_000
        }))
    );
}

#[test]
fn a_store_in_a_newer_format_is_refused_and_left_as_it_is() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut store = open_copy(dir.path());
    pawl_core::store::Store::load(&mut store, &mut |_| Ok(())).expect("today's format loads");
    store
        .stamp_format(pawl_core::store::FORMAT_VERSION + 1)
        .expect("stamp");
    drop(store);
    let before = std::fs::read(dir.path().join("flash.bin")).expect("flash");

    let store = store_in(dir.path());
    let mut b: FixtureBoard = Board::open(
        store,
        TestEntropy(5),
        pawl_core::board::NoButton,
        Mode::Operational,
        INFO,
    );
    let Response::Status(status) = b.handle(Request::Status) else {
        panic!("status")
    };
    let newer = StoreError::NewerFormat {
        version: pawl_core::store::FORMAT_VERSION + 1,
    };
    assert_eq!(status.store, StoreHealth::Refusing(newer));
    assert!(newer.to_string().contains("newer firmware"), "{newer}");
    let want = expected();
    let tz2 = PublicKeyHash::from_b58(s(&want["keys"][1]["pkh"])).expect("pkh");
    let chain = ChainId::from_b58(s(&want["keys"][1]["policy"]["chains"][0])).expect("chain");
    assert!(sign(&mut b, &tz2, &consensus(0x13, 21, chain.0, 300, 0, 1)).is_err());
    drop(b);
    assert_eq!(
        std::fs::read(dir.path().join("flash.bin")).expect("flash"),
        before,
        "a refused store was written to"
    );
}
