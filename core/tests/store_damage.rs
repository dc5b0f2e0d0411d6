//! Flash the store did not write itself: what the coverage-guided store fuzzer found
//! (`core/fuzz`, `docs/security.md`). The image in `fixtures/unerased-free-space.bin` (the
//! fuzzer's minimised input, then erased flash) has programmed bytes in the map's free space:
//! `sequential-storage` reports a write there as done, and the record cannot be read back. A
//! write the store cannot read back must not count as durable: no signature may rest on it.

use core::cell::Cell;
use std::rc::Rc;

use pawl_core::keys::{Curve, PublicKeyHash};
use pawl_core::request::ChainId;
use pawl_core::sim::SimFlash;
use pawl_core::store::{
    BoardKey, NorStore, NorStoreConfig, Record, RollbackGuard, Store, StoreError,
};
use pawl_core::watermark::{MarkId, MarkKind};

const PAGES: usize = 4;

#[derive(Clone, Default)]
struct Guard(Rc<Cell<u32>>);

impl RollbackGuard for Guard {
    fn floor(&mut self) -> Result<u32, StoreError> {
        Ok(self.0.get())
    }
    fn advance(&mut self, seq: u32) -> Result<(), StoreError> {
        self.0.set(self.0.get().max(seq));
        Ok(())
    }
}

fn store(image: Vec<u8>, guard: &Guard) -> NorStore<SimFlash, Guard> {
    let config = NorStoreConfig {
        region: 0..u32::try_from(PAGES * 4096).expect("fits"),
        ceiling_ahead: NorStoreConfig::DEFAULT_CEILING_AHEAD,
    };
    // The fuzzer's board key.
    NorStore::new(
        SimFlash::from_image(image),
        config,
        &BoardKey::new([7; 32]),
        guard.clone(),
    )
    .expect("config")
}

fn marks(s: &mut NorStore<SimFlash, Guard>) -> Result<Vec<(MarkId, u32, u32)>, StoreError> {
    let mut out = Vec::new();
    s.load(&mut |r| {
        if let Record::Mark { id, level, round } = r {
            out.push((id, level, round));
        }
        Ok(())
    })?;
    Ok(out)
}

#[test]
fn a_write_that_cannot_be_read_back_is_not_durable() {
    let mut image = vec![0xFF; PAGES * 4096];
    let input = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/unerased-free-space.bin"),
    )
    .expect("fixture");
    image[..input.len()].copy_from_slice(&input);
    let guard = Guard::default();
    let mut s = store(image, &guard);
    let before = marks(&mut s).expect("the image loads");
    let id = before.first().map(|(id, _, _)| *id).unwrap_or(MarkId {
        chain: ChainId::MAINNET,
        key: PublicKeyHash {
            curve: Curve::Ed25519,
            hash: [0x42; 20],
        },
        kind: MarkKind::Attestation,
    });
    let level = before
        .iter()
        .find(|(m, _, _)| *m == id)
        .map_or(0, |(_, l, _)| *l)
        + 1;
    match s.persist_mark(&id, level, 0) {
        // Refused: the board signs nothing on it. That is the fix.
        Err(e) => assert_eq!(e, StoreError::Io),
        // Acknowledged: then it must come back after a reboot.
        Ok(()) => {
            let image = s.into_flash().image().to_vec();
            let mut again = store(image, &guard);
            let after = marks(&mut again).unwrap_or_default();
            let got = after
                .iter()
                .find(|(m, _, _)| *m == id)
                .map(|(_, l, r)| (*l, *r));
            assert!(
                got.is_some_and(|p| p >= (level, 0)),
                "persist_mark said durable at level {level}, the next boot loads {got:?}"
            );
        }
    }
}
