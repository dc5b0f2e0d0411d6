//! The board's side of the [`SelfTestRequest`] family.

use super::{Board, Presence};
use crate::keys::Entropy;
use crate::protocol::{Refusal, Response, selftest::SelfTestRequest};
use crate::store::Store;

/// What the board's glue lends the self-test (timer, flash scratch, board-key state).
#[derive(Default)]
pub(super) struct Bench {}

impl<S: Store, E: Entropy, P: Presence> Board<S, E, P> {
    /// Answer one request of the family.
    pub(super) fn selftest(&mut self, request: SelfTestRequest) -> Result<Response, Refusal> {
        match request {}
    }
}
