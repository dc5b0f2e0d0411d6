//! The hostile-host fuzzer (issue 13): a seeded random driver plays a compromised host against
//! one board on the simulated NOR flash, and checks after every step that
//!
//! 1. no two different payloads are released (`Signature`) or approved (`DigestApproved`,
//!    `RelayToHsm`) at one (chain, key, kind, level, round), read at Octez's fixed offsets
//!    from the payload sent — across reboots and power cuts;
//! 2. no exported mark is ever lowered or dropped;
//! 3. keys, policies and marks change only by signing (in operational mode), or by the
//!    provisioning request that answered `KeyInfo`/`Done`; a mark moves only to the position
//!    of the request that moved it; across a power cut, only the one write the cut interrupted
//!    (unanswered on a real board) may have landed, whole: one key added or rewritten as
//!    asked, all of a forget's marks or none (`docs/design.md` §8); a refusal for the flash
//!    write budget wrote no record (the board runs under a tight budget on a clock the steps
//!    move: `support/hostile_driver.rs`);
//! 4. the board never panics and answers every frame with one decodable frame;
//! 5. every released signature verifies under the key's public key with a second library.
//!
//! The families added later are in the mix at small rates (4% of well-formed requests, the
//! older mix in its proportions): the self-tests, `Events` and `HsmCheck` change nothing
//! durable (checked: no record written; `FlashTime` is skipped, the board is lent no
//! instruments); CometBFT votes and proposals (`support/hostile_comet.rs`) are checked by the
//! tests' own reading of the sign bytes: one signature per (chain, key, height, round, step),
//! only above the key's mark and everything signed before on that chain, only for the pinned
//! chain, moving only the `CometBft` mark of that position; `SetChain` is a key write.
//!
//! `PAWL_HOSTILE_SECS` (default 5), `PAWL_HOSTILE_SEED` (default: fixed ⊕ time, printed),
//! `PAWL_HOSTILE_STEPS` (stop after this step, to replay a failure). See `core/README.md`.
#![allow(clippy::cast_possible_truncation, clippy::std_instead_of_core)]

#[path = "support/hostile_checks.rs"]
mod checks;
#[path = "support/hostile_comet.rs"]
mod comet;
#[path = "support/hostile_driver.rs"]
mod driver;
#[path = "support/hostile.rs"]
mod fuzz;
#[path = "support/hostile_steps.rs"]
mod steps;
mod support;

use std::cell::Cell;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use driver::Harness;

thread_local! {
    /// Set while the mock HSM is sent hostile bytes: it panics on what it refuses.
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// Run `f` with the panic hook silenced (the mock HSM's refusals are panics).
pub fn quietly<T>(f: impl FnOnce() -> T) -> T {
    QUIET.with(|q| q.set(true));
    let out = f();
    QUIET.with(|q| q.set(false));
    out
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => v.parse().ok(),
    }
}

#[test]
fn hostile_host() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !QUIET.with(Cell::get) {
            default_hook(info);
        }
    }));
    let secs: f64 = std::env::var("PAWL_HOSTILE_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5.0);
    let seed = env_u64("PAWL_HOSTILE_SEED").unwrap_or_else(|| {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        0x9a71_0000_0013_0000 ^ now
    });
    let max_steps = env_u64("PAWL_HOSTILE_STEPS").unwrap_or(u64::MAX);
    println!(
        "hostile: seed {seed:#x} for {secs} s (replay: PAWL_HOSTILE_SEED={seed:#x} PAWL_HOSTILE_SECS={secs} cargo test -p pawl-core --test hostile -- --nocapture)"
    );
    let start = Instant::now();
    let budget = Duration::from_secs_f64(secs);
    let mut h = Harness::new(seed);
    while start.elapsed() < budget && h.stats.steps < max_steps {
        h.step();
    }
    h.stats.print(seed, h.ahead, start.elapsed().as_secs_f64());
    assert!(h.stats.steps > 0);
}
