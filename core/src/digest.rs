//! The two BLAKE2b digests Tezos uses: 256-bit for what is signed and for watermark hashes,
//! 160-bit for public key hashes.

use blake2::Digest;
use blake2::digest::consts::{U20, U32};

/// BLAKE2b-256 of `data` (what tz1/tz2/tz3 keys sign; the watermark's payload hash).
pub fn blake2b_256(data: &[u8]) -> [u8; 32] {
    blake2::Blake2b::<U32>::digest(data).into()
}

/// BLAKE2b-160 of `data` (a public key hash).
pub fn blake2b_160(data: &[u8]) -> [u8; 20] {
    blake2::Blake2b::<U20>::digest(data).into()
}
