//! A virtual board served over a real pty, inside the test process, reached by the bridge
//! through a symlink (as a udev `/dev/serial/by-id/…` name follows a re-plugged board).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use pawl_core::protocol::{Fed, FrameAccumulator, MAX_FRAME, Mode, Request, decode_frame};
use pawl_core::sim::VirtualBoard;
use serialport::{SerialPort, TTYPort};

/// Shared counters and switches.
#[derive(Default)]
pub struct Control {
    /// Sign requests the board has handled.
    pub signs: AtomicUsize,
    /// When non-zero: after handling this many signs in total, swallow the answer to the
    /// last one, unplug (close the pty), wait, and come back on a new pty.
    pub unplug_after_sign: AtomicUsize,
    /// Times the board came back on a new pty.
    pub replugs: AtomicUsize,
    stop: AtomicBool,
}

pub struct PtyBoard {
    pub link_path: PathBuf,
    pub control: Arc<Control>,
    thread: Option<JoinHandle<()>>,
}

fn new_pty(link_path: &Path) -> TTYPort {
    let (mut master, slave) = TTYPort::pair().expect("openpty");
    let name = slave.name().expect("pty name");
    drop(slave);
    master
        .set_timeout(Duration::from_millis(20))
        .expect("timeout");
    let tmp = link_path.with_extension("new");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&name, &tmp).expect("symlink");
    std::fs::rename(&tmp, link_path).expect("rename symlink");
    master
}

impl PtyBoard {
    /// Serve the virtual board in `dir` on a pty whose slave is reachable at `link_path`.
    /// The board is opened on the serving thread (it is not `Send`).
    pub fn start(dir: &Path, mode: Mode, link_path: &Path) -> PtyBoard {
        let control = Arc::new(Control::default());
        let dir = dir.to_path_buf();
        let ctl = Arc::clone(&control);
        let path = link_path.to_path_buf();
        let mut master = new_pty(&path);
        let thread = std::thread::spawn(move || {
            let mut board = VirtualBoard::open(&dir, mode).expect("virtual board");
            let mut frames = Box::new(FrameAccumulator::<MAX_FRAME>::new());
            let mut out = vec![0u8; MAX_FRAME];
            let mut buf = [0u8; 4096];
            while !ctl.stop.load(Ordering::Relaxed) {
                let n = match master.read(&mut buf) {
                    Ok(n) => n,
                    Err(_) => {
                        // Timeout, or no slave open yet (EIO/HUP): wait a little.
                        std::thread::sleep(Duration::from_millis(1));
                        continue;
                    }
                };
                let mut input = &buf[..n];
                let mut answers = Vec::new();
                let mut unplug = false;
                while !input.is_empty() {
                    let (used, fed) = frames.feed(input);
                    input = &input[used..];
                    let Fed::Frame(frame) = fed else { continue };
                    let is_sign = {
                        let mut copy = frame.to_vec();
                        matches!(
                            decode_frame::<Request<'_>>(&mut copy),
                            Ok(e) if matches!(e.message, Request::Sign { .. })
                        )
                    };
                    let len = board.handle_frame(frame, &mut out).expect("answer");
                    if is_sign {
                        let count = ctl.signs.fetch_add(1, Ordering::SeqCst) + 1;
                        if count == ctl.unplug_after_sign.load(Ordering::SeqCst) {
                            unplug = true;
                            break; // the board signed; its answer is lost with the cable
                        }
                    }
                    answers.extend_from_slice(&out[..len]);
                }
                if !answers.is_empty() {
                    let _ = master.write_all(&answers);
                }
                if unplug {
                    *frames = FrameAccumulator::new();
                    let gone =
                        std::mem::replace(&mut master, new_pty(&path.with_extension("unused")));
                    drop(gone);
                    let _ = std::fs::remove_file(&path);
                    std::thread::sleep(Duration::from_millis(300));
                    master = new_pty(&path);
                    ctl.replugs.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
        PtyBoard {
            link_path: link_path.to_path_buf(),
            control,
            thread: Some(thread),
        }
    }
}

impl Drop for PtyBoard {
    fn drop(&mut self) {
        self.control.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
