//! The OTP rollback anchor (`core/src/store/epoch.rs`): a whole-flash image written back after
//! a later boot wrote is refused at boot; a power cut at any step around a burn neither locks
//! the board out nor lets an older image through; a boot that writes nothing burns nothing;
//! running out of OTP falls back to the flash guard and never refuses; the first record of a
//! boot is charged to the write budget.
#![allow(clippy::cast_possible_truncation, clippy::std_instead_of_core)]

mod support;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use pawl_core::board::{Board, NoButton};
use pawl_core::keys::PublicKeyHash;
use pawl_core::policy::Policy;
use pawl_core::protocol::{Mode, Refusal, Request, Response, Status, StoreHealth};
use pawl_core::sim::SimFlash;
use pawl_core::sim::flash::{Event, Journal, PAGE, apply};
use pawl_core::store::epoch::BURN_COST;
use pawl_core::store::{
    Anchored, BoardKey, Budgeted, EpochCounter, EpochState, NorStore, NorStoreConfig, Store as _,
    StoreError, WriteBudget,
};
use pawl_core::watermark::MarkKind;
use support::board::{INFO, TestEntropy, import, sign};
use support::budget::FakeClock;
use support::power::{BOARD_KEY, CHAINS, SharedGuard, journal, payload, secrets};

const PAGES: usize = 4;
const AHEAD: u32 = 4;

/// OTP that survives reboots and restores (it is not in the flash image); logs each burn with
/// the flash journal's length at that moment, and can be told to fail.
#[derive(Clone)]
struct SharedEpoch {
    value: Rc<Cell<u32>>,
    capacity: u32,
    fail_burn: Rc<Cell<bool>>,
    fail_read: Rc<Cell<bool>>,
    /// (journal length when burned, epoch).
    burns: Rc<RefCell<Vec<(usize, u32)>>>,
    journal: Option<Journal>,
}

impl SharedEpoch {
    fn new(capacity: u32) -> Self {
        SharedEpoch {
            value: Rc::new(Cell::new(0)),
            capacity,
            fail_burn: Rc::new(Cell::new(false)),
            fail_read: Rc::new(Cell::new(false)),
            burns: Rc::new(RefCell::new(Vec::new())),
            journal: None,
        }
    }
}

impl EpochCounter for SharedEpoch {
    fn read(&mut self) -> Result<u32, StoreError> {
        if self.fail_read.get() {
            return Err(StoreError::Io);
        }
        Ok(self.value.get())
    }

    fn burn_to(&mut self, epoch: u32) -> Result<(), StoreError> {
        assert!(epoch > self.value.get(), "a burn only ever goes up");
        assert!(epoch <= self.capacity, "never burns past the rows");
        if self.fail_burn.get() {
            return Err(StoreError::Io);
        }
        self.value.set(epoch);
        let at = self
            .journal
            .as_ref()
            .map_or(0, |j| j.lock().expect("journal").len());
        self.burns.borrow_mut().push((at, epoch));
        Ok(())
    }

    fn capacity(&self) -> u32 {
        self.capacity
    }
}

type AnchoredStore = Budgeted<NorStore<SimFlash, Anchored<SharedGuard, SharedEpoch>>, FakeClock>;
type TestBoard = Board<AnchoredStore, TestEntropy, NoButton>;

/// Power the board up on `flash` with this flash guard and OTP, and let it run ten minutes
/// (the write budget refills with uptime only).
fn boot(flash: SimFlash, guard: &SharedGuard, otp: &SharedEpoch, mode: Mode) -> TestBoard {
    boot_after(flash, guard, otp, mode, 600_000)
}

/// As [`boot`], the board up for `uptime_ms` before the first request.
fn boot_after(
    flash: SimFlash,
    guard: &SharedGuard,
    otp: &SharedEpoch,
    mode: Mode,
    uptime_ms: u64,
) -> TestBoard {
    let config = NorStoreConfig {
        region: 0..(PAGES * PAGE) as u32,
        ceiling_ahead: AHEAD,
    };
    let anchored = Anchored::new(guard.clone(), otp.clone());
    let store = NorStore::new(flash, config, &BoardKey::new(BOARD_KEY), anchored).expect("config");
    let clock = FakeClock::default();
    let store = Budgeted::new(store, clock.clone(), WriteBudget::DEFAULT);
    let board = Board::open(store, TestEntropy(3), NoButton, mode, INFO);
    clock.advance(uptime_ms);
    board
}

/// Power off: the flash as it is.
fn flash_of(board: TestBoard) -> SimFlash {
    board.into_store().into_inner().into_flash()
}

/// A copy of the whole flash: its bytes (the flash guard is in the same chip: its value too).
#[derive(Clone)]
struct Image {
    bytes: Vec<u8>,
    guard: u32,
}

/// Power off and take a copy of the whole flash (between two boots, as BOOTSEL allows).
fn power_off(board: TestBoard, guard: &SharedGuard) -> Image {
    Image {
        bytes: flash_of(board).image().to_vec(),
        guard: guard.value.get(),
    }
}

/// Write `image` back over flash and flash guard (what `picotool load` of a saved image does).
fn restore(image: &Image, guard: &SharedGuard) -> SimFlash {
    guard.value.set(image.guard);
    SimFlash::from_image(image.bytes.clone())
}

fn status(board: &mut TestBoard) -> Status {
    match board.handle(Request::Status) {
        Response::Status(s) => s,
        other => panic!("status: {other:?}"),
    }
}

fn attest(board: &mut TestBoard, pkh: &PublicKeyHash, level: u32, byte: u8) -> Result<(), Refusal> {
    sign(
        board,
        pkh,
        &payload(MarkKind::Attestation, false, CHAINS[0], level, 0, byte),
    )
    .map(|_| ())
}

/// A provisioned board with one tz1 key (provisioning writes: epoch 1 burned), then powered
/// up operational. Returns the board, its key, flash guard and OTP.
fn provisioned(capacity: u32) -> (TestBoard, PublicKeyHash, SharedGuard, SharedEpoch) {
    let guard = SharedGuard::default();
    let otp = SharedEpoch::new(capacity);
    let mut board = boot(SimFlash::new(PAGES), &guard, &otp, Mode::Provisioning);
    let (pkh, _) = import(&mut board, &secrets()[0], Policy::default());
    assert_eq!(
        otp.value.get(),
        1,
        "the first record of a boot burns its epoch"
    );
    let board = boot(flash_of(board), &guard, &otp, Mode::Operational);
    (board, pkh, guard, otp)
}

#[test]
fn whole_flash_rollback_is_refused_and_reprovisioning_recovers() {
    let (mut board, pkh, guard, otp) = provisioned(64);
    attest(&mut board, &pkh, 100, 1).expect("signs at 100");
    assert_eq!(otp.value.get(), 2, "this boot burned epoch 2");
    // The thief's copy: taken between two boots (BOOTSEL), with the flash guard inside it.
    let copied = power_off(board, &guard);
    let mut board = boot(restore(&copied, &guard), &guard, &otp, Mode::Operational);
    // The next boot signs far above.
    attest(&mut board, &pkh, 200, 2).expect("signs at 200");
    assert_eq!(otp.value.get(), 3);
    drop(board);

    // The copy is written back, flash guard and all.
    let mut board = boot(restore(&copied, &guard), &guard, &otp, Mode::Operational);
    let s = status(&mut board);
    assert_eq!(
        s.store,
        StoreHealth::Refusing(StoreError::OtpEpochBehind { flash: 2, otp: 3 }),
        "a restored whole-flash image must be refused at boot"
    );
    let text = StoreError::OtpEpochBehind { flash: 2, otp: 3 }.to_string();
    assert!(
        text.contains("whole-flash image") && text.contains("re-provision"),
        "{text}"
    );
    // Between the copy's marks and the real ones: would be a double signature.
    assert_eq!(
        attest(&mut board, &pkh, 150, 3),
        Err(Refusal::Store(StoreError::OtpEpochBehind {
            flash: 2,
            otp: 3
        }))
    );
    assert_eq!(otp.value.get(), 3, "a refusing boot burns nothing");

    // Re-provisioning (the operator's physical act) brings the flash epoch level again.
    let mut board = boot(flash_of(board), &guard, &otp, Mode::Provisioning);
    assert!(matches!(
        board.handle(Request::Reprovision { erase: false }),
        Response::Done
    ));
    assert_eq!(status(&mut board).store, StoreHealth::Ok);
    assert_eq!(otp.value.get(), 4);
    let mut board = boot(flash_of(board), &guard, &otp, Mode::Operational);
    let s = status(&mut board);
    assert_eq!(s.store, StoreHealth::Ok, "reprovisioned board loads");
    let epoch = s.epoch.expect("anchored board reports its epoch");
    assert_eq!(
        (epoch.flash, epoch.otp, epoch.state),
        (4, 4, EpochState::Armed)
    );
}

#[test]
fn a_boot_that_writes_nothing_burns_nothing() {
    let (mut board, pkh, guard, otp) = provisioned(64);
    attest(&mut board, &pkh, 100, 1).expect("signs");
    let burned = otp.value.get();
    for _ in 0..5 {
        let mut b = boot(flash_of(board), &guard, &otp, Mode::Operational);
        // Idle time before any request opens no epoch.
        assert!(
            !b.idle().expect("idle"),
            "no idle write before the boot's first record"
        );
        // Refused at or below the mark (the ceiling, after a reboot): no write, no burn.
        assert!(attest(&mut b, &pkh, 100, 1).is_err());
        board = b;
    }
    assert_eq!(
        otp.value.get(),
        burned,
        "power cycles without a write burn no OTP"
    );
    let s = status(&mut board);
    assert_eq!(s.epoch.expect("report").state, EpochState::Armed);
}

#[test]
fn exhaustion_falls_back_to_the_flash_guard_and_never_refuses() {
    let (mut board, pkh, guard, otp) = provisioned(2);
    attest(&mut board, &pkh, 100, 1).expect("signs");
    assert_eq!(otp.value.get(), 2, "the last epoch");
    let copied = power_off(board, &guard);
    let mut board = boot(restore(&copied, &guard), &guard, &otp, Mode::Operational);
    let s = status(&mut board);
    let e = s.epoch.expect("report");
    assert_eq!((e.state, e.left), (EpochState::Exhausted, 0));
    assert_eq!(s.store, StoreHealth::Ok, "exhaustion is not a lock-out");
    attest(&mut board, &pkh, 200, 2).expect("keeps signing with the flash guard alone");
    assert_eq!(otp.value.get(), 2, "nothing burned past the rows");
    // Documented limit: an image copied after the last burn is no longer caught.
    drop(board);
    let mut board = boot(restore(&copied, &guard), &guard, &otp, Mode::Operational);
    assert_eq!(status(&mut board).store, StoreHealth::Ok);
}

#[test]
fn images_from_before_the_last_burn_stay_refused_after_exhaustion() {
    let (board, pkh, guard, otp) = provisioned(2);
    let copied = power_off(board, &guard); // epoch 1
    let mut board = boot(restore(&copied, &guard), &guard, &otp, Mode::Operational);
    attest(&mut board, &pkh, 100, 1).expect("signs"); // burns 2, the last
    drop(board);
    let mut board = boot(restore(&copied, &guard), &guard, &otp, Mode::Operational);
    assert_eq!(
        status(&mut board).store,
        StoreHealth::Refusing(StoreError::OtpEpochBehind { flash: 1, otp: 2 })
    );
    // Re-provisioning with no epoch left to burn still brings the store level: no lock-out.
    let mut board = boot(flash_of(board), &guard, &otp, Mode::Provisioning);
    assert!(matches!(
        board.handle(Request::Reprovision { erase: false }),
        Response::Done
    ));
    let mut board = boot(flash_of(board), &guard, &otp, Mode::Operational);
    let s = status(&mut board);
    assert_eq!(
        s.store,
        StoreHealth::Ok,
        "exhausted and re-provisioned: loads"
    );
    assert_eq!(s.epoch.expect("report").state, EpochState::Exhausted);
    assert_eq!(otp.value.get(), 2);
}

#[test]
fn a_counter_above_its_rows_refuses() {
    let (board, _pkh, guard, otp) = provisioned(64);
    otp.value.set(65);
    let mut board = boot(flash_of(board), &guard, &otp, Mode::Operational);
    assert_eq!(
        status(&mut board).store,
        StoreHealth::Refusing(StoreError::Io)
    );
}

#[test]
fn a_failed_burn_falls_back_and_says_so() {
    let (mut board, pkh, _guard, otp) = provisioned(64);
    otp.fail_burn.set(true);
    attest(&mut board, &pkh, 100, 1).expect("signs on the flash guard alone");
    let e = status(&mut board).epoch.expect("report");
    assert_eq!(e.state, EpochState::BurnFailed);
    assert_eq!(e.otp, 1);
    // One attempt per boot: the next writes do not try again.
    attest(&mut board, &pkh, 200, 2).expect("signs");
    assert_eq!(otp.value.get(), 1);
}

#[test]
fn an_unreadable_counter_refuses() {
    let (board, pkh, guard, otp) = provisioned(64);
    otp.fail_read.set(true);
    let mut board = boot(flash_of(board), &guard, &otp, Mode::Operational);
    assert_eq!(
        status(&mut board).store,
        StoreHealth::Refusing(StoreError::Io)
    );
    assert!(attest(&mut board, &pkh, 100, 1).is_err());
}

/// Whole records of the write budget left after the newest ceiling record (its note).
fn left(board: &TestBoard) -> u32 {
    u32::from(board.store().budget_note().expect("a ceiling record")) / 256
}

#[test]
fn a_boots_first_record_pays_for_its_burn() {
    let (mut board, pkh, guard, otp) = provisioned(64);
    let full = WriteBudget::DEFAULT.capacity;
    // First record of the boot: a new mark (name + ceiling), and the burn.
    attest(&mut board, &pkh, 100, 1).expect("signs");
    assert_eq!(left(&board), full - 2 - BURN_COST);
    // The next ones pay only for their records.
    attest(&mut board, &pkh, 100 + AHEAD + 1, 2).expect("signs");
    assert_eq!(left(&board), full - 3 - BURN_COST);
    assert_eq!(otp.value.get(), 2);
    // A boot ten minutes up: full again. Drain the bucket below one burn's price...
    let mut board = boot(flash_of(board), &guard, &otp, Mode::Operational);
    let mut level = 1_000;
    attest(&mut board, &pkh, level, 3).expect("signs");
    while left(&board) > BURN_COST {
        level += AHEAD + 1;
        attest(&mut board, &pkh, level, 3).expect("signs");
    }
    let burned = otp.value.get();
    // ...and power-cycle at once: the next boot cannot pay for a burn, so it writes nothing.
    let mut board = boot_after(flash_of(board), &guard, &otp, Mode::Operational, 0);
    assert!(matches!(
        attest(&mut board, &pkh, level + AHEAD + 1, 4),
        Err(Refusal::Store(StoreError::WriteBudget { .. }))
    ));
    assert_eq!(otp.value.get(), burned, "a refused write burns nothing");
}

/// `base` after the first `k` events of `events` (`torn`: event `k` half done), and the guard
/// value they left (0: no advance).
fn image_from(base: &[u8], events: &[Event], k: usize, torn: bool) -> (Vec<u8>, u32) {
    let mut image = base.to_vec();
    let mut guard = 0;
    for e in &events[..k] {
        apply(&mut image, e, false);
        if let Event::Guard(g) = e {
            guard = *g;
        }
    }
    if torn && let Some(e) = events.get(k) {
        apply(&mut image, e, true);
    }
    (image, guard)
}

/// Every flash step of a boot that opens an epoch, cut there (whole or torn), with OTP before
/// and after the burn where the cut falls next to it: the board boots healthy (no lock-out),
/// keeps what it released, signs above — and the image of the cut is refused once that later
/// boot has written.
#[test]
fn power_cut_at_every_step_around_a_burn() {
    let (board, pkh, guard, otp) = provisioned(64);
    let base = power_off(board, &guard);
    let base_otp = otp.value.get();

    // The recorded boot: from the base image, with a journal of its flash steps and guard
    // advances, and the OTP burn logged against it.
    let j = journal();
    let mut flash = SimFlash::from_image(base.bytes.clone());
    flash.journal(j.clone());
    let rec_guard = SharedGuard {
        value: Rc::new(Cell::new(base.guard)),
        journal: Some(j.clone()),
    };
    let mut rec_otp = SharedEpoch::new(64);
    rec_otp.value.set(base_otp);
    rec_otp.journal = Some(j.clone());
    let mut board = boot(flash, &rec_guard, &rec_otp, Mode::Operational);
    // (journal length when released, level)
    let mut released = Vec::new();
    for (n, level) in [100u32, 101, 100 + AHEAD + 1, 200].into_iter().enumerate() {
        attest(&mut board, &pkh, level, n as u8).expect("signs");
        released.push((j.lock().expect("j").len(), level));
    }
    drop(board);
    let events = j.lock().expect("j").clone();
    let burns = rec_otp.burns.borrow().clone();
    assert_eq!(burns.len(), 1, "one burn in the boot");
    let (burn_at, burn_epoch) = burns[0];
    assert!(
        burn_at > 0,
        "the burn follows the boot's first record (flash first)"
    );
    assert!(
        released[0].0 >= burn_at,
        "the burn precedes the first signature's release"
    );

    let mut checked = 0;
    for k in 0..=events.len() {
        for torn in [false, true] {
            if torn && k == events.len() {
                continue;
            }
            // Where the cut sits next to the burn, OTP may hold it or not: try both.
            let otps: Vec<u32> = if k == burn_at {
                vec![base_otp, burn_epoch]
            } else if k > burn_at {
                vec![burn_epoch]
            } else {
                vec![base_otp]
            };
            for otp_value in otps {
                let (bytes, guard_value) = image_from(&base.bytes, &events, k, torn);
                let cut = Image {
                    bytes: bytes.clone(),
                    guard: guard_value.max(base.guard),
                };
                let guard = SharedGuard::default();
                let otp = SharedEpoch::new(64);
                otp.value.set(otp_value);
                let context = format!("cut at step {k} torn {torn} otp {otp_value}");
                let mut board = boot(restore(&cut, &guard), &guard, &otp, Mode::Operational);
                assert_eq!(
                    status(&mut board).store,
                    StoreHealth::Ok,
                    "{context}: a power cut must not lock the board out"
                );
                // Everything released before the cut is still covered.
                for &(at, level) in released.iter().filter(|(at, _)| *at <= k) {
                    assert!(
                        attest(&mut board, &pkh, level, 0xEE).is_err(),
                        "{context}: signed a different payload at released level {level} ({at})"
                    );
                }
                // The next boot writes: a new epoch, above OTP.
                let before = otp.value.get();
                attest(&mut board, &pkh, 500, 0x50).expect("signs above");
                assert!(otp.value.get() > before, "{context}: this boot burned");
                drop(board);
                // The image of the cut, written back, is now refused.
                let mut board = boot(restore(&cut, &guard), &guard, &otp, Mode::Operational);
                assert!(
                    matches!(
                        status(&mut board).store,
                        StoreHealth::Refusing(StoreError::OtpEpochBehind { .. })
                    ),
                    "{context}: the cut's image written back after a later boot wrote must be refused"
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 20, "only {checked} cut points");
}
