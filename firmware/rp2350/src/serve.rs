//! The frame loop: bytes from the host are cut into frames by the core's
//! [`FrameAccumulator`], each frame is answered by [`Board::handle_frame`] — which makes a
//! watermark durable in flash before it returns a signature — and the answer is queued for
//! the host. The same loop the virtual board runs over its pty (`hsm-sim/src/board.rs`).

use embassy_time::{Duration, with_timeout};
use pawl_core::board::Board;
use pawl_core::protocol::{
    Fed, FrameAccumulator, FrameError, MAX_FRAME, Mode, Refusal, Request, Response, StoreHealth,
    encode_frame,
};
use static_cell::StaticCell;

use crate::button::Bootsel;
use crate::entropy::TrngEntropy;
use crate::led::Led;
use crate::link::{RX, TX};
use crate::storage::BudgetedStore;

/// The board as this firmware runs it.
pub type FirmwareBoard = Board<BudgetedStore, TrngEntropy, Bootsel>;

/// A frame whose bytes stop arriving for this long is dropped, so a host that died mid-frame
/// does not corrupt the first frame of the next one.
const FRAME_IDLE: Duration = Duration::from_millis(500);
/// How long an answer may wait for the host to read it before it is discarded.
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);

struct Buffers {
    frames: FrameAccumulator<MAX_FRAME>,
    out: [u8; MAX_FRAME],
    scratch: [u8; MAX_FRAME],
}

static BUFFERS: StaticCell<Buffers> = StaticCell::new();

/// Serve frames forever.
#[embassy_executor::task]
pub async fn run(board: &'static mut FirmwareBoard) {
    let buffers = BUFFERS.init_with(|| Buffers {
        frames: FrameAccumulator::new(),
        out: [0; MAX_FRAME],
        scratch: [0; MAX_FRAME],
    });
    let Buffers {
        frames,
        out,
        scratch,
    } = buffers;
    show_idle(board);
    let mut chunk = [0u8; 256];
    let mut partial = false;
    loop {
        let n = if partial {
            match with_timeout(FRAME_IDLE, RX.read(&mut chunk)).await {
                Ok(n) => n,
                Err(_) => {
                    *frames = FrameAccumulator::new();
                    partial = false;
                    continue;
                }
            }
        } else {
            // Nothing half-received: while no byte waits, raise watermark reservations ahead
            // of the signatures that would otherwise wait for flash (one write per call).
            while RX.is_empty() && matches!(board.idle(), Ok(true)) {}
            RX.read(&mut chunk).await
        };
        let mut rest = &chunk[..n];
        while !rest.is_empty() {
            let (used, fed) = frames.feed(rest);
            rest = &rest[used..];
            let answer = match fed {
                Fed::Incomplete => None,
                Fed::Frame(frame) => {
                    Led::Busy.show();
                    Some(board.handle_frame(frame, out))
                }
                Fed::Dropped(e) => Some(refusal(e, scratch, out)),
            };
            // An answer that cannot be encoded is dropped; the host times out and asks the
            // board again (a signature, once made, is returned again for the same request).
            if let Some(Ok(len)) = answer {
                send(&out[..len]).await;
            }
            show_idle(board);
        }
        partial = n > 0 && chunk[n - 1] != 0;
    }
}

/// Queue `bytes` for the host; give up (and drop what is queued) if nobody reads them.
async fn send(bytes: &[u8]) {
    if with_timeout(WRITE_TIMEOUT, TX.write_all(bytes))
        .await
        .is_err()
    {
        TX.clear();
    }
}

/// The answer to a frame the accumulator had to drop (too long).
fn refusal(e: FrameError, scratch: &mut [u8], out: &mut [u8]) -> Result<usize, FrameError> {
    encode_frame(0, &Response::Refused(Refusal::Frame(e)), scratch, out)
}

/// Idle LED: the mode, or "refusing" when the store is not trusted (or missing).
fn show_idle(board: &mut FirmwareBoard) {
    let led = match board.handle(Request::Status) {
        Response::Status(status) if status.store == StoreHealth::Ok => match status.mode {
            Mode::Operational => Led::Operational,
            Mode::Provisioning => Led::Provisioning,
        },
        _ => Led::Refusing,
    };
    led.show();
}
