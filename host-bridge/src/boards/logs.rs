//! Board logs: each board keeps its recent events in RAM (boot and mode, store health,
//! refusals with their reason, flash erases, button waits; `pawl_core::protocol::events`) and
//! answers only when asked, so the bridge asks — one task per board, every [`POLL`] and right
//! after a sign that was not released — and writes each event to its own log with the board's
//! configured name (`board = "…"`).
//!
//! Levels: a store that refuses is `error`, a refusal `warn`, everything else `info`. Events
//! the board's ring overwrote before they were read are counted in
//! `pawl_board_events_dropped_total` (and logged as a warning). A board that restarted (a new
//! boot tag) is read again from its first event. Events name keys by hash, never secrets or
//! payload bytes.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pawl_core::protocol::events::{
    EVENT_PAGE, Event, EventKind, EventPage, EventsRequest, EventsResponse,
};
use pawl_core::protocol::{Mode, Request, Response, StoreHealth};

use super::Boards;
use crate::link::Link;
use crate::metrics::Metrics;

/// How often each board is asked for new events.
pub const POLL: Duration = Duration::from_secs(1);

/// Events each board's ring overwrote before the bridge read them, by board name.
#[derive(Default)]
pub struct Dropped(Mutex<BTreeMap<String, u64>>);

impl Dropped {
    fn add(&self, board: &str, n: u32) {
        if let Ok(mut m) = self.0.lock() {
            *m.entry(board.to_string()).or_default() += u64::from(n);
        }
    }

    /// Events of board `board` its ring overwrote before they were read (0 until one drops).
    pub fn of(&self, board: &str) -> u64 {
        self.0
            .lock()
            .map(|m| m.get(board).copied().unwrap_or(0))
            .unwrap_or(0)
    }
}

/// Follow every board's events, each on its own task, forever.
pub async fn follow(boards: Boards, metrics: Arc<Metrics>, every: Duration) {
    let mut tasks = Vec::new();
    for board in boards.all() {
        let (name, link) = (board.name.clone(), board.link.clone());
        let metrics = Arc::clone(&metrics);
        tasks.push(tokio::spawn(async move {
            let mut reader = Reader::default();
            loop {
                // A board that is down is not asked here: keep_connected brings it back.
                if link.view().connected {
                    reader
                        .read(&name, &link, &metrics.board_events_dropped)
                        .await;
                }
                // Every `every`, and at once after a sign that was not released (its refusal
                // is in the board's log by then).
                tokio::select! {
                    () = tokio::time::sleep(every) => {}
                    () = metrics.board_log_wake.notified() => {}
                }
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
}

/// Where one board's log stands: its boot tag and the last event read.
#[derive(Default)]
struct Reader {
    boot: Option<u32>,
    after: u32,
}

impl Reader {
    /// Read and log every event since the last one, page by page.
    async fn read(&mut self, name: &str, link: &Link, dropped: &Dropped) {
        // Bounded: the ring holds at most a few pages; more means the board keeps logging.
        for _ in 0..8 {
            let page = match ask(link, self.after).await {
                Some(page) => page,
                None => return,
            };
            if self.boot != Some(page.boot) {
                if self.boot.is_some() && self.after != 0 {
                    tracing::info!(board = %name, "board restarted: reading its log from the start");
                    self.after = 0;
                    self.boot = Some(page.boot);
                    continue;
                }
                self.boot = Some(page.boot);
            }
            if page.dropped > 0 {
                dropped.add(name, page.dropped);
                tracing::warn!(
                    board = %name,
                    dropped = page.dropped,
                    "board log: {} event(s) were overwritten before they were read",
                    page.dropped
                );
            }
            for event in &page.events {
                log(name, event);
            }
            match page.events.last() {
                Some(last) => self.after = last.seq,
                None => return,
            }
            if page.events.len() < EVENT_PAGE {
                return;
            }
        }
    }
}

async fn ask(link: &Link, after: u32) -> Option<EventPage> {
    match link
        .ask(&Request::Events(EventsRequest::Since { after }))
        .await
    {
        Ok(reply) => match reply.response {
            Response::Events(EventsResponse::Page(page)) => Some(page),
            // A board whose firmware predates board logs refuses the request.
            _ => None,
        },
        Err(_) => None,
    }
}

fn mode_name(mode: Mode) -> &'static str {
    crate::commands::device::mode_name(mode)
}

/// One event as a log line.
fn log(name: &str, event: &Event) {
    let seq = event.seq;
    match &event.what {
        EventKind::Boot { mode } => {
            tracing::info!(board = %name, seq, "board booted in {} mode", mode_name(*mode));
        }
        EventKind::Store(StoreHealth::Ok) => {
            tracing::info!(board = %name, seq, "board store loaded: ok");
        }
        EventKind::Store(StoreHealth::Refusing(e)) => {
            tracing::error!(board = %name, seq, "board store refusing to sign: {e}");
        }
        EventKind::Refused { key, reason } => match key {
            Some(key) => {
                tracing::warn!(board = %name, seq, key = %key, "board refused: {reason}");
            }
            None => tracing::warn!(board = %name, seq, "board refused: {reason}"),
        },
        EventKind::Erased { pages } => {
            tracing::info!(board = %name, seq, pages, "board erased {pages} flash page(s)");
        }
        EventKind::ConfirmWait {
            key,
            kind,
            confirmed,
        } => {
            let outcome = if *confirmed { "pressed" } else { "not pressed" };
            tracing::info!(
                board = %name, seq, key = %key,
                "board waited for its button to confirm a {kind} request: {outcome}"
            );
        }
    }
}
