//! The board's side of the [`HsmCheckRequest`] family: `pawl device selftest --yubihsm`.
//!
//! Each check is one HSM operation of the board's `yubihsm` module ([`Work::Check`]): it
//! opens (or reuses) the board's SCP03 session, sends its commands one relay round trip at a
//! time, and ends with an [`HsmCheckResponse`]. What a check may change: the session (like any
//! HSM operation) and, for [`HsmCheckRequest::ThrowAway`], one HSM object that it deletes
//! again. It never adds, changes or removes a board key or mark.
//!
//! The throw-away round, step by step (each an authenticated command in the session):
//!
//! ```text
//! Generate Asymmetric Key (sign-only, label THROW_AWAY_LABEL) ─► object id
//! Get Public Key(id)                                          ─► point checked, curve checked
//! Sign(id, TEST_DIGEST)                                       ─► verified on the board
//! Delete Object(id, asymmetric key)                           ─► ThrowAway{verified, deleted}
//! ```
//!
//! A refusal by the HSM (authenticated) of the read or the sign goes straight to the delete,
//! with `verified: false`; a refused delete answers `deleted: false`. A broken channel (bad
//! MAC, a forged or lost reply) ends the check with a refusal, like any HSM operation; then
//! the board could not delete the key, which the HSM labels [`THROW_AWAY_LABEL`].

use super::yubihsm::Work;
use super::{Board, Material, Presence};
use crate::keys::{Curve, Entropy, PublicKey, PublicKeyHash};
use crate::protocol::hsm_check::{HsmCheckRequest, HsmCheckResponse, THROW_AWAY_LABEL};
use crate::protocol::{Refusal, Response};
use crate::store::Store;
use crate::yubihsm::HsmError;
use crate::yubihsm::command::{self, Command, ECHO_LEN, LABEL_LEN};

/// What the session check echoes.
const ECHO: [u8; ECHO_LEN] = *b"pawl-ok!";

/// The digest a throw-away key signs: BLAKE2b-256 of "pawl selftest", never a Tezos request.
const TEST_MESSAGE: &[u8] = b"pawl selftest";

/// One HSM check in progress.
#[derive(Clone)]
pub(super) enum Check {
    /// Echo through the session.
    Session,
    /// Read key `pkh` (object `key_id`) and compare.
    Key { pkh: PublicKeyHash, key_id: u16 },
    /// The throw-away round.
    ThrowAway {
        curve: Curve,
        domains: u16,
        step: ThrowStep,
    },
}

/// Where a throw-away round stands: the command out now.
#[derive(Clone, Copy)]
pub(super) enum ThrowStep {
    Generate,
    Read { id: u16 },
    Sign { id: u16, public: PublicKey },
    Delete { id: u16, verified: bool },
}

fn label() -> [u8; LABEL_LEN] {
    let mut padded = [0u8; LABEL_LEN];
    padded[..THROW_AWAY_LABEL.len()].copy_from_slice(THROW_AWAY_LABEL.as_bytes());
    padded
}

fn test_digest() -> [u8; 32] {
    crate::digest::blake2b_256(TEST_MESSAGE)
}

impl Check {
    /// The command this check sends next.
    pub(super) fn command(&self) -> Result<Command, Refusal> {
        Ok(match self {
            Check::Session => Command::echo(&ECHO),
            Check::Key { key_id, .. } => Command::get_public_key(*key_id),
            Check::ThrowAway {
                curve,
                domains,
                step,
            } => match step {
                ThrowStep::Generate => {
                    Command::generate(*curve, 0, &label(), *domains).map_err(Refusal::Hsm)?
                }
                ThrowStep::Read { id } => Command::get_public_key(*id),
                ThrowStep::Sign { id, .. } => {
                    Command::sign(*curve, *id, &test_digest()).map_err(Refusal::Hsm)?
                }
                ThrowStep::Delete { id, .. } => Command::delete_asymmetric_key(*id),
            },
        })
    }

    /// The registered key whose authentication key this check runs under; `None`: the
    /// board's credential.
    pub(super) fn key(&self) -> Option<&PublicKeyHash> {
        match self {
            Check::Key { pkh, .. } => Some(pkh),
            _ => None,
        }
    }
}

impl<S: Store, E: Entropy, P: Presence> Board<S, E, P> {
    /// Answer one request of the family: start the check's HSM exchange.
    pub(super) fn hsm_check(&mut self, request: HsmCheckRequest) -> Result<Response, Refusal> {
        let check = match request {
            HsmCheckRequest::Session => {
                self.hsm_credential()?;
                Check::Session
            }
            HsmCheckRequest::Key { pkh } => match &self.slot(&pkh)?.material {
                Material::YubiHsm { key_id, .. } => Check::Key {
                    pkh,
                    key_id: *key_id,
                },
                _ => return Err(Refusal::Hsm(HsmError::KeyMismatch)),
            },
            HsmCheckRequest::ThrowAway { curve, domains } => {
                self.provisioning()?;
                // Refuses a curve the HSM path does not sign with before any HSM byte.
                Command::generate(curve, 0, &label(), domains).map_err(Refusal::Hsm)?;
                self.hsm_credential()?;
                Check::ThrowAway {
                    curve,
                    domains,
                    step: ThrowStep::Generate,
                }
            }
        };
        self.healthy()?;
        self.hsm_begin(Work::Check(check), false)
    }

    /// The HSM's authenticated answer to a check's command (`Err`: the HSM refused it): the
    /// next command, or the check's result.
    pub(super) fn hsm_check_answer(
        &mut self,
        check: Check,
        answer: Result<&[u8], HsmError>,
        reopened: bool,
    ) -> Result<Response, Refusal> {
        let done = |r| Ok(Response::HsmCheck(r));
        match check {
            Check::Session => {
                let data = answer.map_err(Refusal::Hsm)?;
                if data != ECHO {
                    return Err(Refusal::Hsm(HsmError::Malformed));
                }
                let auth_key_id = self.hsm_credential()?.id();
                done(HsmCheckResponse::Session { auth_key_id })
            }
            Check::Key { pkh, key_id } => {
                let public =
                    command::public_key(answer.map_err(Refusal::Hsm)?).map_err(Refusal::Hsm)?;
                let record = *self.slot(&pkh)?.material.public_key();
                done(HsmCheckResponse::Key {
                    pkh,
                    key_id,
                    matches: public == record,
                })
            }
            Check::ThrowAway {
                curve,
                domains,
                step,
            } => {
                let next = match (step, answer) {
                    (ThrowStep::Generate, answer) => {
                        let id = command::generated_key(answer.map_err(Refusal::Hsm)?)
                            .map_err(Refusal::Hsm)?;
                        ThrowStep::Read { id }
                    }
                    (ThrowStep::Read { id }, Ok(data)) => match command::public_key(data) {
                        Ok(public) if public.curve() == curve && public.validate().is_ok() => {
                            ThrowStep::Sign { id, public }
                        }
                        _ => ThrowStep::Delete {
                            id,
                            verified: false,
                        },
                    },
                    (ThrowStep::Sign { id, public }, Ok(data)) => {
                        let verified = command::signature(curve, data).ok().is_some_and(|raw| {
                            super::yubihsm::verify(&public, &test_digest(), &raw).is_ok()
                        });
                        ThrowStep::Delete { id, verified }
                    }
                    // The HSM refused the read or the sign: delete anyway.
                    (ThrowStep::Read { id } | ThrowStep::Sign { id, .. }, Err(_)) => {
                        ThrowStep::Delete {
                            id,
                            verified: false,
                        }
                    }
                    (ThrowStep::Delete { id, verified }, answer) => {
                        return done(HsmCheckResponse::ThrowAway {
                            curve,
                            key_id: id,
                            verified,
                            deleted: answer.is_ok_and(<[u8]>::is_empty),
                        });
                    }
                };
                let work = Work::Check(Check::ThrowAway {
                    curve,
                    domains,
                    step: next,
                });
                self.hsm_continue(work, reopened)
            }
        }
    }
}
