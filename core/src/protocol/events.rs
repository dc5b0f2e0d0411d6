//! Board logs: the events the board keeps in RAM (boot, mode, store health, refusals, erases, confirm waits) and hands the host when asked.
//!
//! One request family of the device protocol: its own request and response types, carried by
//! [`super::Request::Events`] and [`super::Response::Events`]. Variants are only ever appended.
//!
//! The board never speaks unasked (the module doc of [`super`]): it numbers each event (`seq`,
//! from 1 at boot) and keeps the last [`EVENT_RING`] in a ring; the host reads them with
//! [`EventsRequest::Since`], passing the last sequence number it has seen. Reading is
//! stateless — the board keeps no cursor, so any number of readers may ask and a lost answer
//! is simply asked again. Events the ring overwrote before a reader asked are counted in
//! [`EventPage::dropped`]. A board restart starts the numbers again under a new
//! [`EventPage::boot`] tag, so a reader knows to start over from 0.
//!
//! Events carry no secret and no payload byte: key hashes (public), the request kind, level
//! and round the refusal names, counts.

use serde::{Deserialize, Serialize};

use super::{Mode, Refusal, StoreHealth};
use crate::keys::PublicKeyHash;
use crate::request::RequestKind;

/// Events the board keeps; older ones are overwritten (and counted as dropped).
pub const EVENT_RING: usize = 64;
/// Most events in one [`EventPage`].
pub const EVENT_PAGE: usize = 16;

/// A request of this family.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum EventsRequest {
    /// The events numbered above `after` (0: from the oldest kept), oldest first, at most
    /// [`EVENT_PAGE`]: [`EventsResponse::Page`].
    Since {
        /// The last sequence number the reader has seen.
        after: u32,
    },
}

/// The board's answer to a [`EventsRequest`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum EventsResponse {
    /// Answer to [`EventsRequest::Since`].
    Page(EventPage),
}

/// A page of events.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventPage {
    /// A number the board draws at boot: a different one means the board restarted and its
    /// sequence numbers started again.
    pub boot: u32,
    /// The events, oldest first, each numbered one above the last.
    pub events: heapless::Vec<Event, EVENT_PAGE>,
    /// The sequence number the next event will get (the newest is `next - 1`).
    pub next: u32,
    /// Events above `after` the ring no longer holds: lost to this reader.
    pub dropped: u32,
}

/// One event with its number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Sequence number, from 1 at boot.
    pub seq: u32,
    /// What happened.
    pub what: EventKind,
}

/// What happened on the board.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    /// The board started, in this mode.
    Boot {
        /// The mode it runs in until the next restart.
        mode: Mode,
    },
    /// The store was loaded (at boot, or after a re-provisioning): healthy or refusing.
    Store(StoreHealth),
    /// A request was refused, and why. `key` is the key the request named, if any.
    Refused {
        /// The key the request named.
        key: Option<PublicKeyHash>,
        /// Why.
        reason: Refusal,
    },
    /// Flash pages erased while answering a request or in idle time.
    Erased {
        /// How many.
        pages: u32,
    },
    /// The board waited for its button to confirm a `kind` request with `key`.
    ConfirmWait {
        /// The key.
        key: PublicKeyHash,
        /// The request kind.
        kind: RequestKind,
        /// Whether the press came.
        confirmed: bool,
    },
}

impl EventsRequest {
    /// Whether the request may be written again after its answer was lost (the bridge's
    /// reconnect rule): reads yes, anything that changes the board no.
    pub fn reasking_is_safe(&self) -> bool {
        match self {
            EventsRequest::Since { .. } => true,
        }
    }
}
