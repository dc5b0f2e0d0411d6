//! Nightly-scale power-cut run: `cargo bench -p pawl-core --bench power_cut`.
//!
//! Random signing runs cut at random flash steps (torn or clean), rebooted on the surviving
//! image, checked (no acknowledged mark lost, nothing contradicting a released signature) and
//! continued. `PAWL_CUTS` sets the number of cut points (default 100 000).
#![allow(clippy::cast_possible_truncation, clippy::std_instead_of_core)]

#[path = "../tests/support/mod.rs"]
mod support;

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let target: usize = std::env::var("PAWL_CUTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let start = std::time::Instant::now();
    let mut cuts = 0;
    let mut seed = 0x6e19_0001u64;
    while cuts < target {
        cuts += support::power::random_cuts(seed, 1_000.min(target - cuts));
        seed += 1;
    }
    let elapsed = start.elapsed();
    println!("| cut points | seeds | time | per cut |");
    println!("|---|---|---|---|");
    println!(
        "| {cuts} | {} | {:.1} s | {:.2} ms |",
        seed - 0x6e19_0001,
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e3 / cuts as f64
    );
}
