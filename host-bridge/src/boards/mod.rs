//! The boards behind one bridge: each with its own name and link, each owning its keys.
//!
//! pawl scales out by boards, never by sharing one key's watermark over the network. The
//! bridge learns every board's keys (`ListKeys` on each connect, kept in step by provisioning
//! answers) and routes each request by the key's hash:
//!
//! * **one board holds the key** → that board;
//! * **several boards hold it** → the copies must not be able to sign the same level: every
//!   copy but one on standby, or their level windows disjoint (the hand-off of
//!   `docs/lifecycle.md`: the old board retired at L, the new one active from L + 1; a
//!   request then goes to the board whose window holds its level). Otherwise the key has
//!   **two live copies** — a double-sign risk — and every sign for it is refused with 503
//!   naming the boards, on every board, until the operator puts one on standby, hands it off
//!   or removes it ([`Conflict`], the `pawl_key_live_copies` alert metric);
//! * **no board lists it** → 404, as a single board would answer; 503 instead while a board's
//!   key list is still unknown (it has not answered since the bridge started), since the key
//!   may be there.
//!
//! The check runs on every request against the boards' key lists as they are now, so it
//! follows every change to them: a reconnect (which lists the keys again), an import, a
//! standby, a retirement or a removal through the CLI (the control socket's answers update
//! the list). A board that is unplugged keeps its last list: its keys answer 503 naming it,
//! and a copy on it still counts as live (the board may sign elsewhere).

pub mod logs;
mod route;

pub use route::{Conflict, RouteError};

use std::sync::Arc;
use std::time::Duration;

use pawl_core::keys::PublicKeyHash;
use pawl_core::protocol::{KeyInfo, Request};

use crate::http::ApiError;
use crate::link::{Link, LinkError};

/// One board: its name (from `pawl.toml`) and its link.
pub struct Board {
    /// The name the operator gave it (`[[device]] name`), used in errors, metrics and
    /// `--board`.
    pub name: String,
    /// The link to it.
    pub link: Link,
}

impl Board {
    /// A link failure as an HTTP error naming this board.
    pub fn unavailable(&self, e: LinkError) -> ApiError {
        let mut error = ApiError::from(e);
        error.msg = format!("board `{}': {}", self.name, error.msg);
        error
    }
}

/// Every board this bridge serves; cheap to clone.
#[derive(Clone)]
pub struct Boards(Arc<Vec<Board>>);

impl Boards {
    /// The set of `boards` (names unique, at least one: `pawl.toml` validation sees to it).
    pub fn new(boards: Vec<Board>) -> Boards {
        Boards(Arc::new(boards))
    }

    /// One board named `name`.
    pub fn single(name: &str, link: Link) -> Boards {
        Boards::new(vec![Board {
            name: name.to_string(),
            link,
        }])
    }

    /// Every board, in configuration order.
    pub fn all(&self) -> &[Board] {
        &self.0
    }

    /// The board named `name`.
    pub fn by_name(&self, name: &str) -> Option<&Board> {
        self.0.iter().find(|b| b.name == name)
    }

    /// The boards' names, for messages: "a, b, c".
    pub fn names(&self) -> String {
        self.0
            .iter()
            .map(|b| b.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Every board that lists `pkh`, with its copy of the key.
    pub fn holders(&self, pkh: &PublicKeyHash) -> Vec<(&Board, KeyInfo)> {
        self.0
            .iter()
            .filter_map(|b| b.link.cached_key(pkh).map(|k| (b, k)))
            .collect()
    }

    /// The key as the board that signs with it lists it (for a sign's details: backend,
    /// policy); `None` when no board lists it.
    pub fn cached_key(&self, pkh: &PublicKeyHash) -> Option<KeyInfo> {
        let holders = self.holders(pkh);
        holders
            .iter()
            .find(|(_, k)| !k.duty.standby)
            .or(holders.first())
            .map(|(_, k)| k.clone())
    }

    /// The board to ask for a signature by `pkh` at consensus `level` (if the request has
    /// one), or why none may be asked.
    pub fn for_signing(
        &self,
        pkh: &PublicKeyHash,
        level: Option<u32>,
    ) -> Result<&Board, RouteError> {
        route::for_signing(self, pkh, level)
    }

    /// The board to ask for something about `pkh` that signs nothing (its public key): any
    /// board that holds it, a connected one first.
    pub fn for_reading(&self, pkh: &PublicKeyHash) -> Result<&Board, RouteError> {
        route::for_reading(self, pkh)
    }

    /// Every key with two live copies, as the boards' key lists stand now.
    pub fn conflicts(&self) -> Vec<Conflict> {
        route::conflicts(self)
    }
}

/// How often a board whose link is down is asked again by [`keep_connected`].
pub const RECONNECT: Duration = Duration::from_secs(1);

/// Ask every board once now, then every `every` each board whose link is down, forever: a
/// link connects only when asked, and connecting lists the board's keys, so a board plugged
/// back in (or one that was not there when the bridge started) has its keys routed again
/// without waiting for a request for one of them. One task per board, so a silent board
/// does not hold back the others.
pub async fn keep_connected(boards: Boards, every: Duration) {
    let mut tasks = Vec::new();
    for board in boards.all() {
        let (name, link) = (board.name.clone(), board.link.clone());
        tasks.push(tokio::spawn(async move {
            let mut first = true;
            loop {
                if first || !link.view().connected {
                    if let Err(e) = link.ask(&Request::Status).await
                        && first
                    {
                        tracing::warn!(board = %name, "board not reachable yet: {e}");
                    }
                    first = false;
                }
                tokio::time::sleep(every).await;
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
}
