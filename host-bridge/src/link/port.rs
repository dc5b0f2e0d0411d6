//! Byte transports to a board: a serial port, the `pawl serve` control socket, and the
//! in-process virtual board. The link speaks frames over any of them.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use pawl_core::protocol::{Fed, FrameAccumulator, MAX_FRAME, Mode};
use pawl_core::sim::VirtualBoard;

/// An open byte stream to a board.
pub trait Port: Send {
    /// Write all of `bytes`.
    fn send(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// Read what is there, waiting at most `timeout`. `Ok(0)` means the other end closed;
    /// [`io::ErrorKind::TimedOut`] means nothing came in time.
    fn recv(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize>;
}

/// Opens (and, after a failure, re-opens) the byte stream to a board.
pub trait Connector: Send + 'static {
    /// Open a fresh stream.
    fn connect(&mut self) -> io::Result<Box<dyn Port>>;
    /// What this connects to, for logs and `pawl device info`.
    fn describe(&self) -> String;
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "no answer from the board in time")
}

/// A board on a serial port (USB CDC-ACM, a UART adapter, or a pty).
pub struct SerialConnector {
    path: PathBuf,
    baud: u32,
}

impl SerialConnector {
    /// Connect to the serial device at `path`. The path is opened again on every reconnect,
    /// so a stable name (`/dev/serial/by-id/…`, or a symlink) follows a re-plugged board.
    pub fn new(path: &Path, baud: u32) -> Self {
        SerialConnector {
            path: path.to_path_buf(),
            baud,
        }
    }
}

struct SerialPort {
    port: serialport::TTYPort,
    timeout: Duration,
}

impl Connector for SerialConnector {
    fn connect(&mut self) -> io::Result<Box<dyn Port>> {
        let path = self.path.to_string_lossy();
        // serialport puts the line in raw mode, takes an exclusive lock (TIOCEXCL + flock: one
        // bridge per board) and flushes stale input.
        let port = serialport::new(path, self.baud)
            .timeout(Duration::from_millis(100))
            .open_native()
            .map_err(io::Error::from)?;
        Ok(Box::new(SerialPort {
            port,
            timeout: Duration::from_millis(100),
        }))
    }

    fn describe(&self) -> String {
        format!("serial {}", self.path.display())
    }
}

impl Port for SerialPort {
    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.port.write_all(bytes)?;
        self.port.flush()
    }

    fn recv(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        if timeout != self.timeout {
            serialport::SerialPort::set_timeout(&mut self.port, timeout)
                .map_err(io::Error::from)?;
            self.timeout = timeout;
        }
        self.port.read(buf)
    }
}

/// The control socket of a running `pawl serve`, which relays frames to one of the boards it
/// owns. Each connection starts by naming the board: its name and a zero byte (see
/// [`crate::control`]).
pub struct ControlConnector {
    path: PathBuf,
    board: String,
}

impl ControlConnector {
    /// Connect to the control socket at `path`, for the board named `board` (empty: the only
    /// board of that `pawl serve`).
    pub fn new(path: &Path, board: &str) -> Self {
        ControlConnector {
            path: path.to_path_buf(),
            board: board.to_string(),
        }
    }
}

struct ControlPort(UnixStream);

impl Connector for ControlConnector {
    fn connect(&mut self) -> io::Result<Box<dyn Port>> {
        let mut stream = UnixStream::connect(&self.path)?;
        let mut hello = self.board.as_bytes().to_vec();
        hello.push(0);
        stream.write_all(&hello)?;
        Ok(Box::new(ControlPort(stream)))
    }

    fn describe(&self) -> String {
        match self.board.as_str() {
            "" => format!("pawl serve control socket {}", self.path.display()),
            name => format!(
                "board `{name}' through the pawl serve control socket {}",
                self.path.display()
            ),
        }
    }
}

impl Port for ControlPort {
    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.0.write_all(bytes)
    }

    fn recv(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        self.0
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))))?;
        match self.0.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Err(timed_out()),
            other => other,
        }
    }
}

/// The in-process virtual board: the same core as the firmware, keys on the host's disk.
/// It runs on a dedicated thread (the board is not `Send`: it is opened on that thread and
/// never leaves it); the port passes bytes to it over channels.
pub struct VirtualConnector {
    to_board: mpsc::Sender<Vec<u8>>,
    from_board: Arc<Mutex<mpsc::Receiver<Vec<u8>>>>,
    dir: PathBuf,
}

impl VirtualConnector {
    /// Open the virtual board whose state lives in `dir` on its own thread. Fails as
    /// [`VirtualBoard::open`] does (for instance when another process holds the directory).
    pub fn open(dir: &Path, mode: Mode) -> io::Result<Self> {
        let (to_board, inbox) = mpsc::channel::<Vec<u8>>();
        let (outbox, from_board) = mpsc::channel::<Vec<u8>>();
        let (ready, opened) = mpsc::channel::<io::Result<()>>();
        let board_dir = dir.to_path_buf();
        std::thread::Builder::new()
            .name("pawl-virtual-board".into())
            .spawn(move || {
                let mut board = match VirtualBoard::open(&board_dir, mode) {
                    Ok(b) => {
                        let _ = ready.send(Ok(()));
                        b
                    }
                    Err(e) => {
                        let _ = ready.send(Err(e));
                        return;
                    }
                };
                let mut frames = Box::new(FrameAccumulator::<MAX_FRAME>::new());
                let mut out = vec![0u8; MAX_FRAME];
                // Whether the board may have idle-time work (ceiling reservations) to do.
                let mut idle_work = false;
                // Ends (and releases the board's lock) when every port and the connector are gone.
                loop {
                    let bytes = match inbox.try_recv() {
                        Ok(bytes) => bytes,
                        Err(mpsc::TryRecvError::Empty) if idle_work => {
                            // Nothing waiting: one reservation write, then look again.
                            idle_work = board.idle().unwrap_or_else(|e| {
                                tracing::warn!("virtual board idle-time reservation failed: {e}");
                                false
                            });
                            continue;
                        }
                        Err(mpsc::TryRecvError::Empty) => match inbox.recv() {
                            Ok(bytes) => bytes,
                            Err(_) => return,
                        },
                        Err(mpsc::TryRecvError::Disconnected) => return,
                    };
                    let mut input = &bytes[..];
                    let mut answers = Vec::new();
                    while !input.is_empty() {
                        let (used, fed) = frames.feed(input);
                        input = &input[used..];
                        if let Fed::Frame(frame) = fed {
                            idle_work = true;
                            match board.handle_frame(frame, &mut out) {
                                Ok(n) => answers.extend_from_slice(&out[..n]),
                                Err(e) => tracing::error!("virtual board could not answer: {e}"),
                            }
                        }
                    }
                    if !answers.is_empty() && outbox.send(answers).is_err() {
                        return;
                    }
                }
            })?;
        opened
            .recv()
            .map_err(|_| io::Error::other("the virtual board thread stopped"))??;
        Ok(VirtualConnector {
            to_board,
            from_board: Arc::new(Mutex::new(from_board)),
            dir: dir.to_path_buf(),
        })
    }
}

struct VirtualPort {
    to_board: mpsc::Sender<Vec<u8>>,
    from_board: Arc<Mutex<mpsc::Receiver<Vec<u8>>>>,
    pending: Vec<u8>,
    read: usize,
}

impl Connector for VirtualConnector {
    fn connect(&mut self) -> io::Result<Box<dyn Port>> {
        Ok(Box::new(VirtualPort {
            to_board: self.to_board.clone(),
            from_board: Arc::clone(&self.from_board),
            pending: Vec::new(),
            read: 0,
        }))
    }

    fn describe(&self) -> String {
        format!("in-process virtual board in {}", self.dir.display())
    }
}

impl Port for VirtualPort {
    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.to_board
            .send(bytes.to_vec())
            .map_err(|_| io::Error::other("the virtual board thread stopped"))
    }

    fn recv(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        if self.read == self.pending.len() {
            let from_board = self
                .from_board
                .lock()
                .map_err(|_| io::Error::other("virtual board channel poisoned"))?;
            match from_board.recv_timeout(timeout) {
                Ok(bytes) => {
                    self.pending = bytes;
                    self.read = 0;
                }
                Err(mpsc::RecvTimeoutError::Timeout) => return Err(timed_out()),
                Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(0),
            }
        }
        let left = &self.pending[self.read..];
        let n = left.len().min(buf.len());
        buf[..n].copy_from_slice(&left[..n]);
        self.read += n;
        Ok(n)
    }
}
