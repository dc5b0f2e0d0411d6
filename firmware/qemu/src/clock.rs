//! The board's clock for the flash write budget (`pawl_core::store::budget`): the Cortex-M
//! SysTick timer, which `serve` runs from the 25 MHz core clock with a 0.1 s period (its
//! wake-ups also drop half frames and poll the button).
//!
//! Why SysTick and not the semihosting clock (`semihost::clock_cs`, already used for the
//! frame timeout): it is the board's own timer, as on real silicon, read from two registers
//! without a trap to the host; and it can only run slow, never fast. The clock counts the
//! ticks between two reads, seeing at most one wrap of the down-counter in between: a gap of
//! more than one period (0.1 s) between reads loses the whole periods in it. Board glue reads
//! it at every wake-up (`Board::idle` refills the budget), so little is lost, and what is
//! lost only leaves the budget with fewer tokens — the bound on flash writes holds whatever
//! happens to the clock.

use cortex_m::peripheral::SYST;
use pawl_core::store::Clock;

/// SysTick ticks a millisecond (the core clock, 25 MHz on mps2-an505).
const TICKS_PER_MS: u64 = 25_000;

/// Milliseconds since boot, from SysTick.
#[derive(Debug, Default)]
pub struct SysTickClock {
    /// Ticks counted so far.
    ticks: u64,
    /// The down-counter at the last read.
    last: u32,
}

impl SysTickClock {
    /// A clock at zero; it counts once `serve` has started SysTick.
    pub fn new() -> Self {
        SysTickClock {
            ticks: 0,
            last: SYST::get_current(),
        }
    }
}

impl Clock for SysTickClock {
    fn now_ms(&mut self) -> u64 {
        let current = SYST::get_current();
        let elapsed = if current <= self.last {
            self.last - current
        } else {
            // The counter wrapped (reloaded with RVR, counting RVR + 1 ticks a period).
            self.last + SYST::get_reload().saturating_add(1).saturating_sub(current)
        };
        self.last = current;
        self.ticks = self.ticks.saturating_add(u64::from(elapsed));
        self.ticks / TICKS_PER_MS
    }
}
