//! A simulated day of signing on the simulated flash, and the wear model for the board's
//! region: `cargo bench -p pawl-core --bench wear_day`. Figures go to `docs/wear.md`.
#![allow(clippy::cast_possible_truncation, clippy::std_instead_of_core)]

#[path = "../tests/support/mod.rs"]
mod support;

use pawl_core::keys::{Curve, SecretBytes};
use pawl_core::policy::Policy;
use pawl_core::protocol::{Request, Response};
use pawl_core::sim::SimFlash;
use pawl_core::sim::flash::PAGE;
use pawl_core::store::NorStoreConfig;
use pawl_core::store::wear::WearModel;
use support::board::{consensus, import, sign};
use support::power::{CHAINS, SharedGuard, boot};

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let pages = 64; // 256 KiB, the board's region
    let ahead = NorStoreConfig::DEFAULT_CEILING_AHEAD;
    let levels: u32 = std::env::var("PAWL_LEVELS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(14_400); // one day at 6 s
    let mut b = boot(SimFlash::new(pages), pages, ahead, SharedGuard::default());
    let keys: Vec<_> = (0..4u8)
        .map(|i| {
            let sk = SecretBytes::new([0x30 + i; 32])
                .to_b58(Curve::Ed25519)
                .to_string();
            import(&mut b, &sk, Policy::default()).0
        })
        .collect();
    let wear = |b: &mut support::power::NorBoard| match b.handle(Request::Status) {
        Response::Status(s) => s.wear,
        other => panic!("{other:?}"),
    };
    // Day one fills the erased region; day two is the steady state, with page reclaims.
    let day_one = |b: &mut support::power::NorBoard, from: u32| {
        for level in from..from + levels {
            for pkh in &keys {
                sign(b, pkh, &consensus(0x12, 20, CHAINS[0], level, 0, 1)).expect("pre");
                sign(b, pkh, &consensus(0x13, 21, CHAINS[0], level, 0, 1)).expect("att");
            }
            while b.idle().expect("idle") {}
        }
    };
    day_one(&mut b, 1);
    let start = wear(&mut b);
    let t = std::time::Instant::now();
    for level in levels + 1..=2 * levels {
        for pkh in &keys {
            sign(&mut b, pkh, &consensus(0x12, 20, CHAINS[0], level, 0, 1)).expect("pre");
            sign(&mut b, pkh, &consensus(0x13, 21, CHAINS[0], level, 0, 1)).expect("att");
        }
        // The seconds between levels: board glue's idle-time work.
        while b.idle().expect("idle") {}
    }
    let elapsed = t.elapsed();
    let end = wear(&mut b);
    let signatures = u64::from(levels) * 8;
    let records = end.records - start.records;
    let bytes = end.bytes_written - start.bytes_written;
    let erases = end.pages_erased - start.pages_erased;
    println!(
        "## measured (second day): {levels} levels, 4 keys, N = {ahead}, {pages} pages of {PAGE} B"
    );
    println!(
        "| signatures | records | writes/signature | bytes written | pages erased | bytes/record | time |"
    );
    println!("|---|---|---|---|---|---|---|");
    println!(
        "| {signatures} | {records} | {:.4} | {bytes} | {erases} | {:.1} | {:.1} s |",
        f64::from(records) / signatures as f64,
        bytes as f64 / f64::from(records),
        elapsed.as_secs_f64()
    );
    // Scale the measured day to a full day for the life estimate.
    let day = 14_400.0 / f64::from(levels);
    let erases_per_day = f64::from(erases) * day;
    let bytes_per_day = bytes as f64 * day;
    println!();
    println!("## model (4 keys, 6 s blocks, 2 marks per key per level)");
    println!(
        "| region | N | endurance | writes/signature | bytes/day | erases/day (model) | life, model (years) | erases/day (measured) | life, measured (years) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for region_pages in [16u32, 32, 64] {
        for n in [1u32, 4, 16, 32] {
            for endurance in [10_000u32, 100_000] {
                let m = WearModel {
                    region_bytes: region_pages * PAGE as u32,
                    page_bytes: PAGE as u32,
                    endurance,
                    keys: 4,
                    block_time_s: 6,
                    ceiling_ahead: n,
                    marks_per_key: 2,
                    record_bytes: WearModel::CEILING_RECORD_BYTES,
                    live_bytes: 0,
                }
                .estimate();
                let measured = if n == ahead && region_pages as usize == pages {
                    let life =
                        f64::from(region_pages) * f64::from(endurance) / erases_per_day / 365.0;
                    (format!("{erases_per_day:.1}"), format!("{life:.0}"))
                } else {
                    ("".into(), "".into())
                };
                println!(
                    "| {} KiB | {n} | {endurance} | {:.4} | {:.0} | {:.1} | {:.0} | {} | {} |",
                    region_pages * 4,
                    m.writes_per_signature,
                    m.bytes_per_day,
                    m.erases_per_day,
                    m.life_years,
                    measured.0,
                    measured.1
                );
            }
        }
    }
    let _ = bytes_per_day;
}
