//! Blocks (`0x11`) and (pre)attestations (`0x12`/`0x13`): fixed offsets, as Octez reads them,
//! and walked to their exact end so that no trailing byte goes unnoticed.

use super::reader::Reader;
use super::{ChainId, Consensus, ConsensusForm, OpKindSet, ParseError, ParsedRequest, RequestKind};
use super::{MAGIC_ATTESTATION, MAGIC_PREATTESTATION};

/// Read a non-negative int32 level or round.
fn level_or_round(r: &mut Reader<'_>) -> Result<u32, ParseError> {
    let at = r.pos();
    u32::try_from(r.i32()?).map_err(|_| ParseError::NegativeLevelOrRound { offset: at })
}

fn consensus(
    kind: RequestKind,
    chain_id: [u8; 4],
    level: u32,
    round: u32,
    form: ConsensusForm,
) -> ParsedRequest {
    ParsedRequest {
        kind,
        consensus: Some(Consensus {
            chain_id: ChainId(chain_id),
            level,
            round,
            form,
        }),
        op_kinds: OpKindSet::EMPTY,
        op_count: 0,
        ballot: None,
    }
}

/// `0x11 ‖ chain_id ‖ shell header ‖ protocol data` (`docs/protocol.md` §3.1).
pub(super) fn block(bytes: &[u8]) -> Result<ParsedRequest, ParseError> {
    let mut r = Reader::new(bytes);
    r.u8()?; // magic
    let chain_id = r.array::<4>()?;
    let level = level_or_round(&mut r)?; // @5
    r.u8()?; // proto_level
    r.take(32)?; // predecessor
    r.take(8)?; // timestamp
    r.u8()?; // validation_passes
    r.take(32)?; // operations_hash
    // @83: fitness, a list of `uint32 len ‖ bytes` elements; the round is the last one.
    let fitness_len = r.u32()?;
    let fitness =
        r.take(usize::try_from(fitness_len).map_err(|_| ParseError::Truncated { offset: 83 })?)?;
    let round = last_fitness_round(fitness).ok_or(ParseError::BadFitness {
        length: fitness_len,
    })?;
    let round = u32::try_from(round).map_err(|_| ParseError::NegativeLevelOrRound {
        offset: 83 + fitness.len(),
    })?;
    r.take(32)?; // context
    r.take(32)?; // payload_hash
    r.i32()?; // payload_round
    r.take(8)?; // proof_of_work_nonce
    if r.option()? {
        r.take(32)?; // seed_nonce_hash
    }
    r.u8()?; // per_block_votes
    r.finish()?;
    Ok(consensus(
        RequestKind::Block,
        chain_id,
        level,
        round,
        ConsensusForm::Block,
    ))
}

/// Walk the fitness elements; the last one must be a 4-byte round (Octez reads it at `83 + F`).
fn last_fitness_round(fitness: &[u8]) -> Option<i32> {
    let mut r = Reader::new(fitness);
    let mut last = None;
    while !r.is_empty() {
        last = Some(r.dynamic().ok()?);
    }
    let last: [u8; 4] = last?.try_into().ok()?;
    Some(i32::from_be_bytes(last))
}

/// `magic ‖ chain_id ‖ branch ‖ tag ‖ …` (`docs/protocol.md` §3.2, §3.3).
pub(super) fn attestation(bytes: &[u8]) -> Result<ParsedRequest, ParseError> {
    let mut r = Reader::new(bytes);
    let magic = r.u8()?;
    let chain_id = r.array::<4>()?;
    r.take(32)?; // branch
    let tag = r.u8()?; // @37
    let kind = if magic == MAGIC_PREATTESTATION {
        RequestKind::Preattestation
    } else {
        RequestKind::Attestation
    };
    let form = match (magic, tag) {
        (MAGIC_PREATTESTATION, 20) | (MAGIC_ATTESTATION, 21 | 23) => {
            r.u16()?; // slot
            ConsensusForm::WithSlot
        }
        (MAGIC_PREATTESTATION, 40) | (MAGIC_ATTESTATION, 41) => ConsensusForm::BlsMode,
        _ => return Err(ParseError::UnknownConsensusTag { magic, tag }),
    };
    let level = level_or_round(&mut r)?; // @40, or @38 in BLS mode
    let round = level_or_round(&mut r)?; // @44, or @42
    r.take(32)?; // block_payload_hash
    if tag == 23 {
        r.zarith()?; // DAL attestation bitset
    }
    r.finish()?;
    Ok(consensus(kind, chain_id, level, round, form))
}
