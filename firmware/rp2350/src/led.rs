//! The LED (Pico 2: GPIO 25) shows what the board is doing. A task on the high-priority
//! executor draws the pattern, so the LED keeps blinking while the signing loop is busy or
//! waits for the button.
//!
//! | state | pattern |
//! |---|---|
//! | [`Led::BootWindow`] | fast flicker (10 Hz) for the first seconds: press BOOTSEL now for provisioning |
//! | [`Led::Operational`] | steady on |
//! | [`Led::Provisioning`] | slow blink (1 Hz) |
//! | [`Led::Busy`] | off while a request is handled (signing) |
//! | [`Led::Confirm`] | quick double blink, repeating: press BOOTSEL to confirm |
//! | [`Led::Refusing`] | three short flashes every 2 s: the board refuses to sign (no OTP board key, store corrupted or rolled back) |

use core::sync::atomic::{AtomicU8, Ordering};

use embassy_rp::gpio::Output;
use embassy_time::{Duration, Timer};

/// What the LED shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Led {
    /// Boot window open: press BOOTSEL for provisioning mode.
    BootWindow = 0,
    /// Operational, idle.
    Operational = 1,
    /// Provisioning, idle.
    Provisioning = 2,
    /// Handling a request.
    Busy = 3,
    /// Waiting for a button press to confirm a signature.
    Confirm = 4,
    /// Refusing to sign (no board key, or the store is not trusted).
    Refusing = 5,
}

static STATE: AtomicU8 = AtomicU8::new(Led::BootWindow as u8);

impl Led {
    /// Show this state from now on.
    pub fn show(self) {
        STATE.store(self as u8, Ordering::Relaxed);
    }

    fn current() -> Led {
        match STATE.load(Ordering::Relaxed) {
            0 => Led::BootWindow,
            1 => Led::Operational,
            2 => Led::Provisioning,
            3 => Led::Busy,
            4 => Led::Confirm,
            _ => Led::Refusing,
        }
    }

    /// One period of the pattern: (on?, milliseconds) steps.
    fn pattern(self) -> &'static [(bool, u64)] {
        match self {
            Led::BootWindow => &[(true, 50), (false, 50)],
            Led::Operational => &[(true, 100)],
            Led::Provisioning => &[(true, 500), (false, 500)],
            Led::Busy => &[(false, 20)],
            Led::Confirm => &[(true, 80), (false, 80), (true, 80), (false, 400)],
            Led::Refusing => &[
                (true, 80),
                (false, 160),
                (true, 80),
                (false, 160),
                (true, 80),
                (false, 1440),
            ],
        }
    }
}

/// Draw the current state's pattern forever. A state change takes effect at the next step
/// (at most 1.44 s later; every busy or confirm step is short).
#[embassy_executor::task]
pub async fn run(mut pin: Output<'static>) {
    loop {
        let state = Led::current();
        for &(on, ms) in state.pattern() {
            if on {
                pin.set_high();
            } else {
                pin.set_low();
            }
            Timer::after(Duration::from_millis(ms)).await;
            if Led::current() != state {
                break;
            }
        }
    }
}
