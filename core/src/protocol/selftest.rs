//! `pawl device selftest`: what the board measures about itself (its own timer, its flash, its entropy, its button) and reports.
//!
//! One request family of the device protocol: its own request and response types, carried by
//! [`super::Request::SelfTest`] and [`super::Response::SelfTest`]. Variants are only ever appended.

use serde::{Deserialize, Serialize};

/// A request of this family.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum SelfTestRequest {}

/// The board's answer to a [`SelfTestRequest`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum SelfTestResponse {}

impl SelfTestRequest {
    /// Whether the request may be written again after its answer was lost (the bridge's
    /// reconnect rule): reads yes, anything that changes the board no.
    pub fn reasking_is_safe(&self) -> bool {
        match *self {}
    }
}
