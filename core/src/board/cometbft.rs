//! The board's side of the [`CometRequest`] family: CometBFT votes and proposals signed by
//! Cosmos keys, with CometBFT's height/round/step rule (FilePV's) on a durable mark.
//!
//! Signing, in order — each step refuses without touching state:
//!
//! 1. the store is healthy, the key exists, is a Cosmos key ([`Role::Cosmos`]) on the board,
//!    not on standby, pinned to a chain; the sign bytes fit;
//! 2. read the sign bytes ([`crate::cometbft`]): the chain id must be the key's; the height
//!    must be in the key's window (its duty's `from_level`/`until_level`, as heights); a vote
//!    extension must belong to a precommit for a block at the vote's height, round and chain;
//! 3. the mark: one per (chain, key), [`MarkKind::CometBft`], the chain named by the first four
//!    bytes of BLAKE2b-256 of its chain id, level = height, round = `round × 4 + step` — so
//!    the watermark's (level, round) order is CometBFT's height, round, step order:
//!    * above the mark: sign;
//!    * below: refused ([`CometError::Regression`]);
//!    * at the mark, signed by this board since it started, same sign bytes without their
//!      timestamp: the recorded signature, with the recorded timestamp when the request's
//!      differs (FilePV's "only differ by timestamp") — nothing new is signed;
//!    * at the mark, anything else: refused ([`CometError::DoubleSign`], or
//!      [`CometError::NoRecord`] after a restart);
//! 4. the jump guard: a height more than the key's jump limit above the mark needs the
//!    button, as for Tezos;
//! 5. **make the mark durable** ([`Store::persist_mark`]: with ceiling reservation most
//!    signatures write nothing), sign, record in RAM, release. A YubiHSM2 key's signature is
//!    made by the HSM and verified on the board before it is recorded or released
//!    ([`super::cometbft_hsm`]).
//!
//! The extension (when asked) is signed after the vote was accepted, every time the vote is
//! answered: CometBFT's FilePV re-signs extensions too, and extensions are not slashable.
//!
//! What is kept in RAM for a retry: the watermark table's hash (of the sign bytes without
//! their timestamp) and signature, and here the timestamp signed at that position. After a
//! restart only the persisted ceiling is known, and everything up to it is refused: stricter
//! than FilePV, which keeps its last sign bytes on disk — a few missed heights after a power
//! cut, never a double sign (`docs/cometbft.md`).

use super::{Board, Material, Presence, jump};
use crate::cometbft::{self, Signable};
use crate::digest::blake2b_256;
use crate::keys::{Curve, Entropy, PublicKeyHash, Signature};
use crate::protocol::cometbft::{
    CometChainId, CometError, CometMark, CometRequest, CometResponse, MAX_CHAIN_ID,
    MAX_COMET_SIGN_BYTES, SignBytesError, Step, Timestamp,
};
use crate::protocol::{MAX_KEYS, MAX_SIGN_PAYLOAD, OffDuty, Refusal, Response, Role};
use crate::request::{ChainId, RequestKind};
use crate::store::Store;
use crate::watermark::{MarkId, MarkKind, Verdict, WatermarkError};

/// What this board signed at a mark's position since it started, beside the watermark
/// table's hash and signature: the timestamp.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct Signed {
    pub(super) id: MarkId,
    pub(super) level: u32,
    pub(super) round: u32,
    pub(super) without_timestamp: [u8; 32],
    pub(super) timestamp: Timestamp,
}

/// CometBFT signing state held in RAM: what each key signed last (one entry per key: a key
/// signs on one chain at a time; after it is pinned to another chain, a retry on the old one
/// is refused — never answered wrongly).
#[derive(Default)]
pub(super) struct CometState {
    signed: heapless::Vec<Signed, { MAX_KEYS }>,
    /// The last position approved for a YubiHSM2 key and not yet answered with a verified
    /// signature: the same sign bytes (timestamp included) may be sent to the HSM again
    /// ([`super::cometbft_hsm`]).
    pub(super) approved: Option<Signed>,
}

impl CometState {
    fn find(&self, id: &MarkId) -> Option<&Signed> {
        self.signed.iter().find(|s| s.id == *id)
    }

    pub(super) fn remember(&mut self, new: Signed) {
        self.signed.retain(|s| s.id.key != new.id.key);
        // Cannot overflow: one entry per key, and the board holds at most MAX_KEYS keys. Were
        // it to, the entry is simply not kept and a retry is refused (never a wrong answer).
        let _ = self.signed.push(new);
    }
}

/// The mark of CometBFT chain `chain_id` for `key`.
pub(super) fn mark_id(chain_id: &[u8], key: &PublicKeyHash) -> MarkId {
    let hash = blake2b_256(chain_id);
    MarkId {
        chain: ChainId([hash[0], hash[1], hash[2], hash[3]]),
        key: *key,
        kind: MarkKind::CometBft,
    }
}

/// The watermark round of (`round`, `step`): `round × 4 + step`. `round` is at most
/// [`cometbft::MAX_ROUND`] (the reader refuses more), so this cannot overflow.
fn packed(round: u32, step: Step) -> u32 {
    round
        .saturating_mul(4)
        .saturating_add(u32::from(step.number()))
}

fn unpacked(round: u32) -> (u32, Option<Step>) {
    // Truncation intended: the low two bits are the step.
    #[allow(clippy::cast_possible_truncation)]
    let step = Step::from_number((round & 3) as u8);
    (round >> 2, step)
}

/// A chain id an operator may pin: 1 to 50 bytes of printable ASCII.
fn chain_id(text: &str) -> Result<CometChainId, CometError> {
    let printable = text.bytes().all(|b| (0x21..=0x7e).contains(&b));
    if text.is_empty() || text.len() > MAX_CHAIN_ID || !printable {
        return Err(CometError::BadChainId);
    }
    CometChainId::try_from(text).map_err(|_| CometError::BadChainId)
}

fn fits(bytes: &[u8], max: usize) -> Result<(), CometError> {
    if bytes.len() > max {
        Err(CometError::Parse(SignBytesError::TooLong))
    } else {
        Ok(())
    }
}

/// The answer to a vote or proposal, before the extension.
struct Answer {
    signature: Signature,
    timestamp: Option<Timestamp>,
}

/// Where a vote or proposal stands after steps 3 to 5: answered, or (YubiHSM2 key) to be
/// signed by the HSM at `signed`'s position, the mark durable ([`super::cometbft_hsm`]):
/// `fresh` for a new approval, else the same sign bytes again after an unanswered approval.
enum Signing {
    Answered(Answer),
    Hsm { signed: Signed, fresh: bool },
}

impl<S: Store, E: Entropy, P: Presence> Board<S, E, P> {
    /// Answer one request of the family.
    pub(super) fn cometbft(&mut self, request: CometRequest<'_>) -> Result<Response, Refusal> {
        match request {
            CometRequest::SetChain { pkh, chain_id } => self.comet_set_chain(&pkh, chain_id),
            CometRequest::SignVote {
                pkh,
                sign_bytes,
                extension,
            } => self.comet_vote(&pkh, sign_bytes, extension),
            CometRequest::SignProposal { pkh, sign_bytes } => {
                let proposal = self.comet_check(&pkh, sign_bytes, false)?;
                let answer = match self.comet_sign(&pkh, sign_bytes, &proposal)? {
                    Signing::Answered(answer) => answer,
                    Signing::Hsm { signed, fresh } => {
                        return self.comet_hsm_sign(&pkh, sign_bytes, false, signed, fresh);
                    }
                };
                Ok(Response::CometBft(CometResponse::Proposal {
                    signature: answer.signature,
                    timestamp: answer.timestamp,
                }))
            }
            CometRequest::State { pkh } => {
                let slot = self.slot(&pkh)?;
                let chain_id = (slot.duty.role == Role::Cosmos)
                    .then(|| slot.cometbft_chain.clone())
                    .flatten();
                let mark = chain_id.as_ref().and_then(|c| {
                    let m = self.marks.get(&mark_id(c.as_bytes(), &pkh))?;
                    let (round, step) = unpacked(m.round);
                    Some(CometMark {
                        height: m.level,
                        round,
                        step,
                        signed_here: m.signature.is_some(),
                    })
                });
                Ok(Response::CometBft(CometResponse::State { chain_id, mark }))
            }
        }
    }

    /// `SetChain` (provisioning): make an on-board Ed25519 key a Cosmos key of `text`.
    fn comet_set_chain(&mut self, pkh: &PublicKeyHash, text: &str) -> Result<Response, Refusal> {
        self.provisioning()?;
        self.healthy()?;
        let index = self.index(pkh)?;
        let chain = chain_id(text)?;
        let material = &self.keys[index].material;
        if material.curve() != Curve::Ed25519 {
            return Err(CometError::NotEd25519.into());
        }
        if !matches!(material, Material::OnBoard(_) | Material::YubiHsm { .. }) {
            return Err(CometError::Backend.into());
        }
        self.rewrite_slot(index, |s| {
            s.duty.role = Role::Cosmos;
            s.cometbft_chain = Some(chain);
        })?;
        Ok(Response::KeyInfo(self.keys[index].info()))
    }

    fn comet_vote(
        &mut self,
        pkh: &PublicKeyHash,
        sign_bytes: &[u8],
        extension: Option<&[u8]>,
    ) -> Result<Response, Refusal> {
        let vote = self.comet_check(pkh, sign_bytes, true)?;
        if let Some(bytes) = extension {
            // Bounded by the frame already; checked again so the rule does not depend on it.
            fits(bytes, MAX_SIGN_PAYLOAD)?;
            let ext = cometbft::extension(bytes)?;
            let belongs = vote.step == Step::Precommit
                && vote.for_block
                && (ext.height, ext.round, ext.chain_id)
                    == (vote.height, vote.round, vote.chain_id);
            if !belongs {
                return Err(CometError::ExtensionMismatch.into());
            }
            // One relayed sign per request: extensions are not signed through a YubiHSM2.
            if matches!(self.slot(pkh)?.material, Material::YubiHsm { .. }) {
                return Err(CometError::HsmExtension.into());
            }
        }
        let answer = match self.comet_sign(pkh, sign_bytes, &vote)? {
            Signing::Answered(answer) => answer,
            Signing::Hsm { signed, fresh } => {
                return self.comet_hsm_sign(pkh, sign_bytes, true, signed, fresh);
            }
        };
        let extension_signature = match extension {
            Some(bytes) => Some(self.comet_pair_sign(pkh, bytes)?),
            None => None,
        };
        Ok(Response::CometBft(CometResponse::Vote {
            signature: answer.signature,
            timestamp: answer.timestamp,
            extension_signature,
        }))
    }

    /// Steps 1 and 2: the key may sign this vote (`vote`) or proposal, read from its bytes.
    fn comet_check<'b>(
        &self,
        pkh: &PublicKeyHash,
        sign_bytes: &'b [u8],
        vote: bool,
    ) -> Result<Signable<'b>, Refusal> {
        self.healthy()?;
        let slot = self.slot(pkh)?;
        if slot.duty.role != Role::Cosmos {
            return Err(OffDuty::NotCosmos.into());
        }
        if !matches!(
            slot.material,
            Material::OnBoard(_) | Material::YubiHsm { .. }
        ) {
            return Err(CometError::Backend.into());
        }
        if slot.duty.standby {
            return Err(OffDuty::Standby.into());
        }
        let pinned = slot.cometbft_chain.as_ref().ok_or(CometError::NoChain)?;
        fits(sign_bytes, MAX_COMET_SIGN_BYTES)?;
        let signable = if vote {
            cometbft::vote(sign_bytes)?
        } else {
            cometbft::proposal(sign_bytes)?
        };
        if signable.chain_id != pinned.as_bytes() {
            return Err(CometError::WrongChain.into());
        }
        // The duty's window, in heights (a hand-off between two boards).
        if let Some(from) = slot.duty.from_level
            && signable.height < from
        {
            return Err(OffDuty::BeforeActivation {
                level: signable.height,
                from,
            }
            .into());
        }
        if let Some(until) = slot.duty.until_level
            && signable.height > until
        {
            return Err(OffDuty::AfterRetirement {
                level: signable.height,
                until,
            }
            .into());
        }
        Ok(signable)
    }

    /// Steps 3 to 5 for checked `signable`: the recorded answer, or a new signature made after
    /// the mark is durable.
    fn comet_sign(
        &mut self,
        pkh: &PublicKeyHash,
        sign_bytes: &[u8],
        signable: &Signable<'_>,
    ) -> Result<Signing, Refusal> {
        let id = mark_id(signable.chain_id, pkh);
        let level = signable.height;
        let round = packed(signable.round, signable.step);
        let digest = signable.without_timestamp;
        self.room_for(&id)?;
        if let Some(mark) = self.marks.get(&id)
            && (level, round) <= (mark.level, mark.round)
        {
            let (mark_round, _) = unpacked(mark.round);
            if (level, round) < (mark.level, mark.round) {
                return Err(CometError::Regression {
                    height: level,
                    round: signable.round,
                    step: signable.step,
                    mark_height: mark.level,
                    mark_round,
                }
                .into());
            }
            let here = Signed {
                id,
                level,
                round,
                without_timestamp: digest,
                timestamp: signable.timestamp,
            };
            if matches!(self.slot(pkh)?.material, Material::YubiHsm { .. })
                && self.comet_hsm_may_resend(&here)
            {
                return Ok(Signing::Hsm {
                    signed: here,
                    fresh: false,
                });
            }
            return self
                .comet_repeat(&id, level, round, signable)
                .map(Signing::Answered);
        }
        // Above the mark; a full table is refused here.
        self.marks.can_raise(&id, level, round)?;
        let slot = self.slot(pkh)?;
        if let Some(refusal) = jump::too_far(
            slot.jump_limit,
            self.marks.get(&id),
            MarkKind::CometBft,
            level,
        ) {
            self.store.may_persist(&id, level, round)?;
            if !self.presence.confirm(pkh, RequestKind::Generic) {
                return Err(refusal);
            }
        }
        // Durable before anything is signed, let alone released.
        self.store.persist_mark(&id, level, round)?;
        self.counters.mark_writes = self.counters.mark_writes.saturating_add(1);
        let signed = Signed {
            id,
            level,
            round,
            without_timestamp: digest,
            timestamp: signable.timestamp,
        };
        if matches!(self.slot(pkh)?.material, Material::YubiHsm { .. }) {
            // Approved in RAM, sealed and relayed; verified and recorded when the HSM answers.
            return Ok(Signing::Hsm {
                signed,
                fresh: true,
            });
        }
        let signature = self.comet_pair_sign(pkh, sign_bytes)?;
        self.marks.record(&id, level, round, digest, signature)?;
        self.comet.remember(signed);
        self.counters.signatures = self.counters.signatures.saturating_add(1);
        Ok(Signing::Answered(Answer {
            signature,
            timestamp: None,
        }))
    }

    /// At the mark's exact position: the recorded signature for the same sign bytes (with the
    /// recorded timestamp when only the timestamp differs), else a refusal.
    fn comet_repeat(
        &mut self,
        id: &MarkId,
        level: u32,
        round: u32,
        signable: &Signable<'_>,
    ) -> Result<Answer, Refusal> {
        let digest = signable.without_timestamp;
        let no_record = CometError::NoRecord {
            height: level,
            round: signable.round,
        };
        let recorded = match self.marks.check(id, level, round, &digest) {
            Ok(Verdict::Repeat(signature)) => signature,
            Err(WatermarkError::DifferentData { .. }) => {
                return Err(CometError::DoubleSign {
                    height: level,
                    round: signable.round,
                    step: signable.step,
                }
                .into());
            }
            _ => return Err(no_record.into()),
        };
        // The table holds the hash and signature; the timestamp signed with them is here.
        let signed = self
            .comet
            .find(id)
            .filter(|s| (s.level, s.round, s.without_timestamp) == (level, round, digest))
            .ok_or(no_record)?;
        let timestamp = (signed.timestamp != signable.timestamp).then_some(signed.timestamp);
        self.counters.signatures = self.counters.signatures.saturating_add(1);
        Ok(Answer {
            signature: recorded,
            timestamp,
        })
    }

    /// Plain Ed25519 with on-board key `pkh` (checked to be one by [`Self::comet_check`]).
    fn comet_pair_sign(&self, pkh: &PublicKeyHash, message: &[u8]) -> Result<Signature, Refusal> {
        match &self.slot(pkh)?.material {
            Material::OnBoard(pair) => Ok(pair.sign_plain_ed25519(message)?),
            _ => Err(CometError::Backend.into()),
        }
    }
}
