//! The board's side of the [`CometRequest`] family.

use super::{Board, Presence};
use crate::keys::Entropy;
use crate::protocol::{Refusal, Response, cometbft::CometRequest};
use crate::store::Store;

/// CometBFT signing state held in RAM.
#[derive(Default)]
pub(super) struct CometState {}

impl<S: Store, E: Entropy, P: Presence> Board<S, E, P> {
    /// Answer one request of the family.
    pub(super) fn cometbft(&mut self, request: CometRequest) -> Result<Response, Refusal> {
        match request {}
    }
}
