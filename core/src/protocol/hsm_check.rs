//! `pawl device selftest --yubihsm`: the board's checks of its YubiHSM2 (session, each key's public key, a throw-away key).
//!
//! One request family of the device protocol: its own request and response types, carried by
//! [`super::Request::HsmCheck`] and [`super::Response::HsmCheck`]. Variants are only ever appended.

use serde::{Deserialize, Serialize};

/// A request of this family.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum HsmCheckRequest {}

/// The board's answer to a [`HsmCheckRequest`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum HsmCheckResponse {}

impl HsmCheckRequest {
    /// Whether the request may be written again after its answer was lost (the bridge's
    /// reconnect rule): reads yes, anything that changes the board no.
    pub fn reasking_is_safe(&self) -> bool {
        match *self {}
    }
}
