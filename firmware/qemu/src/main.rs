//! The QEMU board image: open the board on the state directory, serve UART0. See the crate doc
//! in `src/lib.rs`.

#![no_std]
#![no_main]

use cortex_m_rt::entry;
use pawl_core::protocol::{Request, Response};
use pawl_qemu::{fail, init_heap, log, open_board, serve, uart::Uart};

#[entry]
fn main() -> ! {
    init_heap();
    let Some(mut cp) = cortex_m::Peripherals::take() else {
        fail("core peripherals taken twice");
    };
    let (mut board, setup) = open_board();
    let mut uart = Uart::take();
    if let Response::Status(s) = board.handle(Request::Status) {
        log!(
            "board up: {:?} mode, button window {} ms, {} key(s), {} mark(s), store {:?}",
            setup.mode,
            u64::from(setup.button_cs) * 10,
            s.keys,
            s.marks,
            s.store
        );
    }
    serve(&mut board, &mut uart, &mut cp.SYST)
}
