//! The serial link: UART0 of the board, an Arm CMSDK APB UART, polled. QEMU attaches it to a
//! host pty (`-serial pty`).
//!
//! | offset | register | use |
//! |---|---|---|
//! | 0x00 | DATA | read: the received byte; write: send a byte |
//! | 0x04 | STATE | bit 0 TX full, bit 1 RX full |
//! | 0x08 | CTRL | bit 0 TX enable, bit 1 RX enable, bit 3 RX interrupt enable |
//! | 0x0C | INTSTATUS | write 1 to clear: bit 1 RX |
//! | 0x10 | BAUDDIV | ≥ 16; QEMU ignores the rate |
//!
//! The RX interrupt is enabled only so that `wfi` wakes when a byte arrives: the board runs with
//! interrupts masked (PRIMASK), so no handler ever runs; the main loop clears the pending bit.

use core::ptr::{read_volatile, write_volatile};

use cortex_m::interrupt::InterruptNumber;
use cortex_m::peripheral::NVIC;

/// UART0, secure alias, on mps2-an505 (`hw/arm/mps2-tz.c`: 0x40200000 + 0x10000000).
const UART0: usize = 0x5020_0000;
/// UART0's RX interrupt on mps2-an505.
const UART0_RX_IRQ: u16 = 32;

const DATA: usize = 0x00;
const STATE: usize = 0x04;
const CTRL: usize = 0x08;
const INTSTATUS: usize = 0x0C;
const BAUDDIV: usize = 0x10;

const STATE_TX_FULL: u32 = 1 << 0;
const STATE_RX_FULL: u32 = 1 << 1;
const CTRL_TX_EN: u32 = 1 << 0;
const CTRL_RX_EN: u32 = 1 << 1;
const CTRL_RX_IRQ_EN: u32 = 1 << 3;
const INT_RX: u32 = 1 << 1;

#[derive(Clone, Copy)]
struct Irq(u16);

// SAFETY: `number` returns a fixed interrupt number that exists on the machine (the NVIC of
// the SSE-200 has 480 lines; UART0 RX is line 32).
unsafe impl InterruptNumber for Irq {
    fn number(self) -> u16 {
        self.0
    }
}

/// The link UART. One instance exists ([`Uart::take`]).
pub struct Uart {
    _private: (),
}

impl Uart {
    /// Set the UART up (TX, RX, RX wake-up). Call once.
    pub fn take() -> Uart {
        let uart = Uart { _private: () };
        uart.write_reg(BAUDDIV, 16);
        uart.write_reg(CTRL, CTRL_TX_EN | CTRL_RX_EN | CTRL_RX_IRQ_EN);
        // SAFETY: unmasking in the NVIC cannot break a critical section here: PRIMASK stays
        // set for the board's whole life (see the module doc), so no handler runs.
        unsafe { NVIC::unmask(Irq(UART0_RX_IRQ)) };
        uart
    }

    fn read_reg(&self, offset: usize) -> u32 {
        // SAFETY: UART0's registers are valid, aligned MMIO words on this machine and only
        // this single instance touches them.
        unsafe { read_volatile((UART0 + offset) as *const u32) }
    }

    fn write_reg(&self, offset: usize, value: u32) {
        // SAFETY: as in `read_reg`.
        unsafe { write_volatile((UART0 + offset) as *mut u32, value) }
    }

    /// Whether a received byte is waiting (without taking it).
    pub fn has_byte(&self) -> bool {
        self.read_reg(STATE) & STATE_RX_FULL != 0
    }

    /// A received byte, if one is waiting.
    pub fn try_read(&mut self) -> Option<u8> {
        if self.read_reg(STATE) & STATE_RX_FULL == 0 {
            return None;
        }
        Some((self.read_reg(DATA) & 0xFF) as u8)
    }

    /// Send `bytes`, waiting while the transmitter is full.
    pub fn write_all(&mut self, bytes: &[u8]) {
        for &b in bytes {
            while self.read_reg(STATE) & STATE_TX_FULL != 0 {}
            self.write_reg(DATA, u32::from(b));
        }
    }

    /// Sleep until a byte arrives or another wake-up source (SysTick) fires. Must be called
    /// with interrupts masked; returns with them still masked.
    pub fn wait(&mut self) {
        self.write_reg(INTSTATUS, INT_RX);
        NVIC::unpend(Irq(UART0_RX_IRQ));
        // A byte that arrived after the clear above sets the pending bit again, so `wfi`
        // returns at once: no byte is slept through.
        if self.read_reg(STATE) & STATE_RX_FULL == 0 {
            cortex_m::asm::wfi();
        }
        cortex_m::peripheral::SCB::clear_pendst();
    }
}
