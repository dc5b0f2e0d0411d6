//! The rollback anchor in OTP: a coarse **epoch** that the flash store's record numbers must
//! reach, so that writing back a copy of the *whole* flash (store and flash-side guard
//! together) is refused at boot.
//!
//! # Why an epoch per boot
//!
//! The flash-side [`RollbackGuard`] lives in the same chip as the store: whoever copies the
//! whole flash (BOOTSEL + `picotool save`, SWD, or desoldering) and writes it back later rolls
//! both back together. OTP cannot be rolled back, but it is far too small to follow every
//! record (thousands a day). A whole-flash copy, however, can only be read and written with
//! the board stopped — in BOOTSEL or under a debugger — that is **across a reboot**. So one
//! OTP step per boot is enough, if it is taken before the boot's first durable record:
//!
//! * Record numbers carry the epoch in their high bits: epoch `e` owns the numbers from
//!   `e << EPOCH_SHIFT` on ([`epoch_of`]). Records are MAC'd with their number, so a flash
//!   editor cannot raise the epoch of an old image.
//! * At its first record of a boot the store jumps its record number to the start of a new
//!   epoch `n = max(otp, flash) + 1`, writes the record, and only then burns `n` into OTP
//!   ([`EpochCounter::burn_to`]). Every later record of the boot is in epoch `n` or above.
//! * At boot, a store whose newest record is in an epoch **below** OTP's is refused:
//!   [`StoreError::OtpEpochBehind`]. Re-provisioning brings it level (its first record
//!   opens a new epoch like any other).
//!
//! A boot that writes nothing burns nothing: a host that power-cycles the board without
//! getting a record written costs no OTP.
//!
//! # Which order: flash first, then OTP
//!
//! * **Cut after the record, before the burn**: flash is one epoch ahead of OTP. That is
//!   accepted (like the flash guard, OTP only has to be at or below the flash); nothing of
//!   this boot past its first record was written, and the next boot's first record opens
//!   `max(otp, flash) + 1`, above it. No lock-out.
//! * **An old image after a boot that wrote**: that boot burned its epoch `n` before any
//!   record after its first one, and before `persist_mark` returned, so before any new
//!   signature left the board. Every image copied before that boot holds epochs below `n`: it
//!   is refused. A cut between the record and the burn means the boot released nothing the
//!   image does not cover.
//! * The other order (burn, then write) would be unsafe one way or the other: a cut between
//!   the two leaves OTP ahead of an unchanged flash, which is exactly what a restored image
//!   looks like — refusing it locks out a board that only lost power, accepting one epoch of
//!   lag lets a restored image through.
//!
//! # Running out, and hostile hosts
//!
//! OTP rows are finite ([`EpochCounter::capacity`]). When no epoch is left the board keeps
//! signing with the flash guard alone and says so ([`EpochState::Exhausted`] in the board's
//! status): exhaustion is never a lock-out. Images copied before the last burn are still
//! refused. A host that power-cycles the board and gets one mark written per boot burns one
//! epoch per boot; to bound that rate the first record of a boot is charged [`BURN_COST`]
//! records of the flash write budget ([`super::budget`]), and idle-time reservation does not
//! open an epoch (the first record of a boot is always a request's, and paid for).
//! `docs/hardware.md` ("Rollback anchor in OTP") has the figures.
//!
//! # What it does not catch
//!
//! Records are MAC'd one by one, not chained: someone who can write arbitrary flash *and*
//! holds a later copy of it can splice a newer record (a newer epoch) into an older image.
//! That needs two copies taken at different times and a crafted image, not a plain restore;
//! the flash guard has the same limit. Closing it needs a MAC over the whole live set.

use serde::{Deserialize, Serialize};

use super::{RollbackGuard, StoreError};

/// Record numbers of epoch `e` start at `e << EPOCH_SHIFT` (524,288 records per epoch; the
/// write budget's worst storm writes 38,880 a day, so one boot of two weeks under attack may
/// run into the next epoch's numbers, which only puts the flash further ahead).
pub const EPOCH_SHIFT: u32 = 19;

/// The highest epoch a record number can carry (8,191).
pub const MAX_EPOCH: u32 = u32::MAX >> EPOCH_SHIFT;

/// Records of the write budget charged for opening an epoch (the first record of a boot in
/// operational mode): a host that reboots the board to burn OTP gets at most
/// 1,620 / (16 + 1) ≈ 95 epochs an hour of uptime, and a baker's board, whose bucket is about
/// full, can reboot five times in a row before its first write has to wait for the refill.
pub const BURN_COST: u32 = 16;

/// The epoch a record number belongs to.
pub const fn epoch_of(seq: u32) -> u32 {
    seq >> EPOCH_SHIFT
}

/// The first record number of epoch `epoch` (`epoch` ≤ [`MAX_EPOCH`]).
pub const fn first_seq(epoch: u32) -> u32 {
    epoch << EPOCH_SHIFT
}

/// A monotonic counter in one-time-programmable memory (RP2350: raw OTP rows as a thermometer
/// code; the virtual and QEMU boards: a file outside their state directory).
pub trait EpochCounter {
    /// The epoch burned so far (0 on a new board). An unreadable counter is
    /// [`StoreError::Io`]: the board refuses rather than sign unanchored without saying so.
    fn read(&mut self) -> Result<u32, StoreError>;

    /// Burn the counter up to `epoch` (above what [`EpochCounter::read`] says, at most
    /// [`EpochCounter::capacity`]). A cut part-way leaves it between the two values.
    fn burn_to(&mut self, epoch: u32) -> Result<(), StoreError>;

    /// The highest epoch the counter can hold.
    fn capacity(&self) -> u32;
}

/// A flash-side rollback guard with an OTP epoch counter next to it: the guard the store sees.
pub struct Anchored<G: RollbackGuard, C: EpochCounter> {
    /// The flash-side guard (record numbers).
    pub guard: G,
    /// The OTP epoch.
    pub counter: C,
}

impl<G: RollbackGuard, C: EpochCounter> Anchored<G, C> {
    /// `guard`, anchored by `counter`.
    pub fn new(guard: G, counter: C) -> Self {
        Anchored { guard, counter }
    }
}

impl<G: RollbackGuard, C: EpochCounter> RollbackGuard for Anchored<G, C> {
    fn floor(&mut self) -> Result<u32, StoreError> {
        self.guard.floor()
    }

    fn advance(&mut self, seq: u32) -> Result<(), StoreError> {
        self.guard.advance(seq)
    }

    fn anchor(&mut self) -> Option<&mut dyn EpochCounter> {
        Some(&mut self.counter)
    }
}

/// What the board says about its OTP anchor ([`crate::protocol::Status::epoch`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochReport {
    /// Epoch in OTP.
    pub otp: u32,
    /// Epoch of the newest record on flash.
    pub flash: u32,
    /// Epochs the OTP rows can still take.
    pub left: u32,
    /// Where this boot stands.
    pub state: EpochState,
}

/// Where a boot stands with its epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EpochState {
    /// Nothing written yet this boot: the first record will open a new epoch.
    Armed,
    /// This boot's epoch is burned: every image copied before the boot is refused.
    Burned,
    /// No epoch left in OTP: the board signs with the flash guard alone (images copied
    /// before the last burn are still refused).
    Exhausted,
    /// Burning this boot's epoch failed: the boot signs with the flash guard alone.
    BurnFailed,
}

impl EpochReport {
    /// A line for people: what the anchor protects right now.
    pub fn describe(&self) -> &'static str {
        match self.state {
            EpochState::Armed | EpochState::Burned => {
                "anchored in OTP: a restored whole-flash image is refused"
            }
            EpochState::Exhausted => {
                "OTP EPOCHS EXHAUSTED: signing on the flash guard alone; a whole-flash image copied from now on would not be detected"
            }
            EpochState::BurnFailed => {
                "OTP BURN FAILED this boot: signing on the flash guard alone until the next boot"
            }
        }
    }
}

/// The store's side: what was read at boot and what this boot still has to burn.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct EpochTrack {
    /// `None`: no anchor (a store without OTP).
    pub report: Option<EpochReport>,
    /// The epoch this boot's first record opens, then burns; `None` once burned, failed or
    /// exhausted.
    pub due: Option<u32>,
    /// With no epoch left to burn: OTP's epoch, which records written from now on reach
    /// without a burn (re-provisioning a refused store must bring it level).
    pub level: u32,
}

impl EpochTrack {
    /// Read the counter and decide this boot's epoch, for a store whose newest record is
    /// `seq`.
    pub fn arm(counter: &mut dyn EpochCounter, seq: u32) -> Result<EpochTrack, StoreError> {
        let otp = counter.read()?;
        let capacity = counter.capacity().min(MAX_EPOCH);
        if otp > capacity {
            // More than the rows hold: the counter is not what it claims.
            return Err(StoreError::Io);
        }
        let flash = epoch_of(seq);
        let next = otp.max(flash).saturating_add(1);
        let (due, state) = if next > capacity {
            (None, EpochState::Exhausted)
        } else {
            (Some(next), EpochState::Armed)
        };
        Ok(EpochTrack {
            report: Some(EpochReport {
                otp,
                flash,
                left: capacity.saturating_sub(otp),
                state,
            }),
            due,
            level: otp,
        })
    }

    /// The record number to write next, given the store's next one.
    pub fn next_seq(&self, next: u32) -> u32 {
        match self.due {
            Some(epoch) => next.max(first_seq(epoch)),
            None => next.max(first_seq(self.level)),
        }
    }

    /// Record `seq` is durable: burn this boot's epoch if it opened it.
    pub fn written(&mut self, seq: u32, counter: Option<&mut dyn EpochCounter>) {
        let Some(report) = self.report.as_mut() else {
            return;
        };
        report.flash = report.flash.max(epoch_of(seq));
        let Some(epoch) = self.due else {
            return;
        };
        if seq < first_seq(epoch) {
            return;
        }
        // One attempt per boot: a counter that fails is not retried on every write.
        self.due = None;
        let burned = counter.map(|c| (c.burn_to(epoch), c.capacity().min(MAX_EPOCH)));
        match burned {
            Some((Ok(()), capacity)) => {
                report.otp = epoch;
                report.left = capacity.saturating_sub(epoch);
                report.state = EpochState::Burned;
            }
            _ => report.state = EpochState::BurnFailed,
        }
    }
}

/// Epochs the RP2350 image reserves in OTP: 256 raw rows of 24 bits (pages 49–52), one bit per
/// epoch. The file models of the virtual and QEMU boards hold as many, so their figures read
/// alike (`docs/hardware.md`, "Rollback anchor in OTP").
pub const OTP_EPOCHS: u32 = 256 * 24;
