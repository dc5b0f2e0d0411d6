//! Byte transports to a board: a serial port, the `pawl serve` control socket, and the
//! in-process virtual board. The link speaks frames over any of them.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pawl_core::protocol::{Fed, FrameAccumulator, MAX_FRAME};
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

/// The control socket of a running `pawl serve`, which relays frames to the board it owns.
pub struct ControlConnector {
    path: PathBuf,
}

impl ControlConnector {
    /// Connect to the control socket at `path`.
    pub fn new(path: &Path) -> Self {
        ControlConnector {
            path: path.to_path_buf(),
        }
    }
}

struct ControlPort(UnixStream);

impl Connector for ControlConnector {
    fn connect(&mut self) -> io::Result<Box<dyn Port>> {
        Ok(Box::new(ControlPort(UnixStream::connect(&self.path)?)))
    }

    fn describe(&self) -> String {
        format!("pawl serve control socket {}", self.path.display())
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
/// It answers synchronously on the link's own thread.
pub struct VirtualConnector {
    board: Arc<Mutex<VirtualBoard>>,
}

impl VirtualConnector {
    /// Serve `board` in process.
    pub fn new(board: VirtualBoard) -> Self {
        VirtualConnector {
            board: Arc::new(Mutex::new(board)),
        }
    }
}

struct VirtualPort {
    board: Arc<Mutex<VirtualBoard>>,
    frames: Box<FrameAccumulator<MAX_FRAME>>,
    answer: Vec<u8>,
    outbound: Vec<u8>,
    read: usize,
}

impl Connector for VirtualConnector {
    fn connect(&mut self) -> io::Result<Box<dyn Port>> {
        Ok(Box::new(VirtualPort {
            board: Arc::clone(&self.board),
            frames: Box::new(FrameAccumulator::new()),
            answer: vec![0; MAX_FRAME],
            outbound: Vec::new(),
            read: 0,
        }))
    }

    fn describe(&self) -> String {
        let dir = match self.board.lock() {
            Ok(b) => b.dir().display().to_string(),
            Err(_) => String::from("?"),
        };
        format!("in-process virtual board in {dir}")
    }
}

impl Port for VirtualPort {
    fn send(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        let mut board = self
            .board
            .lock()
            .map_err(|_| io::Error::other("virtual board poisoned by an earlier panic"))?;
        while !bytes.is_empty() {
            let (used, fed) = self.frames.feed(bytes);
            bytes = &bytes[used..];
            if let Fed::Frame(frame) = fed {
                let n = board
                    .handle_frame(frame, &mut self.answer)
                    .map_err(|e| io::Error::other(format!("virtual board: {e}")))?;
                self.outbound.extend_from_slice(&self.answer[..n]);
            }
        }
        Ok(())
    }

    fn recv(&mut self, buf: &mut [u8], _timeout: Duration) -> io::Result<usize> {
        let left = &self.outbound[self.read..];
        if left.is_empty() {
            // The board answers every frame at once; silence means there is nothing to come.
            return Err(timed_out());
        }
        let n = left.len().min(buf.len());
        buf[..n].copy_from_slice(&left[..n]);
        self.read += n;
        if self.read == self.outbound.len() {
            self.outbound.clear();
            self.read = 0;
        }
        Ok(n)
    }
}
