//! Issue 13 (the hostile host), findings 1 and 2, the operator's way back
//! (`core/src/board/undo.rs`, `core/src/store/resets.rs`): forget a key's marks on chains it no
//! longer allows, and lower a burned mark — provisioning mode and a press of the button only,
//! durable on the flash store, every refusal leaving board and flash as they were.
#![allow(clippy::cast_possible_truncation)]

mod support;

use pawl_core::board::Board;
use pawl_core::keys::PublicKeyHash;
use pawl_core::policy::Policy;
use pawl_core::protocol::{Mode, Refusal, Request, Response};
use pawl_core::request::ChainId;
use pawl_core::sim::SimFlash;
use pawl_core::sim::flash::PAGE;
use pawl_core::store::{BoardKey, NorStore, NorStoreConfig, Store};
use pawl_core::watermark::{MarkId, MarkKind, WatermarkError};
use support::board::{INFO, SharedButton as Button, TestEntropy, attestation, import, sign};
use support::power::{BOARD_KEY, SharedGuard};

const TZ1: &str = "edsk4FTF78Qf1m2rykGpHqostAiq5gYW4YZEoGUSWBTJr2njsDHSnd";
const MAINNET: [u8; 4] = [0x7a, 0x06, 0xa7, 0x70];
const PAGES: usize = 8;
const AHEAD: u32 = 16;
const TOP: u32 = 0x7fff_ffff;

type UBoard = Board<NorStore<SimFlash, SharedGuard>, TestEntropy, Button>;

struct Rig {
    guard: SharedGuard,
    button: Button,
}

impl Rig {
    fn new() -> Self {
        Rig {
            guard: SharedGuard::default(),
            button: Button::default(),
        }
    }

    fn boot(&self, flash: SimFlash, mode: Mode) -> UBoard {
        let config = NorStoreConfig {
            region: 0..(PAGES * PAGE) as u32,
            ceiling_ahead: AHEAD,
        };
        let store = NorStore::new(flash, config, &BoardKey::new(BOARD_KEY), self.guard.clone())
            .expect("config");
        Board::open(store, TestEntropy(3), self.button.clone(), mode, INFO)
    }

    fn reboot(&self, b: UBoard, mode: Mode) -> UBoard {
        self.boot(b.into_store().into_flash(), mode)
    }
}

fn pinned() -> Policy {
    let mut p = Policy::default();
    p.chains.push(ChainId(MAINNET)).expect("room");
    p
}

fn id(pkh: PublicKeyHash, chain: [u8; 4]) -> MarkId {
    MarkId {
        chain: ChainId(chain),
        key: pkh,
        kind: MarkKind::Attestation,
    }
}

fn lower(b: &mut UBoard, pkh: PublicKeyHash, level: u32, round: u32) -> Response {
    b.handle(Request::LowerWatermark {
        chain: ChainId(MAINNET),
        pkh,
        kind: MarkKind::Attestation,
        level,
        round,
    })
}

/// Marks in RAM and the number of the store's newest record (any flash write moves it):
/// what a refusal must leave as it was.
fn state(b: &UBoard) -> (Vec<String>, u32) {
    let marks = b.watermarks().iter().map(|e| format!("{e:?}")).collect();
    (marks, b.store().seq())
}

/// Finding 2 as filed: one attestation at level and round 2³¹−1 burns the key on its chain.
/// The operator lowers the mark back with a press of the button, in provisioning mode; the key
/// signs again at a normal level, and the lowering survives reboots. Without the press, or in
/// operational mode, the lowering is refused and nothing changes.
#[test]
fn a_burned_mark_is_lowered_with_a_press_only() {
    let rig = Rig::new();
    let mut b = rig.boot(SimFlash::new(PAGES), Mode::Provisioning);
    let (pkh, _) = import(&mut b, TZ1, pinned());
    sign(&mut b, &pkh, &attestation(MAINNET, 100, 0, 1)).expect("a normal attestation");

    // The burn (pressed, so that a jump guard on the device, if any, lets it through).
    rig.button.press.set(true);
    sign(&mut b, &pkh, &attestation(MAINNET, TOP, TOP, 2)).expect("the burn");
    rig.button.press.set(false);
    let mut b = rig.reboot(b, Mode::Provisioning);
    assert!(matches!(
        sign(&mut b, &pkh, &attestation(MAINNET, 101, 0, 3)),
        Err(Refusal::Watermark(WatermarkError::Below { .. }))
    ));

    // No press: refused, board and flash unchanged.
    let before = state(&b);
    let asked = rig.button.asked.get();
    assert_eq!(
        lower(&mut b, pkh, 100, 0),
        Response::Refused(Refusal::NotConfirmed)
    );
    assert_eq!(rig.button.asked.get(), asked + 1, "the button was asked");
    assert_eq!(state(&b), before);

    // Operational mode: refused even with a press, without asking.
    rig.button.press.set(true);
    let mut b = rig.reboot(b, Mode::Operational);
    let before = state(&b);
    let asked = rig.button.asked.get();
    assert_eq!(
        lower(&mut b, pkh, 100, 0),
        Response::Refused(Refusal::ProvisioningOnly)
    );
    assert_eq!(rig.button.asked.get(), asked);
    assert_eq!(state(&b), before);

    // Raising is not lowering; a mark that does not exist cannot be lowered.
    let mut b = rig.reboot(b, Mode::Provisioning);
    assert!(matches!(
        lower(&mut b, pkh, u32::MAX, u32::MAX),
        Response::Refused(Refusal::NotBelowMark { .. })
    ));
    assert!(matches!(
        b.handle(Request::LowerWatermark {
            chain: ChainId([1, 2, 3, 4]),
            pkh,
            kind: MarkKind::Attestation,
            level: 1,
            round: 0
        }),
        Response::Refused(Refusal::NoSuchMark { .. })
    ));

    // Provisioning mode and a press: lowered to where the key really was.
    assert_eq!(lower(&mut b, pkh, 100, 0), Response::Done);
    rig.button.press.set(false);
    assert!(
        matches!(
            sign(&mut b, &pkh, &attestation(MAINNET, 100, 0, 1)),
            Err(Refusal::Watermark(WatermarkError::NotAbove { .. }))
        ),
        "the position itself stays refused"
    );
    sign(&mut b, &pkh, &attestation(MAINNET, 101, 0, 3)).expect("signs again");

    // Durable: after a reboot the burned ceiling does not come back, and nothing at or below
    // what was signed is signable.
    let mut b = rig.reboot(b, Mode::Operational);
    assert!(sign(&mut b, &pkh, &attestation(MAINNET, 101, 0, 4)).is_err());
    assert!(sign(&mut b, &pkh, &attestation(MAINNET, 50, 0, 4)).is_err());
    sign(&mut b, &pkh, &attestation(MAINNET, 101 + AHEAD + 1, 0, 5)).expect("after reboot");
}

/// The lowering holds through page reclaiming: many signatures later (on a store small enough
/// to reclaim its pages several times) and a reboot, the mark is where signing left it.
#[test]
fn a_lowering_survives_page_reclaiming() {
    let rig = Rig::new();
    let mut b = rig.boot(SimFlash::new(PAGES), Mode::Provisioning);
    let (pkh, _) = import(&mut b, TZ1, pinned());
    rig.button.press.set(true);
    sign(&mut b, &pkh, &attestation(MAINNET, TOP, 0, 1)).expect("the burn");
    assert_eq!(lower(&mut b, pkh, 10, 0), Response::Done);
    let mut level = 11;
    let mut erased = 0;
    for i in 0..3000 {
        sign(&mut b, &pkh, &attestation(MAINNET, level, 0, 1)).expect("sign");
        level += AHEAD + 1;
        if i % 7 == 0 {
            erased += b.store().wear().pages_erased;
            b = rig.reboot(b, Mode::Provisioning);
        }
    }
    erased += b.store().wear().pages_erased;
    assert!(erased > PAGES as u32, "pages were reclaimed ({erased})");
    let mut b = rig.reboot(b, Mode::Provisioning);
    sign(&mut b, &pkh, &attestation(MAINNET, level + AHEAD, 0, 1)).expect("signs after reboot");
}

/// Finding 1's remedy: a key's room taken by invented chains is given back once the key is
/// pinned and its other chains' marks forgotten — with a press, in provisioning mode; the
/// marks of chains it still signs for stay. A mark made later under a reused store index is
/// its own.
#[test]
fn marks_of_disallowed_chains_are_forgotten_with_a_press_only() {
    let rig = Rig::new();
    let mut b = rig.boot(SimFlash::new(PAGES), Mode::Provisioning);
    let (pkh, _) = import(&mut b, TZ1, Policy::default());
    // A compromised host burns the any-chain key's quota on invented chains, high.
    for i in 0..5u32 {
        sign(
            &mut b,
            &pkh,
            &attestation((0x5000_0000 + i).to_be_bytes(), TOP, 0, 1),
        )
        .expect("invented");
    }
    sign(&mut b, &pkh, &attestation(MAINNET, 200, 0, 1)).expect("mainnet");
    assert!(matches!(
        sign(&mut b, &pkh, &attestation([9, 9, 9, 9], 1, 0, 1)),
        Err(Refusal::Watermark(WatermarkError::KeyQuota { .. }))
    ));
    // Pin it to mainnet.
    assert!(matches!(
        b.handle(Request::SetPolicy {
            pkh,
            policy: pinned()
        }),
        Response::KeyInfo(_)
    ));
    let forget = Request::ForgetWatermarks { pkh };

    // No press: refused, nothing forgotten.
    let before = state(&b);
    assert_eq!(
        b.handle(forget.clone()),
        Response::Refused(Refusal::NotConfirmed)
    );
    assert_eq!(state(&b), before);
    assert_eq!(b.watermarks().len(), 6);
    // Operational mode: refused.
    rig.button.press.set(true);
    let mut b = rig.reboot(b, Mode::Operational);
    assert_eq!(
        b.handle(forget.clone()),
        Response::Refused(Refusal::ProvisioningOnly)
    );
    assert_eq!(b.watermarks().len(), 6);

    // With a press: the five invented chains go, mainnet stays.
    let mut b = rig.reboot(b, Mode::Provisioning);
    assert_eq!(b.handle(forget), Response::Done);
    let left: Vec<MarkId> = b.watermarks().iter().map(|(i, _)| *i).collect();
    assert_eq!(left, vec![id(pkh, MAINNET)]);
    let mut b = rig.reboot(b, Mode::Provisioning);
    let left: Vec<MarkId> = b.watermarks().iter().map(|(i, _)| *i).collect();
    assert_eq!(left, vec![id(pkh, MAINNET)], "forgotten for good");
    assert!(sign(&mut b, &pkh, &attestation(MAINNET, 200, 0, 2)).is_err());

    // The freed room is the key's again: a block and a preattestation on mainnet take store
    // indices the invented chains had (their ceilings at 2³¹−1 must not follow).
    rig.button.press.set(false);
    let pre = support::board::consensus(0x12, 20, MAINNET, 201, 0, 1);
    sign(&mut b, &pkh, &pre).expect("new entry in freed room");
    let mut b = rig.reboot(b, Mode::Provisioning);
    let pre = support::board::consensus(0x12, 20, MAINNET, 201 + AHEAD + 1, 0, 1);
    sign(&mut b, &pkh, &pre).expect("the reused index carries only its own mark");
}
