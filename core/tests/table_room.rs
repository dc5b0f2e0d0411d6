//! Issue 13 (the hostile host), finding 1: invented chains must not fill the watermark table
//! for everyone (`core/src/board/room.rs`). Each key slot keeps room for its first chain;
//! each key has a quota.

mod support;

use pawl_core::board::{ANY_CHAIN_QUOTA, KEY_MINIMUM, MAX_MARKS};
use pawl_core::policy::Policy;
use pawl_core::protocol::{MAX_KEYS, Mode, Refusal, Request, Response};
use pawl_core::request::ChainId;
use pawl_core::store::MemoryStore;
use pawl_core::watermark::{MarkKind, WatermarkError};
use support::board::{TestBoard, attestation, board, consensus, import, sign};

const TZ1: &str = "edsk4FTF78Qf1m2rykGpHqostAiq5gYW4YZEoGUSWBTJr2njsDHSnd";
const TZ1_B: &str = "edsk3gUfUPyBSfrS9CCgmCiQsTCHGkviBDusMxDJstFtojtc1zcpsh";
const MAINNET: [u8; 4] = [0x7a, 0x06, 0xa7, 0x70];

/// A `0x11` block header at `level`, round 0 (docs/protocol.md §3.1).
fn block(chain: [u8; 4], level: u32) -> Vec<u8> {
    let mut v = vec![0x11];
    v.extend_from_slice(&chain);
    v.extend_from_slice(&level.to_be_bytes());
    v.push(0); // proto level
    v.extend_from_slice(&[0x22; 32]); // predecessor
    v.extend_from_slice(&1_700_000_000u64.to_be_bytes());
    v.push(4); // validation passes
    v.extend_from_slice(&[0x33; 32]); // operations hash
    let mut fitness = Vec::new();
    for element in [
        &[2u8][..],
        &level.to_be_bytes(),
        &[],
        &0u32.to_be_bytes(),
        &0u32.to_be_bytes(),
    ] {
        fitness.extend_from_slice(&u32::try_from(element.len()).expect("short").to_be_bytes());
        fitness.extend_from_slice(element);
    }
    v.extend_from_slice(&u32::try_from(fitness.len()).expect("short").to_be_bytes());
    v.extend(fitness);
    v.extend_from_slice(&[0x44; 64]); // context, payload hash
    v.extend_from_slice(&0u32.to_be_bytes()); // payload round
    v.extend_from_slice(&[0x55; 8]); // proof-of-work nonce
    v.push(0); // no seed nonce hash
    v.push(0); // per-block votes
    v
}

fn pinned(chain: [u8; 4]) -> Policy {
    let mut p = Policy::default();
    p.chains.push(ChainId(chain)).expect("room");
    p
}

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

fn invented(i: u32) -> [u8; 4] {
    (0x5000_0000 + i).to_be_bytes()
}

/// The finding as filed: a compromised host sends consensus requests on made-up chains for a
/// key allowed any chain, enough to fill the table. A second key's first block must still be
/// signed, before and after a reboot.
#[test]
fn invented_chains_do_not_lock_out_another_keys_first_block() {
    let mut b = board(MemoryStore::new(), Mode::Provisioning);
    let (any, _) = import(&mut b, TZ1, Policy::default());
    let (baker, _) = import(&mut b, TZ1_B, pinned(MAINNET));

    let mut accepted = 0;
    let mut last = None;
    for i in 0..u32::try_from(MAX_MARKS).expect("small") {
        match sign(&mut b, &any, &attestation(invented(i), 5, 0, 0)) {
            Ok(_) => accepted += 1,
            Err(r) => last = Some(r),
        }
    }
    // A refusal leaves state as it was.
    let before = state(&b);
    assert!(sign(&mut b, &any, &attestation(invented(999), 5, 0, 0)).is_err());
    assert_eq!(state(&b), before);

    // The baker's first block, preattestation and attestation on mainnet.
    sign(&mut b, &baker, &block(MAINNET, 100)).expect("first block");
    sign(&mut b, &baker, &consensus(0x12, 20, MAINNET, 100, 0, 1)).expect("preattestation");
    sign(&mut b, &baker, &attestation(MAINNET, 100, 0, 1)).expect("attestation");

    assert_eq!(
        accepted, ANY_CHAIN_QUOTA,
        "the any-chain key gets its quota, no more"
    );
    // The refusal names the key's quota.
    let refusal = last.expect("refused past the quota");
    assert_eq!(
        refusal,
        Refusal::Watermark(WatermarkError::KeyQuota { used: 6, quota: 6 })
    );
    assert!(refusal.to_string().contains("6 of its 6"), "{refusal}");

    // After a reboot the same: a third key added later still finds room.
    let mut b = board(b.into_store(), Mode::Provisioning);
    assert!(sign(&mut b, &any, &attestation(invented(1000), 5, 0, 0)).is_err());
    sign(&mut b, &baker, &block(MAINNET, 101)).expect("next block");
}

/// Every key slot keeps its minimum, whatever the others do. Half the keys are pinned to four
/// chains (mainnet first), half allowed any chain; each, as it arrives, grabs all it can on
/// chains other than mainnet. Afterwards every pinned key still signs block, preattestation
/// and attestation on its first chain, and every any-chain key got at least its minimum
/// (those entries are its own to waste: invented chains lock out only the key they were
/// signed for, which is why keys are pinned by default).
#[test]
fn every_key_slot_keeps_its_minimum() {
    let mut b = board(MemoryStore::new(), Mode::Provisioning);
    let mut keys = Vec::new();
    for i in 0..MAX_KEYS {
        let is_pinned = i % 2 == 0;
        let policy = if is_pinned {
            let mut p = pinned(MAINNET);
            for c in 1..4u32 {
                p.chains.push(ChainId(invented(c))).expect("room");
            }
            p
        } else {
            Policy::default()
        };
        let pkh = match b.handle(Request::GenerateKey {
            curve: pawl_core::keys::Curve::Ed25519,
            policy,
        }) {
            Response::KeyInfo(info) => info.pkh,
            other => panic!("generate: {other:?}"),
        };
        keys.push((pkh, is_pinned));
        for c in 1..40u32 {
            for magic in [0x11u8, 0x12, 0x13] {
                let payload = if magic == 0x11 {
                    block(invented(c), 3)
                } else {
                    consensus(magic, 20 + (magic - 0x12), invented(c), 3, 0, 0)
                };
                let _ = sign(&mut b, &pkh, &payload);
            }
        }
    }
    for (pkh, is_pinned) in &keys {
        if *is_pinned {
            sign(&mut b, pkh, &block(MAINNET, 7)).expect("first block");
            sign(&mut b, pkh, &consensus(0x12, 20, MAINNET, 7, 0, 0)).expect("preattestation");
            sign(&mut b, pkh, &attestation(MAINNET, 7, 0, 0)).expect("attestation");
        } else {
            let held = b
                .watermarks()
                .iter()
                .filter(|(id, _)| id.key == *pkh)
                .count();
            assert!(held >= KEY_MINIMUM, "{held}");
        }
    }
    assert_eq!(b.watermarks().len(), MAX_MARKS, "the shared room was used");
}

/// `ImportWatermark` takes room under the same rule.
#[test]
fn import_is_held_to_the_quota() {
    let mut b = board(MemoryStore::new(), Mode::Provisioning);
    let (any, _) = import(&mut b, TZ1, Policy::default());
    for i in 0..u32::try_from(ANY_CHAIN_QUOTA).expect("small") {
        let r = b.handle(Request::ImportWatermark {
            chain: ChainId(invented(i)),
            pkh: any,
            kind: MarkKind::Block,
            level: 1,
            round: 0,
        });
        assert_eq!(r, Response::Done);
    }
    let before = state(&b);
    let r = b.handle(Request::ImportWatermark {
        chain: ChainId(MAINNET),
        pkh: any,
        kind: MarkKind::Block,
        level: 1,
        round: 0,
    });
    assert_eq!(
        r,
        Response::Refused(Refusal::Watermark(WatermarkError::KeyQuota {
            used: 6,
            quota: 6
        }))
    );
    assert_eq!(state(&b), before);
}
