//! The RP2350's true random number generator as the core's [`Entropy`] (key generation).
//!
//! The TRNG block samples a ring oscillator and runs its own autocorrelation and
//! repetition checks (embassy-rp restarts it when they fail), but its output is close to raw
//! noise, so it is conditioned: every 32 output bytes are BLAKE2b-256 of 64 fresh TRNG bytes,
//! a domain string and a block counter.

use embassy_rp::peripherals::TRNG;
use embassy_rp::trng::Trng;
use pawl_core::digest::blake2b_256;
use pawl_core::keys::{Entropy, KeyError};
use zeroize::Zeroize;

const DOMAIN: &[u8; 16] = b"pawl/rp2350/rng1";

/// The on-chip TRNG, conditioned.
pub struct TrngEntropy(pub Trng<'static, TRNG>);

impl Entropy for TrngEntropy {
    fn fill(&mut self, dest: &mut [u8]) -> Result<(), KeyError> {
        let mut input = [0u8; 16 + 4 + 64];
        input[..16].copy_from_slice(DOMAIN);
        for (block, out) in dest.chunks_mut(32).enumerate() {
            let counter = u32::try_from(block).map_err(|_| KeyError::EntropyFailed)?;
            input[16..20].copy_from_slice(&counter.to_le_bytes());
            self.0.blocking_fill_bytes(&mut input[20..]);
            let mut hashed = blake2b_256(&input);
            out.copy_from_slice(&hashed[..out.len()]);
            hashed.zeroize();
        }
        input.zeroize();
        Ok(())
    }
}
