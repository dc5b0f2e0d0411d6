//! Health and the board's own figures on the metrics listener.
//!
//! * `GET /healthz`: 200 while the process runs.
//! * `GET /readyz`: 200 when every configured board is connected, speaks our protocol version,
//!   has a healthy store and had its status read recently, and no key has two live copies;
//!   otherwise 503 with one line per reason, each naming its board when there are several.
//!   Strict on purpose: a board that is down leaves its keys unsigned even though the others
//!   sign, and the operator must hear of it. `pawl_board_ready{board=…}` says which.
//! * `GET /metrics`: the bridge's counters ([`Metrics`]) plus the board's: each mark's level and
//!   round per chain, key and kind, store health, flash records, bytes and erases since the
//!   board booted, the wear model's life estimate, and seconds since each key last signed.
//!
//! The boards' figures come from a [`watch`] task per board that asks `Status` and
//! `ExportWatermarks` every [`REFRESH`]: never from a scrape and never on the signing path, so
//! a scrape costs a board nothing and a busy Prometheus cannot slow a signature (the asking
//! also brings an unplugged board's link back as soon as it answers again). Labels are the
//! chain id, the key hash, the mark kind, refusal reasons and, with several boards, the
//! board's name (`board="…"`; with one board its series carry no board label, as before
//! there were several): never payload bytes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use pawl_core::board::MAX_MARKS;
use pawl_core::protocol::{
    PROTOCOL_VERSION, Request, Response, Status, StoreHealth, WatermarkEntry,
};

use crate::boards::Boards;
use crate::link::{BoardView, Link};
use crate::metrics::Metrics;

mod render;
pub use render::render;

/// How often the board's status and marks are read.
pub const REFRESH: Duration = Duration::from_secs(5);

/// Older than this, the board's status no longer counts for readiness.
const STALE_AFTER: Duration = Duration::from_secs(30);

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

/// Read every board's status and marks every `every`, each board on its own task, forever.
pub async fn watch(boards: Boards, metrics: Arc<Metrics>, every: Duration) {
    metrics.started();
    let mut tasks = Vec::new();
    for board in boards.all() {
        let (name, link, metrics) = (board.name.clone(), board.link.clone(), Arc::clone(&metrics));
        tasks.push(tokio::spawn(watch_one(name, link, metrics, every)));
    }
    for task in tasks {
        let _ = task.await;
    }
}

async fn watch_one(name: String, link: Link, metrics: Arc<Metrics>, every: Duration) {
    loop {
        let result = refresh(&link).await;
        if let Ok(mut snapshots) = metrics.boards.write() {
            let snapshot = snapshots.entry(name.clone()).or_default();
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

/// Whether every board can sign now and no key has two live copies; `Err` has one line per
/// reason, naming the board when there are several.
pub fn readiness_of_all(boards: &Boards, metrics: &Metrics) -> Result<(), String> {
    let snapshots = metrics.boards.read().map(|s| s.clone()).unwrap_or_default();
    let several = boards.all().len() > 1;
    let mut reasons = Vec::new();
    for board in boards.all() {
        let snapshot = snapshots.get(&board.name).cloned().unwrap_or_default();
        if let Err(reason) = readiness(&board.link.view(), &snapshot) {
            reasons.push(if several {
                format!("board `{}': {reason}", board.name)
            } else {
                reason
            });
        }
    }
    reasons.extend(
        boards
            .conflicts()
            .into_iter()
            .map(|c| crate::boards::RouteError::TwoLiveCopies(c).to_string()),
    );
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(reasons.join("\n"))
    }
}

/// The metrics listener's routes: `/metrics`, `/healthz`, `/readyz`.
pub fn router(boards: Boards, metrics: Arc<Metrics>) -> Router {
    let (for_metrics, for_ready) = (boards.clone(), boards);
    let ready_metrics = Arc::clone(&metrics);
    Router::new()
        .route(
            "/metrics",
            get(move || {
                let text = render(&for_metrics, &metrics);
                async move { ([("content-type", "text/plain; version=0.0.4")], text) }
            }),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(move || {
                let answer = match readiness_of_all(&for_ready, &ready_metrics) {
                    Ok(()) => (StatusCode::OK, "ready\n".to_string()),
                    Err(reason) => (StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n")),
                };
                async move { answer }
            }),
        )
}
