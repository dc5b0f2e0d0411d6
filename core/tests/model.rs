//! Property test: random request sequences (keys, chains, kinds, levels, rounds, payloads,
//! identical repeats, reboots) against a small reference model of Octez's watermark rule.
//!
//! Checked after every step:
//! * the board's answer is exactly the model's (sign / repeat the recorded signature / refuse);
//! * never two different signatures for one (chain, key, kind, level, round);
//! * an identical retry gets the byte-identical signature while the board remembers it;
//! * a refusal changes nothing (watermark table and store unchanged);
//! * every released signature verifies with an independent implementation.

mod support;

use std::collections::HashMap;

use pawl_core::digest::blake2b_256;
use pawl_core::keys::{Curve, PublicKey, PublicKeyHash, SecretBytes, Signature};
use pawl_core::policy::Policy;
use pawl_core::protocol::{Mode, Refusal};
use pawl_core::store::MemoryStore;
use proptest::prelude::*;
use support::board::{TestBoard, board, consensus, import, sign};
use support::{unhex, verify_independently};

/// tz1 (Signatory's test key), tz3 (a fixed scalar), tz4 (tezt's tz4_account).
fn keys() -> [String; 3] {
    [
        "edsk4FTF78Qf1m2rykGpHqostAiq5gYW4YZEoGUSWBTJr2njsDHSnd".into(),
        SecretBytes::new([0x42; 32]).to_b58(Curve::P256).to_string(),
        "BLsk1hKAHyGqY9qRbgoSVnjiSmDWpKGjFF3WNQ7BaiaMUA6RMA6Pfq".into(),
    ]
}
const CHAINS: [[u8; 4]; 2] = [[0xb3, 0xd7, 0x9f, 0x99], [0x7a, 0x06, 0xa7, 0x70]];
// ecadlabs/signatory watermark_test.go A1 (a real block), patched per step below.
const BLOCK: &str = "11b3d79f990000000218954ac461a1b7642a78880e485b1db8da1e96f6cac6ee7dae541c7b6a8e66840b0000000069a8c3a3043c218c11c12df01faa1113bb827d7de00cc6f95993e220901ca35ff0cec5954000000021000000010200000004000000020000000000000004ffffffff0000000400000000ecbf5c99c96392b252bb846394c12c422e0cb2e050aa018dcc2a880f9c9c636858335430566f4b95401c110f33e74d3a324f83ad6003ed9d5e93ce617fa11e4400000000d7d4b0aea9d000000000";

#[derive(Clone, Debug)]
enum Step {
    Sign {
        key: usize,
        chain: usize,
        kind: u8,
        level: u32,
        round: u32,
        payload: u8,
    },
    RepeatLast(usize),
    Reboot,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => (0..3usize, 0..2usize, 0..3u8, 0..5u32, 0..3u32, 0..3u8)
            .prop_map(|(key, chain, kind, level, round, payload)| Step::Sign { key, chain, kind, level, round, payload }),
        3 => (0..8usize).prop_map(Step::RepeatLast),
        1 => Just(Step::Reboot),
    ]
}

fn payload(
    key_is_bls: bool,
    chain: [u8; 4],
    kind: u8,
    level: u32,
    round: u32,
    byte: u8,
) -> Vec<u8> {
    match kind {
        0 => {
            let mut b = unhex(BLOCK);
            b[1..5].copy_from_slice(&chain);
            b[5..9].copy_from_slice(&level.to_be_bytes());
            b[116..120].copy_from_slice(&round.to_be_bytes()); // last fitness element (83 + 33)
            b[120] = byte; // context hash
            b
        }
        1 => consensus(
            0x12,
            if key_is_bls { 40 } else { 20 },
            chain,
            level,
            round,
            byte,
        ),
        _ => consensus(
            0x13,
            if key_is_bls { 41 } else { 21 },
            chain,
            level,
            round,
            byte,
        ),
    }
}

/// (chain, key index, kind 0/1/2).
type Id = ([u8; 4], usize, u8);
/// (chain, key index, kind, level, round).
type Position = ([u8; 4], usize, u8, u32, u32);
/// A mark: level, round, and the request hash and signature while the board remembers them.
type ModelMark = (u32, u32, Option<([u8; 32], Signature)>);
/// A sent request: key index, (chain, kind, level, round), bytes.
type Sent = (usize, ([u8; 4], u8, u32, u32), Vec<u8>);

/// The reference model: per (chain, key, kind): (level, round, Some((hash, signature))).
#[derive(Default)]
struct Model {
    marks: HashMap<Id, ModelMark>,
}

enum Expect {
    Fresh,
    Repeat(Signature),
    Refuse,
}

impl Model {
    fn expect(&self, id: Id, level: u32, round: u32, hash: [u8; 32]) -> Expect {
        match self.marks.get(&id) {
            None => Expect::Fresh,
            Some((l, r, _)) if (level, round) > (*l, *r) => Expect::Fresh,
            Some((l, r, Some((h, s)))) if (level, round) == (*l, *r) && *h == hash => {
                Expect::Repeat(*s)
            }
            Some(_) => Expect::Refuse,
        }
    }
}

fn snapshot(b: &TestBoard) -> (String, u32) {
    (
        format!("{:?}", b.watermarks().iter().collect::<Vec<_>>()),
        b.store().mark_writes,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn board_matches_reference_model(steps in proptest::collection::vec(step(), 1..60)) {
        let mut b = board(MemoryStore::new(), Mode::Provisioning);
        let keys: Vec<(PublicKeyHash, PublicKey)> = keys().iter().map(|sk| import(&mut b, sk, Policy::default())).collect();
        let mut model = Model::default();
        let mut released: HashMap<Position, (Vec<u8>, Signature)> = HashMap::new();
        let mut history: Vec<Sent> = Vec::new();

        for s in steps {
            let (key, (chain, kind, level, round), bytes) = match s {
                Step::Reboot => {
                    b = board(b.into_store(), Mode::Operational);
                    for m in model.marks.values_mut() {
                        m.2 = None; // recorded signatures live in RAM only
                    }
                    continue;
                }
                Step::RepeatLast(back) => match history.len().checked_sub(back + 1).and_then(|i| history.get(i)) {
                    Some(h) => h.clone(),
                    None => continue,
                },
                Step::Sign { key, chain, kind, level, round, payload: p } => {
                    let chain = CHAINS[chain];
                    (key, (chain, kind, level, round), payload(key == 2, chain, kind, level, round, p))
                }
            };
            history.push((key, (chain, kind, level, round), bytes.clone()));
            let id = (chain, key, kind);
            let hash = blake2b_256(&bytes);
            let before = snapshot(&b);
            let got = sign(&mut b, &keys[key].0, &bytes);
            match (model.expect(id, level, round, hash), got) {
                (Expect::Fresh, Ok(sig)) => {
                    prop_assert!(verify_independently(&keys[key].1, &bytes, &sig));
                    model.marks.insert(id, (level, round, Some((hash, sig))));
                    let slot = (chain, key, kind, level, round);
                    if let Some((prev_bytes, prev_sig)) = released.get(&slot) {
                        // Same position signed again is only possible for the same bytes…
                        prop_assert_eq!(prev_bytes, &bytes, "two payloads signed at one position");
                        // …and then the signature must be the same.
                        prop_assert_eq!(prev_sig, &sig, "two signatures for one position");
                    }
                    released.insert(slot, (bytes.clone(), sig));
                }
                (Expect::Repeat(expected), Ok(sig)) => {
                    prop_assert_eq!(sig, expected, "identical retry must be byte-identical");
                    prop_assert_eq!(snapshot(&b), before, "a repeat writes nothing");
                }
                (Expect::Refuse, Err(Refusal::Watermark(_))) => {
                    prop_assert_eq!(snapshot(&b), before, "refusal changed state");
                }
                (_, got) => prop_assert!(false, "model and board disagree at {:?}: board {:?}", (key, chain, kind, level, round), got),
            }
        }
    }
}
