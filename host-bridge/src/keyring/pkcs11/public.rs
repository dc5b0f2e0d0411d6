//! A token key's public key from its PKCS#11 attributes: `CKA_KEY_TYPE`, `CKA_EC_PARAMS` (the
//! curve, DER) and `CKA_EC_POINT` (the point, DER OCTET STRING — some libraries give it bare).
//!
//! | key type | `CKA_EC_PARAMS` | curve | `CKA_EC_POINT` |
//! |---|---|---|---|
//! | `CKK_EC_EDWARDS` | OID 1.3.101.112 or PrintableString `edwards25519` | Ed25519, tz1 | 32 bytes (RFC 8032) |
//! | `CKK_EC` | OID 1.3.132.0.10 | secp256k1, tz2 | `04 ‖ x ‖ y` (SEC 1, uncompressed) |
//! | `CKK_EC` | OID 1.2.840.10045.3.1.7 | P-256, tz3 | `04 ‖ x ‖ y` |
//!
//! PKCS#11 v3.0 §2.3.3 / §2.3.6 (EC and Edwards key objects); the OIDs from RFC 5480 / SEC 2
//! and RFC 8410.

use cryptoki::object::KeyType;
use pawl_core::keys::{Curve, PublicKey};

const SECP256K1: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a];
const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const ED25519_OID: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
const ED25519_NAME: &[u8] = b"\x13\x0cedwards25519";

/// The Tezos public key of a token key, or why it cannot sign for Tezos.
pub(super) fn from_attributes(
    key_type: KeyType,
    params: &[u8],
    point: &[u8],
) -> Result<PublicKey, String> {
    let curve = if key_type == KeyType::EC_EDWARDS {
        if params == ED25519_OID || params == ED25519_NAME {
            Curve::Ed25519
        } else {
            return Err(format!(
                "an Edwards key on a curve other than Ed25519 (CKA_EC_PARAMS {})",
                hex::encode(params)
            ));
        }
    } else if key_type == KeyType::EC {
        match params {
            SECP256K1 => Curve::Secp256k1,
            P256 => Curve::P256,
            _ => {
                return Err(format!(
                    "an EC key on a curve other than secp256k1 or P-256 (CKA_EC_PARAMS {})",
                    hex::encode(params)
                ));
            }
        }
    } else {
        return Err(format!(
            "a {key_type} key: only Ed25519 (tz1), secp256k1 (tz2) and P-256 (tz3) keys sign for Tezos"
        ));
    };
    let bytes = match curve {
        Curve::Ed25519 => unwrap_octets(point, 32).to_vec(),
        _ => {
            let raw = unwrap_octets(point, 65);
            if raw.len() != 65 || raw[0] != 0x04 {
                return Err(format!(
                    "CKA_EC_POINT of {} bytes is not an uncompressed point",
                    point.len()
                ));
            }
            // x and the parity of y: the point's compressed form, as Tezos encodes it. Every
            // signature is verified by the board under this key, so a token that gave a
            // point off the curve gets its signatures refused, never released.
            let mut compressed = vec![2 | (raw[64] & 1)];
            compressed.extend_from_slice(&raw[1..33]);
            compressed
        }
    };
    let pk = PublicKey::from_curve_bytes(curve, &bytes).map_err(|e| e.to_string())?;
    pk.validate().map_err(|e| e.to_string())?;
    Ok(pk)
}

/// `point` without its DER OCTET STRING header when it has one around `len` bytes.
fn unwrap_octets(point: &[u8], len: usize) -> &[u8] {
    match point {
        [0x04, n, rest @ ..] if usize::from(*n) == len && rest.len() == len => rest,
        _ => point,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curves_and_point_forms() {
        // P-256 generator, uncompressed, wrapped and bare.
        let x = "6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296";
        let y = "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5";
        let bare = hex::decode(format!("04{x}{y}")).expect("hex");
        let mut wrapped = vec![0x04, 65];
        wrapped.extend_from_slice(&bare);
        let a = from_attributes(KeyType::EC, P256, &bare).expect("bare");
        let b = from_attributes(KeyType::EC, P256, &wrapped).expect("wrapped");
        assert_eq!(a, b);
        assert_eq!(a.curve(), Curve::P256);
        assert_eq!(hex::encode(&a.as_bytes()[1..]), x);
        assert_eq!(a.as_bytes()[0], 3, "y is odd");
        // x = 5 is on no secp256k1 point (the board's own validation refuses it).
        let mut off = vec![0u8; 65];
        off[0] = 4;
        off[32] = 5;
        assert!(from_attributes(KeyType::EC, SECP256K1, &off).is_err());
        // Ed25519 (RFC 8032 test 1's public key), both parameter spellings.
        let ed = hex::decode("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
            .expect("hex");
        let mut ed_wrapped = vec![0x04, 32];
        ed_wrapped.extend_from_slice(&ed);
        for params in [ED25519_OID, ED25519_NAME] {
            let pk = from_attributes(KeyType::EC_EDWARDS, params, &ed_wrapped).expect("ed25519");
            assert_eq!(pk.curve(), Curve::Ed25519);
            assert_eq!(pk.as_bytes(), ed.as_slice());
        }
        assert!(from_attributes(KeyType::RSA, P256, &bare).is_err());
        assert!(from_attributes(KeyType::EC_EDWARDS, P256, &ed).is_err());
    }
}
