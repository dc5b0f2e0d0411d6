//! Signing, in the order the module documentation of [`super`] gives: key, payload size,
//! parse, policy, duty, watermark, confirmation, durable mark, then the key's tier signs (or
//! hands over to the host-held or YubiHSM2 flow).

use super::{Board, Material, Presence, jump};
use crate::digest::blake2b_256;
use crate::keys::{Curve, Entropy, PublicKeyHash, SigningVersion, TezosSigner};
use crate::protocol::{Backend, MAX_SIGN_PAYLOAD, Refusal, Response};
use crate::request;
use crate::store::Store;
use crate::watermark::{MarkId, MarkKind, Verdict};

impl<S: Store, E: Entropy, P: Presence> Board<S, E, P> {
    pub(super) fn sign(
        &mut self,
        pkh: &PublicKeyHash,
        version: SigningVersion,
        payload: &[u8],
    ) -> Result<Response, Refusal> {
        self.healthy()?;
        let index = self.index(pkh)?;
        if payload.len() > MAX_SIGN_PAYLOAD {
            return Err(Refusal::PayloadTooLarge {
                len: u32::try_from(payload.len()).unwrap_or(u32::MAX),
                max: u32::try_from(MAX_SIGN_PAYLOAD).unwrap_or(u32::MAX),
            });
        }
        let parsed = request::parse(payload)?;
        let slot = &self.keys[index];
        let is_bls = slot.material.curve() == Curve::Bls12_381;
        slot.policy.check(&parsed, is_bls)?;
        slot.duty
            .check(parsed.kind, parsed.consensus.as_ref().map(|c| c.level))?;
        // Checked here, not only in `try_sign`, so a bad version is refused before the
        // watermark moves.
        version.check()?;
        if is_bls {
            version.check_bls()?;
        }

        let mut jump = None;
        let mark = match (parsed.consensus, MarkKind::of(parsed.kind)) {
            (Some(c), Some(kind)) => {
                let id = MarkId {
                    chain: c.chain_id,
                    key: *pkh,
                    kind,
                };
                let hash = blake2b_256(payload);
                if self.marks.is_approved(&id, c.level, c.round, &hash) {
                    // HSM tiers only: the same digest, already approved and durable, again.
                    let mark = Some((id, c.level, c.round));
                    if slot.material.backend() == Backend::YubiHsm {
                        return self.hsm_start(pkh, hash, mark, false);
                    }
                    return Ok(self.reapprove(pkh, id, c.level, c.round, hash));
                }
                self.room_for(&id)?;
                if let Verdict::Repeat(signature) =
                    self.marks.check(&id, c.level, c.round, &hash)?
                {
                    return Ok(Response::Signature(signature));
                }
                jump = jump::too_far(slot.jump_limit, self.marks.get(&id), kind, c.level);
                Some((id, c.level, c.round, hash))
            }
            _ => None,
        };

        let press = slot.policy.needs_confirmation(parsed.kind) || jump.is_some();
        if press {
            if let Some((id, level, round, _)) = &mark {
                // A write the budget would refuse is refused before the operator is asked.
                self.store.may_persist(id, *level, *round)?;
            }
            if !self.confirm(pkh, parsed.kind) {
                return Err(jump.unwrap_or(Refusal::NotConfirmed));
            }
        }

        if let Some((id, level, round, _)) = &mark {
            // Durable before anything is signed, let alone released.
            self.store.persist_mark(id, *level, *round)?;
            self.counters.mark_writes = self.counters.mark_writes.saturating_add(1);
        }
        let pair = match &self.keys[index].material {
            Material::OnBoard(pair) => pair,
            Material::HostHeld { .. } => {
                let digest = blake2b_256(payload);
                return self.approve(pkh, digest, mark.map(|(id, l, r, _)| (id, l, r)));
            }
            Material::YubiHsm { .. } => {
                let digest = blake2b_256(payload);
                return self.hsm_sign(pkh, digest, mark.map(|(id, l, r, _)| (id, l, r)));
            }
        };
        let signature = pair.try_sign(payload, version)?;
        if let Some((id, level, round, hash)) = mark {
            self.marks.record(&id, level, round, hash, signature)?;
        }
        Ok(Response::Signature(signature))
    }
}
