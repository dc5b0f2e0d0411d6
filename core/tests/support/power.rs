//! Power-cut testing: a signing run on the simulated flash, and the checks made after
//! rebooting on whatever image a power cut leaves.
#![allow(
    dead_code,
    clippy::cast_possible_truncation,
    clippy::std_instead_of_core
)]

use std::cell::Cell;
use std::collections::BTreeMap;
use std::rc::Rc;

use pawl_core::board::{Board, NoButton};
use pawl_core::keys::{Curve, PublicKeyHash, SecretBytes, Signature};
use pawl_core::policy::Policy;
use pawl_core::protocol::{Mode, Refusal, StoreHealth};
use pawl_core::request::ChainId;
use pawl_core::sim::SimFlash;
use pawl_core::sim::flash::{Event, Journal, PAGE};
use pawl_core::store::{BoardKey, NorStore, NorStoreConfig, RollbackGuard, StoreError};
use pawl_core::watermark::{MarkId, MarkKind};

use super::board::{INFO, TestEntropy, consensus, import, sign};

/// Secret keys used by the runs: Ed25519, secp256k1, P-256 and BLS.
pub fn secrets() -> Vec<String> {
    vec![
        "edsk4FTF78Qf1m2rykGpHqostAiq5gYW4YZEoGUSWBTJr2njsDHSnd".into(),
        "spsk1zkqrmst1yg2c4xi3crWcZPqgdc9KtPtb9SAZWYHAdiQzdHy7j".into(),
        SecretBytes::new([0x42; 32]).to_b58(Curve::P256).to_string(),
        "BLsk1hKAHyGqY9qRbgoSVnjiSmDWpKGjFF3WNQ7BaiaMUA6RMA6Pfq".into(),
    ]
}

pub const CHAINS: [[u8; 4]; 2] = [[0xb3, 0xd7, 0x9f, 0x99], [0x7a, 0x06, 0xa7, 0x70]];

pub const BOARD_KEY: [u8; 32] = [7; 32];

/// A rollback guard that survives "power cuts" (it lives outside the flash) and can log its
/// advances into the flash journal.
#[derive(Clone, Default)]
pub struct SharedGuard {
    pub value: Rc<Cell<u32>>,
    pub journal: Option<Journal>,
}

impl RollbackGuard for SharedGuard {
    fn floor(&mut self) -> Result<u32, StoreError> {
        Ok(self.value.get())
    }

    fn advance(&mut self, seq: u32) -> Result<(), StoreError> {
        if seq > self.value.get() {
            self.value.set(seq);
            if let Some(j) = &self.journal {
                j.lock().expect("journal").push(Event::Guard(seq));
            }
        }
        Ok(())
    }
}

pub type NorBoard = Board<NorStore<SimFlash, SharedGuard>, TestEntropy, NoButton>;

/// Boot a board on `flash`.
pub fn boot(flash: SimFlash, pages: usize, ahead: u32, guard: SharedGuard) -> NorBoard {
    let config = NorStoreConfig {
        region: 0..(pages * PAGE) as u32,
        ceiling_ahead: ahead,
    };
    let store = NorStore::new(flash, config, &BoardKey::new(BOARD_KEY), guard).expect("config");
    Board::open(store, TestEntropy(9), NoButton, Mode::Provisioning, INFO)
}

/// A 0x11 block at `level`/`round` (upstream Signatory block header with level, fitness round
/// and chain patched; `byte` changes the predecessor so payloads differ).
pub fn block(chain: [u8; 4], level: u32, round: u32, byte: u8) -> Vec<u8> {
    const A1: &str = "11b3d79f990000000218954ac461a1b7642a78880e485b1db8da1e96f6cac6ee7dae541c7b6a8e66840b0000000069a8c3a3043c218c11c12df01faa1113bb827d7de00cc6f95993e220901ca35ff0cec5954000000021000000010200000004000000020000000000000004ffffffff0000000400000000ecbf5c99c96392b252bb846394c12c422e0cb2e050aa018dcc2a880f9c9c636858335430566f4b95401c110f33e74d3a324f83ad6003ed9d5e93ce617fa11e4400000000d7d4b0aea9d000000000";
    let mut b = super::unhex(A1);
    b[1..5].copy_from_slice(&chain);
    b[5..9].copy_from_slice(&level.to_be_bytes());
    b[10] = byte;
    let f = u32::from_be_bytes(b[83..87].try_into().expect("4")) as usize;
    b[83 + f..87 + f].copy_from_slice(&round.to_be_bytes());
    b
}

/// The payload for one consensus request.
pub fn payload(
    kind: MarkKind,
    bls: bool,
    chain: [u8; 4],
    level: u32,
    round: u32,
    byte: u8,
) -> Vec<u8> {
    match (kind, bls) {
        (MarkKind::Block, _) => block(chain, level, round, byte),
        (MarkKind::Preattestation, false) => consensus(0x12, 20, chain, level, round, byte),
        (MarkKind::Attestation, false) => consensus(0x13, 21, chain, level, round, byte),
        (MarkKind::Preattestation, true) => consensus(0x12, 40, chain, level, round, byte),
        (MarkKind::Attestation, true) => consensus(0x13, 41, chain, level, round, byte),
        (MarkKind::CometBft, _) => panic!("a Tezos run makes no CometBFT request"),
    }
}

/// A signature the board released.
#[derive(Clone, Debug)]
pub struct Release {
    pub id: MarkId,
    pub level: u32,
    pub round: u32,
    pub payload: Vec<u8>,
    /// The byte that made this payload unique (see [`payload`]).
    pub byte: u8,
    pub signature: Signature,
    pub bls: bool,
}

/// A tiny deterministic PRNG (xorshift64*).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The keys of a run: (pkh, is BLS).
pub fn provision(board: &mut NorBoard, count: usize) -> Vec<(PublicKeyHash, bool)> {
    secrets()
        .iter()
        .take(count)
        .map(|sk| {
            let (pkh, _) = import(board, sk, Policy::default());
            (pkh, pkh.curve == Curve::Bls12_381)
        })
        .collect()
}

/// Drives a signing run: random keys, chains, kinds; mostly rising levels, with round bumps,
/// jumps over several ceilings, identical retries and lower requests mixed in.
pub struct Run {
    pub keys: Vec<(PublicKeyHash, bool)>,
    pub released: Vec<Release>,
    last: BTreeMap<MarkId, (u32, u32)>,
    byte: u8,
    /// Releases before this index were made before the last reboot: the board no longer holds
    /// their signatures, so they are not retried identically.
    since_boot: usize,
}

/// What one step did.
pub enum Step {
    Released(Release),
    Refused(Refusal),
}

impl Run {
    pub fn new(keys: Vec<(PublicKeyHash, bool)>) -> Self {
        Run {
            keys,
            released: Vec::new(),
            last: BTreeMap::new(),
            byte: 0,
            since_boot: 0,
        }
    }

    /// After a reboot: continue from the board's marks (its ceilings).
    pub fn rebooted(&mut self, board: &NorBoard) {
        self.last = board
            .watermarks()
            .iter()
            .map(|(id, m)| (*id, (m.level, m.round)))
            .collect();
        self.since_boot = self.released.len();
    }

    /// One request. Panics if the board breaks a rule while the power is on.
    pub fn step(&mut self, board: &mut NorBoard, rng: &mut Rng) -> Step {
        let (key, bls) = self.keys[rng.below(self.keys.len() as u64) as usize];
        let chain = CHAINS[rng.below(2) as usize];
        let kind = [
            MarkKind::Block,
            MarkKind::Preattestation,
            MarkKind::Attestation,
        ][rng.below(3) as usize];
        let id = MarkId {
            chain: ChainId(chain),
            key,
            kind,
        };
        let (level, round) = self.last.get(&id).copied().unwrap_or((100, 0));
        let retry = self.released[self.since_boot..]
            .iter()
            .rev()
            .find(|r| r.id == id)
            .cloned();
        self.byte = self.byte.wrapping_add(1);
        let roll = rng.below(100);
        let (level, round, expect_refusal) = match roll {
            0..=59 => (level + 1, 0, false),
            60..=74 if round < u32::MAX => (level, round + 1, false),
            75..=84 => (level + 5 + rng.below(40) as u32, rng.below(3) as u32, false),
            85..=92 if retry.is_some() => {
                // Identical retry of the last release for this mark.
                let r = retry.expect("checked");
                let got = sign(board, &key, &r.payload);
                assert_eq!(
                    got,
                    Ok(r.signature),
                    "identical retry must return the recorded signature"
                );
                return Step::Released(r);
            }
            _ if self.last.contains_key(&id) && level > 0 => (level - 1, 0, true),
            _ => (level + 1, 0, false),
        };
        let payload = payload(kind, bls, chain, level, round, self.byte);
        match sign(board, &key, &payload) {
            Ok(signature) => {
                assert!(!expect_refusal, "signed below the mark");
                self.last.insert(id, (level, round));
                let r = Release {
                    id,
                    level,
                    round,
                    payload,
                    byte: self.byte,
                    signature,
                    bls,
                };
                self.released.push(r.clone());
                Step::Released(r)
            }
            Err(e) => Step::Refused(e),
        }
    }
}

/// The highest release per mark among `released`.
pub fn latest(released: &[Release]) -> BTreeMap<MarkId, Release> {
    let mut out: BTreeMap<MarkId, Release> = BTreeMap::new();
    for r in released {
        match out.get(&r.id) {
            Some(o) if (o.level, o.round) >= (r.level, r.round) => {}
            _ => {
                out.insert(r.id, r.clone());
            }
        }
    }
    out
}

/// After a reboot: the board is healthy, nothing that could contradict a released signature is
/// signed, and every released mark is still at or below the board's mark. Then the board signs
/// above its mark for one of them (`probe` picks which). Returns that new release.
pub fn check_reboot(
    board: &mut NorBoard,
    released: &[Release],
    probe: usize,
    context: &str,
) -> Vec<Release> {
    let status = match board.handle(pawl_core::protocol::Request::Status) {
        pawl_core::protocol::Response::Status(s) => s,
        other => panic!("{context}: status {other:?}"),
    };
    assert_eq!(
        status.store,
        StoreHealth::Ok,
        "{context}: board must boot healthy"
    );
    let mut fresh = Vec::new();
    let latest = latest(released);
    let probe = probe % latest.len().max(1);
    for (n, (id, r)) in latest.into_iter().enumerate() {
        let mark = board
            .watermarks()
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, m)| (m.level, m.round));
        assert!(
            mark.is_some_and(|m| m >= (r.level, r.round)),
            "{context}: acknowledged mark {id:?} at ({}, {}) lost: board has {mark:?}",
            r.level,
            r.round
        );
        let other = payload(
            id.kind,
            r.bls,
            id.chain.0,
            r.level,
            r.round,
            r.byte.wrapping_add(128),
        );
        let got = sign(board, &id.key, &other);
        assert!(
            got.is_err(),
            "{context}: signed a different payload at an acknowledged ({}, {})",
            r.level,
            r.round
        );
        match sign(board, &id.key, &r.payload) {
            Err(_) => {}
            Ok(sig) => assert_eq!(
                sig, r.signature,
                "{context}: identical retry, different signature"
            ),
        }
        if r.level > 0 {
            let lower = payload(id.kind, r.bls, id.chain.0, r.level - 1, 0, 1);
            assert!(
                sign(board, &id.key, &lower).is_err(),
                "{context}: signed below a mark"
            );
        }
        if n != probe {
            continue;
        }
        let (level, _) = mark.unwrap_or_default();
        let above = payload(id.kind, r.bls, id.chain.0, level + 1, 0, 2);
        match sign(board, &id.key, &above) {
            Ok(signature) => fresh.push(Release {
                id,
                level: level + 1,
                round: 0,
                payload: above,
                byte: 2,
                signature,
                bls: r.bls,
            }),
            Err(e) => panic!("{context}: a healthy board refused to sign above its mark: {e}"),
        }
    }
    fresh
}

/// Rebuild the flash image after the first `k` events of `journal` (`torn`: event `k` happens
/// halfway), and the guard value at that point.
pub fn image_at(pages: usize, journal: &[Event], k: usize, torn: bool) -> (Vec<u8>, u32) {
    let mut image = vec![0xFF; pages * PAGE];
    let mut guard = 0;
    for e in &journal[..k] {
        pawl_core::sim::flash::apply(&mut image, e, false);
        if let Event::Guard(g) = e {
            guard = *g;
        }
    }
    if torn && let Some(e) = journal.get(k) {
        pawl_core::sim::flash::apply(&mut image, e, true);
    }
    (image, guard)
}

/// A journal shared between the flash and the guard.
pub fn journal() -> Journal {
    std::sync::Arc::new(std::sync::Mutex::new(Vec::new()))
}

/// Random runs cut at random points, rebooted, checked and continued; returns the number of
/// cut points exercised.
pub fn random_cuts(seed: u64, target: usize) -> usize {
    let mut rng = Rng(seed);
    let mut cuts = 0;
    while cuts < target {
        let pages = 2 + rng.below(3) as usize;
        let ahead = [0, 1, 4, 16][rng.below(4) as usize];
        let key_count = 2 + rng.below(3) as usize;
        let guard = SharedGuard::default();
        let mut board = boot(SimFlash::new(pages), pages, ahead, guard.clone());
        let keys = provision(&mut board, key_count);
        let mut run = Run::new(keys);
        let mut released: Vec<Release> = Vec::new();
        for _ in 0..8 {
            // Run until the power goes, cut somewhere in the next ~60 flash steps.
            let image = board.into_store().into_flash().image().to_vec();
            let mut flash = SimFlash::from_image(image);
            flash.cut_after(rng.below(60), rng.below(2) == 1);
            board = boot(flash, pages, ahead, guard.clone());
            run.rebooted(&board);
            for _ in 0..2_000 {
                match run.step(&mut board, &mut rng) {
                    Step::Released(r) => released.push(r),
                    Step::Refused(Refusal::Store(_)) => break,
                    Step::Refused(_) => {}
                }
                // Board glue's idle-time reservation, sometimes: its writes get cut too.
                if rng.below(3) == 0 && board.idle().is_err() {
                    break;
                }
            }
            let flash = board.into_store().into_flash();
            if flash.is_off() {
                cuts += 1;
            }
            let image = flash.image().to_vec();
            board = boot(SimFlash::from_image(image), pages, ahead, guard.clone());
            let fresh = check_reboot(
                &mut board,
                &released,
                cuts,
                &format!("seed {seed:#x}, cut {cuts} (N={ahead}, {pages} pages)"),
            );
            released.extend(fresh);
            run.rebooted(&board);
        }
    }
    cuts
}
