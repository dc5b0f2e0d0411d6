//! YubiHSM2 keys (`docs/design.md` §3, second tier): the key lives in the HSM, the board holds
//! the HSM authentication key and runs the SCP03 session itself ([`crate::yubihsm`]); the host
//! only relays sealed messages.
//!
//! ```text
//!  host                                  board
//!  YubiHsmSetup{auth id, K-ENC‖K-MAC} ─► provisioning only; kept for keys registered next
//!  RegisterHsmKey{key id, pk, policy} ─► provisioning only; tz1/tz2/tz3; record sealed with
//!                                        the authentication key as its secret
//!  ImportHsmKey{key id, expect?, policy} provisioning only; session opened as below, then
//!                                   ◄─── RelayToHsm(Session Message: Get Public Key)
//!  HsmReply(Session Message)          ─► R-MAC, decrypt, point checked (and = expect), record
//!                                   ◄─── KeyInfo
//!  GenerateHsmKey{id, curve, label, domains, policy}: Generate Asymmetric Key (sign-only,
//!                                        not exportable), then as ImportHsmKey with the id
//!                                        the HSM answered and its curve required
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
//! * **State changes end it.** A policy set, a key added or registered (HSM set-up, import and
//!   generation included), a watermark imported or the store re-provisioned forgets the
//!   pending operation and drops the session ([`super::pending`]); the next `HsmReply` is
//!   refused.

use super::{Board, Entropy, Material, Presence};
use crate::keys::{Curve, KeyError, PublicKey, PublicKeyHash, Signature, secp256k1_normalize};
use crate::policy::Policy;
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
    /// Forget the session and any pending operation ([`Board::forget_pending`]).
    pub(super) fn reset(&mut self) {
        self.session = None;
        self.session_auth = None;
        self.pending = None;
    }
}

/// The one HSM exchange in progress: what it is for, where the handshake stands, and whether
/// it already reopened the session once.
struct Operation {
    work: Work,
    step: Step,
    reopened: bool,
}

/// What an HSM exchange is for.
// CometBFT's sign bytes (at most 512) are held in place: there is no heap on the board, and
// the one pending operation lives in the board's state (measured by `firmware/qemu/budget.sh`).
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
pub(super) enum Work {
    /// Sign `digest` with HSM key `key`; the mark, if any, is durable and approved in RAM.
    Sign {
        key: PublicKeyHash,
        digest: [u8; 32],
        mark: Option<(MarkId, u32, u32)>,
    },
    /// Provisioning: read key `key_id`'s public key through the session and register it.
    Import {
        key_id: u16,
        /// The public key the operator expects.
        expect: Option<PublicKey>,
        /// The curve the key must be of (a key just generated).
        curve: Option<Curve>,
        policy: Policy,
    },
    /// Provisioning: have the HSM generate a key, then import it.
    Generate {
        key_id: u16,
        curve: Curve,
        label: [u8; command::LABEL_LEN],
        domains: u16,
        policy: Policy,
    },
    /// `pawl device selftest --yubihsm` ([`super::hsm_check`]).
    Check(super::hsm_check::Check),
    /// CometBFT: sign the whole sign bytes with HSM Ed25519 key (the mark is durable and
    /// approved in RAM; [`super::cometbft_hsm`]).
    Comet(super::cometbft_hsm::CometSign),
}

impl Work {
    /// The inner command this work sends next.
    fn command(
        &self,
        curve_of: impl Fn(&PublicKeyHash) -> Result<(Curve, u16), Refusal>,
    ) -> Result<Command, Refusal> {
        match self {
            Work::Sign { key, digest, .. } => {
                let (curve, key_id) = curve_of(key)?;
                Command::sign(curve, key_id, digest).map_err(Refusal::Hsm)
            }
            Work::Import { key_id, .. } => Ok(Command::get_public_key(*key_id)),
            Work::Generate {
                key_id,
                curve,
                label,
                domains,
                ..
            } => Command::generate(*curve, *key_id, label, *domains).map_err(Refusal::Hsm),
            Work::Check(check) => check.command(),
            Work::Comet(sign) => {
                let (curve, key_id) = curve_of(&sign.key)?;
                if curve != Curve::Ed25519 {
                    return Err(Refusal::Hsm(HsmError::UnsupportedCurve));
                }
                Command::sign_message(key_id, &sign.sign_bytes).map_err(Refusal::Hsm)
            }
        }
    }
}

enum Step {
    Create(Handshake),
    Authenticate(Opening),
    /// The inner command with this code is out; its reply comes next.
    Command(u8),
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
pub(super) fn verify(
    public: &PublicKey,
    digest: &[u8; 32],
    raw: &[u8; 64],
) -> Result<Signature, KeyError> {
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

/// The longest message the board relays to the HSM: a Session Message carrying the longest
/// command (Sign EdDSA over CometBFT sign bytes); Create and Authenticate Session are shorter.
const MAX_RELAYED: usize = crate::yubihsm::scp03::sealed_len(command::MAX_DATA);

/// The HSM's Ed25519 signature over the whole `message` (CometBFT sign bytes), verified
/// strictly under `public` before anything is recorded or released.
pub(super) fn verify_message(
    public: &PublicKey,
    message: &[u8],
    raw: &[u8; 64],
) -> Result<Signature, KeyError> {
    let PublicKey::Ed25519(pk) = public else {
        return Err(KeyError::CurveMismatch);
    };
    let vk = ed25519_dalek::VerifyingKey::from_bytes(pk).map_err(|_| KeyError::InvalidPublicKey)?;
    vk.verify_strict(message, &ed25519_dalek::Signature::from_bytes(raw))
        .map_err(|_| KeyError::BadSignature)?;
    Ok(Signature::Ed25519(*raw))
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
        self.forget_pending();
        Ok(Response::Done)
    }

    /// The authentication key set up for registering keys.
    pub(super) fn hsm_credential(&self) -> Result<AuthKey, Refusal> {
        self.hsm
            .credential
            .clone()
            .ok_or(Refusal::Hsm(HsmError::NotSetUp))
    }

    /// `RegisterHsmKey`: a key inside the HSM, reached with the set-up authentication key.
    pub(super) fn hsm_register(
        &mut self,
        key_id: u16,
        public: PublicKey,
        policy: Policy,
    ) -> Result<Response, Refusal> {
        self.provisioning()?;
        let material = material(public, key_id, self.hsm_credential()?)?;
        self.add_key(material, policy)
    }

    /// `ImportHsmKey`: read the key's public key through the session, then register it.
    pub(super) fn hsm_import(
        &mut self,
        key_id: u16,
        expect: Option<PublicKey>,
        policy: Policy,
    ) -> Result<Response, Refusal> {
        self.provisioning()?;
        self.healthy()?;
        if let Some(public) = &expect {
            // Refused here, before any HSM byte, rather than after the read.
            material(*public, key_id, self.hsm_credential()?)?;
        }
        self.hsm_credential()?;
        let work = Work::Import {
            key_id,
            expect,
            curve: None,
            policy,
        };
        // A key addition: pending work ends here (and again when the key is added).
        self.forget_pending();
        self.hsm_begin(work, false)
    }

    /// `GenerateHsmKey`: have the HSM generate the key, read it back, register it.
    pub(super) fn hsm_generate(
        &mut self,
        key_id: u16,
        curve: Curve,
        label: &str,
        domains: u16,
        policy: Policy,
    ) -> Result<Response, Refusal> {
        self.provisioning()?;
        self.healthy()?;
        let mut padded = [0u8; command::LABEL_LEN];
        padded
            .get_mut(..label.len())
            .ok_or(Refusal::Hsm(HsmError::LabelTooLong))?
            .copy_from_slice(label.as_bytes());
        // Checks the curve before any HSM byte.
        Command::generate(curve, key_id, &padded, domains).map_err(Refusal::Hsm)?;
        self.hsm_credential()?;
        let work = Work::Generate {
            key_id,
            curve,
            label: padded,
            domains,
            policy,
        };
        // A key addition: pending work ends here (and again when the key is added).
        self.forget_pending();
        self.hsm_begin(work, false)
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

    /// Begin (or restart) a sign.
    pub(super) fn hsm_start(
        &mut self,
        pkh: &PublicKeyHash,
        digest: [u8; 32],
        mark: Option<(MarkId, u32, u32)>,
        reopened: bool,
    ) -> Result<Response, Refusal> {
        let work = Work::Sign {
            key: *pkh,
            digest,
            mark,
        };
        self.hsm_begin(work, reopened)
    }

    /// The authentication key `work` runs under: the signing key's, or the set-up one.
    fn hsm_auth(&self, work: &Work) -> Result<AuthKey, Refusal> {
        match work {
            Work::Sign { key, .. } => Ok(self.hsm_key(key)?.0),
            Work::Comet(sign) => Ok(self.hsm_key(&sign.key)?.0),
            Work::Import { .. } | Work::Generate { .. } => self.hsm_credential(),
            Work::Check(check) => match check.key() {
                Some(pkh) => Ok(self.hsm_key(pkh)?.0),
                None => self.hsm_credential(),
            },
        }
    }

    /// Begin (or restart) an operation: its command in the open session, or a new session
    /// first.
    pub(super) fn hsm_begin(&mut self, work: Work, reopened: bool) -> Result<Response, Refusal> {
        // A replaced operation may have left a command outstanding: that session is spent.
        if self
            .hsm
            .pending
            .take()
            .is_some_and(|op| matches!(op.step, Step::Command(_)))
            || reopened
        {
            self.hsm.session = None;
        }
        let auth = self.hsm_auth(&work)?;
        if self.hsm.session_auth.as_ref() != Some(&auth)
            || self
                .hsm
                .session
                .as_ref()
                .is_some_and(|s| s.counter() >= crate::yubihsm::scp03::MAX_MESSAGES)
        {
            self.hsm.session = None;
        }
        let mut buf = [0u8; MAX_RELAYED];
        let (step, n) = if self.hsm.session.is_some() {
            self.hsm_seal(&work, &mut buf)?
        } else {
            let mut challenge = [0u8; 8];
            self.entropy.fill(&mut challenge)?;
            let (handshake, n) =
                Handshake::start(&auth, challenge, &mut buf).map_err(Refusal::Hsm)?;
            self.hsm.session_auth = Some(auth);
            (Step::Create(handshake), n)
        };
        self.hsm.pending = Some(Operation {
            work,
            step,
            reopened,
        });
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

    /// Seal `work`'s command in the open session.
    fn hsm_seal(&mut self, work: &Work, buf: &mut [u8]) -> Result<(Step, usize), Refusal> {
        let cmd = work.command(|pkh| self.hsm_key(pkh).map(|(_, c, id)| (c, id)))?;
        let session = self
            .hsm
            .session
            .as_mut()
            .ok_or(Refusal::Hsm(HsmError::NotSetUp))?;
        let n = session
            .seal(cmd.code, cmd.data(), buf)
            .map_err(Refusal::Hsm)?;
        Ok((Step::Command(cmd.code), n))
    }

    /// The next command of an operation whose previous command was answered, in the open
    /// session.
    pub(super) fn hsm_continue(&mut self, work: Work, reopened: bool) -> Result<Response, Refusal> {
        let mut buf = [0u8; MAX_RELAYED];
        let (step, n) = self.hsm_seal(&work, &mut buf)?;
        self.hsm.pending = Some(Operation {
            work,
            step,
            reopened,
        });
        relay(&buf[..n])
    }

    /// `HsmReply`: the HSM's answer to the last `RelayToHsm`.
    pub(super) fn hsm_reply(&mut self, reply: &[u8]) -> Result<Response, Refusal> {
        self.healthy()?;
        let op = self.hsm.pending.take().ok_or(Refusal::NoPendingSign)?;
        let mut buf = [0u8; MAX_RELAYED];
        let handshake =
            match op.step {
                Step::Create(handshake) => self.hsm_auth(&op.work).and_then(|auth| {
                    let (opening, n) = handshake
                        .answer(&auth, reply, &mut buf)
                        .map_err(Refusal::Hsm)?;
                    Ok((Step::Authenticate(opening), n))
                }),
                Step::Authenticate(opening) => opening
                    .confirm(reply)
                    .map_err(Refusal::Hsm)
                    .and_then(|session| {
                        self.hsm.session = Some(session);
                        self.hsm_seal(&op.work, &mut buf)
                    }),
                // The command's reply: its own rules for the session.
                Step::Command(code) => return self.hsm_answer(op, code, reply),
            };
        match handshake {
            Ok((step, n)) => {
                self.hsm.pending = Some(Operation { step, ..op });
                relay(&buf[..n])
            }
            Err(e) => {
                // A failed handshake leaves no usable session.
                self.hsm.session = None;
                Err(e)
            }
        }
    }

    /// Open the command's reply and act on it.
    fn hsm_answer(&mut self, op: Operation, code: u8, reply: &[u8]) -> Result<Response, Refusal> {
        let mut out = [0u8; 256];
        let session = self
            .hsm
            .session
            .as_mut()
            .ok_or(Refusal::Hsm(HsmError::NotSetUp))?;
        let data = match session.open(code, reply, &mut out) {
            Ok(data) => data,
            // Authenticated refusal: the session is sound (a check may carry on: it deletes
            // its throw-away key even after one).
            Err(e @ HsmError::Refused { .. }) => {
                return match op.work {
                    Work::Check(check) => self.hsm_check_answer(check, Err(e), op.reopened),
                    _ => Err(Refusal::Hsm(e)),
                };
            }
            // Expired or reset: one fresh session for this operation. The command did not run
            // (the HSM refused the session), so sending it again is safe.
            Err(HsmError::Device { .. }) if !op.reopened => {
                return self.hsm_begin(op.work, true);
            }
            Err(e) => {
                self.hsm.session = None;
                return Err(Refusal::Hsm(e));
            }
        };
        match op.work {
            Work::Sign { key, digest, mark } => {
                let (_, curve, _) = self.hsm_key(&key)?;
                let raw = command::signature(curve, data).map_err(Refusal::Hsm)?;
                let public = *self.slot(&key)?.material.public_key();
                let signature = verify(&public, &digest, &raw)?;
                if let Some((id, level, round)) = &mark {
                    self.marks
                        .complete(id, *level, *round, &digest, signature)?;
                }
                Ok(Response::Signature(signature))
            }
            Work::Generate { curve, policy, .. } => {
                let key_id = command::generated_key(data).map_err(Refusal::Hsm)?;
                let work = Work::Import {
                    key_id,
                    expect: None,
                    curve: Some(curve),
                    policy,
                };
                self.hsm_continue(work, op.reopened)
            }
            Work::Check(check) => self.hsm_check_answer(check, Ok(data), op.reopened),
            Work::Comet(sign) => self.comet_hsm_answer(sign, data),
            Work::Import {
                key_id,
                expect,
                curve,
                policy,
            } => {
                let public = command::public_key(data).map_err(Refusal::Hsm)?;
                if expect.is_some_and(|e| e != public) || curve.is_some_and(|c| c != public.curve())
                {
                    return Err(Refusal::Hsm(HsmError::KeyMismatch));
                }
                let material = material(public, key_id, self.hsm_credential()?)?;
                self.add_key(material, policy)
            }
        }
    }
}
