//! The board's side of the [`EventsRequest`] family.

use super::{Board, Presence};
use crate::keys::Entropy;
use crate::protocol::{Refusal, Response, events::EventsRequest};
use crate::store::Store;

/// The board's recent events, kept in RAM for the host to read.
#[derive(Default)]
pub(super) struct EventLog {}

impl<S: Store, E: Entropy, P: Presence> Board<S, E, P> {
    /// Answer one request of the family.
    pub(super) fn events(&mut self, request: EventsRequest) -> Result<Response, Refusal> {
        match request {}
    }
}
