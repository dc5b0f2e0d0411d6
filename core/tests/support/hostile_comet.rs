//! The CometBFT family in the hostile host of `core/tests/hostile.rs`: what is sent (votes and
//! proposals near the key's mark from the tendermint-rs vectors, the vectors as they are, byte
//! flips, junk; chain pins) and how each answer is checked, by the tests' own reading of the
//! sign bytes (`support::cometbft::position`), never by pawl's reader:
//!
//! * invariant 1: one signature per (chain, key, height, round, step), ever (Ed25519 is
//!   deterministic: a second one means a second message); only for the chain the key was
//!   pinned to; only at a height and round CometBFT allows;
//! * invariant 2: a new signature (or a YubiHSM2 sign approved) only above every position
//!   signed before for that key and chain, and above the key's exported mark;
//! * invariant 3: the mark moves only to the position of what was signed (or approved), as
//!   `docs/cometbft.md` defines it: level = height, round = `round × 4 + step`;
//! * invariant 5: every new signature, and every extension signature, verifies (OpenSSL).

use pawl_core::digest::blake2b_256;
use pawl_core::keys::{Curve, PublicKeyHash};
use pawl_core::protocol::cometbft::CometResponse;
use pawl_core::request::ChainId;
use pawl_core::watermark::{MarkId, MarkKind};

use crate::driver::{CometPos, Harness, hex_short};
use crate::fuzz;
use crate::support::cometbft::{Position, patched, position, vectors, verifies};

/// The chain the vectors are for: most pins and sign bytes aim here.
pub const COSMOS: &str = "cosmoshub-4";

/// The secret of the Cosmos validator key the harness sets up.
pub const COSMOS_SECRET: [u8; 32] = [0x61; 32];

/// Its key hash (tz1: BLAKE2b-160 of the Ed25519 public key).
pub fn cosmos_pkh() -> PublicKeyHash {
    static PKH: std::sync::OnceLock<PublicKeyHash> = std::sync::OnceLock::new();
    *PKH.get_or_init(cosmos_pkh_once)
}

fn cosmos_pkh_once() -> PublicKeyHash {
    let sk =
        openssl::pkey::PKey::private_key_from_raw_bytes(&COSMOS_SECRET, openssl::pkey::Id::ED25519)
            .expect("ed25519 secret");
    let pk = sk.raw_public_key().expect("public key");
    PublicKeyHash {
        curve: Curve::Ed25519,
        hash: pawl_core::digest::blake2b_160(&pk),
    }
}

/// The highest round CometBFT's reader takes (2^30 - 1, `docs/cometbft.md`).
const MAX_ROUND: i64 = (1 << 30) - 1;

/// The mark a CometBFT position of `chain_id` for `key` moves.
fn mark_of(chain_id: &[u8], key: &PublicKeyHash) -> MarkId {
    let hash = blake2b_256(chain_id);
    MarkId {
        chain: ChainId([hash[0], hash[1], hash[2], hash[3]]),
        key: *key,
        kind: MarkKind::CometBft,
    }
}

/// The mark's (level, round) of a position.
fn packed(p: &Position) -> (u32, u32) {
    (p.height as u32, (p.round as u32) * 4 + u32::from(p.step))
}

impl Harness {
    /// A key for a CometBFT request: mostly an Ed25519 key the board holds; for a sign
    /// request (`pinned`), mostly one pinned to a chain.
    pub fn comet_key(&mut self, pinned: bool) -> PublicKeyHash {
        let mut pins: Vec<PublicKeyHash> = self.comet_pins.keys().copied().collect();
        pins.sort_unstable();
        if pinned && !pins.is_empty() && self.rng.pct(75) {
            return *self.rng.pick(&pins);
        }
        let ed: Vec<PublicKeyHash> = self
            .keys
            .iter()
            .filter(|k| k.pkh.curve == Curve::Ed25519)
            .map(|k| k.pkh)
            .collect();
        let cosmos = cosmos_pkh();
        if self.keys.iter().any(|k| k.pkh == cosmos) && self.rng.pct(70) {
            return cosmos;
        }
        if ed.is_empty() || self.rng.pct(10) {
            return self.some_pkh();
        }
        *self.rng.pick(&ed)
    }

    /// A chain id to pin: mostly the vectors', sometimes another, sometimes not a chain id.
    pub fn comet_chain(&mut self) -> String {
        match self.rng.below(10) {
            0 => "osmosis-1".into(),
            1 => String::from_utf8_lossy(&self.rng.upto(60)).into_owned(),
            _ => COSMOS.into(),
        }
    }

    /// Sign bytes for `pkh`: near its mark on the vectors' chain (mostly), a vector as it is,
    /// a flipped or truncated one, or junk.
    pub fn comet_sign_bytes(&mut self, pkh: &PublicKeyHash, vote: bool) -> Vec<u8> {
        let roll = self.rng.below(100);
        if roll < 12 {
            return self.rng.upto(200);
        }
        if roll < 22 {
            let all: Vec<Vec<u8>> = vectors().into_values().collect();
            return self.rng.pick(&all).clone();
        }
        let step = match (vote, self.rng.pct(10)) {
            (true, false) | (false, true) => 2 + self.rng.below(2) as usize,
            _ => 1,
        };
        let template = ["proposal_100_1_pol_0", "prevote_100_1", "precommit_100_1"][step - 1];
        let template = crate::support::cometbft::v(template);
        let (h, r) = match self.marks.get(&mark_of(COSMOS.as_bytes(), pkh)) {
            // After a restart the mark is a ceiling (round u32::MAX): go on from its level.
            Some(&(level, round)) if round < u32::MAX - 1 => (level, round >> 2),
            Some(&(level, _)) => (level, 0),
            None => (100 + self.rng.below(50) as u32, 0),
        };
        let height = h
            .saturating_add(self.rng.below(4) as u32)
            .saturating_sub(1)
            .max(1);
        let round = if self.rng.pct(30) {
            r + self.rng.below(2) as u32
        } else {
            self.rng.below(3) as u32
        };
        let block = 1 + self.rng.below(3) as u8;
        let mut bytes = patched(&template, height, round, block);
        // A timestamp-only change: the low byte of the seconds varint (after its `08`).
        if self.rng.pct(30)
            && let Some(at) = bytes.iter().rposition(|&b| b == 0x08)
            && let Some(b) = bytes.get_mut(at + 1)
        {
            *b = 0x80 | self.rng.below(128) as u8;
        }
        if self.rng.pct(12) {
            fuzz::mutate(&mut self.rng, &mut bytes);
        }
        bytes
    }

    /// A vote extension: mostly none, sometimes the vector's at the vote's height, or junk.
    pub fn comet_extension(&mut self, sign_bytes: &[u8]) -> Option<Vec<u8>> {
        match self.rng.below(10) {
            0 => Some(self.rng.upto(80)),
            1 | 2 => {
                let mut e = crate::support::cometbft::v("extension_100_0");
                if let Some(height) = sign_bytes.get(4..12) {
                    e[17..25].copy_from_slice(height);
                }
                Some(e)
            }
            _ => None,
        }
    }

    /// The position of CometBFT sign bytes the board signed or approved: readable, in range,
    /// for the chain the key is pinned to (1).
    fn comet_position(&self, pkh: &PublicKeyHash, bytes: &[u8], what: &str) -> Position {
        let Some(p) = position(bytes) else {
            self.fail(
                1,
                format!(
                    "{what} over bytes that do not read as a vote or proposal: {}",
                    hex_short(bytes)
                ),
            )
        };
        if !(1..=i64::from(u32::MAX)).contains(&p.height) || !(0..=MAX_ROUND).contains(&p.round) {
            self.fail(
                1,
                format!(
                    "{what} at height {} round {}: out of range",
                    p.height, p.round
                ),
            );
        }
        if let Some(pin) = self.comet_pins.get(pkh)
            && *pin != p.chain_id
        {
            self.fail(
                1,
                format!(
                    "{what} for chain {:?}, the key pinned to {:?}",
                    String::from_utf8_lossy(&p.chain_id),
                    String::from_utf8_lossy(pin)
                ),
            );
        }
        p
    }

    /// A new position for `pkh` must be above every one signed before on its chain (2) and
    /// above the key's exported mark (at it, for a YubiHSM2 approval sent again: `at_ok`).
    fn comet_above(&mut self, pkh: &PublicKeyHash, p: &Position, at_ok: bool, what: &str) {
        let at = (p.height, p.round, p.step);
        if let Some(high) = self.comet_high.get(&(*pkh, p.chain_id.clone()))
            && at <= *high
        {
            self.fail(
                2,
                format!("{what} at {at:?}, not above {high:?} signed before on that chain"),
            );
        }
        let id = mark_of(&p.chain_id, pkh);
        let operator = self.effect.operator_keys.contains(pkh) || self.effect.reset;
        if let Some(mark) = self.marks.get(&id)
            && !operator
        {
            let new = packed(p);
            if new < *mark || (new == *mark && !at_ok) {
                self.fail(
                    2,
                    format!("{what} at {new:?}, not above the exported mark {mark:?} of {id:?}"),
                );
            }
        }
        self.effect.allowed.push((id, packed(p)));
    }

    /// A YubiHSM2 CometBFT sign approved (the board relays it): where it aims.
    pub fn comet_approved(&mut self, pkh: &PublicKeyHash, bytes: &[u8]) {
        let p = self.comet_position(pkh, bytes, "a CometBFT HSM sign");
        self.comet_above(pkh, &p, true, "a CometBFT HSM sign");
        self.stats.release("CometBFT HSM signs started");
    }

    /// A CometBFT answer to a vote or proposal (on the board, or `relayed` from the HSM: its
    /// approval already moved the mark to this position).
    pub fn comet_released(
        &mut self,
        pkh: &PublicKeyHash,
        bytes: &[u8],
        extension: Option<&[u8]>,
        answer: CometResponse,
        relayed: bool,
    ) {
        let (signature, timestamp, extension_signature) = match answer {
            CometResponse::Vote {
                signature,
                timestamp,
                extension_signature,
            } => (signature, timestamp, extension_signature),
            CometResponse::Proposal {
                signature,
                timestamp,
            } => (signature, timestamp, None),
            state @ CometResponse::State { .. } => {
                self.fail(4, format!("a sign request answered {state:?}"))
            }
        };
        let Some(key) = self.key(pkh) else {
            self.fail(
                5,
                format!("a CometBFT signature for {pkh:?}, which ListKeys does not show"),
            )
        };
        let pk = key.public_key;
        let p = self.comet_position(pkh, bytes, "a CometBFT signature");
        match (extension, &extension_signature) {
            (None, None) => {}
            (Some(e), Some(s)) if verifies(&pk, e, s) => {}
            _ => self.fail(
                5,
                format!(
                    "extension {:?} answered with extension signature {extension_signature:?}",
                    extension.map(hex_short)
                ),
            ),
        }
        let pos: CometPos = (p.chain_id.clone(), *pkh, p.height, p.round, p.step);
        if let Some((recorded, step)) = self.comet_signed.get(&pos) {
            if *recorded != signature {
                self.fail(
                    1,
                    format!(
                        "two CometBFT signatures at {pos:?}: {recorded:?} at step {step}, now {signature:?} over {}",
                        hex_short(bytes)
                    ),
                );
            }
            self.stats.release("CometBFT retries answered");
            return;
        }
        if timestamp.is_some() {
            // A recorded answer (another timestamp) the model did not see signed: after an
            // operator's reset of the key's history. Its bytes are not these: not verifiable.
            let example = format!("step {}: {pos:?}", self.stats.steps);
            self.stats.suspicious(
                "a recorded CometBFT answer the run did not see signed",
                example,
            );
            return;
        }
        if !verifies(&pk, bytes, &signature) {
            self.fail(
                5,
                format!(
                    "a CometBFT signature that does not verify under {pk:?}: {} {signature:?}",
                    hex_short(bytes)
                ),
            );
        }
        self.comet_above(pkh, &p, relayed, "a new CometBFT signature");
        self.comet_high
            .insert((*pkh, p.chain_id.clone()), (p.height, p.round, p.step));
        self.comet_signed.insert(pos, (signature, self.stats.steps));
        self.stats.release(if relayed {
            "CometBFT HSM signatures"
        } else {
            "CometBFT signatures"
        });
    }

    /// Forget the CometBFT history (of `key`, or all of it after an erase).
    pub fn forget_comet(&mut self, key: Option<PublicKeyHash>) {
        match key {
            Some(k) => {
                self.comet_signed.retain(|pos, _| pos.1 != k);
                self.comet_high.retain(|(key, _), _| *key != k);
            }
            None => {
                self.comet_signed.clear();
                self.comet_high.clear();
                self.comet_pins.clear();
            }
        }
    }
}
