//! The self-test's instruments on the QEMU board ([`pawl_core::board::Instruments`]).
//!
//! **Clock.** The board's own timer is SysTick, which `serve` runs from the core clock with a
//! reload of 2,500,000 (one period: 125 ms at the 20 MHz QEMU gives mps2-an505's core clock:
//! `budget.sh` calibrates 50 ns per tick under `-icount shift=0`). SysTick alone cannot time
//! anything longer than one period (interrupts are masked while a frame is answered, so its
//! wraps are not counted), and a BLS signature on a busy CI machine can take longer. So each
//! reading pairs SysTick with the semihosting `SYS_ELAPSED` clock (the host's monotonic clock
//! in nanoseconds, `SYS_TICKFREQ` = 10⁹ on QEMU): the host clock says how many whole periods
//! passed (to the nearest period), SysTick where in the period we are, to 50 ns. Without
//! `-icount` (as `pawl-sim qemu` runs it) QEMU's virtual clock follows the host's, so the two
//! agree. Not `SYS_CLOCK` (`semihost::clock_cs`): QEMU answers it with the process's CPU time
//! (C `clock()`), which falls behind the wall clock while QEMU idles in `wfi` (measured: a
//! 1.5 s button wait read as 1.13 s). Before `serve` starts SysTick, or if `SYS_ELAPSED`
//! fails, the clock is the host clock alone (or stands still: no time is made up).
//!
//! **Scratch flash.** `selftest-scratch.bin` in the state directory, 4 KiB, through
//! semihosting with the NOR rules of [`crate::flash`] (erase sets `0xFF`, programming clears
//! bits); made by the first erase. Never `flash.bin`. Its times are the host's file I/O
//! through semihosting, not a flash chip's.
//!
//! **Board key.** `board.key`, a host file: [`BoardKeyState::SimulatedFile`].

use core::cell::{Cell, RefCell};

use cortex_m::interrupt::{self, Mutex};
use cortex_m::peripheral::SYST;
use pawl_core::board::Instruments;
use pawl_core::protocol::selftest::{BoardKeyState, ScratchError};

use crate::semihost::{self, HostFile, Open};

/// SysTick ticks a microsecond (the 20 MHz core clock).
const TICKS_PER_US: u64 = 20;
/// Bytes of the scratch sector.
const SECTOR: u32 = 4096;

/// The last reading, and the time counted up to it.
#[derive(Clone, Copy)]
struct Reading {
    host_ns: u64,
    cvr: u32,
    ticks: u64,
    started: bool,
}

/// The QEMU board's instruments; one static instance ([`BENCH`]).
pub struct QemuBench {
    last: Mutex<Cell<Reading>>,
    scratch: Mutex<RefCell<Option<HostFile>>>,
}

/// The instruments `open_board` lends the board.
pub static BENCH: QemuBench = QemuBench {
    last: Mutex::new(Cell::new(Reading {
        host_ns: 0,
        cvr: 0,
        ticks: 0,
        started: false,
    })),
    scratch: Mutex::new(RefCell::new(None)),
};

/// The host's monotonic clock through semihosting `SYS_ELAPSED`, in nanoseconds since QEMU
/// started (QEMU's tick frequency is 10⁹), or `None` if the call fails.
fn host_ns() -> Option<u64> {
    let mut block = [0usize; 2];
    // SAFETY: SYS_ELAPSED writes the 64-bit count into the two words of `block` (low word
    // first), which is exclusively borrowed for the call and passed as a raw pointer derived
    // from `&mut` (the call's asm clobbers memory, so the write is seen); it reads nothing.
    let r = unsafe {
        cortex_m_semihosting::syscall1(
            cortex_m_semihosting::nr::ELAPSED,
            block.as_mut_ptr() as usize,
        )
    };
    (r == 0).then(|| (block[1] as u64) << 32 | block[0] as u64)
}

/// Ticks between two readings: the SysTick difference within a period, plus the whole
/// periods the host clock says passed.
fn elapsed(last: &Reading, host_ns: u64, cvr: u32, reload: u32) -> u64 {
    let coarse = host_ns.saturating_sub(last.host_ns) * TICKS_PER_US / 1000;
    if reload == 0 {
        return coarse;
    }
    let period = u64::from(reload) + 1;
    // SysTick counts down.
    let fine = (u64::from(last.cvr) + period - u64::from(cvr)) % period;
    let whole = (coarse.saturating_sub(fine) + period / 2) / period;
    whole * period + fine
}

impl Instruments for QemuBench {
    fn now_us(&self) -> u64 {
        let host = host_ns();
        let cvr = SYST::get_current();
        let reload = SYST::get_reload();
        interrupt::free(|key| {
            let cell = self.last.borrow(key);
            let mut last = cell.get();
            let Some(host) = host else {
                return last.ticks / TICKS_PER_US;
            };
            if last.started {
                last.ticks = last.ticks.saturating_add(elapsed(&last, host, cvr, reload));
            } else {
                last.started = true;
            }
            last.host_ns = host;
            last.cvr = cvr;
            cell.set(last);
            last.ticks / TICKS_PER_US
        })
    }

    fn clock(&self) -> &'static str {
        "SysTick 20 MHz + host clock (QEMU)"
    }

    fn board_key(&self) -> BoardKeyState {
        BoardKeyState::SimulatedFile
    }

    fn scratch_len(&self) -> Option<u32> {
        Some(SECTOR)
    }

    fn scratch_erase(&self) -> Result<(), ScratchError> {
        self.with(0, SECTOR as usize, true, |file| {
            let erased = [0xFF; 256];
            for at in (0..SECTOR as usize).step_by(erased.len()) {
                file.write_at(at, &erased)?;
            }
            Ok(())
        })
        .map(drop)
    }

    fn scratch_program(&self, offset: u32, bytes: &[u8]) -> Result<(), ScratchError> {
        let at = offset as usize;
        self.with(at, bytes.len(), false, |file| {
            let mut cell = [0u8; 256];
            for (i, chunk) in bytes.chunks(cell.len()).enumerate() {
                let cell = &mut cell[..chunk.len()];
                let here = at + i * 256;
                file.read_at(here, cell)?;
                for (old, new) in cell.iter_mut().zip(chunk) {
                    *old &= *new;
                }
                file.write_at(here, cell)?;
            }
            Ok(())
        })?
        .ok_or(ScratchError::Io)
    }

    fn scratch_read(&self, offset: u32, bytes: &mut [u8]) -> Result<(), ScratchError> {
        let at = offset as usize;
        let read = self.with(at, bytes.len(), false, |file| file.read_at(at, bytes))?;
        if read.is_none() {
            // Never erased: a fresh sector reads erased.
            bytes.fill(0xFF);
        }
        Ok(())
    }
}

impl QemuBench {
    /// Run `f` on the scratch file, opened (and with `create`, made) first; `Ok(None)` when
    /// it does not exist and `create` is false.
    fn with<R>(
        &self,
        at: usize,
        len: usize,
        create: bool,
        f: impl FnOnce(&mut HostFile) -> Result<R, semihost::HostError>,
    ) -> Result<Option<R>, ScratchError> {
        if at.checked_add(len).is_none_or(|end| end > SECTOR as usize) {
            return Err(ScratchError::Io);
        }
        interrupt::free(|key| {
            let mut slot = self.scratch.borrow(key).borrow_mut();
            if slot.is_none() {
                let path = c"selftest-scratch.bin";
                let file = match HostFile::open(path, Open::ReadWrite) {
                    Ok(f) => f,
                    Err(_) if create => {
                        drop(HostFile::open(path, Open::Create).map_err(|_| ScratchError::Io)?);
                        HostFile::open(path, Open::ReadWrite).map_err(|_| ScratchError::Io)?
                    }
                    Err(_) => return Ok(None),
                };
                *slot = Some(file);
            }
            let file = slot.as_mut().ok_or(ScratchError::Io)?;
            f(file).map(Some).map_err(|_| ScratchError::Io)
        })
    }
}
