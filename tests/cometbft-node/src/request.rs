//! What the test asks the node to send: one JSON object a line (or a JSON array in a script
//! file), turned into the `privval.Message` a CometBFT v0.38 node would send.
//!
//! ```json
//! {"op": "pubkey"}
//! {"op": "ping"}
//! {"op": "proposal", "height": 5, "round": 0, "pol_round": -1, "block": "<64 hex>", "time": "2026-01-01T00:00:00.000000001Z"}
//! {"op": "prevote", "height": 5, "round": 0, "block": null, "time": "..."}
//! {"op": "precommit", "height": 5, "round": 0, "block": "<64 hex>", "time": "...", "extension": "<hex>"}
//! ```
//!
//! `chain_id` may be given on any request to send another chain id than the node's; `time`
//! defaults to the Unix epoch plus the height in seconds.

use serde::Deserialize;
use tendermint_proto::google::protobuf::Timestamp;
use tendermint_proto::v0_38::privval::{
    Message, PingRequest, PubKeyRequest, SignProposalRequest, SignVoteRequest, message::Sum,
};
use tendermint_proto::v0_38::types::{BlockId, PartSetHeader, Proposal, SignedMsgType, Vote};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    pub op: Op,
    #[serde(default)]
    pub height: i64,
    #[serde(default)]
    pub round: i32,
    #[serde(default = "no_pol_round")]
    pub pol_round: i32,
    /// The block hash (hex, 32 bytes); absent or null: a nil vote.
    #[serde(default)]
    pub block: Option<String>,
    /// RFC 3339.
    #[serde(default)]
    pub time: Option<String>,
    /// Vote extension bytes (hex); precommits only.
    #[serde(default)]
    pub extension: Option<String>,
    #[serde(default)]
    pub chain_id: Option<String>,
    /// A label the test gives the request; printed back with the answer.
    #[serde(default)]
    pub tag: Option<String>,
}

fn no_pol_round() -> i32 {
    -1
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Pubkey,
    Ping,
    Proposal,
    Prevote,
    Precommit,
    /// Drop the current connection (the next request waits for the signer to dial in again).
    Disconnect,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Pubkey => "pubkey",
            Op::Ping => "ping",
            Op::Proposal => "proposal",
            Op::Prevote => "prevote",
            Op::Precommit => "precommit",
            Op::Disconnect => "disconnect",
        }
    }
}

impl Request {
    pub fn chain_id<'a>(&'a self, node_chain: &'a str) -> &'a str {
        self.chain_id.as_deref().unwrap_or(node_chain)
    }

    pub fn block_id(&self) -> Result<Option<BlockId>, String> {
        let Some(hex_hash) = &self.block else {
            return Ok(None);
        };
        let hash = hex::decode(hex_hash).map_err(|e| format!("block {hex_hash:?}: {e}"))?;
        if hash.len() != 32 {
            return Err(format!("block {hex_hash:?}: not 32 bytes"));
        }
        // The part set header is made from the block hash: the test names blocks by hash only.
        let mut parts = hash.clone();
        parts.reverse();
        Ok(Some(BlockId {
            hash,
            part_set_header: Some(PartSetHeader {
                total: 1,
                hash: parts,
            }),
        }))
    }

    pub fn timestamp(&self) -> Result<Timestamp, String> {
        match &self.time {
            None => Ok(Timestamp {
                seconds: self.height,
                nanos: 0,
            }),
            Some(text) => {
                let time = tendermint::Time::parse_from_rfc3339(text)
                    .map_err(|e| format!("time {text:?}: {e}"))?;
                Ok(time.into())
            }
        }
    }

    /// The message for this request; `validator_address` is the address the node knows for
    /// its validator (20 bytes, zero before the public key is known).
    pub fn message(&self, node_chain: &str, validator_address: &[u8]) -> Result<Message, String> {
        let chain_id = self.chain_id(node_chain).to_string();
        let sum = match self.op {
            Op::Pubkey => Sum::PubKeyRequest(PubKeyRequest { chain_id }),
            Op::Ping => Sum::PingRequest(PingRequest {}),
            Op::Proposal => Sum::SignProposalRequest(SignProposalRequest {
                proposal: Some(Proposal {
                    r#type: SignedMsgType::Proposal as i32,
                    height: self.height,
                    round: self.round,
                    pol_round: self.pol_round,
                    block_id: self.block_id()?,
                    timestamp: Some(self.timestamp()?),
                    signature: Vec::new(),
                }),
                chain_id,
            }),
            Op::Prevote | Op::Precommit => {
                let kind = if self.op == Op::Prevote {
                    SignedMsgType::Prevote
                } else {
                    SignedMsgType::Precommit
                };
                let extension = match &self.extension {
                    Some(h) => hex::decode(h).map_err(|e| format!("extension {h:?}: {e}"))?,
                    None => Vec::new(),
                };
                Sum::SignVoteRequest(SignVoteRequest {
                    vote: Some(Vote {
                        r#type: kind as i32,
                        height: self.height,
                        round: self.round,
                        block_id: self.block_id()?,
                        timestamp: Some(self.timestamp()?),
                        validator_address: validator_address.to_vec(),
                        validator_index: 0,
                        signature: Vec::new(),
                        extension,
                        extension_signature: Vec::new(),
                    }),
                    chain_id,
                })
            }
            Op::Disconnect => return Err("disconnect is not a message".into()),
        };
        Ok(Message { sum: Some(sum) })
    }
}
