//! Issue 13 (the hostile host), finding 2, the guard (`core/src/board/jump.rs`): a consensus
//! request far above the key's mark — the 2³¹−1 burn — needs a press of the board's button.

mod support;

use pawl_core::board::{Board, DEFAULT_JUMP_LIMIT};
use pawl_core::policy::Policy;
use pawl_core::protocol::{Mode, Refusal, Request, Response};
use pawl_core::request::ChainId;
use pawl_core::store::{MemoryStore, Store, StoredKey};
use pawl_core::watermark::MarkKind;
use support::board::{INFO, SharedButton as Button, TestEntropy, attestation, import, sign};

const TZ1: &str = "edsk4FTF78Qf1m2rykGpHqostAiq5gYW4YZEoGUSWBTJr2njsDHSnd";
const MAINNET: [u8; 4] = [0x7a, 0x06, 0xa7, 0x70];
const TOP: u32 = 0x7fff_ffff;

type JBoard = Board<MemoryStore, TestEntropy, Button>;

fn boot(store: MemoryStore, button: &Button) -> JBoard {
    Board::open(
        store,
        TestEntropy(5),
        button.clone(),
        Mode::Provisioning,
        INFO,
    )
}

fn pinned() -> Policy {
    let mut p = Policy::default();
    p.chains.push(ChainId(MAINNET)).expect("room");
    p
}

fn state(b: &JBoard) -> (Vec<String>, Vec<String>, u32) {
    support::board::memory_state(b)
}

/// The burn request on a key that has a mark: refused without the press, naming the limit,
/// nothing changed; the key goes on signing at its real levels. With the press (the operator
/// means it) it is signed.
#[test]
fn the_burn_needs_the_button_on_a_key_with_a_mark() {
    let button = Button::default();
    let mut b = boot(MemoryStore::new(), &button);
    let (pkh, _) = import(&mut b, TZ1, pinned());
    sign(&mut b, &pkh, &attestation(MAINNET, 100, 0, 1)).expect("first");

    let before = state(&b);
    let refusal = sign(&mut b, &pkh, &attestation(MAINNET, TOP, TOP, 2)).expect_err("burn");
    assert_eq!(
        refusal,
        Refusal::TooFarAhead {
            kind: MarkKind::Attestation,
            level: TOP,
            mark_level: 100,
            limit: DEFAULT_JUMP_LIMIT,
        }
    );
    assert!(refusal.to_string().contains("1000000 levels"), "{refusal}");
    assert_eq!(button.asked.get(), 1, "the button was asked");
    assert_eq!(state(&b), before);
    sign(&mut b, &pkh, &attestation(MAINNET, 101, 0, 3)).expect("not burned");

    button.press.set(true);
    sign(&mut b, &pkh, &attestation(MAINNET, TOP, TOP, 2)).expect("confirmed on the device");
}

/// A baker back after weeks offline is not stopped: up to the limit no button is asked; one
/// level past it is. A key with no mark yet signs as before, wherever it starts.
#[test]
fn ordinary_gaps_sign_without_the_button() {
    let button = Button::default();
    let mut b = boot(MemoryStore::new(), &button);
    let (pkh, _) = import(&mut b, TZ1, pinned());
    sign(&mut b, &pkh, &attestation(MAINNET, 9_000_000, 0, 1)).expect("no mark yet");
    // Five weeks at 6 s per level.
    let back = 9_000_000 + 35 * 14_400;
    sign(&mut b, &pkh, &attestation(MAINNET, back, 0, 1)).expect("back from holiday");
    sign(
        &mut b,
        &pkh,
        &attestation(MAINNET, back + DEFAULT_JUMP_LIMIT, 0, 1),
    )
    .expect("at J");
    assert_eq!(button.asked.get(), 0);
    let far = back + 2 * DEFAULT_JUMP_LIMIT + 1;
    assert!(matches!(
        sign(&mut b, &pkh, &attestation(MAINNET, far, 0, 1)),
        Err(Refusal::TooFarAhead { .. })
    ));
}

/// The limit is per key, set in provisioning mode, stored with the key (survives a reboot and
/// a policy change); records from before it existed load with the default.
#[test]
fn the_limit_is_set_per_key_and_stored() {
    let button = Button::default();
    let mut b = boot(MemoryStore::new(), &button);
    let (pkh, _) = import(&mut b, TZ1, pinned());
    assert_eq!(
        b.handle(Request::SetJumpLimit {
            pkh,
            levels: Some(10)
        }),
        Response::Done
    );
    assert!(matches!(
        b.handle(Request::SetPolicy {
            pkh,
            policy: pinned()
        }),
        Response::KeyInfo(_)
    ));
    let mut b = boot(b.into_store(), &button);
    sign(&mut b, &pkh, &attestation(MAINNET, 100, 0, 1)).expect("first");
    sign(&mut b, &pkh, &attestation(MAINNET, 110, 0, 1)).expect("10 levels");
    assert!(matches!(
        sign(&mut b, &pkh, &attestation(MAINNET, 121, 0, 1)),
        Err(Refusal::TooFarAhead { limit: 10, .. })
    ));
    // Operational mode cannot change it.
    let mut op = Board::open(
        b.into_store(),
        TestEntropy(5),
        button.clone(),
        Mode::Operational,
        INFO,
    );
    assert_eq!(
        op.handle(Request::SetJumpLimit { pkh, levels: None }),
        Response::Refused(Refusal::ProvisioningOnly)
    );
    // A stored key without the field is the default.
    let mut store = op.into_store();
    let mut found = None;
    store
        .load(&mut |r| {
            if let pawl_core::store::Record::Key { key, .. } = r {
                found = Some(key.clone());
            }
            Ok(())
        })
        .expect("load");
    let key: StoredKey = found.expect("key");
    assert_eq!(key.jump_limit, Some(10));
    let mut buf = [0u8; 256];
    // A record from before the guard: it ends where `jump_limit` (and `duty`, appended
    // later) would begin — two `None`s, one byte each.
    let old = StoredKey {
        jump_limit: None,
        duty: None,
        ..key
    };
    let bytes = postcard::to_slice(&old, &mut buf).expect("encode").to_vec();
    let decoded = StoredKey::decode(&bytes[..bytes.len() - 2]).expect("old record");
    assert_eq!(decoded.jump_limit, None);
}
