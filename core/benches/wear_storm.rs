//! Flash wear under the worst hostile storm next to normal baking, with the write budget, on
//! the simulated flash (64 pages of 4 KiB, N = 16), simulated time from a fake clock:
//! `cargo bench -p pawl-core --bench wear_storm`. Figures go to `docs/benchmarks.md`.
//!
//! The worst storm: the budget caps records per hour whatever the host sends, so the worst a
//! host can do is spend every token on the records that wear most. It fills the mark table
//! (64 entries over 16 keys: the most live records for page reclaims to copy forward), then
//! asks, five times a second, round-robin over every mark, for a level N + 1 above the mark:
//! every request is above its ceiling, so every token becomes a ceiling record, on the signing
//! path or by idle reservation. Names (the larger record) cannot be repeated: the table is
//! full and never evicts in operational mode.
#![allow(clippy::cast_possible_truncation, clippy::std_instead_of_core)]

#[path = "../tests/support/mod.rs"]
mod support;

use pawl_core::sim::flash::PAGE;
use pawl_core::store::WriteBudget;
use support::budget::{PAGES, bake, fill_table, provisioned, storm, wear};

const HOUR_MS: u64 = 3_600_000;

struct Row {
    name: &'static str,
    hours: f64,
    records: u64,
    bytes: u64,
    erases: u64,
    refused: u64,
}

impl Row {
    fn print(&self) {
        let per_hour = self.records as f64 / self.hours;
        let erases_day = self.erases as f64 * 24.0 / self.hours;
        let days = |endurance: f64| PAGES as f64 * endurance / erases_day.max(1e-9);
        let life = |endurance: f64| match days(endurance) {
            d if d < 365.0 => format!("{d:.0} days"),
            d => format!("{:.1} years", d / 365.0),
        };
        println!(
            "| {} | {:.1} | {:.0} | {:.0} | {:.1} | {:.1} | {} | {} | {} |",
            self.name,
            self.hours,
            per_hour,
            self.bytes as f64 * 24.0 / self.hours,
            self.bytes as f64 / self.records.max(1) as f64,
            erases_day,
            life(10_000.0),
            life(100_000.0),
            self.refused,
        );
    }
}

/// The hostile storm, one request every `gap_ms`, for `hours` after `warm` hours (the region
/// wrapped: steady state).
fn hostile(budget: WriteBudget, name: &'static str, gap_ms: u64, warm: f64, hours: f64) -> Row {
    let (mut b, clock, _guard, keys) = provisioned(16, budget);
    let (marks, mut next) = fill_table(&mut b, &clock, &keys);
    let requests = |h: f64| (h * HOUR_MS as f64 / gap_ms as f64) as u64;
    storm(
        &mut b,
        &clock,
        &marks,
        &mut next,
        requests(warm),
        gap_ms,
        false,
    );
    let (w0, t0) = (wear(&b), clock.now());
    let t = storm(
        &mut b,
        &clock,
        &marks,
        &mut next,
        requests(hours),
        gap_ms,
        false,
    );
    let w1 = wear(&b);
    Row {
        name,
        hours: (clock.now() - t0) as f64 / HOUR_MS as f64,
        records: u64::from(w1.records - w0.records),
        bytes: w1.bytes_written - w0.bytes_written,
        erases: u64::from(w1.pages_erased - w0.pages_erased),
        refused: t.budget,
    }
}

/// Sixteen keys at 6 s blocks (`support::budget::bake`) for `hours` after `warm` hours.
fn baking(budget: WriteBudget, warm: f64, hours: f64) -> Row {
    let (mut b, clock, _guard, keys) = provisioned(16, budget);
    let levels = |h: f64| (h * 600.0) as u32;
    let mut head = 1;
    let t = bake(&mut b, &clock, &keys, head, head + levels(warm));
    head += levels(warm);
    assert_eq!(t.budget, 0, "{t:?}");
    let (w0, t0) = (wear(&b), clock.now());
    let t = bake(&mut b, &clock, &keys, head, head + levels(hours));
    let w1 = wear(&b);
    Row {
        name: "normal baking: 16 keys, 6 s blocks (2 marks/level each, a block every 8th level)",
        hours: (clock.now() - t0) as f64 / HOUR_MS as f64,
        records: u64::from(w1.records - w0.records),
        bytes: w1.bytes_written - w0.bytes_written,
        erases: u64::from(w1.pages_erased - w0.pages_erased),
        refused: t.budget,
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let hours: f64 = std::env::var("PAWL_HOURS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24.0);
    let budget = WriteBudget::DEFAULT;
    println!(
        "## wear under attack: {PAGES} pages of {PAGE} B, N = 16, budget {} records/h, {} at most, idle above {}",
        budget.records_per_hour, budget.capacity, budget.idle_reserve
    );
    println!(
        "| traffic | hours measured | records/hour | bytes/day | bytes/record | erases/day | life at 10k cycles | at 100k | refused for rate |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let t = std::time::Instant::now();
    hostile(
        budget,
        "worst hostile storm, bounded: 64 marks full, every request above its ceiling, 5/s",
        200,
        8.0,
        hours,
    )
    .print();
    baking(budget, 24.0, hours).print();
    // The same storm with the bound lifted (as before it existed), 50 requests a second (a
    // USB host can send more): one hour is enough.
    let unbounded = WriteBudget {
        records_per_hour: u32::MAX / 2,
        capacity: 200,
        idle_reserve: 0,
    };
    hostile(
        unbounded,
        "the same storm without the budget (before it existed), 50/s",
        20,
        0.5,
        1.0,
    )
    .print();
    eprintln!("(took {:.1} s)", t.elapsed().as_secs_f64());
}
