//! The USB serial link: a CDC-ACM function whose bytes go through two pipes, so USB runs on
//! the high-priority executor while the signing loop blocks (signing, flash writes, waiting
//! for the button) in thread mode.
//!
//! ```text
//!   host ──USB──▶ rx task ──▶ [RX pipe] ──▶ serve loop (thread mode, pawl_core::Board)
//!   host ◀──USB── tx task ◀── [TX pipe] ◀──┘
//! ```
//!
//! A full RX pipe makes the rx task stop reading, so the host is NAKed rather than bytes
//! being dropped. The tx task sends at most one 64-byte packet at a time and ends a transfer
//! whose last packet was exactly 64 bytes with a zero-length packet, so the host's read
//! returns instead of waiting for more.

use embassy_futures::join::join3;
use embassy_rp::peripherals::USB;
use embassy_rp::usb::Driver;
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_sync::pipe::Pipe;
use embassy_usb::class::cdc_acm::{CdcAcmClass, Receiver, Sender, State};
use embassy_usb::{Builder, Config};
use static_cell::StaticCell;

/// USB full-speed bulk max packet size.
pub const MAX_PACKET: usize = 64;
/// Bytes buffered each way between USB and the signing loop.
const PIPE: usize = 1024;

/// Bytes from the host, in arrival order.
pub static RX: Pipe<CriticalSectionRawMutex, PIPE> = Pipe::new();
/// Bytes for the host.
pub static TX: Pipe<CriticalSectionRawMutex, PIPE> = Pipe::new();

/// The USB driver of this board.
pub type UsbDriver = Driver<'static, USB>;

/// Run the USB side of the link forever: the device (enumeration, control requests) and the
/// two data directions. Everything USB is built here, on the executor that runs it.
///
/// IDs: `1209:0001` is the pid.codes *test* PID, fine for a self-built board on one's own
/// machine; a distributed product needs its own VID:PID. The serial number is the chip's
/// public 64-bit CHIPID (OTP rows 0–3), so `/dev/serial/by-id/` names each board stably.
#[embassy_executor::task]
pub async fn run(driver: UsbDriver) {
    static SERIAL: StaticCell<[u8; 16]> = StaticCell::new();
    let serial = SERIAL.init(hex16(embassy_rp::otp::get_chipid().unwrap_or(0)));

    let mut config = Config::new(0x1209, 0x0001);
    config.manufacturer = Some("pawl");
    config.product = Some("pawl Tezos signer (Pico 2)");
    config.serial_number = core::str::from_utf8(serial).ok();
    config.max_power = 100;
    config.max_packet_size_0 = 64;

    static CONFIG_DESCRIPTOR: StaticCell<[u8; 256]> = StaticCell::new();
    static BOS_DESCRIPTOR: StaticCell<[u8; 256]> = StaticCell::new();
    static CONTROL_BUF: StaticCell<[u8; 64]> = StaticCell::new();
    static STATE: StaticCell<State<'static>> = StaticCell::new();

    let mut builder = Builder::new(
        driver,
        config,
        CONFIG_DESCRIPTOR.init([0; 256]),
        BOS_DESCRIPTOR.init([0; 256]),
        &mut [],
        CONTROL_BUF.init([0; 64]),
    );
    let class = CdcAcmClass::new(&mut builder, STATE.init(State::new()), MAX_PACKET as u16);
    let (sender, receiver) = class.split();
    let mut device = builder.build();
    join3(device.run(), receive(receiver), transmit(sender)).await;
}

/// Host → board: packets into [`RX`].
async fn receive(mut rx: Receiver<'static, UsbDriver>) {
    let mut packet = [0u8; MAX_PACKET];
    loop {
        rx.wait_connection().await;
        // An error means the endpoint went away (unplugged, reset): wait for it again.
        while let Ok(n) = rx.read_packet(&mut packet).await {
            RX.write_all(&packet[..n]).await;
        }
    }
}

/// Board → host: [`TX`] out in packets, with a zero-length packet after a full last one.
async fn transmit(mut tx: Sender<'static, UsbDriver>) {
    let mut packet = [0u8; MAX_PACKET];
    loop {
        tx.wait_connection().await;
        // Whatever was queued for a previous connection is stale.
        TX.clear();
        loop {
            let n = TX.read(&mut packet).await;
            if tx.write_packet(&packet[..n]).await.is_err() {
                break;
            }
            if n == MAX_PACKET && TX.is_empty() && tx.write_packet(&[]).await.is_err() {
                break;
            }
        }
    }
}

/// `value` as 16 lowercase hex digits.
fn hex16(value: u64) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (i, digit) in out.iter_mut().enumerate() {
        let nibble = (value >> (60 - 4 * i)) & 0xf;
        *digit = b"0123456789abcdef"[nibble as usize];
    }
    out
}
