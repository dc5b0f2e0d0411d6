//! The NOR-flash store: ceiling reservation, restart, sealing, rollback detection,
//! re-provisioning, tampering, the wear model against measured counters, and the file-backed
//! virtual board.
#![allow(clippy::cast_possible_truncation, clippy::std_instead_of_core)]

mod support;

use std::cell::Cell;
use std::rc::Rc;

use pawl_core::policy::Policy;
use pawl_core::protocol::{Mode, Refusal, Request, Response, Status, StoreHealth};
use pawl_core::request::ChainId;
use pawl_core::sim::SimFlash;
use pawl_core::sim::flash::PAGE;
use pawl_core::store::wear::WearModel;
use pawl_core::store::{BoardKey, NorStore, NorStoreConfig, StoreError};
use pawl_core::watermark::{MarkId, MarkKind};
use support::board::{INFO, TestEntropy, attestation, consensus, import, sign};
use support::power::{CHAINS, NorBoard, SharedGuard, boot, secrets};
use support::verify_independently;

const PAGES: usize = 4;

fn status(b: &mut NorBoard) -> Status {
    match b.handle(Request::Status) {
        Response::Status(s) => s,
        other => panic!("status: {other:?}"),
    }
}

fn reboot(b: NorBoard, ahead: u32, guard: &SharedGuard) -> NorBoard {
    let image = b.into_store().into_flash().image().to_vec();
    boot(SimFlash::from_image(image), PAGES, ahead, guard.clone())
}

#[test]
fn ceilings_write_flash_once_per_n_levels() {
    for (ahead, expected) in [(8u32, 8u32), (0, 64)] {
        let guard = SharedGuard::default();
        let mut b = boot(SimFlash::new(PAGES), PAGES, ahead, guard);
        let (pkh, pk) = import(&mut b, &secrets()[0], Policy::default());
        let before = status(&mut b).wear.records;
        for level in 1..=64 {
            let payload = attestation(CHAINS[0], level, 0, 1);
            let sig = sign(&mut b, &pkh, &payload).expect("sign");
            verify_independently(&pk, &payload, &sig);
        }
        let after = status(&mut b).wear.records;
        // One name record for the new mark, then one ceiling per crossing: with N = 8 the
        // ceilings land at 9, 18, …, 72 (levels 1, 10, 19, 28, 37, 46, 55, 64 cross them).
        assert_eq!(after - before, 1 + expected, "N = {ahead}");
    }
}

/// Flash records written so far.
fn records(b: &mut NorBoard) -> u32 {
    status(b).wear.records
}

#[test]
fn idle_time_raises_ceilings_so_signatures_do_not_wait_on_flash() {
    let guard = SharedGuard::default();
    let mut b = boot(SimFlash::new(PAGES), PAGES, 16, guard.clone());
    let (pkh, pk) = import(&mut b, &secrets()[0], Policy::default());
    // Nothing signed yet: nothing is due.
    assert_eq!(b.idle(), Ok(false));
    let start = records(&mut b);
    // Level 1 crosses on the signing path (name + ceiling 17); idle finds 16 levels of
    // headroom and writes nothing.
    sign(&mut b, &pkh, &attestation(CHAINS[0], 1, 0, 1)).expect("sign 1");
    assert_eq!(records(&mut b), start + 2);
    assert_eq!(b.idle(), Ok(false));
    // The chain's pace: one level, then idle. From level 16 on (headroom 1 < 16/8), idle
    // raises the ceiling, so signing never writes flash again.
    for level in 2..=100u32 {
        let payload = attestation(CHAINS[0], level, 0, 1);
        let before = records(&mut b);
        let sig = sign(&mut b, &pkh, &payload).expect("sign");
        verify_independently(&pk, &payload, &sig);
        if level > 16 {
            assert_eq!(records(&mut b), before, "level {level} waited on flash");
        }
        let mut writes = 0;
        while b.idle().expect("idle") {
            writes += 1;
        }
        assert!(writes <= 1, "level {level}: {writes} idle writes");
    }
    // About one write per N - 1 levels: 99 levels after level 1 → 6 ceilings ahead.
    assert_eq!(records(&mut b) - start, 2 + 6);
    // What idle reserved is a real ceiling: after a restart all of it is refused, and the
    // next level above it signs.
    let mut b = reboot(b, 16, &guard);
    let ceiling = match b.handle(Request::ExportWatermarks { start: 0 }) {
        Response::Watermarks { entries, .. } => entries[0].level,
        other => panic!("export: {other:?}"),
    };
    assert!(ceiling > 100, "ceiling {ceiling}");
    for level in [101, ceiling] {
        assert!(matches!(
            sign(&mut b, &pkh, &attestation(CHAINS[0], level, 0, 2)),
            Err(Refusal::Watermark(_))
        ));
    }
    sign(&mut b, &pkh, &attestation(CHAINS[0], ceiling + 1, 0, 2)).expect("above");
    // Marks not signed since this boot are never raised by idle.
    let other = attestation(CHAINS[1], 5, 0, 1);
    sign(&mut b, &pkh, &other).expect("chain 1");
    let mut b = reboot(b, 16, &guard);
    assert_eq!(b.idle(), Ok(false));
}

#[test]
fn after_restart_everything_up_to_the_ceiling_is_refused() {
    let guard = SharedGuard::default();
    let mut b = boot(SimFlash::new(PAGES), PAGES, 8, guard.clone());
    let (pkh, _) = import(&mut b, &secrets()[0], Policy::default());
    sign(&mut b, &pkh, &attestation(CHAINS[0], 100, 0, 1)).expect("sign");
    // Under the ceiling (108): signed from RAM.
    sign(&mut b, &pkh, &attestation(CHAINS[0], 105, 0, 1)).expect("sign");
    let mut b = reboot(b, 8, &guard);
    assert_eq!(status(&mut b).store, StoreHealth::Ok);
    for level in [100, 105, 108] {
        assert!(
            matches!(
                sign(&mut b, &pkh, &attestation(CHAINS[0], level, 7, 2)),
                Err(Refusal::Watermark(_))
            ),
            "level {level} must be refused after restart"
        );
    }
    sign(&mut b, &pkh, &attestation(CHAINS[0], 109, 0, 2)).expect("above the ceiling");
    // Marks for another kind and chain are independent.
    sign(&mut b, &pkh, &consensus(0x12, 20, CHAINS[1], 50, 0, 3)).expect("other mark");
}

#[test]
fn identical_retry_after_restart_is_refused_not_resigned() {
    let guard = SharedGuard::default();
    let mut b = boot(SimFlash::new(PAGES), PAGES, 0, guard.clone());
    let (pkh, _) = import(&mut b, &secrets()[1], Policy::default());
    let payload = attestation(CHAINS[0], 10, 0, 1);
    let first = sign(&mut b, &pkh, &payload).expect("sign");
    assert_eq!(
        sign(&mut b, &pkh, &payload),
        Ok(first),
        "same boot: recorded signature"
    );
    let mut b = reboot(b, 0, &guard);
    assert!(
        sign(&mut b, &pkh, &payload).is_err(),
        "the signature lived in RAM only"
    );
}

#[test]
fn keys_are_sealed_and_bound_to_the_board_key() {
    let guard = SharedGuard::default();
    let mut b = boot(SimFlash::new(PAGES), PAGES, 8, guard.clone());
    let mut secrets_raw = Vec::new();
    for sk in secrets() {
        let (_, secret) = pawl_core::keys::SecretBytes::from_b58(&sk).expect("sk");
        secrets_raw.push(secret.expose().to_vec());
        import(&mut b, &sk, Policy::default());
    }
    let image = b.into_store().into_flash().image().to_vec();
    for raw in &secrets_raw {
        assert!(
            !image.windows(raw.len()).any(|w| w == raw.as_slice()),
            "a secret key is readable in the flash image"
        );
    }
    // The same image under another board key: keys do not open, the board refuses.
    let store = NorStore::new(
        SimFlash::from_image(image.clone()),
        NorStoreConfig {
            region: 0..(PAGES * PAGE) as u32,
            ceiling_ahead: 8,
        },
        &BoardKey::new([8; 32]),
        guard.clone(),
    )
    .expect("store");
    let mut other = pawl_core::board::Board::open(
        store,
        TestEntropy(1),
        pawl_core::board::NoButton,
        Mode::Provisioning,
        INFO,
    );
    match other.handle(Request::Status) {
        Response::Status(s) => assert_eq!(s.store, StoreHealth::Refusing(StoreError::Corrupted)),
        other => panic!("{other:?}"),
    }
    // And with the right key all four come back.
    let mut b = boot(SimFlash::from_image(image), PAGES, 8, guard);
    assert_eq!(status(&mut b).keys, 4);
}

#[test]
fn a_tampered_ceiling_never_boots_lower() {
    let guard = SharedGuard::default();
    let mut b = boot(SimFlash::new(PAGES), PAGES, 0, guard.clone());
    let (pkh, _) = import(&mut b, &secrets()[0], Policy::default());
    sign(&mut b, &pkh, &attestation(CHAINS[0], 0x0102_0304, 0, 1)).expect("sign");
    let image = b.into_store().into_flash().image().to_vec();
    // Find the level in the newest ceiling record (little-endian) and flip a bit in it.
    let needle = 0x0102_0304u32.to_le_bytes();
    let at = image
        .windows(4)
        .rposition(|w| w == needle)
        .expect("ceiling on flash");
    for bit in [0u8, 3, 7] {
        let mut tampered = image.clone();
        tampered[at] ^= 1 << bit;
        let mut b = boot(SimFlash::from_image(tampered), PAGES, 0, guard.clone());
        let health = status(&mut b).store;
        if health == StoreHealth::Ok {
            // The damaged record was dropped: the board must not have come back lower.
            assert!(
                sign(&mut b, &pkh, &attestation(CHAINS[0], 0x0102_0304, 0, 2)).is_err(),
                "a damaged flash let the board sign at an acknowledged level"
            );
        } else {
            assert!(matches!(health, StoreHealth::Refusing(_)));
        }
    }
}

#[test]
fn rollback_is_detected_and_needs_reprovisioning() {
    let guard = SharedGuard {
        value: Rc::new(Cell::new(0)),
        journal: None,
    };
    let mut b = boot(SimFlash::new(PAGES), PAGES, 4, guard.clone());
    let (pkh, _) = import(&mut b, &secrets()[0], Policy::default());
    sign(&mut b, &pkh, &attestation(CHAINS[0], 10, 0, 1)).expect("sign");
    let old = b.into_store().into_flash().image().to_vec();
    let mut b = boot(SimFlash::from_image(old.clone()), PAGES, 4, guard.clone());
    for level in [20, 30, 40] {
        sign(&mut b, &pkh, &attestation(CHAINS[0], level, 0, 1)).expect("sign");
    }
    drop(b);

    // The old image comes back: refused, with the reason in the status.
    let mut b = boot(SimFlash::from_image(old.clone()), PAGES, 4, guard.clone());
    assert_eq!(
        status(&mut b).store,
        StoreHealth::Refusing(StoreError::RolledBack)
    );
    assert_eq!(
        sign(&mut b, &pkh, &attestation(CHAINS[0], 20, 0, 9)),
        Err(Refusal::Store(StoreError::RolledBack))
    );
    // A blank flash is a rollback too, never a fresh start.
    let mut blank = boot(SimFlash::new(PAGES), PAGES, 4, guard.clone());
    assert_eq!(
        status(&mut blank).store,
        StoreHealth::Refusing(StoreError::RolledBack)
    );

    // Operational boards refuse re-provisioning over the link.
    let store = b.into_store();
    let mut op = pawl_core::board::Board::open(
        store,
        TestEntropy(1),
        pawl_core::board::NoButton,
        Mode::Operational,
        INFO,
    );
    assert_eq!(
        op.handle(Request::Reprovision { erase: false }),
        Response::Refused(Refusal::ProvisioningOnly)
    );

    // In provisioning mode: adopt the image, then import the current watermark.
    let mut b = boot(SimFlash::from_image(old), PAGES, 4, guard.clone());
    assert_eq!(
        b.handle(Request::Reprovision { erase: false }),
        Response::Done
    );
    assert_eq!(status(&mut b).store, StoreHealth::Ok);
    assert_eq!(status(&mut b).keys, 1);
    let id = MarkId {
        chain: ChainId(CHAINS[0]),
        key: pkh,
        kind: MarkKind::Attestation,
    };
    assert_eq!(
        b.handle(Request::ImportWatermark {
            chain: id.chain,
            pkh,
            kind: id.kind,
            level: 44,
            round: u32::MAX,
        }),
        Response::Done
    );
    assert!(sign(&mut b, &pkh, &attestation(CHAINS[0], 44, 0, 3)).is_err());
    sign(&mut b, &pkh, &attestation(CHAINS[0], 45, 0, 3)).expect("above the imported mark");
    // The adopted image now reboots healthy.
    let mut b = reboot(b, 4, &guard);
    assert_eq!(status(&mut b).store, StoreHealth::Ok);

    // Erasing starts over: no keys, healthy, and not a rollback on the next boot.
    assert_eq!(
        b.handle(Request::Reprovision { erase: true }),
        Response::Done
    );
    assert_eq!(status(&mut b).keys, 0);
    let mut b = reboot(b, 4, &guard);
    assert_eq!(status(&mut b).store, StoreHealth::Ok);
    assert_eq!(status(&mut b).keys, 0);
}

/// One simulated hour of signing for four keys (preattestation + attestation every level),
/// measured on the flash and compared with the wear model.
#[test]
fn wear_model_matches_measured_counters() {
    let ahead = NorStoreConfig::DEFAULT_CEILING_AHEAD;
    let pages = 8;
    let guard = SharedGuard::default();
    let mut b = boot(SimFlash::new(pages), pages, ahead, guard);
    let keys: Vec<_> = secrets()
        .iter()
        .take(3)
        .chain(std::iter::once(&secrets()[0]))
        .enumerate()
        .map(|(i, sk)| {
            if i == 3 {
                // A fourth Ed25519 key.
                let sk = pawl_core::keys::SecretBytes::new([0x24; 32])
                    .to_b58(pawl_core::keys::Curve::Ed25519)
                    .to_string();
                import(&mut b, &sk, Policy::default()).0
            } else {
                import(&mut b, sk, Policy::default()).0
            }
        })
        .collect();
    let start = status(&mut b).wear;
    let levels = 600; // one hour at 6 s
    for level in 1..=levels {
        for pkh in &keys {
            sign(&mut b, pkh, &consensus(0x12, 20, CHAINS[0], level, 0, 1)).expect("pre");
            sign(&mut b, pkh, &consensus(0x13, 21, CHAINS[0], level, 0, 1)).expect("att");
        }
        // The seconds between levels: board glue's idle-time work.
        while b.idle().expect("idle") {}
    }
    let end = status(&mut b).wear;
    let signatures = f64::from(levels * 8);
    let records = f64::from(end.records - start.records);
    let model = WearModel {
        region_bytes: (pages * PAGE) as u32,
        page_bytes: PAGE as u32,
        endurance: 10_000,
        keys: 4,
        block_time_s: 6,
        ceiling_ahead: ahead,
        marks_per_key: 2,
        record_bytes: WearModel::CEILING_RECORD_BYTES,
        live_bytes: 0,
    }
    .estimate();
    let per_signature = records / signatures;
    assert!(
        per_signature <= 0.25,
        "{per_signature} writes per signature"
    );
    let predicted = model.writes_per_signature;
    assert!(
        (per_signature - predicted).abs() / predicted < 0.1,
        "measured {per_signature} vs model {predicted}"
    );
    // Bytes per record as measured, against the model's record size (names are 8 records of
    // a different size, a rounding error over an hour).
    let bytes_per_record = (end.bytes_written - start.bytes_written) as f64 / records;
    assert!(
        (bytes_per_record - f64::from(WearModel::CEILING_RECORD_BYTES)).abs() < 8.0,
        "measured {bytes_per_record} bytes per record"
    );
}

/// One request to a virtual board, through the frame codec.
fn ask(vb: &mut pawl_core::sim::VirtualBoard, request: &Request<'_>) -> Response {
    let mut frame = vec![0u8; pawl_core::protocol::MAX_FRAME];
    let mut out = vec![0u8; pawl_core::protocol::MAX_FRAME];
    let mut scratch = vec![0u8; pawl_core::protocol::MAX_FRAME];
    let n =
        pawl_core::protocol::encode_frame(1, request, &mut scratch, &mut frame).expect("encode");
    let m = vb
        .handle_frame(&mut frame[..n - 1], &mut out)
        .expect("frame");
    pawl_core::protocol::decode_frame::<Response>(&mut out[..m - 1])
        .expect("decode")
        .message
}

/// Sign an attestation at `level` on a virtual board.
fn ask_attestation(
    vb: &mut pawl_core::sim::VirtualBoard,
    pkh: pawl_core::keys::PublicKeyHash,
    level: u32,
    byte: u8,
) -> Response {
    let payload = attestation(CHAINS[0], level, 0, byte);
    ask(
        vb,
        &Request::Sign {
            pkh,
            version: pawl_core::keys::SigningVersion::LATEST,
            payload: &payload,
        },
    )
}

#[test]
fn virtual_board_state_survives_reopening() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sk = secrets()[0].clone();
    let (curve, secret) = pawl_core::keys::SecretBytes::from_b58(&sk).expect("sk");
    let pkh = {
        let mut vb =
            pawl_core::sim::VirtualBoard::open(dir.path(), Mode::Provisioning).expect("open");
        // A second process cannot open the same board.
        assert!(pawl_core::sim::VirtualBoard::open(dir.path(), Mode::Provisioning).is_err());
        let pkh = match ask(
            &mut vb,
            &Request::ImportKey {
                curve,
                secret: secret.clone(),
                policy: Policy::default(),
            },
        ) {
            Response::KeyInfo(info) => info.pkh,
            other => panic!("{other:?}"),
        };
        let r = ask_attestation(&mut vb, pkh, 7, 1);
        assert!(matches!(r, Response::Signature(_)), "{r:?}");
        pkh
    };
    let mut vb =
        pawl_core::sim::VirtualBoard::open(dir.path(), Mode::Provisioning).expect("reopen");
    let r = ask_attestation(&mut vb, pkh, 7, 2);
    assert!(
        matches!(r, Response::Refused(Refusal::Watermark(_))),
        "{r:?}"
    );
    // The secret is not in the flash file.
    let flash = std::fs::read(dir.path().join("flash.bin")).expect("flash");
    assert!(!flash.windows(32).any(|w| w == secret.expose()));
}
