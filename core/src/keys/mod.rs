//! Keys, public key hashes and signatures for the four Tezos curves, and the [`TezosSigner`] trait
//! that policy and watermark code sign through.
//!
//! | curve | address | what is signed | signature |
//! |---|---|---|---|
//! | Ed25519 | tz1 | Ed25519 over `blake2b-256(m)` | 64 bytes |
//! | secp256k1 | tz2 | ECDSA (RFC 6979) over `blake2b-256(m)`, always low-S | `r ‖ s` |
//! | P-256 | tz3 | ECDSA (RFC 6979) over `blake2b-256(m)` | `r ‖ s` |
//! | BLS12-381 min-pk | tz4 | `m` itself, proof-of-possession ciphersuite (signature version ≥ 2) | 96 bytes |
//!
//! Deterministic nonces everywhere: an identical request is answered from the watermark's stored
//! signature anyway, but a deterministic scheme means even a lost stored signature cannot produce
//! a second, different signature over the same bytes.

mod bls;
mod ecdsa;
mod ed25519;
mod types;

pub use ecdsa::secp256k1_normalize;
pub use types::{Curve, PublicKey, PublicKeyHash, SecretBytes, Signature, SigningVersion};

use core::fmt;

use serde::{Deserialize, Serialize};

/// Why a key could not be made, or a signature could not be produced or checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyError {
    /// The secret bytes are not a valid secret for the curve (zero, or not below the group order).
    InvalidSecret,
    /// The public key bytes are not a point on the curve.
    InvalidPublicKey,
    /// The entropy source failed; no key was made.
    EntropyFailed,
    /// BLS keys sign only with signature version 2 or 3 (the proof-of-possession scheme Octez
    /// uses since Seoul); version 0 has no BLS and version 1 is the older augmented scheme.
    BlsNeedsVersion2 {
        /// Version asked for.
        version: u8,
    },
    /// Signature version above what Octez defines (0–3).
    UnknownSigningVersion {
        /// Version asked for.
        version: u8,
    },
    /// Proof of possession exists only for BLS keys.
    PossessionNeedsBls,
    /// The signature does not verify under the public key (or is malformed, or high-S for tz2).
    BadSignature,
    /// The signature is for a different curve than the key.
    CurveMismatch,
    /// Only Ed25519 (tz1), secp256k1 (tz2) and P-256 (tz3) keys can be held by a host key
    /// service: BLS signs the message, not a digest.
    NotHostHeldCurve {
        /// The key's curve.
        curve: Curve,
    },
    /// The public key to prove possession of (`override_pk`) is not a BLS12-381 public key:
    /// not a compressed G1 point, not on the curve, outside the prime-order subgroup, or the
    /// identity.
    InvalidPossessionKey,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::InvalidSecret => f.write_str("invalid secret key for this curve"),
            KeyError::InvalidPublicKey => f.write_str("invalid public key"),
            KeyError::EntropyFailed => f.write_str("random number generator failed"),
            KeyError::BlsNeedsVersion2 { version } => write!(
                f,
                "BLS keys sign only with signature version 2 or 3 (proof-of-possession scheme); got version {version}"
            ),
            KeyError::UnknownSigningVersion { version } => {
                write!(f, "unknown signature version {version} (expected 0 to 3)")
            }
            KeyError::PossessionNeedsBls => {
                f.write_str("proof of possession can only be requested for BLS keys")
            }
            KeyError::BadSignature => f.write_str("signature does not verify"),
            KeyError::CurveMismatch => f.write_str("signature and key are of different curves"),
            KeyError::NotHostHeldCurve { curve } => write!(
                f,
                "a {curve} key cannot be host-held: only Ed25519 (tz1), secp256k1 (tz2) and P-256 (tz3)"
            ),
            KeyError::InvalidPossessionKey => f.write_str(
                "override_pk is not a valid BLS12-381 public key (a compressed G1 point in the prime-order subgroup, not the identity); nothing was signed",
            ),
        }
    }
}

impl core::error::Error for KeyError {}

/// A source of secret randomness (the board's TRNG; the OS on the host).
pub trait Entropy {
    /// Fill `dest` with random bytes, or fail without a partial result being used.
    fn fill(&mut self, dest: &mut [u8]) -> Result<(), KeyError>;
}

/// Something that signs Tezos requests with one key: an on-board [`KeyPair`] today, an HSM
/// session or a cloud key later. Fallible, because the latter can fail.
pub trait TezosSigner {
    /// The public key signatures verify under.
    fn public_key(&self) -> &PublicKey;
    /// Sign `message` (the whole request, magic byte included) as Octez's `Signature.sign` would.
    fn try_sign(&self, message: &[u8], version: SigningVersion) -> Result<Signature, KeyError>;
}

/// The secret half of a key, held in the crate's own types, which zeroize on drop.
enum Secret {
    Ed25519(ed25519_dalek::SigningKey),
    Secp256k1(k256::ecdsa::SigningKey),
    P256(p256::ecdsa::SigningKey),
    Bls(blst::min_pk::SecretKey),
}

/// A key pair held on the board.
///
/// Invariants: `public` is the public key of `secret`, and `pkh` its hash. The secret is
/// zeroized when the pair is dropped (every wrapped type zeroizes itself) and never shown by
/// `Debug`.
pub struct KeyPair {
    secret: Secret,
    public: PublicKey,
    pkh: PublicKeyHash,
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPair")
            .field("pkh", &self.pkh)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl KeyPair {
    /// Rebuild a key from its 32 secret bytes in Tezos's encoding for the curve: the Ed25519
    /// seed, the big-endian secp256k1/P-256 scalar, or the **little-endian** BLS scalar.
    pub fn from_secret(curve: Curve, secret: &SecretBytes) -> Result<Self, KeyError> {
        let bytes = secret.expose();
        let (secret, public) = match curve {
            Curve::Ed25519 => {
                let (s, p) = ed25519::from_seed(bytes);
                (Secret::Ed25519(s), p)
            }
            Curve::Secp256k1 => {
                let (s, p) = ecdsa::secp256k1_from_bytes(bytes)?;
                (Secret::Secp256k1(s), p)
            }
            Curve::P256 => {
                let (s, p) = ecdsa::p256_from_bytes(bytes)?;
                (Secret::P256(s), p)
            }
            Curve::Bls12_381 => {
                let (s, p) = bls::from_le_bytes(bytes)?;
                (Secret::Bls(s), p)
            }
        };
        let pkh = public.hash();
        Ok(KeyPair {
            secret,
            public,
            pkh,
        })
    }

    /// Make a new key from the entropy source.
    pub fn generate(curve: Curve, entropy: &mut dyn Entropy) -> Result<Self, KeyError> {
        // For the ECDSA curves a random 32-byte string is a valid scalar except with
        // probability < 2^-127; retry a bounded number of times rather than loop forever
        // on a broken RNG that returns the same bad value.
        for _ in 0..8 {
            let mut seed = SecretBytes::zero();
            entropy.fill(seed.expose_mut())?;
            if curve == Curve::Bls12_381 {
                let secret = bls::key_gen(seed.expose())?;
                return KeyPair::from_secret(curve, &secret);
            }
            match KeyPair::from_secret(curve, &seed) {
                Ok(k) => return Ok(k),
                Err(KeyError::InvalidSecret) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(KeyError::EntropyFailed)
    }

    /// The secret in the Tezos encoding [`KeyPair::from_secret`] takes (for sealing in the
    /// store). The result zeroizes itself on drop.
    pub fn to_secret(&self) -> SecretBytes {
        match &self.secret {
            Secret::Ed25519(k) => SecretBytes::new(k.to_bytes()),
            Secret::Secp256k1(k) => SecretBytes::from_slice(&k.to_bytes()),
            Secret::P256(k) => SecretBytes::from_slice(&k.to_bytes()),
            Secret::Bls(k) => bls::to_le_bytes(k),
        }
    }

    /// The curve of this key.
    pub fn curve(&self) -> Curve {
        self.public.curve()
    }

    /// The public key hash (`tz1…`/`tz2…`/`tz3…`/`tz4…`).
    pub fn pkh(&self) -> &PublicKeyHash {
        &self.pkh
    }

    /// BLS proof of possession: a signature with the `BLS_POP_…` ciphersuite over the 48-byte
    /// compressed public key, or over `override_pk` when given (Octez's `bls_pk` argument),
    /// which must be a valid public key (on the curve, in the prime-order subgroup, not the
    /// identity): otherwise [`KeyError::InvalidPossessionKey`] and nothing is signed.
    pub fn prove_possession(&self, override_pk: Option<&[u8; 48]>) -> Result<Signature, KeyError> {
        match &self.secret {
            Secret::Bls(sk) => {
                let pk = match (override_pk, &self.public) {
                    (Some(pk), _) => {
                        bls::validate(pk).map_err(|_| KeyError::InvalidPossessionKey)?;
                        pk
                    }
                    (None, PublicKey::Bls(pk)) => pk,
                    (None, _) => return Err(KeyError::PossessionNeedsBls),
                };
                Ok(bls::prove_possession(sk, pk))
            }
            _ => Err(KeyError::PossessionNeedsBls),
        }
    }
}

impl KeyPair {
    /// CometBFT: plain Ed25519 over `message` itself, not over its BLAKE2b digest as for Tezos
    /// (Ed25519 keys only: [`KeyError::CurveMismatch`] for the others).
    pub fn sign_plain_ed25519(&self, message: &[u8]) -> Result<Signature, KeyError> {
        match &self.secret {
            Secret::Ed25519(k) => Ok(ed25519::sign_plain(k, message)),
            _ => Err(KeyError::CurveMismatch),
        }
    }
}

impl TezosSigner for KeyPair {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn try_sign(&self, message: &[u8], version: SigningVersion) -> Result<Signature, KeyError> {
        version.check()?;
        match &self.secret {
            Secret::Ed25519(k) => Ok(ed25519::sign(k, message)),
            Secret::Secp256k1(k) => ecdsa::secp256k1_sign(k, message),
            Secret::P256(k) => ecdsa::p256_sign(k, message),
            Secret::Bls(k) => {
                version.check_bls()?;
                Ok(bls::sign(k, message))
            }
        }
    }
}

impl PublicKey {
    /// Check `signature` over `message` as an Octez client would: tz1/tz2/tz3 over
    /// `blake2b-256(message)` (tz2 must be low-S), tz4 with the scheme of `version`
    /// (1: augmented, 2/3: proof of possession).
    pub fn verify(
        &self,
        message: &[u8],
        signature: &Signature,
        version: SigningVersion,
    ) -> Result<(), KeyError> {
        match (self, signature) {
            (PublicKey::Ed25519(pk), Signature::Ed25519(sig)) => ed25519::verify(pk, message, sig),
            (PublicKey::Secp256k1(pk), Signature::Secp256k1(sig)) => {
                ecdsa::secp256k1_verify(pk, message, sig)
            }
            (PublicKey::P256(pk), Signature::P256(sig)) => ecdsa::p256_verify(pk, message, sig),
            (PublicKey::Bls(pk), Signature::Bls(sig)) => {
                version.check()?;
                bls::verify(pk, message, sig, version)
            }
            _ => Err(KeyError::CurveMismatch),
        }
    }

    /// Check a signature made elsewhere (a cloud KMS, a PKCS#11 token) over the 32-byte
    /// `digest` that [`PublicKey::verify`] would compute as `blake2b-256(message)`. tz2 must be
    /// low-S, as Octez requires; tz1's Ed25519 message is that digest; tz4 signs the message,
    /// not a digest, and is refused.
    pub fn verify_digest(&self, digest: &[u8; 32], signature: &Signature) -> Result<(), KeyError> {
        match (self, signature) {
            (PublicKey::Secp256k1(pk), Signature::Secp256k1(sig)) => {
                ecdsa::secp256k1_verify_digest(pk, digest, sig)
            }
            (PublicKey::P256(pk), Signature::P256(sig)) => {
                ecdsa::p256_verify_digest(pk, digest, sig)
            }
            (PublicKey::Ed25519(pk), Signature::Ed25519(sig)) => {
                ed25519::verify_digest(pk, digest, sig)
            }
            (PublicKey::Bls(_), _) => Err(KeyError::NotHostHeldCurve {
                curve: self.curve(),
            }),
            _ => Err(KeyError::CurveMismatch),
        }
    }

    /// Check a BLS proof of possession over this key (or over `override_pk`).
    pub fn verify_possession(
        &self,
        proof: &Signature,
        override_pk: Option<&[u8; 48]>,
    ) -> Result<(), KeyError> {
        match (self, proof) {
            (PublicKey::Bls(pk), Signature::Bls(sig)) => {
                bls::verify_possession(pk, override_pk.unwrap_or(pk), sig)
            }
            _ => Err(KeyError::PossessionNeedsBls),
        }
    }

    /// Check that the bytes are a valid point for the curve.
    pub fn validate(&self) -> Result<(), KeyError> {
        match self {
            PublicKey::Ed25519(pk) => ed25519::validate(pk),
            PublicKey::Secp256k1(pk) => ecdsa::secp256k1_validate(pk),
            PublicKey::P256(pk) => ecdsa::p256_validate(pk),
            PublicKey::Bls(pk) => bls::validate(pk),
        }
    }
}
