//! The jump guard: a consensus request far above the key's mark needs the board's button.
//!
//! Finding 2 of issue 13: one attestation at level 2³¹−1 is, by the watermark rule, simply
//! "above the mark", and once signed every real request on that chain is below it — the key
//! is burned until an operator lowers the mark ([`super::undo`]). A baker's levels advance
//! one by one; a jump of millions of levels is never a real request. So a request more than
//! J levels above the key's current mark for that (chain, kind) is signed only after a press
//! of the board's button (like confirm-on-device, asked once); without one it is refused
//! ([`Refusal::TooFarAhead`], naming the limit) and nothing changes. A key with no mark yet
//! for that (chain, kind) signs as before: there is nothing to jump from.
//!
//! J is per key ([`crate::protocol::Request::SetJumpLimit`], stored with the key); the default
//! is [`DEFAULT_JUMP_LIMIT`] = 1,000,000 levels: at 6 s per level about 69 days, at 4 s about
//! 46, so a baker back from weeks offline — or after a restart, whose mark is the ceiling a
//! few levels ahead — is never stopped, while 2³¹−1 is over 2,000 times further than that.
//!
//! What it does not stop: a host that climbs in steps of at most J (about 2,150 requests to
//! reach 2³¹−1). That is a slower burn of one key on one chain, not a double signature; the
//! operator's remedy is the same lowering. A smaller J on a key narrows it (J = 0 asks for
//! the button at every new level).

use super::{Board, Entropy, Presence};
use crate::keys::PublicKeyHash;
use crate::protocol::{Refusal, Response};
use crate::store::Store;
use crate::watermark::{Mark, MarkKind};

/// Levels above its mark a key signs without the button, unless set otherwise for the key.
pub const DEFAULT_JUMP_LIMIT: u32 = 1_000_000;

/// Whether a request at `level` for a mark now at `mark` jumps further than the key's
/// `limit` allows (`None`: the default): the refusal to give if the button is not pressed.
pub(super) fn too_far(
    limit: Option<u32>,
    mark: Option<&Mark>,
    kind: MarkKind,
    level: u32,
) -> Option<Refusal> {
    let mark = mark?;
    let limit = limit.unwrap_or(DEFAULT_JUMP_LIMIT);
    (level.saturating_sub(mark.level) > limit).then_some(Refusal::TooFarAhead {
        kind,
        level,
        mark_level: mark.level,
        limit,
    })
}

impl<S: Store, E: Entropy, P: Presence> Board<S, E, P> {
    /// `SetJumpLimit` (provisioning): the jump guard's limit for key `pkh` (`None`: the
    /// default), durably.
    pub(super) fn set_jump_limit(
        &mut self,
        pkh: &PublicKeyHash,
        levels: Option<u32>,
    ) -> Result<Response, Refusal> {
        self.provisioning()?;
        self.healthy()?;
        let index = self.index(pkh)?;
        self.rewrite_slot(index, |slot| slot.jump_limit = levels)?;
        Ok(Response::Done)
    }
}
