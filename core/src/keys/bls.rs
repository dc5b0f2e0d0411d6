//! BLS12-381 min-pk (tz4) through `blst`, the library Octez itself uses.
//!
//! * Signing: the proof-of-possession ciphersuite `BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_`
//!   over the raw request bytes (no pre-hash), Octez signature versions 2 and 3.
//! * Proof of possession: DST `BLS_POP_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_` over the 48-byte
//!   compressed public key.
//! * Secret keys are little-endian scalars in Tezos (`BLsk…`); `blst` wants big-endian.

use blst::BLST_ERROR;
use blst::min_pk::{PublicKey as BlsPublicKey, SecretKey, Signature as BlsSignature};

use super::{KeyError, PublicKey, SecretBytes, Signature, SigningVersion};

/// Domain separation tag of the signature scheme (versions 2 and 3).
pub const SIGN_DST: &[u8] = b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";
/// Domain separation tag of the augmented scheme (version 1; verification only).
pub const AUG_DST: &[u8] = b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_AUG_";
/// Domain separation tag of proofs of possession.
pub const POP_DST: &[u8] = b"BLS_POP_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";

pub(super) fn from_le_bytes(le: &[u8; 32]) -> Result<(SecretKey, PublicKey), KeyError> {
    let mut be = SecretBytes::new(*le);
    be.expose_mut().reverse();
    let sk = SecretKey::from_bytes(be.expose()).map_err(|_| KeyError::InvalidSecret)?;
    let public = PublicKey::Bls(sk.sk_to_pk().compress());
    Ok((sk, public))
}

pub(super) fn to_le_bytes(sk: &SecretKey) -> SecretBytes {
    let mut out = SecretBytes::new(sk.to_bytes());
    out.expose_mut().reverse();
    out
}

/// Derive a secret key from 32 bytes of entropy with the IETF BLS `KeyGen` (HKDF), returned
/// in the Tezos little-endian encoding.
pub(super) fn key_gen(ikm: &[u8; 32]) -> Result<SecretBytes, KeyError> {
    let sk = SecretKey::key_gen(ikm, &[]).map_err(|_| KeyError::InvalidSecret)?;
    Ok(to_le_bytes(&sk))
}

pub(super) fn sign(sk: &SecretKey, message: &[u8]) -> Signature {
    Signature::Bls(sk.sign(message, SIGN_DST, &[]).compress())
}

pub(super) fn prove_possession(sk: &SecretKey, pk: &[u8; 48]) -> Signature {
    Signature::Bls(sk.sign(pk, POP_DST, &[]).compress())
}

fn parse(pk: &[u8; 48], sig: &[u8; 96]) -> Result<(BlsPublicKey, BlsSignature), KeyError> {
    let pk = BlsPublicKey::key_validate(pk).map_err(|_| KeyError::InvalidPublicKey)?;
    let sig = BlsSignature::sig_validate(sig, true).map_err(|_| KeyError::BadSignature)?;
    Ok((pk, sig))
}

fn check(result: BLST_ERROR) -> Result<(), KeyError> {
    if result == BLST_ERROR::BLST_SUCCESS {
        Ok(())
    } else {
        Err(KeyError::BadSignature)
    }
}

pub(super) fn verify(
    pk: &[u8; 48],
    message: &[u8],
    sig: &[u8; 96],
    version: SigningVersion,
) -> Result<(), KeyError> {
    let (bpk, bsig) = parse(pk, sig)?;
    match version.0 {
        0 => Err(KeyError::BlsNeedsVersion2 { version: 0 }),
        // Augmented scheme: the public key is prepended to the message.
        1 => check(bsig.verify(false, message, AUG_DST, pk, &bpk, false)),
        _ => check(bsig.verify(false, message, SIGN_DST, &[], &bpk, false)),
    }
}

pub(super) fn verify_possession(
    pk: &[u8; 48],
    proven: &[u8; 48],
    sig: &[u8; 96],
) -> Result<(), KeyError> {
    let (bpk, bsig) = parse(pk, sig)?;
    check(bsig.verify(false, proven, POP_DST, &[], &bpk, false))
}

pub(super) fn validate(pk: &[u8; 48]) -> Result<(), KeyError> {
    BlsPublicKey::key_validate(pk)
        .map(|_| ())
        .map_err(|_| KeyError::InvalidPublicKey)
}
