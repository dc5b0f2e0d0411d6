//! A key's duty on one board, beside its policy: which role it plays, whether it is on standby,
//! and the window of levels it signs consensus requests in. The policy says *what* a key may
//! sign; the duty says *when this board* signs it — what a hand-off between two boards needs
//! (`docs/lifecycle.md`):
//!
//! - the old board is **retired above L**: consensus requests above level L are refused;
//! - the new board holds the key on **standby** (it signs nothing) until it is **activated
//!   from L + 1**: consensus requests below L + 1 are refused.
//!
//! The two windows share no level, so no host — even one talking to both boards — gets the
//! key signed twice at one level. Duties change only in provisioning mode
//! ([`super::Request::SetDuty`]).

use core::fmt;

use serde::{Deserialize, Serialize};

use crate::keys::Curve;
use crate::request::RequestKind;

/// What a key is for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// A baker's consensus key (or any key: the policy decides what it signs).
    #[default]
    Consensus,
    /// A tz4 DAL companion key: signs the same attestation bytes as the consensus key and
    /// nothing else (no blocks, no preattestations, no operations).
    Companion,
    /// A CometBFT validator key (Ed25519): signs the votes and proposals of the one CometBFT
    /// chain it is pinned to (`protocol::cometbft`) and no Tezos request.
    Cosmos,
}

impl Role {
    /// The name the CLI uses.
    pub const fn name(self) -> &'static str {
        match self {
            Role::Consensus => "consensus",
            Role::Companion => "companion",
            Role::Cosmos => "cosmos",
        }
    }
}

/// A key's duty on this board. The default is what every key had before duties existed: a
/// consensus key, active, at every level.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Duty {
    /// Role.
    pub role: Role,
    /// On standby: the board holds the key and signs nothing with it.
    pub standby: bool,
    /// Consensus requests below this level are refused (set when the key is activated for a
    /// hand-off: the old board's retirement level + 1).
    pub from_level: Option<u32>,
    /// Consensus requests above this level are refused (the key is retired here).
    pub until_level: Option<u32>,
}

/// Why a key's duty refuses a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OffDuty {
    /// The key is on standby on this board.
    Standby,
    /// A companion key signs attestations only.
    CompanionSignsAttestationsOnly,
    /// The level is below the level the key was activated from.
    BeforeActivation {
        /// Requested level.
        level: u32,
        /// First level this board signs.
        from: u32,
    },
    /// The level is above the level the key was retired at.
    AfterRetirement {
        /// Requested level.
        level: u32,
        /// Last level this board signs.
        until: u32,
    },
    /// A duty that cannot be held: a companion key that is not tz4, a Cosmos key that is not
    /// tz1, or a window with no level in it.
    Invalid,
    /// A Cosmos key signs CometBFT votes and proposals only, no Tezos request.
    CosmosSignsCometBftOnly,
    /// A CometBFT request for a key that is not a Cosmos key.
    NotCosmos,
}

impl fmt::Display for OffDuty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OffDuty::Standby => f.write_str(
                "the key is on standby on this board: it signs nothing until activated (pawl keys activate, provisioning mode)",
            ),
            OffDuty::CompanionSignsAttestationsOnly => {
                f.write_str("a companion key signs attestations only")
            }
            OffDuty::BeforeActivation { level, from } => write!(
                f,
                "level {level} is before this board's first level for the key ({from}): another board signs it"
            ),
            OffDuty::AfterRetirement { level, until } => write!(
                f,
                "level {level} is after the key was retired on this board (last level {until}): another board signs it"
            ),
            OffDuty::Invalid => f.write_str(
                "invalid duty: a companion key must be tz4, a cosmos key tz1, and the first level may not be above the last",
            ),
            OffDuty::CosmosSignsCometBftOnly => {
                f.write_str("a cosmos key signs CometBFT votes and proposals only")
            }
            OffDuty::NotCosmos => f.write_str(
                "this key is not a cosmos key: pin it to a CometBFT chain first (provisioning mode)",
            ),
        }
    }
}

impl Duty {
    /// Whether the key may sign a `kind` request; `level` is the consensus level, if any.
    pub fn check(&self, kind: RequestKind, level: Option<u32>) -> Result<(), OffDuty> {
        if self.standby {
            return Err(OffDuty::Standby);
        }
        if self.role == Role::Cosmos {
            return Err(OffDuty::CosmosSignsCometBftOnly);
        }
        if self.role == Role::Companion && kind != RequestKind::Attestation {
            return Err(OffDuty::CompanionSignsAttestationsOnly);
        }
        if let Some(level) = level {
            if let Some(from) = self.from_level
                && level < from
            {
                return Err(OffDuty::BeforeActivation { level, from });
            }
            if let Some(until) = self.until_level
                && level > until
            {
                return Err(OffDuty::AfterRetirement { level, until });
            }
        }
        Ok(())
    }

    /// Whether a key of `curve` can hold this duty.
    pub fn validate(&self, curve: Curve) -> Result<(), OffDuty> {
        if self.role == Role::Companion && curve != Curve::Bls12_381 {
            return Err(OffDuty::Invalid);
        }
        if self.role == Role::Cosmos && curve != Curve::Ed25519 {
            return Err(OffDuty::Invalid);
        }
        if let (Some(from), Some(until)) = (self.from_level, self.until_level)
            && from > until
        {
            return Err(OffDuty::Invalid);
        }
        Ok(())
    }
}
