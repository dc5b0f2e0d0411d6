//! Sealing and authenticating records under the board key.
//!
//! Three keys are derived from the 32-byte board key with keyed BLAKE2b-256, each with its own
//! personalisation string, so no key is used for two purposes:
//!
//! | key | use |
//! |---|---|
//! | `seal` | XChaCha20-Poly1305 key for secret keys at rest |
//! | `nonce` | derives each seal's 24-byte nonce from the record (synthetic nonce, as in SIV) |
//! | `mark` | MAC over every mark and ceiling record (keyed BLAKE2b-256, first 8 bytes) |
//!
//! The nonce is a keyed hash of the associated data and the plaintext, so two seals share a
//! nonce only if they seal the same bytes for the same record: no entropy source is needed
//! and a repeated record number (after a rollback) cannot reuse a nonce with new data.

use blake2::Blake2bMac;
use blake2::digest::Mac;
use blake2::digest::consts::U32;
use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::StoreError;

/// Bytes a seal adds to its plaintext: nonce and tag.
pub(crate) const SEAL_OVERHEAD: usize = 24 + 16;

/// Length of a record MAC.
pub(crate) const MAC_LEN: usize = 8;

/// The three working keys, derived once from the board key.
#[derive(Zeroize, ZeroizeOnDrop)]
pub(crate) struct SealKeys {
    seal: [u8; 32],
    nonce: [u8; 32],
    mark: [u8; 32],
}

fn derive(board_key: &[u8; 32], persona: &[u8]) -> [u8; 32] {
    // A 32-byte key and a persona of at most 16 bytes are always accepted by BLAKE2b.
    let mut mac = match Blake2bMac::<U32>::new_with_salt_and_personal(Some(board_key), b"", persona)
    {
        Ok(mac) => mac,
        Err(_) => unreachable_length(),
    };
    mac.update(b"pawl board key v1");
    mac.finalize().into_bytes().into()
}

#[cold]
fn unreachable_length() -> ! {
    // Only reachable if the fixed lengths above were edited to invalid values.
    panic!("BLAKE2b key or personalisation length out of range")
}

/// Keyed BLAKE2b-256 over the concatenation of `parts`.
fn keyed(key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = match Blake2bMac::<U32>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable_length(),
    };
    for part in parts {
        Mac::update(&mut mac, part);
    }
    mac.finalize().into_bytes().into()
}

impl SealKeys {
    /// Derive the working keys from the board key.
    pub(crate) fn new(board_key: &[u8; 32]) -> Self {
        SealKeys {
            seal: derive(board_key, b"pawl-seal"),
            nonce: derive(board_key, b"pawl-seal-nonce"),
            mark: derive(board_key, b"pawl-mark"),
        }
    }

    /// Seal `buf[SEAL_OVERHEAD..SEAL_OVERHEAD + len]` in place, bound to `aad`; the nonce and
    /// tag are written in front. Returns the sealed length.
    pub(crate) fn seal(&self, aad: &[u8], buf: &mut [u8], len: usize) -> Result<usize, StoreError> {
        let total = SEAL_OVERHEAD + len;
        let (head, body) = buf
            .get_mut(..total)
            .ok_or(StoreError::Full)?
            .split_at_mut(SEAL_OVERHEAD);
        let mut nonce_bytes = [0u8; 24];
        nonce_bytes.copy_from_slice(&keyed(&self.nonce, &[aad, body])[..24]);
        let nonce = XNonce::from(nonce_bytes);
        let cipher = XChaCha20Poly1305::new(&self.seal.into());
        let tag = cipher
            .encrypt_inout_detached(&nonce, aad, body.into())
            .map_err(|_| StoreError::Io)?;
        head[..24].copy_from_slice(&nonce);
        head[24..].copy_from_slice(&tag);
        Ok(total)
    }

    /// Open a sealed record in place; returns the plaintext. A record that does not
    /// authenticate is [`StoreError::Corrupted`].
    pub(crate) fn open<'b>(
        &self,
        aad: &[u8],
        sealed: &'b mut [u8],
    ) -> Result<&'b [u8], StoreError> {
        if sealed.len() < SEAL_OVERHEAD {
            return Err(StoreError::Corrupted);
        }
        let (head, body) = sealed.split_at_mut(SEAL_OVERHEAD);
        let mut nonce = [0u8; 24];
        nonce.copy_from_slice(&head[..24]);
        let mut tag = [0u8; 16];
        tag.copy_from_slice(&head[24..]);
        let cipher = XChaCha20Poly1305::new(&self.seal.into());
        cipher
            .decrypt_inout_detached(&XNonce::from(nonce), aad, body.into(), &Tag::from(tag))
            .map_err(|_| StoreError::Corrupted)?;
        Ok(body)
    }

    /// MAC over a mark record.
    pub(crate) fn mark_mac(&self, record: &[u8]) -> [u8; MAC_LEN] {
        let mut mac = [0u8; MAC_LEN];
        mac.copy_from_slice(&keyed(&self.mark, &[record])[..MAC_LEN]);
        mac
    }
}
