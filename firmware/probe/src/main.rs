//! pawl-probe: measure what signing with pawl-core costs on a Cortex-M4F, under QEMU.
//!
//! For each curve selected (cargo features `ed25519`, `secp256k1`, `p256`, `bls`, `all`; the
//! features select what runs, not what links: pawl-core dispatches on the curve at run time, so
//! all four curves are in every binary that signs):
//!
//! * **stack high-water** of `KeyPair::from_secret` and of `TezosSigner::try_sign`: the free
//!   RAM below the stack pointer is painted with `0xAAAA_AAAA`, the call is made with interrupts
//!   masked (so no exception frame lands on the stack), and the lowest overwritten word gives
//!   the bytes the call used below the caller's stack pointer;
//! * **instructions**: QEMU runs with `-icount shift=0` (one guest instruction = 1 ns of virtual
//!   time), SysTick counts the core clock with reload `0xFF_FFFF` and an interrupt counts wraps.
//!   The instructions-per-tick factor is calibrated at start-up with a loop of known length;
//! * **heap**: the global allocator is `embedded-alloc`'s `LlffHeap` on a small static arena,
//!   wrapped to count allocations (blst declares `extern crate alloc`, so one must exist).
//!   Key loading and signing allocate nothing; BLS *verification* (feature `verify`) does.
//!
//! With feature `board` it also measures the whole board path: `Board::handle_frame` on a
//! COBS/postcard `Sign` frame (parse, policy, watermark, persist to a `MemoryStore`, sign, encode
//! the answer), per selected curve.
//!
//! Results are printed over semihosting as `PROBE …` lines that `run.sh` turns into a table; the
//! firmware exits through semihosting `SYS_EXIT` (status 0 only if every step succeeded).

#![no_std]
#![no_main]

use core::alloc::{GlobalAlloc, Layout};
use core::hint::black_box;
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use cortex_m as _;
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::{SCB, SYST};
use cortex_m_rt::{ExceptionFrame, entry, exception};
use cortex_m_semihosting::{debug, hprintln};
use embedded_alloc::LlffHeap;

#[allow(unused_imports)]
use pawl_core::keys::{Curve, KeyPair, SecretBytes, SigningVersion, TezosSigner};

// ---------------------------------------------------------------------------------------------
// Allocator: LlffHeap on 8 KiB, counting.

const HEAP_SIZE: usize = 8 * 1024;

struct CountingHeap {
    heap: LlffHeap,
    allocs: AtomicU32,
    live: AtomicUsize,
    peak: AtomicUsize,
}

unsafe impl GlobalAlloc for CountingHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.allocs.fetch_add(1, Ordering::Relaxed);
        let live = self.live.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        self.peak.fetch_max(live, Ordering::Relaxed);
        unsafe { self.heap.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        self.live.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { self.heap.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: CountingHeap = CountingHeap {
    heap: LlffHeap::empty(),
    allocs: AtomicU32::new(0),
    live: AtomicUsize::new(0),
    peak: AtomicUsize::new(0),
};

static mut HEAP_MEM: [MaybeUninit<u8>; HEAP_SIZE] = [MaybeUninit::uninit(); HEAP_SIZE];

// ---------------------------------------------------------------------------------------------
// Time: SysTick on the core clock, wraps counted by the SysTick exception.

const RELOAD: u32 = 0x00FF_FFFF;
static WRAPS: AtomicU32 = AtomicU32::new(0);

#[exception]
fn SysTick() {
    WRAPS.fetch_add(1, Ordering::Relaxed);
}

/// Core-clock ticks since SysTick was started.
fn ticks() -> u64 {
    cortex_m::interrupt::free(|_| {
        let mut wraps = WRAPS.load(Ordering::Relaxed);
        let mut cvr = SYST::get_current();
        if SCB::is_pendst_pending() {
            // Wrapped, but the exception has not run yet: count the wrap and re-read.
            wraps += 1;
            cvr = SYST::get_current();
        }
        (u64::from(wraps) << 24) + u64::from(RELOAD - cvr)
    })
}

/// `f`'s result and the SysTick ticks it took.
#[inline(never)]
fn timed<R>(f: impl FnOnce() -> R) -> (R, u64) {
    let t0 = ticks();
    let r = f();
    let t1 = ticks();
    (r, t1 - t0)
}

/// Exactly `2 * n` instructions (`subs` + `bne` per turn), plus a constant call overhead.
#[inline(never)]
fn spin(n: u32) {
    unsafe {
        core::arch::asm!(
            "2:",
            "subs {0}, {0}, #1",
            "bne 2b",
            inout(reg) n => _,
            options(nomem, nostack),
        );
    }
}

/// Instructions per tick, as a fixed-point number with 3 decimals (×1000).
struct Calibration {
    milli_instr_per_tick: u64,
    overhead_ticks: u64,
}

impl Calibration {
    fn measure() -> Self {
        const N1: u32 = 1_000_000;
        const N2: u32 = 6_000_000;
        let ((), overhead_ticks) = timed(|| ());
        let ((), t1) = timed(|| spin(black_box(N1)));
        let ((), t2) = timed(|| spin(black_box(N2)));
        let instructions = 2 * u64::from(N2 - N1);
        let dt = t2 - t1;
        let milli_instr_per_tick = (instructions * 1000 + dt / 2) / dt;
        hprintln!(
            "PROBE calib loop_instructions={} ticks={} milli_instr_per_tick={} overhead_ticks={}",
            instructions,
            dt,
            milli_instr_per_tick,
            overhead_ticks
        );
        Calibration {
            milli_instr_per_tick,
            overhead_ticks,
        }
    }

    fn instructions(&self, ticks: u64) -> u64 {
        (ticks.saturating_sub(self.overhead_ticks) * self.milli_instr_per_tick + 500) / 1000
    }
}

// ---------------------------------------------------------------------------------------------
// Stack: paint the free RAM below the stack pointer, scan after.

const PAINT: u32 = 0xAAAA_AAAA;

unsafe extern "C" {
    /// cortex-m-rt: first byte after .bss/.uninit (the stack may grow down to here).
    static mut __sheap: u32;
    /// cortex-m-rt: initial stack pointer (top of RAM).
    static _stack_start: u32;
}

fn stack_floor() -> usize {
    (&raw const __sheap) as usize
}

fn stack_top() -> usize {
    (&raw const _stack_start) as usize
}

#[inline(always)]
fn sp() -> usize {
    cortex_m::register::msp::read() as usize
}

/// Fill `[__sheap, sp)` with [`PAINT`]. In assembly, so nothing it does lands in the painted
/// range after it is painted.
#[inline(never)]
fn paint() {
    unsafe {
        core::arch::asm!(
            "2:",
            "cmp {p}, sp",
            "bhs 3f",
            "str {pat}, [{p}], #4",
            "b 2b",
            "3:",
            p = inout(reg) stack_floor() => _,
            pat = in(reg) PAINT,
            options(nostack),
        );
    }
}

/// Lowest address below `limit` that is no longer painted.
#[inline(never)]
fn lowest_touched(limit: usize) -> usize {
    let mut p = stack_floor();
    while p < limit && unsafe { core::ptr::read_volatile(p as *const u32) } == PAINT {
        p += 4;
    }
    p
}

/// `f`'s result, and the stack bytes it used below the caller's stack pointer. Runs `f` with
/// interrupts masked so no exception frame is counted.
#[inline(never)]
fn stack_used<R>(f: impl FnOnce() -> R) -> (R, usize) {
    cortex_m::interrupt::free(|_| {
        let base = sp();
        paint();
        let r = f();
        let low = lowest_touched(base);
        (r, base - low)
    })
}

// ---------------------------------------------------------------------------------------------
// Inputs.

const fn hex<const N: usize>(s: &str) -> [u8; N] {
    const fn nibble(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => panic!("bad hex"),
        }
    }
    let s = s.as_bytes();
    assert!(s.len() == 2 * N);
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = (nibble(s[2 * i]) << 4) | nibble(s[2 * i + 1]);
        i += 1;
    }
    out
}

/// tz1/tz2/tz3 attestation (tag 0x15, slot 21), 80 bytes.
#[allow(dead_code)]
static ATTESTATION: [u8; 80] = hex(
    "13b3d79f993222f293d2f293230ec36b0bef1caead619f1a7206ff54a0c198f07ae25bb151150015000000220000000458335430566f4b95401c110f33e74d3a324f83ad6003ed9d5e93ce617fa11e44",
);

/// tz4 attestation (tag 0x29, no slot), 78 bytes.
#[allow(dead_code)]
static ATTESTATION_TZ4: [u8; 78] = hex(
    "13b3d79f993222f293d2f293230ec36b0bef1caead619f1a7206ff54a0c198f07ae25bb15129000000220000000458335430566f4b95401c110f33e74d3a324f83ad6003ed9d5e93ce617fa11e44",
);

/// Secrets: `[7; 32]` is a valid secret on every curve (Ed25519 seed; big-endian secp256k1 and
/// P-256 scalars below the order; little-endian BLS scalar `0x0707…07` below r).
const SECRET: [u8; 32] = [7; 32];

struct Case {
    curve: Curve,
    payload: &'static [u8],
}

static CASES: &[Case] = &[
    #[cfg(feature = "ed25519")]
    Case {
        curve: Curve::Ed25519,
        payload: &ATTESTATION,
    },
    #[cfg(feature = "secp256k1")]
    Case {
        curve: Curve::Secp256k1,
        payload: &ATTESTATION,
    },
    #[cfg(feature = "p256")]
    Case {
        curve: Curve::P256,
        payload: &ATTESTATION,
    },
    #[cfg(feature = "bls")]
    Case {
        curve: Curve::Bls12_381,
        payload: &ATTESTATION_TZ4,
    },
];

// ---------------------------------------------------------------------------------------------
// Output helpers.

/// Lower-case hex of up to 128 bytes.
struct Hex<'a>(&'a [u8]);

impl core::fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut buf = [0u8; 256];
        let n = self.0.len().min(128);
        for (i, b) in self.0[..n].iter().enumerate() {
            buf[2 * i] = DIGITS[usize::from(b >> 4)];
            buf[2 * i + 1] = DIGITS[usize::from(b & 15)];
        }
        f.write_str(core::str::from_utf8(&buf[..2 * n]).map_err(|_| core::fmt::Error)?)
    }
}

fn fail(what: &str) -> ! {
    hprintln!("PROBE FAIL {}", what);
    debug::exit(debug::EXIT_FAILURE);
    #[allow(clippy::empty_loop)]
    loop {}
}

// ---------------------------------------------------------------------------------------------

#[entry]
fn main() -> ! {
    unsafe { ALLOC.heap.init((&raw mut HEAP_MEM) as usize, HEAP_SIZE) };

    let mut cp = match cortex_m::Peripherals::take() {
        Some(cp) => cp,
        None => fail("peripherals"),
    };
    cp.SYST.set_clock_source(SystClkSource::Core);
    cp.SYST.set_reload(RELOAD);
    cp.SYST.clear_current();
    cp.SYST.enable_interrupt();
    cp.SYST.enable_counter();

    hprintln!(
        "PROBE start stack_top={:#x} stack_floor={:#x} heap={}",
        stack_top(),
        stack_floor(),
        HEAP_SIZE
    );
    let cal = Calibration::measure();

    for case in CASES {
        let curve = case.curve;
        let secret = SecretBytes::new(SECRET);
        let allocs0 = ALLOC.allocs.load(Ordering::Relaxed);

        // Key load (what a board does once at boot per key): stack, then instructions.
        let (pair, key_stack) =
            stack_used(|| KeyPair::from_secret(black_box(curve), black_box(&secret)));
        let pair = match pair {
            Ok(p) => p,
            Err(_) => fail("from_secret"),
        };
        let (_again, key_ticks) =
            timed(|| KeyPair::from_secret(black_box(curve), black_box(&secret)));

        // Sign: stack (interrupts masked), then instructions (a second, identical signature).
        let version = SigningVersion::LATEST;
        let (sig1, sign_stack) =
            stack_used(|| black_box(&pair).try_sign(black_box(case.payload), black_box(version)));
        let (sig2, sign_ticks) =
            timed(|| black_box(&pair).try_sign(black_box(case.payload), black_box(version)));
        let (sig1, sig2) = match (sig1, sig2) {
            (Ok(a), Ok(b)) => (a, b),
            _ => fail("try_sign"),
        };
        if sig1 != sig2 {
            fail("signatures differ between runs");
        }

        #[cfg(feature = "verify")]
        if pair.public_key().verify(case.payload, &sig1, version).is_err() {
            fail("signature does not verify");
        }

        hprintln!(
            "PROBE sign curve={} stack={} instr={} ticks={} keyload_stack={} keyload_instr={} allocs={} pk={} sig={}",
            curve.name(),
            sign_stack,
            cal.instructions(sign_ticks),
            sign_ticks,
            key_stack,
            cal.instructions(key_ticks),
            ALLOC.allocs.load(Ordering::Relaxed) - allocs0,
            Hex(pair.public_key().as_bytes()),
            Hex(sig1.as_bytes()),
        );
    }

    #[cfg(feature = "board")]
    board::run(&cal);

    hprintln!(
        "PROBE heap allocs={} peak_bytes={} live_bytes={}",
        ALLOC.allocs.load(Ordering::Relaxed),
        ALLOC.peak.load(Ordering::Relaxed),
        ALLOC.live.load(Ordering::Relaxed)
    );
    hprintln!("PROBE done");
    debug::exit(debug::EXIT_SUCCESS);
    #[allow(clippy::empty_loop)]
    loop {}
}

#[cfg(feature = "board")]
mod board {
    //! The whole path a Sign frame takes through `Board::handle_frame`: COBS + CRC + postcard
    //! decode, parse, policy, watermark check, persist the mark (`MemoryStore`), sign, record,
    //! encode the answer frame.

    use core::hint::black_box;

    use pawl_core::board::{Board, BoardInfo, NoButton};
    use pawl_core::keys::{Entropy, KeyError, SecretBytes, Signature, SigningVersion};
    use pawl_core::policy::Policy;
    use pawl_core::protocol::{Envelope, Mode, Request, Response, decode_frame, encode_frame};
    use pawl_core::store::MemoryStore;

    use super::{CASES, Calibration, Hex, SECRET, fail, stack_used, timed};
    use cortex_m_semihosting::hprintln;

    struct NoEntropy;

    impl Entropy for NoEntropy {
        fn fill(&mut self, _: &mut [u8]) -> Result<(), KeyError> {
            Err(KeyError::EntropyFailed)
        }
    }

    const FRAME: usize = 512;

    /// A Sign frame for `payload` with its level's low byte raised by `bump`.
    fn sign_frame(pkh: pawl_core::keys::PublicKeyHash, payload: &[u8], bump: u8) -> ([u8; FRAME], usize) {
        let mut p = [0u8; 128];
        let p = &mut p[..payload.len()];
        p.copy_from_slice(payload);
        // magic(1) chain(4) branch(32) tag(1) [slot(2) unless tz4] level(4) round(4) hash(32)
        let level_low = payload.len() - 32 - 4 - 1;
        p[level_low] = p[level_low].wrapping_add(bump);
        let request = Request::Sign {
            pkh,
            version: SigningVersion::LATEST,
            payload: p,
        };
        let mut scratch = [0u8; FRAME];
        let mut frame = [0u8; FRAME];
        match encode_frame(1, &request, &mut scratch, &mut frame) {
            Ok(n) => (frame, n),
            Err(_) => fail("encode sign frame"),
        }
    }

    fn signature(out: &mut [u8]) -> Signature {
        match decode_frame::<Response>(out) {
            Ok(Envelope {
                message: Response::Signature(s),
                ..
            }) => s,
            _ => fail("board answer is not a signature"),
        }
    }

    pub(super) fn run(cal: &Calibration) {
        let info = BoardInfo {
            firmware: "pawl-probe",
            board: "mps2-an386 (QEMU)",
        };
        let mut board = Board::open(MemoryStore::new(), NoEntropy, NoButton, Mode::Provisioning, info);
        hprintln!("PROBE board_size bytes={}", core::mem::size_of_val(&board));

        for case in CASES {
            let pkh = match board.handle(Request::ImportKey {
                curve: case.curve,
                secret: SecretBytes::new(SECRET),
                policy: Policy::default(),
            }) {
                Response::KeyInfo(info) => info.pkh,
                _ => fail("board import"),
            };
            let mut out = [0u8; FRAME];

            // Level L: stack of a signing frame (interrupts masked).
            let (mut f, len) = sign_frame(pkh, case.payload, 0);
            let (r, stack) = stack_used(|| board.handle_frame(black_box(&mut f[..len]), &mut out));
            let sig1 = match r {
                Ok(n) => signature(&mut out[..n]),
                Err(_) => fail("board frame"),
            };

            // Level L+1: instructions of a signing frame.
            let (mut f, len) = sign_frame(pkh, case.payload, 1);
            let (r, ticks) = timed(|| board.handle_frame(black_box(&mut f[..len]), &mut out));
            let sig2 = match r {
                Ok(n) => signature(&mut out[..n]),
                Err(_) => fail("board frame"),
            };

            // Level L+1 again: answered from the watermark record, nothing signed.
            let (mut f, len) = sign_frame(pkh, case.payload, 1);
            let (r, repeat_ticks) = timed(|| board.handle_frame(black_box(&mut f[..len]), &mut out));
            let sig3 = match r {
                Ok(n) => signature(&mut out[..n]),
                Err(_) => fail("board frame"),
            };
            if sig2 != sig3 || sig1 == sig2 {
                fail("board repeat did not return the recorded signature");
            }

            hprintln!(
                "PROBE board curve={} stack={} instr={} repeat_instr={} sig={}",
                case.curve.name(),
                stack,
                cal.instructions(ticks),
                cal.instructions(repeat_ticks),
                Hex(sig1.as_bytes()),
            );
        }
    }
}

#[exception]
unsafe fn HardFault(ef: &ExceptionFrame) -> ! {
    hprintln!("PROBE FAIL hardfault pc={:#x}", ef.pc());
    debug::exit(debug::EXIT_FAILURE);
    #[allow(clippy::empty_loop)]
    loop {}
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    hprintln!("PROBE FAIL panic: {}", info);
    debug::exit(debug::EXIT_FAILURE);
    #[allow(clippy::empty_loop)]
    loop {}
}
