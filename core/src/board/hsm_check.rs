//! The board's side of the [`HsmCheckRequest`] family.

use super::{Board, Presence};
use crate::keys::Entropy;
use crate::protocol::{Refusal, Response, hsm_check::HsmCheckRequest};
use crate::store::Store;

impl<S: Store, E: Entropy, P: Presence> Board<S, E, P> {
    /// Answer one request of the family.
    pub(super) fn hsm_check(&mut self, request: HsmCheckRequest) -> Result<Response, Refusal> {
        match request {}
    }
}
