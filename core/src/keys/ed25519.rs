//! Ed25519 (tz1): plain Ed25519 over the 32-byte BLAKE2b-256 digest of the request.

use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};

use super::{KeyError, PublicKey, Signature};
use crate::digest::blake2b_256;

pub(super) fn from_seed(seed: &[u8; 32]) -> (SigningKey, PublicKey) {
    let key = SigningKey::from_bytes(seed);
    let public = PublicKey::Ed25519(key.verifying_key().to_bytes());
    (key, public)
}

pub(super) fn sign(key: &SigningKey, message: &[u8]) -> Signature {
    let digest = blake2b_256(message);
    Signature::Ed25519(key.sign(&digest).to_bytes())
}

/// Plain Ed25519 over `message` itself (CometBFT signs its sign bytes as they are).
pub(super) fn sign_plain(key: &SigningKey, message: &[u8]) -> Signature {
    Signature::Ed25519(key.sign(message).to_bytes())
}

pub(super) fn verify(pk: &[u8; 32], message: &[u8], sig: &[u8; 64]) -> Result<(), KeyError> {
    let vk = VerifyingKey::from_bytes(pk).map_err(|_| KeyError::InvalidPublicKey)?;
    let sig = ed25519_dalek::Signature::from_bytes(sig);
    vk.verify(&blake2b_256(message), &sig)
        .map_err(|_| KeyError::BadSignature)
}

/// Check a signature made elsewhere (a PKCS#11 token's `CKM_EDDSA`) over the 32-byte BLAKE2b-256
/// `digest` that [`verify`] computes from the message: the digest is the Ed25519 message.
pub(super) fn verify_digest(
    pk: &[u8; 32],
    digest: &[u8; 32],
    sig: &[u8; 64],
) -> Result<(), KeyError> {
    let vk = VerifyingKey::from_bytes(pk).map_err(|_| KeyError::InvalidPublicKey)?;
    let sig = ed25519_dalek::Signature::from_bytes(sig);
    vk.verify(digest, &sig).map_err(|_| KeyError::BadSignature)
}

pub(super) fn validate(pk: &[u8; 32]) -> Result<(), KeyError> {
    VerifyingKey::from_bytes(pk)
        .map(|_| ())
        .map_err(|_| KeyError::InvalidPublicKey)
}
