//! Instruction counting for the measuring runs (`budget`, `maintenance`): QEMU runs them with
//! `-icount shift=0` (one guest instruction = 1 ns of virtual time) and SysTick, calibrated
//! against a loop of known length, counts them. Semihosting calls (the flash file) cost the
//! guest one `bkpt` each: host work is not counted. Included by each binary with `#[path]`
//! (it holds the SysTick handler, which only a binary may define).

use core::hint::black_box;
use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::{SCB, SYST};
use cortex_m_rt::exception;
use cortex_m_semihosting::hprintln;
use pawl_qemu::fail;

const RELOAD: u32 = 0x00FF_FFFF;
static WRAPS: AtomicU32 = AtomicU32::new(0);

#[exception]
fn SysTick() {
    WRAPS.fetch_add(1, Ordering::Relaxed);
}

fn ticks() -> u64 {
    cortex_m::interrupt::free(|_| {
        let mut wraps = WRAPS.load(Ordering::Relaxed);
        let mut cvr = SYST::get_current();
        if SCB::is_pendst_pending() {
            wraps += 1;
            cvr = SYST::get_current();
        }
        (u64::from(wraps) << 24) + u64::from(RELOAD - cvr)
    })
}

#[inline(never)]
pub fn timed<R>(f: impl FnOnce() -> R) -> (R, u64) {
    let t0 = ticks();
    let r = f();
    (r, ticks() - t0)
}

/// Exactly `2 * n` instructions (`subs` + `bne` per turn).
#[inline(never)]
fn spin(n: u32) {
    // SAFETY: a register-only countdown loop; touches no memory and no stack.
    unsafe {
        core::arch::asm!("2:", "subs {0}, {0}, #1", "bne 2b", inout(reg) n => _,
            options(nomem, nostack));
    }
}

/// Instructions per tick ×1000, and the cost of an empty `timed`.
fn calibrate() -> (u64, u64) {
    let ((), overhead) = timed(|| ());
    let ((), t1) = timed(|| spin(black_box(1_000_000)));
    let ((), t2) = timed(|| spin(black_box(6_000_000)));
    let milli = (10_000_000 * 1000 + (t2 - t1) / 2) / (t2 - t1);
    hprintln!(
        "BUDGET calib milli_instr_per_tick={} overhead_ticks={}",
        milli,
        overhead
    );
    (milli, overhead)
}

/// Start SysTick and calibrate it: the returned function turns the ticks of a [`timed`] call
/// into guest instructions.
pub fn start_counting() -> impl Fn(u64) -> u64 {
    start_systick();
    let (milli, overhead) = calibrate();
    move |t: u64| (t.saturating_sub(overhead) * milli + 500) / 1000
}

/// Start SysTick counting core clock cycles, wrapping every 2^24.
fn start_systick() {
    let Some(mut cp) = cortex_m::Peripherals::take() else {
        fail("core peripherals taken twice");
    };
    cp.SYST.set_clock_source(SystClkSource::Core);
    cp.SYST.set_reload(RELOAD);
    cp.SYST.clear_current();
    cp.SYST.enable_interrupt();
    cp.SYST.enable_counter();
}
