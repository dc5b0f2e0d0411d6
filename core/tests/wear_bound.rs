//! Issue 13, finding 3: a hostile host cannot wear the flash out. The write budget
//! (`store/budget.rs`) bounds durable mark writes in operational mode, across reboots, while a
//! normal baker with 16 keys at 6 s blocks is never refused for rate. A fake clock drives
//! simulated hours on the simulated flash.
#![allow(clippy::cast_possible_truncation, clippy::std_instead_of_core)]

mod support;

use pawl_core::protocol::{Mode, Refusal};
use pawl_core::store::{StoreError, WriteBudget};
use pawl_core::watermark::MarkKind;
use support::board::sign;
use support::budget::{
    AHEAD, BLOCK_MS, bake, fill_table, is_budget, provisioned, reboot, snapshot, storm, wear,
};
use support::power::{CHAINS, payload};

const HOUR_MS: u64 = 3_600_000;

/// Records the budget allows over `uptime_ms` from a bucket holding `start` records.
fn allowed(budget: WriteBudget, start: u32, uptime_ms: u64) -> u64 {
    u64::from(start) + u64::from(budget.records_per_hour) * uptime_ms / HOUR_MS
}

#[test]
fn a_level_walking_storm_on_every_mark_writes_no_faster_than_the_budget() {
    let budget = WriteBudget::DEFAULT;
    let (mut b, clock, _guard, keys) = provisioned(16, budget);
    let (marks, mut next) = fill_table(&mut b, &clock, &keys);

    // The first refusal: transient, names when to retry, changes nothing — and is honest: the
    // same request signs once that time has passed.
    let start = wear(&b);
    let mut i = 0;
    let (id, refusal) = loop {
        assert!(
            i < 10_000,
            "no budget refusal in 10,000 requests above their ceilings"
        );
        let id = marks[i % marks.len()];
        let p = payload(id.kind, false, id.chain.0, next[i % marks.len()], 0, 1);
        let before = snapshot(&mut b);
        match sign(&mut b, &id.key, &p) {
            Ok(_) => next[i % marks.len()] += AHEAD + 1,
            Err(r) => {
                assert!(is_budget(&r), "{r:?}");
                assert_eq!(snapshot(&mut b), before);
                break ((id, p), r);
            }
        }
        i += 1;
    };
    assert!(
        refusal
            .to_string()
            .contains("flash write budget spent: retry in"),
        "{refusal}"
    );
    let Refusal::Store(StoreError::WriteBudget { retry_ms }) = refusal else {
        unreachable!()
    };
    assert!(retry_ms > 0 && retry_ms <= 3_000, "{retry_ms}");
    clock.advance(u64::from(retry_ms) - 1);
    assert!(sign(&mut b, &id.0.key, &id.1).is_err_and(|r| is_budget(&r)));
    clock.advance(1);
    sign(&mut b, &id.0.key, &id.1).expect("signs once the budget is back");
    next[i % marks.len()] += AHEAD + 1;

    // Six hours of it, five requests a second, every one above its ceiling.
    let t0 = clock.now();
    let from = wear(&b);
    let tally = storm(&mut b, &clock, &marks, &mut next, 6 * 3_600 * 5, 200, true);
    let hours = (clock.now() - t0) as f64 / HOUR_MS as f64;
    let records = u64::from(wear(&b).records - from.records);
    assert_eq!(tally.other, 0, "{tally:?}");
    assert!(tally.budget > tally.signed, "{tally:?}");
    // Within the budget (the bucket was empty at t0: one record of slack for rounding)…
    let bound = allowed(budget, 1, clock.now() - t0);
    assert!(
        records <= bound,
        "{records} records in {hours} h, bound {bound}"
    );
    // …and the storm does use it: the bound is what a storm gets, not a loose figure.
    assert!(records * 100 >= bound * 95, "{records} of {bound}");
    let per_hour = records as f64 / hours;
    assert!(
        per_hour <= f64::from(budget.records_per_hour) * 1.001,
        "{per_hour}"
    );
    let _ = start;
}

#[test]
fn rebooting_the_board_mints_no_writes() {
    let budget = WriteBudget::DEFAULT;
    let (b, clock, guard, keys) = provisioned(16, budget);
    let (mut b, mut clock) = (b, clock);
    let (marks, mut next) = fill_table(&mut b, &clock, &keys);
    // From here: at most what the bucket holds now (a full one at most) plus the refill over
    // the uptime, however often the host power-cycles the board.
    let (mut since_ms, mut since_records) = (clock.now(), wear(&b).records);
    let (mut uptime, mut records) = (0, 0);
    for _ in 0..300 {
        // Hammer for 3 s after each boot, then cut the power.
        let t = storm(&mut b, &clock, &marks, &mut next, 30, 100, true);
        assert_eq!(t.other, 0, "{t:?}");
        uptime += clock.now() - since_ms;
        records += u64::from(wear(&b).records - since_records);
        (b, clock) = reboot(b, &guard, budget, Mode::Operational);
        (since_ms, since_records) = (0, 0);
    }
    let bound = allowed(budget, budget.capacity, uptime);
    assert!(
        records <= bound,
        "{records} records in {uptime} ms of uptime over 300 boots, bound {bound}"
    );
    // A bucket that started full at every boot would have allowed 300 × 96.
    assert!(records > 0);
}

#[test]
fn a_drained_bucket_stays_drained_across_a_reboot() {
    let budget = WriteBudget::DEFAULT;
    let (mut b, clock, guard, keys) = provisioned(16, budget);
    let (marks, mut next) = fill_table(&mut b, &clock, &keys);
    // Drain it.
    let t = storm(&mut b, &clock, &marks, &mut next, 400, 10, false);
    assert!(t.budget > 0, "{t:?}");
    let (mut b, clock) = reboot(b, &guard, budget, Mode::Operational);
    let id = marks[0];
    // Past the ceiling the reboot restored.
    let level = b.watermarks().get(&id).expect("mark").level + 1;
    let p = payload(id.kind, false, id.chain.0, level, 0, 1);
    let before = snapshot(&mut b);
    let r = sign(&mut b, &id.key, &p).expect_err("no tokens after a reboot");
    assert!(is_budget(&r), "{r:?}");
    assert_eq!(snapshot(&mut b), before);
    clock.advance(10_000);
    sign(&mut b, &id.key, &p).expect("refilled while up");
}

/// Levels a stopped chain moves while the board is off or the host is away.
fn levels(ms: u64) -> u32 {
    (ms / BLOCK_MS) as u32
}

#[test]
fn sixteen_keys_at_six_seconds_are_never_refused_for_rate() {
    let budget = WriteBudget::DEFAULT;
    let (b, clock, guard, keys) = provisioned(16, budget);
    let (mut b, mut clock) = (b, clock);
    // A simulated day.
    let mut head = 1;
    let day = levels(24 * HOUR_MS);
    let t = bake(&mut b, &clock, &keys, head, head + day);
    head += day;
    assert_eq!(t.budget, 0, "{t:?}");
    assert_eq!(t.other, 0, "{t:?}");
    assert!(t.signed >= 32 * u64::from(day), "{t:?}");

    // A reboot at every point of the ceiling cycle (the marks' headroom goes from N down to
    // 1 and back): 20 s off, then bake on; refusals below the restored ceilings are the
    // ceiling rule, never the budget.
    for phase in 0..=AHEAD {
        let t = bake(&mut b, &clock, &keys, head, head + phase);
        head += phase;
        assert_eq!(t.budget, 0, "{t:?}");
        (b, clock) = reboot(b, &guard, budget, Mode::Operational);
        clock.advance(20_000);
        head += levels(20_000);
        let t = bake(&mut b, &clock, &keys, head, head + 3 * AHEAD);
        head += 3 * AHEAD;
        assert_eq!(t.budget, 0, "phase {phase}: {t:?}");
        assert!(t.signed > 0, "{t:?}");
    }

    // A week with the board off, then the baker comes back at the chain's head.
    (b, clock) = reboot(b, &guard, budget, Mode::Operational);
    head += levels(7 * 24 * HOUR_MS);
    let t = bake(&mut b, &clock, &keys, head, head + 4 * AHEAD);
    head += 4 * AHEAD;
    assert_eq!(t.budget, 0, "board off a week: {t:?}");
    assert_eq!(t.other, 0, "{t:?}");

    // A week with the board on and the host away.
    clock.advance(7 * 24 * HOUR_MS);
    head += levels(7 * 24 * HOUR_MS);
    let t = bake(&mut b, &clock, &keys, head, head + 4 * AHEAD);
    assert_eq!(t.budget, 0, "host away a week: {t:?}");
    assert_eq!(t.other, 0, "{t:?}");
}

#[test]
fn provisioning_mode_is_not_bounded() {
    // The operator's own session (physical act at power-up): an import of every mark, and
    // more, is never refused for rate.
    let budget = WriteBudget::DEFAULT;
    let guard = support::power::SharedGuard::default();
    let (mut b, _clock) = support::budget::boot(
        pawl_core::sim::SimFlash::new(support::budget::PAGES),
        guard,
        budget,
        Mode::Provisioning,
    );
    let sk = pawl_core::keys::SecretBytes::new([0x55; 32])
        .to_b58(pawl_core::keys::Curve::Ed25519)
        .to_string();
    let (pkh, _) = support::board::import(&mut b, &sk, pawl_core::policy::Policy::default());
    for n in 0..500u32 {
        let p = payload(
            MarkKind::Attestation,
            false,
            CHAINS[0],
            1 + n * (AHEAD + 1),
            0,
            1,
        );
        sign(&mut b, &pkh, &p).expect("provisioning mode signs");
    }
}

#[test]
fn the_button_is_not_asked_for_a_write_the_budget_refuses() {
    use pawl_core::board::Board;
    use pawl_core::sim::flash::PAGE;
    use pawl_core::store::{BoardKey, Budgeted, NorStore, NorStoreConfig};
    use support::board::{INFO, SharedButton, TestEntropy};
    use support::budget::{FakeClock, PAGES};
    use support::power::{BOARD_KEY, SharedGuard};

    let budget = WriteBudget::DEFAULT;
    let guard = SharedGuard::default();
    let button = SharedButton::default();
    button.press.set(true);
    let open = |flash, mode| {
        let config = NorStoreConfig {
            region: 0..(PAGES * PAGE) as u32,
            ceiling_ahead: AHEAD,
        };
        let store =
            NorStore::new(flash, config, &BoardKey::new(BOARD_KEY), guard.clone()).expect("config");
        let clock = FakeClock::default();
        let store = Budgeted::new(store, clock.clone(), budget);
        (
            Board::open(store, TestEntropy(3), button.clone(), mode, INFO),
            clock,
        )
    };
    let (mut b, _) = open(pawl_core::sim::SimFlash::new(PAGES), Mode::Provisioning);
    let sk = pawl_core::keys::SecretBytes::new([0x66; 32])
        .to_b58(pawl_core::keys::Curve::Ed25519)
        .to_string();
    let (pkh, _) = support::board::import(&mut b, &sk, pawl_core::policy::Policy::default());
    let at = |level| payload(MarkKind::Attestation, false, CHAINS[0], level, 0, 1);
    sign(&mut b, &pkh, &at(10)).expect("first mark");
    let flash = b.into_store().into_inner().into_flash();
    let (mut b, clock) = open(flash, Mode::Operational);
    // Spend the bucket: every request above the ceiling.
    let mut level = 10;
    loop {
        match sign(&mut b, &pkh, &at(level + AHEAD + 1)) {
            Ok(_) => level += AHEAD + 1,
            Err(r) if is_budget(&r) => break,
            Err(r) => panic!("{r:?}"),
        }
    }
    // A jump past the guard's limit needs the button; the budget refuses first.
    let far = at(level + 2_000_000);
    let before = snapshot(&mut b);
    let r = sign(&mut b, &pkh, &far).expect_err("no tokens");
    assert!(is_budget(&r), "{r:?}");
    assert_eq!(
        button.asked.get(),
        0,
        "the button was asked for a refused write"
    );
    assert_eq!(snapshot(&mut b), before);
    clock.advance(10_000);
    sign(&mut b, &pkh, &far).expect("pressed, and the budget is back");
    assert_eq!(button.asked.get(), 1);
}
