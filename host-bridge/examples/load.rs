//! Load test: tz1 attestations with increasing levels through HTTP → bridge → pty →
//! `pawl-sim board --pty` (a separate process), against signing in process, in one run.
//!
//! ```text
//! cargo build --release -p pawl-hsm-sim
//! cargo run --release -p pawl-bridge --example load -- [clients] [seconds] [pipeline] [N]
//! ```
//!
//! `N` is passed to `pawl-sim board --ceiling-ahead` (default 16). `TMPDIR` chooses where the
//! board's state (its flash file) lives: on tmpfs the disk flushes cost nothing, which
//! separates the HTTP + pty path from the disk.
//!
//! Each client is one keep-alive HTTP/1.1 connection asking for attestations on its own chain,
//! one level after the other, the next request as soon as the last answer arrived. The
//! in-process run answers the same frames with `handle_frame` directly, calling the board's
//! idle-time work between requests as board glue does.

#[path = "../tests/support/mod.rs"]
#[allow(unused_imports)]
mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pawl_bridge::link::{Link, LinkSettings, SerialConnector};
use pawl_core::policy::Policy;
use pawl_core::protocol::{MAX_FRAME, Mode, Request, encode_frame};
use pawl_core::sim::VirtualBoard;
use support::*;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn report(name: &str, mut lat: Vec<Duration>, wall: Duration) {
    lat.sort();
    println!(
        "{name:<34} {:>8.0} sig/s  p50 {:>7.1} µs  p99 {:>7.1} µs  ({} signatures)",
        lat.len() as f64 / wall.as_secs_f64(),
        percentile(&lat, 0.5).as_secs_f64() * 1e6,
        percentile(&lat, 0.99).as_secs_f64() * 1e6,
        lat.len()
    );
}

fn in_process(seconds: u64, ahead: u32) {
    // The same frames the bridge would send, answered by the board directly.
    let dir2 = tempfile::tempdir().expect("tempdir");
    let mut board = VirtualBoard::open_with(dir2.path(), Mode::Provisioning, ahead).expect("board");
    let (curve, secret) = pawl_core::keys::SecretBytes::from_b58(SIGNATORY_SK).expect("sk");
    let mut scratch = vec![0u8; MAX_FRAME];
    let mut frame = vec![0u8; MAX_FRAME];
    let mut out = vec![0u8; MAX_FRAME];
    let n = encode_frame(
        1,
        &Request::ImportKey {
            curve,
            secret,
            policy: Policy::default(),
        },
        &mut scratch,
        &mut frame,
    )
    .expect("enc");
    board
        .handle_frame(&mut frame[..n - 1], &mut out)
        .expect("import");
    let pkh = pawl_core::keys::PublicKeyHash::from_b58(SIGNATORY_PKH).expect("pkh");
    let mut lat = Vec::new();
    let start = Instant::now();
    let mut level = 1;
    while start.elapsed() < Duration::from_secs(seconds) {
        let t = Instant::now();
        let payload = attestation([7, 7, 7, 7], level, 0, 1);
        let n = encode_frame(
            level,
            &Request::Sign {
                pkh,
                version: pawl_core::keys::SigningVersion::LATEST,
                payload: &payload,
            },
            &mut scratch,
            &mut frame,
        )
        .expect("enc");
        board
            .handle_frame(&mut frame[..n - 1], &mut out)
            .expect("sign");
        lat.push(t.elapsed());
        while board.idle().expect("idle") {}
        level += 1;
    }
    report("in process (board.handle_frame)", lat, start.elapsed());
}

fn request(stream: &mut BufReader<TcpStream>, pkh: &str, payload: &[u8]) -> (u16, String) {
    let body = format!("\"{}\"", to_hex(payload));
    let req = format!(
        "POST /keys/{pkh}?version=3 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.get_mut().write_all(req.as_bytes()).expect("write");
    let mut status = String::new();
    stream.read_line(&mut status).expect("status");
    let mut len = 0;
    loop {
        let mut h = String::new();
        stream.read_line(&mut h).expect("header");
        if h == "\r\n" {
            break;
        }
        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().expect("len");
        }
    }
    let mut b = vec![0; len];
    stream.read_exact(&mut b).expect("body");
    let code = status
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("code");
    (code, String::from_utf8_lossy(&b).to_string())
}

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("number"))
        .collect();
    let clients = args.first().copied().unwrap_or(4);
    let seconds = args.get(1).copied().unwrap_or(5);
    let pipeline = args.get(2).copied().unwrap_or(8) as usize;
    let ahead = args.get(3).copied().unwrap_or(16);
    in_process(seconds, u32::try_from(ahead).expect("N"));

    let dir = tempfile::tempdir().expect("tempdir");
    let sim = SimBoard::start(&dir.path().join("board"), ahead);
    let link = Link::start(
        Box::new(SerialConnector::new(&sim.pty, 115_200)),
        LinkSettings {
            pipeline,
            ..LinkSettings::default()
        },
    );
    let pkh = import(&link, SIGNATORY_SK, Policy::default());
    let server = Arc::new(Server::start(link, &[], settings()));
    let start = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|c| {
            let addr = server.addr;
            let pkh = pkh.clone();
            std::thread::spawn(move || {
                let mut s = BufReader::new(TcpStream::connect(addr).expect("connect"));
                s.get_ref().set_nodelay(true).ok();
                let mut lat = Vec::new();
                let mut level = 1;
                while start.elapsed() < Duration::from_secs(seconds) {
                    let payload = attestation([1, 1, 1, c as u8], level, 0, 1);
                    let t = Instant::now();
                    let (code, body) = request(&mut s, &pkh, &payload);
                    lat.push(t.elapsed());
                    assert_eq!(code, 200, "{body}");
                    level += 1;
                }
                lat
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in threads {
        all.extend(t.join().expect("client"));
    }
    report(
        &format!("HTTP+pty, {clients} clients, pipeline {pipeline}, N {ahead}"),
        all,
        start.elapsed(),
    );
    drop(sim);
}

/// `pawl-sim board --pty` as a child process (killed on drop).
struct SimBoard {
    child: Child,
    pty: PathBuf,
}

impl SimBoard {
    fn start(home: &Path, ceiling_ahead: u64) -> SimBoard {
        let exe = std::env::current_exe().expect("current exe");
        // target/release/examples/load → target/release/pawl-sim
        let sim = exe
            .parent()
            .and_then(Path::parent)
            .map(|d| d.join("pawl-sim"))
            .filter(|p| p.exists())
            .expect(
                "pawl-sim not found next to this example: cargo build --release -p pawl-hsm-sim",
            );
        let mut child = Command::new(sim)
            .args(["board", "--pty", "--home"])
            .arg(home)
            .arg("--ceiling-ahead")
            .arg(ceiling_ahead.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start pawl-sim");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("pty line");
        let pty = line
            .trim()
            .strip_prefix("pty: ")
            .unwrap_or_else(|| panic!("pawl-sim printed {line:?}"))
            .into();
        SimBoard { child, pty }
    }
}

impl Drop for SimBoard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
