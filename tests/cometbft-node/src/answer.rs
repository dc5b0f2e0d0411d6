//! What the signer answered, checked with tendermint-rs alone: signatures are verified with
//! the validator's public key over `Vote::into_signable_vec` / `Proposal::into_signable_vec`
//! (tendermint's own sign-bytes code), the returned message is compared with the request, and
//! every signature is remembered so that two signatures for one height/round/step over
//! different blocks are reported as a conflict.

use std::collections::HashMap;

use ed25519_consensus::{Signature, VerificationKey};
use prost::Message as _;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tendermint::chain::Id as ChainId;
use tendermint_proto::v0_38::crypto::public_key;
use tendermint_proto::v0_38::privval::{Message, RemoteSignerError, message::Sum};
use tendermint_proto::v0_38::types::{BlockId, CanonicalVoteExtension};

use crate::request::{Op, Request};

/// One signature the signer gave, by (step, height, round).
struct Signed {
    block: Option<BlockId>,
    sign_bytes: Vec<u8>,
}

/// The node's memory of the signer: its public key and every signature it returned.
#[derive(Default)]
pub struct Checker {
    pub key: Option<VerificationKey>,
    signed: HashMap<(Op, i64, i32), Vec<Signed>>,
}

impl Checker {
    /// The validator address the node puts in votes: the first 20 bytes of SHA-256 of the
    /// public key (zero before it is known).
    pub fn validator_address(&self) -> Vec<u8> {
        match &self.key {
            Some(key) => Sha256::digest(key.as_bytes())[..20].to_vec(),
            None => vec![0; 20],
        }
    }

    /// Check `response` to `request` and describe it as one JSON object.
    pub fn answer(&mut self, request: &Request, node_chain: &str, response: Message) -> Value {
        let chain = request.chain_id(node_chain).to_string();
        match response.sum {
            Some(Sum::PubKeyResponse(r)) if request.op == Op::Pubkey => {
                if let Some(e) = r.error {
                    return refused(e);
                }
                let Some(public_key::Sum::Ed25519(bytes)) = r.pub_key.and_then(|k| k.sum) else {
                    return json!({"answer": "malformed", "why": "no Ed25519 public key"});
                };
                let Ok(key) = VerificationKey::try_from(bytes.as_slice()) else {
                    return json!({"answer": "malformed", "why": "not an Ed25519 point"});
                };
                if self.key.is_none() {
                    self.key = Some(key);
                }
                json!({"answer": "pubkey", "pubkey": hex::encode(&bytes),
                       "matches": self.key == Some(key)})
            }
            Some(Sum::PingResponse(_)) if request.op == Op::Ping => json!({"answer": "pong"}),
            Some(Sum::SignedVoteResponse(r))
                if matches!(request.op, Op::Prevote | Op::Precommit) =>
            {
                if let Some(e) = r.error {
                    return refused(e);
                }
                let Some(raw) = r.vote else {
                    return json!({"answer": "malformed", "why": "no vote and no error"});
                };
                self.vote(request, &chain, raw)
            }
            Some(Sum::SignedProposalResponse(r)) if request.op == Op::Proposal => {
                if let Some(e) = r.error {
                    return refused(e);
                }
                let Some(raw) = r.proposal else {
                    return json!({"answer": "malformed", "why": "no proposal and no error"});
                };
                self.proposal(request, &chain, raw)
            }
            other => json!({"answer": "unexpected", "message": format!("{other:?}")}),
        }
    }

    fn vote(
        &mut self,
        request: &Request,
        chain: &str,
        raw: tendermint_proto::v0_38::types::Vote,
    ) -> Value {
        let Ok(requested) = request.message(chain, &self.validator_address()) else {
            return json!({"answer": "malformed", "why": "request not rebuilt"});
        };
        let Some(Sum::SignVoteRequest(asked)) = requested.sum else {
            return json!({"answer": "malformed", "why": "request not a vote"});
        };
        let asked = asked.vote.unwrap_or_default();
        let fields_match = raw.r#type == asked.r#type
            && raw.height == asked.height
            && raw.round == asked.round
            && same_block(&raw.block_id, &asked.block_id);
        let extension_kept = raw.extension == asked.extension;
        let signature = raw.signature.clone();
        let extension_signature = raw.extension_signature.clone();
        let vote = match tendermint::Vote::try_from(raw.clone()) {
            Ok(v) => v,
            Err(e) => return json!({"answer": "malformed", "why": e.to_string()}),
        };
        let Ok(chain_id) = ChainId::try_from(chain.to_string()) else {
            return json!({"answer": "malformed", "why": "chain id"});
        };
        let time = vote.timestamp.map(|t| t.to_rfc3339());
        let sign_bytes = vote.into_signable_vec(chain_id);
        let sig_ok = self.verify(&sign_bytes, &signature);
        // CometBFT signs the extension of non-nil precommits over a CanonicalVoteExtension.
        let ext_sig_ok = (!extension_signature.is_empty()).then(|| {
            let canonical = CanonicalVoteExtension {
                extension: raw.extension.clone(),
                height: raw.height,
                round: i64::from(raw.round),
                chain_id: chain.to_string(),
            };
            self.verify(
                &canonical.encode_length_delimited_to_vec(),
                &extension_signature,
            )
            .unwrap_or(false)
        });
        let (conflict, resigned) = self.remember(
            request.op,
            raw.height,
            raw.round,
            &raw.block_id,
            &sign_bytes,
            sig_ok,
        );
        json!({"answer": "signed", "sig": hex::encode(&signature), "sig_ok": sig_ok,
               "ext_sig": hex::encode(&extension_signature), "ext_sig_ok": ext_sig_ok,
               "time": time, "sign_bytes": hex::encode(&sign_bytes),
               "fields_match": fields_match, "extension_kept": extension_kept,
               "conflict": conflict, "resigned": resigned})
    }

    fn proposal(
        &mut self,
        request: &Request,
        chain: &str,
        raw: tendermint_proto::v0_38::types::Proposal,
    ) -> Value {
        let fields_match = raw.height == request.height
            && raw.round == request.round
            && raw.pol_round == request.pol_round
            && same_block(&raw.block_id, &request.block_id().ok().flatten());
        let signature = raw.signature.clone();
        let proposal = match tendermint::Proposal::try_from(raw.clone()) {
            Ok(p) => p,
            Err(e) => return json!({"answer": "malformed", "why": e.to_string()}),
        };
        let Ok(chain_id) = ChainId::try_from(chain.to_string()) else {
            return json!({"answer": "malformed", "why": "chain id"});
        };
        let time = proposal.timestamp.map(|t| t.to_rfc3339());
        let sign_bytes = proposal.into_signable_vec(chain_id);
        let sig_ok = self.verify(&sign_bytes, &signature);
        let (conflict, resigned) = self.remember(
            Op::Proposal,
            raw.height,
            raw.round,
            &raw.block_id,
            &sign_bytes,
            sig_ok,
        );
        json!({"answer": "signed", "sig": hex::encode(&signature), "sig_ok": sig_ok,
               "time": time, "sign_bytes": hex::encode(&sign_bytes),
               "fields_match": fields_match, "conflict": conflict, "resigned": resigned})
    }

    /// Some(valid) once the public key is known.
    fn verify(&self, message: &[u8], signature: &[u8]) -> Option<bool> {
        let key = self.key.as_ref()?;
        let Ok(signature) = Signature::try_from(signature) else {
            return Some(false);
        };
        Some(key.verify(&signature, message).is_ok())
    }

    /// Remember a valid signature; (conflict, resigned): whether an earlier valid signature
    /// at the same step, height and round was over another block (a double sign), or over the
    /// same block with other sign bytes (the same vote signed again with another timestamp).
    fn remember(
        &mut self,
        op: Op,
        height: i64,
        round: i32,
        block: &Option<BlockId>,
        sign_bytes: &[u8],
        sig_ok: Option<bool>,
    ) -> (bool, bool) {
        if sig_ok != Some(true) {
            return (false, false);
        }
        let earlier = self.signed.entry((op, height, round)).or_default();
        let conflict = earlier.iter().any(|s| !same_block(&s.block, block));
        let resigned = earlier
            .iter()
            .any(|s| same_block(&s.block, block) && s.sign_bytes != sign_bytes);
        if !earlier.iter().any(|s| s.sign_bytes == sign_bytes) {
            earlier.push(Signed {
                block: block.clone(),
                sign_bytes: sign_bytes.to_vec(),
            });
        }
        (conflict, resigned)
    }
}

/// Block ids compared as CometBFT does: an absent id and an all-empty one are both nil.
fn same_block(a: &Option<BlockId>, b: &Option<BlockId>) -> bool {
    let nil = BlockId::default();
    a.as_ref().unwrap_or(&nil) == b.as_ref().unwrap_or(&nil)
}

fn refused(e: RemoteSignerError) -> Value {
    json!({"answer": "error", "code": e.code, "description": e.description})
}

#[cfg(test)]
mod tests {
    use super::*;
    use tendermint_proto::v0_38::privval::SignedVoteResponse;
    use tendermint_proto::v0_38::types::Vote as RawVote;

    const CHAIN: &str = "test-chain";

    fn request(block: &str, time: &str) -> Request {
        serde_json::from_value(json!({"op": "prevote", "height": 5, "round": 0,
                                      "block": block, "time": time}))
        .unwrap()
    }

    fn raw_vote(request: &Request) -> RawVote {
        match request.message(CHAIN, &[0; 20]).unwrap().sum {
            Some(Sum::SignVoteRequest(r)) => r.vote.unwrap(),
            other => panic!("{other:?}"),
        }
    }

    /// The vote signed by `key` over tendermint's sign bytes, as a signer's answer.
    fn signed(key: &ed25519_consensus::SigningKey, mut vote: RawVote) -> Message {
        let bytes = tendermint::Vote::try_from(vote.clone())
            .unwrap()
            .into_signable_vec(ChainId::try_from(CHAIN.to_string()).unwrap());
        vote.signature = key.sign(&bytes).to_bytes().to_vec();
        Message {
            sum: Some(Sum::SignedVoteResponse(SignedVoteResponse {
                vote: Some(vote),
                error: None,
            })),
        }
    }

    #[test]
    fn flags_bad_signatures_changed_votes_conflicts_and_re_signs() {
        let key = ed25519_consensus::SigningKey::from([7u8; 32]);
        let mut checker = Checker {
            key: Some(key.verification_key()),
            ..Checker::default()
        };
        let a = "aa".repeat(32);
        let t1 = "2026-01-01T00:00:01Z";
        let first = request(&a, t1);
        let good = checker.answer(&first, CHAIN, signed(&key, raw_vote(&first)));
        assert_eq!(good["sig_ok"], true, "{good}");
        assert_eq!(good["fields_match"], true);
        assert_eq!(good["conflict"], false);

        // The signature no longer covers the vote once its timestamp is changed.
        let Some(Sum::SignedVoteResponse(mut r)) = signed(&key, raw_vote(&first)).sum else {
            unreachable!()
        };
        r.vote.as_mut().unwrap().timestamp.as_mut().unwrap().seconds += 1;
        let tampered = Message {
            sum: Some(Sum::SignedVoteResponse(r)),
        };
        assert_eq!(checker.answer(&first, CHAIN, tampered)["sig_ok"], false);

        // Another key's signature does not verify.
        let other = ed25519_consensus::SigningKey::from([8u8; 32]);
        assert_eq!(
            checker.answer(&first, CHAIN, signed(&other, raw_vote(&first)))["sig_ok"],
            false
        );

        // A signer that answers with another block than asked.
        let b = "bb".repeat(32);
        let changed = checker.answer(&first, CHAIN, signed(&key, raw_vote(&request(&b, t1))));
        assert_eq!(changed["fields_match"], false);
        // … and that is also a second block at the same height/round/step.
        assert_eq!(changed["conflict"], true);

        // The same block with a new timestamp: signed again, not a conflict.
        let later = request(&a, "2026-01-01T00:00:02Z");
        let resigned = checker.answer(&later, CHAIN, signed(&key, raw_vote(&later)));
        assert_eq!(resigned["resigned"], true);
    }
}
