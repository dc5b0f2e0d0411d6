//! Boards under the flash write budget with a fake clock, for `tests/wear_bound.rs` and
//! `benches/wear_storm.rs`: a normal baker with 16 keys, and the hostile storms.
#![allow(
    dead_code,
    clippy::cast_possible_truncation,
    clippy::std_instead_of_core
)]

use std::cell::Cell;
use std::rc::Rc;

use pawl_core::board::{Board, MAX_MARKS, NoButton, Presence};
use pawl_core::keys::{Curve, PublicKeyHash, SecretBytes};
use pawl_core::policy::Policy;
use pawl_core::protocol::{Mode, Refusal, Request, Response, StoreHealth};
use pawl_core::sim::SimFlash;
use pawl_core::sim::flash::PAGE;
use pawl_core::store::{
    BoardKey, Budgeted, Clock, NorStore, NorStoreConfig, Store, StoreError, WearCounters,
    WriteBudget,
};
use pawl_core::watermark::{MarkId, MarkKind};

use super::board::{INFO, TestEntropy, import, sign};
use super::power::{BOARD_KEY, CHAINS, SharedGuard, payload};

/// Pages of the board's region (256 KiB).
pub const PAGES: usize = 64;
/// N.
pub const AHEAD: u32 = NorStoreConfig::DEFAULT_CEILING_AHEAD;
/// Block time, ms.
pub const BLOCK_MS: u64 = 6_000;

/// A clock the test moves; shared, so the test keeps a handle while the board owns one.
#[derive(Clone, Debug, Default)]
pub struct FakeClock(pub Rc<Cell<u64>>);

impl FakeClock {
    pub fn advance(&self, ms: u64) {
        self.0.set(self.0.get() + ms);
    }

    pub fn now(&self) -> u64 {
        self.0.get()
    }
}

impl Clock for FakeClock {
    fn now_ms(&mut self) -> u64 {
        self.0.get()
    }
}

pub type BudgetStore = Budgeted<NorStore<SimFlash, SharedGuard>, FakeClock>;
pub type BudgetBoard = Board<BudgetStore, TestEntropy, NoButton>;

/// Boot a board on `flash` under `budget`; the clock starts at zero (a boot).
pub fn boot(
    flash: SimFlash,
    guard: SharedGuard,
    budget: WriteBudget,
    mode: Mode,
) -> (BudgetBoard, FakeClock) {
    let config = NorStoreConfig {
        region: 0..(PAGES * PAGE) as u32,
        ceiling_ahead: AHEAD,
    };
    let store = NorStore::new(flash, config, &BoardKey::new(BOARD_KEY), guard).expect("config");
    let clock = FakeClock::default();
    let store = Budgeted::new(store, clock.clone(), budget);
    (
        Board::open(store, TestEntropy(9), NoButton, mode, INFO),
        clock,
    )
}

/// Power the board off (whatever state: a cut) and on again in `mode`: a new clock from zero.
pub fn reboot(
    b: BudgetBoard,
    guard: &SharedGuard,
    budget: WriteBudget,
    mode: Mode,
) -> (BudgetBoard, FakeClock) {
    let flash = b.into_store().into_inner().into_flash();
    boot(flash, guard.clone(), budget, mode)
}

/// A fresh board provisioned with `keys` Ed25519 keys (default policy), rebooted into
/// operational mode.
pub fn provisioned(
    keys: u8,
    budget: WriteBudget,
) -> (BudgetBoard, FakeClock, SharedGuard, Vec<PublicKeyHash>) {
    let guard = SharedGuard::default();
    let (mut b, _) = boot(
        SimFlash::new(PAGES),
        guard.clone(),
        budget,
        Mode::Provisioning,
    );
    let pkhs = (0..keys)
        .map(|i| {
            let sk = SecretBytes::new([0x30 + i; 32])
                .to_b58(Curve::Ed25519)
                .to_string();
            import(&mut b, &sk, Policy::default()).0
        })
        .collect();
    let (b, clock) = reboot(b, &guard, budget, Mode::Operational);
    (b, clock, guard, pkhs)
}

pub fn wear(b: &BudgetBoard) -> WearCounters {
    b.store().wear()
}

pub fn is_budget(r: &Refusal) -> bool {
    matches!(r, Refusal::Store(StoreError::WriteBudget { .. }))
}

/// Everything a refusal must leave as it was: marks, keys, the store's health and its flash.
#[derive(Debug, PartialEq)]
pub struct Snapshot {
    marks: Vec<(MarkId, u32, u32)>,
    keys: String,
    health: StoreHealth,
    records: u32,
    bytes: u64,
}

pub fn snapshot<P: Presence>(b: &mut Board<BudgetStore, TestEntropy, P>) -> Snapshot {
    let marks = b
        .watermarks()
        .iter()
        .map(|(id, m)| (*id, m.level, m.round))
        .collect();
    let keys = format!("{:?}", b.handle(Request::ListKeys));
    let health = match b.handle(Request::Status) {
        Response::Status(s) => s.store,
        other => panic!("{other:?}"),
    };
    let w = b.store().wear();
    Snapshot {
        marks,
        keys,
        health,
        records: w.records,
        bytes: w.bytes_written,
    }
}

/// What a run saw.
#[derive(Debug, Default, Clone, Copy)]
pub struct Tally {
    pub signed: u64,
    /// Refused for the write budget.
    pub budget: u64,
    /// Refused for anything else (watermark after a reboot, table room).
    pub other: u64,
}

impl Tally {
    fn count(&mut self, r: Result<pawl_core::keys::Signature, Refusal>) {
        match r {
            Ok(_) => self.signed += 1,
            Err(e) if is_budget(&e) => self.budget += 1,
            Err(_) => self.other += 1,
        }
    }
}

/// Board glue's idle loop: reserve ahead while there is something to do.
pub fn idle(b: &mut BudgetBoard) {
    while b.idle().expect("idle") {}
}

/// A normal baker: every key preattests and attests each level; one key in 16 bakes a block
/// every 8th level (1,800 blocks a day: more than an eighth of the chain's, a big baker). The
/// chain moves at `BLOCK_MS`; the board gets idle time between requests. Levels are
/// `from..to`; returns the tally.
pub fn bake(
    b: &mut BudgetBoard,
    clock: &FakeClock,
    keys: &[PublicKeyHash],
    from: u32,
    to: u32,
) -> Tally {
    let mut t = Tally::default();
    for level in from..to {
        if level % 8 == 0 {
            let baker = keys[(level / 8) as usize % keys.len()];
            t.count(sign(
                b,
                &baker,
                &payload(MarkKind::Block, false, CHAINS[0], level, 0, 1),
            ));
            idle(b);
        }
        clock.advance(1_000);
        for k in keys {
            let p = payload(MarkKind::Preattestation, false, CHAINS[0], level, 0, 1);
            t.count(sign(b, k, &p));
        }
        idle(b);
        clock.advance(1_000);
        for k in keys {
            let p = payload(MarkKind::Attestation, false, CHAINS[0], level, 0, 1);
            t.count(sign(b, k, &p));
        }
        idle(b);
        clock.advance(BLOCK_MS - 2_000);
        idle(b);
    }
    t
}

/// Every (chain, key, kind) the storm uses: three kinds on two chains for every key, more than
/// the table holds, so the storm fills all 64 entries (the most live records a reclaim copies).
pub fn storm_marks(keys: &[PublicKeyHash]) -> Vec<MarkId> {
    let mut out = Vec::new();
    for chain in CHAINS {
        for key in keys {
            for kind in [
                MarkKind::Preattestation,
                MarkKind::Attestation,
                MarkKind::Block,
            ] {
                out.push(MarkId {
                    chain: pawl_core::request::ChainId(chain),
                    key: *key,
                    kind,
                });
            }
        }
    }
    out
}

/// The hostile storm: one request every `gap_ms`, round-robin over `marks`, each `N + 1`
/// levels above the mark's last position, so every request is above the stored ceiling and
/// costs a record if it gets one; idle time in between (idle reservation spends too). With
/// `check`, every budget refusal is checked to leave the board untouched. Returns the tally
/// and the levels reached (for the next call).
pub fn storm(
    b: &mut BudgetBoard,
    clock: &FakeClock,
    marks: &[MarkId],
    next: &mut [u32],
    requests: u64,
    gap_ms: u64,
    check: bool,
) -> Tally {
    let mut t = Tally::default();
    for n in 0..requests {
        let i = (n % marks.len() as u64) as usize;
        let id = marks[i];
        let p = payload(id.kind, false, id.chain.0, next[i], 0, 1);
        let before = check.then(|| snapshot(b));
        let r = sign(b, &id.key, &p);
        match &r {
            Ok(_) => next[i] += AHEAD + 1,
            Err(e) if is_budget(e) => {
                if let Some(before) = before {
                    assert_eq!(snapshot(b), before, "a budget refusal changed the board");
                }
            }
            Err(_) => {}
        }
        t.count(r);
        clock.advance(gap_ms / 2);
        let _ = b.idle().expect("idle");
        clock.advance(gap_ms - gap_ms / 2);
    }
    t
}

/// Fill the table with requests on every storm mark (table room decides who gets an entry,
/// slowly enough that the budget never refuses), then return the table's marks with the level
/// that puts each above its ceiling.
pub fn fill_table(
    b: &mut BudgetBoard,
    clock: &FakeClock,
    keys: &[PublicKeyHash],
) -> (Vec<MarkId>, Vec<u32>) {
    let marks = storm_marks(keys);
    let mut next = vec![1; marks.len()];
    storm(
        b,
        clock,
        &marks,
        &mut next,
        marks.len() as u64,
        10_000,
        false,
    );
    assert_eq!(b.watermarks().len(), MAX_MARKS, "the storm fills the table");
    b.watermarks()
        .iter()
        .map(|(id, m)| (*id, m.level + AHEAD + 1))
        .unzip()
}
