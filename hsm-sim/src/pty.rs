//! A pseudo-terminal in raw mode whose master side the simulator serves.
//!
//! The simulator keeps its own descriptor on the slave side open for its whole life. Without
//! it, Linux reports `EIO` on the master as soon as the last client closes the slave (and
//! `POLLHUP` forever after, until someone reopens it); with it, the master stays readable and a
//! client may close and reopen the slave path any number of times.

use std::ffi::OsString;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, poll};
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
use rustix::termios::{OptionalActions, QueueSelector, tcflush, tcgetattr, tcsetattr};

/// An open pty pair.
pub struct Pty {
    master: OwnedFd,
    slave: OwnedFd,
    path: PathBuf,
}

impl Pty {
    /// Open a new pty, put its line discipline in raw mode (no echo, no line editing, no
    /// signals, 8-bit clean) and return it with the slave's path.
    pub fn open() -> io::Result<Self> {
        let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)?;
        grantpt(&master)?;
        unlockpt(&master)?;
        let name = ptsname(&master, Vec::new())?;
        let path = PathBuf::from(OsString::from_vec(name.into_bytes()));
        let slave = rustix::fs::open(
            &path,
            OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let mut termios = tcgetattr(&slave)?;
        termios.make_raw();
        tcsetattr(&slave, OptionalActions::Now, &termios)?;
        rustix::fs::fcntl_setfl(&master, OFlags::NONBLOCK)?;
        Ok(Pty {
            master,
            slave,
            path,
        })
    }

    /// The slave's path (`/dev/pts/N`), for the bridge to open.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Read what the host sent. `Ok(0)` means nothing is available right now.
    pub fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match rustix::io::read(&self.master, buf) {
            Ok(n) => Ok(n),
            // No slave open (cannot happen while we hold ours, but be safe): nothing to read.
            Err(Errno::AGAIN) | Err(Errno::INTR) | Err(Errno::IO) => Ok(0),
            Err(e) => Err(e.into()),
        }
    }

    /// Write a whole response, waiting at most `timeout` for room. Returns `false` when the
    /// host did not take it in time (nobody reading): the stale bytes are then flushed from the
    /// slave's input queue, so a client that opens the pty later does not read them.
    pub fn write_all(&self, mut data: &[u8], timeout: Duration) -> io::Result<bool> {
        let deadline = Instant::now() + timeout;
        while !data.is_empty() {
            match rustix::io::write(&self.master, data) {
                Ok(n) => data = &data[n..],
                Err(Errno::AGAIN) | Err(Errno::INTR) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        self.discard_pending()?;
                        return Ok(false);
                    }
                    let mut fds = [PollFd::new(&self.master, PollFlags::OUT)];
                    let ts = left
                        .min(Duration::from_millis(50))
                        .try_into()
                        .unwrap_or_default();
                    match poll(&mut fds, Some(&ts)) {
                        Ok(_) | Err(Errno::INTR) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(true)
    }

    /// Drop whatever the simulator wrote that no client has read yet.
    pub fn discard_pending(&self) -> io::Result<()> {
        tcflush(&self.slave, QueueSelector::IFlush)?;
        Ok(())
    }
}

impl AsFd for Pty {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.master.as_fd()
    }
}
