//! Sign latency of one `pawl serve` over each transport, measured in one run with the
//! transports interleaved (request i goes to HTTP, HTTPS, TCP socket, Unix socket in turn,
//! each at a new level), so they share the board, the host and its load.
//!
//! Driven by `host-bridge/benches/transports.sh`, which starts the server; alone:
//!
//! ```text
//! transport_bench --pkh tz1… --http 127.0.0.1:P --https 127.0.0.1:Q --ca ca.pem \
//!   --tcp 127.0.0.1:R --unix /path/signer.sock [--n 2000] [--reuse]
//! ```
//!
//! Without `--reuse` every request opens its own connection (what octez-client's socket
//! backend and Taquito do; for HTTPS that includes the TLS handshake); with it each transport
//! keeps one connection open (HTTP keep-alive).
#![allow(missing_docs, clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};

trait Stream: Read + Write {}
impl<T: Read + Write> Stream for T {}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Http,
    Https,
    Tcp,
    Unix,
}

struct Args {
    pkh: String,
    http: String,
    https: String,
    ca: String,
    tcp: String,
    unix: String,
    n: usize,
    reuse: bool,
    level: u32,
}

fn args() -> Args {
    let mut a = Args {
        pkh: String::new(),
        http: String::new(),
        https: String::new(),
        ca: String::new(),
        tcp: String::new(),
        unix: String::new(),
        n: 2000,
        reuse: false,
        level: 1000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--reuse" {
            a.reuse = true;
            continue;
        }
        let v = it.next().expect("flag value");
        match flag.as_str() {
            "--pkh" => a.pkh = v,
            "--http" => a.http = v,
            "--https" => a.https = v,
            "--ca" => a.ca = v,
            "--tcp" => a.tcp = v,
            "--unix" => a.unix = v,
            "--n" => a.n = v.parse().expect("n"),
            "--level" => a.level = v.parse().expect("level"),
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

/// An attestation (tag 21) on chain 5a11e2e2 at `level`, round 0.
fn attestation(level: u32) -> Vec<u8> {
    let mut b = vec![0x13, 0x5a, 0x11, 0xe2, 0xe2];
    b.extend_from_slice(&[0xbb; 32]);
    b.push(21);
    b.extend_from_slice(&0u16.to_be_bytes());
    b.extend_from_slice(&level.to_be_bytes());
    b.extend_from_slice(&0u32.to_be_bytes());
    b.extend_from_slice(&[0xcc; 32]);
    b
}

fn b58check_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    let mut num: Vec<u8> = Vec::new(); // big-endian bytes
    for c in text.bytes() {
        let mut carry = ALPHABET.iter().position(|&a| a == c).expect("base58") as u32;
        for byte in num.iter_mut().rev() {
            carry += u32::from(*byte) * 58;
            *byte = (carry & 0xff) as u8;
            carry >>= 8;
        }
        while carry > 0 {
            num.insert(0, (carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    let zeros = text.bytes().take_while(|&c| c == b'1').count();
    let mut out = vec![0u8; zeros];
    out.extend(num);
    out.truncate(out.len() - 4); // checksum (the server checks what it is sent)
    out
}

struct Client {
    kind: Kind,
    target: String,
    tls: Option<Arc<rustls::ClientConfig>>,
    reuse: bool,
    conn: Option<Box<dyn Stream>>,
    pkh21: Vec<u8>,
    pkh: String,
}

impl Client {
    fn connect(&self) -> Box<dyn Stream> {
        match self.kind {
            Kind::Http | Kind::Tcp => {
                let s = TcpStream::connect(&self.target).expect("connect");
                s.set_nodelay(true).expect("nodelay");
                Box::new(s)
            }
            Kind::Https => {
                let s = TcpStream::connect(&self.target).expect("connect");
                s.set_nodelay(true).expect("nodelay");
                let conn = rustls::ClientConnection::new(
                    Arc::clone(self.tls.as_ref().expect("tls")),
                    ServerName::try_from("127.0.0.1").expect("name"),
                )
                .expect("tls");
                Box::new(rustls::StreamOwned::new(conn, s))
            }
            Kind::Unix => Box::new(UnixStream::connect(&self.target).expect("connect")),
        }
    }

    /// One sign; the latency, after checking the answer is a signature.
    fn sign(&mut self, payload: &[u8]) -> Duration {
        let started = Instant::now();
        if self.conn.is_none() || !self.reuse {
            self.conn = Some(self.connect());
        }
        let conn = self.conn.as_mut().expect("conn");
        match self.kind {
            Kind::Http | Kind::Https => {
                let body = format!("\"{}\"", hex::encode(payload));
                let close = if self.reuse { "keep-alive" } else { "close" };
                let request = format!(
                    "POST /keys/{} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: {close}\r\n\r\n{body}",
                    self.pkh,
                    body.len()
                );
                conn.write_all(request.as_bytes()).expect("write");
                let (status, body) = read_http(conn);
                assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
                assert!(body.starts_with(b"{\"signature\":\"edsig"));
            }
            Kind::Tcp | Kind::Unix => {
                let mut body = vec![0u8];
                body.extend_from_slice(&self.pkh21);
                body.extend_from_slice(&u32::try_from(payload.len()).expect("len").to_be_bytes());
                body.extend_from_slice(payload);
                let mut frame = u16::try_from(body.len())
                    .expect("len")
                    .to_be_bytes()
                    .to_vec();
                frame.extend_from_slice(&body);
                conn.write_all(&frame).expect("write");
                let mut len = [0u8; 2];
                conn.read_exact(&mut len).expect("answer");
                let mut answer = vec![0u8; u16::from_be_bytes(len) as usize];
                conn.read_exact(&mut answer).expect("answer");
                assert_eq!(
                    (answer[0], answer.len()),
                    (0, 65),
                    "{}",
                    hex::encode(&answer)
                );
            }
        }
        let took = started.elapsed();
        if !self.reuse {
            self.conn = None;
        }
        took
    }
}

/// One HTTP/1.1 answer, read in chunks (never a read per byte: that would cost the plain
/// connection a system call per header byte and make it look slower than TLS, whose reads
/// come from a decrypted buffer).
fn read_http(conn: &mut Box<dyn Stream>) -> (u16, Vec<u8>) {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let status = head
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .expect("status");
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .expect("content-length");
            if buf.len() >= end + 4 + len {
                return (status, buf[end + 4..end + 4 + len].to_vec());
            }
        }
        let n = conn.read(&mut chunk).expect("read");
        assert!(n > 0, "connection closed mid-answer");
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn main() {
    let a = args();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(&a.ca).expect("ca") {
        roots.add(c.expect("ca")).expect("root");
    }
    let tls = Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );
    let raw = b58check_decode(&a.pkh);
    let mut pkh21 = vec![0u8]; // tz1
    pkh21.extend_from_slice(&raw[3..23]);
    let mut clients: Vec<Client> = [
        (Kind::Http, a.http.clone()),
        (Kind::Https, a.https.clone()),
        (Kind::Tcp, a.tcp.clone()),
        (Kind::Unix, a.unix.clone()),
    ]
    .into_iter()
    .map(|(kind, target)| Client {
        kind,
        target,
        tls: (kind == Kind::Https).then(|| Arc::clone(&tls)),
        reuse: a.reuse,
        conn: None,
        pkh21: pkh21.clone(),
        pkh: a.pkh.clone(),
    })
    .collect();
    let mut level = a.level;
    // Warm-up: a few signs each (connections, the board's first ceilings).
    for c in clients.iter_mut() {
        for _ in 0..20 {
            c.sign(&attestation(level));
            level += 1;
        }
    }
    let mut times: Vec<Vec<Duration>> = vec![Vec::with_capacity(a.n); clients.len()];
    for i in 0..a.n {
        // Rotate who goes first so no transport always follows another.
        for k in 0..clients.len() {
            let j = (i + k) % clients.len();
            times[j].push(clients[j].sign(&attestation(level)));
            level += 1;
        }
    }
    let http_p50 = {
        let mut t = times[0].clone();
        t.sort();
        percentile(&t, 0.5)
    };
    println!(
        "connections: {}; {} signs per transport, interleaved; next level {level}",
        if a.reuse {
            "one kept per transport"
        } else {
            "a new one per request"
        },
        a.n
    );
    println!("| transport | p50 µs | p99 µs | mean µs | p50 ÷ HTTP p50 |");
    println!("|---|---|---|---|---|");
    for (c, t) in clients.iter().zip(times.iter_mut()) {
        t.sort();
        let mean = t.iter().sum::<Duration>() / u32::try_from(t.len()).expect("n");
        let p50 = percentile(t, 0.5);
        println!(
            "| {:?} | {} | {} | {} | {:.2} |",
            c.kind,
            p50.as_micros(),
            percentile(t, 0.99).as_micros(),
            mean.as_micros(),
            p50.as_secs_f64() / http_p50.as_secs_f64()
        );
    }
}
