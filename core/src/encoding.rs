//! Tezos base58check encodings: every prefix pawl reads or writes, in one table.
//!
//! Base58check is `base58(prefix ‖ payload ‖ sha256(sha256(prefix ‖ payload))[..4])`. The prefixes
//! are Octez's (`src/lib_crypto/base58.ml`, module `Prefix`; table in `docs/protocol.md` §5.2),
//! copied here as hex and checked by the vectors in this module's tests and in
//! `tests/keys.rs`.
//!
//! Everything works on caller-provided buffers: no allocation.

use core::fmt;

/// The longest payload we encode or decode (a BLS signature: 96 bytes).
pub const MAX_PAYLOAD: usize = 96;
/// The longest prefix (5 bytes).
const MAX_PREFIX: usize = 5;
/// The longest base58check text we produce or accept (a `BLsig…` is 142 characters).
pub const MAX_TEXT: usize = 142;

/// One base58check kind: the prefix bytes and the payload length that go with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prefix {
    /// `tz1…`: Ed25519 public key hash (20 bytes).
    Tz1,
    /// `tz2…`: secp256k1 public key hash (20 bytes).
    Tz2,
    /// `tz3…`: P-256 public key hash (20 bytes).
    Tz3,
    /// `tz4…`: BLS12-381 public key hash (20 bytes).
    Tz4,
    /// `edpk…`: Ed25519 public key (32 bytes).
    Edpk,
    /// `sppk…`: secp256k1 compressed public key (33 bytes).
    Sppk,
    /// `p2pk…`: P-256 compressed public key (33 bytes).
    P2pk,
    /// `BLpk…`: BLS12-381 compressed G1 public key (48 bytes).
    BLpk,
    /// `edsk…` (54 characters): Ed25519 32-byte seed.
    Edsk,
    /// `edsk…` (98 characters): Ed25519 64-byte seed ‖ public key.
    EdskLong,
    /// `spsk…`: secp256k1 secret scalar, big-endian (32 bytes).
    Spsk,
    /// `p2sk…`: P-256 secret scalar, big-endian (32 bytes).
    P2sk,
    /// `BLsk…`: BLS12-381 secret scalar, **little-endian** (32 bytes).
    BLsk,
    /// `edesk…`: encrypted Ed25519 secret key (56 bytes) — recognised only to refuse it clearly.
    Edesk,
    /// `spesk…`: encrypted secp256k1 secret key (56 bytes) — recognised only to refuse it.
    Spesk,
    /// `p2esk…`: encrypted P-256 secret key (56 bytes) — recognised only to refuse it.
    P2esk,
    /// `BLesk…`: encrypted BLS secret key (56 bytes) — recognised only to refuse it.
    BLesk,
    /// `edsig…`: Ed25519 signature (64 bytes).
    Edsig,
    /// `spsig1…`: secp256k1 signature `r ‖ s` (64 bytes).
    Spsig,
    /// `p2sig…`: P-256 signature `r ‖ s` (64 bytes).
    P2sig,
    /// `sig…`: generic signature of any 64-byte scheme.
    Sig,
    /// `BLsig…`: BLS12-381 compressed G2 signature (96 bytes).
    BLsig,
    /// `Net…`: chain id (4 bytes).
    ChainId,
    /// `vh…`: block payload hash (32 bytes).
    BlockPayloadHash,
}

impl Prefix {
    /// Every prefix, in a fixed order (used to recognise a string by trying each).
    pub const ALL: [Prefix; 24] = [
        Prefix::Tz1,
        Prefix::Tz2,
        Prefix::Tz3,
        Prefix::Tz4,
        Prefix::Edpk,
        Prefix::Sppk,
        Prefix::P2pk,
        Prefix::BLpk,
        Prefix::Edsk,
        Prefix::EdskLong,
        Prefix::Spsk,
        Prefix::P2sk,
        Prefix::BLsk,
        Prefix::Edesk,
        Prefix::Spesk,
        Prefix::P2esk,
        Prefix::BLesk,
        Prefix::Edsig,
        Prefix::Spsig,
        Prefix::P2sig,
        Prefix::Sig,
        Prefix::BLsig,
        Prefix::ChainId,
        Prefix::BlockPayloadHash,
    ];

    /// The prefix bytes (Octez `base58.ml`).
    pub const fn bytes(self) -> &'static [u8] {
        match self {
            Prefix::Tz1 => &[0x06, 0xa1, 0x9f],
            Prefix::Tz2 => &[0x06, 0xa1, 0xa1],
            Prefix::Tz3 => &[0x06, 0xa1, 0xa4],
            Prefix::Tz4 => &[0x06, 0xa1, 0xa6],
            Prefix::Edpk => &[0x0d, 0x0f, 0x25, 0xd9],
            Prefix::Sppk => &[0x03, 0xfe, 0xe2, 0x56],
            Prefix::P2pk => &[0x03, 0xb2, 0x8b, 0x7f],
            Prefix::BLpk => &[0x06, 0x95, 0x87, 0xcc],
            Prefix::Edsk => &[0x0d, 0x0f, 0x3a, 0x07],
            Prefix::EdskLong => &[0x2b, 0xf6, 0x4e, 0x07],
            Prefix::Spsk => &[0x11, 0xa2, 0xe0, 0xc9],
            Prefix::P2sk => &[0x10, 0x51, 0xee, 0xbd],
            Prefix::BLsk => &[0x03, 0x96, 0xc0, 0x28],
            Prefix::Edesk => &[0x07, 0x5a, 0x3c, 0xb3, 0x29],
            Prefix::Spesk => &[0x09, 0xed, 0xf1, 0xae, 0x96],
            Prefix::P2esk => &[0x09, 0x30, 0x39, 0x73, 0xab],
            Prefix::BLesk => &[0x02, 0x05, 0x1e, 0x35, 0x19],
            Prefix::Edsig => &[0x09, 0xf5, 0xcd, 0x86, 0x12],
            Prefix::Spsig => &[0x0d, 0x73, 0x65, 0x13, 0x3f],
            Prefix::P2sig => &[0x36, 0xf0, 0x2c, 0x34],
            Prefix::Sig => &[0x04, 0x82, 0x2b],
            Prefix::BLsig => &[0x28, 0xab, 0x40, 0xcf],
            Prefix::ChainId => &[0x57, 0x52, 0x00],
            Prefix::BlockPayloadHash => &[0x01, 0x6a, 0xf2],
        }
    }

    /// The payload length that goes with this prefix.
    pub const fn payload_len(self) -> usize {
        match self {
            Prefix::Tz1 | Prefix::Tz2 | Prefix::Tz3 | Prefix::Tz4 => 20,
            Prefix::Edpk => 32,
            Prefix::Sppk | Prefix::P2pk => 33,
            Prefix::BLpk => 48,
            Prefix::Edsk | Prefix::Spsk | Prefix::P2sk | Prefix::BLsk => 32,
            Prefix::EdskLong => 64,
            Prefix::Edesk | Prefix::Spesk | Prefix::P2esk | Prefix::BLesk => 56,
            Prefix::Edsig | Prefix::Spsig | Prefix::P2sig | Prefix::Sig => 64,
            Prefix::BLsig => 96,
            Prefix::ChainId => 4,
            Prefix::BlockPayloadHash => 32,
        }
    }

    /// Whether this prefix marks a password-encrypted secret key, which pawl refuses.
    pub const fn is_encrypted_secret(self) -> bool {
        matches!(
            self,
            Prefix::Edesk | Prefix::Spesk | Prefix::P2esk | Prefix::BLesk
        )
    }

    /// The text every string of this kind starts with (for messages).
    pub const fn human(self) -> &'static str {
        match self {
            Prefix::Tz1 => "tz1",
            Prefix::Tz2 => "tz2",
            Prefix::Tz3 => "tz3",
            Prefix::Tz4 => "tz4",
            Prefix::Edpk => "edpk",
            Prefix::Sppk => "sppk",
            Prefix::P2pk => "p2pk",
            Prefix::BLpk => "BLpk",
            Prefix::Edsk | Prefix::EdskLong => "edsk",
            Prefix::Spsk => "spsk",
            Prefix::P2sk => "p2sk",
            Prefix::BLsk => "BLsk",
            Prefix::Edesk => "edesk",
            Prefix::Spesk => "spesk",
            Prefix::P2esk => "p2esk",
            Prefix::BLesk => "BLesk",
            Prefix::Edsig => "edsig",
            Prefix::Spsig => "spsig1",
            Prefix::P2sig => "p2sig",
            Prefix::Sig => "sig",
            Prefix::BLsig => "BLsig",
            Prefix::ChainId => "Net",
            Prefix::BlockPayloadHash => "vh",
        }
    }
}

/// Why a base58check string could not be read or written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncodingError {
    /// Not valid base58, or too long to be any Tezos value.
    InvalidBase58,
    /// The 4-byte checksum does not match.
    BadChecksum,
    /// Valid base58check, but not of the expected kind (prefix or length differ).
    WrongKind {
        /// What was expected.
        expected: Prefix,
    },
    /// Valid base58check, but no prefix we know matches it.
    UnknownPrefix,
    /// A password-encrypted secret key (`edesk`, `spesk`, `p2esk`, `BLesk`): pawl needs the
    /// decrypted key; decrypt it with `octez-client` first.
    EncryptedSecretKey {
        /// Which kind of encrypted key it was.
        prefix: Prefix,
    },
    /// The payload length does not fit the prefix.
    WrongLength {
        /// Length the prefix requires.
        expected: usize,
        /// Length given.
        got: usize,
    },
}

impl fmt::Display for EncodingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodingError::InvalidBase58 => f.write_str("not a valid base58 string"),
            EncodingError::BadChecksum => f.write_str("base58check checksum mismatch"),
            EncodingError::WrongKind { expected } => {
                write!(f, "expected a `{}…` value", expected.human())
            }
            EncodingError::UnknownPrefix => f.write_str("unknown base58check prefix"),
            EncodingError::EncryptedSecretKey { prefix } => write!(
                f,
                "`{}…` is a password-encrypted secret key; decrypt it first (pawl stores keys sealed on the board)",
                prefix.human()
            ),
            EncodingError::WrongLength { expected, got } => {
                write!(f, "payload is {got} bytes, expected {expected}")
            }
        }
    }
}

impl core::error::Error for EncodingError {}

/// A base58check string held without allocation.
pub type B58String = heapless::String<MAX_TEXT>;

/// Encode `payload` under `prefix`.
pub fn encode(prefix: Prefix, payload: &[u8]) -> Result<B58String, EncodingError> {
    if payload.len() != prefix.payload_len() {
        return Err(EncodingError::WrongLength {
            expected: prefix.payload_len(),
            got: payload.len(),
        });
    }
    let mut raw = [0u8; MAX_PREFIX + MAX_PAYLOAD];
    let p = prefix.bytes();
    let total = p.len() + payload.len();
    raw[..p.len()].copy_from_slice(p);
    raw[p.len()..total].copy_from_slice(payload);
    // base58 of (prefix ‖ payload ‖ 4-byte checksum) fits in MAX_TEXT by construction.
    let mut text = [0u8; MAX_TEXT + 8];
    let n = bs58::encode(&raw[..total])
        .with_check()
        .onto(&mut text[..])
        .map_err(|_| EncodingError::InvalidBase58)?;
    let s = core::str::from_utf8(&text[..n]).map_err(|_| EncodingError::InvalidBase58)?;
    B58String::try_from(s).map_err(|_| EncodingError::InvalidBase58)
}

/// Decode a string of a known kind into `out`, returning the payload.
pub fn decode<'o>(
    prefix: Prefix,
    text: &str,
    out: &'o mut [u8; MAX_PAYLOAD],
) -> Result<&'o [u8], EncodingError> {
    let (found, payload) = decode_any(text, out)?;
    if found == prefix {
        Ok(payload)
    } else {
        Err(EncodingError::WrongKind { expected: prefix })
    }
}

/// Decode a string of any known kind, returning which kind it was and its payload.
///
/// Encrypted secret keys are recognised and refused with
/// [`EncodingError::EncryptedSecretKey`].
pub fn decode_any<'o>(
    text: &str,
    out: &'o mut [u8; MAX_PAYLOAD],
) -> Result<(Prefix, &'o [u8]), EncodingError> {
    if text.len() > MAX_TEXT {
        return Err(EncodingError::InvalidBase58);
    }
    let mut raw = [0u8; MAX_PREFIX + MAX_PAYLOAD + 4 + 8];
    let n = bs58::decode(text)
        .with_check(None)
        .onto(&mut raw[..])
        .map_err(|e| match e {
            bs58::decode::Error::InvalidChecksum { .. } => EncodingError::BadChecksum,
            _ => EncodingError::InvalidBase58,
        })?;
    let raw = &raw[..n];
    for prefix in Prefix::ALL {
        let p = prefix.bytes();
        if raw.len() == p.len() + prefix.payload_len() && raw.starts_with(p) {
            if prefix.is_encrypted_secret() {
                return Err(EncodingError::EncryptedSecretKey { prefix });
            }
            let len = prefix.payload_len();
            out[..len].copy_from_slice(&raw[p.len()..]);
            return Ok((prefix, &out[..len]));
        }
    }
    Err(EncodingError::UnknownPrefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Source: Octez `src/lib_crypto/base58.ml` prefixes, checked against values quoted in
    // `docs/protocol.md` §5.2 (mainnet chain id NetXdQprcVkpaWU = 7a06a770).
    #[test]
    fn mainnet_chain_id() {
        let s = encode(Prefix::ChainId, &[0x7a, 0x06, 0xa7, 0x70]).expect("encode");
        assert_eq!(s.as_str(), "NetXdQprcVkpaWU");
        let mut buf = [0u8; MAX_PAYLOAD];
        let p = decode(Prefix::ChainId, "NetXdQprcVkpaWU", &mut buf).expect("decode");
        assert_eq!(p, &[0x7a, 0x06, 0xa7, 0x70]);
    }

    #[test]
    fn checksum_is_checked() {
        let mut buf = [0u8; MAX_PAYLOAD];
        // Last character changed from `U` to `V`.
        assert_eq!(
            decode_any("NetXdQprcVkpaWV", &mut buf).map(|(p, _)| p),
            Err(EncodingError::BadChecksum)
        );
    }

    #[test]
    fn wrong_length_refused() {
        assert_eq!(
            encode(Prefix::Tz1, &[0u8; 19]),
            Err(EncodingError::WrongLength {
                expected: 20,
                got: 19
            })
        );
    }
}
