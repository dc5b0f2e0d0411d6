//! Power cuts during CometBFT signing: a recorded run of proposals, prevotes and precommits
//! (three signatures a height, round bumps, identical and timestamp-only retries, idle time)
//! on the simulated flash with ceiling reservation, cut at every flash step (whole and torn).
//! After each cut the board boots on the surviving image and must refuse a conflicting request
//! (another block) at the position of every signature it released before the cut — nothing
//! conflicting is ever signed — and still sign above them.
#![allow(clippy::cast_possible_truncation, clippy::std_instead_of_core)]

mod support;

use std::cell::Cell;
use std::rc::Rc;

use pawl_core::keys::{PublicKeyHash, Signature};
use pawl_core::policy::Policy;
use pawl_core::protocol::{Response, StoreHealth};
use pawl_core::sim::SimFlash;
use pawl_core::sim::flash::Event;
use support::board::import;
use support::cometbft::{CHAIN, patched, proposal, set_chain, v, vote};
use support::power::{NorBoard, Rng, SharedGuard, boot, image_at, journal};

const PAGES: usize = 2;
const AHEAD: u32 = 2;
const TZ1: &str = "edsk4FTF78Qf1m2rykGpHqostAiq5gYW4YZEoGUSWBTJr2njsDHSnd";

/// One released signature: height, round, step (1 propose, 2 prevote, 3 precommit), the block
/// byte it was for.
#[derive(Clone, Copy, Debug)]
struct Release {
    height: u32,
    round: u32,
    step: u8,
    block: u8,
}

thread_local! {
    /// The proposal, prevote and precommit templates (tendermint-rs vectors with a round).
    static TEMPLATES: [Vec<u8>; 3] =
        [v("proposal_100_1_pol_0"), v("prevote_100_1"), v("precommit_100_1")];
}

fn request(b: &mut NorBoard, pkh: &PublicKeyHash, r: Release) -> Result<Signature, String> {
    let bytes =
        TEMPLATES.with(|t| patched(&t[usize::from(r.step - 1)], r.height, r.round, r.block));
    match r.step {
        1 => proposal(b, pkh, &bytes).map(|(s, _)| s),
        _ => vote(b, pkh, &bytes, None).map(|(s, _, _)| s),
    }
    .map_err(|e| format!("{e:?}"))
}

/// The run: journal of flash steps and the releases, each with the journal length when it left.
fn recorded(seed: u64, heights: u32) -> (Vec<Event>, Vec<(usize, Release)>, PublicKeyHash) {
    let j = journal();
    let mut flash = SimFlash::new(PAGES);
    flash.journal(j.clone());
    let guard = SharedGuard {
        value: Rc::new(Cell::new(0)),
        journal: Some(j.clone()),
    };
    let mut board = boot(flash, PAGES, AHEAD, guard);
    let (pkh, _) = import(&mut board, TZ1, Policy::default());
    assert!(matches!(
        set_chain(&mut board, &pkh, CHAIN),
        Response::KeyInfo(_)
    ));
    let mut rng = Rng(seed);
    let mut acks = Vec::new();
    let at = || j.lock().expect("journal").len();
    for height in 1..=heights {
        let rounds = if rng.below(5) == 0 { 2 } else { 1 };
        for round in 0..rounds {
            for step in 1..=3 {
                let block = (rng.below(200) + 1) as u8;
                let r = Release {
                    height,
                    round,
                    step,
                    block,
                };
                let sig = request(&mut board, &pkh, r).expect("in order");
                acks.push((at(), r));
                if rng.below(4) == 0 {
                    // The node asks again: the same signature.
                    assert_eq!(request(&mut board, &pkh, r), Ok(sig));
                }
                if rng.below(2) == 0 {
                    while board.idle().expect("idle") {}
                }
            }
        }
    }
    let events = j.lock().expect("journal").clone();
    (events, acks, pkh)
}

#[test]
fn no_conflicting_signature_after_a_cut_at_any_flash_step() {
    let (events, acks, pkh) = recorded(0xc0e7, 600);
    let erases = events
        .iter()
        .filter(|e| matches!(e, Event::Erase { .. }))
        .count();
    assert!(
        erases >= 2,
        "the run must roll over pages ({erases} erases)"
    );
    let mut cuts = 0;
    for k in 0..=events.len() {
        for torn in [false, true] {
            let flash_step = matches!(
                events.get(k),
                Some(Event::Program { .. } | Event::Erase { .. })
            );
            if torn && !flash_step {
                continue;
            }
            let (image, floor) = image_at(PAGES, &events, k, torn);
            let guard = SharedGuard {
                value: Rc::new(Cell::new(floor)),
                journal: None,
            };
            let mut board = boot(SimFlash::from_image(image), PAGES, AHEAD, guard);
            let context = format!("cut at step {k}{}", if torn { " (torn)" } else { "" });
            let status = match board.handle(pawl_core::protocol::Request::Status) {
                Response::Status(s) => s,
                other => panic!("{context}: {other:?}"),
            };
            assert_eq!(status.store, StoreHealth::Ok, "{context}");
            let acked: Vec<Release> = acks
                .iter()
                .filter(|(at, _)| *at <= k)
                .map(|(_, r)| *r)
                .collect();
            // The newest releases (the ones a ceiling guards right after a cut), and a sample
            // of the older ones.
            let newest = acked.len().saturating_sub(8);
            let sample = acked
                .iter()
                .enumerate()
                .filter(|(i, _)| *i >= newest || i % 97 == k % 97)
                .map(|(_, r)| r);
            for r in sample {
                let conflict = Release {
                    block: r.block.wrapping_add(101).max(1),
                    ..*r
                };
                assert!(
                    request(&mut board, &pkh, conflict).is_err(),
                    "{context}: signed {conflict:?} against the released {r:?}"
                );
            }
            if let Some(last) = acked.last() {
                // Live above the ceiling: a few heights are lost, never more.
                let next = Release {
                    height: last.height + AHEAD + 2,
                    round: 0,
                    step: 2,
                    block: 1,
                };
                request(&mut board, &pkh, next)
                    .unwrap_or_else(|e| panic!("{context}: {next:?} refused: {e}"));
            }
            cuts += 1;
        }
    }
    eprintln!(
        "CometBFT power cuts: {cuts} cut points over {} flash events, {} signatures, {erases} erases",
        events.len(),
        acks.len()
    );
}
