//! A hostile host against the CometBFT family: thousands of random requests — votes and
//! proposals near the marks, other blocks, timestamp-only changes, byte flips, truncations,
//! extensions that belong or do not, chain re-pins, restarts — with three invariants checked
//! on every answer, by this file's own reading of the bytes (fixed offsets of the
//! tendermint-rs templates), never by pawl's reader:
//!
//! 1. at most one signature is ever released per (key, chain, height, round, step) — Ed25519
//!    is deterministic, so a second one means a second message was signed there;
//! 2. a new signature is only ever released above every position signed before for that key
//!    and chain (across restarts too);
//! 3. every signature verifies (OpenSSL) over the bytes sent, or is the recorded one; a
//!    refusal leaves the board as it was; nothing panics.
#![allow(clippy::cast_possible_truncation, clippy::std_instead_of_core)]

mod support;

use std::collections::BTreeMap;

use pawl_core::keys::{Curve, PublicKey, PublicKeyHash, SecretBytes, Signature};
use pawl_core::policy::Policy;
use pawl_core::protocol::{Mode, Response};
use pawl_core::store::MemoryStore;
use support::board::{TestBoard, board, import};
use support::cometbft::{patched, proposal, set_chain, state, v, verifies, vote};
use support::power::Rng;

const CHAINS: [&str; 2] = ["cosmoshub-4", "osmosis-1"];

/// Where a signature sits: key, chain, height, round, step.
type Pos = (PublicKeyHash, &'static str, u32, u32, u8);

struct Run {
    board: TestBoard,
    keys: Vec<(PublicKeyHash, PublicKey)>,
    /// The chain each key is pinned to.
    pinned: BTreeMap<PublicKeyHash, &'static str>,
    released: BTreeMap<Pos, Signature>,
    highest: BTreeMap<(PublicKeyHash, &'static str), (u32, u32, u8)>,
    templates: [[Vec<u8>; 3]; 2],
    extension: Vec<u8>,
    signed: u32,
    retries: u32,
}

impl Run {
    fn snapshot(&mut self, pkh: &PublicKeyHash) -> (Vec<String>, Vec<String>, u32, String) {
        let (m, s, w) = support::board::memory_state(&self.board);
        (m, s, w, format!("{:?}", state(&mut self.board, pkh)))
    }

    fn step(&mut self, rng: &mut Rng) {
        let (pkh, pk) = self.keys[rng.below(self.keys.len() as u64) as usize];
        match rng.below(100) {
            0..2 => {
                let chain = CHAINS[rng.below(2) as usize];
                assert!(matches!(
                    set_chain(&mut self.board, &pkh, chain),
                    Response::KeyInfo(_)
                ));
                self.pinned.insert(pkh, chain);
                return;
            }
            2..4 => {
                let store = core::mem::replace(
                    &mut self.board,
                    board(MemoryStore::new(), Mode::Provisioning),
                )
                .into_store();
                self.board = board(store, Mode::Provisioning);
                return;
            }
            _ => {}
        }
        let chain = self.pinned[&pkh];
        // Which bytes: the template of the key's chain, or the other chain's (refused).
        let c = if rng.below(20) == 0 {
            1 - chain_index(chain)
        } else {
            chain_index(chain)
        };
        let step = 1 + rng.below(3) as u8;
        let (h, r, _) = self
            .highest
            .get(&(pkh, chain))
            .copied()
            .unwrap_or((50, 0, 1));
        let height = (h + rng.below(4) as u32).saturating_sub(1).max(1);
        let round = if rng.below(3) == 0 {
            r + rng.below(2) as u32
        } else {
            rng.below(3) as u32
        };
        let block = 1 + rng.below(3) as u8;
        let mut bytes = patched(
            &self.templates[c][usize::from(step - 1)],
            height,
            round,
            block,
        );
        // A timestamp-only change: the low byte of the seconds varint (tag, length, `08`, then
        // the seconds), keeping it a continuation byte.
        let ts = bytes.iter().rposition(|&b| b == 0x08).expect("seconds tag") + 1;
        if rng.below(3) == 0 {
            bytes[ts] = 0x80 | rng.below(128) as u8;
        }
        let mut mutated = false;
        match rng.below(20) {
            0 => {
                let i = rng.below(bytes.len() as u64) as usize;
                bytes[i] ^= 1 << rng.below(8);
                mutated = true;
            }
            1 => {
                let n = rng.below(bytes.len() as u64) as usize;
                bytes.truncate(n);
                mutated = true;
            }
            _ => {}
        }
        let extension = (step == 3 && rng.below(4) == 0).then(|| {
            let mut e = self.extension.clone();
            e[17..25].copy_from_slice(&u64::from(height + rng.below(2) as u32).to_le_bytes());
            e
        });
        let before = self.snapshot(&pkh);
        let answer = if step == 1 {
            proposal(&mut self.board, &pkh, &bytes).map(|(s, t)| (s, t, None))
        } else {
            vote(&mut self.board, &pkh, &bytes, extension.as_deref())
        };
        let Ok((sig, timestamp, ext_sig)) = answer else {
            assert_eq!(self.snapshot(&pkh), before, "a refusal changed the board");
            return;
        };
        // What was signed, read at the template's fixed offsets.
        assert!(
            !mutated || bytes.len() > 21,
            "a truncated request was signed"
        );
        let read_height = u64::from_le_bytes(bytes[4..12].try_into().expect("8"));
        let read_round = u64::from_le_bytes(bytes[13..21].try_into().expect("8"));
        let read_step = match bytes[2] {
            32 => 1,
            1 => 2,
            2 => 3,
            other => panic!("signed a message of type {other}: {bytes:02x?}"),
        };
        let pos: Pos = (pkh, chain, read_height as u32, read_round as u32, read_step);
        assert_eq!(
            c,
            chain_index(chain),
            "signed for another chain than the pin"
        );
        if let Some(ext) = &extension {
            assert!(
                verifies(&pk, ext, &ext_sig.expect("extension signed")),
                "extension {ext:02x?} with {bytes:02x?}"
            );
        }
        match self.released.get(&pos) {
            Some(recorded) => {
                assert_eq!(*recorded, sig, "two signatures at {pos:?}: a double sign");
                self.retries += 1;
            }
            None => {
                assert!(
                    timestamp.is_none(),
                    "a recorded timestamp with a new signature"
                );
                assert!(
                    verifies(&pk, &bytes, &sig),
                    "a signature that does not verify"
                );
                let key = (pkh, chain);
                let at = (pos.2, pos.3, pos.4);
                if let Some(high) = self.highest.get(&key) {
                    assert!(at > *high, "signed {at:?} at or below {high:?}");
                }
                self.highest.insert(key, at);
                self.released.insert(pos, sig);
                self.signed += 1;
            }
        }
    }
}

fn chain_index(chain: &str) -> usize {
    CHAINS.iter().position(|c| *c == chain).expect("chain")
}

/// The templates for `chain`: the vectors' bytes with the chain id replaced (same length
/// ids only: `osmosis-1` is two bytes shorter, so its templates come from their own vector).
fn templates(chain: &str) -> [Vec<u8>; 3] {
    let names = ["proposal_100_1_pol_0", "prevote_100_1", "precommit_100_1"];
    names.map(|n| {
        let bytes = v(n);
        if chain == CHAINS[0] {
            return bytes;
        }
        // Rebuild with another chain id: the last field is `tag len id`.
        let old = CHAINS[0].len();
        let mut out = bytes[1..bytes.len() - old - 1].to_vec();
        out.push(chain.len() as u8);
        out.extend_from_slice(chain.as_bytes());
        let mut framed = vec![out.len() as u8];
        framed.extend_from_slice(&out);
        framed
    })
}

#[test]
fn a_hostile_host_gets_no_double_sign() {
    let steps: u64 = std::env::var("PAWL_COMET_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    let mut b = board(MemoryStore::new(), Mode::Provisioning);
    let keys: Vec<_> = (0..3u8)
        .map(|i| {
            let sk = SecretBytes::new([0x61 + i; 32])
                .to_b58(Curve::Ed25519)
                .to_string();
            import(&mut b, &sk, Policy::default())
        })
        .collect();
    let mut pinned = BTreeMap::new();
    for (pkh, _) in &keys {
        assert!(matches!(
            set_chain(&mut b, pkh, CHAINS[0]),
            Response::KeyInfo(_)
        ));
        pinned.insert(*pkh, CHAINS[0]);
    }
    let mut run = Run {
        board: b,
        keys,
        pinned,
        released: BTreeMap::new(),
        highest: BTreeMap::new(),
        templates: [templates(CHAINS[0]), templates(CHAINS[1])],
        extension: v("extension_100_0"),
        signed: 0,
        retries: 0,
    };
    let seed = std::env::var("PAWL_COMET_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0xc0ffee);
    let mut rng = Rng(seed);
    for _ in 0..steps {
        run.step(&mut rng);
    }
    eprintln!(
        "hostile CometBFT host: {steps} steps, {} signatures, {} answered retries",
        run.signed, run.retries
    );
    assert!(
        run.signed > steps as u32 / 20,
        "the run must sign ({} signatures)",
        run.signed
    );
    assert!(
        run.retries > 100,
        "the run must retry ({} retries)",
        run.retries
    );
}
