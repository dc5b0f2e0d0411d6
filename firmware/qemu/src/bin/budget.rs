//! The budget run (`budget.sh`): the board image's own `Board`, `NorStore` over the semihosting
//! flash file, entropy and button, driven from inside with Sign frames through
//! `Board::handle_frame`, per curve:
//!
//! * **stack high-water**: the free RAM below the stack pointer is painted, one Sign frame is
//!   answered with interrupts masked, the lowest overwritten word gives the bytes used;
//! * **instructions**: QEMU runs with `-icount shift=0` (one guest instruction = 1 ns of virtual
//!   time) and SysTick, calibrated against a loop of known length, counts them. Semihosting
//!   calls (the flash file) cost the guest one `bkpt` each: host work is not counted.
//!
//! Prints `BUDGET …` lines; exits through semihosting with status 0 only if every step worked.
//! Run it in an empty directory: it provisions keys into `flash.bin` there.

#![no_std]
#![no_main]

use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hprintln};
use pawl_core::keys::{Curve, PublicKeyHash, SecretBytes, SigningVersion};
use pawl_core::policy::Policy;
use pawl_core::protocol::cometbft::{CometRequest, CometResponse};
use pawl_core::protocol::{Envelope, MAX_FRAME, Request, Response, decode_frame, encode_frame};
use pawl_qemu::{QemuBoard, fail, init_heap, open_board};

#[path = "../measure.rs"]
mod measure;
use measure::{start_counting, timed};

const PAINT: u32 = 0xAAAA_AAAA;

unsafe extern "C" {
    /// cortex-m-rt: first byte after .bss/.uninit, the lowest the stack may reach.
    static mut __sheap: u32;
}

fn floor() -> usize {
    (&raw const __sheap) as usize
}

/// Fill `[__sheap, sp)` with [`PAINT`], in assembly so nothing lands in the range afterwards.
#[inline(never)]
fn paint() {
    // SAFETY: writes only below the current stack pointer and above the end of .bss: memory
    // no live object occupies (the heap is a static in .bss, below `__sheap`).
    unsafe {
        core::arch::asm!("2:", "cmp {p}, sp", "bhs 3f", "str {pat}, [{p}], #4", "b 2b", "3:",
            p = inout(reg) floor() => _, pat = in(reg) PAINT, options(nostack));
    }
}

/// Bytes `f` used below the caller's stack pointer (run with interrupts masked).
#[inline(never)]
fn stack_used<R>(f: impl FnOnce() -> R) -> (R, usize) {
    cortex_m::interrupt::free(|_| {
        let base = cortex_m::register::msp::read() as usize;
        paint();
        let r = f();
        let mut p = floor();
        // SAFETY: `p` walks word-aligned RAM between the end of .bss and the stack pointer.
        while p < base && unsafe { core::ptr::read_volatile(p as *const u32) } == PAINT {
            p += 4;
        }
        (r, base - p)
    })
}

/// tz1/tz2/tz3 attestation (tag 21) and tz4 attestation (tag 41), as in firmware/probe.
const ATTESTATION: &str = "13b3d79f993222f293d2f293230ec36b0bef1caead619f1a7206ff54a0c198f07ae25bb151150015000000220000000458335430566f4b95401c110f33e74d3a324f83ad6003ed9d5e93ce617fa11e44";
const ATTESTATION_TZ4: &str = "13b3d79f993222f293d2f293230ec36b0bef1caead619f1a7206ff54a0c198f07ae25bb15129000000220000000458335430566f4b95401c110f33e74d3a324f83ad6003ed9d5e93ce617fa11e44";

/// Lower-case `hex` decoded into the front of `out`; its length.
fn unhex(hex: &str, out: &mut [u8]) -> usize {
    let hex = hex.as_bytes();
    let n = hex.len() / 2;
    let nib = |c: u8| match c {
        b'0'..=b'9' => c - b'0',
        _ => c - b'a' + 10,
    };
    for i in 0..n {
        out[i] = (nib(hex[2 * i]) << 4) | nib(hex[2 * i + 1]);
    }
    n
}

/// `hex` decoded, with the level (4 bytes before round and block hash) raised by `bump`.
fn payload(hex: &str, bump: u8, out: &mut [u8; 80]) -> usize {
    let n = unhex(hex, out);
    let level_low = n - 32 - 4 - 1;
    out[level_low] += bump;
    n
}

/// Answer one Sign frame for `pkh` at the level raised by `bump`; `true` if it was signed.
fn sign(board: &mut QemuBoard, pkh: PublicKeyHash, hex: &str, bump: u8, buf: &mut Buffers) -> bool {
    let mut p = [0u8; 80];
    let n = payload(hex, bump, &mut p);
    let request = Request::Sign {
        pkh,
        version: SigningVersion::LATEST,
        payload: &p[..n],
    };
    let Ok(len) = encode_frame(1, &request, &mut buf.scratch, &mut buf.frame) else {
        fail("encode a Sign frame");
    };
    match board.handle_frame(&mut buf.frame[..len], &mut buf.out) {
        Ok(n) => matches!(
            decode_frame::<Response>(&mut buf.out[..n]),
            Ok(Envelope {
                message: Response::Signature(_),
                ..
            })
        ),
        Err(_) => false,
    }
}

/// A CometBFT prevote at height 100, round 1 for `cosmoshub-4` (tendermint-rs
/// `Vote::into_signable_vec`: vector `prevote_100_1` of core/tests/fixtures/cometbft).
const PREVOTE: &str = "73080111640000000000000019010000000000000022480a200101010101010101010101010101010101010101010101010101010101010101122408011220fefefefefefefefefefefefefefefefefefefefefefefefefefefefefefefefe2a060880e2cfaa06320b636f736d6f736875622d34";

/// Answer one CometBFT SignVote frame for `pkh` at height 100 + `bump`; `true` if signed.
fn vote(board: &mut QemuBoard, pkh: PublicKeyHash, bump: u8, buf: &mut Buffers) -> bool {
    let mut p = [0u8; 128];
    let n = unhex(PREVOTE, &mut p);
    // The height, sfixed64 little-endian after its tag at byte 3.
    p[4] += bump;
    let request = Request::CometBft(CometRequest::SignVote {
        pkh,
        sign_bytes: &p[..n],
        extension: None,
    });
    let Ok(len) = encode_frame(1, &request, &mut buf.scratch, &mut buf.frame) else {
        fail("encode a SignVote frame");
    };
    match board.handle_frame(&mut buf.frame[..len], &mut buf.out) {
        Ok(n) => matches!(
            decode_frame::<Response>(&mut buf.out[..n]),
            Ok(Envelope {
                message: Response::CometBft(CometResponse::Vote { .. }),
                ..
            })
        ),
        Err(_) => false,
    }
}

struct Buffers {
    scratch: [u8; 512],
    frame: [u8; 512],
    out: [u8; MAX_FRAME],
}

#[entry]
fn main() -> ! {
    init_heap();
    let instructions = start_counting();

    let (mut board, _) = open_board();
    hprintln!("BUDGET board_size bytes={}", core::mem::size_of_val(&board));
    let mut buf = Buffers {
        scratch: [0; 512],
        frame: [0; 512],
        out: [0; MAX_FRAME],
    };
    let cases = [
        (Curve::Ed25519, ATTESTATION),
        (Curve::Secp256k1, ATTESTATION),
        (Curve::P256, ATTESTATION),
        (Curve::Bls12_381, ATTESTATION_TZ4),
    ];
    for (curve, hex) in cases {
        let request = Request::ImportKey {
            curve,
            secret: SecretBytes::new([7; 32]),
            policy: Policy::default(),
        };
        let pkh = match board.handle(request) {
            Response::KeyInfo(info) => info.pkh,
            _ => fail("import a key (run in an empty directory, mode=provisioning)"),
        };
        // Level L: first signature of this mark, writes its ceiling to flash; stack painted.
        let (ok, stack) = stack_used(|| sign(&mut board, pkh, hex, 0, &mut buf));
        // Level L+1: under the reserved ceiling, no flash write; timed.
        let (ok1, t_sign) = timed(|| sign(&mut board, pkh, hex, 1, &mut buf));
        // Level L+1 again: the recorded signature, nothing signed.
        let (ok2, t_repeat) = timed(|| sign(&mut board, pkh, hex, 1, &mut buf));
        // Level L+20: above the ceiling, writes a new one before signing; timed.
        let (ok3, t_ceiling) = timed(|| sign(&mut board, pkh, hex, 20, &mut buf));
        if !(ok && ok1 && ok2 && ok3) {
            fail("a Sign frame was not signed");
        }
        hprintln!(
            "BUDGET sign curve={} stack={} instr={} instr_ceiling_write={} instr_repeat={}",
            curve.name(),
            stack,
            instructions(t_sign),
            instructions(t_ceiling),
            instructions(t_repeat)
        );
    }
    // A CometBFT validator key (tz1 on the board, pinned to cosmoshub-4): the same four steps.
    let request = Request::ImportKey {
        curve: Curve::Ed25519,
        secret: SecretBytes::new([9; 32]),
        policy: Policy::default(),
    };
    let pkh = match board.handle(request) {
        Response::KeyInfo(info) => info.pkh,
        _ => fail("import the CometBFT key"),
    };
    let pin = Request::CometBft(CometRequest::SetChain {
        pkh,
        chain_id: "cosmoshub-4",
    });
    if !matches!(board.handle(pin), Response::KeyInfo(_)) {
        fail("pin the CometBFT key");
    }
    let (ok, stack) = stack_used(|| vote(&mut board, pkh, 0, &mut buf));
    let (ok1, t_sign) = timed(|| vote(&mut board, pkh, 1, &mut buf));
    let (ok2, t_repeat) = timed(|| vote(&mut board, pkh, 1, &mut buf));
    let (ok3, t_ceiling) = timed(|| vote(&mut board, pkh, 20, &mut buf));
    if !(ok && ok1 && ok2 && ok3) {
        fail("a SignVote frame was not signed");
    }
    hprintln!(
        "BUDGET sign curve=cometbft-prevote-tz1 stack={} instr={} instr_ceiling_write={} instr_repeat={}",
        stack,
        instructions(t_sign),
        instructions(t_ceiling),
        instructions(t_repeat)
    );
    hprintln!("BUDGET done");
    debug::exit(debug::EXIT_SUCCESS);
    #[allow(clippy::empty_loop)]
    loop {}
}
