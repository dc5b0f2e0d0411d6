//! The board's persistent state: the on-chip QSPI flash split into the store and the
//! rollback guard (layout in `build.rs`), and the store the board runs on.

use embassy_embedded_hal::flash::partition::Partition;
use embassy_rp::flash::{Async, Flash};
use embassy_rp::peripherals::FLASH;
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_sync::mutex::Mutex;
use pawl_core::store::{
    BoardKey, NorStore, NorStoreConfig, Record, Store, StoreError, StoredKey, WearCounters,
};
use pawl_core::watermark::MarkId;

use crate::guard::FlashGuard;
use crate::layout::{FLASH_SIZE, GUARD_OFFSET, GUARD_SIZE, STORE_OFFSET, STORE_SIZE};

/// The whole QSPI flash (erase and program run from RAM with interrupts off; reads by DMA).
pub type BoardFlash = Flash<'static, FLASH, Async, FLASH_SIZE>;
/// The flash, shared by the store and guard partitions (one thread uses both).
pub type SharedFlash = Mutex<CriticalSectionRawMutex, BoardFlash>;
/// A bounds-checked window on the flash: the store or the guard cannot reach the image.
pub type Region = Partition<'static, CriticalSectionRawMutex, BoardFlash>;
/// The store the board uses when it has a board key.
pub type FlashStore = NorStore<Region, FlashGuard<Region>>;

/// Open the store over its partition, sealing under `key`, with the guard over its own.
pub fn open(flash: &'static SharedFlash, key: &BoardKey) -> Result<FlashStore, StoreError> {
    let store = Region::new(flash, STORE_OFFSET, STORE_SIZE);
    let guard = FlashGuard::open(Region::new(flash, GUARD_OFFSET, GUARD_SIZE))?;
    let config = NorStoreConfig {
        region: 0..STORE_SIZE,
        ceiling_ahead: NorStoreConfig::DEFAULT_CEILING_AHEAD,
    };
    NorStore::new(store, config, key, guard)
}

/// The board's store: the flash store, or none at all when there is no board key (or the
/// flash could not be set up). Without one every store operation fails, so the board comes
/// up refusing to sign or to take keys, and says so in its status.
// One instance, in a static: the size difference costs nothing, and boxing would put the
// store on the heap, which is sized for blst's needs only.
#[allow(clippy::large_enum_variant)]
pub enum BoardStore {
    /// The flash store.
    Flash(FlashStore),
    /// No usable store.
    Missing,
}

impl Store for BoardStore {
    fn load(
        &mut self,
        visit: &mut dyn FnMut(Record<'_>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        match self {
            BoardStore::Flash(s) => s.load(visit),
            BoardStore::Missing => Err(StoreError::Io),
        }
    }

    fn persist_mark(&mut self, id: &MarkId, level: u32, round: u32) -> Result<(), StoreError> {
        match self {
            BoardStore::Flash(s) => s.persist_mark(id, level, round),
            BoardStore::Missing => Err(StoreError::Io),
        }
    }

    fn forget_marks(&mut self, ids: &[MarkId]) -> Result<(), StoreError> {
        match self {
            BoardStore::Flash(s) => s.forget_marks(ids),
            BoardStore::Missing => Err(StoreError::Io),
        }
    }

    fn lower_mark(&mut self, id: &MarkId, level: u32, round: u32) -> Result<(), StoreError> {
        match self {
            BoardStore::Flash(s) => s.lower_mark(id, level, round),
            BoardStore::Missing => Err(StoreError::Io),
        }
    }

    fn persist_key(&mut self, slot: u8, key: &StoredKey) -> Result<(), StoreError> {
        match self {
            BoardStore::Flash(s) => s.persist_key(slot, key),
            BoardStore::Missing => Err(StoreError::Io),
        }
    }

    fn wear(&self) -> WearCounters {
        match self {
            BoardStore::Flash(s) => s.wear(),
            BoardStore::Missing => WearCounters::default(),
        }
    }

    fn reprovision(&mut self, erase: bool) -> Result<(), StoreError> {
        match self {
            BoardStore::Flash(s) => s.reprovision(erase),
            BoardStore::Missing => Err(StoreError::Io),
        }
    }
}
