//! Building boards for tests.
#![allow(dead_code)]

use pawl_core::board::{Board, BoardInfo, NoButton, Presence};
use pawl_core::keys::{
    Curve, Entropy, KeyError, PublicKey, PublicKeyHash, SecretBytes, Signature, SigningVersion,
};
use pawl_core::policy::Policy;
use pawl_core::protocol::{Mode, Refusal, Request, Response};
use pawl_core::request::RequestKind;
use pawl_core::store::MemoryStore;

/// Deterministic "entropy" for tests (never for keys that matter).
pub struct TestEntropy(pub u64);

impl Entropy for TestEntropy {
    fn fill(&mut self, dest: &mut [u8]) -> Result<(), KeyError> {
        for b in dest.iter_mut() {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            *b = (self.0 >> 56) as u8;
        }
        Ok(())
    }
}

/// A button that answers as told and counts presses asked for.
#[derive(Default)]
pub struct TestButton {
    pub answer: bool,
    pub asked: u32,
}

impl Presence for TestButton {
    fn confirm(&mut self, _: &PublicKeyHash, _: RequestKind) -> bool {
        self.asked += 1;
        self.answer
    }
}

/// A button the test keeps a handle on while the board owns its clone: `press` is what it
/// answers, `asked` how often the board asked.
#[derive(Clone, Default)]
pub struct SharedButton {
    pub press: std::rc::Rc<core::cell::Cell<bool>>,
    pub asked: std::rc::Rc<core::cell::Cell<u32>>,
}

impl Presence for SharedButton {
    fn confirm(&mut self, _: &PublicKeyHash, _: RequestKind) -> bool {
        self.asked.set(self.asked.get() + 1);
        self.press.get()
    }
}

pub type TestBoard = Board<MemoryStore, TestEntropy, NoButton>;

pub const INFO: BoardInfo = BoardInfo {
    firmware: "test",
    board: "host-test",
};

pub fn board(store: MemoryStore, mode: Mode) -> TestBoard {
    Board::open(store, TestEntropy(1), NoButton, mode, INFO)
}

/// Import `sk` (base58) with `policy`; returns the key hash.
pub fn import<S: pawl_core::store::Store, E: Entropy, P: Presence>(
    b: &mut Board<S, E, P>,
    sk: &str,
    policy: Policy,
) -> (PublicKeyHash, PublicKey) {
    let (curve, secret): (Curve, SecretBytes) = SecretBytes::from_b58(sk).expect("secret");
    match b.handle(Request::ImportKey {
        curve,
        secret,
        policy,
    }) {
        Response::KeyInfo(info) => (info.pkh, info.public_key),
        other => panic!("import: {other:?}"),
    }
}

pub fn sign<S: pawl_core::store::Store, E: Entropy, P: Presence>(
    b: &mut Board<S, E, P>,
    pkh: &PublicKeyHash,
    payload: &[u8],
) -> Result<Signature, Refusal> {
    match b.handle(Request::Sign {
        pkh: *pkh,
        version: SigningVersion::LATEST,
        payload,
    }) {
        Response::Signature(s) => Ok(s),
        Response::Refused(r) => Err(r),
        other => panic!("sign: {other:?}"),
    }
}

/// A 0x13 attestation (tag 21) for chain `chain`, at `level`/`round`, with `payload_byte`
/// filling the block payload hash (so different bytes give different payloads).
pub fn attestation(chain: [u8; 4], level: u32, round: u32, payload_byte: u8) -> Vec<u8> {
    consensus(0x13, 21, chain, level, round, payload_byte)
}

/// Any slotted consensus payload.
pub fn consensus(
    magic: u8,
    tag: u8,
    chain: [u8; 4],
    level: u32,
    round: u32,
    payload_byte: u8,
) -> Vec<u8> {
    let mut v = vec![magic];
    v.extend_from_slice(&chain);
    v.extend_from_slice(&[0xaa; 32]);
    v.push(tag);
    if tag != 40 && tag != 41 {
        v.extend_from_slice(&7u16.to_be_bytes());
    }
    v.extend_from_slice(&level.to_be_bytes());
    v.extend_from_slice(&round.to_be_bytes());
    v.extend_from_slice(&[payload_byte; 32]);
    v
}

/// What a refusal must leave as it was on a board over a [`MemoryStore`]: the marks in RAM, the
/// stored records, and the number of mark writes.
pub fn memory_state<E: Entropy, P: Presence>(
    b: &Board<MemoryStore, E, P>,
) -> (Vec<String>, Vec<String>, u32) {
    let marks = b.watermarks().iter().map(|e| format!("{e:?}")).collect();
    let mut stored = Vec::new();
    pawl_core::store::Store::load(&mut b.store().clone(), &mut |r| {
        stored.push(format!("{r:?}"));
        Ok(())
    })
    .expect("load");
    (marks, stored, b.store().mark_writes)
}
