//! Helpers of the hostile-host fuzzer (`core/tests/hostile.rs`): a seeded PRNG, payloads built
//! from the byte layouts of `docs/protocol.md` §3, frame building and mutation, the simulated
//! key service of host-held keys, the mock HSM, and Octez's fixed-offset reading of a
//! consensus payload.
#![allow(
    dead_code,
    clippy::cast_possible_truncation,
    clippy::std_instead_of_core
)]

use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::ecdsa::EcdsaSig;
use openssl::nid::Nid;
use pawl_core::keys::{Curve, PublicKey, Signature};
use pawl_core::protocol::{Envelope, MAX_BODY, MAX_FRAME, Request};
use serde::Serialize;

/// splitmix64: small, seedable, good enough to drive a fuzzer.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
    pub fn pct(&mut self, p: u64) -> bool {
        self.below(100) < p
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
    /// Up to `max - 1` random bytes.
    pub fn upto(&mut self, max: u64) -> Vec<u8> {
        let n = self.below(max) as usize;
        self.bytes(n)
    }
    /// A number of up to `max_bits` random bits.
    pub fn bits(&mut self, max_bits: u64) -> u64 {
        let b = self.below(max_bits);
        self.below(1 << b)
    }
    pub fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut a = [0u8; N];
        a.iter_mut().for_each(|b| *b = self.next() as u8);
        a
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// A Zarith natural (little-endian groups of 7 bits).
pub fn zarith(mut n: u64, out: &mut Vec<u8>) {
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// A `0x11` block header, laid out as `docs/protocol.md` §3.1: locked round or not, seed nonce
/// hash or not, random hashes.
pub fn block(rng: &mut Rng, chain: [u8; 4], level: u32, round: u32) -> Vec<u8> {
    let mut v = vec![0x11];
    v.extend_from_slice(&chain);
    v.extend_from_slice(&level.to_be_bytes());
    v.push(rng.next() as u8); // proto level
    v.extend(rng.bytes(32)); // predecessor
    v.extend_from_slice(&(1_700_000_000 + rng.below(1 << 20)).to_be_bytes());
    v.push(4); // validation passes
    v.extend(rng.bytes(32)); // operations hash
    let mut fitness = Vec::new();
    let mut element = |bytes: &[u8]| {
        fitness.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        fitness.extend_from_slice(bytes);
    };
    element(&[2]);
    element(&level.to_be_bytes());
    if rng.pct(30) {
        element(&(round.saturating_sub(1)).to_be_bytes());
    } else {
        element(&[]);
    }
    element(&(rng.below(3) as u32).to_be_bytes());
    element(&round.to_be_bytes());
    v.extend_from_slice(&(fitness.len() as u32).to_be_bytes());
    v.extend(fitness);
    v.extend(rng.bytes(64)); // context, payload hash
    v.extend_from_slice(&round.to_be_bytes()); // payload round
    v.extend(rng.bytes(8)); // proof-of-work nonce
    if rng.pct(20) {
        v.push(0xff);
        v.extend(rng.bytes(32));
    } else {
        v.push(0);
    }
    v.push(rng.below(3) as u8); // per-block votes
    v
}

/// A (pre)attestation (`docs/protocol.md` §3.2, §3.3): tags 20, 21, 23 (slot, DAL bit set) or
/// the BLS-mode tags 40, 41.
pub fn attestation(
    rng: &mut Rng,
    magic: u8,
    tag: u8,
    chain: [u8; 4],
    level: u32,
    round: u32,
) -> Vec<u8> {
    let mut v = vec![magic];
    v.extend_from_slice(&chain);
    v.extend(rng.bytes(32)); // branch
    v.push(tag);
    if tag != 40 && tag != 41 {
        v.extend_from_slice(&(rng.below(7000) as u16).to_be_bytes());
    }
    v.extend_from_slice(&level.to_be_bytes());
    v.extend_from_slice(&round.to_be_bytes());
    v.extend(rng.bytes(32)); // block payload hash
    if tag == 23 {
        zarith(rng.next() >> rng.below(64), &mut v);
    }
    v
}

/// Upstream generic operations (`core/tests/requests.rs`), their branch replaced.
const GENERIC: [&str; 5] = [
    "03a60703a9567bf69ec66b368c3d8562eba4cbf29278c2c10447a684e3aa1436856c00a0c7a9b0bcd6a48ee0c13094327f215ba2adeaa7d40dabc1af25e36fde02c096b10201f525eabd8b0eeace1494233ea0230d2c9ad6619b00ffff0b66756c66696c6c5f61736b0000000907070088f0f6010306",
    "03573a2d2d49a3b9634d1605c3aa48ebdd5d21a5885ad17aa44c2b1d0dbcbcac686c004b415314d2b56b0481a3ae8c992ce8bb8dba0369d086039ecb2dc35000c0843d000076b2f1ea1cf6753888ac5488693977446652d79e00",
    "03b89591b37be370e3db3fc7f77fdd176c5153f75ddcd239094c7ebeb66ee5e8bd6e002ea14368f6494539861ba04cf8cc946ace12cfd4ea09d89f40f44e00ff004b415314d2b56b0481a3ae8c992ce8bb8dba0369",
    "03742d8e0a99049a5053bd71ac18b40fbb1f20e262e45dec88acd6795ba75147066d004b415314d2b56b0481a3ae8c992ce8bb8dba0369d80aa1cb2d8156bb0200000000001c02000000170500035b0501035b050202000000080316053d036d0342000000020000",
    "0333faca8a156c5e69fc8a63a799911b7c94b126fc7294dbbc0b8cb6880a81944e6b0008460955bf19f2d43ff015d938d53198b14ff637eb09f5ae3f904e000084d813c61c2478b2f30cda0b5593ae5ba293226f44120e42476f0e0941f3702a006e0008460955bf19f2d43ff015d938d53198b14ff6378a09f6ae3ff44e00ff004b415314d2b56b0481a3ae8c992ce8bb8dba0369",
];

/// A `0x03` generic operation: an upstream one with a random branch, a ballot, or a
/// transaction with random amounts and entrypoint.
pub fn generic(rng: &mut Rng) -> Vec<u8> {
    match rng.below(3) {
        0 => {
            let mut v = hex::decode(rng.pick(&GENERIC)).expect("vector");
            v[1..33].copy_from_slice(&rng.bytes(32));
            v
        }
        1 => {
            let mut v = vec![0x03];
            v.extend(rng.bytes(32));
            v.push(6); // ballot
            v.push(rng.below(3) as u8);
            v.extend(rng.bytes(20));
            v.extend_from_slice(&(rng.below(200) as u32).to_be_bytes());
            v.extend(rng.bytes(32));
            v.push(rng.below(4) as u8); // 3 is no vote
            v
        }
        _ => {
            let mut v = vec![0x03];
            v.extend(rng.bytes(32));
            v.push(108); // transaction
            v.push(0);
            v.extend(rng.bytes(20));
            for _ in 0..5 {
                zarith(rng.bits(40), &mut v); // fee … amount
            }
            v.push(0);
            v.push(rng.below(3) as u8);
            v.extend(rng.bytes(20));
            if rng.pct(50) {
                v.push(0xff);
                v.push(rng.below(10) as u8); // entrypoint tag
                v.extend_from_slice(&[0, 0, 0, 2, 3, 11]); // Unit
            } else {
                v.push(0);
            }
            v
        }
    }
}

/// A `0x05` Micheline expression: random nesting of ints, strings, bytes, sequences and
/// primitives, sometimes deeper than the parser's limit.
pub fn michelson(rng: &mut Rng) -> Vec<u8> {
    fn node(rng: &mut Rng, depth: u32, v: &mut Vec<u8>) {
        let leaf = depth == 0 || rng.pct(40);
        match if leaf { rng.below(3) } else { 3 + rng.below(3) } {
            0 => {
                v.push(0);
                zarith(rng.below(1 << 20), v);
            }
            1 | 2 => {
                v.push(if rng.pct(50) { 1 } else { 10 });
                let n = rng.below(24) as usize;
                v.extend_from_slice(&(n as u32).to_be_bytes());
                v.extend(rng.bytes(n));
            }
            3 => {
                v.push(2);
                let mut inner = Vec::new();
                for _ in 0..rng.below(4) {
                    node(rng, depth - 1, &mut inner);
                }
                v.extend_from_slice(&(inner.len() as u32).to_be_bytes());
                v.extend(inner);
            }
            4 => {
                v.push(5);
                v.push(rng.below(150) as u8);
                node(rng, depth - 1, v);
            }
            _ => {
                v.push(7);
                v.push(rng.below(150) as u8);
                node(rng, depth - 1, v);
                node(rng, depth - 1, v);
            }
        }
    }
    let mut v = vec![0x05];
    if rng.pct(5) {
        for _ in 0..(40 + rng.below(20)) {
            v.extend_from_slice(&[5, 9]);
        }
        v.extend_from_slice(&[3, 11]);
    } else {
        let depth = 1 + rng.below(6) as u32;
        node(rng, depth, &mut v);
    }
    v
}

/// (chain, magic, level, round) read at Octez's fixed offsets (`docs/protocol.md` §3), the
/// level offset chosen by key type as Octez's signer does (38 for tz4, 40 otherwise).
pub fn octez_position(payload: &[u8], tz4: bool) -> Option<([u8; 4], u8, u32, u32)> {
    let be = |at: usize| -> Option<u32> {
        Some(u32::from_be_bytes(
            payload.get(at..at + 4)?.try_into().ok()?,
        ))
    };
    let magic = *payload.first()?;
    let chain: [u8; 4] = payload.get(1..5)?.try_into().ok()?;
    match magic {
        0x11 => {
            let f = usize::try_from(be(83)?).ok()?;
            Some((chain, magic, be(5)?, be(83usize.checked_add(f)?)?))
        }
        0x12 | 0x13 => {
            let at = if tz4 { 38 } else { 40 };
            Some((chain, magic, be(at)?, be(at + 4)?))
        }
        _ => None,
    }
}

/// One frame: `COBS(body ‖ crc32-le) ‖ 0`, for any body bytes (the mutated ones included).
pub fn frame_of_body(body: &[u8]) -> Vec<u8> {
    const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);
    let mut raw = body.to_vec();
    raw.extend_from_slice(&CRC.checksum(body).to_le_bytes());
    let mut out = vec![0u8; cobs::max_encoding_length(raw.len()) + 1];
    let n = cobs::try_encode(&raw, &mut out).expect("cobs");
    out.truncate(n);
    out.push(0);
    out
}

/// The postcard body of a request envelope.
pub fn body_of<M: Serialize>(id: u32, message: &M) -> Vec<u8> {
    let mut buf = vec![0u8; MAX_BODY + 64];
    let envelope = Envelope { id, message };
    postcard::to_slice(&envelope, &mut buf)
        .expect("postcard")
        .to_vec()
}

/// A well-formed request frame through the real `encode_frame`.
pub fn encode(id: u32, request: &Request<'_>) -> Vec<u8> {
    let mut scratch = vec![0u8; MAX_BODY + 64];
    let mut out = vec![0u8; MAX_FRAME + 16];
    let n = pawl_core::protocol::encode_frame(id, request, &mut scratch, &mut out)
        .expect("a generated request fits a frame");
    out.truncate(n);
    out
}

/// Mutate bytes: bit flips, truncation, extension, insertion, deletion, overwrite, duplication.
pub fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>) {
    for _ in 0..1 + rng.below(3) {
        let len = bytes.len().max(1) as u64;
        let at = rng.below(len) as usize;
        match rng.below(7) {
            0 if !bytes.is_empty() => bytes[at] ^= 1 << rng.below(8),
            1 => bytes.truncate(at),
            2 => bytes.extend(rng.upto(40)),
            3 => bytes.insert(at.min(bytes.len()), rng.next() as u8),
            4 if !bytes.is_empty() => {
                bytes.remove(at);
            }
            5 if !bytes.is_empty() => bytes[at] = *rng.pick(&[0, 0xff, 0x7f, 0x80, 1]),
            _ if !bytes.is_empty() => {
                let end = (at + 1 + rng.below(16) as usize).min(bytes.len());
                let chunk = bytes[at..end].to_vec();
                let to = rng.below(bytes.len() as u64) as usize;
                bytes.splice(to..to, chunk);
            }
            _ => bytes.push(rng.next() as u8),
        }
    }
}

/// The simulated key service of a host-held key (libsecp256k1 for tz2, OpenSSL for tz3).
pub enum ServiceKey {
    Secp(secp256k1::SecretKey),
    P256(EcKey<openssl::pkey::Private>),
}

impl ServiceKey {
    pub fn secp(seed: u8) -> Self {
        ServiceKey::Secp(secp256k1::SecretKey::from_byte_array([seed; 32]).expect("secret"))
    }

    /// A fixed P-256 key (so a seed replays the same run).
    pub fn p256() -> Self {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("group");
        let mut ctx = openssl::bn::BigNumContext::new().expect("ctx");
        let d = BigNum::from_slice(&[0x33; 32]).expect("d");
        let mut point = openssl::ec::EcPoint::new(&group).expect("point");
        point.mul_generator2(&group, &d, &mut ctx).expect("mul");
        ServiceKey::P256(EcKey::from_private_components(&group, &d, &point).expect("key"))
    }

    pub fn public(&self) -> PublicKey {
        match self {
            ServiceKey::Secp(sk) => {
                PublicKey::Secp256k1(secp256k1::PublicKey::from_secret_key_global(sk).serialize())
            }
            ServiceKey::P256(k) => {
                let mut ctx = openssl::bn::BigNumContext::new().expect("ctx");
                let bytes = k
                    .public_key()
                    .to_bytes(
                        k.group(),
                        openssl::ec::PointConversionForm::COMPRESSED,
                        &mut ctx,
                    )
                    .expect("point");
                PublicKey::from_curve_bytes(Curve::P256, &bytes).expect("p256")
            }
        }
    }

    /// Sign a digest as Key Vault does: raw `r ‖ s`; for secp256k1 optionally high-S.
    pub fn sign(&self, digest: &[u8; 32], high_s: bool) -> Signature {
        match self {
            ServiceKey::Secp(sk) => {
                let sig = secp256k1::SECP256K1
                    .sign_ecdsa(secp256k1::Message::from_digest(*digest), sk)
                    .serialize_compact();
                Signature::Secp256k1(if high_s { flip_s(&sig) } else { sig })
            }
            ServiceKey::P256(k) => {
                let sig = EcdsaSig::sign(digest, k).expect("sign");
                let mut raw = [0u8; 64];
                raw[..32].copy_from_slice(&sig.r().to_vec_padded(32).expect("r"));
                raw[32..].copy_from_slice(&sig.s().to_vec_padded(32).expect("s"));
                Signature::P256(raw)
            }
        }
    }
}

/// A BLS proof of possession of `msg` (a public key, maybe another than `pk`) made by `pk`,
/// checked with zkcrypto's `bls12_381` (POP ciphersuite).
pub fn verify_pop_of(pk: &[u8; 48], msg: &[u8], sig: &[u8; 96]) -> bool {
    use bls12_381::hash_to_curve::{ExpandMsgXmd, HashToCurve};
    use bls12_381::{G1Affine, G2Affine, G2Projective, pairing};
    let pk = G1Affine::from_compressed(pk);
    let sig = G2Affine::from_compressed(sig);
    if pk.is_none().into() || sig.is_none().into() {
        return false;
    }
    let (pk, sig) = (pk.expect("checked"), sig.expect("checked"));
    if bool::from(pk.is_identity()) {
        return false;
    }
    let h = <G2Projective as HashToCurve<ExpandMsgXmd<sha2_010::Sha256>>>::hash_to_curve(
        [msg],
        super::support::BLS_POP_DST,
    );
    pairing(&pk, &G2Affine::from(h)) == pairing(&G1Affine::generator(), &sig)
}

/// `s → n − s` on secp256k1.
fn flip_s(sig: &[u8; 64]) -> [u8; 64] {
    let n =
        BigNum::from_hex_str("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141")
            .expect("n");
    let s = BigNum::from_slice(&sig[32..]).expect("s");
    let mut high = BigNum::new().expect("bn");
    high.checked_sub(&n, &s).expect("sub");
    let mut out = *sig;
    out[32..].copy_from_slice(&high.to_vec_padded(32).expect("pad"));
    out
}

/// A mock YubiHSM2 with the fuzzer's three keys put in from fixed secrets (so a mock that
/// panicked on hostile bytes and poisoned itself can be replaced by one with the same keys),
/// and the signing authentication key of `support::hsm`.
pub fn fresh_hsm() -> super::support::hsm::Hsm {
    use super::support::hsm::{ED25519_ID, K256_ID, P256_ID, SIGNER_AUTH_ID, SIGNER_PASSWORD};
    use yubihsm::asymmetric::Algorithm;
    use yubihsm::{Capability, Client, Connector, Credentials, Domain, object::Label};
    let connector = Connector::mockhsm();
    let client = Client::open(connector.clone(), Credentials::default(), true).expect("open");
    let caps = Capability::SIGN_ECDSA | Capability::SIGN_EDDSA;
    for (id, alg, seed) in [
        (K256_ID, Algorithm::EcK256, 0x41),
        (P256_ID, Algorithm::EcP256, 0x42),
        (ED25519_ID, Algorithm::Ed25519, 0x43),
    ] {
        client
            .put_asymmetric_key(
                id,
                Label::from("pawl"),
                Domain::DOM1,
                caps,
                alg,
                vec![seed; 32],
            )
            .expect("put key");
    }
    client
        .put_authentication_key(
            SIGNER_AUTH_ID,
            Label::from("pawl-signer"),
            Domain::DOM1,
            caps | Capability::GENERATE_ASYMMETRIC_KEY,
            caps,
            yubihsm::authentication::Algorithm::YubicoAes,
            yubihsm::authentication::Key::derive_from_password(SIGNER_PASSWORD),
        )
        .expect("auth key");
    super::support::hsm::Hsm {
        connector,
        messages: 0,
    }
}
