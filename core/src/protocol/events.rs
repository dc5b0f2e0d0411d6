//! Board logs: the events the board keeps in RAM (boot, mode, store health, refusals, erases, confirm waits) and hands the host when asked.
//!
//! One request family of the device protocol: its own request and response types, carried by
//! [`super::Request::Events`] and [`super::Response::Events`]. Variants are only ever appended.

use serde::{Deserialize, Serialize};

/// A request of this family.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum EventsRequest {}

/// The board's answer to a [`EventsRequest`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum EventsResponse {}

impl EventsRequest {
    /// Whether the request may be written again after its answer was lost (the bridge's
    /// reconnect rule): reads yes, anything that changes the board no.
    pub fn reasking_is_safe(&self) -> bool {
        match *self {}
    }
}
