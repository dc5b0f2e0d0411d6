//! `pawl device selftest`: what the board measures about itself (its own timer, its flash, its
//! entropy, its button) and reports.
//!
//! One request family of the device protocol: its own request and response types, carried by
//! [`super::Request::SelfTest`] and [`super::Response::SelfTest`]. Variants are only ever appended.
//!
//! Every request here is safe from a hostile host: each does a bounded amount of work, changes
//! nothing outside RAM except the scratch flash sector (provisioning mode only, a few times per
//! boot), and never touches keys, marks or the store. What each request does on the board, and
//! why it is safe, is in the board's `selftest` module; the report fields are explained in
//! `docs/hardware.md`, "Self-test report".

use serde::{Deserialize, Serialize};

use crate::keys::{Curve, PublicKey, Signature};

/// Bytes of entropy one [`SelfTestRequest::Entropy`] draws and tests.
pub const ENTROPY_SAMPLE: usize = 4096;
/// Bytes the scratch flash test programs (one NOR page of the RP2350's flash).
pub const SCRATCH_PROGRAM: usize = 256;
/// Most scratch flash tests one boot answers (each erases the scratch sector twice).
pub const FLASH_TESTS_PER_BOOT: u8 = 8;

/// A request of this family.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum SelfTestRequest<'a> {
    /// What the board can measure with, and the board key's state: [`SelfTestResponse::Facts`].
    Facts,
    /// Make a throw-away `curve` key in RAM, sign a fixed message with it, verify, drop the key:
    /// [`SelfTestResponse::Signed`] (provisioning mode), else [`SelfTestResponse::Skipped`].
    SignTime {
        /// Which curve.
        curve: Curve,
    },
    /// Time one erase and one program of the scratch flash sector (never the store's pages):
    /// [`SelfTestResponse::Flash`] in provisioning mode, at most [`FLASH_TESTS_PER_BOOT`] a
    /// boot; else [`SelfTestResponse::Skipped`].
    FlashTime,
    /// Draw [`ENTROPY_SAMPLE`] bytes and run health tests on them: [`SelfTestResponse::Entropy`].
    /// The bytes never leave the board.
    Entropy,
    /// Wait for the operator to press the board's button, within the board's confirmation
    /// window: [`SelfTestResponse::Button`].
    Button,
    /// Link throughput: the board answers [`SelfTestResponse::Echoed`] with the payload's length
    /// and CRC-32.
    Echo {
        /// Anything; bounded by the frame size.
        #[serde(borrow)]
        payload: &'a [u8],
    },
}

/// The board key's state, as the board sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BoardKeyState {
    /// Read from OTP, and its OTP pages are locked against reading by anything but the firmware
    /// and against rewriting.
    OtpLocked,
    /// Read from OTP, but its pages are not locked: another program could read or change it.
    OtpUnlocked,
    /// No board key: the store cannot be opened.
    Absent,
    /// A file on the host (virtual and QEMU boards): no hardware protection.
    SimulatedFile,
    /// The board did not say (no instruments).
    Unknown,
}

/// What the board measures with ([`SelfTestRequest::Facts`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Facts {
    /// Whether board glue lent the self-test its instruments; without them nothing is timed.
    pub instruments: bool,
    /// The clock the board times with, in words (e.g. "RP2350 TIMER0, 1 MHz").
    pub clock: heapless::String<48>,
    /// The board key's state.
    pub board_key: BoardKeyState,
    /// Whether the board has a scratch flash sector for [`SelfTestRequest::FlashTime`].
    pub scratch_flash: bool,
    /// Flash tests left this boot.
    pub flash_tests_left: u8,
}

/// Why a measurement was not made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Skip {
    /// The board is in operational mode: it signs and writes nothing for a self-test.
    OperationalMode,
    /// Board glue lent no instruments (no timer).
    NoInstruments,
    /// The board has no scratch flash sector.
    NoScratch,
    /// [`FLASH_TESTS_PER_BOOT`] flash tests were made this boot.
    FlashTestsUsed,
    /// The board has no button it can test.
    NoButton,
}

/// A failed scratch flash operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScratchError {
    /// The board has no scratch sector.
    Unavailable,
    /// The flash driver failed.
    Io,
}

/// Result of [`SelfTestRequest::FlashTime`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FlashTiming {
    /// Erase, program and read-back were made.
    Done {
        /// Microseconds for erasing the sector (4 KiB).
        erase_us: u32,
        /// Microseconds for programming [`SCRATCH_PROGRAM`] bytes.
        program_us: u32,
        /// Bytes programmed.
        bytes: u32,
        /// Whether the sector read back erased (all `0xFF`) after the erase.
        erased_ok: bool,
        /// Whether the programmed bytes read back as written.
        readback_ok: bool,
    },
    /// A flash operation failed.
    Failed(ScratchError),
}

/// Result of [`SelfTestRequest::Entropy`]: counts and verdicts, never the bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntropyReport {
    /// Bytes drawn (0 if the source failed).
    pub bytes: u32,
    /// Whether the source answered every draw.
    pub source_ok: bool,
    /// Longest run of one byte value (SP 800-90B §4.4.1, repetition count test).
    pub longest_run: u16,
    /// The repetition count cutoff: a run this long fails.
    pub run_cutoff: u16,
    /// Highest count of a window's first byte in its window of [`APT_WINDOW`] bytes (SP
    /// 800-90B §4.4.2, adaptive proportion test).
    pub apt_max: u16,
    /// The adaptive proportion cutoff: a count this high fails.
    pub apt_cutoff: u16,
    /// One bits in the first 20,000 bits (FIPS 140-2 monobit test).
    pub monobit_ones: u32,
    /// Whether every test passed.
    pub pass: bool,
}

/// Window of the adaptive proportion test (SP 800-90B, non-binary samples).
pub const APT_WINDOW: usize = 512;

/// Result of [`SelfTestRequest::Button`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ButtonCheck {
    /// Pressed within the window, after this many microseconds (0 without a timer).
    Pressed {
        /// Time to the press.
        after_us: u32,
    },
    /// No press within the window.
    NotPressed,
}

/// The board's answer to a [`SelfTestRequest`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum SelfTestResponse {
    /// Answer to [`SelfTestRequest::Facts`].
    Facts(Facts),
    /// Answer to [`SelfTestRequest::SignTime`].
    Signed {
        /// The curve.
        curve: Curve,
        /// Microseconds the signature took on the board's clock (key generation not included).
        sign_us: u32,
        /// Microseconds the verification took.
        verify_us: u32,
        /// Whether the signature verified under the throw-away key.
        verified: bool,
        /// The throw-away key's public key (the key itself is gone), so the host can check
        /// the signature with its own implementation.
        public_key: PublicKey,
        /// The signature over [`TEST_MESSAGE`](crate::board::TEST_MESSAGE), signature version 3.
        signature: Signature,
    },
    /// The measurement was not made, and why.
    Skipped(Skip),
    /// Answer to [`SelfTestRequest::FlashTime`].
    Flash(FlashTiming),
    /// Answer to [`SelfTestRequest::Entropy`].
    Entropy(EntropyReport),
    /// Answer to [`SelfTestRequest::Button`].
    Button(ButtonCheck),
    /// Answer to [`SelfTestRequest::Echo`].
    Echoed {
        /// Payload length.
        len: u32,
        /// CRC-32/ISO-HDLC of the payload.
        crc: u32,
    },
}

impl SelfTestRequest<'_> {
    /// Whether the request may be written again after its answer was lost (the bridge's
    /// reconnect rule): reads yes, anything that changes the board no. A flash test uses one
    /// of the boot's flash tests and a button check waits for a press: neither is re-asked.
    pub fn reasking_is_safe(&self) -> bool {
        match self {
            SelfTestRequest::Facts
            | SelfTestRequest::SignTime { .. }
            | SelfTestRequest::Entropy
            | SelfTestRequest::Echo { .. } => true,
            SelfTestRequest::FlashTime | SelfTestRequest::Button => false,
        }
    }
}
