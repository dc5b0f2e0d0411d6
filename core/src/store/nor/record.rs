//! The records of the flash store: map keys, field layouts, MACs and sealed keys (the table in
//! the parent module's documentation). Pure encoding: nothing here touches the flash.

use subtle::ConstantTimeEq;

use super::super::resets::FORGET_TABLE_FIELDS;
use super::super::seal::{MAC_LEN, SEAL_OVERHEAD, SealKeys};
use super::super::{StoreError, StoredKey};
use crate::keys::PublicKeyHash;
use crate::protocol::MAX_KEYS;
use crate::request::ChainId;
use crate::watermark::{MarkId, MarkKind};

pub(super) const TAG_META: u8 = 0;
/// `TAG_META` indices.
pub(super) const META_REPROVISION: u8 = 0;
pub(super) const META_FORMAT: u8 = 1;

/// The stored layout this firmware writes (see "Format version" above).
pub const FORMAT_VERSION: u16 = 2;
pub(super) const TAG_KEY: u8 = 1;
pub(super) const TAG_NAME: u8 = 2;
pub(super) const TAG_CEILING: u8 = 3;
pub(super) const TAG_FORGET: u8 = 4;
pub(super) const TAG_LOWER: u8 = 5;
pub(super) const TAG_FORGET_TABLE: u8 = 6;
/// Filler that closes a nearly full page in idle time (format 2; carries nothing).
pub(super) const TAG_PAD: u8 = 7;

/// Largest sealed key plaintext (postcard of [`StoredKey`]).
pub(super) const KEY_PLAINTEXT: usize = 160;
/// Longest fields of a MAC'd record: the forget table.
pub(super) const MAX_FIELDS: usize = FORGET_TABLE_FIELDS;
/// Data buffer for the map: key + the largest value, word-aligned with room to spare.
pub(super) const BUF: usize = max(
    2 + 4 + SEAL_OVERHEAD + KEY_PLAINTEXT + 16,
    2 + 4 + MAX_FIELDS + MAC_LEN + 16,
);

pub(super) const fn max(a: usize, b: usize) -> usize {
    if a > b { a } else { b }
}

pub(super) const fn map_key(tag: u8, index: u8) -> u16 {
    u16::from_be_bytes([tag, index])
}

pub(super) fn flash_error<E>(e: sequential_storage::Error<E>) -> StoreError {
    match e {
        sequential_storage::Error::Storage { .. } => StoreError::Io,
        sequential_storage::Error::FullStorage | sequential_storage::Error::ItemTooBig => {
            StoreError::Full
        }
        _ => StoreError::Corrupted,
    }
}

pub(super) fn seq_of(value: &[u8]) -> Result<u32, StoreError> {
    let bytes = value.get(..4).ok_or(StoreError::Corrupted)?;
    let mut seq = [0u8; 4];
    seq.copy_from_slice(bytes);
    Ok(u32::from_le_bytes(seq))
}

pub(super) fn kind_byte(kind: MarkKind) -> u8 {
    match kind {
        MarkKind::Block => 0,
        MarkKind::Preattestation => 1,
        MarkKind::Attestation => 2,
        MarkKind::CometBft => 3,
    }
}

pub(super) fn kind_of(byte: u8) -> Option<MarkKind> {
    match byte {
        0 => Some(MarkKind::Block),
        1 => Some(MarkKind::Preattestation),
        2 => Some(MarkKind::Attestation),
        3 => Some(MarkKind::CometBft),
        _ => None,
    }
}

pub(super) fn mac_fields(seal: &SealKeys, key: u16, seq: u32, fields: &[u8]) -> [u8; MAC_LEN] {
    let mut input = [0u8; 2 + 4 + MAX_FIELDS];
    let len = 6 + fields.len();
    input[..2].copy_from_slice(&key.to_le_bytes());
    input[2..6].copy_from_slice(&seq.to_le_bytes());
    input[6..len].copy_from_slice(fields);
    seal.mark_mac(&input[..len])
}

/// Check a MAC'd record's value (`seq ‖ fields ‖ MAC`); returns the fields.
pub(super) fn verified<'v>(
    seal: &SealKeys,
    key: u16,
    value: &'v [u8],
) -> Result<&'v [u8], StoreError> {
    let seq = seq_of(value)?;
    let body = &value[4..];
    let split = body
        .len()
        .checked_sub(MAC_LEN)
        .ok_or(StoreError::Corrupted)?;
    let (fields, mac) = body.split_at(split);
    if fields.len() > MAX_FIELDS {
        return Err(StoreError::Corrupted);
    }
    let expected = mac_fields(seal, key, seq, fields);
    if bool::from(expected.ct_eq(mac)) {
        Ok(fields)
    } else {
        Err(StoreError::Corrupted)
    }
}

/// Open a sealed key record's value (`seq ‖ seal`): the key, or `None` for a removed key (the
/// seal of an empty plaintext, as authenticated as any key).
pub(super) fn open_key(
    seal: &SealKeys,
    key: u16,
    value: &mut [u8],
) -> Result<Option<StoredKey>, StoreError> {
    let [_, slot] = key.to_be_bytes();
    if usize::from(slot) >= MAX_KEYS {
        return Err(StoreError::Corrupted);
    }
    let seq = seq_of(value)?;
    let plain = seal.open(&key_aad(key, seq), &mut value[4..])?;
    if plain.is_empty() {
        return Ok(None);
    }
    StoredKey::decode(plain).map(Some)
}

pub(super) fn key_aad(key: u16, seq: u32) -> [u8; 14] {
    let mut aad = [0u8; 14];
    aad[..8].copy_from_slice(b"pawl-key");
    aad[8..10].copy_from_slice(&key.to_le_bytes());
    aad[10..].copy_from_slice(&seq.to_le_bytes());
    aad
}

pub(super) fn name_fields(id: &MarkId) -> [u8; 26] {
    let mut out = [0u8; 26];
    out[..4].copy_from_slice(&id.chain.0);
    out[4..25].copy_from_slice(&id.key.to_bytes());
    out[25] = kind_byte(id.kind);
    out
}

pub(super) fn name_of(fields: &[u8]) -> Option<MarkId> {
    if fields.len() != 26 {
        return None;
    }
    let mut chain = [0u8; 4];
    chain.copy_from_slice(&fields[..4]);
    Some(MarkId {
        chain: ChainId(chain),
        key: PublicKeyHash::from_bytes(&fields[4..25])?,
        kind: kind_of(fields[25])?,
    })
}

/// Bytes of a ceiling record's fields: level, round, the budget note (u16).
pub(super) const CEILING_FIELDS: usize = 10;

/// A ceiling record's (level, round) and budget note: 10 bytes, the last two the note (zero
/// in records written before it), or 8 (records written before the padding: note 0).
pub(super) fn ceiling_of(fields: &[u8]) -> Option<((u32, u32), u16)> {
    let note = match fields.len() {
        8 => 0,
        CEILING_FIELDS => u16::from_le_bytes([fields[8], fields[9]]),
        _ => return None,
    };
    Some((position_of(fields.get(..8)?)?, note))
}

/// A position's (level, round): 10 bytes ending in two zeros, or 8 (records written before the
/// padding).
pub(super) fn position_of(fields: &[u8]) -> Option<(u32, u32)> {
    match fields.len() {
        8 => {}
        CEILING_FIELDS if fields[8..] == [0, 0] => {}
        _ => return None,
    }
    let mut level = [0u8; 4];
    let mut round = [0u8; 4];
    level.copy_from_slice(&fields[..4]);
    round.copy_from_slice(&fields[4..8]);
    Some((u32::from_le_bytes(level), u32::from_le_bytes(round)))
}
