//! `pawl-sim qemu`: boot the real board firmware (`firmware/qemu`, mps2-an505) in QEMU with its
//! UART on a pty, and print the pty's path as `pawl-sim board --pty` does.
//!
//! The board's state lives in the `--home` directory, which is QEMU's working directory: the
//! firmware reaches `flash.bin`, `rollback-counter`, `board.key` and `button` through
//! semihosting. The mode is fixed at power-up on the semihosting command line, which the serial
//! link cannot reach. The rollback anchor's "OTP" file is `<home>.otp`, **beside** the
//! directory (`--otp` to put it elsewhere): restoring a copy of the directory, this board's
//! whole flash, leaves it as it was, as OTP would be (`firmware/qemu/src/otp.rs`). SIGTERM/SIGINT are forwarded to QEMU; this process exits when QEMU does.
//!
//! QEMU dies with this process: it is started with the kernel's parent-death signal set to
//! SIGKILL, so a launcher killed outright (SIGKILL, a crashed test runner that took it along)
//! cuts the board's power instead of leaving an orphan QEMU holding the state directory.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};

use crate::signals::Shutdown;

/// How long QEMU may take to announce its pty.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Options of `pawl-sim qemu`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Directory holding the board's state (flash.bin, rollback-counter, board.key, button);
    /// created (mode 0700) if missing. Default: `pawl-qemu` under the user's data directory.
    #[arg(long, value_name = "DIR")]
    home: Option<PathBuf>,
    /// Power up in operational mode (no key generation/import, no policy changes). Without it
    /// the board powers up in provisioning mode, as a real board with its button held.
    #[arg(long)]
    operational: bool,
    /// The firmware image. Default: `$PAWL_QEMU_ELF`, else the release build in
    /// `firmware/target` of this source tree.
    #[arg(long, value_name = "PATH")]
    elf: Option<PathBuf>,
    /// How long the board waits for the button (`<home>/button`) when a key's policy asks for
    /// confirmation, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 5000)]
    button_ms: u32,
    /// The QEMU binary.
    #[arg(long, value_name = "PATH", default_value = "qemu-system-arm")]
    qemu: PathBuf,
    /// The board's "OTP" epoch file (rollback anchor). Default: `<home>.otp`, beside the
    /// state directory. Must not be inside it.
    #[arg(long, value_name = "PATH")]
    otp: Option<PathBuf>,
}

/// Run the board until QEMU exits; a signal to this process stops QEMU.
pub fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let home = match args.home {
        Some(home) => home,
        None => default_home()?,
    };
    let elf = match args.elf {
        Some(elf) => elf,
        None => default_elf(),
    };
    if !elf.is_file() {
        return Err(format!(
            "no firmware image at {} (build it: cd firmware/qemu && cargo build --release)",
            elf.display()
        )
        .into());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&home)?;
    let elf = elf.canonicalize()?;
    let otp = match args.otp {
        Some(otp) => std::path::absolute(otp)?,
        None => otp_beside(&home.canonicalize()?),
    };
    let otp_arg = otp
        .to_str()
        .filter(|p| !p.contains([',', ' ']) && p.len() < 160)
        .ok_or_else(|| {
            format!(
                "the OTP file path {} must be UTF-8, under 160 bytes, without commas or spaces",
                otp.display()
            )
        })?
        .to_owned();
    let mode = if args.operational {
        "operational"
    } else {
        "provisioning"
    };
    let mut shutdown = Shutdown::install()?;
    let mut qemu = Command::new(&args.qemu);
    die_with_this_process(&mut qemu);
    let mut child = qemu
        .current_dir(&home)
        .args(["-machine", "mps2-an505", "-nographic", "-monitor", "none"])
        .args(["-serial", "pty", "-semihosting-config"])
        .arg(format!(
            "enable=on,target=native,arg=pawl-qemu,arg=mode={mode},arg=button-ms={},arg=otp={otp_arg}",
            args.button_ms
        ))
        .arg("-kernel")
        .arg(&elf)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", args.qemu.display()))?;

    let (tx, rx) = mpsc::channel();
    // QEMU announces the pty on stdout or stderr depending on its version and options.
    if let Some(err) = child.stderr.take() {
        forward(err, tx.clone());
    }
    if let Some(out) = child.stdout.take() {
        forward(out, tx);
    }
    let pty = wait_pty(&mut child, &rx)?;
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "pty: {pty}")?;
    stdout.flush()?;
    drop(stdout);
    eprintln!(
        "pawl-sim: QEMU board ({mode} mode, {}) with its state in {} on {pty}; CI board: keys \
         are in host files, NOT hardware-protected",
        elf.display(),
        home.display()
    );

    let status = supervise(&mut child, &mut shutdown)?;
    eprintln!("pawl-sim: QEMU exited: {status}");
    Ok(())
}

/// `<dir>.otp`: the "OTP" file beside the state directory `dir`.
pub fn otp_beside(dir: &Path) -> PathBuf {
    let dir: PathBuf = dir.components().collect();
    let mut name = dir.into_os_string();
    name.push(".otp");
    PathBuf::from(name)
}

/// Have the kernel SIGKILL `command`'s process when this one exits, however it exits.
#[allow(unsafe_code)]
fn die_with_this_process(command: &mut Command) {
    let launcher = rustix::process::getpid();
    // SAFETY: `pre_exec` runs the closure in the forked child before `exec`, where only
    // async-signal-safe work is sound (another thread of ours may have held a lock, e.g. the
    // allocator's, at the fork). The closure makes two raw system calls through rustix,
    // prctl(PR_SET_PDEATHSIG) and getppid, neither of which allocates, locks or touches shared
    // state, and it builds its error from an errno value (`io::Error::from_raw_os_error`, no
    // allocation). The getppid check closes the race where this process died between the fork
    // and the prctl: the child then belongs to another parent and refuses to start.
    unsafe {
        command.pre_exec(move || {
            rustix::process::set_parent_process_death_signal(Some(Signal::KILL))?;
            if rustix::process::getppid() != Some(launcher) {
                return Err(rustix::io::Errno::SRCH.into());
            }
            Ok(())
        });
    }
}

/// Copy QEMU's output lines to our stderr; hand the pty path to `pty` when it is announced.
fn forward(stream: impl Read + Send + 'static, pty: mpsc::Sender<String>) {
    thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if let Some(path) = line
                .strip_prefix("char device redirected to ")
                .and_then(|rest| rest.split_whitespace().next())
            {
                let _ = pty.send(path.to_owned());
            }
            eprintln!("{line}");
        }
    });
}

fn wait_pty(child: &mut Child, rx: &mpsc::Receiver<String>) -> Result<String, String> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(path) => return Ok(path),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = child.wait().map_err(|e| e.to_string())?;
                return Err(format!("QEMU exited ({status}) before announcing its pty"));
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("QEMU exited ({status}) before announcing its pty"));
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err("QEMU did not announce its pty within 30 s".into());
        }
    }
}

/// Wait for QEMU to exit, forwarding SIGTERM/SIGINT to it (and SIGKILL if it lingers).
fn supervise(child: &mut Child, shutdown: &mut Shutdown) -> io::Result<ExitStatus> {
    let mut stopping: Option<Instant> = None;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if stopping.is_none() && shutdown.requested() {
            let pid = i32::try_from(child.id()).ok().and_then(Pid::from_raw);
            if let Some(pid) = pid {
                // QEMU may have exited in between: then there is nothing to stop.
                let _ = kill_process(pid, Signal::TERM);
            }
            stopping = Some(Instant::now());
        }
        if stopping.is_some_and(|t| t.elapsed() > Duration::from_secs(5)) {
            child.kill()?;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// `$PAWL_QEMU_ELF`, else this source tree's release build of `firmware/qemu`.
fn default_elf() -> PathBuf {
    if let Some(elf) = std::env::var_os("PAWL_QEMU_ELF").filter(|p| !p.is_empty()) {
        return PathBuf::from(elf);
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../firmware/target/thumbv8m.main-none-eabihf/release/pawl-qemu")
}

/// `$XDG_DATA_HOME/pawl-qemu`, else `~/.local/share/pawl-qemu`.
fn default_home() -> Result<PathBuf, Box<dyn std::error::Error>> {
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("pawl-qemu"));
    }
    let home = std::env::var_os("HOME")
        .filter(|d| !d.is_empty())
        .ok_or("no --home given and $HOME is not set")?;
    Ok(PathBuf::from(home).join(".local/share/pawl-qemu"))
}
