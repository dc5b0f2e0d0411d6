//! The board's persistent state: the on-chip QSPI flash split into the store and the
//! rollback guard (layout in `build.rs`), and the store the board runs on.

use embassy_embedded_hal::flash::partition::Partition;
use embassy_rp::flash::{Async, Flash};
use embassy_rp::peripherals::FLASH;
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_sync::mutex::Mutex;
use pawl_core::protocol::Mode;
#[cfg(feature = "otp-epoch")]
use pawl_core::store::Anchored;
use pawl_core::store::{
    BoardKey, Budgeted, Clock, EpochReport, NorStore, NorStoreConfig, Record, Store, StoreError,
    StoredKey, WearCounters, WriteBudget,
};
use pawl_core::watermark::MarkId;

#[cfg(feature = "otp-epoch")]
use crate::epoch::OtpEpoch;
use crate::guard::FlashGuard;
use crate::layout::{FLASH_SIZE, GUARD_OFFSET, GUARD_SIZE, STORE_OFFSET, STORE_SIZE};

/// The whole QSPI flash (erase and program run from RAM with interrupts off; reads by DMA).
pub type BoardFlash = Flash<'static, FLASH, Async, FLASH_SIZE>;
/// The flash, shared by the store and guard partitions (one thread uses both).
pub type SharedFlash = Mutex<CriticalSectionRawMutex, BoardFlash>;
/// A bounds-checked window on the flash: the store or the guard cannot reach the image.
pub type Region = Partition<'static, CriticalSectionRawMutex, BoardFlash>;
/// The store the board uses when it has a board key.
pub type FlashStore = NorStore<Region, BoardGuard>;
/// The store's rollback guard: in flash, anchored by the OTP epoch with the `otp-epoch`
/// feature (`src/epoch.rs`).
#[cfg(feature = "otp-epoch")]
pub type BoardGuard = Anchored<FlashGuard<Region>, OtpEpoch>;
/// The store's rollback guard: in flash only (an image built without `otp-epoch`).
#[cfg(not(feature = "otp-epoch"))]
pub type BoardGuard = FlashGuard<Region>;
/// What the board runs on: its store under the flash write budget, timed by the RP2350's
/// 1 MHz system timer (`embassy_time`).
pub type BudgetedStore = Budgeted<BoardStore, TimerClock>;

/// Milliseconds since boot from the system timer (64-bit: it does not wrap).
#[derive(Clone, Copy, Debug, Default)]
pub struct TimerClock;

impl Clock for TimerClock {
    fn now_ms(&mut self) -> u64 {
        embassy_time::Instant::now().as_millis()
    }
}

/// `store` under the default write budget.
pub fn budgeted(store: BoardStore) -> BudgetedStore {
    Budgeted::new(store, TimerClock, WriteBudget::DEFAULT)
}

/// Open the store over its partition, sealing under `key`, with the guard over its own.
pub fn open(flash: &'static SharedFlash, key: &BoardKey) -> Result<FlashStore, StoreError> {
    let store = Region::new(flash, STORE_OFFSET, STORE_SIZE);
    let guard = FlashGuard::open(Region::new(flash, GUARD_OFFSET, GUARD_SIZE))?;
    #[cfg(feature = "otp-epoch")]
    let guard = Anchored::new(guard, OtpEpoch);
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

    fn remove_key(&mut self, slot: u8) -> Result<(), StoreError> {
        match self {
            BoardStore::Flash(s) => s.remove_key(slot),
            BoardStore::Missing => Err(StoreError::Io),
        }
    }

    fn reserve_ahead(&mut self) -> Result<bool, StoreError> {
        match self {
            BoardStore::Flash(s) => s.reserve_ahead(),
            BoardStore::Missing => Ok(false),
        }
    }

    fn persist_cost(&self, id: &MarkId, level: u32, round: u32) -> u32 {
        match self {
            BoardStore::Flash(s) => s.persist_cost(id, level, round),
            BoardStore::Missing => 0,
        }
    }

    fn budget_note(&self) -> Option<u16> {
        match self {
            BoardStore::Flash(s) => s.budget_note(),
            BoardStore::Missing => Some(0),
        }
    }

    fn set_budget_note(&mut self, note: u16) {
        if let BoardStore::Flash(s) = self {
            s.set_budget_note(note);
        }
    }

    fn board_mode(&mut self, mode: Mode) {
        if let BoardStore::Flash(s) = self {
            s.board_mode(mode);
        }
    }

    fn epoch(&self) -> Option<EpochReport> {
        match self {
            BoardStore::Flash(s) => s.epoch(),
            BoardStore::Missing => None,
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
