//! The BOOTSEL button: provisioning mode at power-up, and confirm-on-device.
//!
//! The Pico 2 has no other button. BOOTSEL is wired to the QSPI flash's chip select, so it is
//! read the way the Pico SDK does: for a few microseconds, from RAM and with interrupts off,
//! the CS pad's output is released and its level sampled ([`crate::bootsel`]).
//!
//! **Provisioning is chosen just after power-up, not by holding the button through it**: the
//! boot ROM samples BOOTSEL at reset and, if it is held, starts its own USB bootloader instead
//! of this firmware (that is how a UF2 is dragged on). So the firmware opens a
//! [`BOOT_WINDOW`] right after it starts (LED flickering fast): press and hold BOOTSEL during
//! it for [`HOLD`] to enter provisioning mode; otherwise the board starts operational.
//! Neither choice is reachable from the USB link the host controls.

use embassy_rp::Peri;
use embassy_rp::peripherals::BOOTSEL;
use embassy_time::{Duration, Instant, block_for};
use pawl_core::board::Presence;
use pawl_core::keys::PublicKeyHash;
use pawl_core::protocol::Mode;
use pawl_core::request::RequestKind;

use crate::led::Led;

/// How long after power-up a press selects provisioning mode.
pub const BOOT_WINDOW: Duration = Duration::from_secs(3);
/// How long the button must be held to count as a press (debounce).
pub const HOLD: Duration = Duration::from_millis(300);
/// How long confirm-on-device waits for a press before refusing.
pub const CONFIRM_TIMEOUT: Duration = Duration::from_secs(30);
/// Button polling interval.
const POLL: Duration = Duration::from_millis(20);

/// The BOOTSEL button.
pub struct Bootsel {
    pin: Peri<'static, BOOTSEL>,
}

impl Bootsel {
    /// Take the button.
    pub fn new(pin: Peri<'static, BOOTSEL>) -> Self {
        Bootsel { pin }
    }

    fn pressed(&mut self) -> bool {
        // Holding the peripheral token proves nobody else drives the QSPI CS override.
        let _ = &self.pin;
        crate::bootsel::pressed()
    }

    /// Wait until `deadline` for a press held for [`HOLD`]. With `fresh`, a button already
    /// down when the wait starts must first be released, so a stuck or taped-down button
    /// never confirms anything.
    fn press_before(&mut self, deadline: Instant, fresh: bool) -> bool {
        let mut released = !fresh;
        let mut down_since: Option<Instant> = None;
        while Instant::now() < deadline {
            if self.pressed() {
                if released {
                    let since = *down_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= HOLD {
                        return true;
                    }
                }
            } else {
                released = true;
                down_since = None;
            }
            block_for(POLL);
        }
        false
    }

    /// The boot window: [`Mode::Provisioning`] if the button is held during the first
    /// [`BOOT_WINDOW`] after power-up, else [`Mode::Operational`].
    pub fn boot_mode(&mut self) -> Mode {
        Led::BootWindow.show();
        // A button already down here was pressed after the ROM's check: it counts.
        if self.press_before(Instant::now() + BOOT_WINDOW, false) {
            Mode::Provisioning
        } else {
            Mode::Operational
        }
    }
}

impl Presence for Bootsel {
    /// Blink [`Led::Confirm`] and wait up to [`CONFIRM_TIMEOUT`] for a fresh press. Blocks the
    /// signing loop (nothing else may be signed meanwhile); USB keeps running on the
    /// interrupt executor.
    fn confirm(&mut self, _key: &PublicKeyHash, _kind: RequestKind) -> bool {
        Led::Confirm.show();
        let confirmed = self.press_before(Instant::now() + CONFIRM_TIMEOUT, true);
        Led::Busy.show();
        confirmed
    }

    /// The self-test's button check: as [`Presence::confirm`], a fresh press within
    /// [`CONFIRM_TIMEOUT`].
    fn wait_press(&mut self) -> Option<bool> {
        Led::Confirm.show();
        let pressed = self.press_before(Instant::now() + CONFIRM_TIMEOUT, true);
        Led::Busy.show();
        Some(pressed)
    }
}
