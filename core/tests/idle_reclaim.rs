//! Page reclaims happen in idle time (`core/src/store/nor/ahead.rs`): when the board had idle
//! time before a request, a durable write on that request's path — a ceiling for a level above
//! the reserved one — never waits for a page erase, across several wraps of the region.
#![allow(clippy::cast_possible_truncation)]

mod support;

use pawl_core::keys::{Curve, SecretBytes};
use pawl_core::policy::Policy;
use pawl_core::sim::SimFlash;
use pawl_core::store::Store;
use support::board::{attestation, import, sign};
use support::power::{CHAINS, SharedGuard, boot};

const PAGES: usize = 8;

#[test]
fn a_durable_write_after_idle_time_never_waits_for_an_erase() {
    let mut b = boot(SimFlash::new(PAGES), PAGES, 16, SharedGuard::default());
    let sk = SecretBytes::new([0x61; 32])
        .to_b58(Curve::Ed25519)
        .to_string();
    let (pkh, _) = import(&mut b, &sk, Policy::default());
    let mut level = 1_000;
    let mut erases_on_request = 0;
    while b.store().wear().pages_erased < 3 * PAGES as u32 {
        // Idle time first: reservations and page closing.
        while b.idle().expect("idle") {}
        // 100 levels on: above any reservation, so this signature writes its ceiling.
        level += 100;
        let records = b.store().wear().records;
        let erased = b.store().wear().pages_erased;
        sign(&mut b, &pkh, &attestation(CHAINS[0], level, 0, 1)).expect("signs");
        assert!(
            b.store().wear().records > records,
            "level {level}: no durable write"
        );
        erases_on_request += b.store().wear().pages_erased - erased;
    }
    assert_eq!(
        erases_on_request, 0,
        "durable writes on the request path waited for page erases"
    );
}
