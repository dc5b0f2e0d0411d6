//! One request from the node, one answer: the translation between privval messages and the
//! board. The bridge decides nothing about signing: it builds the sign bytes, hands them to the
//! board with the key, and puts what the board returns into the answer — the signature, the
//! extension signature, and the recorded timestamp when the board answers a timestamp-only
//! retry with its recorded signature. A board refusal becomes the answer's
//! `RemoteSignerError`, named. The checks made here only ever refuse: a chain id other than
//! the entry's, an extension the node should not have sent, raw bytes (never signed).

use std::time::Instant;

use pawl_core::keys::PublicKeyHash;

use super::metrics::CometMetrics;
use super::proto::{
    Message, PRECOMMIT, PREVOTE, PingResponse, PubKeyResponse, PublicKey, RemoteSignerError,
    SignBytesResponse, SignedProposalResponse, SignedVoteResponse, Sum,
};
use super::{CometBoard, Refused, SignItem, sign_bytes};

/// `RemoteSignerError.code` for every refusal but the double-sign guard's. CometBFT's own
/// signer sends 0 for everything and the node only logs the code; tendermint-rs names 1 the
/// generic remote-signer error and 2 a double sign, which tmkms sends.
pub const CODE_REFUSED: i32 = 1;
/// `RemoteSignerError.code` when the board's mark refused (double sign, regression, or a
/// position it cannot tell from one).
pub const CODE_DOUBLE_SIGN: i32 = 2;

/// What this answer is about, for the log line and the metrics.
struct Outcome {
    kind: &'static str,
    height: i64,
    round: i32,
    step: u8,
}

/// Answer `request` for the entry serving `chain_id` with `key`. `None`: the message is not a
/// request (the node sent an answer): the connection is broken.
pub async fn answer<B: CometBoard>(
    board: &B,
    chain_id: &str,
    key: &PublicKeyHash,
    metrics: &CometMetrics,
    request: Message,
) -> Option<Message> {
    let sum = match request.sum? {
        Sum::PingRequest(_) => Sum::PingResponse(PingResponse {}),
        Sum::PubKeyRequest(r) => {
            Sum::PubKeyResponse(public_key(board, chain_id, key, &r.chain_id).await)
        }
        Sum::SignVoteRequest(r) => {
            let started = Instant::now();
            let Some(mut vote) = r.vote else {
                return Some(Message::of(Sum::SignedVoteResponse(vote_refused(refused(
                    "bad_request",
                    "the request holds no vote",
                )))));
            };
            let outcome = Outcome {
                kind: match vote.r#type {
                    PREVOTE => "prevote",
                    PRECOMMIT => "precommit",
                    _ => "vote",
                },
                height: vote.height,
                round: vote.round,
                step: match vote.r#type {
                    PREVOTE => 2,
                    PRECOMMIT => 3,
                    _ => 0,
                },
            };
            let result = sign_vote(
                board,
                chain_id,
                key,
                &r.chain_id,
                &mut vote,
                r.skip_extension_signing,
            )
            .await;
            record(metrics, chain_id, &outcome, &result, started);
            Sum::SignedVoteResponse(match result {
                Ok(()) => SignedVoteResponse {
                    vote: Some(vote),
                    error: None,
                },
                Err(r) => vote_refused(r),
            })
        }
        Sum::SignProposalRequest(r) => {
            let started = Instant::now();
            let Some(mut proposal) = r.proposal else {
                return Some(Message::of(Sum::SignedProposalResponse(
                    SignedProposalResponse {
                        proposal: None,
                        error: Some(error(&refused(
                            "bad_request",
                            "the request holds no proposal",
                        ))),
                    },
                )));
            };
            let outcome = Outcome {
                kind: "proposal",
                height: proposal.height,
                round: proposal.round,
                step: 1,
            };
            let result = async {
                same_chain(chain_id, &r.chain_id)?;
                let bytes = sign_bytes::proposal(chain_id, &proposal);
                let signed = board
                    .sign(key, SignItem::Proposal { sign_bytes: bytes })
                    .await?;
                proposal.signature = signed.signature.to_vec();
                if let Some(t) = signed.timestamp {
                    proposal.timestamp = Some(t);
                }
                Ok(())
            }
            .await;
            record(metrics, chain_id, &outcome, &result, started);
            Sum::SignedProposalResponse(match result {
                Ok(()) => SignedProposalResponse {
                    proposal: Some(proposal),
                    error: None,
                },
                Err(r) => SignedProposalResponse {
                    proposal: None,
                    error: Some(error(&r)),
                },
            })
        }
        Sum::SignBytesRequest(_) => {
            metrics.refused(chain_id, "raw_bytes");
            tracing::warn!(chain = %chain_id, "the node asked to sign raw bytes: refused");
            Sum::SignBytesResponse(SignBytesResponse {
                signature: Vec::new(),
                error: Some(error(&refused(
                    "raw_bytes",
                    "pawl signs votes and proposals only, never raw bytes",
                ))),
            })
        }
        Sum::PubKeyResponse(_)
        | Sum::SignedVoteResponse(_)
        | Sum::SignedProposalResponse(_)
        | Sum::PingResponse(_)
        | Sum::SignBytesResponse(_) => return None,
    };
    Some(Message::of(sum))
}

fn refused(reason: &'static str, description: &str) -> Refused {
    Refused {
        reason,
        code: CODE_REFUSED,
        description: description.to_string(),
    }
}

fn error(r: &Refused) -> RemoteSignerError {
    RemoteSignerError {
        code: r.code,
        description: r.description.clone(),
    }
}

fn vote_refused(r: Refused) -> SignedVoteResponse {
    SignedVoteResponse {
        vote: None,
        error: Some(error(&r)),
    }
}

fn same_chain(served: &str, asked: &str) -> Result<(), Refused> {
    if served == asked {
        return Ok(());
    }
    Err(refused(
        "wrong_chain",
        &format!(
            "this signer serves chain `{}`, not `{}`",
            served.escape_debug(),
            asked.escape_debug()
        ),
    ))
}

async fn public_key<B: CometBoard>(
    board: &B,
    served: &str,
    key: &PublicKeyHash,
    asked: &str,
) -> PubKeyResponse {
    let result = match same_chain(served, asked) {
        Ok(()) => board.public_key(key).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(pk) => PubKeyResponse {
            pub_key: Some(PublicKey {
                ed25519: pk.to_vec(),
            }),
            error: None,
            pub_key_bytes: pk.to_vec(),
            pub_key_type: "ed25519".into(),
        },
        Err(r) => {
            tracing::warn!(chain = %served, reason = r.reason, "public key refused: {}", r.description);
            PubKeyResponse {
                error: Some(error(&r)),
                ..PubKeyResponse::default()
            }
        }
    }
}

async fn sign_vote<B: CometBoard>(
    board: &B,
    served: &str,
    key: &PublicKeyHash,
    asked: &str,
    vote: &mut super::proto::Vote,
    skip_extension_signing: bool,
) -> Result<(), Refused> {
    same_chain(served, asked)?;
    let extension = sign_bytes::extension_expected(vote, skip_extension_signing);
    if !extension && !skip_extension_signing && !vote.extension.is_empty() {
        // FilePV refuses the same: only precommits for a block carry extensions.
        return Err(refused(
            "bad_request",
            "unexpected vote extension: extensions are only allowed in precommits for a block",
        ));
    }
    let item = SignItem::Vote {
        sign_bytes: sign_bytes::vote(served, vote),
        extension: extension.then(|| sign_bytes::vote_extension(served, vote)),
    };
    let signed = board.sign(key, item).await?;
    vote.signature = signed.signature.to_vec();
    if let Some(t) = signed.timestamp {
        vote.timestamp = Some(t);
    }
    match (extension, signed.extension_signature) {
        (true, Some(sig)) => vote.extension_signature = sig.to_vec(),
        (false, _) => vote.extension_signature.clear(),
        (true, None) => {
            // A key that signs no extension (a YubiHSM2 key): the precommit goes without one.
            tracing::warn!(key = %key, height = vote.height, "precommit answered without a vote-extension signature: this key cannot sign extensions (a chain with vote extensions enabled needs a key on the board)");
            vote.extension_signature.clear();
        }
    }
    Ok(())
}

fn record(
    metrics: &CometMetrics,
    chain: &str,
    o: &Outcome,
    result: &Result<(), Refused>,
    started: Instant,
) {
    let latency_us = started.elapsed().as_micros();
    match result {
        Ok(()) => {
            metrics.signed(chain, o.kind, o.height, o.round, o.step);
            tracing::info!(chain = %chain, kind = o.kind, height = o.height, round = o.round, outcome = "signed", latency_us, "cometbft sign");
        }
        Err(r) => {
            metrics.refused(chain, r.reason);
            tracing::warn!(chain = %chain, kind = o.kind, height = o.height, round = o.round, outcome = r.reason, code = r.code, latency_us, reason = %r.description, "cometbft sign");
        }
    }
}
