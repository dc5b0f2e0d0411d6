//! The board's store: records in a log over erased NOR-flash pages.
//!
//! Built on [`sequential_storage::map`]: a key–value log over a ring of erase pages in which
//! every item carries a CRC, a newer item for a key supersedes the older one, and a full page
//! is reclaimed by copying its live items to the next erased page (the crate is written and
//! fuzzed to survive a power cut at any point). Why it rather than a home-grown log: it is
//! `no_std` without allocation, already power-cut tested upstream, reclaims pages by itself, and
//! keeps the item layout (header + CRC) in one audited place; pawl adds what it does not do —
//! authentication, sealing, a record number for rollback detection, and the ceiling rule.
//!
//! # Records
//!
//! Map keys are `u16`: the high byte says what the record is, the low byte which one. Every
//! value starts with the record number `seq` (u32, little-endian), which grows by one with each
//! record written and is what the anti-rollback counter tracks. On a board with an OTP epoch
//! (`store::epoch`) the first record of a boot jumps to the first number of a new epoch
//! (`epoch << 19`), which is then burned into OTP.
//!
//! | key | value after `seq` | written when |
//! |---|---|---|
//! | `0x00_00` meta | BLAKE2b-64 MAC | re-provisioning (brings `seq` level with the guard) |
//! | `0x00_01` format | format version (u16) ‖ MAC | before the first key record of a store without one |
//! | `0x01_ss` key in slot `ss` | XChaCha20-Poly1305 seal of postcard(`StoredKey`), bound to key and `seq`; the seal of nothing when the key was removed | key generated/imported, policy or duty set, key removed |
//! | `0x02_ii` mark name `ii` | chain id (4) ‖ key hash (21) ‖ kind (1) ‖ MAC | first mark for a (chain, key, kind) |
//! | `0x03_ii` ceiling of mark `ii` | level (u32) ‖ round (u32) ‖ budget note (u16) ‖ MAC | a signature above the stored ceiling |
//! | `0x04_ii`, `0x05_ii`, `0x06_00` forget, lower mark `ii`; forget table | see `store::resets` | an operator's undo, confirmed on the board; reusing a name-only index |
//! | `0x07_00` pad (format 2) | zeros, no `seq`; skipped at load | idle time, to close a page with under 128 bytes left (`ahead`) |
//!
//! MACs are keyed by the board key (see `seal`), over the map key, `seq` and the fields, so
//! neither a flash editor nor a corrupted copy can lower a ceiling or rename a mark.
//!
//! # Format version
//!
//! [`FORMAT_VERSION`] names the layout in the table above. A store without a format record
//! was written before the record existed, in layout 1, and loads as such. Layout 2 adds the
//! pad item; a layout-1 store is raised to 2 (a new format record) before its first pad, so a
//! firmware that knows only layout 1 refuses it by number instead of tripping on the pad. A firmware that
//! changes a layout bumps the number and keeps reading every older one; a firmware that meets
//! a newer number refuses the store ([`StoreError::NewerFormat`]) instead of misreading it —
//! downgrading firmware over a store is not supported. Fields inside a sealed key record are
//! only ever appended ([`super::StoredKey::decode`]), which needs no new version.
//! `core/tests/fixtures/store-v1/` is an image written by the QEMU firmware; CI loads it.
//!
//! # Ceiling reservation
//!
//! [`Store::persist_mark`] for a position at or below the stored ceiling of that mark returns at
//! once: it was already durable. Above it, the store writes a new ceiling
//! `(level + N, u32::MAX)` ([`NorStoreConfig::ceiling_ahead`]) and only then returns, so about
//! one signature in N per mark writes flash. After a restart the ceilings are the marks: the
//! board refuses everything up to N levels ahead of where it was — a few missed slots, never a
//! double signature. N = 0 stores exact positions.
//!
//! Board glue calls [`Store::reserve_ahead`] when no request is waiting: a mark signed to
//! within N/8 levels of its ceiling (2 for N = 16) gets its next ceiling then, so at the
//! chain's pace no signature waits on flash. Marks not signed since boot are left alone (their
//! ceilings stay where the last run left them). The same idle time closes a nearly full page,
//! so the page reclaim (copy and erase) runs then and not inside a request's write (`ahead`).
//! On a host file ([`Durability`]) a reservation is not waited for when written; the first
//! signature that relies on it waits until the file holds it.
//!
//! # Power failure, step by step
//!
//! 1. Cut before a ceiling record is complete: its CRC fails, the item is ignored, the previous
//!    ceiling stands. `persist_mark` had not returned, so no signature above the old ceiling
//!    left the board.
//! 2. Cut after the record, before the guard advanced: flash is one record ahead of the guard,
//!    which is accepted (the guard only has to be at or below the newest record).
//! 3. Cut while a page is being reclaimed: the source page is erased only after its live items
//!    are copied; `sequential-storage` finishes or redoes the migration on the next access.
//! 4. Cut after a mark name is written, before its first ceiling: the name is loaded with no
//!    position (nothing was signed for it). Its slot holds its index, so no other mark is
//!    named under it, until a new mark needs the slot and the table has no other room: then
//!    one forget-table record voids the name (nothing was signed under it), and the index is
//!    reused. Cuts of this kind cannot fill the table for good.
//! 5. Cut while a forget or lowering is written: one record, so before it is complete the
//!    marks are as they were, after it the undo holds for all of them (`store::resets`).
//!
//! A write that fails part-way (a power cut, or the flash reporting an error) may have left
//! its record complete. The store never acts on a guess: a slot whose name may have been
//! voided writes its name again before its next ceiling, and a mark whose forget or lowering
//! failed takes a new ceiling before anything above (0, 0) counts as durable. The rollback
//! guard is advanced after the record is durable; if that fails, the record stands (the write
//! answers `Ok`, as the board's state now holds it) and the next write first retries the
//! guard, refusing before it writes anything if the guard still fails.
//!
//! At boot ([`Store::load`]) a record whose MAC or seal fails is [`StoreError::Corrupted`], and
//! an image whose newest record is older than the guard's floor is [`StoreError::RolledBack`],
//! and one whose newest record is from an epoch below OTP's is [`StoreError::OtpEpochBehind`]
//! (a whole-flash image written back; a cut between a boot's first record and its OTP burn
//! leaves the flash ahead, which loads): the board then refuses to sign until re-provisioned,
//! rather than starting from zero.

use core::fmt;
use core::ops::Range;

use embassy_futures::block_on;
use embedded_storage_async::nor_flash::NorFlash;
use sequential_storage::cache::key_pointers::ArrayKeyPointers;
use sequential_storage::cache::page_pointers::ArrayPagePointers;
use sequential_storage::cache::page_states::ArrayPageStates;
use sequential_storage::cache::{Cache, Uncached};
use sequential_storage::map::{MapConfig, MapStorage};
use zeroize::{Zeroize, ZeroizeOnDrop};

mod ahead;
mod record;
mod scan;

pub use record::FORMAT_VERSION;
use record::*;

use super::durable::{Durability, Synchronous};
use super::epoch::EpochTrack;
use super::resets;
use super::seal::{MAC_LEN, SEAL_OVERHEAD, SealKeys};
use super::wear::Counted;
use super::{EpochReport, Record, RollbackGuard, Store, StoreError, StoredKey, WearCounters};
use crate::board::MAX_MARKS;
use crate::protocol::MAX_KEYS;
use crate::watermark::MarkId;

/// The board's 32-byte secret from which sealing and MAC keys are derived (RP2350: OTP; the
/// simulator: a file). Zeroized on drop; `Debug` shows nothing.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct BoardKey([u8; 32]);

impl BoardKey {
    /// Wrap key bytes.
    pub const fn new(bytes: [u8; 32]) -> Self {
        BoardKey(bytes)
    }
}

impl fmt::Debug for BoardKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BoardKey(..)")
    }
}

/// Where the store lives and how far ahead it reserves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NorStoreConfig {
    /// Flash byte range; whole erase pages, at least two.
    pub region: Range<u32>,
    /// N: levels reserved ahead of a signature (0 = store exact positions).
    pub ceiling_ahead: u32,
}

impl NorStoreConfig {
    /// Default N, from the wear budget in `docs/wear.md`: 16 levels (96 s at 6 s blocks) keeps
    /// a 256 KiB region on 10k-cycle flash alive for decades with four keys.
    pub const DEFAULT_CEILING_AHEAD: u32 = 16;
}

struct MarkSlot {
    id: MarkId,
    index: u8,
    /// Stored ceiling; `None` when the name was written but no ceiling yet (nothing was
    /// signed under this slot: it may be reclaimed). After a failed forget or lowering,
    /// `Some((0, 0))`: the ceiling on flash is unknown, so the next position needs a write.
    ceiling: Option<(u32, u32)>,
    /// The name record is known to be on flash and not voided; `false` after a failed name
    /// write or a failed forget of this slot: the name is written again before a ceiling.
    named: bool,
    /// Highest level made durable through [`Store::persist_mark`] since boot (RAM only).
    signed: Option<u32>,
    /// The flash write point of the ceiling record ([`Durability`]); a signature relies on
    /// the ceiling only once the flash has settled this far.
    point: u64,
}

/// Most erase pages a store region may have (1 MiB of 4 KiB pages): the size of the page caches.
pub const MAX_PAGES: usize = 256;

/// Map keys the key cache holds: every record kind of the table above, each at its most.
const CACHED_KEYS: usize = 2 + MAX_KEYS + 4 * MAX_MARKS + 1;

/// What `sequential-storage` remembers between calls so that a write, a lookup and a page
/// reclaim do not re-read the region: each page's state, where each page's free space starts,
/// and where the newest item of each map key lies (`docs/design.md` §8, "Store speed").
type StoreCache = Cache<
    ArrayPageStates<MAX_PAGES>,
    ArrayPagePointers<MAX_PAGES>,
    ArrayKeyPointers<u16, CACHED_KEYS>,
    u16,
>;

type Map<F> = MapStorage<u16, Counted<F>, StoreCache>;

fn new_cache() -> StoreCache {
    Cache::new(
        ArrayPageStates::new(),
        ArrayPagePointers::new(),
        ArrayKeyPointers::new(),
    )
}

/// The board's store over a [`NorFlash`] region, with a [`RollbackGuard`] and, on a host
/// file, a [`Durability`] telling when writes reach it.
pub struct NorStore<F: NorFlash, G: RollbackGuard, D: Durability = Synchronous> {
    /// Always `Some` between calls (taken only to renew the cache, see [`Self::renew_cache`]).
    map: Option<Map<F>>,
    region: Range<u32>,
    guard: G,
    seal: SealKeys,
    ceiling_ahead: u32,
    /// Newest record number on flash.
    seq: u32,
    marks: heapless::Vec<MarkSlot, MAX_MARKS>,
    wear: WearCounters,
    /// Flash bytes read (see [`Self::bytes_read`]).
    bytes_read: u64,
    /// Flash program operations (see [`Self::programs`]).
    programs: u64,
    /// Per mark index, the record number before which its records are void (forgets and the
    /// forget table, as loaded and written since): what the next forget table carries on.
    forgotten: [u32; MAX_MARKS],
    /// A durable record the rollback guard failed to advance to: retried before writing.
    guard_behind: Option<u32>,
    /// When writes reach the medium.
    durability: D,
    /// The record being written is an idle-time reservation: it is not waited for.
    reserving: bool,
    /// The newest reservation not yet settled when written, and its flash point: the guard
    /// advances to it once it settles.
    guard_pending: Option<(u32, u64)>,
    /// The write budget's note ([`Store::budget_note`]): written into every ceiling record,
    /// and after a load the newest ceiling record's (`None`: no ceiling record at all).
    note: Option<u16>,
    /// The format record's version, if the store holds one (written before the first key
    /// otherwise, and raised to [`FORMAT_VERSION`] before the first pad).
    format: Option<u16>,
    /// The OTP rollback anchor: read at load, burned after this boot's first record
    /// (`store::epoch`).
    epoch: EpochTrack,
    buf: [u8; BUF],
}

impl<F: NorFlash, G: RollbackGuard> NorStore<F, G> {
    /// A store on `flash` in `config.region`, sealing under `board_key`. Nothing is read until
    /// [`Store::load`]. Fails with [`StoreError::Io`] if the region is not whole pages, has
    /// fewer than two or more than [`MAX_PAGES`].
    pub fn new(
        flash: F,
        config: NorStoreConfig,
        board_key: &BoardKey,
        guard: G,
    ) -> Result<Self, StoreError> {
        NorStore::with_durability(flash, config, board_key, guard, Synchronous)
    }
}

impl<F: NorFlash, G: RollbackGuard, D: Durability> NorStore<F, G, D> {
    /// [`NorStore::new`] on a flash whose writes reach their medium later (`durability`).
    pub fn with_durability(
        flash: F,
        config: NorStoreConfig,
        board_key: &BoardKey,
        guard: G,
        durability: D,
    ) -> Result<Self, StoreError> {
        let pages = config.region.len() / F::ERASE_SIZE.max(1);
        if pages > MAX_PAGES {
            return Err(StoreError::Io);
        }
        let map_config = MapConfig::try_new(config.region.clone()).map_err(|_| StoreError::Io)?;
        Ok(NorStore {
            map: Some(MapStorage::new(
                Counted::new(flash),
                map_config,
                new_cache(),
            )),
            region: config.region,
            guard,
            seal: SealKeys::new(&board_key.0),
            ceiling_ahead: config.ceiling_ahead,
            seq: 0,
            marks: heapless::Vec::new(),
            wear: WearCounters::default(),
            bytes_read: 0,
            programs: 0,
            forgotten: [0; MAX_MARKS],
            guard_behind: None,
            durability,
            reserving: false,
            guard_pending: None,
            note: None,
            format: None,
            epoch: EpochTrack::default(),
            buf: [0; BUF],
        })
    }

    /// Give the flash back (tests reboot on its image).
    pub fn into_flash(self) -> F {
        // `map` is `None` only inside `renew_cache`, which has no way out before it puts the
        // map back.
        #[allow(clippy::expect_used)]
        self.map
            .expect("the store's map is always present between calls")
            .destroy()
            .0
            .into_inner()
    }

    fn map(&mut self) -> Result<&mut Map<F>, StoreError> {
        self.map.as_mut().ok_or(StoreError::Io)
    }

    /// Start the cache afresh: after the region was erased behind the crate's back
    /// (`erase_all` does not tell the cache).
    fn renew_cache(&mut self) -> Result<(), StoreError> {
        let config = MapConfig::try_new(self.region.clone()).map_err(|_| StoreError::Io)?;
        // Nothing between `take` and the assignment can fail or return early.
        if let Some(map) = self.map.take() {
            let (flash, _) = map.destroy();
            self.map = Some(MapStorage::new(flash, config, new_cache()));
        }
        Ok(())
    }

    /// The stored ceiling of `id`, if any.
    pub fn ceiling(&self, id: &MarkId) -> Option<(u32, u32)> {
        self.marks.iter().find(|m| m.id == *id)?.ceiling
    }

    /// Bytes read from flash since this store was made (what a lookup or a page reclaim
    /// costs: `benches/store_wrap.rs`).
    /// Counted as of the last write.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// Flash program operations (write calls) since this store was made, as of the last
    /// write: with the erases in [`Store::wear`], what a step costs in flash time.
    pub fn programs(&self) -> u64 {
        self.programs
    }

    /// Number of the newest record written or loaded.
    pub fn seq(&self) -> u32 {
        self.seq
    }

    /// Write a format record claiming `version` — what a newer firmware would leave behind.
    /// For tests and tools that check how a store from the future is refused; firmware never
    /// calls it.
    pub fn stamp_format(&mut self, version: u16) -> Result<(), StoreError> {
        self.write_authenticated(map_key(TAG_META, META_FORMAT), &version.to_le_bytes())?;
        self.format = Some(version);
        Ok(())
    }

    fn sync_wear(&mut self) {
        if let Some(map) = self.map.as_mut() {
            let counted = map.flash();
            self.bytes_read = counted.bytes_read;
            self.programs = counted.programs;
            self.wear.bytes_written = counted.bytes_written;
            self.wear.pages_erased = counted.pages_erased;
        }
    }

    /// The number the next record gets: the first of a new OTP epoch for a boot's first
    /// record on an anchored board (`store::epoch`).
    fn next_seq(&self) -> Result<u32, StoreError> {
        let next = self.seq.checked_add(1).ok_or(StoreError::Full)?;
        Ok(self.epoch.next_seq(next))
    }

    /// Read the OTP anchor (if any) for the store as scanned: this boot's epoch is decided.
    /// Returns (flash epoch, OTP epoch).
    fn arm_epoch(&mut self) -> Result<Option<(u32, u32)>, StoreError> {
        self.epoch = EpochTrack::default();
        let seq = self.seq;
        let Some(counter) = self.guard.anchor() else {
            return Ok(None);
        };
        self.epoch = EpochTrack::arm(counter, seq)?;
        Ok(self.epoch.report.map(|r| (r.flash, r.otp)))
    }

    /// Whether this boot has yet to open its OTP epoch (idle-time work waits for it: the
    /// first record of a boot is a request's, charged by the write budget).
    pub(super) fn epoch_due(&self) -> bool {
        self.epoch.due.is_some()
    }

    /// Write record `seq` (from [`Self::next_seq`]; `body` is the value without its leading
    /// `seq`), then advance the guard.
    fn write(&mut self, key: u16, seq: u32, body: &[u8]) -> Result<(), StoreError> {
        if let Some(durable) = self.guard_behind {
            // Nothing is written while the guard lags behind a durable record.
            self.guard.advance(durable)?;
            self.guard_behind = None;
        }
        let mut value = [0u8; BUF];
        let len = 4 + body.len();
        let slot = value.get_mut(..len).ok_or(StoreError::Full)?;
        slot[..4].copy_from_slice(&seq.to_le_bytes());
        slot[4..].copy_from_slice(body);
        let region = self.region.clone();
        let map = self.map.as_mut().ok_or(StoreError::Io)?;
        let written = block_on(map.store_item(&mut self.buf, &key, &&value[..len]));
        // Durable means readable: the record is read back as a load would find it (the newest
        // item for its key). Flash whose free space was not erased (damage, tampering) takes
        // a write the crate reports done and then cannot find; that write is a failure here,
        // so nothing is signed on it (found by the coverage-guided store fuzzer). The lookup
        // goes through an uncached view: the cache would point straight at the new item, and
        // only walking its page as a load does proves a load will find it.
        let result = written.map_err(flash_error).and_then(|()| {
            let config = MapConfig::try_new(region).map_err(|_| StoreError::Io)?;
            let mut view: MapStorage<u16, _, _> = MapStorage::new(
                map.flash(),
                config,
                Cache::<Uncached, Uncached, Uncached, u16>::new_uncached(),
            );
            match block_on(view.fetch_item::<&[u8]>(&mut self.buf, &key)) {
                Ok(Some(back)) if back == &value[..len] => Ok(()),
                Ok(_) => Err(StoreError::Io),
                Err(e) => Err(flash_error(e)),
            }
        });
        value.zeroize();
        // Whether or not the write reported success, the record may be on flash: never hand
        // its number out twice.
        self.seq = seq;
        self.sync_wear();
        result?;
        self.wear.records = self.wear.records.saturating_add(1);
        let point = self.durability.issued();
        if self.reserving && !self.durability.is_settled(point) {
            // An idle-time reservation: the signature that needs it waits for it; the guard
            // follows once it has settled (a guard behind the flash is accepted).
            self.guard_pending = Some((seq, point));
            return Ok(());
        }
        self.durability.settle(point)?;
        self.guard_pending = None;
        // The record is durable: now this boot's OTP epoch, if it opened one (flash first,
        // then OTP: `store::epoch`).
        self.epoch.written(seq, self.guard.anchor());
        // The record is durable: it holds whatever the guard does. A guard behind the flash
        // is accepted (as after a power cut between the two); the next write retries it.
        self.guard_behind = self.guard.advance(seq).is_err().then_some(seq);
        Ok(())
    }

    /// Write the format record: the layout this firmware writes.
    fn write_format(&mut self) -> Result<(), StoreError> {
        self.write_authenticated(
            map_key(TAG_META, META_FORMAT),
            &FORMAT_VERSION.to_le_bytes(),
        )?;
        self.format = Some(FORMAT_VERSION);
        Ok(())
    }

    /// Advance the guard to a reservation that has settled since it was written (no wait).
    fn catch_up_guard(&mut self) {
        if let Some((seq, point)) = self.guard_pending
            && self.guard_behind.is_none()
            && self.durability.is_settled(point)
        {
            self.guard_pending = None;
            self.guard_behind = self.guard.advance(seq).is_err().then_some(seq);
        }
    }

    /// Records [`Store::persist_mark`] of this position writes, before any epoch charge.
    fn records_for(&self, id: &MarkId, level: u32, round: u32) -> u32 {
        match self.marks.iter().find(|m| m.id == *id) {
            Some(m) if m.ceiling.is_some_and(|c| (level, round) <= c) => 0,
            // The ceiling, after the name when it must be written again.
            Some(m) => 1 + u32::from(!m.named),
            // Name, then ceiling; a full table first voids a slot with no position (one more
            // record), and writes nothing without one (`Full`).
            None if self.marks.is_full() => {
                if self.marks.iter().any(|m| m.ceiling.is_none()) {
                    3
                } else {
                    0
                }
            }
            None => 2,
        }
    }

    /// Write a MAC'd record: `fields ‖ MAC(key, seq, fields)`.
    fn write_authenticated(&mut self, key: u16, fields: &[u8]) -> Result<(), StoreError> {
        let seq = self.next_seq()?;
        self.write_authenticated_as(key, seq, fields)
    }

    /// [`Self::write_authenticated`] as record `seq` (from [`Self::next_seq`]).
    fn write_authenticated_as(
        &mut self,
        key: u16,
        seq: u32,
        fields: &[u8],
    ) -> Result<(), StoreError> {
        let mac = mac_fields(&self.seal, key, seq, fields);
        let mut body = [0u8; MAX_FIELDS + MAC_LEN];
        let len = fields.len() + MAC_LEN;
        body[..fields.len()].copy_from_slice(fields);
        body[fields.len()..len].copy_from_slice(&mac);
        self.write(key, seq, &body[..len])
    }

    /// Forget the slots at these mark indices with **one** forget-table record, all or none:
    /// every record of theirs older than it is void. The table carries every earlier forget
    /// on, so the page reclaim that drops an older table loses nothing (`store::resets`).
    fn forget_indices(&mut self, doomed: &[u8]) -> Result<(), StoreError> {
        let seq = self.next_seq()?;
        let mut table = self.forgotten;
        for &index in doomed {
            *table
                .get_mut(usize::from(index))
                .ok_or(StoreError::Corrupted)? = seq;
        }
        let fields = resets::table_fields(&table);
        let written = self.write_authenticated_as(map_key(TAG_FORGET_TABLE, 0), seq, &fields);
        if written.is_err() {
            // The table may be on flash all the same. The slots stay (nothing was forgotten
            // as far as the board knows), but their names may be void and their ceilings with
            // them: the name is written again, and no position counts as durable, before the
            // next ceiling. `forgotten` stays: a later table must not void them on a guess.
            for m in self.marks.iter_mut().filter(|m| doomed.contains(&m.index)) {
                m.named = false;
                if m.ceiling.is_some() {
                    m.ceiling = Some((0, 0));
                }
            }
            return written;
        }
        self.forgotten = table;
        self.marks.retain(|m| !doomed.contains(&m.index));
        Ok(())
    }

    /// Write the ceiling of mark slot `i` and remember it.
    fn write_ceiling(&mut self, i: usize, target: (u32, u32)) -> Result<(), StoreError> {
        if !self.marks[i].named {
            // A name is always on flash, and not voided, before a ceiling of its index.
            let (index, id) = (self.marks[i].index, self.marks[i].id);
            self.write_authenticated(map_key(TAG_NAME, index), &name_fields(&id))?;
            self.marks[i].named = true;
        }
        // level ‖ round ‖ the budget note (u16; two zero bytes before the note existed): with
        // the 2-byte map key, 4-byte `seq` and 8-byte MAC the item is 24 bytes, whole words, so
        // it is programmed in one write after its header (22 bytes took a third write for the
        // odd tail: one more flush per ceiling).
        let mut fields = [0u8; CEILING_FIELDS];
        fields[..4].copy_from_slice(&target.0.to_le_bytes());
        fields[4..8].copy_from_slice(&target.1.to_le_bytes());
        fields[8..].copy_from_slice(&self.note.unwrap_or(0).to_le_bytes());
        self.write_authenticated(map_key(TAG_CEILING, self.marks[i].index), &fields)?;
        self.marks[i].ceiling = Some(target);
        self.marks[i].point = self.durability.issued();
        Ok(())
    }
}

impl<F: NorFlash, G: RollbackGuard, D: Durability> Store for NorStore<F, G, D> {
    fn load(
        &mut self,
        visit: &mut dyn FnMut(Record<'_>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let floor = self.guard.floor()?;
        self.epoch = EpochTrack::default();
        let mut keys = self.scan()?;
        if self.seq < floor {
            return Err(StoreError::RolledBack);
        }
        if let Some((flash, otp)) = self.arm_epoch()?
            && flash < otp
        {
            return Err(StoreError::OtpEpochBehind { flash, otp });
        }
        keys.sort_unstable_by_key(|(slot, _)| *slot);
        for (slot, key) in &keys {
            visit(Record::Key { slot: *slot, key })?;
        }
        for mark in &self.marks {
            if let Some((level, round)) = mark.ceiling {
                visit(Record::Mark {
                    id: mark.id,
                    level,
                    round,
                })?;
            }
        }
        Ok(())
    }

    fn persist_mark(&mut self, id: &MarkId, level: u32, round: u32) -> Result<(), StoreError> {
        let found = self.marks.iter().position(|m| m.id == *id);
        if let Some(i) = found
            && let Some(ceiling) = self.marks[i].ceiling
            && (level, round) <= ceiling
        {
            // A reservation made in idle time may still be on its way to the medium.
            self.durability.settle(self.marks[i].point)?;
            self.catch_up_guard();
            let slot = &mut self.marks[i];
            slot.signed = Some(slot.signed.map_or(level, |s| s.max(level)));
            return Ok(());
        }
        let target = if self.ceiling_ahead == 0 {
            (level, round)
        } else {
            (level.saturating_add(self.ceiling_ahead), u32::MAX)
        };
        let i = match found {
            Some(i) => i,
            None => {
                if self.marks.is_full() {
                    // A slot with a name and no position (a power cut between a name and its
                    // first ceiling, or a ceiling write that failed): nothing was ever signed
                    // under it, so it is voided and its room taken, rather than left to fill
                    // the table for good.
                    let orphan = self
                        .marks
                        .iter()
                        .find(|m| m.ceiling.is_none())
                        .map(|m| m.index)
                        .ok_or(StoreError::Full)?;
                    self.forget_indices(&[orphan])?;
                }
                // The lowest index no slot holds: a forgotten mark's index is reused, since its
                // forget record voids everything older under it.
                let index = (0..=u8::MAX)
                    .find(|i| self.marks.iter().all(|m| m.index != *i))
                    .ok_or(StoreError::Full)?;
                // Held from now on, even if its name write fails: the name may be on flash.
                self.marks
                    .push(MarkSlot {
                        id: *id,
                        index,
                        ceiling: None,
                        named: false,
                        signed: None,
                        point: 0,
                    })
                    .map_err(|_| StoreError::Full)?;
                self.marks.len() - 1
            }
        };
        self.write_ceiling(i, target)?;
        let slot = &mut self.marks[i];
        slot.signed = Some(slot.signed.map_or(level, |s| s.max(level)));
        Ok(())
    }

    fn persist_cost(&self, id: &MarkId, level: u32, round: u32) -> u32 {
        let records = self.records_for(id, level, round);
        if records > 0 && self.epoch_due() {
            // This boot's first record opens an OTP epoch (`store::epoch`).
            records.saturating_add(super::epoch::BURN_COST)
        } else {
            records
        }
    }

    fn epoch(&self) -> Option<EpochReport> {
        self.epoch.report
    }

    fn budget_note(&self) -> Option<u16> {
        self.note
    }

    fn set_budget_note(&mut self, note: u16) {
        self.note = Some(note);
    }

    fn reserve_ahead(&mut self) -> Result<bool, StoreError> {
        self.idle_work()
    }

    fn forget_marks(&mut self, ids: &[MarkId]) -> Result<(), StoreError> {
        let mut doomed: heapless::Vec<u8, MAX_MARKS> = heapless::Vec::new();
        for m in self.marks.iter().filter(|m| ids.contains(&m.id)) {
            doomed.push(m.index).map_err(|_| StoreError::Full)?;
        }
        if doomed.is_empty() {
            return Ok(());
        }
        self.forget_indices(&doomed)
    }

    fn lower_mark(&mut self, id: &MarkId, level: u32, round: u32) -> Result<(), StoreError> {
        let i = self
            .marks
            .iter()
            .position(|m| m.id == *id)
            .ok_or(StoreError::Corrupted)?;
        let mut fields = [0u8; CEILING_FIELDS];
        fields[..4].copy_from_slice(&level.to_le_bytes());
        fields[4..8].copy_from_slice(&round.to_le_bytes());
        let written = self.write_authenticated(map_key(TAG_LOWER, self.marks[i].index), &fields);
        if written.is_err() {
            // The lowering may be on flash all the same: the ceiling there is unknown, so no
            // position counts as durable until a new ceiling is written.
            self.marks[i].ceiling = Some((0, 0));
        }
        written?;
        let slot = &mut self.marks[i];
        slot.ceiling = Some((level, round));
        slot.signed = None;
        Ok(())
    }

    fn persist_key(&mut self, slot: u8, key: &StoredKey) -> Result<(), StoreError> {
        if usize::from(slot) >= MAX_KEYS {
            return Err(StoreError::Full);
        }
        if self.format.is_none() {
            // Once per store, before its first key: the layout it is written in.
            self.write_format()?;
        }
        let map_key = map_key(TAG_KEY, slot);
        let seq = self.next_seq()?;
        let mut body = [0u8; SEAL_OVERHEAD + KEY_PLAINTEXT];
        let written = postcard::to_slice(key, &mut body[SEAL_OVERHEAD..])
            .map_err(|_| StoreError::Full)?
            .len();
        let sealed = self.seal.seal(&key_aad(map_key, seq), &mut body, written);
        let result = sealed.and_then(|len| self.write(map_key, seq, &body[..len]));
        body.zeroize();
        result
    }

    fn remove_key(&mut self, slot: u8) -> Result<(), StoreError> {
        if usize::from(slot) >= MAX_KEYS {
            return Err(StoreError::Full);
        }
        let map_key = map_key(TAG_KEY, slot);
        let seq = self.next_seq()?;
        let mut body = [0u8; SEAL_OVERHEAD];
        let sealed = self.seal.seal(&key_aad(map_key, seq), &mut body, 0)?;
        self.write(map_key, seq, &body[..sealed])
    }

    fn wear(&self) -> WearCounters {
        self.wear
    }

    fn reprovision(&mut self, erase: bool) -> Result<(), StoreError> {
        let floor = self.guard.floor()?;
        if erase {
            let result = block_on(self.map()?.erase_all());
            self.sync_wear();
            // The crate's cache does not see a whole-region erase.
            self.renew_cache()?;
            result.map_err(flash_error)?;
            self.marks.clear();
            self.forgotten = [0; MAX_MARKS];
            self.format = None;
            self.seq = self.seq.max(floor);
        } else {
            self.scan()?;
            self.seq = self.seq.max(floor);
        }
        // The re-provisioning record opens a new OTP epoch above the one burned: the store
        // loads again (`store::epoch`).
        self.arm_epoch()?;
        self.write_authenticated(map_key(TAG_META, META_REPROVISION), &[])
    }
}
