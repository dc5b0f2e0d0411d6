//! ECDSA keys: secp256k1 (tz2) and P-256 (tz3), over the BLAKE2b-256 digest used directly as the
//! 32-byte message hash. Nonces are RFC 6979 (deterministic). secp256k1 signatures are always
//! normalised to low-S, because Octez verifies with libsecp256k1, which rejects high-S.

use k256::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};

use super::{KeyError, PublicKey, Signature};
use crate::digest::blake2b_256;

pub(super) fn secp256k1_from_bytes(
    bytes: &[u8; 32],
) -> Result<(k256::ecdsa::SigningKey, PublicKey), KeyError> {
    let key = k256::ecdsa::SigningKey::from_slice(bytes).map_err(|_| KeyError::InvalidSecret)?;
    let point = key.verifying_key().to_sec1_point(true);
    let public = PublicKey::from_curve_bytes(super::Curve::Secp256k1, point.as_bytes())?;
    Ok((key, public))
}

pub(super) fn p256_from_bytes(
    bytes: &[u8; 32],
) -> Result<(p256::ecdsa::SigningKey, PublicKey), KeyError> {
    let key = p256::ecdsa::SigningKey::from_slice(bytes).map_err(|_| KeyError::InvalidSecret)?;
    let point = key.verifying_key().to_sec1_point(true);
    let public = PublicKey::from_curve_bytes(super::Curve::P256, point.as_bytes())?;
    Ok((key, public))
}

fn to_array(bytes: &[u8]) -> Result<[u8; 64], KeyError> {
    bytes.try_into().map_err(|_| KeyError::BadSignature)
}

pub(super) fn secp256k1_sign(
    key: &k256::ecdsa::SigningKey,
    message: &[u8],
) -> Result<Signature, KeyError> {
    let digest = blake2b_256(message);
    let sig: k256::ecdsa::Signature = key
        .sign_prehash(&digest)
        .map_err(|_| KeyError::BadSignature)?;
    Ok(Signature::Secp256k1(to_array(
        &sig.normalize_s().to_bytes(),
    )?))
}

pub(super) fn p256_sign(
    key: &p256::ecdsa::SigningKey,
    message: &[u8],
) -> Result<Signature, KeyError> {
    let digest = blake2b_256(message);
    let sig: p256::ecdsa::Signature = key
        .sign_prehash(&digest)
        .map_err(|_| KeyError::BadSignature)?;
    Ok(Signature::P256(to_array(&sig.to_bytes())?))
}

pub(super) fn secp256k1_verify(
    pk: &[u8; 33],
    message: &[u8],
    sig: &[u8; 64],
) -> Result<(), KeyError> {
    secp256k1_verify_digest(pk, &blake2b_256(message), sig)
}

pub(super) fn secp256k1_verify_digest(
    pk: &[u8; 33],
    digest: &[u8; 32],
    sig: &[u8; 64],
) -> Result<(), KeyError> {
    let vk =
        k256::ecdsa::VerifyingKey::from_sec1_bytes(pk).map_err(|_| KeyError::InvalidPublicKey)?;
    let sig = k256::ecdsa::Signature::from_slice(sig).map_err(|_| KeyError::BadSignature)?;
    // Octez (libsecp256k1) refuses high-S: so do we.
    if sig.normalize_s() != sig {
        return Err(KeyError::BadSignature);
    }
    vk.verify_prehash(digest, &sig)
        .map_err(|_| KeyError::BadSignature)
}

pub(super) fn p256_verify(pk: &[u8; 33], message: &[u8], sig: &[u8; 64]) -> Result<(), KeyError> {
    p256_verify_digest(pk, &blake2b_256(message), sig)
}

pub(super) fn p256_verify_digest(
    pk: &[u8; 33],
    digest: &[u8; 32],
    sig: &[u8; 64],
) -> Result<(), KeyError> {
    let vk =
        p256::ecdsa::VerifyingKey::from_sec1_bytes(pk).map_err(|_| KeyError::InvalidPublicKey)?;
    let sig = p256::ecdsa::Signature::from_slice(sig).map_err(|_| KeyError::BadSignature)?;
    vk.verify_prehash(digest, &sig)
        .map_err(|_| KeyError::BadSignature)
}

pub(super) fn secp256k1_validate(pk: &[u8; 33]) -> Result<(), KeyError> {
    k256::ecdsa::VerifyingKey::from_sec1_bytes(pk)
        .map(|_| ())
        .map_err(|_| KeyError::InvalidPublicKey)
}

pub(super) fn p256_validate(pk: &[u8; 33]) -> Result<(), KeyError> {
    p256::ecdsa::VerifyingKey::from_sec1_bytes(pk)
        .map(|_| ())
        .map_err(|_| KeyError::InvalidPublicKey)
}

/// Bring a secp256k1 `r ‖ s` into low-S form (for signatures made elsewhere, e.g. a cloud KMS).
pub fn secp256k1_normalize(sig: &[u8; 64]) -> Result<[u8; 64], KeyError> {
    let sig = k256::ecdsa::Signature::from_slice(sig).map_err(|_| KeyError::BadSignature)?;
    to_array(&sig.normalize_s().to_bytes())
}
