//! Target `store`: `NorStore` loading an arbitrary flash image, under `Board::open` and on its
//! own, then writing to it.

use std::cell::Cell;
use std::rc::Rc;

use pawl_core::board::{Board, BoardInfo, NoButton};
use pawl_core::keys::{Curve, Entropy, KeyError, PublicKeyHash};
use pawl_core::protocol::{Mode, Request, Response, StoreHealth};
use pawl_core::request::ChainId;
use pawl_core::sim::SimFlash;
use pawl_core::sim::flash::PAGE;
use pawl_core::store::{
    BoardKey, NorStore, NorStoreConfig, Record, RollbackGuard, Store, StoreError,
};
use pawl_core::watermark::{MarkId, MarkKind};

/// Pages of the fuzzed region (the boards use 64; few pages keep inputs small).
pub const PAGES: usize = 4;
/// The board key every fuzzed image is sealed under (the seeds were made with it).
pub const BOARD_KEY: [u8; 32] = [7; 32];

/// What the board reports as itself.
pub const INFO: BoardInfo = BoardInfo {
    firmware: "fuzz",
    board: "fuzz",
};

/// Deterministic "entropy".
pub struct FixedEntropy(pub u64);

impl Entropy for FixedEntropy {
    fn fill(&mut self, dest: &mut [u8]) -> Result<(), KeyError> {
        for b in dest.iter_mut() {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            *b = self.0.to_be_bytes()[0];
        }
        Ok(())
    }
}

/// A rollback counter outside the flash that survives reboots.
#[derive(Clone, Default)]
pub struct Guard(pub Rc<Cell<u32>>);

impl RollbackGuard for Guard {
    fn floor(&mut self) -> Result<u32, StoreError> {
        Ok(self.0.get())
    }

    fn advance(&mut self, seq: u32) -> Result<(), StoreError> {
        self.0.set(self.0.get().max(seq));
        Ok(())
    }
}

/// The fuzzed store type.
pub type FuzzStore = NorStore<SimFlash, Guard>;

/// A store over `flash` (whole `pages`), sealed with [`BOARD_KEY`].
pub fn open_store(flash: SimFlash, pages: usize, guard: Guard) -> FuzzStore {
    let config = NorStoreConfig {
        region: 0..u32::try_from(pages * PAGE).expect("small region"),
        ceiling_ahead: NorStoreConfig::DEFAULT_CEILING_AHEAD,
    };
    NorStore::new(flash, config, &BoardKey::new(BOARD_KEY), guard).expect("valid region")
}

/// The image an input stands for: its bytes, then erased flash up to [`PAGES`] pages.
pub fn image_of(data: &[u8]) -> Vec<u8> {
    let mut image = vec![0xFF; PAGES * PAGE];
    let n = data.len().min(image.len());
    image[..n].copy_from_slice(&data[..n]);
    image
}

type Marks = Vec<(MarkId, (u32, u32))>;

/// Load `store` directly: the marks it reports, or why it refused.
fn load(store: &mut FuzzStore) -> Result<(Marks, usize), StoreError> {
    let mut marks = Vec::new();
    let mut keys = 0;
    store.load(&mut |record| {
        match record {
            Record::Key { .. } => keys += 1,
            Record::Mark { id, level, round } => marks.push((id, (level, round))),
        }
        Ok(())
    })?;
    marks.sort();
    Ok((marks, keys))
}

fn position(marks: &Marks, id: &MarkId) -> Option<(u32, u32)> {
    marks.iter().find(|(m, _)| m == id).map(|(_, p)| *p)
}

/// Run one input as a flash image.
pub fn run(data: &[u8]) {
    let image = image_of(data);
    // 1. The board on this image, in operational mode, as after a power-up.
    let guard = Guard::default();
    let store = open_store(SimFlash::from_image(image.clone()), PAGES, guard.clone());
    let mut board = Board::open(store, FixedEntropy(1), NoButton, Mode::Operational, INFO);
    let health = match board.handle(Request::Status) {
        Response::Status(s) => s.store,
        other => panic!("status answered {other:?}"),
    };
    let _ = board.handle(Request::ListKeys);
    let _ = board.handle(Request::ExportWatermarks { start: 0 });
    let repaired = board.into_store().into_flash().image().to_vec();

    // 2. The store on its own, on the same image: the same verdict as the board's.
    let mut store = open_store(SimFlash::from_image(image), PAGES, guard.clone());
    let verdict = load(&mut store);
    assert_eq!(
        verdict.is_ok(),
        health == StoreHealth::Ok,
        "the store and the board disagree on this image: {verdict:?} vs {health:?}"
    );

    // 3. The next boots, on what the first one left (a load may finish an interrupted erase,
    //    and may then load where the first boot refused): two loads, the same way.
    let mut store = open_store(SimFlash::from_image(repaired), PAGES, guard.clone());
    let first = load(&mut store);
    let flash = store.into_flash();
    let mut store = open_store(
        SimFlash::from_image(flash.image().to_vec()),
        PAGES,
        guard.clone(),
    );
    let second = load(&mut store);
    assert_eq!(first, second, "two loads of one image differ");
    let Ok((marks, _)) = first else { return };

    // 4. Write: raise the first mark (or a new one) and read it back after a "reboot".
    let id = marks.first().map(|(id, _)| *id).unwrap_or(MarkId {
        chain: ChainId::MAINNET,
        key: PublicKeyHash {
            curve: Curve::Ed25519,
            hash: [0x42; 20],
        },
        kind: MarkKind::Attestation,
    });
    let (level, round) = position(&marks, &id).unwrap_or((0, 0));
    let Some(target) = level.checked_add(1) else {
        return;
    };
    if store.persist_mark(&id, target, round).is_err() {
        return;
    }
    let _ = store.reserve_ahead();
    let flash = store.into_flash();
    let mut store = open_store(SimFlash::from_image(flash.image().to_vec()), PAGES, guard);
    // A load that refuses is safe: the board then signs nothing until re-provisioned (an image
    // with programmed bytes in its free space gets there, `docs/security.md`). A load that
    // succeeds must hold the mark at or above where it was made durable.
    let Ok((after, _)) = load(&mut store) else {
        return;
    };
    let got = position(&after, &id).expect("a persisted mark is loaded back");
    assert!(
        got >= (target, round),
        "persisted ({target}, {round}), loaded {got:?}"
    );
    for (m, p) in &marks {
        let now = position(&after, m).expect("a mark was lost by an unrelated write");
        assert!(now >= *p, "mark {m:?} went from {p:?} to {now:?}");
    }
}
