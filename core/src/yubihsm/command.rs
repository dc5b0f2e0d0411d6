//! The few YubiHSM2 commands the board sends inside a session, and strict parsers for their
//! replies (Yubico "Commands": Sign ECDSA 0x56, Sign EdDSA 0x6a, Get Public Key 0x54,
//! Generate Asymmetric Key 0x46, and for `pawl device selftest --yubihsm` Echo 0x01 and
//! Delete Object 0x58).

use super::{HsmError, code};
use crate::keys::{Curve, PublicKey};

/// Object id of a key in the HSM.
pub type ObjectId = u16;

/// YubiHSM2 algorithm numbers of the keys pawl uses.
const ALGORITHM_EC_P256: u8 = 0x0c;
const ALGORITHM_EC_K256: u8 = 0x0f;
const ALGORITHM_ED25519: u8 = 0x2e;

/// Capability bits of a key pawl has the HSM generate: it may sign (ECDSA or EdDSA) and
/// nothing else — in particular not `exportable-under-wrap` (0x1_0000), so the secret never
/// leaves the HSM, not even wrapped.
const CAPABILITY_SIGN_ECDSA: u64 = 0x80;
const CAPABILITY_SIGN_EDDSA: u64 = 0x100;

/// YubiHSM2 object type of an asymmetric key.
const OBJECT_TYPE_ASYMMETRIC_KEY: u8 = 0x03;

/// Bytes an [`Command::echo`] sends.
pub const ECHO_LEN: usize = 8;

/// Length of a YubiHSM2 object label.
pub const LABEL_LEN: usize = 40;

/// Longest message the board has the HSM sign whole with Sign EdDSA: CometBFT sign bytes
/// (the HSM's own limit is its 2,048-byte message buffer).
pub const MAX_MESSAGE: usize = crate::protocol::cometbft::MAX_COMET_SIGN_BYTES;

/// Longest command data: Sign EdDSA over a whole [`MAX_MESSAGE`]-byte message (key id, then
/// the message); Generate Asymmetric Key (id, label, domains, capabilities, algorithm) is
/// shorter.
pub const MAX_DATA: usize = 2 + MAX_MESSAGE;

/// An inner command: its code and data (key id, then the digest if any).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Command {
    /// Command code.
    pub code: u8,
    data: [u8; MAX_DATA],
    len: usize,
}

impl Command {
    /// The command's data.
    pub fn data(&self) -> &[u8] {
        &self.data[..self.len]
    }

    fn with_key(code: u8, key: ObjectId, digest: Option<&[u8; 32]>) -> Command {
        let mut data = [0u8; MAX_DATA];
        data[..2].copy_from_slice(&key.to_be_bytes());
        let len = match digest {
            Some(d) => {
                data[2..34].copy_from_slice(d);
                34
            }
            None => 2,
        };
        Command { code, data, len }
    }

    /// Sign the 32-byte `digest` with key `key` of `curve`: Sign ECDSA for secp256k1 and
    /// P-256 (the digest is the "hash" the HSM signs), Sign EdDSA for Ed25519 (the digest is
    /// the message, which is what Tezos tz1 signs).
    pub fn sign(curve: Curve, key: ObjectId, digest: &[u8; 32]) -> Result<Command, HsmError> {
        match curve {
            Curve::Secp256k1 | Curve::P256 => {
                Ok(Command::with_key(code::SIGN_ECDSA, key, Some(digest)))
            }
            Curve::Ed25519 => Ok(Command::with_key(code::SIGN_EDDSA, key, Some(digest))),
            Curve::Bls12_381 => Err(HsmError::UnsupportedCurve),
        }
    }

    /// Sign EdDSA over the whole `message` with Ed25519 key `key` (CometBFT signs its sign
    /// bytes themselves, not a digest of them). At most [`MAX_MESSAGE`] bytes.
    pub fn sign_message(key: ObjectId, message: &[u8]) -> Result<Command, HsmError> {
        let mut data = [0u8; MAX_DATA];
        let len = 2 + message.len();
        data.get_mut(2..len)
            .ok_or(HsmError::TooLong)?
            .copy_from_slice(message);
        data[..2].copy_from_slice(&key.to_be_bytes());
        Ok(Command {
            code: code::SIGN_EDDSA,
            data,
            len,
        })
    }

    /// Get Public Key of `key`.
    pub fn get_public_key(key: ObjectId) -> Command {
        Command::with_key(code::GET_PUBLIC_KEY, key, None)
    }

    /// Echo: the HSM answers with the same bytes.
    pub fn echo(bytes: &[u8; ECHO_LEN]) -> Command {
        let mut data = [0u8; MAX_DATA];
        data[..ECHO_LEN].copy_from_slice(bytes);
        Command {
            code: code::ECHO,
            data,
            len: ECHO_LEN,
        }
    }

    /// Delete Object: asymmetric key `key` (object id, then the object type, Yubico's
    /// "Asymmetric Key" type 0x03).
    pub fn delete_asymmetric_key(key: ObjectId) -> Command {
        let mut data = [0u8; MAX_DATA];
        data[..2].copy_from_slice(&key.to_be_bytes());
        data[2] = OBJECT_TYPE_ASYMMETRIC_KEY;
        Command {
            code: code::DELETE_OBJECT,
            data,
            len: 3,
        }
    }

    /// Generate Asymmetric Key: a `curve` key with id `key` (0: the HSM picks one), `label`
    /// (zero-padded), in `domains`, allowed to sign and nothing else.
    pub fn generate(
        curve: Curve,
        key: ObjectId,
        label: &[u8; LABEL_LEN],
        domains: u16,
    ) -> Result<Command, HsmError> {
        let (algorithm, capabilities) = match curve {
            Curve::Secp256k1 => (ALGORITHM_EC_K256, CAPABILITY_SIGN_ECDSA),
            Curve::P256 => (ALGORITHM_EC_P256, CAPABILITY_SIGN_ECDSA),
            Curve::Ed25519 => (ALGORITHM_ED25519, CAPABILITY_SIGN_EDDSA),
            Curve::Bls12_381 => return Err(HsmError::UnsupportedCurve),
        };
        const GENERATE_LEN: usize = 2 + LABEL_LEN + 2 + 8 + 1;
        let mut data = [0u8; MAX_DATA];
        data[..2].copy_from_slice(&key.to_be_bytes());
        data[2..42].copy_from_slice(label);
        data[42..44].copy_from_slice(&domains.to_be_bytes());
        data[44..52].copy_from_slice(&capabilities.to_be_bytes());
        data[52] = algorithm;
        Ok(Command {
            code: code::GENERATE_ASYMMETRIC_KEY,
            data,
            len: GENERATE_LEN,
        })
    }
}

/// The key id in a Generate Asymmetric Key reply.
pub fn generated_key(data: &[u8]) -> Result<ObjectId, HsmError> {
    let id: [u8; 2] = data.try_into().map_err(|_| HsmError::Malformed)?;
    Ok(u16::from_be_bytes(id))
}

/// The raw signature in a Sign ECDSA / Sign EdDSA reply: `r ‖ s` (from DER) or Ed25519's 64
/// bytes. Not yet checked against any key.
pub fn signature(curve: Curve, data: &[u8]) -> Result<[u8; 64], HsmError> {
    match curve {
        Curve::Secp256k1 | Curve::P256 => der_to_raw(data),
        Curve::Ed25519 => data.try_into().map_err(|_| HsmError::Malformed),
        Curve::Bls12_381 => Err(HsmError::UnsupportedCurve),
    }
}

/// A Get Public Key reply (`algorithm ‖ key`; EC keys as `x ‖ y`) as a Tezos public key,
/// validated as a point of the expected curve.
pub fn public_key(data: &[u8]) -> Result<PublicKey, HsmError> {
    let (&algorithm, key) = data.split_first().ok_or(HsmError::Malformed)?;
    let curve = match algorithm {
        ALGORITHM_EC_K256 => Curve::Secp256k1,
        ALGORITHM_EC_P256 => Curve::P256,
        ALGORITHM_ED25519 => Curve::Ed25519,
        _ => return Err(HsmError::UnsupportedCurve),
    };
    let public = match curve {
        Curve::Ed25519 => PublicKey::from_curve_bytes(curve, key),
        _ => {
            let [x @ .., last] = <[u8; 64]>::try_from(key).map_err(|_| HsmError::Malformed)?;
            let mut compressed = [0u8; 33];
            compressed[0] = if last & 1 == 1 { 0x03 } else { 0x02 };
            compressed[1..].copy_from_slice(&x[..32]);
            PublicKey::from_curve_bytes(curve, &compressed)
        }
    }
    .map_err(|_| HsmError::Malformed)?;
    public.validate().map_err(|_| HsmError::Malformed)?;
    Ok(public)
}

/// Strict DER `ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }` for 256-bit curves:
/// short lengths, minimal positive integers of at most 32 significant bytes, nothing trailing.
pub fn der_to_raw(der: &[u8]) -> Result<[u8; 64], HsmError> {
    let [0x30, len, body @ ..] = der else {
        return Err(HsmError::Malformed);
    };
    if usize::from(*len) != body.len() || *len >= 0x80 {
        return Err(HsmError::Malformed);
    }
    let mut raw = [0u8; 64];
    let (r, rest) = der_integer(body)?;
    let (s, rest) = der_integer(rest)?;
    if !rest.is_empty() {
        return Err(HsmError::Malformed);
    }
    raw[32 - r.len()..32].copy_from_slice(r);
    raw[64 - s.len()..].copy_from_slice(s);
    Ok(raw)
}

fn der_integer(input: &[u8]) -> Result<(&[u8], &[u8]), HsmError> {
    let [0x02, len, rest @ ..] = input else {
        return Err(HsmError::Malformed);
    };
    let len = usize::from(*len);
    let (value, rest) = rest.split_at_checked(len).ok_or(HsmError::Malformed)?;
    let value = match value {
        [] => return Err(HsmError::Malformed),
        // Negative numbers are not signature values.
        [first, ..] if first & 0x80 != 0 => return Err(HsmError::Malformed),
        // A leading zero only where the next byte has its top bit set (minimal encoding).
        [0, next, ..] if next & 0x80 != 0 => &value[1..],
        [0, _, ..] => return Err(HsmError::Malformed),
        v => v,
    };
    if value.len() > 32 || value.iter().all(|b| *b == 0) {
        return Err(HsmError::Malformed);
    }
    Ok((value, rest))
}
