//! pawl's QEMU board: thin glue around [`pawl_core::board::Board`] for the emulated Arm
//! mps2-an505 (Cortex-M33, the RP2350's ISA and target triple), so CI runs the real firmware
//! binary end to end.
//!
//! ```text
//!   pawl serve ── /dev/pts/N ── QEMU -serial pty ── UART0 ──┐
//!                                                          │ bytes
//!                                   FrameAccumulator ◄─────┘
//!                                          │ frames
//!                                   Board::handle_frame ──► response frame ──► UART0
//!                                          │
//!        Budgeted<NorStore<HostFlash, FileGuard>, SysTickClock>, HostEntropy, FileButton
//!                                          │ semihosting (bkpt 0xAB)
//!        state directory: flash.bin, rollback-counter, board.key, button, /dev/urandom,
//!                         selftest-scratch.bin (the self-test's scratch sector, [`bench`])
//! ```
//!
//! The power-up configuration comes from QEMU's semihosting command line (set by
//! `pawl-sim qemu`), never from the serial link: `mode=provisioning|operational` (default
//! operational), `button-ms=N` (the confirm-on-device window, default 5000) and `otp=PATH`
//! (the rollback anchor's "OTP" file, outside the state directory: [`otp`]).

#![no_std]

pub mod bench;
pub mod clock;
pub mod flash;
pub mod otp;
pub mod semihost;
pub mod state;
pub mod uart;

use core::mem::MaybeUninit;

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m_semihosting::debug;
use embedded_alloc::LlffHeap;
use pawl_core::board::{Board, BoardInfo};
use pawl_core::protocol::{
    Fed, FrameAccumulator, FrameError, MAX_FRAME, Mode, Refusal, Response, encode_frame,
};
use pawl_core::store::{Budgeted, NorStore, NorStoreConfig, WriteBudget};

use crate::clock::SysTickClock;
use crate::flash::HostFlash;
use crate::otp::{FileEpoch, OtpPath, QemuGuard};
use crate::state::{FileButton, FileGuard, HostEntropy};
use crate::uart::Uart;

/// The board this firmware runs.
pub type QemuBoard = Board<QemuStore, HostEntropy, FileButton>;

/// The board's store: the flash store under the write budget, timed by SysTick.
pub type QemuStore = Budgeted<NorStore<HostFlash, QemuGuard>, SysTickClock>;

/// What the board reports about itself.
pub const INFO: BoardInfo = BoardInfo {
    firmware: env!("CARGO_PKG_VERSION"),
    board: "qemu mps2-an505 (CI board, state in host files)",
};

/// A frame whose bytes stop arriving for this long (centiseconds) is dropped, so that a host
/// that died mid-frame does not corrupt the next one (as the pty board does).
const FRAME_IDLE_CS: u32 = 50;

/// Power-up configuration, from the semihosting command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Setup {
    /// Provisioning or operational.
    pub mode: Mode,
    /// Confirm-on-device window, in centiseconds.
    pub button_cs: u32,
    /// The rollback anchor's file (`otp=`), if given.
    pub otp: Option<OtpPath>,
}

impl Setup {
    /// Parse `argv0 [mode=provisioning|operational] [button-ms=N] [otp=PATH]`; anything else is
    /// refused.
    pub fn parse(cmdline: &str) -> Result<Setup, &'static str> {
        let mut setup = Setup {
            mode: Mode::Operational,
            button_cs: 500,
            otp: None,
        };
        for word in cmdline.split_ascii_whitespace().skip(1) {
            match word.split_once('=') {
                Some(("mode", "provisioning")) => setup.mode = Mode::Provisioning,
                Some(("mode", "operational")) => setup.mode = Mode::Operational,
                Some(("button-ms", ms)) => {
                    let ms: u32 = ms.parse().map_err(|_| "button-ms is not a number")?;
                    setup.button_cs = ms.div_ceil(10);
                }
                Some(("otp", path)) => setup.otp = Some(OtpPath::new(path)?),
                _ => return Err("unknown word on the command line"),
            }
        }
        Ok(setup)
    }
}

const HEAP_SIZE: usize = 8 * 1024;

#[global_allocator]
static HEAP: LlffHeap = LlffHeap::empty();

/// Start the heap (blst declares `extern crate alloc`; nothing pawl runs allocates). Call once,
/// first thing.
pub fn init_heap() {
    static mut MEMORY: [MaybeUninit<u8>; HEAP_SIZE] = [MaybeUninit::uninit(); HEAP_SIZE];
    // SAFETY: called once before any allocation; `MEMORY` is used by nothing else.
    unsafe { HEAP.init((&raw mut MEMORY) as usize, HEAP_SIZE) }
}

/// Log `what` and stop QEMU with a failure status.
pub fn fail(what: &str) -> ! {
    log!("fatal: {}", what);
    debug::exit(debug::EXIT_FAILURE);
    #[allow(clippy::empty_loop)]
    loop {}
}

/// The board's flash store on the state directory's files (`flash.bin`, `board.key`,
/// `rollback-counter`), not yet loaded, and the entropy source that made or read the board key.
/// Unanchored: see [`open_store_anchored`].
pub fn open_store() -> (NorStore<HostFlash, QemuGuard>, HostEntropy) {
    open_store_anchored(None)
}

/// [`open_store`], its rollback guard anchored by the epoch file at `otp` ([`otp`]).
pub fn open_store_anchored(otp: Option<&OtpPath>) -> (NorStore<HostFlash, QemuGuard>, HostEntropy) {
    let mut entropy = HostEntropy::open().unwrap_or_else(|_| fail("cannot open /dev/urandom"));
    let key = state::board_key(&mut entropy)
        .unwrap_or_else(|_| fail("board.key is unreadable or not 32 bytes"));
    let flash = HostFlash::open().unwrap_or_else(|_| fail("cannot open flash.bin"));
    let guard = FileGuard::open().unwrap_or_else(|_| fail("rollback-counter is unreadable"));
    let epoch = match otp {
        Some(path) => Some(
            FileEpoch::open(path.as_cstr())
                .unwrap_or_else(|_| fail("the otp= file is unreadable or not 4 bytes")),
        ),
        None => {
            log!("no otp= file: rollback of the whole state directory goes undetected");
            None
        }
    };
    let guard = QemuGuard::new(guard, epoch);
    let config = NorStoreConfig {
        region: 0..flash::SIZE as u32,
        ceiling_ahead: NorStoreConfig::DEFAULT_CEILING_AHEAD,
    };
    let store = NorStore::new(flash, config, &key, guard)
        .unwrap_or_else(|_| fail("flash region is not whole pages"));
    (store, entropy)
}

/// Read the command line and open the board on the state directory's files.
pub fn open_board() -> (QemuBoard, Setup) {
    let mut line = [0u8; 256];
    let setup = match semihost::cmdline(&mut line).map(Setup::parse) {
        Ok(Ok(setup)) => setup,
        Ok(Err(e)) => fail(e),
        Err(_) => fail("cannot read the semihosting command line"),
    };
    let (store, entropy) = open_store_anchored(setup.otp.as_ref());
    let store = Budgeted::new(store, SysTickClock::new(), WriteBudget::DEFAULT);
    let mut board = Board::open(
        store,
        entropy,
        FileButton::new(setup.button_cs),
        setup.mode,
        INFO,
    );
    board.lend(&bench::BENCH);
    (board, setup)
}

/// Serve frames on the UART forever. Runs with interrupts masked: UART RX and SysTick only wake
/// `wfi` (see [`uart`]).
pub fn serve(board: &mut QemuBoard, uart: &mut Uart, syst: &mut cortex_m::peripheral::SYST) -> ! {
    cortex_m::interrupt::disable();
    // A wake-up about every 0.1 s (25 MHz core clock), to drop half frames and poll the button.
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(2_500_000);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();

    let mut acc: FrameAccumulator<MAX_FRAME> = FrameAccumulator::new();
    let mut out = [0u8; MAX_FRAME];
    // When the newest byte of an unfinished frame arrived.
    let mut partial_since: Option<u32> = None;
    loop {
        let mut got = false;
        let mut last = 0u8;
        while let Some(byte) = uart.try_read() {
            got = true;
            last = byte;
            let reply = match acc.feed(&[byte]).1 {
                Fed::Incomplete => None,
                Fed::Frame(frame) => Some(board.handle_frame(frame, &mut out)),
                Fed::Dropped(e) => {
                    log!("dropped a frame: {}", e);
                    Some(refusal(e, &mut out))
                }
            };
            match reply {
                None => {}
                Some(Ok(len)) => uart.write_all(&out[..len]),
                Some(Err(e)) => log!("cannot encode a response: {}", e),
            }
        }
        let now = semihost::clock_cs().unwrap_or(0);
        if got {
            partial_since = (last != 0).then_some(now);
        } else if let Some(t) = partial_since
            && now.wrapping_sub(t) >= FRAME_IDLE_CS
        {
            acc = FrameAccumulator::new();
            partial_since = None;
            log!("dropped an unfinished frame (host went quiet mid-frame)");
        }
        if partial_since.is_none() {
            // Nothing half-received: while no byte waits, raise watermark reservations ahead
            // of the signatures that would otherwise wait for flash (one write per call). In
            // operational mode each call also reads the clock (write budget): at every wake-up.
            while !uart.has_byte() && matches!(board.idle(), Ok(true)) {}
        }
        uart.wait();
    }
}

/// The answer to a frame the accumulator had to drop (too long).
fn refusal(e: FrameError, out: &mut [u8]) -> Result<usize, FrameError> {
    let mut scratch = [0u8; 64];
    encode_frame(0, &Response::Refused(Refusal::Frame(e)), &mut scratch, out)
}

#[cortex_m_rt::exception]
unsafe fn HardFault(ef: &cortex_m_rt::ExceptionFrame) -> ! {
    log!("fatal: hard fault at pc={:#x}", ef.pc());
    debug::exit(debug::EXIT_FAILURE);
    #[allow(clippy::empty_loop)]
    loop {}
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    log!("fatal: panic: {}", info);
    debug::exit(debug::EXIT_FAILURE);
    #[allow(clippy::empty_loop)]
    loop {}
}
