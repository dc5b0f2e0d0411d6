//! The two DER structures AWS KMS answers with, read strictly: the public key of
//! `GetPublicKey` (an X.509 `SubjectPublicKeyInfo`, RFC 5480) and the signature of `Sign`
//! (an `ECDSA-Sig-Value`, RFC 3279: `SEQUENCE { r INTEGER, s INTEGER }`).
//!
//! Only what a tz2/tz3 key can produce is accepted: a SubjectPublicKeyInfo for secp256k1 or
//! P-256 with an uncompressed point (the form KMS returns), and an ECDSA signature whose
//! integers fit in 32 bytes. Anything else is an error naming what was wrong; the board
//! verifies every signature anyway, so a lenient parse could not release a bad one, but it
//! would turn a service fault into a confusing "does not verify".

use pawl_core::keys::Curve;

/// `SEQUENCE { SEQUENCE { id-ecPublicKey, secp256k1 }, BIT STRING (0 unused bits) }` up to the
/// point: 1.2.840.10045.2.1 and 1.3.132.0.10.
const SPKI_SECP256K1: &[u8] = &[
    0x30, 0x56, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b,
    0x81, 0x04, 0x00, 0x0a, 0x03, 0x42, 0x00,
];

/// The same for P-256: 1.2.840.10045.2.1 and 1.2.840.10045.3.1.7.
const SPKI_P256: &[u8] = &[
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// The compressed point (`02|03 ‖ x`) of a DER SubjectPublicKeyInfo for `curve` (tz2 or tz3).
pub fn spki_point(der: &[u8], curve: Curve) -> Result<[u8; 33], String> {
    let prefix = match curve {
        Curve::Secp256k1 => SPKI_SECP256K1,
        Curve::P256 => SPKI_P256,
        other => return Err(format!("{other} keys cannot be held in AWS KMS")),
    };
    let Some(point) = der.strip_prefix(prefix) else {
        return Err(format!(
            "the public key ({} bytes of DER) is not a {curve} SubjectPublicKeyInfo",
            der.len()
        ));
    };
    // Uncompressed SEC1 point: 04 ‖ x ‖ y.
    if point.len() != 65 || point[0] != 0x04 {
        return Err("the public key's point is not an uncompressed 65-byte point".into());
    }
    let mut compressed = [0u8; 33];
    compressed[0] = 2 | (point[64] & 1);
    compressed[1..].copy_from_slice(&point[1..33]);
    Ok(compressed)
}

/// Raw `r ‖ s` (32 bytes each, big-endian) of a DER `ECDSA-Sig-Value`.
pub fn ecdsa_signature(der: &[u8]) -> Result<[u8; 64], String> {
    let body = match der {
        // Short-form length: a P-256 or secp256k1 signature is at most 72 bytes.
        [0x30, len, rest @ ..] if usize::from(*len) == rest.len() && *len < 0x80 => rest,
        _ => {
            return Err(format!(
                "the signature ({} bytes) is not a DER SEQUENCE",
                der.len()
            ));
        }
    };
    let (r, rest) = integer(body, "r")?;
    let (s, rest) = integer(rest, "s")?;
    if !rest.is_empty() {
        return Err(format!(
            "{} byte(s) after s in the DER signature",
            rest.len()
        ));
    }
    let mut raw = [0u8; 64];
    raw[32 - r.len()..32].copy_from_slice(r);
    raw[64 - s.len()..].copy_from_slice(s);
    Ok(raw)
}

/// One positive DER INTEGER of at most 32 significant bytes: its value without the sign byte,
/// and what follows it.
fn integer<'a>(der: &'a [u8], name: &str) -> Result<(&'a [u8], &'a [u8]), String> {
    let [0x02, len, rest @ ..] = der else {
        return Err(format!("{name} is not a DER INTEGER"));
    };
    let len = usize::from(*len);
    if len == 0 || len > rest.len() {
        return Err(format!("{name}: bad length {len}"));
    }
    let (value, rest) = rest.split_at(len);
    if value[0] & 0x80 != 0 {
        return Err(format!("{name} is negative"));
    }
    // Minimal encoding: a leading zero only in front of a byte with its top bit set.
    let value = match value {
        [0, next, ..] if next & 0x80 != 0 => &value[1..],
        [0, _, ..] => return Err(format!("{name} is not minimally encoded")),
        _ => value,
    };
    if value.len() > 32 {
        return Err(format!("{name} is longer than 32 bytes"));
    }
    if value.iter().all(|b| *b == 0) {
        return Err(format!("{name} is zero"));
    }
    Ok((value, rest))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use openssl::bn::BigNumContext;
    use openssl::ec::{EcGroup, EcKey, PointConversionForm};
    use openssl::ecdsa::EcdsaSig;
    use openssl::nid::Nid;

    fn key(nid: Nid) -> EcKey<openssl::pkey::Private> {
        EcKey::generate(&EcGroup::from_curve_name(nid).unwrap()).unwrap()
    }

    fn compressed(k: &EcKey<openssl::pkey::Private>) -> Vec<u8> {
        let mut ctx = BigNumContext::new().unwrap();
        k.public_key()
            .to_bytes(k.group(), PointConversionForm::COMPRESSED, &mut ctx)
            .unwrap()
    }

    #[test]
    fn spki_of_both_curves_gives_openssls_compressed_point() {
        for (nid, curve) in [
            (Nid::SECP256K1, Curve::Secp256k1),
            (Nid::X9_62_PRIME256V1, Curve::P256),
        ] {
            for _ in 0..20 {
                let k = key(nid);
                let spki = k.public_key_to_der().unwrap();
                assert_eq!(spki_point(&spki, curve).unwrap().to_vec(), compressed(&k));
            }
        }
    }

    #[test]
    fn spki_of_the_other_curve_or_damaged_is_refused() {
        let k1 = key(Nid::SECP256K1).public_key_to_der().unwrap();
        let p256 = key(Nid::X9_62_PRIME256V1).public_key_to_der().unwrap();
        assert!(spki_point(&k1, Curve::P256).is_err());
        assert!(spki_point(&p256, Curve::Secp256k1).is_err());
        assert!(spki_point(&k1[..k1.len() - 1], Curve::Secp256k1).is_err());
        let mut compressed_form = p256.clone();
        compressed_form[26] = 0x02;
        assert!(spki_point(&compressed_form, Curve::P256).is_err());
        assert!(spki_point(&k1, Curve::Ed25519).is_err());
    }

    #[test]
    fn der_signatures_give_openssls_r_and_s() {
        // Many signatures: r or s below 2^248 (a shorter INTEGER) and with the top bit set (a
        // leading zero byte) both occur.
        for nid in [Nid::SECP256K1, Nid::X9_62_PRIME256V1] {
            let k = key(nid);
            for i in 0..300u32 {
                let digest = [i as u8; 32];
                let sig = EcdsaSig::sign(&digest, &k).unwrap();
                let raw = ecdsa_signature(&sig.to_der().unwrap()).unwrap();
                assert_eq!(raw[..32], sig.r().to_vec_padded(32).unwrap()[..]);
                assert_eq!(raw[32..], sig.s().to_vec_padded(32).unwrap()[..]);
            }
        }
    }

    #[test]
    fn malformed_signatures_are_refused() {
        let k = key(Nid::X9_62_PRIME256V1);
        let der = EcdsaSig::sign(&[7; 32], &k).unwrap().to_der().unwrap();
        assert!(ecdsa_signature(&der).is_ok());
        assert!(ecdsa_signature(&der[..der.len() - 1]).is_err());
        let mut trailing = der.clone();
        trailing.push(0);
        trailing[1] += 1;
        assert!(ecdsa_signature(&trailing).unwrap_err().contains("after s"));
        assert!(ecdsa_signature(&[]).is_err());
        // Raw r ‖ s where DER is expected.
        assert!(ecdsa_signature(&[0x11; 64]).is_err());
        // r padded with a needless zero byte.
        let r = [0x01; 32];
        let mut padded = vec![0x30, 0, 0x02, 33, 0];
        padded.extend_from_slice(&r);
        padded.extend_from_slice(&[0x02, 1, 1]);
        padded[1] = (padded.len() - 2) as u8;
        assert!(ecdsa_signature(&padded).unwrap_err().contains("minimally"));
        // A negative s, a zero r, a 33-byte value.
        assert!(ecdsa_signature(&[0x30, 6, 0x02, 1, 1, 0x02, 1, 0x80]).is_err());
        assert!(ecdsa_signature(&[0x30, 6, 0x02, 1, 0, 0x02, 1, 1]).is_err());
        let mut long = vec![0x30, 0, 0x02, 34, 0];
        long.extend_from_slice(&[0x80; 33]);
        long.extend_from_slice(&[0x02, 1, 1]);
        long[1] = (long.len() - 2) as u8;
        assert!(ecdsa_signature(&long).unwrap_err().contains("longer"));
    }
}
