//! CometBFT privval: the Cosmos request family (canonical votes and proposals, height/round/step marks).
//!
//! One request family of the device protocol: its own request and response types, carried by
//! [`super::Request::CometBft`] and [`super::Response::CometBft`]. Variants are only ever appended.

use serde::{Deserialize, Serialize};

/// A request of this family.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum CometRequest {}

/// The board's answer to a [`CometRequest`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum CometResponse {}

impl CometRequest {
    /// Whether the request may be written again after its answer was lost (the bridge's
    /// reconnect rule): reads yes, anything that changes the board no.
    pub fn reasking_is_safe(&self) -> bool {
        match *self {}
    }
}
