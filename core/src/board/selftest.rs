//! The board's side of the [`SelfTestRequest`] family (`pawl device selftest`).
//!
//! # Instruments
//!
//! The core has no clock and no flash of its own beyond the store. Board glue lends the
//! self-test its instruments through [`Instruments`], installed once with [`Board::lend`]: a
//! microsecond clock read from the board's own timer, the board key's state, and optionally a
//! **scratch flash sector** that is not part of the store (nor the image, nor the guard). The
//! methods take `&self`: an implementor that keeps state uses interior mutability, so
//! `Board`'s type does not change. A board nobody lent instruments to answers every timed
//! request [`Skip::NoInstruments`].
//!
//! | glue | clock | scratch | board key |
//! |---|---|---|---|
//! | virtual board (`core::sim`) | `std::time::Instant` | `selftest-scratch.bin` in its directory | simulated file |
//! | QEMU (`firmware/qemu`) | SysTick, its whole periods recovered from the semihosting clock | `selftest-scratch.bin` through semihosting | simulated file |
//! | RP2350 (`firmware/rp2350`) | the TIMER (1 MHz) | one 4 KiB sector of the QSPI flash reserved by `build.rs` | OTP (locked or not), or absent |
//!
//! # What each request may do (a hostile host sends them)
//!
//! * `Facts`, `Entropy`, `Echo`: read-only; bounded work (4 KiB of entropy, in 256-byte
//!   chunks; the echo's payload is bounded by the frame).
//! * `SignTime`: **provisioning mode only** (operational mode answers
//!   [`Skip::OperationalMode`] and signs nothing). Makes a throw-away key of the curve in RAM
//!   from the board's entropy, signs a fixed message that is not a Tezos operation, verifies
//!   the signature, and drops the key (its secret zeroizes on drop). The key is never stored,
//!   never in the key table, never has a watermark; only the signature is timed.
//! * `FlashTime`: **provisioning mode only, and at most [`FLASH_TESTS_PER_BOOT`] times a
//!   boot** (each erases the scratch sector twice). Operational mode needs the operator's
//!   physical act at power-up to leave, so a hostile host cannot wear even the scratch sector
//!   beyond 16 erases per power-up the operator made. It never touches the store's pages.
//! * `Button`: waits for a press within the board's confirmation window ([`Presence::wait_press`]);
//!   a board with no testable button answers [`Skip::NoButton`]. It changes nothing.
//!
//! None of them changes keys, marks, policies, counters other than refusals, or the store.

mod health;

use super::{Board, Presence};
use crate::keys::{Curve, Entropy, KeyPair, SigningVersion, TezosSigner};
use crate::protocol::selftest::{
    BoardKeyState, ButtonCheck, FLASH_TESTS_PER_BOOT, Facts, FlashTiming, SCRATCH_PROGRAM,
    ScratchError, SelfTestRequest, SelfTestResponse, Skip,
};
use crate::protocol::{Mode, Refusal, Response};
use crate::store::Store;

/// The fixed message throw-away keys sign. Its first byte, 0x50 (`P`), is no Tezos magic byte,
/// and the key signing it never exists outside one request.
pub const TEST_MESSAGE: &[u8] = b"PAWL SELF-TEST: a throw-away key, made in RAM and dropped";

/// What board glue lends the self-test. See the module docs.
pub trait Instruments {
    /// Microseconds since an arbitrary start, from the board's own timer; never goes back.
    fn now_us(&self) -> u64;
    /// The clock in words, for the report (at most 48 bytes are kept).
    fn clock(&self) -> &'static str;
    /// The board key's state.
    fn board_key(&self) -> BoardKeyState;
    /// Size of the scratch flash sector (erased as a whole), or `None` without one.
    fn scratch_len(&self) -> Option<u32> {
        None
    }
    /// Erase the whole scratch sector.
    fn scratch_erase(&self) -> Result<(), ScratchError> {
        Err(ScratchError::Unavailable)
    }
    /// Program `bytes` at `offset` in the scratch sector (NOR: bits only clear).
    fn scratch_program(&self, _offset: u32, _bytes: &[u8]) -> Result<(), ScratchError> {
        Err(ScratchError::Unavailable)
    }
    /// Read `bytes.len()` bytes at `offset` of the scratch sector.
    fn scratch_read(&self, _offset: u32, _bytes: &mut [u8]) -> Result<(), ScratchError> {
        Err(ScratchError::Unavailable)
    }
}

/// What the self-test measures with, and how many flash tests this boot has made.
#[derive(Default)]
pub(super) struct Bench {
    instruments: Option<&'static (dyn Instruments + Sync)>,
    flash_tests: u8,
}

/// [`SCRATCH_PROGRAM`] as the flash's offsets count.
#[allow(clippy::cast_possible_truncation)] // 256 fits; checked at compile time below
const PROGRAM_U32: u32 = SCRATCH_PROGRAM as u32;
const _: () = assert!(SCRATCH_PROGRAM == 256);

fn micros(from: u64, to: u64) -> u32 {
    u32::try_from(to.saturating_sub(from)).unwrap_or(u32::MAX)
}

impl<S: Store, E: Entropy, P: Presence> Board<S, E, P> {
    /// Lend the self-test its instruments (board glue, once after [`Board::open`]).
    pub fn lend(&mut self, instruments: &'static (dyn Instruments + Sync)) {
        self.bench.instruments = Some(instruments);
    }

    /// Answer one request of the family.
    pub(super) fn selftest(&mut self, request: SelfTestRequest<'_>) -> Result<Response, Refusal> {
        let answer = match request {
            SelfTestRequest::Facts => SelfTestResponse::Facts(self.facts()),
            SelfTestRequest::SignTime { curve } => self.sign_time(curve)?,
            SelfTestRequest::FlashTime => self.flash_time(),
            SelfTestRequest::Entropy => SelfTestResponse::Entropy(health::test(&mut self.entropy)),
            SelfTestRequest::Button => self.button(),
            SelfTestRequest::Echo { payload } => SelfTestResponse::Echoed {
                len: u32::try_from(payload.len()).unwrap_or(u32::MAX),
                crc: crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(payload),
            },
        };
        Ok(Response::SelfTest(answer))
    }

    fn facts(&self) -> Facts {
        let left = FLASH_TESTS_PER_BOOT.saturating_sub(self.bench.flash_tests);
        match self.bench.instruments {
            None => Facts {
                instruments: false,
                clock: heapless::String::new(),
                board_key: BoardKeyState::Unknown,
                scratch_flash: false,
                flash_tests_left: left,
            },
            Some(i) => Facts {
                instruments: true,
                clock: super::truncated(i.clock()),
                board_key: i.board_key(),
                scratch_flash: i.scratch_len().is_some(),
                flash_tests_left: left,
            },
        }
    }

    fn sign_time(&mut self, curve: Curve) -> Result<SelfTestResponse, Refusal> {
        if self.mode != Mode::Provisioning {
            return Ok(SelfTestResponse::Skipped(Skip::OperationalMode));
        }
        let Some(clock) = self.bench.instruments else {
            return Ok(SelfTestResponse::Skipped(Skip::NoInstruments));
        };
        let version = SigningVersion::LATEST;
        // In RAM only: never stored, never in the key table, no watermark. Dropped (and
        // zeroized) at the end of this function.
        let pair = KeyPair::generate(curve, &mut self.entropy)?;
        let t0 = clock.now_us();
        let signature = pair.try_sign(TEST_MESSAGE, version)?;
        let t1 = clock.now_us();
        let verified = pair
            .public_key()
            .verify(TEST_MESSAGE, &signature, version)
            .is_ok();
        let t2 = clock.now_us();
        Ok(SelfTestResponse::Signed {
            curve,
            sign_us: micros(t0, t1),
            verify_us: micros(t1, t2),
            verified,
            public_key: *pair.public_key(),
            signature,
        })
    }

    fn flash_time(&mut self) -> SelfTestResponse {
        if self.mode != Mode::Provisioning {
            return SelfTestResponse::Skipped(Skip::OperationalMode);
        }
        let Some(bench) = self.bench.instruments else {
            return SelfTestResponse::Skipped(Skip::NoInstruments);
        };
        let Some(len) = bench.scratch_len() else {
            return SelfTestResponse::Skipped(Skip::NoScratch);
        };
        if self.bench.flash_tests >= FLASH_TESTS_PER_BOOT {
            return SelfTestResponse::Skipped(Skip::FlashTestsUsed);
        }
        // Counted before the flash is touched: a failed test counts too.
        self.bench.flash_tests = self.bench.flash_tests.saturating_add(1);
        SelfTestResponse::Flash(match time_scratch(bench, len) {
            Ok(timing) => timing,
            Err(e) => FlashTiming::Failed(e),
        })
    }

    fn button(&mut self) -> SelfTestResponse {
        let start = self.bench.instruments.map(|c| c.now_us());
        match self.presence.wait_press() {
            None => SelfTestResponse::Skipped(Skip::NoButton),
            Some(false) => SelfTestResponse::Button(ButtonCheck::NotPressed),
            Some(true) => {
                let after_us = match (start, self.bench.instruments) {
                    (Some(t0), Some(c)) => micros(t0, c.now_us()),
                    _ => 0,
                };
                SelfTestResponse::Button(ButtonCheck::Pressed { after_us })
            }
        }
    }
}

/// Erase the scratch sector (timed), check it reads erased, program [`SCRATCH_PROGRAM`] bytes
/// (timed), read them back, and erase again so the sector is left as found.
fn time_scratch(bench: &dyn Instruments, len: u32) -> Result<FlashTiming, ScratchError> {
    let mut pattern = [0u8; SCRATCH_PROGRAM];
    for (i, b) in pattern.iter_mut().enumerate() {
        // Neither all-ones (nothing to program) nor all-zeros; every byte value appears.
        *b = u8::try_from(i & 0xFF).unwrap_or(0).wrapping_mul(7) ^ 0x5A;
    }
    let t0 = bench.now_us();
    bench.scratch_erase()?;
    let t1 = bench.now_us();
    let mut erased_ok = true;
    let mut chunk = [0u8; SCRATCH_PROGRAM];
    let mut at = 0u32;
    while at < len {
        bench.scratch_read(at, &mut chunk)?;
        erased_ok &= chunk.iter().all(|&b| b == 0xFF);
        at = at.saturating_add(PROGRAM_U32);
    }
    let t2 = bench.now_us();
    bench.scratch_program(0, &pattern)?;
    let t3 = bench.now_us();
    bench.scratch_read(0, &mut chunk)?;
    let readback_ok = chunk == pattern;
    bench.scratch_erase()?;
    Ok(FlashTiming::Done {
        erase_us: micros(t0, t1),
        program_us: micros(t2, t3),
        bytes: PROGRAM_U32,
        erased_ok,
        readback_ok,
    })
}
