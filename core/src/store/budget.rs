//! The flash write budget: a token bucket over durable watermark writes, so that a hostile
//! host cannot wear the flash out faster than the budget allows (`docs/wear.md`, "Wear under
//! attack").
//!
//! [`Budgeted`] wraps the board's [`Store`] and is the one place the rule lives:
//!
//! * In **operational mode** every record [`Store::persist_mark`] would write
//!   ([`Store::persist_cost`]) takes a token; tokens come back at
//!   [`WriteBudget::records_per_hour`] up to [`WriteBudget::capacity`]. With too few tokens the
//!   write is refused **before** anything is written, with [`StoreError::WriteBudget`] naming
//!   when to retry: a transient refusal that changes nothing (the board stays healthy, the
//!   mark stays where it was, nothing is signed). The board asks first
//!   ([`Store::may_persist`]) when a request waits for its button, so that an operator is not
//!   asked to press for a write the budget then refuses. Idle-time reservation
//!   ([`Store::reserve_ahead`]) spends tokens only while more than
//!   [`WriteBudget::idle_reserve`] are left, so it never takes what signing needs.
//! * **Power cycles mint nothing.** Every ceiling record carries, under its MAC, the number of
//!   tokens left after it was written ([`Store::set_budget_note`]); at boot the bucket starts
//!   from the newest record's note ([`Store::budget_note`]), never fuller. Refill while the
//!   board is off is not counted, so over any span of operational uptime `t` the records
//!   written are at most `capacity + records_per_hour × t` — whatever the host does, rebooting
//!   the board included. A store with no ceiling record at all starts full (its first write
//!   leaves a note: once per store, not per boot); a store that keeps no note starts empty.
//! * In **provisioning mode** (chosen by the operator's physical act at power-up, and in which
//!   the host may already erase the board) nothing is refused, and notes are written full: the
//!   first operational boot after provisioning starts with a full bucket.
//!
//! Time comes from the board's [`Clock`] (QEMU and RP2350: their system timers; the virtual
//! board: the host's monotonic clock).

use super::{Record, Store, StoreError, StoredKey, WearCounters};
use crate::protocol::Mode;
use crate::watermark::MarkId;

/// Monotonic time since the board started.
pub trait Clock {
    /// Milliseconds since boot; never goes backwards.
    fn now_ms(&mut self) -> u64;
}

/// The write budget's parameters. The defaults and their arithmetic are in `docs/wear.md`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteBudget {
    /// Refill: records the budget gives back per hour (the sustained bound on mark writes).
    pub records_per_hour: u32,
    /// Most records the bucket holds (the largest burst).
    pub capacity: u32,
    /// Idle-time reservation writes only while more than this many records are left.
    pub idle_reserve: u32,
}

impl WriteBudget {
    /// 1,620 records an hour (0.45 a second), 96 at most in the bucket, idle reservation above
    /// 48. The worst sustained storm then writes 38,880 ceilings (1.24 MB) a day: over five
    /// years for 64 pages of 10k-cycle flash. Sixteen keys baking at 6 s blocks need ≈ 0.36 a
    /// second and at most 32 at once (every key's two marks crossing their ceilings at one
    /// level); `docs/wear.md` has the reasoning and `benches/wear_storm.rs` the measurement.
    pub const DEFAULT: WriteBudget = WriteBudget {
        records_per_hour: 1_620,
        capacity: 96,
        idle_reserve: 48,
    };
}

impl Default for WriteBudget {
    fn default() -> Self {
        WriteBudget::DEFAULT
    }
}

/// One record's worth of tokens: tokens are counted in record·ms per hour, so that a refill of
/// `records_per_hour` units a millisecond is exact in integers.
const RECORD: i64 = 3_600_000;

/// Notes count tokens in 1/256 of a record (up to 255 records in a `u16`).
const NOTE_UNIT: i64 = RECORD / 256;

/// A [`Store`] whose mark writes are rate-bounded by a [`WriteBudget`] over a [`Clock`].
/// Everything else is delegated unchanged.
pub struct Budgeted<S: Store, C: Clock> {
    inner: S,
    clock: C,
    budget: WriteBudget,
    operational: bool,
    /// Tokens, in [`RECORD`] units per record; below zero only if a write cost more than
    /// announced (it is then paid back before the next one).
    tokens: i64,
    /// When `tokens` was last brought up to date.
    at_ms: u64,
}

impl<S: Store, C: Clock> Budgeted<S, C> {
    /// Wrap `inner`. The bucket is empty until [`Store::load`] reads the stored note; the
    /// board's mode arrives with [`Store::board_mode`] (operational until then).
    pub fn new(inner: S, mut clock: C, budget: WriteBudget) -> Self {
        let at_ms = clock.now_ms();
        Budgeted {
            inner,
            clock,
            budget,
            operational: true,
            tokens: 0,
            at_ms,
        }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Give the wrapped store back (tests reboot on its flash).
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// The clock (tests move a fake one).
    pub fn clock_mut(&mut self) -> &mut C {
        &mut self.clock
    }

    /// The parameters.
    pub fn budget(&self) -> WriteBudget {
        self.budget
    }

    /// Whole records the bucket holds now.
    pub fn available(&mut self) -> u32 {
        self.refill();
        u32::try_from(self.tokens.max(0) / RECORD).unwrap_or(u32::MAX)
    }

    fn capacity(&self) -> i64 {
        i64::from(self.budget.capacity).saturating_mul(RECORD)
    }

    fn refill(&mut self) {
        let now = self.clock.now_ms();
        let elapsed = now.saturating_sub(self.at_ms);
        self.at_ms = self.at_ms.max(now);
        let gained = i64::try_from(elapsed)
            .unwrap_or(i64::MAX)
            .saturating_mul(i64::from(self.budget.records_per_hour));
        self.tokens = self.tokens.saturating_add(gained).min(self.capacity());
    }

    /// The note for a record written leaving `after` tokens (full in provisioning mode).
    fn note(&self, after: i64) -> u16 {
        let tokens = if self.operational {
            after
        } else {
            self.capacity()
        };
        u16::try_from(tokens.max(0) / NOTE_UNIT).unwrap_or(u16::MAX)
    }

    /// Whether `records` worth of tokens are there now (they are taken by [`Self::charge`]
    /// once written), or say when they will be.
    fn afford(&mut self, records: u32) -> Result<(), StoreError> {
        self.refill();
        let need = i64::from(records).saturating_mul(RECORD);
        if self.tokens >= need {
            return Ok(());
        }
        let missing = need.saturating_sub(self.tokens);
        let rate = i64::from(self.budget.records_per_hour);
        let retry_ms = if rate == 0 {
            u32::MAX
        } else {
            u32::try_from((missing + rate - 1) / rate).unwrap_or(u32::MAX)
        };
        Err(StoreError::WriteBudget { retry_ms })
    }

    /// Pay for what `inner` wrote since `before` (at least `announced` records).
    fn charge(&mut self, before: u32, announced: u32) {
        let written = self.inner.wear().records.saturating_sub(before);
        if self.operational {
            let records = i64::from(written.max(announced));
            self.tokens = self.tokens.saturating_sub(records.saturating_mul(RECORD));
        }
    }
}

impl<S: Store, C: Clock> Store for Budgeted<S, C> {
    fn load(
        &mut self,
        visit: &mut dyn FnMut(Record<'_>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let result = self.inner.load(visit);
        // Never fuller than the newest record said, whatever the configuration. A store with no
        // ceiling record at all (fresh from provisioning) starts full: its first write leaves a
        // note, so that is once per store, not once per boot.
        self.tokens = match self.inner.budget_note() {
            Some(note) => (i64::from(note) * NOTE_UNIT).min(self.capacity()),
            None => self.capacity(),
        };
        self.at_ms = self.clock.now_ms();
        result
    }

    fn persist_mark(&mut self, id: &MarkId, level: u32, round: u32) -> Result<(), StoreError> {
        let cost = self.inner.persist_cost(id, level, round);
        if cost == 0 {
            return self.inner.persist_mark(id, level, round);
        }
        if self.operational {
            self.afford(cost)?;
        }
        let after = self
            .tokens
            .saturating_sub(i64::from(cost).saturating_mul(RECORD));
        let note = self.note(after);
        self.inner.set_budget_note(note);
        let before = self.inner.wear().records;
        let result = self.inner.persist_mark(id, level, round);
        self.charge(before, cost);
        result
    }

    fn forget_marks(&mut self, ids: &[MarkId]) -> Result<(), StoreError> {
        let before = self.inner.wear().records;
        let result = self.inner.forget_marks(ids);
        self.charge(before, 0);
        result
    }

    fn lower_mark(&mut self, id: &MarkId, level: u32, round: u32) -> Result<(), StoreError> {
        let before = self.inner.wear().records;
        let result = self.inner.lower_mark(id, level, round);
        self.charge(before, 0);
        result
    }

    fn persist_key(&mut self, slot: u8, key: &StoredKey) -> Result<(), StoreError> {
        let before = self.inner.wear().records;
        let result = self.inner.persist_key(slot, key);
        self.charge(before, 0);
        result
    }

    fn remove_key(&mut self, slot: u8) -> Result<(), StoreError> {
        self.inner.remove_key(slot)
    }

    fn reserve_ahead(&mut self) -> Result<bool, StoreError> {
        if self.operational {
            let floor = self.budget.idle_reserve.saturating_add(1);
            if self.afford(floor).is_err() {
                return Ok(false);
            }
        }
        let after = self.tokens.saturating_sub(RECORD);
        let note = self.note(after);
        self.inner.set_budget_note(note);
        let before = self.inner.wear().records;
        let result = self.inner.reserve_ahead();
        let announced = u32::from(matches!(result, Ok(true)));
        self.charge(before, announced);
        result
    }

    fn persist_cost(&self, id: &MarkId, level: u32, round: u32) -> u32 {
        self.inner.persist_cost(id, level, round)
    }

    fn may_persist(&mut self, id: &MarkId, level: u32, round: u32) -> Result<(), StoreError> {
        let cost = self.inner.persist_cost(id, level, round);
        if self.operational && cost > 0 {
            self.afford(cost)?;
        }
        self.inner.may_persist(id, level, round)
    }

    fn budget_note(&self) -> Option<u16> {
        self.inner.budget_note()
    }

    fn set_budget_note(&mut self, note: u16) {
        // Notes are this wrapper's to write.
        let _ = note;
    }

    fn board_mode(&mut self, mode: Mode) {
        self.operational = mode == Mode::Operational;
        self.inner.board_mode(mode);
    }

    fn wear(&self) -> WearCounters {
        self.inner.wear()
    }

    fn epoch(&self) -> Option<super::EpochReport> {
        self.inner.epoch()
    }

    fn reprovision(&mut self, erase: bool) -> Result<(), StoreError> {
        let before = self.inner.wear().records;
        let result = self.inner.reprovision(erase);
        self.charge(before, 0);
        result
    }
}
