//! SIGTERM / SIGINT as a readable file descriptor, so the serve loop can `poll` for them next to
//! the pty and stop between frames.

use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;

use signal_hook::consts::{SIGINT, SIGTERM};

/// The read end of a self-pipe written by the SIGTERM and SIGINT handlers.
pub struct Shutdown {
    read: UnixStream,
}

impl Shutdown {
    /// Install the handlers.
    pub fn install() -> io::Result<Self> {
        let (read, write) = UnixStream::pair()?;
        read.set_nonblocking(true)?;
        write.set_nonblocking(true)?;
        signal_hook::low_level::pipe::register(SIGTERM, write.try_clone()?)?;
        signal_hook::low_level::pipe::register(SIGINT, write)?;
        Ok(Shutdown { read })
    }

    /// Whether a signal arrived (drains the pipe).
    pub fn requested(&mut self) -> bool {
        let mut buf = [0u8; 16];
        match self.read.read(&mut buf) {
            Ok(n) => n > 0,
            Err(_) => false,
        }
    }
}

impl AsFd for Shutdown {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.read.as_fd()
    }
}

/// For the HTTP simulators: stop `handle`'s server gracefully (200 ms for requests in flight) on
/// SIGTERM or SIGINT.
pub fn stop_on_term<A: axum_server::Address + Send + Sync + 'static>(
    handle: axum_server::Handle<A>,
) {
    tokio::spawn(async move {
        let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
        if let Ok(mut term) = term {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        handle.graceful_shutdown(Some(std::time::Duration::from_millis(200)));
    });
}

/// For the HTTP simulators: run `serve` on a two-worker runtime until it returns, stopping with
/// the parent process (a test runner that died) as the pty simulator does with its fd.
pub fn run_http_simulator(
    serve: impl std::future::Future<Output = Result<(), String>>,
) -> Result<(), String> {
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::TERM))
        .map_err(|e| format!("prctl: {e}"))?;
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?
        .block_on(serve)
}
