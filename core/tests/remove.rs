//! Removing a key (`Request::RemoveKey`, `core/src/board/duty.rs`, the store's sealed empty
//! key record): the key is gone across reboots and its slot is reused, its marks stay and
//! still guard it if it comes back, a removed key's marks are forgotten only with the button,
//! and a power cut leaves the key either there or gone.

mod support;

use pawl_core::board::Board;
use pawl_core::policy::Policy;
use pawl_core::protocol::{Mode, Refusal, Request, Response};
use pawl_core::request::{ChainId, RequestKind};
use pawl_core::sim::SimFlash;
use pawl_core::store::{BoardKey, NorStore, NorStoreConfig};
use support::board::{INFO, SharedButton, TestEntropy, attestation, import, sign};
use support::power::SharedGuard;

const TZ1: &str = "edsk4FTF78Qf1m2rykGpHqostAiq5gYW4YZEoGUSWBTJr2njsDHSnd";
const TZ2: &str = "spsk1zkqrmst1yg2c4xi3crWcZPqgdc9KtPtb9SAZWYHAdiQzdHy7j";
const TZ4: &str = "BLsk1hKAHyGqY9qRbgoSVnjiSmDWpKGjFF3WNQ7BaiaMUA6RMA6Pfq";
const CHAIN: [u8; 4] = [0x7a, 0x06, 0xa7, 0x70];
const PAGES: usize = 8;

type RBoard = Board<NorStore<SimFlash, SharedGuard>, TestEntropy, SharedButton>;

fn boot(flash: SimFlash, guard: &SharedGuard, button: &SharedButton, mode: Mode) -> RBoard {
    let config = NorStoreConfig {
        region: 0..u32::try_from(PAGES * 4096).expect("fits"),
        ceiling_ahead: 0,
    };
    let store =
        NorStore::new(flash, config, &BoardKey::new([7; 32]), guard.clone()).expect("config");
    Board::open(store, TestEntropy(11), button.clone(), mode, INFO)
}

fn reboot(b: RBoard, guard: &SharedGuard, button: &SharedButton, mode: Mode) -> RBoard {
    boot(b.into_store().into_flash(), guard, button, mode)
}

fn pinned(kinds: &[RequestKind]) -> Policy {
    let mut p = Policy::default();
    p.chains.push(ChainId(CHAIN)).expect("room");
    if !kinds.is_empty() {
        p.kinds = kinds
            .iter()
            .fold(pawl_core::request::KindSet::EMPTY, |s, k| s.with(*k));
    }
    p
}

fn keys(b: &mut RBoard) -> Vec<(String, Policy)> {
    match b.handle(Request::ListKeys) {
        Response::Keys(k) => k
            .iter()
            .map(|k| (k.pkh.to_b58().to_string(), k.policy.clone()))
            .collect(),
        other => panic!("{other:?}"),
    }
}

fn marks(b: &RBoard) -> Vec<String> {
    b.watermarks().iter().map(|e| format!("{e:?}")).collect()
}

#[test]
fn a_removed_key_is_gone_its_slot_reused_and_its_marks_kept() {
    let (guard, button) = (SharedGuard::default(), SharedButton::default());
    let mut b = boot(SimFlash::new(PAGES), &guard, &button, Mode::Provisioning);
    let (k1, _) = import(&mut b, TZ1, pinned(&[]));
    let (k2, _) = import(&mut b, TZ2, pinned(&[RequestKind::Attestation]));
    let (k3, _) = import(&mut b, TZ4, pinned(&[]));
    sign(&mut b, &k2, &attestation(CHAIN, 500, 0, 1)).expect("k2 signs");

    // The middle key goes.
    assert_eq!(b.handle(Request::RemoveKey { pkh: k2 }), Response::Done);
    assert_eq!(
        sign(&mut b, &k2, &attestation(CHAIN, 600, 0, 1)),
        Err(Refusal::UnknownKey { pkh: k2 })
    );
    // A new key takes the free slot (not the last key's); a policy change on it is stored in
    // that slot.
    let k4 = match b.handle(Request::GenerateKey {
        curve: pawl_core::keys::Curve::Ed25519,
        policy: pinned(&[]),
    }) {
        Response::KeyInfo(k) => k.pkh,
        other => panic!("{other:?}"),
    };
    let narrowed = pinned(&[RequestKind::Attestation, RequestKind::Preattestation]);
    assert!(matches!(
        b.handle(Request::SetPolicy {
            pkh: k4,
            policy: narrowed.clone()
        }),
        Response::KeyInfo(_)
    ));
    let before = keys(&mut b);
    let mut b = reboot(b, &guard, &button, Mode::Provisioning);
    assert_eq!(keys(&mut b), before, "the keys after a reboot");
    let names: Vec<String> = before.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(
        names,
        [k1, k4, k3].map(|k| k.to_b58().to_string()),
        "slot order: the new key in the removed key's slot"
    );
    assert_eq!(before[1].1, narrowed);

    // k2 comes back: its old mark still holds.
    let (again, _) = import(&mut b, TZ2, pinned(&[RequestKind::Attestation]));
    assert_eq!(again, k2);
    assert!(matches!(
        sign(&mut b, &k2, &attestation(CHAIN, 500, 0, 9)),
        Err(Refusal::Watermark(_))
    ));
    sign(&mut b, &k2, &attestation(CHAIN, 501, 0, 9)).expect("above its old mark");
}

#[test]
fn removal_is_provisioning_only_and_a_removed_keys_marks_go_only_with_the_button() {
    let (guard, button) = (SharedGuard::default(), SharedButton::default());
    let mut b = boot(SimFlash::new(PAGES), &guard, &button, Mode::Provisioning);
    let (k1, _) = import(&mut b, TZ1, pinned(&[]));
    sign(&mut b, &k1, &attestation(CHAIN, 70, 0, 1)).expect("signs");

    let mut op = reboot(b, &guard, &button, Mode::Operational);
    let before = (keys(&mut op), marks(&op));
    assert_eq!(
        op.handle(Request::RemoveKey { pkh: k1 }),
        Response::Refused(Refusal::ProvisioningOnly)
    );
    assert_eq!((keys(&mut op), marks(&op)), before);

    let mut b = reboot(op, &guard, &button, Mode::Provisioning);
    assert_eq!(b.handle(Request::RemoveKey { pkh: k1 }), Response::Done);
    let kept = marks(&b);
    assert_eq!(kept.len(), 1, "the removed key's mark stays: {kept:?}");
    // Without a press nothing goes; with one, every mark of the removed key goes.
    assert_eq!(
        b.handle(Request::ForgetWatermarks { pkh: k1 }),
        Response::Refused(Refusal::NotConfirmed)
    );
    assert_eq!(marks(&b), kept);
    button.press.set(true);
    assert_eq!(
        b.handle(Request::ForgetWatermarks { pkh: k1 }),
        Response::Done
    );
    assert!(marks(&b).is_empty());
    let mut b = reboot(b, &guard, &button, Mode::Provisioning);
    assert!(marks(&b).is_empty());
    assert!(
        keys(&mut b).is_empty(),
        "the removed key came back after a reboot"
    );
}

/// One record: a power cut at every flash step of a removal (clean and torn) leaves the key
/// whole or gone, the other key untouched, and a refusal changes nothing in RAM.
#[test]
fn a_power_cut_leaves_the_key_there_or_gone() {
    let (guard, button) = (SharedGuard::default(), SharedButton::default());
    let mut b = boot(SimFlash::new(PAGES), &guard, &button, Mode::Provisioning);
    let (k1, _) = import(&mut b, TZ1, pinned(&[]));
    let (k2, _) = import(&mut b, TZ2, pinned(&[]));
    let all = keys(&mut b);
    let image = b.into_store().into_flash().image().to_vec();
    let floor = guard.value.get();
    let (mut gone, mut kept) = (0u32, 0u32);
    for torn in [false, true] {
        for at in 0.. {
            // The guard as the image left it (an earlier run's write advanced the shared one).
            let guard = SharedGuard::default();
            guard.value.set(floor);
            let mut flash = SimFlash::from_image(image.clone());
            flash.cut_after(at, torn);
            let mut b = boot(flash, &guard, &button, Mode::Provisioning);
            let answer = b.handle(Request::RemoveKey { pkh: k2 });
            if answer == Response::Done {
                let mut b = reboot(b, &guard, &button, Mode::Provisioning);
                assert_eq!(keys(&mut b), vec![all[0].clone()], "done is durable");
                break;
            }
            assert_eq!(keys(&mut b), all, "cut at {at}: a refusal changes nothing");
            let after = b.into_store().into_flash().image().to_vec();
            let mut b = boot(
                SimFlash::from_image(after),
                &guard,
                &button,
                Mode::Provisioning,
            );
            let left = keys(&mut b);
            assert_eq!(left[0], all[0], "cut at {at}: {k1} damaged");
            match left.len() {
                2 => kept += 1,
                1 => gone += 1,
                n => panic!("cut at {at} (torn {torn}): {n} keys"),
            }
            assert!(at < 2_000, "the removal never completes");
        }
    }
    assert!(
        kept > 0,
        "some cuts leave the key: {gone} gone, {kept} kept"
    );
}
