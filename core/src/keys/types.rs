//! Plain key data: curves, public keys, hashes, signatures and secret bytes, with their Tezos
//! binary and base58check forms.

use core::fmt;

use serde::{Deserialize, Serialize};
use serde_big_array::BigArray;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::KeyError;
use crate::digest::blake2b_160;
use crate::encoding::{self, B58String, EncodingError, MAX_PAYLOAD, Prefix};

/// The four curves Tezos keys use, with their binary tags (`public_key_hash` tag byte).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Curve {
    /// Ed25519, `tz1`.
    Ed25519,
    /// secp256k1, `tz2`.
    Secp256k1,
    /// NIST P-256, `tz3`.
    P256,
    /// BLS12-381 min-pk, `tz4`.
    Bls12_381,
}

impl Curve {
    /// Every curve.
    pub const ALL: [Curve; 4] = [
        Curve::Ed25519,
        Curve::Secp256k1,
        Curve::P256,
        Curve::Bls12_381,
    ];

    /// The binary tag (0 Ed25519, 1 secp256k1, 2 P-256, 3 BLS).
    pub const fn tag(self) -> u8 {
        match self {
            Curve::Ed25519 => 0,
            Curve::Secp256k1 => 1,
            Curve::P256 => 2,
            Curve::Bls12_381 => 3,
        }
    }

    /// The curve of a binary tag.
    pub const fn from_tag(tag: u8) -> Option<Curve> {
        match tag {
            0 => Some(Curve::Ed25519),
            1 => Some(Curve::Secp256k1),
            2 => Some(Curve::P256),
            3 => Some(Curve::Bls12_381),
            _ => None,
        }
    }

    /// Name as the CLI spells it.
    pub const fn name(self) -> &'static str {
        match self {
            Curve::Ed25519 => "ed25519",
            Curve::Secp256k1 => "secp256k1",
            Curve::P256 => "p256",
            Curve::Bls12_381 => "bls",
        }
    }

    /// Public key hash prefix.
    pub const fn pkh_prefix(self) -> Prefix {
        match self {
            Curve::Ed25519 => Prefix::Tz1,
            Curve::Secp256k1 => Prefix::Tz2,
            Curve::P256 => Prefix::Tz3,
            Curve::Bls12_381 => Prefix::Tz4,
        }
    }

    /// Public key prefix.
    pub const fn pk_prefix(self) -> Prefix {
        match self {
            Curve::Ed25519 => Prefix::Edpk,
            Curve::Secp256k1 => Prefix::Sppk,
            Curve::P256 => Prefix::P2pk,
            Curve::Bls12_381 => Prefix::BLpk,
        }
    }

    /// Secret key prefix (the 32-byte forms).
    pub const fn sk_prefix(self) -> Prefix {
        match self {
            Curve::Ed25519 => Prefix::Edsk,
            Curve::Secp256k1 => Prefix::Spsk,
            Curve::P256 => Prefix::P2sk,
            Curve::Bls12_381 => Prefix::BLsk,
        }
    }

    /// Typed signature prefix (what Octez returns).
    pub const fn sig_prefix(self) -> Prefix {
        match self {
            Curve::Ed25519 => Prefix::Edsig,
            Curve::Secp256k1 => Prefix::Spsig,
            Curve::P256 => Prefix::P2sig,
            Curve::Bls12_381 => Prefix::BLsig,
        }
    }
}

impl fmt::Display for Curve {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A public key hash: curve and 20-byte BLAKE2b-160 of the public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PublicKeyHash {
    /// The key's curve.
    pub curve: Curve,
    /// BLAKE2b-160 of the public key bytes.
    pub hash: [u8; 20],
}

impl PublicKeyHash {
    /// The 21-byte binary form: curve tag ‖ hash (as in authentication bytes).
    pub fn to_bytes(&self) -> [u8; 21] {
        let mut out = [0u8; 21];
        out[0] = self.curve.tag();
        out[1..].copy_from_slice(&self.hash);
        out
    }

    /// Read the 21-byte binary form.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != 21 {
            return None;
        }
        let curve = Curve::from_tag(bytes[0])?;
        let mut hash = [0u8; 20];
        hash.copy_from_slice(&bytes[1..]);
        Some(PublicKeyHash { curve, hash })
    }

    /// `tz1…`/`tz2…`/`tz3…`/`tz4…`.
    pub fn to_b58(&self) -> B58String {
        // A 20-byte payload always encodes.
        encoding::encode(self.curve.pkh_prefix(), &self.hash).unwrap_or_default()
    }

    /// Parse `tz1…`/`tz2…`/`tz3…`/`tz4…`.
    pub fn from_b58(text: &str) -> Result<Self, EncodingError> {
        let mut buf = [0u8; MAX_PAYLOAD];
        let (prefix, payload) = encoding::decode_any(text, &mut buf)?;
        let curve = Curve::ALL
            .into_iter()
            .find(|c| c.pkh_prefix() == prefix)
            .ok_or(EncodingError::WrongKind {
                expected: Prefix::Tz1,
            })?;
        let mut hash = [0u8; 20];
        hash.copy_from_slice(payload);
        Ok(PublicKeyHash { curve, hash })
    }
}

impl fmt::Display for PublicKeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_b58())
    }
}

impl fmt::Debug for PublicKeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_b58())
    }
}

/// A public key in its compressed binary form.
#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PublicKey {
    /// 32-byte Ed25519 key.
    Ed25519([u8; 32]),
    /// 33-byte compressed SEC1 secp256k1 point.
    Secp256k1(#[serde(with = "BigArray")] [u8; 33]),
    /// 33-byte compressed SEC1 P-256 point.
    P256(#[serde(with = "BigArray")] [u8; 33]),
    /// 48-byte compressed G1 point.
    Bls(#[serde(with = "BigArray")] [u8; 48]),
}

impl PublicKey {
    /// The key's curve.
    pub fn curve(&self) -> Curve {
        match self {
            PublicKey::Ed25519(_) => Curve::Ed25519,
            PublicKey::Secp256k1(_) => Curve::Secp256k1,
            PublicKey::P256(_) => Curve::P256,
            PublicKey::Bls(_) => Curve::Bls12_381,
        }
    }

    /// The raw key bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            PublicKey::Ed25519(b) => b,
            PublicKey::Secp256k1(b) | PublicKey::P256(b) => b,
            PublicKey::Bls(b) => b,
        }
    }

    /// Build from a curve and raw bytes (length checked, point not validated: see
    /// [`PublicKey::validate`]).
    pub fn from_curve_bytes(curve: Curve, bytes: &[u8]) -> Result<Self, KeyError> {
        fn arr<const N: usize>(b: &[u8]) -> Result<[u8; N], KeyError> {
            b.try_into().map_err(|_| KeyError::InvalidPublicKey)
        }
        Ok(match curve {
            Curve::Ed25519 => PublicKey::Ed25519(arr(bytes)?),
            Curve::Secp256k1 => PublicKey::Secp256k1(arr(bytes)?),
            Curve::P256 => PublicKey::P256(arr(bytes)?),
            Curve::Bls12_381 => PublicKey::Bls(arr(bytes)?),
        })
    }

    /// The public key hash (BLAKE2b-160 of the raw key bytes).
    pub fn hash(&self) -> PublicKeyHash {
        PublicKeyHash {
            curve: self.curve(),
            hash: blake2b_160(self.as_bytes()),
        }
    }

    /// `edpk…`/`sppk…`/`p2pk…`/`BLpk…`.
    pub fn to_b58(&self) -> B58String {
        encoding::encode(self.curve().pk_prefix(), self.as_bytes()).unwrap_or_default()
    }

    /// Parse `edpk…`/`sppk…`/`p2pk…`/`BLpk…`: prefix and length only. The point itself is
    /// checked where a key is registered or used ([`PublicKey::validate`]).
    pub fn from_b58(text: &str) -> Result<Self, EncodingError> {
        let mut buf = [0u8; MAX_PAYLOAD];
        let (prefix, payload) = encoding::decode_any(text, &mut buf)?;
        let curve = Curve::ALL
            .into_iter()
            .find(|c| c.pk_prefix() == prefix)
            .ok_or(EncodingError::WrongKind {
                expected: Prefix::Edpk,
            })?;
        let pk = PublicKey::from_curve_bytes(curve, payload).map_err(|_| {
            EncodingError::WrongLength {
                expected: curve.pk_prefix().payload_len(),
                got: payload.len(),
            }
        })?;
        Ok(pk)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_b58())
    }
}

/// A signature in its binary form.
#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Signature {
    /// Ed25519, 64 bytes.
    Ed25519(#[serde(with = "BigArray")] [u8; 64]),
    /// secp256k1 `r ‖ s`, low-S.
    Secp256k1(#[serde(with = "BigArray")] [u8; 64]),
    /// P-256 `r ‖ s`.
    P256(#[serde(with = "BigArray")] [u8; 64]),
    /// BLS12-381 compressed G2, 96 bytes.
    Bls(#[serde(with = "BigArray")] [u8; 96]),
}

impl Signature {
    /// The signature's curve.
    pub fn curve(&self) -> Curve {
        match self {
            Signature::Ed25519(_) => Curve::Ed25519,
            Signature::Secp256k1(_) => Curve::Secp256k1,
            Signature::P256(_) => Curve::P256,
            Signature::Bls(_) => Curve::Bls12_381,
        }
    }

    /// The raw signature bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Signature::Ed25519(b) | Signature::Secp256k1(b) | Signature::P256(b) => b,
            Signature::Bls(b) => b,
        }
    }

    /// Build from a curve and raw bytes (length checked).
    pub fn from_curve_bytes(curve: Curve, bytes: &[u8]) -> Result<Self, KeyError> {
        fn arr<const N: usize>(b: &[u8]) -> Result<[u8; N], KeyError> {
            b.try_into().map_err(|_| KeyError::BadSignature)
        }
        Ok(match curve {
            Curve::Ed25519 => Signature::Ed25519(arr(bytes)?),
            Curve::Secp256k1 => Signature::Secp256k1(arr(bytes)?),
            Curve::P256 => Signature::P256(arr(bytes)?),
            Curve::Bls12_381 => Signature::Bls(arr(bytes)?),
        })
    }

    /// The typed form Octez returns: `edsig…`, `spsig1…`, `p2sig…` or `BLsig…`.
    pub fn to_b58(&self) -> B58String {
        encoding::encode(self.curve().sig_prefix(), self.as_bytes()).unwrap_or_default()
    }

    /// The generic `sig…` form (64-byte signatures only).
    pub fn to_generic_b58(&self) -> Option<B58String> {
        match self {
            Signature::Bls(_) => None,
            _ => encoding::encode(Prefix::Sig, self.as_bytes()).ok(),
        }
    }

    /// Parse a typed signature, or a generic `sig…` one for a key of `curve`.
    pub fn from_b58(text: &str, curve: Curve) -> Result<Self, EncodingError> {
        let mut buf = [0u8; MAX_PAYLOAD];
        let (prefix, payload) = encoding::decode_any(text, &mut buf)?;
        if prefix == curve.sig_prefix() || (prefix == Prefix::Sig && curve != Curve::Bls12_381) {
            Signature::from_curve_bytes(curve, payload).map_err(|_| EncodingError::WrongLength {
                expected: curve.sig_prefix().payload_len(),
                got: payload.len(),
            })
        } else {
            Err(EncodingError::WrongKind {
                expected: curve.sig_prefix(),
            })
        }
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_b58())
    }
}

/// 32 secret bytes in the Tezos encoding of their curve (see `KeyPair::from_secret`).
///
/// Zeroized on drop; `Debug` prints nothing of them; equality is constant-time.
#[derive(Clone, Zeroize, ZeroizeOnDrop, Serialize, Deserialize)]
pub struct SecretBytes([u8; 32]);

impl SecretBytes {
    /// Wrap 32 secret bytes (the caller's copy should be zeroized by the caller).
    pub const fn new(bytes: [u8; 32]) -> Self {
        SecretBytes(bytes)
    }

    /// All zeros (to be filled).
    pub const fn zero() -> Self {
        SecretBytes([0u8; 32])
    }

    /// Copy from a slice of exactly 32 bytes; any other length gives all zeros, which no
    /// curve accepts as a secret.
    pub fn from_slice(bytes: &[u8]) -> Self {
        let mut s = SecretBytes::zero();
        if bytes.len() == 32 {
            s.0.copy_from_slice(bytes);
        }
        s
    }

    /// Parse a Tezos secret key (`edsk…`, `spsk…`, `p2sk…`, `BLsk…`). The 64-byte `edsk…`
    /// form (seed ‖ public key) keeps the seed. Encrypted forms are refused.
    pub fn from_b58(text: &str) -> Result<(Curve, Self), EncodingError> {
        let mut buf = [0u8; MAX_PAYLOAD];
        let result = match encoding::decode_any(text, &mut buf) {
            Ok((Prefix::EdskLong, payload)) => {
                Ok((Curve::Ed25519, SecretBytes::from_slice(&payload[..32])))
            }
            Ok((prefix, payload)) => Curve::ALL
                .into_iter()
                .find(|c| c.sk_prefix() == prefix)
                .map(|c| (c, SecretBytes::from_slice(payload)))
                .ok_or(EncodingError::WrongKind {
                    expected: Prefix::Edsk,
                }),
            Err(e) => Err(e),
        };
        buf.zeroize();
        result
    }

    /// The `edsk…`/`spsk…`/`p2sk…`/`BLsk…` text. Handle with care: it is the key.
    pub fn to_b58(&self, curve: Curve) -> B58String {
        encoding::encode(curve.sk_prefix(), &self.0).unwrap_or_default()
    }

    /// The secret bytes.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    /// The secret bytes, for filling.
    pub fn expose_mut(&mut self) -> &mut [u8; 32] {
        &mut self.0
    }
}

impl PartialEq for SecretBytes {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for SecretBytes {}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBytes(<redacted>)")
    }
}

/// Octez's signature `version` (`?version=` on the HTTP API). Only BLS depends on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningVersion(pub u8);

impl SigningVersion {
    /// What a current (Seoul and later) client sends when it says nothing more specific.
    pub const LATEST: SigningVersion = SigningVersion(3);

    /// Refuse versions Octez does not define (above 3).
    pub fn check(self) -> Result<(), KeyError> {
        if self.0 > 3 {
            Err(KeyError::UnknownSigningVersion { version: self.0 })
        } else {
            Ok(())
        }
    }

    /// Refuse versions without the proof-of-possession BLS scheme (0 and 1).
    pub fn check_bls(self) -> Result<(), KeyError> {
        if self.0 < 2 {
            Err(KeyError::BlsNeedsVersion2 { version: self.0 })
        } else {
            Ok(())
        }
    }
}

impl Default for SigningVersion {
    fn default() -> Self {
        SigningVersion::LATEST
    }
}
