//! [`CometBoard`] over the bridge's boards: the request goes to the board that holds the key
//! (routed by pkh like every Tezos request), as [`CometRequest`]s. Keys on the board answer at
//! once; for a YubiHSM2 key the board answers `RelayToHsm` and the request is carried through
//! the HSM relay to the board's final answer, as for Tezos (one HSM exchange at a time).
//! Refusals keep the board's own words.

use std::sync::Arc;

use pawl_core::keys::{PublicKey, PublicKeyHash, Signature};
use pawl_core::protocol::cometbft::{CometError, CometRequest, CometResponse};
use pawl_core::protocol::{Refusal, Request, Response};

use super::answer::{CODE_DOUBLE_SIGN, CODE_REFUSED};
use super::proto::Timestamp;
use super::{CometBoard, Refused, SignItem, Signed};
use crate::boards::Boards;
use crate::hsm_exchange::carry;
use crate::http::ApiError;

/// The boards of `pawl serve`, as the CometBFT clients see them.
#[derive(Clone)]
pub struct BoardSigner {
    /// The boards.
    pub boards: Boards,
    /// The YubiHSM2 relay (`[yubihsm]` in pawl.toml), for keys in a YubiHSM2.
    pub yubihsm: Option<Arc<crate::yubihsm::HsmRelay>>,
}

/// The metric label and code of a board refusal.
pub fn refusal_reason(refusal: &Refusal) -> (&'static str, i32) {
    match refusal {
        Refusal::CometBft(e) => match e {
            CometError::DoubleSign { .. } => ("double_sign", CODE_DOUBLE_SIGN),
            CometError::Regression { .. } => ("regression", CODE_DOUBLE_SIGN),
            CometError::NoRecord { .. } => ("no_record", CODE_DOUBLE_SIGN),
            CometError::NoChain => ("chain_not_pinned", CODE_REFUSED),
            CometError::WrongChain => ("wrong_chain", CODE_REFUSED),
            CometError::Parse(_) | CometError::BadChainId | CometError::ExtensionMismatch => {
                ("bad_request", CODE_REFUSED)
            }
            // Height or round out of range, a key that is not Ed25519 or not on the board.
            _ => ("refused", CODE_REFUSED),
        },
        Refusal::OffDuty(_) => ("off_duty", CODE_REFUSED),
        other => (crate::http::error::refusal_status(other).1, CODE_REFUSED),
    }
}

fn from_refusal(refusal: &Refusal) -> Refused {
    let (reason, code) = refusal_reason(refusal);
    Refused {
        reason,
        code,
        description: refusal.to_string(),
    }
}

fn from_api(e: ApiError) -> Refused {
    Refused {
        reason: e.outcome,
        code: CODE_REFUSED,
        description: e.msg,
    }
}

fn ed25519(signature: &Signature) -> Result<[u8; 64], Refused> {
    match signature {
        Signature::Ed25519(s) => Ok(*s),
        _ => Err(unexpected("a signature that is not Ed25519")),
    }
}

fn unexpected(what: &str) -> Refused {
    Refused {
        reason: "board_error",
        code: CODE_REFUSED,
        description: format!("the board answered {what}"),
    }
}

impl BoardSigner {
    /// Whether the board lists `pkh` as a YubiHSM2 key.
    fn in_yubihsm(&self, pkh: &PublicKeyHash) -> bool {
        self.boards
            .for_signing(pkh, None)
            .ok()
            .and_then(|board| board.link.cached_key(pkh))
            .is_some_and(|k| k.backend == pawl_core::protocol::Backend::YubiHsm)
    }

    async fn ask(
        &self,
        pkh: &PublicKeyHash,
        request: CometRequest<'_>,
    ) -> Result<CometResponse, Refused> {
        let height = match &request {
            CometRequest::SignVote { sign_bytes, .. }
            | CometRequest::SignProposal { sign_bytes, .. } => height_of(sign_bytes),
            _ => None,
        };
        let board = self
            .boards
            .for_signing(pkh, height)
            .map_err(|e| from_api(e.into()))?;
        // YubiHSM2 keys: one exchange at a time from the request to the board's last answer
        // (one pending operation, one session). A key not listed yet is treated as one.
        let hsm = self.yubihsm.as_deref().filter(|_| {
            board
                .link
                .cached_key(pkh)
                .is_none_or(|k| k.backend == pawl_core::protocol::Backend::YubiHsm)
        });
        let _hsm_serial = match hsm {
            Some(r) => Some(r.serial.lock().await),
            None => None,
        };
        let reply = board
            .link
            .ask(&Request::CometBft(request))
            .await
            .map_err(|e| from_api(board.unavailable(e)))?;
        let response = match reply.response {
            Response::RelayToHsm { sealed } => {
                let Some(relay) = self.yubihsm.as_deref() else {
                    return Err(Refused {
                        reason: "hsm_error",
                        code: CODE_REFUSED,
                        description: "the board asks for a YubiHSM2 but this bridge has no \
                                      connector ([yubihsm] in pawl.toml)"
                            .into(),
                    });
                };
                carry(&board.link, relay, sealed.to_vec(), |_| {})
                    .await
                    .map_err(|e| Refused {
                        reason: "hsm_error",
                        code: CODE_REFUSED,
                        description: e.to_string(),
                    })?
            }
            other => other,
        };
        match response {
            Response::CometBft(r) => Ok(r),
            Response::Refused(r) => Err(from_refusal(&r)),
            _ => Err(unexpected("something else than a CometBFT answer")),
        }
    }
}

/// The height in canonical sign bytes (uvarint length, field 1 varint if present, field 2
/// sfixed64), for routing only: during a hand-off between boards (`docs/lifecycle.md`) it picks
/// the board whose window holds the height. The board reads the bytes itself and decides.
pub fn height_of(sign_bytes: &[u8]) -> Option<u32> {
    let mut rest = sign_bytes;
    let skip_varint = |rest: &mut &[u8]| -> Option<()> {
        let end = rest.iter().position(|b| b & 0x80 == 0)?;
        *rest = rest.get(end + 1..)?;
        Some(())
    };
    skip_varint(&mut rest)?;
    if rest.first() == Some(&0x08) {
        rest = &rest[1..];
        skip_varint(&mut rest)?;
    }
    let (&tag, rest) = rest.split_first()?;
    let bytes: [u8; 8] = rest.get(..8)?.try_into().ok()?;
    (tag == 0x11)
        .then(|| u32::try_from(i64::from_le_bytes(bytes)).ok())
        .flatten()
}

fn timestamp(t: Option<pawl_core::protocol::cometbft::Timestamp>) -> Option<Timestamp> {
    t.map(|t| Timestamp {
        seconds: t.seconds,
        nanos: t.nanos,
    })
}

impl CometBoard for BoardSigner {
    async fn public_key(&self, key: &PublicKeyHash) -> Result<[u8; 32], Refused> {
        let public_key = match self.boards.cached_key(key) {
            Some(k) => k.public_key,
            None => {
                let board = self
                    .boards
                    .for_reading(key)
                    .map_err(|e| from_api(e.into()))?;
                let reply = board
                    .link
                    .ask(&Request::PublicKey { pkh: *key })
                    .await
                    .map_err(|e| from_api(board.unavailable(e)))?;
                match reply.response {
                    Response::PublicKey(pk) => pk,
                    Response::Refused(r) => return Err(from_refusal(&r)),
                    _ => return Err(unexpected("something else than a public key")),
                }
            }
        };
        match public_key {
            PublicKey::Ed25519(pk) => Ok(pk),
            _ => Err(Refused {
                reason: "not_ed25519",
                code: CODE_REFUSED,
                description: format!("key {key} is not an Ed25519 (tz1) key"),
            }),
        }
    }

    async fn sign(&self, key: &PublicKeyHash, item: SignItem) -> Result<Signed, Refused> {
        match item {
            SignItem::Vote {
                sign_bytes,
                extension,
            } => {
                // A YubiHSM2 key signs no vote extension (the board refuses one for it:
                // docs/cometbft.md "Keys in a YubiHSM2"): its precommit is answered without an
                // extension signature, as tmkms answers, which a chain without vote extensions
                // accepts. Asking with the extension would get the whole precommit refused.
                let extension = extension.filter(|_| !self.in_yubihsm(key));
                let request = CometRequest::SignVote {
                    pkh: *key,
                    sign_bytes: &sign_bytes,
                    extension: extension.as_deref(),
                };
                match self.ask(key, request).await? {
                    CometResponse::Vote {
                        signature,
                        timestamp: t,
                        extension_signature,
                    } => Ok(Signed {
                        signature: ed25519(&signature)?,
                        timestamp: timestamp(t),
                        extension_signature: extension_signature
                            .as_ref()
                            .map(ed25519)
                            .transpose()?,
                    }),
                    _ => Err(unexpected("something else than a signed vote")),
                }
            }
            SignItem::Proposal { sign_bytes } => {
                let request = CometRequest::SignProposal {
                    pkh: *key,
                    sign_bytes: &sign_bytes,
                };
                match self.ask(key, request).await? {
                    CometResponse::Proposal {
                        signature,
                        timestamp: t,
                    } => Ok(Signed {
                        signature: ed25519(&signature)?,
                        timestamp: timestamp(t),
                        extension_signature: None,
                    }),
                    _ => Err(unexpected("something else than a signed proposal")),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::height_of;

    #[test]
    fn the_height_is_read_for_routing() {
        // CometBFT's Go vectors (types/vote_test.go): a precommit at height 1, and a vote of
        // type 0 (no field 1) at height 1; tendermint-rs's Go-generated proposal at 12345.
        let precommit = [
            0x21, 0x8, 0x2, 0x11, 1, 0, 0, 0, 0, 0, 0, 0, 0x19, 1, 0, 0, 0, 0, 0, 0, 0,
        ];
        assert_eq!(height_of(&precommit), Some(1));
        assert_eq!(height_of(&[0x1f, 0x11, 1, 0, 0, 0, 0, 0, 0, 0]), Some(1));
        let proposal = [136, 1, 8, 32, 17, 57, 48, 0, 0, 0, 0, 0, 0, 25];
        assert_eq!(height_of(&proposal), Some(12345));
        // No height (Go's empty vote), cut short, or negative: none.
        assert_eq!(height_of(&[0xd, 0x2a, 0xb]), None);
        assert_eq!(height_of(&[0x21, 0x8, 0x2, 0x11, 1, 0]), None);
        assert_eq!(
            height_of(&[0x9, 0x11, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            None
        );
    }
}
