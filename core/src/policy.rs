//! Per-key policy: which requests a key may sign at all. Checked before the watermark, so a
//! refused request never touches watermark state.

use core::fmt;

use serde::{Deserialize, Serialize};

use crate::request::{
    Ballot, ChainId, ConsensusForm, KindSet, OpKind, OpKindSet, ParsedRequest, RequestKind,
};

/// Most chains one key can be pinned to.
pub const MAX_CHAINS: usize = 4;

/// A set of ballot votes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BallotSet(u8);

impl BallotSet {
    /// No vote.
    pub const EMPTY: BallotSet = BallotSet(0);
    /// Every vote.
    pub const ALL: BallotSet = BallotSet(0b111);

    const fn bit(b: Ballot) -> u8 {
        match b {
            Ballot::Yay => 1,
            Ballot::Nay => 2,
            Ballot::Pass => 4,
        }
    }

    /// Whether `b` is allowed.
    pub const fn contains(self, b: Ballot) -> bool {
        self.0 & Self::bit(b) != 0
    }

    /// The set with `b` added.
    #[must_use]
    pub const fn with(self, b: Ballot) -> BallotSet {
        BallotSet(self.0 | Self::bit(b))
    }
}

/// What one key may sign.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Request kinds the key signs.
    pub kinds: KindSet,
    /// For generic requests: operation kinds allowed; every content of a batch must be in it.
    pub ops: OpKindSet,
    /// Chains the key signs for; empty means any chain. Only consensus requests carry a chain
    /// id (generic operations and Michelson data do not).
    pub chains: heapless::Vec<ChainId, MAX_CHAINS>,
    /// Ballot votes allowed when `ballot` is in `ops`.
    pub ballots: BallotSet,
    /// Request kinds that also need a press of the board's button (confirm-on-device).
    pub confirm: KindSet,
}

impl Default for Policy {
    /// A baking key: block, preattestation and attestation, any chain, nothing else.
    fn default() -> Self {
        Policy {
            kinds: KindSet::CONSENSUS,
            ops: OpKindSet::EMPTY,
            chains: heapless::Vec::new(),
            ballots: BallotSet::ALL,
            confirm: KindSet::EMPTY,
        }
    }
}

/// Why the policy refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PolicyError {
    /// The key does not sign this kind of request.
    KindNotAllowed {
        /// The request's kind.
        kind: RequestKind,
    },
    /// A content of the batch is of a kind the key does not sign.
    OperationNotAllowed {
        /// The first refused kind.
        op: OpKind,
    },
    /// The request is for a chain the key is not pinned to.
    ChainNotAllowed {
        /// The request's chain.
        chain: ChainId,
    },
    /// The ballot vote is not allowed.
    BallotNotAllowed {
        /// The vote.
        ballot: Ballot,
    },
    /// A tz4 key asked to sign a consensus operation with a slot (tags 20/21/23), or a
    /// tz1/tz2/tz3 key asked to sign the BLS-mode form (tags 40/41).
    WrongConsensusForm {
        /// The form found.
        form: ConsensusForm,
    },
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyError::KindNotAllowed { kind } => {
                write!(f, "request kind `{kind}' is not allowed")
            }
            PolicyError::OperationNotAllowed { op } => write!(f, "operation `{op}' is not allowed"),
            PolicyError::ChainNotAllowed { chain } => write!(f, "chain `{chain}' is not allowed"),
            PolicyError::BallotNotAllowed { ballot } => {
                write!(f, "ballot `{}' is not allowed", ballot.name())
            }
            PolicyError::WrongConsensusForm { form } => match form {
                ConsensusForm::BlsMode => f.write_str(
                    "BLS-mode (pre)attestation (tag 40/41) can only be signed by a tz4 key",
                ),
                _ => f.write_str(
                    "tz4 keys sign (pre)attestations only in BLS mode (tag 40/41), not with a slot",
                ),
            },
        }
    }
}

impl core::error::Error for PolicyError {}

impl Policy {
    /// Check a parsed request against this policy. `is_bls_key` is whether the signing key is
    /// tz4 (which decides the consensus encoding it may sign).
    pub fn check(&self, req: &ParsedRequest, is_bls_key: bool) -> Result<(), PolicyError> {
        if !self.kinds.contains(req.kind) {
            return Err(PolicyError::KindNotAllowed { kind: req.kind });
        }
        if let Some(c) = req.consensus {
            if !self.chains.is_empty() && !self.chains.contains(&c.chain_id) {
                return Err(PolicyError::ChainNotAllowed { chain: c.chain_id });
            }
            let form_ok = match c.form {
                ConsensusForm::Block => true,
                ConsensusForm::WithSlot => !is_bls_key,
                ConsensusForm::BlsMode => is_bls_key,
            };
            if !form_ok {
                return Err(PolicyError::WrongConsensusForm { form: c.form });
            }
        }
        if let Some(op) = req.op_kinds.iter().find(|k| !self.ops.contains(*k)) {
            return Err(PolicyError::OperationNotAllowed { op });
        }
        if let Some(ballot) = req.ballot
            && !self.ballots.contains(ballot)
        {
            return Err(PolicyError::BallotNotAllowed { ballot });
        }
        Ok(())
    }

    /// Whether signing `kind` also needs the button.
    pub fn needs_confirmation(&self, kind: RequestKind) -> bool {
        self.confirm.contains(kind)
    }
}
