//! The metrics exposition: the bridge's counters, each board's figures, the keys.

use std::fmt::Write as _;

use pawl_core::protocol::{Mode, StoreHealth};
use pawl_core::store::NorStoreConfig;
use pawl_core::store::wear::WearModel;

use super::{BoardSnapshot, readiness, readiness_of_all};
use crate::boards::{Board, Boards};
use crate::link::BoardView;
use crate::metrics::{Metrics, braces};

/// The wear model's inputs for the reference board (Pico 2: 256 KiB store region of 4 KiB
/// pages, `N` = 16, 6 s blocks; 10,000 erase cycles, the conservative figure of
/// `docs/wear.md`). Only the number of keys comes from the board.
fn wear_model(keys: u16) -> WearModel {
    WearModel {
        region_bytes: 256 * 1024,
        page_bytes: 4096,
        endurance: 10_000,
        keys: u32::from(keys.max(1)),
        block_time_s: 6,
        ceiling_ahead: NorStoreConfig::DEFAULT_CEILING_AHEAD,
        marks_per_key: 2,
        record_bytes: WearModel::CEILING_RECORD_BYTES,
        live_bytes: 0,
    }
}

/// The label set that names `board` (empty when it is the only one).
fn board_label(boards: &Boards, board: &Board) -> String {
    if boards.all().len() > 1 {
        format!("board=\"{}\"", board.name)
    } else {
        String::new()
    }
}

/// `a` and `b` joined as one label set.
fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_string(),
        (_, true) => a.to_string(),
        _ => format!("{a},{b}"),
    }
}

/// The whole exposition: the bridge's counters, then each board's figures, then the keys.
pub fn render(boards: &Boards, metrics: &Metrics) -> String {
    let links: Vec<(String, bool, u64)> = boards
        .all()
        .iter()
        .map(|b| {
            let view = b.link.view();
            (board_label(boards, b), view.connected, view.connects)
        })
        .collect();
    let mut out = metrics.render(&links);
    let ready = readiness_of_all(boards, metrics).is_ok();
    gauge(
        &mut out,
        "pawl_ready",
        "1 when /readyz answers 200 (every board connected, protocol matches, store healthy, status fresh; no key with two live copies).",
        &[("", u64::from(ready) as f64)],
    );
    let snapshots = metrics.boards.read().map(|s| s.clone()).unwrap_or_default();
    let per_board: Vec<(String, BoardView, BoardSnapshot)> = boards
        .all()
        .iter()
        .map(|b| {
            (
                board_label(boards, b),
                b.link.view(),
                snapshots.get(&b.name).cloned().unwrap_or_default(),
            )
        })
        .collect();
    if boards.all().len() > 1 {
        let series: Vec<(&str, f64)> = per_board
            .iter()
            .map(|(l, view, snapshot)| {
                (
                    l.as_str(),
                    u64::from(readiness(view, snapshot).is_ok()) as f64,
                )
            })
            .collect();
        gauge(
            &mut out,
            "pawl_board_ready",
            "1 when this board is connected, speaks our protocol, has a healthy store and a fresh status.",
            &series,
        );
    }
    board_figures(&mut out, &per_board);
    // With one board, no `board` label (as every board figure).
    let _ = writeln!(
        out,
        "# HELP pawl_board_events_dropped_total Board log events the board's ring overwrote before the bridge read them.\n# TYPE pawl_board_events_dropped_total counter"
    );
    for board in boards.all() {
        let labels = board_label(boards, board);
        let n = metrics.board_events_dropped.of(&board.name);
        if labels.is_empty() {
            let _ = writeln!(out, "pawl_board_events_dropped_total {n}");
        } else {
            let _ = writeln!(out, "pawl_board_events_dropped_total{{{labels}}} {n}");
        }
    }
    key_figures(&mut out, boards, metrics, &per_board);
    out
}

/// One metric family: name, help, counter (else gauge), and its series (labels, value).
type Family = (&'static str, &'static str, bool, Vec<(String, f64)>);

/// Each board's status figures and marks.
fn board_figures(out: &mut String, per_board: &[(String, BoardView, BoardSnapshot)]) {
    let mut series: Vec<Family> = Vec::new();
    let mut add =
        |name: &'static str, help: &'static str, counter: bool, labels: &str, v: f64| match series
            .iter_mut()
            .find(|(n, ..)| *n == name)
        {
            Some((.., values)) => values.push((labels.to_string(), v)),
            None => series.push((name, help, counter, vec![(labels.to_string(), v)])),
        };
    for (labels, _, snapshot) in per_board {
        if let Some(read_at) = snapshot.read_at {
            add(
                "pawl_board_status_age_seconds",
                "Seconds since the board's status and marks were last read.",
                false,
                labels,
                read_at.elapsed().as_secs_f64(),
            );
        }
        let Some(status) = &snapshot.status else {
            continue;
        };
        let model = wear_model(status.keys);
        let figures: [(&'static str, &'static str, bool, f64); 13] = [
            (
                "pawl_board_store_healthy",
                "1 when the board's store is loaded and writable; 0 when it refuses to sign.",
                false,
                u64::from(matches!(status.store, StoreHealth::Ok)) as f64,
            ),
            (
                "pawl_board_operational",
                "1 in operational mode, 0 in provisioning mode.",
                false,
                u64::from(status.mode == Mode::Operational) as f64,
            ),
            (
                "pawl_board_keys",
                "Keys the board holds.",
                false,
                f64::from(status.keys),
            ),
            (
                "pawl_board_marks",
                "Watermark entries used.",
                false,
                f64::from(status.marks),
            ),
            (
                "pawl_board_mark_capacity",
                "Watermark entries the board has.",
                false,
                f64::from(status.mark_capacity),
            ),
            (
                "pawl_board_signatures_total",
                "Signatures the board released since it booted (repeats included).",
                true,
                f64::from(status.signatures),
            ),
            (
                "pawl_board_refusals_total",
                "Requests the board refused since it booted.",
                true,
                f64::from(status.refusals),
            ),
            (
                "pawl_board_mark_writes_total",
                "Mark writes asked of the store since boot (most answered from the ceiling in RAM).",
                true,
                f64::from(status.mark_writes),
            ),
            (
                "pawl_board_flash_records_total",
                "Durable flash records written since the board booted.",
                true,
                f64::from(status.wear.records),
            ),
            (
                "pawl_board_flash_bytes_written_total",
                "Flash bytes programmed since the board booted.",
                true,
                status.wear.bytes_written as f64,
            ),
            (
                "pawl_board_flash_pages_erased_total",
                "Flash pages erased since the board booted.",
                true,
                f64::from(status.wear.pages_erased),
            ),
            (
                "pawl_board_wear_life_years",
                "Wear model (docs/wear.md): years a 256 KiB region of 10k-cycle flash lasts at this many keys baking every 6 s level.",
                false,
                model.estimate().life_years,
            ),
            (
                "pawl_board_flash_erase_budget_pages",
                "Page erases the store region survives in all (pages x endurance): divide by the erase rate for the life left at the measured pace.",
                false,
                f64::from(model.region_bytes / model.page_bytes) * f64::from(model.endurance),
            ),
        ];
        for (name, help, counter, value) in figures {
            add(name, help, counter, labels, value);
        }
        if let Some(e) = &status.epoch {
            // The OTP rollback anchor (core/src/store/epoch.rs): alert well before zero.
            add(
                "pawl_board_otp_epochs_left",
                "OTP epochs the board's rollback anchor can still burn (one per boot that writes); at 0 a restored whole-flash image goes undetected.",
                false,
                labels,
                f64::from(e.left),
            );
            add(
                "pawl_board_otp_anchored",
                "1 when this boot is anchored in OTP (a restored whole-flash image is refused); 0 when the board signs on its flash guard alone (epochs exhausted or the burn failed).",
                false,
                labels,
                f64::from(u8::from(matches!(
                    e.state,
                    pawl_core::store::EpochState::Armed | pawl_core::store::EpochState::Burned
                ))),
            );
        }
    }
    for (name, help, counter, values) in &series {
        let kind = if *counter { "counter" } else { "gauge" };
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, value) in values {
            let _ = writeln!(out, "{name}{} {value}", braces(labels));
        }
    }
    let mut levels = Vec::new();
    let mut rounds = Vec::new();
    for (board, _, snapshot) in per_board {
        for m in &snapshot.marks {
            let labels = join(
                &format!(
                    "chain=\"{}\",pkh=\"{}\",kind=\"{}\"",
                    m.chain.to_b58(),
                    m.pkh.to_b58(),
                    m.kind.name()
                ),
                board,
            );
            levels.push((labels.clone(), f64::from(m.level)));
            rounds.push((labels, f64::from(m.round)));
        }
    }
    let levels: Vec<(&str, f64)> = levels.iter().map(|(l, v)| (l.as_str(), *v)).collect();
    let rounds: Vec<(&str, f64)> = rounds.iter().map(|(l, v)| (l.as_str(), *v)).collect();
    gauge(
        out,
        "pawl_mark_level",
        "The board's high watermark per chain, key and kind: level.",
        &levels,
    );
    gauge(
        out,
        "pawl_mark_round",
        "The board's high watermark per chain, key and kind: round.",
        &rounds,
    );
}

/// Seconds since each key signed, and the keys with two live copies (an alert).
fn key_figures(
    out: &mut String,
    boards: &Boards,
    metrics: &Metrics,
    per_board: &[(String, BoardView, BoardSnapshot)],
) {
    // Every key a board lists that may sign there (standby keys sign nothing), and any key
    // this bridge saw sign.
    let mut active: Vec<String> = Vec::new();
    for (_, view, _) in per_board {
        for k in view.keys.iter().filter(|k| !k.duty.standby) {
            let pkh = k.pkh.to_b58().to_string();
            if !active.contains(&pkh) {
                active.push(pkh);
            }
        }
    }
    let ages = metrics.signature_ages(&active);
    let ages: Vec<(String, f64)> = ages
        .into_iter()
        .map(|(pkh, age)| (format!("pkh=\"{pkh}\""), age.as_secs_f64()))
        .collect();
    let ages: Vec<(&str, f64)> = ages.iter().map(|(l, v)| (l.as_str(), *v)).collect();
    gauge(
        out,
        "pawl_key_seconds_since_signature",
        "Seconds since this bridge released a signature by the key (since the bridge started if none yet).",
        &ages,
    );
    let conflicts = boards.conflicts();
    gauge(
        out,
        "pawl_duplicate_keys",
        "Keys active on two or more boards at the same levels (a double-sign risk: every signature by them is refused until the operator resolves it).",
        &[("", conflicts.len() as f64)],
    );
    let copies: Vec<String> = conflicts
        .iter()
        .flat_map(|c| {
            c.boards
                .iter()
                .map(|b| format!("pkh=\"{}\",board=\"{b}\"", c.pkh.to_b58()))
        })
        .collect();
    let copies: Vec<(&str, f64)> = copies.iter().map(|l| (l.as_str(), 1.0)).collect();
    gauge(
        out,
        "pawl_key_live_copy",
        "1 for each board holding a live copy of a key that another board also holds live at the same levels.",
        &copies,
    );
}

/// One gauge family; a label set of `""` means no labels.
fn gauge(out: &mut String, name: &str, help: &str, series: &[(&str, f64)]) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
    for (labels, value) in series {
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {value}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    }
}
