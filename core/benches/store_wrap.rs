//! What a signature costs the board once its store region has wrapped: `cargo bench -p
//! pawl-core --bench store_wrap`. Eight Ed25519 keys sign attestations round-robin at rising
//! levels on the simulated flash (64 pages of 4 KiB, N = 16, in memory: no disk), with the
//! board's idle-time work called after each request as board glue does when no request waits
//! (`idle`) or never (`saturated`). Per request: time and flash traffic, on a fresh store and
//! after the region has been reclaimed three times over.
#![allow(clippy::cast_possible_truncation, clippy::std_instead_of_core)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Instant;

use pawl_core::keys::{Curve, SecretBytes};
use pawl_core::policy::Policy;
use pawl_core::sim::SimFlash;
use pawl_core::store::{NorStoreConfig, Store};
use support::board::{attestation, import, sign};
use support::power::{CHAINS, SharedGuard, boot};

const PAGES: usize = 64;
const KEYS: usize = 8;

fn percentile<T: Copy>(sorted: &[T], p: f64) -> T {
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

fn run(idle: bool) {
    let mut b = boot(
        SimFlash::new(PAGES),
        PAGES,
        NorStoreConfig::DEFAULT_CEILING_AHEAD,
        SharedGuard::default(),
    );
    let keys: Vec<_> = (0..KEYS as u8)
        .map(|i| {
            let sk = SecretBytes::new([0x30 + i; 32])
                .to_b58(Curve::Ed25519)
                .to_string();
            import(&mut b, &sk, Policy::default())
        })
        .collect();
    let mut level = 1_000u32;
    let mut phase = |b: &mut support::power::NorBoard, name: &str, requests: usize| {
        let erased0 = b.store().wear().pages_erased;
        let mut times = Vec::with_capacity(requests);
        let mut reads = Vec::with_capacity(requests);
        let mut idle_reads = Vec::new();
        for i in 0..requests {
            let (pkh, _) = keys[i % keys.len()];
            if i % keys.len() == 0 {
                level += 1;
            }
            let payload = attestation(CHAINS[1], level, 0, 1);
            let read = b.store().bytes_read();
            let t = Instant::now();
            sign(b, &pkh, &payload).expect("signs");
            times.push(t.elapsed());
            reads.push(b.store().bytes_read() - read);
            if idle {
                let read = b.store().bytes_read();
                while b.idle().expect("idle") {}
                idle_reads.push(b.store().bytes_read() - read);
            }
        }
        times.sort();
        reads.sort();
        idle_reads.sort();
        let erased = b.store().wear().pages_erased - erased0;
        if name == "wrapping" {
            return;
        }
        let kib = |b: u64| format!("{:.1}", b as f64 / 1024.0);
        print!(
            "| {} | {name} | {requests} | {erased} | {:.1} µs | {:.1} µs | {:.1} µs | {} | {} |",
            if idle { "idle" } else { "saturated" },
            percentile(&times, 0.5).as_secs_f64() * 1e6,
            percentile(&times, 0.99).as_secs_f64() * 1e6,
            percentile(&times, 0.999).as_secs_f64() * 1e6,
            kib(percentile(&reads, 0.99)),
            kib(reads[reads.len() - 1]),
        );
        if idle {
            println!(" {} |", kib(idle_reads[idle_reads.len() - 1]));
        } else {
            println!(" – |");
        }
    };
    phase(&mut b, "fresh", 20_000);
    // Wrap the region three times over.
    let target = 3 * PAGES as u32;
    while b.store().wear().pages_erased < target {
        phase(&mut b, "wrapping", 20_000);
    }
    phase(&mut b, "wrapped", 20_000);
}

fn main() {
    println!(
        "| idle work | store | requests | pages erased | p50 | p99 | p99.9 | KiB read, p99 | KiB read, most | KiB read, most in one idle turn |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    run(false);
    run(true);
}
