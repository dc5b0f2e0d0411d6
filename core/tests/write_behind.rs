//! The virtual board's write-behind flash (`core/src/store/durable.rs`, `core/src/sim/behind.rs`):
//! an idle-time ceiling reservation is not waited for when it is written; the first signature
//! that relies on it waits for it; the rollback guard follows only settled records; and the
//! file the writer thread fills ends up byte for byte the flash image, loading to the same marks.
#![allow(clippy::cast_possible_truncation)]

mod support;

use core::cell::{Cell, RefCell};
use std::rc::Rc;

use pawl_core::board::{Board, NoButton};
use pawl_core::keys::{Curve, PublicKeyHash, SecretBytes};
use pawl_core::policy::Policy;
use pawl_core::protocol::Mode;
use pawl_core::sim::SimFlash;
use pawl_core::sim::flash::PAGE;
use pawl_core::store::{BoardKey, Durability, NorStore, NorStoreConfig, Store, StoreError};
use support::board::{INFO, TestEntropy, attestation, import, sign};
use support::power::{BOARD_KEY, CHAINS, SharedGuard};

/// A medium the test settles: a write is pending until the store waits for it.
#[derive(Clone, Default)]
struct Gate {
    issued: Rc<Cell<u64>>,
    settled: Rc<Cell<u64>>,
    /// Every point the store waited for, in order.
    waits: Rc<RefCell<Vec<u64>>>,
}

impl Durability for Gate {
    fn issued(&self) -> u64 {
        // Each question is asked after a write: a new point.
        self.issued.set(self.issued.get() + 1);
        self.issued.get()
    }

    fn is_settled(&self, point: u64) -> bool {
        point <= self.settled.get()
    }

    fn settle(&mut self, point: u64) -> Result<(), StoreError> {
        if point > self.settled.get() {
            self.waits.borrow_mut().push(point);
            self.settled.set(point);
        }
        Ok(())
    }
}

const AHEAD: u32 = 16;

type GatedBoard = Board<NorStore<SimFlash, SharedGuard, Gate>, TestEntropy, NoButton>;

fn board(flash: SimFlash, guard: SharedGuard, gate: Gate) -> GatedBoard {
    let config = NorStoreConfig {
        region: 0..(16 * PAGE) as u32,
        ceiling_ahead: AHEAD,
    };
    let store = NorStore::with_durability(flash, config, &BoardKey::new(BOARD_KEY), guard, gate)
        .expect("config");
    Board::open(store, TestEntropy(3), NoButton, Mode::Provisioning, INFO)
}

fn key<D: Durability>(
    b: &mut Board<NorStore<SimFlash, SharedGuard, D>, TestEntropy, NoButton>,
) -> PublicKeyHash {
    let sk = SecretBytes::new([0x51; 32])
        .to_b58(Curve::Ed25519)
        .to_string();
    import(b, &sk, Policy::default()).0
}

#[test]
fn a_reservation_is_not_waited_for_until_a_signature_relies_on_it() {
    let (gate, guard) = (Gate::default(), SharedGuard::default());
    let mut b = board(SimFlash::new(16), guard.clone(), gate.clone());
    let pkh = key(&mut b);
    // The first signature writes the mark's name and ceiling (100 + N) and waits for them.
    sign(&mut b, &pkh, &attestation(CHAINS[0], 100, 0, 1)).expect("signs");
    assert!(
        !gate.waits.borrow().is_empty(),
        "a request-path ceiling is waited for"
    );
    for level in 101..=115 {
        sign(&mut b, &pkh, &attestation(CHAINS[0], level, 0, 1)).expect("signs");
    }
    gate.waits.borrow_mut().clear();
    let guard_before = guard.value.get();
    // Idle time: within N/8 of the ceiling, the next one (115 + N) is reserved — and not
    // waited for, nor is the guard advanced to it.
    assert!(b.idle().expect("idle"), "a reservation was due");
    let reservation = gate.issued.get();
    assert!(
        gate.waits.borrow().is_empty(),
        "idle reservation waited: {:?}",
        gate.waits
    );
    assert_eq!(
        guard.value.get(),
        guard_before,
        "guard advanced to an unsettled record"
    );
    assert!(!gate.is_settled(reservation));
    // 117 is above the old ceiling (116): releasing it relies on the reservation, so the
    // board waits for it before the signature leaves.
    sign(&mut b, &pkh, &attestation(CHAINS[0], 117, 0, 1)).expect("signs");
    assert_eq!(*gate.waits.borrow(), vec![reservation]);
    // Settled now: the guard catches up.
    assert!(
        guard.value.get() > guard_before,
        "guard follows the settled reservation"
    );
}

/// Pages of the file-backed test (small, so that it wraps quickly).
const PAGES: usize = 4;

#[test]
fn the_writer_thread_leaves_the_image_in_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("flash.bin");
    let mut flash = SimFlash::open_file(&path, PAGES).expect("file");
    let behind = flash.write_behind().expect("writer");
    let config = NorStoreConfig {
        region: 0..(PAGES * PAGE) as u32,
        ceiling_ahead: AHEAD,
    };
    let guard = SharedGuard::default();
    let store = NorStore::with_durability(
        flash,
        config.clone(),
        &BoardKey::new(BOARD_KEY),
        guard.clone(),
        behind,
    )
    .expect("config");
    let mut b = Board::open(store, TestEntropy(3), NoButton, Mode::Provisioning, INFO);
    let pkh = key(&mut b);
    // Enough levels, with idle time between them, to reclaim the pages twice over.
    for level in 1..20_000 {
        sign(&mut b, &pkh, &attestation(CHAINS[0], level, 0, 1)).expect("signs");
        while b.idle().expect("idle") {}
    }
    let marks = b
        .watermarks()
        .iter()
        .map(|(id, m)| (*id, m.level))
        .collect::<Vec<_>>();
    assert!(
        b.store().wear().pages_erased >= 2 * PAGES as u32,
        "the region wrapped: {:?}",
        b.store().wear()
    );
    // Dropping the flash lets the writer finish what was queued.
    let image = b.into_store().into_flash().image().to_vec();
    let file = std::fs::read(&path).expect("read");
    assert!(file == image, "the file differs from the flash image");
    let flash = SimFlash::open_file(&path, PAGES).expect("reopen");
    let store = NorStore::new(flash, config, &BoardKey::new(BOARD_KEY), guard).expect("config");
    let b = Board::open(store, TestEntropy(4), NoButton, Mode::Provisioning, INFO);
    let reloaded = b
        .watermarks()
        .iter()
        .map(|(id, m)| (*id, m.level))
        .collect::<Vec<_>>();
    assert_eq!(reloaded.len(), marks.len());
    // After a restart the marks are the ceilings: at or above what was signed.
    for ((id, signed), (rid, ceiling)) in marks.iter().zip(&reloaded) {
        assert_eq!(id, rid);
        assert!(
            ceiling >= signed,
            "{id:?}: reloaded {ceiling} below signed {signed}"
        );
    }
}
