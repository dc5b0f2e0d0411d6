//! Power cuts during signing: at every flash step of a long run, and at random points of many
//! runs with reboots in between. After each cut the board boots on the surviving image and
//! must keep every acknowledged mark (see `support::power::check_reboot`). The long run gives
//! the board idle time after some requests, so its cut points include page reclaims started
//! in idle time (`core/src/store/nor/ahead.rs`) as well as those inside a request.
#![allow(clippy::cast_possible_truncation, clippy::std_instead_of_core)]

mod support;

use std::cell::Cell;
use std::rc::Rc;

use pawl_core::sim::SimFlash;
use pawl_core::sim::flash::Event;
use support::power::{
    Release, Rng, Run, SharedGuard, Step, boot, check_reboot, image_at, journal, provision,
    random_cuts,
};

const PAGES: usize = 2;
const AHEAD: u32 = 2;

/// A recorded run: flash journal, releases (with the journal length when each left) and the
/// journal spans of idle-time work.
type Recorded = (Vec<Event>, Vec<(usize, Release)>, Vec<(usize, usize)>);

/// One recorded run: the journal of flash steps and guard advances, each release with the
/// journal length at the moment it left the board, and the journal spans of idle-time work.
fn recorded_run(seed: u64, signatures: usize) -> Recorded {
    let j = journal();
    let mut flash = SimFlash::new(PAGES);
    flash.journal(j.clone());
    let guard = SharedGuard {
        value: Rc::new(Cell::new(0)),
        journal: Some(j.clone()),
    };
    let mut board = boot(flash, PAGES, AHEAD, guard);
    let keys = provision(&mut board, 4);
    let mut run = Run::new(keys);
    let mut rng = Rng(seed);
    let mut acks = Vec::new();
    let mut idle = Vec::new();
    let at = || j.lock().expect("journal").len();
    while run.released.len() < signatures {
        if let Step::Released(r) = run.step(&mut board, &mut rng) {
            acks.push((at(), r));
        }
        // Idle time after half the requests, as board glue gives it when no request waits.
        if rng.below(2) == 0 {
            let start = at();
            while board.idle().expect("idle") {}
            idle.push((start, at()));
        }
    }
    let events = j.lock().expect("journal").clone();
    (events, acks, idle)
}

#[test]
fn every_cut_point_of_a_long_run() {
    let (events, acks, idle) = recorded_run(0x5eed, 800);
    let erases = events
        .iter()
        .filter(|e| matches!(e, Event::Erase { .. }))
        .count();
    let in_idle = |k: usize| idle.iter().any(|&(a, b)| (a..b).contains(&k));
    let idle_erases = (0..events.len())
        .filter(|&k| in_idle(k) && matches!(events[k], Event::Erase { .. }))
        .count();
    assert!(
        idle_erases >= 2,
        "page reclaims must also start in idle time ({idle_erases} of {erases} erases)"
    );
    let records = events
        .iter()
        .filter(|e| matches!(e, Event::Guard(_)))
        .count();
    assert!(
        erases >= 3,
        "the run must roll over pages ({erases} erases)"
    );
    assert!(
        records >= 100,
        "the run must move ceilings often ({records} records)"
    );
    let mut cuts = 0usize;
    let mut idle_cuts = 0usize;
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
            let acked: Vec<Release> = acks
                .iter()
                .filter(|(at, _)| *at <= k)
                .map(|(_, r)| r.clone())
                .collect();
            let guard = SharedGuard {
                value: Rc::new(Cell::new(floor)),
                journal: None,
            };
            let mut board = boot(SimFlash::from_image(image), PAGES, AHEAD, guard);
            let torn_note = if torn { " (torn)" } else { "" };
            check_reboot(
                &mut board,
                &acked,
                k,
                &format!("cut at step {k}{torn_note}"),
            );
            cuts += 1;
            idle_cuts += usize::from(in_idle(k));
        }
    }
    eprintln!(
        "power cuts: {cuts} cut points over {} events ({records} records, {erases} page erases, {idle_erases} of them in idle time, {idle_cuts} cuts in idle-time work, {} signatures)",
        events.len(),
        acks.len()
    );
}

#[test]
fn random_cut_points_with_reboots() {
    let target = std::env::var("PAWL_RANDOM_CUTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3_000);
    let cuts = random_cuts(0xc0ffee, target);
    eprintln!("power cuts: {cuts} random cut points");
    assert!(cuts >= target);
}
