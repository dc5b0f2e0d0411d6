//! Entropy sanity: health tests on [`ENTROPY_SAMPLE`] bytes drawn from the board's entropy
//! source. The bytes are examined in 256-byte chunks on the stack and never leave this module;
//! only counts and verdicts are reported.
//!
//! * **Repetition count test** (NIST SP 800-90B §4.4.1): a run of one byte value of
//!   `C = 1 + ⌈20 / H⌉` samples fails, for a claimed min-entropy `H` and a false-alarm
//!   probability of 2⁻²⁰ per sample.
//! * **Adaptive proportion test** (§4.4.2): in each window of [`APT_WINDOW`] bytes, the
//!   window's first byte occurring `C` times fails, `C` being 1 plus the binomial critical
//!   value of `W` trials with probability `2^-H` at `1 − 2⁻²⁰` (the standard's table for
//!   `W = 512` and `H = 4` gives 62).
//! * **Monobit** (FIPS 140-2 §4.9.1, the power-up statistical test): the number of one bits
//!   in the first 20,000 bits must lie strictly between 9,725 and 10,275.
//!
//! The claim is `H = 4` bits per byte: far below what a working source delivers (8), so a
//! working source passes with overwhelming probability, while a stuck or badly biased one
//! fails. These tests catch a dead or stuck source, not a subtly weak one.

use crate::keys::Entropy;
use crate::protocol::selftest::{APT_WINDOW, ENTROPY_SAMPLE, EntropyReport};

/// Repetition count cutoff for `H = 4`: 1 + ⌈20/4⌉.
const RUN_CUTOFF: u16 = 6;
/// Adaptive proportion cutoff for `W = 512`, `H = 4` (SP 800-90B, Table 2).
const APT_CUTOFF: u16 = 62;
/// Monobit: ones must be above this…
const MONOBIT_LOW: u32 = 9_725;
/// …and below this (FIPS 140-2).
const MONOBIT_HIGH: u32 = 10_275;
/// Bytes the monobit test reads (20,000 bits).
const MONOBIT_BYTES: usize = 2_500;

const CHUNK: usize = 256;

/// Draw [`ENTROPY_SAMPLE`] bytes from `entropy` and test them.
pub(super) fn test(entropy: &mut dyn Entropy) -> EntropyReport {
    let mut tests = Tests::default();
    let mut chunk = [0u8; CHUNK];
    let mut drawn = 0usize;
    let mut source_ok = true;
    while drawn < ENTROPY_SAMPLE {
        let n = (ENTROPY_SAMPLE - drawn).min(CHUNK);
        if entropy.fill(&mut chunk[..n]).is_err() {
            source_ok = false;
            break;
        }
        for &b in &chunk[..n] {
            tests.feed(b);
        }
        drawn += n;
    }
    chunk.fill(0);
    tests.report(drawn, source_ok)
}

/// The running state of the three tests.
#[derive(Default)]
struct Tests {
    seen: usize,
    last: u8,
    run: u16,
    longest_run: u16,
    window_first: u8,
    window_count: u16,
    apt_max: u16,
    ones: u32,
}

impl Tests {
    fn feed(&mut self, b: u8) {
        // Repetition count.
        if self.seen > 0 && b == self.last {
            self.run = self.run.saturating_add(1);
        } else {
            self.run = 1;
        }
        self.last = b;
        self.longest_run = self.longest_run.max(self.run);
        // Adaptive proportion: a window starts every APT_WINDOW samples.
        if self.seen.is_multiple_of(APT_WINDOW) {
            self.window_first = b;
            self.window_count = 1;
        } else if b == self.window_first {
            self.window_count = self.window_count.saturating_add(1);
        }
        self.apt_max = self.apt_max.max(self.window_count);
        // Monobit.
        if self.seen < MONOBIT_BYTES {
            self.ones += b.count_ones();
        }
        self.seen += 1;
    }

    fn report(&self, drawn: usize, source_ok: bool) -> EntropyReport {
        let complete = source_ok && drawn == ENTROPY_SAMPLE;
        let pass = complete
            && self.longest_run < RUN_CUTOFF
            && self.apt_max < APT_CUTOFF
            && self.ones > MONOBIT_LOW
            && self.ones < MONOBIT_HIGH;
        EntropyReport {
            bytes: u32::try_from(drawn).unwrap_or(u32::MAX),
            source_ok,
            longest_run: self.longest_run,
            run_cutoff: RUN_CUTOFF,
            apt_max: self.apt_max,
            apt_cutoff: APT_CUTOFF,
            monobit_ones: self.ones,
            pass,
        }
    }
}
