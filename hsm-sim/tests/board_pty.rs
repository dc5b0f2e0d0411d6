//! `pawl-sim board --pty` as a separate process: frames over the pty, the host closing and
//! reopening the pty, garbage, and a clean stop on SIGTERM.

use std::io::{BufRead, BufReader};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pawl_core::protocol::{
    Envelope, FrameError, MAX_FRAME, Mode, PROTOCOL_VERSION, Refusal, Request, Response,
    decode_frame, encode_frame,
};
use rustix::event::{PollFd, PollFlags, poll};
use rustix::fs::OFlags;

struct Sim {
    child: Child,
    pty: PathBuf,
    home: PathBuf,
}

impl Sim {
    fn start(name: &str, extra: &[&str]) -> Sim {
        let home =
            std::env::temp_dir().join(format!("pawl-sim-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&home);
        let mut child = Command::new(env!("CARGO_BIN_EXE_pawl-sim"))
            .args(["board", "--pty", "--home"])
            .arg(&home)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn pawl-sim");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read pty line");
        let path = line
            .trim_end()
            .strip_prefix("pty: ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        Sim {
            child,
            pty: PathBuf::from(path),
            home,
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

fn open(path: &Path) -> OwnedFd {
    rustix::fs::open(
        path,
        OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .expect("open pty slave")
}

fn write_all(fd: &OwnedFd, mut data: &[u8]) {
    while !data.is_empty() {
        let n = rustix::io::write(fd, data).expect("write");
        data = &data[n..];
    }
}

/// Read one frame (up to and including its zero), with a timeout.
fn read_frame(fd: &OwnedFd) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut frame = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no response from the board within 5 s");
        let mut fds = [PollFd::new(fd, PollFlags::IN)];
        let ts = left.try_into().expect("timespec");
        poll(&mut fds, Some(&ts)).expect("poll");
        if !fds[0].revents().contains(PollFlags::IN) {
            continue;
        }
        let n = rustix::io::read(fd, &mut byte).expect("read");
        if n == 1 {
            frame.push(byte[0]);
            if byte[0] == 0 {
                return frame;
            }
        }
    }
}

fn ask(fd: &OwnedFd, id: u32, request: &Request<'_>) -> Envelope<Response> {
    let mut scratch = vec![0u8; MAX_FRAME];
    let mut out = vec![0u8; MAX_FRAME];
    let n = encode_frame(id, request, &mut scratch, &mut out).expect("encode");
    write_all(fd, &out[..n]);
    let mut frame = read_frame(fd);
    decode_frame::<Response>(&mut frame).expect("decode response")
}

fn hello(fd: &OwnedFd, id: u32) -> Mode {
    let reply = ask(
        fd,
        id,
        &Request::Hello {
            protocol: PROTOCOL_VERSION,
        },
    );
    assert_eq!(reply.id, id);
    match reply.message {
        Response::Info { protocol, mode, .. } => {
            assert_eq!(protocol, PROTOCOL_VERSION);
            mode
        }
        other => panic!("unexpected answer {other:?}"),
    }
}

#[test]
fn answers_frames_and_survives_reopen() {
    let sim = Sim::start("reopen", &[]);
    for round in 0..3u32 {
        let fd = open(&sim.pty);
        assert_eq!(hello(&fd, 100 + round), Mode::Provisioning);
        let status = ask(&fd, 7, &Request::Status);
        assert!(matches!(status.message, Response::Status(_)), "{status:?}");
        drop(fd); // the host closes the pty; the board must keep serving
    }
}

#[test]
fn operational_flag_sets_the_mode() {
    let sim = Sim::start("operational", &["--operational"]);
    let fd = open(&sim.pty);
    assert_eq!(hello(&fd, 1), Mode::Operational);
}

#[test]
fn garbage_is_refused_and_the_stream_resynchronises() {
    let sim = Sim::start("garbage", &[]);
    let fd = open(&sim.pty);
    write_all(&fd, &[0x05, 0x11, 0x22, 0x33, 0x44, 0x00]);
    let mut frame = read_frame(&fd);
    let reply = decode_frame::<Response>(&mut frame).expect("decode");
    assert_eq!(reply.id, 0);
    assert!(
        matches!(reply.message, Response::Refused(Refusal::Frame(_))),
        "{reply:?}"
    );
    assert_eq!(hello(&fd, 2), Mode::Provisioning);

    // A frame longer than the maximum is dropped and refused once.
    let long = vec![0x42u8; MAX_FRAME + 10];
    write_all(&fd, &long);
    write_all(&fd, &[0]);
    let mut frame = read_frame(&fd);
    let reply = decode_frame::<Response>(&mut frame).expect("decode");
    assert!(
        matches!(
            reply.message,
            Response::Refused(Refusal::Frame(FrameError::TooLong { .. }))
        ),
        "{reply:?}"
    );
    assert_eq!(hello(&fd, 3), Mode::Provisioning);
}

#[test]
fn half_a_frame_then_silence_does_not_poison_the_next_frame() {
    let sim = Sim::start("partial", &[]);
    let fd = open(&sim.pty);
    write_all(&fd, &[0x07, 0x01, 0x02]); // a host dies mid-frame
    drop(fd);
    std::thread::sleep(Duration::from_millis(800));
    let fd = open(&sim.pty);
    assert_eq!(hello(&fd, 9), Mode::Provisioning);
}

#[test]
fn home_is_locked_against_a_second_board() {
    let sim = Sim::start("locked", &[]);
    let out = Command::new(env!("CARGO_BIN_EXE_pawl-sim"))
        .args(["board", "--pty", "--home"])
        .arg(&sim.home)
        .stdin(Stdio::null())
        .output()
        .expect("run second pawl-sim");
    assert!(!out.status.success());
    assert!(
        out.stdout.is_empty(),
        "no pty line when the board cannot open"
    );
}

#[test]
fn sigterm_stops_cleanly() {
    let mut sim = Sim::start("sigterm", &[]);
    let fd = open(&sim.pty);
    assert_eq!(hello(&fd, 1), Mode::Provisioning);
    let status = Command::new("kill")
        .args(["-TERM", &sim.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(status) = sim.child.try_wait().expect("wait") {
            assert!(status.success(), "exit status {status:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "pawl-sim did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
