//! Reading the BOOTSEL button on the RP2350.
//!
//! BOOTSEL pulls the QSPI flash's chip-select line low through a resistor. To read it, the CS
//! pad's output driver is switched off for a few tens of microseconds, the pad's input level
//! is sampled, and the driver is switched back on — as the Pico SDK's `get_bootsel_button()`
//! does. While the driver is off the flash cannot be read, so that window runs from RAM with
//! interrupts disabled.
//!
//! `embassy_rp::bootsel` does this on the RP2040 only, and its register offsets and field
//! positions are the RP2040's: on the RP2350 the QSPI registers sit after the two USB PHY
//! registers, and OEOVER moved from bits 13:12 to 15:14 (13:12 is OUTOVER, where the RP2040
//! value would drive CS *low*). The numbers below are the RP2350's, from the Pico SDK's
//! `hardware/regs/io_qspi.h` for the RP2350.

/// `IO_QSPI_GPIO_QSPI_SS_STATUS` (RP2350: `IO_QSPI_BASE` 0x4003_0000 + 0x18).
const SS_STATUS: u32 = 0x4003_0018;
/// `IO_QSPI_GPIO_QSPI_SS_CTRL` (+ 0x1c).
const SS_CTRL: u32 = 0x4003_001c;
/// `SS_CTRL.OEOVER`, bits 15:14.
const OEOVER_MASK: u32 = 0b11 << 14;
/// `OEOVER = DISABLE` (2): output driver off.
const OEOVER_DISABLE: u32 = 0b10 << 14;
/// `SS_STATUS.INFROMPAD`, bit 17: the pad's input level.
const INFROMPAD: u32 = 1 << 17;
/// Settling delay: loop iterations of `subs`+`bne` (~3 cycles each; about 40 µs at 150 MHz).
const SETTLE_LOOPS: u32 = 2048;

/// `true` while BOOTSEL is pressed.
///
/// Must be called on core 0 with no flash DMA in flight. This firmware never starts core 1,
/// and its only flash DMA (store reads) runs to completion inside the same thread-mode loop
/// that calls this, so both hold.
pub fn pressed() -> bool {
    // SAFETY: reading SS_CTRL has no side effect; the address is the RP2350's IO_QSPI SS_CTRL
    // register (see the module doc), always mapped and readable from Secure thread mode.
    let normal = unsafe { core::ptr::read_volatile(SS_CTRL as *const u32) };
    let floating = (normal & !OEOVER_MASK) | OEOVER_DISABLE;
    let status = cortex_m::interrupt::free(|_| {
        // SAFETY: interrupts are off for the whole call, so no handler can fetch code or data
        // from flash while CS is released; `read_cs` lives in RAM and touches only the two
        // IO_QSPI registers and its own registers (no stack, no calls), and it restores
        // SS_CTRL to the value read above before returning. Core 1 is never started and no
        // flash DMA is in flight (see above), so nothing else uses the flash meanwhile.
        unsafe { read_cs(floating, normal) }
    });
    // Pressed pulls CS low.
    status & INFROMPAD == 0
}

/// Release CS (write `floating`), wait, sample `SS_STATUS`, restore CS (write `normal`).
///
/// # Safety
///
/// Interrupts disabled, nothing else accessing flash; `normal` is the current `SS_CTRL`.
#[inline(never)]
#[unsafe(link_section = ".data.ram_func")]
unsafe fn read_cs(floating: u32, normal: u32) -> u32 {
    let status: u32;
    // SAFETY: see the caller. The asm only stores to SS_CTRL, loads from SS_STATUS, and
    // counts down a register; it uses no stack and calls nothing, so it never fetches from
    // flash while CS is released.
    unsafe {
        core::arch::asm!(
            "str {floating}, [{ctrl}]",
            "2:",
            "subs {count}, {count}, #1",
            "bne 2b",
            "ldr {status}, [{stat}]",
            "str {normal}, [{ctrl}]",
            ctrl = in(reg) SS_CTRL,
            stat = in(reg) SS_STATUS,
            floating = in(reg) floating,
            normal = in(reg) normal,
            count = inout(reg) SETTLE_LOOPS => _,
            status = out(reg) status,
            options(nostack),
        );
    }
    status
}
