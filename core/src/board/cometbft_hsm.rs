//! CometBFT votes and proposals signed by an Ed25519 key inside a YubiHSM2, through the
//! board's own SCP03 session ([`super::yubihsm`]).
//!
//! The family's rules ([`super::cometbft`]) run unchanged up to step 5; for an HSM key step 5
//! becomes:
//!
//! ```text
//!  SignVote/SignProposal ─► checks 1–4 → mark DURABLE → approved in RAM (hash of the sign
//!                           bytes without their timestamp, no signature)
//!                       ◄── RelayToHsm (… Session Message: Sign EdDSA over the whole sign bytes)
//!  HsmReply             ─► R-MAC, decrypt, 64 bytes, verified (strict Ed25519) over the sign
//!                           bytes under the registered public key → recorded in the watermark
//!                           table and the family's retry record
//!                       ◄── CometBft(Vote | Proposal)
//! ```
//!
//! * Nothing goes to the HSM before every check passed and the mark is durable; a refusal
//!   sends zero HSM bytes.
//! * A reply that fails the secure channel or whose signature does not verify releases
//!   nothing and records nothing; the approval stays (as for Tezos): the request with the very
//!   same sign bytes, timestamp included, is sent to the HSM again; anything else at that
//!   position is refused (a timestamp-only retry with [`CometError::NoRecord`], since no
//!   signature is known to hand back).
//! * State changes forget the pending work ([`super::pending`]), not the approval.
//! * Vote extensions are refused for HSM keys ([`CometError::HsmExtension`]) before anything
//!   happens: one relayed sign per request.

use super::cometbft::Signed;
use super::yubihsm::{Work, verify_message};
use super::{Board, Entropy, Presence};
use crate::keys::PublicKeyHash;
use crate::protocol::cometbft::{CometError, CometResponse, MAX_COMET_SIGN_BYTES, SignBytesError};
use crate::protocol::{Refusal, Response};
use crate::store::Store;
use crate::yubihsm::command;

/// The HSM work of one CometBFT signature: the key, the whole sign bytes, and what to record
/// once the HSM's signature verifies.
#[derive(Clone)]
pub(super) struct CometSign {
    pub(super) key: PublicKeyHash,
    pub(super) sign_bytes: heapless::Vec<u8, MAX_COMET_SIGN_BYTES>,
    /// A vote (else a proposal): the answer's shape.
    pub(super) vote: bool,
    pub(super) signed: Signed,
}

impl<S: Store, E: Entropy, P: Presence> Board<S, E, P> {
    /// Whether `signed` is exactly the approval the HSM has not answered with a verified
    /// signature (same sign bytes, timestamp included): then it may be sent again.
    pub(super) fn comet_hsm_may_resend(&self, signed: &Signed) -> bool {
        self.comet.approved.as_ref() == Some(signed)
            && self.marks.is_approved(
                &signed.id,
                signed.level,
                signed.round,
                &signed.without_timestamp,
            )
    }

    /// Step 5 for an HSM key, the mark durable: approve it in RAM (`fresh`; else it is the
    /// approval [`Self::comet_hsm_may_resend`] found) and start the exchange. Not inlined: its
    /// buffers stay off the stack of on-board signatures.
    #[inline(never)]
    pub(super) fn comet_hsm_sign(
        &mut self,
        key: &PublicKeyHash,
        sign_bytes: &[u8],
        vote: bool,
        signed: Signed,
        fresh: bool,
    ) -> Result<Response, Refusal> {
        let sign_bytes = heapless::Vec::from_slice(sign_bytes)
            .map_err(|_| CometError::Parse(SignBytesError::TooLong))?;
        if fresh {
            self.marks.approve(
                &signed.id,
                signed.level,
                signed.round,
                signed.without_timestamp,
            )?;
            self.comet.approved = Some(signed);
        }
        self.comet_hsm_relay(CometSign {
            key: *key,
            sign_bytes,
            vote,
            signed,
        })
    }

    fn comet_hsm_relay(&mut self, sign: CometSign) -> Result<Response, Refusal> {
        self.hsm_begin(Work::Comet(sign), false)
    }

    /// The HSM's answer to the sign command: verified over the sign bytes before anything is
    /// recorded or released.
    #[inline(never)]
    pub(super) fn comet_hsm_answer(
        &mut self,
        sign: CometSign,
        data: &[u8],
    ) -> Result<Response, Refusal> {
        let raw = command::signature(crate::keys::Curve::Ed25519, data).map_err(Refusal::Hsm)?;
        let public = *self.slot(&sign.key)?.material.public_key();
        let signature = verify_message(&public, &sign.sign_bytes, &raw)?;
        let s = sign.signed;
        // Refused unless the mark is still exactly this approval.
        self.marks
            .complete(&s.id, s.level, s.round, &s.without_timestamp, signature)?;
        self.comet.remember(s);
        self.comet.approved = None;
        self.counters.signatures = self.counters.signatures.saturating_add(1);
        Ok(Response::CometBft(if sign.vote {
            CometResponse::Vote {
                signature,
                timestamp: None,
                extension_signature: None,
            }
        } else {
            CometResponse::Proposal {
                signature,
                timestamp: None,
            }
        }))
    }
}
