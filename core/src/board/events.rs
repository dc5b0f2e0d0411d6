//! The board's side of the [`EventsRequest`] family: a bounded ring of recent events in RAM
//! ([`EventLog`]), filled by one-line hooks where things happen (boot, store load, refusals,
//! flash erases, button waits) and read by the host with `Since { after }`.
//!
//! Reading changes nothing but, once per boot, the draw of the boot tag; the board keeps no
//! reader cursor. No event carries a secret or payload bytes (see [`EventKind`]).

use super::{Board, Presence};
use crate::keys::{Entropy, PublicKeyHash};
use crate::protocol::events::{
    EVENT_PAGE, EVENT_RING, Event, EventKind, EventPage, EventsRequest, EventsResponse,
};
use crate::protocol::{Mode, Refusal, Request, Response};
use crate::request::RequestKind;
use crate::store::Store;

/// The board's recent events, kept in RAM for the host to read.
#[derive(Default)]
pub(super) struct EventLog {
    ring: heapless::Deque<Event, EVENT_RING>,
    /// The sequence number of the last event (0: none yet).
    last: u32,
    /// Drawn at the first read after boot.
    boot: Option<u32>,
}

impl EventLog {
    /// Keep `what` as the next event, overwriting the oldest when the ring is full.
    fn push(&mut self, what: EventKind) {
        self.last = self.last.saturating_add(1);
        if self.ring.is_full() {
            self.ring.pop_front();
        }
        // Cannot fail: room was made above.
        let _ = self.ring.push_back(Event {
            seq: self.last,
            what,
        });
    }

    /// Events numbered above `after`, at most a page, and how many the reader lost.
    fn page(&self, after: u32, boot: u32) -> EventPage {
        let next = self.last.saturating_add(1);
        let oldest = self.ring.front().map_or(next, |e| e.seq);
        let dropped = oldest.saturating_sub(after.saturating_add(1));
        let mut events = heapless::Vec::new();
        for event in self.ring.iter().filter(|e| e.seq > after).take(EVENT_PAGE) {
            // Cannot fail: at most EVENT_PAGE taken.
            let _ = events.push(*event);
        }
        EventPage {
            boot,
            events,
            next,
            dropped: if after >= next { 0 } else { dropped },
        }
    }
}

/// The key a request names, for its refusal event (public: a key hash).
pub(super) fn named_key(request: &Request<'_>) -> Option<PublicKeyHash> {
    match request {
        Request::PublicKey { pkh }
        | Request::Sign { pkh, .. }
        | Request::ProvePossession { pkh, .. }
        | Request::SetPolicy { pkh, .. }
        | Request::ImportWatermark { pkh, .. }
        | Request::HostSignature { pkh, .. }
        | Request::AllowPossession { pkh, .. }
        | Request::ForgetWatermarks { pkh }
        | Request::LowerWatermark { pkh, .. }
        | Request::SetJumpLimit { pkh, .. }
        | Request::SetDuty { pkh, .. }
        | Request::RemoveKey { pkh } => Some(*pkh),
        _ => None,
    }
}

/// What [`Board::note_before`] remembers about a request until its answer.
pub(super) struct Before {
    key: Option<PublicKeyHash>,
    erased: u32,
}

impl<S: Store, E: Entropy, P: Presence> Board<S, E, P> {
    /// Answer one request of the family.
    pub(super) fn events(&mut self, request: EventsRequest) -> Result<Response, Refusal> {
        match request {
            EventsRequest::Since { after } => {
                let boot = match self.events.boot {
                    Some(boot) => boot,
                    None => {
                        let mut tag = [0u8; 4];
                        self.entropy.fill(&mut tag)?;
                        let boot = u32::from_le_bytes(tag);
                        self.events.boot = Some(boot);
                        boot
                    }
                };
                Ok(Response::Events(EventsResponse::Page(
                    self.events.page(after, boot),
                )))
            }
        }
    }

    /// Hook: the board started in `mode`.
    pub(super) fn note_boot(&mut self, mode: Mode) {
        self.events.push(EventKind::Boot { mode });
    }

    /// Hook: the store was (re)loaded.
    pub(super) fn note_store(&mut self) {
        self.events.push(EventKind::Store(self.health));
    }

    /// Hook, before a request is answered.
    pub(super) fn note_before(&self, request: &Request<'_>) -> Before {
        Before {
            key: named_key(request),
            erased: self.store.wear().pages_erased,
        }
    }

    /// Hook, after a request was answered: its refusal and the pages it erased.
    pub(super) fn note_after(&mut self, before: Before, response: &Response) {
        self.note_erased(before.erased);
        if let Response::Refused(reason) = response {
            self.note_refused(before.key, *reason);
        }
    }

    /// Hook: a refusal (a frame that could not be read has no key).
    pub(super) fn note_refused(&mut self, key: Option<PublicKeyHash>, reason: Refusal) {
        self.events.push(EventKind::Refused { key, reason });
    }

    /// Pages the store has erased since boot, to diff around a step.
    pub(super) fn erased(&self) -> u32 {
        self.store.wear().pages_erased
    }

    /// Hook: pages erased since `before` was read.
    pub(super) fn note_erased(&mut self, before: u32) {
        let pages = self.erased().saturating_sub(before);
        if pages > 0 {
            self.events.push(EventKind::Erased { pages });
        }
    }

    /// Ask the button to confirm, and log the wait and its outcome.
    pub(super) fn confirm(&mut self, key: &PublicKeyHash, kind: RequestKind) -> bool {
        let confirmed = self.presence.confirm(key, kind);
        self.events.push(EventKind::ConfirmWait {
            key: *key,
            kind,
            confirmed,
        });
        confirmed
    }
}
