//! Flash wear: counting what the store does, and modelling how long a region lasts.
//!
//! The model (also in `docs/wear.md`, with figures measured on the simulated flash):
//!
//! ```text
//! levels/day      = 86 400 / block_time
//! signatures/day  = keys × marks_per_key × levels/day          (2: preattestation + attestation)
//! records/day     = signatures/day / max(N, 1)                 (one ceiling per N levels per mark)
//! writes/sig      = records/day / signatures/day               (= 1/N)
//! bytes/day       = records/day × record_bytes
//! erases/day      = bytes/day / (page_bytes − live_bytes)      (live records are copied along)
//! life (years)    = (region/page_bytes) × endurance / erases/day / 365
//! ```

use embedded_storage_async::nor_flash::{ErrorType, NorFlash, ReadNorFlash};

/// A flash that counts bytes programmed and pages erased (and read, for benchmarks).
pub(crate) struct Counted<F> {
    inner: F,
    pub(crate) bytes_read: u64,
    pub(crate) bytes_written: u64,
    /// Program operations (one per write call).
    pub(crate) programs: u64,
    pub(crate) pages_erased: u32,
    /// Where the newest item write ended (the free space of the page being filled starts
    /// there); `None` until an item is written, and after its page is erased.
    pub(crate) item_end: Option<u32>,
}

impl<F> Counted<F> {
    pub(crate) const fn new(inner: F) -> Self {
        Counted {
            inner,
            bytes_read: 0,
            bytes_written: 0,
            programs: 0,
            pages_erased: 0,
            item_end: None,
        }
    }

    pub(crate) fn into_inner(self) -> F {
        self.inner
    }
}

impl<F: ErrorType> ErrorType for Counted<F> {
    type Error = F::Error;
}

impl<F: ReadNorFlash> ReadNorFlash for Counted<F> {
    const READ_SIZE: usize = F::READ_SIZE;

    async fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        self.bytes_read = self.bytes_read.saturating_add(bytes.len() as u64);
        self.inner.read(offset, bytes).await
    }

    fn capacity(&self) -> usize {
        self.inner.capacity()
    }
}

impl<F: NorFlash> NorFlash for Counted<F> {
    const WRITE_SIZE: usize = F::WRITE_SIZE;
    const ERASE_SIZE: usize = F::ERASE_SIZE;

    async fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        if self
            .item_end
            .is_some_and(|end| (from..to).contains(&end.saturating_sub(1)))
        {
            self.item_end = None;
        }
        let result = self.inner.erase(from, to).await;
        let pages = to.saturating_sub(from) / u32::try_from(F::ERASE_SIZE).unwrap_or(u32::MAX);
        self.pages_erased = self.pages_erased.saturating_add(pages);
        result
    }

    async fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        // `sequential-storage` keeps a page's state in its first and last word and items in
        // between, appended in order: a write between the two is an item's.
        let (page, word) = (page_size::<F>(), word_size::<F>());
        let at = offset % page;
        let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        if at >= word && at.saturating_add(len) <= page - word {
            self.item_end = Some(offset.saturating_add(len));
        }
        let result = self.inner.write(offset, bytes).await;
        self.programs = self.programs.saturating_add(1);
        self.bytes_written = self
            .bytes_written
            .saturating_add(u64::try_from(bytes.len()).unwrap_or(u64::MAX));
        result
    }
}

/// The erase page size of `F`.
pub(crate) fn page_size<F: NorFlash>() -> u32 {
    u32::try_from(F::ERASE_SIZE).unwrap_or(u32::MAX).max(1)
}

/// The word `sequential-storage` aligns to: the larger of `F`'s read and write sizes.
pub(crate) fn word_size<F: NorFlash>() -> u32 {
    u32::try_from(F::WRITE_SIZE.max(F::READ_SIZE)).unwrap_or(u32::MAX)
}

/// Inputs of the wear model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WearModel {
    /// Bytes of flash given to the store.
    pub region_bytes: u32,
    /// Erase page size.
    pub page_bytes: u32,
    /// Erase cycles each page survives (10 000 or 100 000 for common NOR).
    pub endurance: u32,
    /// Baking keys on the board.
    pub keys: u32,
    /// Seconds per level.
    pub block_time_s: u32,
    /// N: levels reserved ahead ([`super::NorStoreConfig::ceiling_ahead`]).
    pub ceiling_ahead: u32,
    /// Watermarks each key moves every level (2: preattestation and attestation; blocks are rare).
    pub marks_per_key: u32,
    /// Flash bytes one ceiling record takes, item header and padding included.
    pub record_bytes: u32,
    /// Bytes of live records copied forward each time a page is reclaimed.
    pub live_bytes: u32,
}

/// What the model predicts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WearEstimate {
    /// Consensus signatures per day.
    pub signatures_per_day: f64,
    /// Records written per day.
    pub records_per_day: f64,
    /// Flash writes per consensus signature.
    pub writes_per_signature: f64,
    /// Bytes programmed per day.
    pub bytes_per_day: f64,
    /// Page erases per day.
    pub erases_per_day: f64,
    /// Years until the average page reaches its endurance.
    pub life_years: f64,
}

impl WearModel {
    /// Record size on a flash with 4-byte words: 8-byte item header, 2-byte key, 4-byte record
    /// number, 10 bytes of position (level, round, 2 bytes of padding) and an 8-byte MAC.
    pub const CEILING_RECORD_BYTES: u32 = 8 + (2 + 4 + 10 + 8u32).div_ceil(4) * 4;

    /// Levels one ceiling record covers for a mark signed every level, with board glue doing
    /// its idle-time work between levels ([`super::Store::reserve_ahead`]): the ceiling is
    /// raised to `signed + N` once fewer than max(1, N/8) levels of headroom are left, so a
    /// record lasts N − max(1, N/8) + 1 levels (15 for N = 16). N = 0 writes every level.
    pub fn levels_per_record(&self) -> u32 {
        match self.ceiling_ahead {
            0 => 1,
            n => n - (n / 8).max(1) + 1,
        }
    }

    /// Evaluate the model.
    pub fn estimate(&self) -> WearEstimate {
        let levels_per_day = 86_400.0 / f64::from(self.block_time_s.max(1));
        let signatures_per_day =
            f64::from(self.keys) * f64::from(self.marks_per_key) * levels_per_day;
        let records_per_day = signatures_per_day / f64::from(self.levels_per_record());
        let bytes_per_day = records_per_day * f64::from(self.record_bytes);
        let usable = f64::from(self.page_bytes.saturating_sub(self.live_bytes).max(1));
        let erases_per_day = bytes_per_day / usable;
        let pages = f64::from(self.region_bytes / self.page_bytes.max(1));
        let life_days = pages * f64::from(self.endurance) / erases_per_day;
        WearEstimate {
            signatures_per_day,
            records_per_day,
            writes_per_signature: if signatures_per_day > 0.0 {
                records_per_day / signatures_per_day
            } else {
                0.0
            },
            bytes_per_day,
            erases_per_day,
            life_years: life_days / 365.0,
        }
    }
}
