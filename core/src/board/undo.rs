//! Undoing marks without erasing keys: forget the marks of chains a key no longer allows, and
//! lower a mark that was pushed too far.
//!
//! The host may raise a mark (`ImportWatermark`) but never lower one: that is what stops a
//! double signature. Two findings of issue 13 show why an operator still needs a way back:
//! a compromised host fills a key's share of the table with invented chains
//! ([`super::room`]), or burns a key with one request at level 2³¹−1, after which every real
//! request is below the mark. Before this module only an erase, which destroys on-board keys,
//! undid either.
//!
//! Rules, for both `ForgetWatermarks` and `LowerWatermark`:
//!
//! * **Provisioning mode only** ([`Refusal::ProvisioningOnly`]): a physical act at power-up.
//! * **A press of the board's button** ([`Presence::confirm`], as for confirm-on-device;
//!   [`Refusal::NotConfirmed`] otherwise, nothing written). The host alone can never lower or
//!   drop a mark, even in provisioning mode. Forgetting needs the press too: a host could
//!   otherwise pin a key away from a chain, forget its marks and allow the chain again — a
//!   lowering by another name.
//! * **Checked first, then durable, then in RAM**: a refusal changes nothing; the store writes
//!   each undo as one record — a forget of several marks too — so a power cut leaves the
//!   marks either as they were or undone, all of them (`crate::store::resets`). Pending work
//!   is forgotten, as by every state change.
//!
//! `ForgetWatermarks { pkh }` drops every mark of `pkh` on a chain its policy refuses — only
//! those: a chain the key may still sign on keeps its mark; a CometBFT mark is kept while the
//! key is pinned to its chain (the Tezos policy does not name CometBFT chains). A key the
//! board no longer holds (`RemoveKey`) allows no chain, so all its marks go. Pin the key with
//! `SetPolicy` (or `SetChain`) first. All or none: the store forgets them with one record ([`Store::forget_marks`]), and
//! only then does the board drop them from RAM; a store refusal leaves every one in place.
//!
//! `LowerWatermark { chain, pkh, kind, level, round }` sets one existing mark to exactly that
//! bare position, strictly below where it is. The operator vouches that the key never signed
//! above it — the board cannot know; the button is that promise.

use super::{Board, Entropy, Presence};
use crate::keys::PublicKeyHash;
use crate::protocol::{Refusal, Response};
use crate::request::{ChainId, RequestKind};
use crate::store::Store;
use crate::watermark::{MarkId, MarkKind};

/// The request kind a mark kind is confirmed as (what the board's button shows).
const fn request_kind(kind: MarkKind) -> RequestKind {
    match kind {
        MarkKind::Block => RequestKind::Block,
        MarkKind::Preattestation => RequestKind::Preattestation,
        MarkKind::Attestation => RequestKind::Attestation,
        // A CometBFT vote or proposal: the button shows it as a generic request.
        MarkKind::CometBft => RequestKind::Generic,
    }
}

impl<S: Store, E: Entropy, P: Presence> Board<S, E, P> {
    /// `ForgetWatermarks` (provisioning, button): forget `pkh`'s marks on chains its policy
    /// refuses.
    pub(super) fn forget_watermarks(&mut self, pkh: &PublicKeyHash) -> Result<Response, Refusal> {
        self.provisioning()?;
        self.healthy()?;
        // A key the board no longer holds (removed) allows no chain: all its marks may go.
        let policy = match self.index(pkh) {
            Ok(index) => Some(&self.keys[index].policy),
            Err(_) if self.marks.iter().any(|(id, _)| id.key == *pkh) => None,
            Err(unknown) => return Err(unknown),
        };
        let allows = |chain: &ChainId| {
            policy.is_some_and(|p| p.chains.is_empty() || p.chains.contains(chain))
        };
        // A CometBFT mark is allowed by the chain the key is pinned to, not by its policy.
        let comet = self
            .index(pkh)
            .ok()
            .and_then(|i| self.keys[i].cometbft_chain.as_ref())
            .map(|c| super::cometbft::mark_id(c.as_bytes(), pkh));
        let keeps = |id: &MarkId| match id.kind {
            MarkKind::CometBft => comet.as_ref() == Some(id),
            _ => allows(&id.chain),
        };
        let mut doomed: heapless::Vec<MarkId, { super::MAX_MARKS }> = heapless::Vec::new();
        for (id, _) in self.marks.iter() {
            if id.key == *pkh && !keeps(id) {
                // Cannot overflow: at most the table's size.
                let _ = doomed.push(*id);
            }
        }
        let Some(first) = doomed.first() else {
            return Ok(Response::Done);
        };
        if !self.confirm(pkh, request_kind(first.kind)) {
            return Err(Refusal::NotConfirmed);
        }
        self.store.forget_marks(&doomed)?;
        for id in &doomed {
            self.marks.forget(id);
        }
        self.forget_pending();
        Ok(Response::Done)
    }

    /// `LowerWatermark` (provisioning, button): set one mark to exactly (`level`, `round`),
    /// below where it is.
    pub(super) fn lower_watermark(
        &mut self,
        id: &MarkId,
        level: u32,
        round: u32,
    ) -> Result<Response, Refusal> {
        self.provisioning()?;
        self.healthy()?;
        self.index(&id.key)?;
        let chain: ChainId = id.chain;
        let mark = self.marks.get(id).ok_or(Refusal::NoSuchMark {
            kind: id.kind,
            chain,
        })?;
        if (level, round) >= (mark.level, mark.round) {
            return Err(Refusal::NotBelowMark {
                kind: id.kind,
                mark_level: mark.level,
                mark_round: mark.round,
            });
        }
        if !self.confirm(&id.key, request_kind(id.kind)) {
            return Err(Refusal::NotConfirmed);
        }
        self.store.lower_mark(id, level, round)?;
        // Checked above: a mark exists and the position is below it.
        let _ = self.marks.lower(id, level, round);
        self.forget_pending();
        Ok(Response::Done)
    }
}
