//! The encodings `pawl-sim gcp` answers in: DER ECDSA signatures (RFC 3279), SubjectPublicKeyInfo
//! PEM (RFC 5480), hex.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use crate::azure::KeyPair;

pub(super) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// DER `INTEGER` of a 32-byte big-endian value.
fn der_integer(v: &[u8; 32], out: &mut Vec<u8>) {
    let start = v.iter().position(|b| *b != 0).unwrap_or(31);
    let v = &v[start..];
    let pad = v[0] & 0x80 != 0;
    out.push(0x02);
    out.push((v.len() + usize::from(pad)) as u8);
    if pad {
        out.push(0);
    }
    out.extend_from_slice(v);
}

/// DER `ECDSA-Sig-Value` of raw `r ‖ s` (RFC 3279), as Cloud KMS returns.
pub(super) fn der_signature(sig: &[u8; 64]) -> Vec<u8> {
    let mut body = Vec::new();
    let (r, s) = sig.split_at(32);
    der_integer(r.try_into().unwrap_or(&[0; 32]), &mut body);
    der_integer(s.try_into().unwrap_or(&[0; 32]), &mut body);
    let mut out = vec![0x30, body.len() as u8];
    out.extend_from_slice(&body);
    out
}

/// SubjectPublicKeyInfo PEM and Cloud KMS algorithm name of a key.
pub(super) fn public_pem(key: &KeyPair) -> (String, &'static str) {
    const EC: [u8; 9] = [0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    let (curve_oid, point, algorithm): (&[u8], Vec<u8>, _) = match key {
        KeyPair::Secp(k) => (
            &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a],
            k.verifying_key().to_sec1_point(false).as_bytes().to_vec(),
            "EC_SIGN_SECP256K1_SHA256",
        ),
        KeyPair::P256(k) => (
            &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07],
            k.verifying_key().to_sec1_point(false).as_bytes().to_vec(),
            "EC_SIGN_P256_SHA256",
        ),
    };
    let mut alg = vec![0x30, (EC.len() + curve_oid.len()) as u8];
    alg.extend_from_slice(&EC);
    alg.extend_from_slice(curve_oid);
    let mut bits = vec![0x03, (point.len() + 1) as u8, 0x00];
    bits.extend_from_slice(&point);
    let mut der = vec![0x30, (alg.len() + bits.len()) as u8];
    der.extend_from_slice(&alg);
    der.extend_from_slice(&bits);
    (pem("PUBLIC KEY", &der), algorithm)
}

pub(super) fn pem(label: &str, der: &[u8]) -> String {
    let b64 = B64.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}
