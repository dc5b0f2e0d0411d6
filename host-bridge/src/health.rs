//! Health and the board's own figures on the metrics listener.
//!
//! * `GET /healthz`: 200 while the process runs.
//! * `GET /readyz`: 200 when the board is connected, speaks our protocol version, its store is
//!   healthy and its status was read recently; otherwise 503 with the reason as the body.
//! * `GET /metrics`: the bridge's counters ([`Metrics`]) plus the board's: each mark's level and
//!   round per chain, key and kind, store health, flash records, bytes and erases since the
//!   board booted, the wear model's life estimate, and seconds since each key last signed.
//!
//! The board's figures come from a [`watch`] task that asks `Status` and `ExportWatermarks`
//! every [`REFRESH`]: never from a scrape and never on the signing path, so a scrape costs the
//! board nothing and a busy Prometheus cannot slow a signature. Labels are the chain id, the
//! key hash, the mark kind and refusal reasons: never payload bytes.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use pawl_core::board::MAX_MARKS;
use pawl_core::protocol::{
    Mode, PROTOCOL_VERSION, Request, Response, Status, StoreHealth, WatermarkEntry,
};
use pawl_core::store::NorStoreConfig;
use pawl_core::store::wear::WearModel;

use crate::link::{BoardView, Link};
use crate::metrics::Metrics;

/// How often the board's status and marks are read.
pub const REFRESH: Duration = Duration::from_secs(5);

/// Older than this, the board's status no longer counts for readiness.
const STALE_AFTER: Duration = Duration::from_secs(30);

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

/// What the last refresh read from the board.
#[derive(Clone, Debug, Default)]
pub struct BoardSnapshot {
    /// The board's last `Status`.
    pub status: Option<Status>,
    /// Every mark, as of the last refresh.
    pub marks: Vec<WatermarkEntry>,
    /// When `status` and `marks` were read.
    pub read_at: Option<Instant>,
    /// Why the last refresh failed (cleared by the next success).
    pub error: Option<String>,
}

/// Read the board's status and marks every `every`, until the link stops.
pub async fn watch(link: Link, metrics: Arc<Metrics>, every: Duration) {
    metrics.started();
    loop {
        let result = refresh(&link).await;
        if let Ok(mut snapshot) = metrics.board.write() {
            match result {
                Ok((status, marks)) => {
                    *snapshot = BoardSnapshot {
                        status: Some(status),
                        marks,
                        read_at: Some(Instant::now()),
                        error: None,
                    };
                }
                Err(e) => snapshot.error = Some(e),
            }
        }
        tokio::time::sleep(every).await;
    }
}

async fn refresh(link: &Link) -> Result<(Status, Vec<WatermarkEntry>), String> {
    let status = match link.ask(&Request::Status).await {
        Ok(reply) => match reply.response {
            Response::Status(s) => s,
            other => return Err(format!("unexpected answer to status: {other:?}")),
        },
        Err(e) => return Err(e.to_string()),
    };
    let mut marks = Vec::new();
    let mut start = 0u16;
    // At most MAX_MARKS entries: a page cannot repeat forever.
    for _ in 0..=MAX_MARKS {
        let reply = link
            .ask(&Request::ExportWatermarks { start })
            .await
            .map_err(|e| e.to_string())?;
        match reply.response {
            Response::Watermarks { entries, next } => {
                marks.extend(entries);
                match next {
                    Some(n) if n > start => start = n,
                    _ => break,
                }
            }
            other => return Err(format!("unexpected answer to export watermarks: {other:?}")),
        }
    }
    Ok((status, marks))
}

/// Whether the bridge can sign now; `Err` names why not.
pub fn readiness(view: &BoardView, snapshot: &BoardSnapshot) -> Result<(), String> {
    if !view.connected {
        return Err(match &view.last_error {
            Some(e) => format!("board not connected: {e}"),
            None => "board not connected".into(),
        });
    }
    if let Some(id) = &view.identity
        && id.protocol != PROTOCOL_VERSION
    {
        return Err(format!(
            "device protocol mismatch: board speaks version {}, pawl speaks {PROTOCOL_VERSION}",
            id.protocol
        ));
    }
    let (Some(status), Some(read_at)) = (&snapshot.status, snapshot.read_at) else {
        return Err(match &snapshot.error {
            Some(e) => format!("board status not read: {e}"),
            None => "board status not read yet".into(),
        });
    };
    if read_at.elapsed() > STALE_AFTER {
        return Err(format!(
            "board status is stale: last read {} s ago ({})",
            read_at.elapsed().as_secs(),
            snapshot.error.as_deref().unwrap_or("no error")
        ));
    }
    if let StoreHealth::Refusing(e) = status.store {
        return Err(format!("board store refusing: {e}"));
    }
    Ok(())
}

/// The metrics listener's routes: `/metrics`, `/healthz`, `/readyz`.
pub fn router(link: Link, metrics: Arc<Metrics>) -> Router {
    let (for_metrics, for_ready) = (link.clone(), link);
    let ready_metrics = Arc::clone(&metrics);
    Router::new()
        .route(
            "/metrics",
            get(move || {
                let text = render(&for_metrics.view(), &metrics);
                async move { ([("content-type", "text/plain; version=0.0.4")], text) }
            }),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(move || {
                let snapshot = ready_metrics
                    .board
                    .read()
                    .map(|s| s.clone())
                    .unwrap_or_default();
                let answer = match readiness(&for_ready.view(), &snapshot) {
                    Ok(()) => (StatusCode::OK, "ready\n".to_string()),
                    Err(reason) => (StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n")),
                };
                async move { answer }
            }),
        )
}

/// The whole exposition: the bridge's counters, then the board's figures.
pub fn render(view: &BoardView, metrics: &Metrics) -> String {
    let mut out = metrics.render(view.connected, view.connects);
    let snapshot = metrics.board.read().map(|s| s.clone()).unwrap_or_default();
    let ready = readiness(view, &snapshot).is_ok();
    gauge(
        &mut out,
        "pawl_ready",
        "1 when /readyz answers 200 (board connected, protocol matches, store healthy, status fresh).",
        &[("", u64::from(ready) as f64)],
    );
    if let Some(read_at) = snapshot.read_at {
        gauge(
            &mut out,
            "pawl_board_status_age_seconds",
            "Seconds since the board's status and marks were last read.",
            &[("", read_at.elapsed().as_secs_f64())],
        );
    }
    if let Some(status) = &snapshot.status {
        let healthy = matches!(status.store, StoreHealth::Ok);
        gauge(
            &mut out,
            "pawl_board_store_healthy",
            "1 when the board's store is loaded and writable; 0 when it refuses to sign.",
            &[("", u64::from(healthy) as f64)],
        );
        gauge(
            &mut out,
            "pawl_board_operational",
            "1 in operational mode, 0 in provisioning mode.",
            &[("", u64::from(status.mode == Mode::Operational) as f64)],
        );
        gauge(
            &mut out,
            "pawl_board_keys",
            "Keys the board holds.",
            &[("", f64::from(status.keys))],
        );
        gauge(
            &mut out,
            "pawl_board_marks",
            "Watermark entries used.",
            &[("", f64::from(status.marks))],
        );
        gauge(
            &mut out,
            "pawl_board_mark_capacity",
            "Watermark entries the board has.",
            &[("", f64::from(status.mark_capacity))],
        );
        let counters: [(&str, &str, f64); 6] = [
            (
                "pawl_board_signatures_total",
                "Signatures the board released since it booted (repeats included).",
                f64::from(status.signatures),
            ),
            (
                "pawl_board_refusals_total",
                "Requests the board refused since it booted.",
                f64::from(status.refusals),
            ),
            (
                "pawl_board_mark_writes_total",
                "Mark writes asked of the store since boot (most answered from the ceiling in RAM).",
                f64::from(status.mark_writes),
            ),
            (
                "pawl_board_flash_records_total",
                "Durable flash records written since the board booted.",
                f64::from(status.wear.records),
            ),
            (
                "pawl_board_flash_bytes_written_total",
                "Flash bytes programmed since the board booted.",
                status.wear.bytes_written as f64,
            ),
            (
                "pawl_board_flash_pages_erased_total",
                "Flash pages erased since the board booted.",
                f64::from(status.wear.pages_erased),
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        }
        let model = wear_model(status.keys);
        gauge(
            &mut out,
            "pawl_board_wear_life_years",
            "Wear model (docs/wear.md): years a 256 KiB region of 10k-cycle flash lasts at this many keys baking every 6 s level.",
            &[("", model.estimate().life_years)],
        );
        gauge(
            &mut out,
            "pawl_board_flash_erase_budget_pages",
            "Page erases the store region survives in all (pages x endurance): divide by the erase rate for the life left at the measured pace.",
            &[(
                "",
                f64::from(model.region_bytes / model.page_bytes) * f64::from(model.endurance),
            )],
        );
    }
    let marks: Vec<(String, f64, f64)> = snapshot
        .marks
        .iter()
        .map(|m| {
            (
                format!(
                    "chain=\"{}\",pkh=\"{}\",kind=\"{}\"",
                    m.chain.to_b58(),
                    m.pkh.to_b58(),
                    m.kind.name()
                ),
                f64::from(m.level),
                f64::from(m.round),
            )
        })
        .collect();
    let levels: Vec<(&str, f64)> = marks.iter().map(|(l, v, _)| (l.as_str(), *v)).collect();
    let rounds: Vec<(&str, f64)> = marks.iter().map(|(l, _, r)| (l.as_str(), *r)).collect();
    gauge(
        &mut out,
        "pawl_mark_level",
        "The board's high watermark per chain, key and kind: level.",
        &levels,
    );
    gauge(
        &mut out,
        "pawl_mark_round",
        "The board's high watermark per chain, key and kind: round.",
        &rounds,
    );
    // Every key the board lists that may sign here (standby keys sign nothing), and any key
    // this bridge saw sign.
    let active: Vec<String> = view
        .keys
        .iter()
        .filter(|k| !k.duty.standby)
        .map(|k| k.pkh.to_b58().to_string())
        .collect();
    let ages = metrics.signature_ages(&active);
    let ages: Vec<(String, f64)> = ages
        .into_iter()
        .map(|(pkh, age)| (format!("pkh=\"{pkh}\""), age.as_secs_f64()))
        .collect();
    let ages: Vec<(&str, f64)> = ages.iter().map(|(l, v)| (l.as_str(), *v)).collect();
    gauge(
        &mut out,
        "pawl_key_seconds_since_signature",
        "Seconds since this bridge released a signature by the key (since the bridge started if none yet).",
        &ages,
    );
    out
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
