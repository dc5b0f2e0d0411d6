//! `pawl-sim board --pty`: the virtual board served over a pseudo-terminal.
//!
//! Reads bytes from the pty, cuts them into frames with the core's [`FrameAccumulator`], hands
//! each frame to [`VirtualBoard::handle_frame`] and writes the response frame back — the same
//! loop the firmware runs over its UART.

use std::io::{self, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use pawl_core::protocol::{
    Fed, FrameAccumulator, FrameError, MAX_FRAME, Mode, Refusal, Response, encode_frame,
};
use pawl_core::sim::VirtualBoard;
use pawl_core::store::NorStoreConfig;
use rustix::event::{PollFd, PollFlags, poll};
use rustix::io::Errno;

use crate::pty::Pty;
use crate::signals::Shutdown;

/// A frame whose bytes stop arriving for this long is dropped, so that a host that died
/// mid-frame does not corrupt the first frame of the next one.
const FRAME_IDLE: Duration = Duration::from_millis(500);
/// How long a response may wait for the host to read it before it is discarded.
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// Options of `pawl-sim board`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Serve the board over a new pseudo-terminal; prints `pty: /dev/pts/N` on stdout.
    #[arg(long)]
    pty: bool,
    /// Directory holding the board's state (keys, policies, watermarks).
    /// Default: `pawl-sim` under the user's data directory (`$XDG_DATA_HOME` or
    /// `~/.local/share`).
    #[arg(long, value_name = "DIR")]
    home: Option<PathBuf>,
    /// Start in operational mode (no key generation/import, no policy changes). Without it the
    /// board starts in provisioning mode, as a real board powered up with its button held.
    #[arg(long)]
    operational: bool,
    /// Levels reserved ahead of a signature in flash (the store's ceiling, N). More means
    /// fewer flash writes and, after an unclean stop, more levels refused. 0: exact marks.
    #[arg(long, value_name = "N", default_value_t = NorStoreConfig::DEFAULT_CEILING_AHEAD)]
    ceiling_ahead: u32,
    /// Take at least this long over every frame, in microseconds, as a real board's CPU does
    /// (an Ed25519 attestation is ~17–25 ms on an RP2350): for benchmarks of several boards,
    /// where the simulated board would otherwise be far faster than hardware. 0: as fast as
    /// this machine.
    #[arg(long, value_name = "MICROSECONDS", default_value_t = 0)]
    frame_time_us: u64,
}

/// Run the board until SIGTERM or SIGINT.
pub fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    if !args.pty {
        return Err("choose a transport: only `--pty` exists for now".into());
    }
    let home = match args.home {
        Some(home) => home,
        None => default_home()?,
    };
    let mode = if args.operational {
        Mode::Operational
    } else {
        Mode::Provisioning
    };
    let mut shutdown = Shutdown::install()?;
    let mut board = VirtualBoard::open_with(&home, mode, args.ceiling_ahead)
        .map_err(|e| format!("cannot open the virtual board in {}: {e}", home.display()))?;
    let pty = Pty::open()?;

    let mut stdout = io::stdout().lock();
    writeln!(stdout, "pty: {}", pty.path().display())?;
    stdout.flush()?;
    drop(stdout);
    eprintln!(
        "pawl-sim: virtual board in {} ({mode:?} mode) on {}; keys are on the host's disk, \
         NOT hardware-protected",
        board.dir().display(),
        pty.path().display()
    );

    let frames = serve(
        &mut board,
        &pty,
        &mut shutdown,
        Duration::from_micros(args.frame_time_us),
    )?;
    eprintln!("pawl-sim: stopped after {frames} frames");
    Ok(())
}

/// The serve loop; returns the number of frames answered.
fn serve(
    board: &mut VirtualBoard,
    pty: &Pty,
    shutdown: &mut Shutdown,
    frame_time: Duration,
) -> io::Result<u64> {
    let mut acc: Box<FrameAccumulator<MAX_FRAME>> = Box::default();
    let mut out = vec![0u8; MAX_FRAME];
    let mut scratch = vec![0u8; MAX_FRAME];
    let mut buf = vec![0u8; 8192];
    let mut frames: u64 = 0;
    // When the last byte of an unfinished frame arrived.
    let mut partial_since: Option<Instant> = None;

    // Whether the board may have idle-time work (ceiling reservations) to do.
    let mut idle_work = false;

    loop {
        let wait = if idle_work && partial_since.is_none() {
            Some(Duration::ZERO)
        } else {
            partial_since.map(|t| FRAME_IDLE.saturating_sub(t.elapsed()))
        };
        let timeout = wait.map(|d| d.try_into().unwrap_or_default());
        let (sig, ready, hup) = {
            let mut fds = [
                PollFd::new(shutdown, PollFlags::IN),
                PollFd::new(pty, PollFlags::IN),
            ];
            match poll(&mut fds, timeout.as_ref()) {
                Ok(_) | Err(Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
            let pty_events = fds[1].revents();
            (
                fds[0].revents().contains(PollFlags::IN),
                pty_events.contains(PollFlags::IN),
                pty_events.intersects(PollFlags::HUP | PollFlags::ERR),
            )
        };
        if sig && shutdown.requested() {
            return Ok(frames);
        }
        if ready {
            let n = pty.read(&mut buf)?;
            let mut rest = &buf[..n];
            while !rest.is_empty() {
                let (used, fed) = acc.feed(rest);
                rest = &rest[used..];
                let reply = match fed {
                    Fed::Incomplete => None,
                    Fed::Frame(frame) => {
                        let started = Instant::now();
                        let reply = board.handle_frame(frame, &mut out);
                        // A slower board: wait out the rest of its frame time (not CPU).
                        std::thread::sleep(frame_time.saturating_sub(started.elapsed()));
                        Some(reply)
                    }
                    Fed::Dropped(e) => Some(refusal(e, &mut scratch, &mut out)),
                };
                match reply {
                    None => {}
                    Some(Ok(len)) => {
                        frames += 1;
                        idle_work = true;
                        if !pty.write_all(&out[..len], WRITE_TIMEOUT)? {
                            eprintln!("pawl-sim: nobody read a response; discarded it");
                        }
                    }
                    Some(Err(e)) => eprintln!("pawl-sim: cannot encode a response: {e}"),
                }
            }
            if n > 0 {
                partial_since = match buf[n - 1] {
                    0 => None,
                    _ => Some(Instant::now()),
                };
            }
        } else if idle_work && !sig && partial_since.is_none() {
            // Nothing waiting: one reservation write, then look at the port again.
            idle_work = match board.idle() {
                Ok(more) => more,
                Err(e) => {
                    eprintln!("pawl-sim: idle-time reservation failed: {e}");
                    false
                }
            };
        } else if hup {
            // Only without our own slave descriptor; wait for a client to come back.
            std::thread::sleep(Duration::from_millis(20));
        }
        if partial_since.is_some_and(|t| t.elapsed() >= FRAME_IDLE) {
            *acc = FrameAccumulator::new();
            partial_since = None;
            eprintln!("pawl-sim: dropped an unfinished frame (host went quiet mid-frame)");
        }
    }
}

/// The answer to a frame the accumulator had to drop (too long).
fn refusal(e: FrameError, scratch: &mut [u8], out: &mut [u8]) -> Result<usize, FrameError> {
    encode_frame(0, &Response::Refused(Refusal::Frame(e)), scratch, out)
}

/// `$XDG_DATA_HOME/pawl-sim`, else `~/.local/share/pawl-sim`.
fn default_home() -> Result<PathBuf, Box<dyn std::error::Error>> {
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("pawl-sim"));
    }
    let home = std::env::var_os("HOME")
        .filter(|d| !d.is_empty())
        .ok_or("no --home given and $HOME is not set")?;
    Ok(PathBuf::from(home).join(".local/share/pawl-sim"))
}
