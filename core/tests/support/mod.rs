//! Test support: an independent verifier for every curve, so no signature pawl-core makes is
//! checked only by the library that made it.
//!
//! | curve | pawl-core signs with | checked here with |
//! |---|---|---|
//! | Ed25519 | ed25519-dalek | OpenSSL (`EVP_PKEY_ED25519`) |
//! | secp256k1 | k256 | libsecp256k1 (`secp256k1` crate; rejects high-S, as Octez) |
//! | P-256 | p256 | OpenSSL (`ECDSA_do_verify` on the digest) |
//! | BLS12-381 | blst | zkcrypto `bls12_381` (hash-to-curve + pairing) |
//!
//! The BLAKE2b-256 digest comes from pawl-core; it is itself checked against upstream digests
//! in `requests.rs` (`watermark_hashes_match_upstream`).
#![allow(dead_code)]

pub mod board;
pub mod budget;
pub mod cometbft;
pub mod hsm;
pub mod power;

use bls12_381::hash_to_curve::{ExpandMsgXmd, HashToCurve};
use bls12_381::{G1Affine, G2Affine, G2Projective, pairing};
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey, EcPoint};
use openssl::ecdsa::EcdsaSig;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey};
use openssl::sign::Verifier;
use pawl_core::digest::blake2b_256;
use pawl_core::keys::{PublicKey, Signature};

/// BLS signature DST (POP ciphersuite), written out independently of the crate's constant.
pub const BLS_SIG_DST: &[u8] = b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";
/// BLS proof-of-possession DST.
pub const BLS_POP_DST: &[u8] = b"BLS_POP_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";

/// Verify `sig` over `msg` (the request bytes) with an implementation other than the signer's.
pub fn verify_independently(pk: &PublicKey, msg: &[u8], sig: &Signature) -> bool {
    match (pk, sig) {
        (PublicKey::Ed25519(pk), Signature::Ed25519(sig)) => {
            let key = PKey::public_key_from_raw_bytes(pk, Id::ED25519).expect("ed25519 key");
            let mut v = Verifier::new_without_digest(&key).expect("verifier");
            v.verify_oneshot(sig, &blake2b_256(msg)).unwrap_or(false)
        }
        (PublicKey::Secp256k1(pk), Signature::Secp256k1(sig)) => {
            let secp = secp256k1::Secp256k1::verification_only();
            let Ok(pk) = secp256k1::PublicKey::from_slice(pk) else {
                return false;
            };
            let Ok(sig) = secp256k1::ecdsa::Signature::from_compact(sig) else {
                return false;
            };
            let m = secp256k1::Message::from_digest(blake2b_256(msg));
            secp.verify_ecdsa(m, &sig, &pk).is_ok()
        }
        (PublicKey::P256(pk), Signature::P256(sig)) => p256_openssl(pk, &blake2b_256(msg), sig),
        (PublicKey::Bls(pk), Signature::Bls(sig)) => bls_zkcrypto(pk, msg, sig, BLS_SIG_DST),
        _ => false,
    }
}

/// Verify a BLS proof of possession of `pk` independently.
pub fn verify_pop_independently(pk: &[u8; 48], proof: &Signature) -> bool {
    match proof {
        Signature::Bls(sig) => bls_zkcrypto(pk, pk, sig, BLS_POP_DST),
        _ => false,
    }
}

fn p256_openssl(pk: &[u8; 33], digest: &[u8; 32], sig: &[u8; 64]) -> bool {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("group");
    let mut ctx = BigNumContext::new().expect("ctx");
    let Ok(point) = EcPoint::from_bytes(&group, pk, &mut ctx) else {
        return false;
    };
    let key = EcKey::from_public_key(&group, &point).expect("key");
    let r = BigNum::from_slice(&sig[..32]).expect("r");
    let s = BigNum::from_slice(&sig[32..]).expect("s");
    let sig = EcdsaSig::from_private_components(r, s).expect("sig");
    sig.verify(digest, &key).unwrap_or(false)
}

fn bls_zkcrypto(pk: &[u8; 48], msg: &[u8], sig: &[u8; 96], dst: &[u8]) -> bool {
    let pk = G1Affine::from_compressed(pk);
    let sig = G2Affine::from_compressed(sig);
    if pk.is_none().into() || sig.is_none().into() {
        return false;
    }
    let (pk, sig) = (pk.unwrap(), sig.unwrap());
    if bool::from(pk.is_identity()) {
        return false;
    }
    let h =
        <G2Projective as HashToCurve<ExpandMsgXmd<sha2_010::Sha256>>>::hash_to_curve([msg], dst);
    pairing(&pk, &G2Affine::from(h)) == pairing(&G1Affine::generator(), &sig)
}

/// Hex to bytes (test inputs only).
pub fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).expect("test vector hex")
}
