//! A simulated day of CometBFT signing on the simulated flash: `cargo bench -p pawl-core
//! --bench wear_comet`. Cosmos validator keys on the board sign a proposal share, a prevote and
//! a precommit every height; each key has **one** mark per chain (height, round, step packed
//! into the Tezos mark's level and round), so the store's ceiling reservation writes one record
//! per N heights per key, as for a Tezos mark. Environment: `PAWL_BLOCK_S` (block time, default
//! 1 s: the fastest Cosmos chains), `PAWL_KEYS` (default 4), `PAWL_HEIGHTS` (heights simulated,
//! default one day at the block time). Figures go to `docs/cometbft.md` ("Flash wear").
#![allow(clippy::cast_possible_truncation, clippy::std_instead_of_core)]

#[path = "../tests/support/mod.rs"]
mod support;

use pawl_core::keys::{Curve, SecretBytes};
use pawl_core::policy::Policy;
use pawl_core::protocol::{Request, Response};
use pawl_core::sim::SimFlash;
use pawl_core::sim::flash::PAGE;
use pawl_core::store::NorStoreConfig;
use support::board::import;
use support::cometbft::{CHAIN, patched, proposal, set_chain, v, vote};
use support::power::{SharedGuard, boot};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let pages = 64; // 256 KiB, the board's region
    let ahead = NorStoreConfig::DEFAULT_CEILING_AHEAD;
    let block_s = env("PAWL_BLOCK_S", 1).max(1);
    let key_count = env("PAWL_KEYS", 4) as u8;
    let heights = env("PAWL_HEIGHTS", 86_400 / block_s) as u32;
    let mut b = boot(SimFlash::new(pages), pages, ahead, SharedGuard::default());
    let keys: Vec<_> = (0..key_count)
        .map(|i| {
            let sk = SecretBytes::new([0x50 + i; 32])
                .to_b58(Curve::Ed25519)
                .to_string();
            let (pkh, _) = import(&mut b, &sk, Policy::default());
            assert!(matches!(
                set_chain(&mut b, &pkh, CHAIN),
                Response::KeyInfo(_)
            ));
            pkh
        })
        .collect();
    let templates = [
        v("proposal_100_1_pol_0"),
        v("prevote_100_1"),
        v("precommit_100_1"),
    ];
    let wear = |b: &mut support::power::NorBoard| match b.handle(Request::Status) {
        Response::Status(s) => s.wear,
        other => panic!("{other:?}"),
    };
    let mut signatures = 0u64;
    // Day one fills the erased region; day two is the steady state, with page reclaims.
    let day = |b: &mut support::power::NorBoard, from: u32, signatures: &mut u64| {
        for height in from..from + heights {
            for (i, pkh) in keys.iter().enumerate() {
                // One key in `keys` proposes at this height (a rotation); all vote.
                if height as usize % keys.len() == i {
                    proposal(b, pkh, &patched(&templates[0], height, 1, 1)).expect("proposal");
                    *signatures += 1;
                }
                vote(b, pkh, &patched(&templates[1], height, 1, 1), None).expect("prevote");
                vote(b, pkh, &patched(&templates[2], height, 1, 1), None).expect("precommit");
                *signatures += 2;
            }
            // The time between heights: board glue's idle-time work.
            while b.idle().expect("idle") {}
        }
    };
    day(&mut b, 1, &mut signatures);
    let start = wear(&mut b);
    signatures = 0;
    let t = std::time::Instant::now();
    day(&mut b, 1 + heights, &mut signatures);
    let elapsed = t.elapsed();
    let end = wear(&mut b);
    let records = end.records - start.records;
    let bytes = end.bytes_written - start.bytes_written;
    let erases = end.pages_erased - start.pages_erased;
    // Scale the simulated heights to a day at the block time.
    let per_day = 86_400.0 / (block_s as f64 * f64::from(heights));
    let erases_per_day = f64::from(erases) * per_day;
    let life = |endurance: f64| f64::from(pages as u32) * endurance / erases_per_day / 365.0;
    println!(
        "## CometBFT, measured (second run): {heights} heights at {block_s} s, {key_count} keys, N = {ahead}, {pages} pages of {PAGE} B"
    );
    println!(
        "| signatures | records | records/signature | bytes written | pages erased | erases/day | life at 10k cycles (years) | at 100k | time |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    println!(
        "| {signatures} | {records} | {:.4} | {bytes} | {erases} | {erases_per_day:.1} | {:.1} | {:.0} | {:.1} s |",
        f64::from(records) / signatures as f64,
        life(10_000.0),
        life(100_000.0),
        elapsed.as_secs_f64()
    );
}
