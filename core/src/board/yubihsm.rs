//! YubiHSM2 keys (DESIGN §2, second tier): the key lives in the HSM, the board holds the HSM
//! authentication key and runs the SCP03 session itself ([`crate::yubihsm`]); the host only
//! relays sealed messages.
//!
//! ```text
//!  host                                  board
//!  YubiHsmSetup{auth id, K-ENC‖K-MAC} ─► provisioning only; kept for keys registered next
//!  RegisterHsmKey{key id, pk, policy} ─► provisioning only; tz1/tz2/tz3; record sealed with
//!                                        the authentication key as its secret
//!  Sign{pkh, payload}                 ─► parse → policy → watermark → confirm → mark DURABLE
//!                                        → mark raised in RAM to the request's hash
//!                                   ◄─── RelayToHsm(Create Session)         (no open session)
//!  HsmReply(card challenge, cryptogram)► cryptogram checked, session keys derived
//!                                   ◄─── RelayToHsm(Authenticate Session)
//!  HsmReply(84 0000)                  ─► session open
//!                                   ◄─── RelayToHsm(Session Message: sign digest)
//!  HsmReply(Session Message)          ─► R-MAC, decrypt, DER → r‖s, tz2 low-S, verified
//!                                        under the registered key; recorded
//!                                   ◄─── Signature
//! ```
//!
//! Rules (the host-held rules of [`super::host_held`] carry over: one pending operation, the
//! durable mark raised to the request's hash before the first HSM byte, identical retries):
//!
//! * **No HSM byte before the mark is durable.** Every refusal of policy or watermark happens
//!   before the first `RelayToHsm`; so do store failures.
//! * **Every relayed reply is hostile until it verifies.** A reply that fails the secure
//!   channel (MAC, session, order, layout) or whose signature does not verify is refused
//!   ([`Refusal::Hsm`] / [`KeyError::BadSignature`]); the pending operation ends, the session
//!   is dropped (except after an authenticated HSM refusal, which leaves it sound) and nothing
//!   is released. The mark stays at the durable, approved position: the identical request may
//!   be retried (it opens a fresh session), anything else at or below it is refused.
//! * **Expiry and resets.** The HSM forgets idle sessions (30 s) and all sessions on reset; its
//!   unauthenticated error reply to the sign command makes the board open a fresh session
//!   once, within the same operation. A second failure is refused. Re-signing the same digest
//!   is safe: the first signature, if any, went back encrypted under the old session's keys.
//! * **One session at a time**, with the authentication key of the key being used; used up
//!   after [`crate::yubihsm::scp03::MAX_MESSAGES`] messages, then reopened.

use super::{Board, Entropy, Material, Presence};
use crate::keys::{Curve, KeyError, PublicKey, PublicKeyHash, Signature, secp256k1_normalize};
use crate::protocol::{MAX_SEALED, Refusal, Response};
use crate::store::Store;
use crate::watermark::MarkId;
use crate::yubihsm::command::{self, Command};
use crate::yubihsm::scp03::{Handshake, Opening, Session};
use crate::yubihsm::{AuthKey, HsmError};

/// The board's YubiHSM2 state: the credential for keys registered next, the open session and
/// the one pending operation.
#[derive(Default)]
pub(super) struct Hsm {
    /// Set by `YubiHsmSetup`; after a restart, the credential of the last stored HSM key.
    pub(super) credential: Option<AuthKey>,
    session: Option<Session>,
    /// The authentication key id the session was opened with.
    session_auth: Option<AuthKey>,
    pending: Option<Operation>,
}

impl Hsm {
    /// Forget the session and any pending operation (store reload).
    pub(super) fn reset(&mut self) {
        self.session = None;
        self.session_auth = None;
        self.pending = None;
    }
}

/// One signature in progress.
struct Operation {
    key: PublicKeyHash,
    digest: [u8; 32],
    mark: Option<(MarkId, u32, u32)>,
    step: Step,
    /// Whether this operation already reopened the session once.
    reopened: bool,
}

enum Step {
    Create(Handshake),
    Authenticate(Opening),
    Sign,
}

/// A YubiHSM2 key's material: tz1/tz2/tz3, a valid point.
pub(super) fn material(
    public: PublicKey,
    key_id: u16,
    auth: AuthKey,
) -> Result<Material, KeyError> {
    if public.curve() == Curve::Bls12_381 {
        return Err(KeyError::NotHostHeldCurve {
            curve: public.curve(),
        });
    }
    public.validate()?;
    Ok(Material::YubiHsm {
        pkh: public.hash(),
        public,
        key_id,
        auth,
    })
}

/// The HSM's signature over `digest`, brought to the form Octez accepts (tz2 low-S) and
/// verified under `public`.
fn verify(public: &PublicKey, digest: &[u8; 32], raw: &[u8; 64]) -> Result<Signature, KeyError> {
    let signature = match public {
        PublicKey::Secp256k1(_) => Signature::Secp256k1(secp256k1_normalize(raw)?),
        PublicKey::P256(_) => Signature::P256(*raw),
        PublicKey::Ed25519(pk) => {
            use ed25519_dalek::Verifier;
            let vk = ed25519_dalek::VerifyingKey::from_bytes(pk)
                .map_err(|_| KeyError::InvalidPublicKey)?;
            vk.verify(digest, &ed25519_dalek::Signature::from_bytes(raw))
                .map_err(|_| KeyError::BadSignature)?;
            return Ok(Signature::Ed25519(*raw));
        }
        PublicKey::Bls(_) => return Err(KeyError::CurveMismatch),
    };
    public.verify_digest(digest, &signature)?;
    Ok(signature)
}

fn relay(message: &[u8]) -> Result<Response, Refusal> {
    let sealed = heapless::Vec::<u8, MAX_SEALED>::from_slice(message)
        .map_err(|_| Refusal::Hsm(HsmError::TooLong))?;
    Ok(Response::RelayToHsm { sealed })
}

impl<S: Store, E: Entropy, P: Presence> Board<S, E, P> {
    /// `YubiHsmSetup`: keep the authentication key for the keys registered next.
    pub(super) fn hsm_setup(&mut self, auth: AuthKey) -> Result<Response, Refusal> {
        self.provisioning()?;
        self.hsm.credential = Some(auth);
        Ok(Response::Done)
    }

    /// `RegisterHsmKey`: a key inside the HSM, reached with the set-up authentication key.
    pub(super) fn hsm_register(
        &mut self,
        key_id: u16,
        public: PublicKey,
        policy: crate::policy::Policy,
    ) -> Result<Response, Refusal> {
        self.provisioning()?;
        let auth = self
            .hsm
            .credential
            .clone()
            .ok_or(Refusal::Hsm(HsmError::NotSetUp))?;
        let material = material(public, key_id, auth)?;
        self.add_key(material, policy)
    }

    /// Step 7 for a YubiHSM2 key, once the mark (if any) is durable: raise the mark in RAM to
    /// this request and start the HSM exchange.
    pub(super) fn hsm_sign(
        &mut self,
        pkh: &PublicKeyHash,
        digest: [u8; 32],
        mark: Option<(MarkId, u32, u32)>,
    ) -> Result<Response, Refusal> {
        if let Some((id, level, round)) = &mark {
            self.marks.approve(id, *level, *round, digest)?;
        }
        self.hsm_start(pkh, digest, mark, false)
    }

    /// Begin (or restart) the operation: a sign command in the open session, or a new
    /// session first.
    pub(super) fn hsm_start(
        &mut self,
        pkh: &PublicKeyHash,
        digest: [u8; 32],
        mark: Option<(MarkId, u32, u32)>,
        reopened: bool,
    ) -> Result<Response, Refusal> {
        // A replaced operation may have left a command outstanding: that session is spent.
        if self
            .hsm
            .pending
            .take()
            .is_some_and(|op| matches!(op.step, Step::Sign))
            || reopened
        {
            self.hsm.session = None;
        }
        let (auth, _, _) = self.hsm_key(pkh)?;
        if self.hsm.session_auth.as_ref() != Some(&auth)
            || self
                .hsm
                .session
                .as_ref()
                .is_some_and(|s| s.counter() >= crate::yubihsm::scp03::MAX_MESSAGES)
        {
            self.hsm.session = None;
        }
        let mut op = Operation {
            key: *pkh,
            digest,
            mark,
            step: Step::Sign,
            reopened,
        };
        let mut buf = [0u8; 128];
        let n = if self.hsm.session.is_some() {
            self.hsm_seal_sign(&op, &mut buf)?
        } else {
            let mut challenge = [0u8; 8];
            self.entropy.fill(&mut challenge)?;
            let (handshake, n) =
                Handshake::start(&auth, challenge, &mut buf).map_err(Refusal::Hsm)?;
            op.step = Step::Create(handshake);
            self.hsm.session_auth = Some(auth);
            n
        };
        self.hsm.pending = Some(op);
        relay(&buf[..n])
    }

    /// The authentication key, curve and key id of YubiHSM2 key `pkh`.
    fn hsm_key(&self, pkh: &PublicKeyHash) -> Result<(AuthKey, Curve, u16), Refusal> {
        match &self.slot(pkh)?.material {
            Material::YubiHsm {
                auth,
                key_id,
                public,
                ..
            } => Ok((auth.clone(), public.curve(), *key_id)),
            _ => Err(Refusal::NoPendingSign),
        }
    }

    fn hsm_seal_sign(&mut self, op: &Operation, buf: &mut [u8]) -> Result<usize, Refusal> {
        let (_, curve, key_id) = self.hsm_key(&op.key)?;
        let cmd = Command::sign(curve, key_id, &op.digest).map_err(Refusal::Hsm)?;
        let session = self
            .hsm
            .session
            .as_mut()
            .ok_or(Refusal::Hsm(HsmError::NotSetUp))?;
        session
            .seal(cmd.code, cmd.data(), buf)
            .map_err(Refusal::Hsm)
    }

    /// `HsmReply`: the HSM's answer to the last `RelayToHsm`.
    pub(super) fn hsm_reply(&mut self, reply: &[u8]) -> Result<Response, Refusal> {
        self.healthy()?;
        let mut op = self.hsm.pending.take().ok_or(Refusal::NoPendingSign)?;
        let result = self.hsm_step(&mut op, reply);
        match result {
            Ok(Some(response)) => {
                self.hsm.pending = Some(op);
                Ok(response)
            }
            Ok(None) => self.hsm_finish(&op, reply),
            Err(e) => {
                self.hsm.session = None;
                Err(e)
            }
        }
    }

    /// Advance the handshake; `Ok(None)` when the reply is the sign command's.
    fn hsm_step(&mut self, op: &mut Operation, reply: &[u8]) -> Result<Option<Response>, Refusal> {
        let mut buf = [0u8; 128];
        match core::mem::replace(&mut op.step, Step::Sign) {
            Step::Create(handshake) => {
                let auth = self.hsm_key(&op.key)?.0;
                let (opening, n) = handshake
                    .answer(&auth, reply, &mut buf)
                    .map_err(Refusal::Hsm)?;
                op.step = Step::Authenticate(opening);
                relay(&buf[..n]).map(Some)
            }
            Step::Authenticate(opening) => {
                self.hsm.session = Some(opening.confirm(reply).map_err(Refusal::Hsm)?);
                let n = self.hsm_seal_sign(op, &mut buf)?;
                relay(&buf[..n]).map(Some)
            }
            Step::Sign => Ok(None),
        }
    }

    /// Open the sign reply, verify and release.
    fn hsm_finish(&mut self, op: &Operation, reply: &[u8]) -> Result<Response, Refusal> {
        let (_, curve, _) = self.hsm_key(&op.key)?;
        let public = *self.slot(&op.key)?.material.public_key();
        let code = Command::sign(curve, 0, &op.digest)
            .map_err(Refusal::Hsm)?
            .code;
        let mut out = [0u8; 256];
        let session = self
            .hsm
            .session
            .as_mut()
            .ok_or(Refusal::Hsm(HsmError::NotSetUp))?;
        let raw = match session.open(code, reply, &mut out) {
            Ok(data) => command::signature(curve, data),
            // Authenticated refusal: the session is sound.
            Err(e @ HsmError::Refused { .. }) => return Err(Refusal::Hsm(e)),
            // Expired or reset: one fresh session for this operation.
            Err(HsmError::Device { .. }) if !op.reopened => {
                return self.hsm_start(&op.key, op.digest, op.mark, true);
            }
            Err(e) => {
                self.hsm.session = None;
                return Err(Refusal::Hsm(e));
            }
        };
        let raw = raw.map_err(Refusal::Hsm)?;
        let signature = verify(&public, &op.digest, &raw)?;
        if let Some((id, level, round)) = &op.mark {
            self.marks
                .complete(id, *level, *round, &op.digest, signature)?;
        }
        Ok(Response::Signature(signature))
    }
}
