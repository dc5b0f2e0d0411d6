//! Generic operations (`0x03 ‖ branch ‖ contents*`): walk every content to its exact end and
//! report its kind. A content pawl cannot walk is refused, never skipped.
//!
//! Layouts are the current protocols' (Seoul, Tallinn, U — `docs/protocol.md` §3.4): manager
//! operations share `source(21) · fee N · counter N · gas N · storage N`; `reveal`,
//! `update_consensus_key` and `update_companion_key` end with the Seoul proof option.

use core::fmt;

use serde::{Deserialize, Serialize};

use super::reader::Reader;
use super::{ParseError, ParsedRequest, RequestKind};

/// A ballot vote.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Ballot {
    /// `yay` (0).
    Yay,
    /// `nay` (1).
    Nay,
    /// `pass` (2).
    Pass,
}

impl Ballot {
    /// Every vote.
    pub const ALL: [Ballot; 3] = [Ballot::Yay, Ballot::Nay, Ballot::Pass];

    /// Name as Octez spells it.
    pub const fn name(self) -> &'static str {
        match self {
            Ballot::Yay => "yay",
            Ballot::Nay => "nay",
            Ballot::Pass => "pass",
        }
    }

    /// Parse a name.
    pub fn from_name(name: &str) -> Option<Ballot> {
        Ballot::ALL.into_iter().find(|b| b.name() == name)
    }
}

macro_rules! op_kinds {
    ($( $(#[$doc:meta])* $variant:ident = $index:literal, $name:literal; )*) => {
        /// An operation kind pawl can decode, with the name policies use (Octez's kind names,
        /// plus Signatory's staking pseudo-kinds for transactions to the staking entrypoints).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum OpKind {
            $( $(#[$doc])* $variant = $index, )*
        }

        impl OpKind {
            /// Every kind.
            pub const ALL: &'static [OpKind] = &[ $( OpKind::$variant, )* ];

            /// The policy name.
            pub const fn name(self) -> &'static str {
                match self { $( OpKind::$variant => $name, )* }
            }
        }
    };
}

op_kinds! {
    /// `reveal` (tag 107).
    Reveal = 0, "reveal";
    /// `transaction` (tag 108) to any entrypoint but the staking ones.
    Transaction = 1, "transaction";
    /// `origination` (tag 109).
    Origination = 2, "origination";
    /// `delegation` (tag 110).
    Delegation = 3, "delegation";
    /// `register_global_constant` (tag 111).
    RegisterGlobalConstant = 4, "register_global_constant";
    /// `set_deposits_limit` (tag 112).
    SetDepositsLimit = 5, "set_deposits_limit";
    /// `increase_paid_storage` (tag 113).
    IncreasePaidStorage = 6, "increase_paid_storage";
    /// `update_consensus_key` (tag 114).
    UpdateConsensusKey = 7, "update_consensus_key";
    /// `update_companion_key` (tag 115).
    UpdateCompanionKey = 8, "update_companion_key";
    /// `seed_nonce_revelation` (tag 1).
    SeedNonceRevelation = 9, "seed_nonce_revelation";
    /// `activate_account` (tag 4).
    ActivateAccount = 10, "activate_account";
    /// `proposals` (tag 5).
    Proposals = 11, "proposals";
    /// `ballot` (tag 6).
    Ballot = 12, "ballot";
    /// `vdf_revelation` (tag 8).
    VdfRevelation = 13, "vdf_revelation";
    /// `drain_delegate` (tag 9).
    DrainDelegate = 14, "drain_delegate";
    /// `failing_noop` (tag 17).
    FailingNoop = 15, "failing_noop";
    /// Transaction to the `stake` entrypoint.
    Stake = 16, "stake";
    /// Transaction to the `unstake` entrypoint.
    Unstake = 17, "unstake";
    /// Transaction to the `finalize_unstake` entrypoint.
    FinalizeUnstake = 18, "finalize_unstake";
    /// Transaction to the `set_delegate_parameters` entrypoint.
    SetDelegateParameters = 19, "set_delegate_parameters";
}

impl OpKind {
    /// Parse a policy name.
    pub fn from_name(name: &str) -> Option<OpKind> {
        OpKind::ALL.iter().copied().find(|k| k.name() == name)
    }

    const fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

impl fmt::Display for OpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of [`OpKind`]s.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpKindSet(u32);

impl OpKindSet {
    /// No kind.
    pub const EMPTY: OpKindSet = OpKindSet(0);

    /// Whether `kind` is in the set.
    pub const fn contains(self, kind: OpKind) -> bool {
        self.0 & kind.bit() != 0
    }

    /// The set with `kind` added.
    #[must_use]
    pub const fn with(self, kind: OpKind) -> OpKindSet {
        OpKindSet(self.0 | kind.bit())
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The kinds in the set.
    pub fn iter(self) -> impl Iterator<Item = OpKind> {
        OpKind::ALL
            .iter()
            .copied()
            .filter(move |k| self.contains(*k))
    }
}

/// Most contents pawl walks in one batch (the protocol's own limit is the 32 KiB size).
const MAX_CONTENTS: u16 = 1000;

pub(super) fn generic(bytes: &[u8]) -> Result<ParsedRequest, ParseError> {
    let mut r = Reader::new(bytes);
    r.u8()?; // magic
    r.take(32)?; // branch
    let mut kinds = OpKindSet::EMPTY;
    let mut count: u16 = 0;
    let mut ballot = None;
    let mut single_tag = None;
    while !r.is_empty() {
        let at = r.pos();
        let tag = r.u8()?;
        if let Some(t) = single_tag {
            return Err(ParseError::NonManagerInBatch { tag: t });
        }
        let kind = match tag {
            107..=115 => manager(&mut r, tag)?,
            _ => {
                if count > 0 {
                    return Err(ParseError::NonManagerInBatch { tag });
                }
                single_tag = Some(tag);
                let (kind, vote) = single(&mut r, tag, at)?;
                ballot = vote;
                kind
            }
        };
        kinds = kinds.with(kind);
        count += 1;
        if count > MAX_CONTENTS {
            return Err(ParseError::TooManyOperations);
        }
    }
    if count == 0 {
        return Err(ParseError::NoContents);
    }
    Ok(ParsedRequest {
        kind: RequestKind::Generic,
        consensus: None,
        op_kinds: kinds,
        op_count: count,
        ballot,
    })
}

/// A non-manager operation, which must be alone.
fn single(r: &mut Reader<'_>, tag: u8, at: usize) -> Result<(OpKind, Option<Ballot>), ParseError> {
    let kind = match tag {
        1 => {
            r.take(4 + 32)?; // level, nonce
            OpKind::SeedNonceRevelation
        }
        4 => {
            r.take(20 + 20)?; // ed25519 pkh, secret
            OpKind::ActivateAccount
        }
        5 => {
            pkh(r)?;
            r.take(4)?; // period
            let list = r.dynamic()?;
            if list.len() % 32 != 0 {
                return Err(ParseError::Truncated { offset: r.pos() });
            }
            OpKind::Proposals
        }
        6 => {
            pkh(r)?;
            r.take(4 + 32)?; // period, proposal
            let vat = r.pos();
            let vote = match r.u8()? {
                0 => Ballot::Yay,
                1 => Ballot::Nay,
                2 => Ballot::Pass,
                value => return Err(ParseError::BadTag { offset: vat, value }),
            };
            return Ok((OpKind::Ballot, Some(vote)));
        }
        8 => {
            r.take(200)?; // two 100-byte class-group elements
            OpKind::VdfRevelation
        }
        9 => {
            pkh(r)?; // consensus key
            pkh(r)?; // delegate
            pkh(r)?; // destination
            OpKind::DrainDelegate
        }
        17 => {
            r.dynamic()?;
            OpKind::FailingNoop
        }
        _ => return Err(ParseError::UnsupportedOperation { tag, offset: at }),
    };
    Ok((kind, None))
}

/// A manager operation: the common header, then the kind's own fields.
fn manager(r: &mut Reader<'_>, tag: u8) -> Result<OpKind, ParseError> {
    pkh(r)?; // source
    r.zarith()?; // fee
    r.zarith()?; // counter
    r.zarith()?; // gas_limit
    r.zarith()?; // storage_limit
    Ok(match tag {
        107 => {
            public_key(r)?;
            proof(r)?;
            OpKind::Reveal
        }
        108 => {
            r.zarith()?; // amount
            contract(r)?; // destination
            if r.option()? {
                let kind = entrypoint(r)?;
                r.dynamic()?; // Micheline parameters
                kind
            } else {
                OpKind::Transaction
            }
        }
        109 => {
            r.zarith()?; // balance
            if r.option()? {
                pkh(r)?; // delegate
            }
            r.dynamic()?; // code
            r.dynamic()?; // storage
            OpKind::Origination
        }
        110 => {
            if r.option()? {
                pkh(r)?;
            }
            OpKind::Delegation
        }
        111 => {
            r.dynamic()?;
            OpKind::RegisterGlobalConstant
        }
        112 => {
            if r.option()? {
                r.zarith()?;
            }
            OpKind::SetDepositsLimit
        }
        113 => {
            r.zarith()?; // amount (Z)
            originated(r)?;
            OpKind::IncreasePaidStorage
        }
        114 => {
            public_key(r)?;
            proof(r)?;
            OpKind::UpdateConsensusKey
        }
        // 115: update_companion_key; the match in `generic` only sends 107..=115 here.
        _ => {
            public_key(r)?;
            proof(r)?;
            OpKind::UpdateCompanionKey
        }
    })
}

/// `public_key_hash`: curve tag (0–4) ‖ 20 bytes.
fn pkh(r: &mut Reader<'_>) -> Result<(), ParseError> {
    let at = r.pos();
    let tag = r.u8()?;
    if tag > 4 {
        return Err(ParseError::BadTag {
            offset: at,
            value: tag,
        });
    }
    r.take(20)?;
    Ok(())
}

/// `public_key`: curve tag ‖ key of that curve's length.
fn public_key(r: &mut Reader<'_>) -> Result<(), ParseError> {
    let at = r.pos();
    let len = match r.u8()? {
        0 => 32,
        1 | 2 => 33,
        3 => 48,
        4 => 1312,
        value => return Err(ParseError::BadTag { offset: at, value }),
    };
    r.take(len)?;
    Ok(())
}

/// Seoul+ proof option: absent, or a dynamically sized signature.
fn proof(r: &mut Reader<'_>) -> Result<(), ParseError> {
    if r.option()? {
        r.dynamic()?;
    }
    Ok(())
}

/// A contract id, 22 bytes: `0x00 ‖ pkh` or `0x01 ‖ KT1 hash(20) ‖ 0x00`.
fn contract(r: &mut Reader<'_>) -> Result<(), ParseError> {
    let at = r.pos();
    match r.u8()? {
        0 => pkh(r),
        1 => {
            r.take(20)?;
            padding(r)
        }
        value => Err(ParseError::BadTag { offset: at, value }),
    }
}

/// An originated-only contract id: `0x01 ‖ hash(20) ‖ 0x00`.
fn originated(r: &mut Reader<'_>) -> Result<(), ParseError> {
    let at = r.pos();
    match r.u8()? {
        1 => {
            r.take(20)?;
            padding(r)
        }
        value => Err(ParseError::BadTag { offset: at, value }),
    }
}

fn padding(r: &mut Reader<'_>) -> Result<(), ParseError> {
    let at = r.pos();
    match r.u8()? {
        0 => Ok(()),
        value => Err(ParseError::BadTag { offset: at, value }),
    }
}

/// Entrypoint (`entrypoint_repr.ml: smart_encoding`), classified into the staking pseudo-kinds.
fn entrypoint(r: &mut Reader<'_>) -> Result<OpKind, ParseError> {
    let at = r.pos();
    Ok(match r.u8()? {
        0..=5 => OpKind::Transaction,
        6 => OpKind::Stake,
        7 => OpKind::Unstake,
        8 => OpKind::FinalizeUnstake,
        9 => OpKind::SetDelegateParameters,
        255 => {
            let lat = r.pos();
            let len = r.u8()?;
            if len > 31 {
                return Err(ParseError::BadTag {
                    offset: lat,
                    value: len,
                });
            }
            r.take(usize::from(len))?;
            // A named entrypoint stays a plain transaction even if it spells a staking name:
            // the stricter classification.
            OpKind::Transaction
        }
        value => return Err(ParseError::BadTag { offset: at, value }),
    })
}
