//! Recoverable board keys: at generation, and only then, the board seals the new secret to the
//! operator's **age** X25519 recipient (`age1…`), so the key can be restored on another board
//! after this one dies. The board never exports a secret again; the file it returns is
//! readable only with the operator's age identity, offline (`age -d -i identity FILE`).
//!
//! The file is the age v1 format (`docs/backup.md` gives the layout in our words, with where
//! it comes from), one X25519 recipient stanza, one payload chunk:
//!
//! ```text
//! age-encryption.org/v1
//! -> X25519 <ephemeral share, base64>
//! <ChaCha20-Poly1305(wrap key, file key), base64>
//! --- <HMAC-SHA-256(header key, header through "---"), base64>
//! <16-byte nonce><ChaCha20-Poly1305(payload key, nonce 0…0 ‖ 01, plaintext)>
//! ```
//!
//! The plaintext is the secret in the Tezos text form (`edsk…`/`spsk…`/`p2sk…`/`BLsk…`) and a
//! newline, so the decrypted file pipes straight into `pawl keys import`.

use base64ct::{Base64Unpadded, Encoding as _};
use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use curve25519_dalek::montgomery::MontgomeryPoint;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

use crate::encoding;
use crate::keys::{Curve, Entropy, KeyError, SecretBytes};

/// Largest sealed file: the header (~190 bytes) and the payload (16-byte nonce, a secret text
/// of at most [`encoding::MAX_TEXT`] bytes and a newline, a 16-byte tag).
pub const MAX_BACKUP: usize = 400;

/// A sealed secret, as the board hands it out once.
pub type Sealed = heapless::Vec<u8, MAX_BACKUP>;

const VERSION_LINE: &[u8] = b"age-encryption.org/v1\n";
const STANZA_INFO: &[u8] = b"age-encryption.org/v1/X25519";

/// Seal `secret` (of `curve`) to the X25519 `recipient` (the 32 bytes inside `age1…`).
///
/// Refuses a recipient whose shared secret is all zeros (a low-order point: age identities
/// reject such files, so the operator would hold a backup nobody can open).
pub fn seal(
    curve: Curve,
    secret: &SecretBytes,
    recipient: &[u8; 32],
    entropy: &mut dyn Entropy,
) -> Result<Sealed, KeyError> {
    let mut file_key = Zeroizing::new([0u8; 16]);
    let mut ephemeral = Zeroizing::new([0u8; 32]);
    let mut nonce = [0u8; 16];
    entropy.fill(file_key.as_mut())?;
    entropy.fill(ephemeral.as_mut())?;
    entropy.fill(&mut nonce)?;

    // The recipient stanza: X25519 with a fresh ephemeral secret, HKDF, ChaCha20-Poly1305.
    let share = MontgomeryPoint::mul_base_clamped(*ephemeral).to_bytes();
    let shared = Zeroizing::new(
        MontgomeryPoint(*recipient)
            .mul_clamped(*ephemeral)
            .to_bytes(),
    );
    if shared.iter().all(|b| *b == 0) {
        return Err(KeyError::InvalidPublicKey);
    }
    let mut salt = [0u8; 64];
    salt[..32].copy_from_slice(&share);
    salt[32..].copy_from_slice(recipient);
    let wrap_key = hkdf32(&salt, shared.as_ref(), STANZA_INFO);
    let mut wrapped = [0u8; 32];
    wrapped[..16].copy_from_slice(file_key.as_ref());
    let tag = ChaCha20Poly1305::new(&(*wrap_key).into())
        .encrypt_inout_detached(&Nonce::from([0u8; 12]), b"", (&mut wrapped[..16]).into())
        .map_err(|_| KeyError::EntropyFailed)?;
    wrapped[16..].copy_from_slice(&tag);

    let mut out = Sealed::new();
    push(&mut out, VERSION_LINE)?;
    push(&mut out, b"-> X25519 ")?;
    push_b64(&mut out, &share)?;
    push(&mut out, b"\n")?;
    // 32 bytes are 43 base64 characters: one final line, shorter than 64.
    push_b64(&mut out, &wrapped)?;
    push(&mut out, b"\n---")?;
    let header_key = hkdf32(&[], file_key.as_ref(), b"header");
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(header_key.as_ref())
        .map_err(|_| KeyError::EntropyFailed)?;
    mac.update(&out);
    let header_mac = mac.finalize().into_bytes();
    push(&mut out, b" ")?;
    push_b64(&mut out, &header_mac)?;
    push(&mut out, b"\n")?;

    // The payload: one final chunk under a key derived from the file key and the nonce.
    push(&mut out, &nonce)?;
    let payload_key = hkdf32(&nonce, file_key.as_ref(), b"payload");
    let mut text = Zeroizing::new([0u8; encoding::MAX_TEXT + 1]);
    let len = secret_text(curve, secret, text.as_mut())?;
    text[len] = b'\n';
    let start = out.len();
    push(&mut out, &text[..=len])?;
    let mut chunk_nonce = [0u8; 12];
    chunk_nonce[11] = 0x01;
    let chunk_nonce = Nonce::from(chunk_nonce);
    let tag = ChaCha20Poly1305::new(&(*payload_key).into())
        .encrypt_inout_detached(&chunk_nonce, b"", (&mut out[start..]).into())
        .map_err(|_| KeyError::EntropyFailed)?;
    push(&mut out, &tag)?;
    Ok(out)
}

/// HKDF-SHA-256 with 32 bytes of output.
fn hkdf32(salt: &[u8], ikm: &[u8], info: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut okm = Zeroizing::new([0u8; 32]);
    // 32 bytes is far below HKDF-SHA-256's limit (255 × 32), so expand cannot fail.
    let _ = Hkdf::<Sha256>::new(Some(salt), ikm).expand(info, okm.as_mut());
    okm
}

/// The secret's Tezos text (base58check of prefix ‖ secret) into `out`, returning its
/// length; every intermediate copy is wiped.
fn secret_text(curve: Curve, secret: &SecretBytes, out: &mut [u8]) -> Result<usize, KeyError> {
    let prefix = curve.sk_prefix().bytes();
    let mut raw = Zeroizing::new([0u8; 64]);
    let total = prefix.len() + 32;
    let dest = raw.get_mut(..total).ok_or(KeyError::InvalidSecret)?;
    dest[..prefix.len()].copy_from_slice(prefix);
    dest[prefix.len()..].copy_from_slice(secret.expose());
    bs58::encode(&raw[..total])
        .with_check()
        .onto(out)
        .map_err(|_| KeyError::InvalidSecret)
}

fn push(out: &mut Sealed, bytes: &[u8]) -> Result<(), KeyError> {
    out.extend_from_slice(bytes)
        .map_err(|_| KeyError::InvalidSecret)
}

fn push_b64(out: &mut Sealed, bytes: &[u8]) -> Result<(), KeyError> {
    let mut buf = [0u8; 64];
    let text = Base64Unpadded::encode(bytes, &mut buf).map_err(|_| KeyError::InvalidSecret)?;
    let result = push(out, text.as_bytes());
    buf.zeroize();
    result
}
