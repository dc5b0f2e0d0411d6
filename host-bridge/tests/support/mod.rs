//! Test support: a virtual board, the HTTP app on 127.0.0.1:0, a tiny HTTP client, and
//! independent verifiers (openssl, secp256k1, bs58, blake2 — never pawl-core).
#![allow(dead_code)]

pub mod pty;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use blake2::Digest;
use pawl_bridge::auth::Authorizer;
use pawl_bridge::http::{AppState, HttpSettings, app};
use pawl_bridge::link::{Connector, Link, LinkSettings, VirtualConnector};
use pawl_bridge::metrics::Metrics;
use pawl_core::keys::{PublicKey, SecretBytes};
use pawl_core::policy::Policy;
use pawl_core::protocol::{Mode, Request, Response};

/// `ecadlabs/signatory: pkg/signatory/signatory_test.go` key (docs/protocol.md §8.4).
pub const SIGNATORY_SK: &str = "edsk4FTF78Qf1m2rykGpHqostAiq5gYW4YZEoGUSWBTJr2njsDHSnd";
pub const SIGNATORY_PK: &str = "edpkv45regue1bWtuHnCgLU8xWKLwa9qRqv4gimgJKro4LSc3C5VjV";
pub const SIGNATORY_PKH: &str = "tz1LggX2HUdvJ1tF4Fvv8fjsrzLeW4Jr9t2Q";
/// pytezos test key (docs/protocol.md §8.4), used as the authorized client key.
pub const PYTEZOS_SK: &str = "edsk3nM41ygNfSxVU4w1uAW3G9EnTQEB5rjojeZedLTGmiGRcierVv";
pub const PYTEZOS_PK: &str = "edpku976gpuAD2bXyx1XGraeKuCo1gUZ3LAJcHM12W1ecxZwoiu22R";
/// pytezos secp256k1 key (docs/protocol.md §8.4).
pub const PYTEZOS_SPSK: &str = "spsk1zkqrmst1yg2c4xi3crWcZPqgdc9KtPtb9SAZWYHAdiQzdHy7j";
pub const PYTEZOS_TZ2: &str = "tz28YZoayJjVz2bRgGeVjxE8NonMiJ3r2Wdu";

/// Signatory C3 attestation, level 34 round 4 (docs/protocol.md §8.1).
pub const C3: &str = "13b3d79f993222f293d2f293230ec36b0bef1caead619f1a7206ff54a0c198f07ae25bb151150015000000220000000458335430566f4b95401c110f33e74d3a324f83ad6003ed9d5e93ce617fa11e44";
/// C3 signed by the Signatory key (docs/protocol.md §8.5, computed with Python `cryptography`).
pub const C3_SIG: &str = "edsigtia28aoA2ey7TrYKTyKmyppzwnq6VNrwZSwofgMTvFogDMMxs3MnEsfnZnU3g3EZx4zT9X4dYmB5zpDr9QtypNbBN2j7vd";
/// A tz1 → tz1 transaction (docs/protocol.md §8.2).
pub const TRANSFER: &str = "03573a2d2d49a3b9634d1605c3aa48ebdd5d21a5885ad17aa44c2b1d0dbcbcac686c004b415314d2b56b0481a3ae8c992ce8bb8dba0369d086039ecb2dc35000c0843d000076b2f1ea1cf6753888ac5488693977446652d79e00";

/// An attestation like C3 at another level/round, chain and payload hash byte.
pub fn attestation(chain: [u8; 4], level: u32, round: u32, payload: u8) -> Vec<u8> {
    let mut b = hex_bytes(C3);
    b[1..5].copy_from_slice(&chain);
    b[40..44].copy_from_slice(&level.to_be_bytes());
    b[44..48].copy_from_slice(&round.to_be_bytes());
    b[48] = payload;
    b
}

pub fn hex_bytes(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

pub fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A virtual board in `dir` behind a link, in provisioning mode.
pub fn virtual_link(dir: &Path) -> Link {
    let board = VirtualConnector::open(dir, Mode::Provisioning).expect("open virtual board");
    Link::start(Box::new(board), LinkSettings::default())
}

/// Import a secret key through the device protocol.
pub fn import(link: &Link, sk: &str, policy: Policy) -> String {
    let (curve, secret) = SecretBytes::from_b58(sk).expect("secret key");
    let reply = link
        .ask_blocking(&Request::ImportKey {
            curve,
            secret,
            policy,
        })
        .expect("link");
    match reply.response {
        Response::KeyInfo(info) => info.pkh.to_b58().to_string(),
        other => panic!("import refused: {other:?}"),
    }
}

/// The HTTP app on 127.0.0.1:0.
pub struct Server {
    pub addr: SocketAddr,
    _runtime: tokio::runtime::Runtime,
}

pub fn settings() -> HttpSettings {
    HttpSettings {
        body_limit: 4096,
        allowed_ips: Vec::new().into(),
        allow_list_known_keys: false,
        allow_to_prove_possession: false,
    }
}

impl Server {
    pub fn start(link: Link, authorized: &[&str], settings: HttpSettings) -> Server {
        let keys = authorized
            .iter()
            .map(|k| PublicKey::from_b58(k).expect("authorized key"))
            .collect();
        let state = Arc::new(AppState {
            boards: pawl_bridge::boards::Boards::single("board", link),
            auth: Authorizer::new(keys),
            settings,
            metrics: Arc::new(Metrics::default()),
            keyrings: Default::default(),
            yubihsm: None,
        });
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        runtime.spawn(async move {
            axum::serve(
                listener,
                app(state).into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
        });
        Server {
            addr,
            _runtime: runtime,
        }
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        http(self.addr, "GET", path, None)
    }

    pub fn post(&self, path: &str, body: &str) -> (u16, String) {
        http(self.addr, "POST", path, Some(body))
    }

    /// POST the JSON string of `payload`'s hex.
    pub fn sign(&self, pkh: &str, payload: &[u8]) -> (u16, String) {
        self.post(&format!("/keys/{pkh}"), &format!("\"{}\"", to_hex(payload)))
    }
}

/// One HTTP/1.1 request with `Connection: close`; returns status and body.
pub fn http(addr: SocketAddr, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).ok();
    let body = body.unwrap_or("");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).expect("write");
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("read");
    let text = String::from_utf8_lossy(&out).to_string();
    let status: u16 = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let body = text.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    (status, body.to_string())
}

/// The value of a JSON field in a body.
pub fn field(body: &str, name: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(body).expect("json body");
    v[name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name} in {body}"))
        .to_string()
}

/// Assert Octez's error shape and return the message.
pub fn octez_error(body: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(body).expect("json error body");
    let list = v.as_array().expect("error body is a JSON list");
    assert_eq!(list.len(), 1, "{body}");
    assert_eq!(list[0]["id"], "failure", "{body}");
    assert!(list[0]["kind"].is_string(), "{body}");
    let msg = list[0]["msg"].as_str().expect("msg").to_string();
    assert!(!msg.is_empty());
    msg
}

/// Base58check decode and strip a prefix of `prefix_len` bytes (bs58, not pawl-core).
pub fn b58(text: &str, prefix_len: usize) -> Vec<u8> {
    let raw = bs58::decode(text)
        .with_check(None)
        .into_vec()
        .expect("base58check");
    raw[prefix_len..].to_vec()
}

pub fn b58_encode(prefix: &[u8], payload: &[u8]) -> String {
    let mut v = prefix.to_vec();
    v.extend_from_slice(payload);
    bs58::encode(v).with_check().into_string()
}

pub fn blake2b_256(data: &[u8]) -> Vec<u8> {
    blake2::Blake2b::<blake2::digest::consts::U32>::digest(data).to_vec()
}

/// Verify an `edsig` over `message` under an `edpk` with openssl.
pub fn openssl_ed25519_verifies(edpk: &str, message: &[u8], edsig: &str) -> bool {
    assert!(edsig.starts_with("edsig"), "{edsig}");
    let pk = b58(edpk, 4);
    let sig = b58(edsig, 5);
    let key = openssl::pkey::PKey::public_key_from_raw_bytes(&pk, openssl::pkey::Id::ED25519)
        .expect("ed25519 key");
    let mut v = openssl::sign::Verifier::new_without_digest(&key).expect("verifier");
    v.verify_oneshot(&sig, &blake2b_256(message))
        .unwrap_or(false)
}

/// Sign `message` Tezos-style (Ed25519 over blake2b-256) with openssl; returns an `edsig`.
pub fn openssl_ed25519_sign(edsk: &str, message: &[u8]) -> String {
    let seed = b58(edsk, 4);
    let key =
        openssl::pkey::PKey::private_key_from_raw_bytes(&seed[..32], openssl::pkey::Id::ED25519)
            .expect("ed25519 secret");
    let mut s = openssl::sign::Signer::new_without_digest(&key).expect("signer");
    let sig = s.sign_oneshot_to_vec(&blake2b_256(message)).expect("sign");
    b58_encode(&[9, 245, 205, 134, 18], &sig)
}

/// Verify a `spsig1` under an `sppk` with libsecp256k1 (rejects high-S).
pub fn secp256k1_verifies(sppk: &str, message: &[u8], spsig: &str) -> bool {
    assert!(spsig.starts_with("spsig1"), "{spsig}");
    let pk = secp256k1::PublicKey::from_slice(&b58(sppk, 4)).expect("sppk");
    let sig = secp256k1::ecdsa::Signature::from_compact(&b58(spsig, 5)).expect("sig");
    let digest: [u8; 32] = blake2b_256(message).try_into().expect("32");
    let msg = secp256k1::Message::from_digest(digest);
    secp256k1::SECP256K1.verify_ecdsa(msg, &sig, &pk).is_ok()
}

/// A connector that never reaches a board.
pub struct Nowhere;

impl Connector for Nowhere {
    fn connect(&mut self) -> std::io::Result<Box<dyn pawl_bridge::link::Port>> {
        Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no board plugged in",
        ))
    }
    fn describe(&self) -> String {
        "nowhere".into()
    }
}

/// Run `cmd` with `stdin` written to it and closed: (success, stdout, stderr).
pub fn run_with_stdin(mut cmd: std::process::Command, stdin: &str) -> (bool, String, String) {
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn pawl");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("wait");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// `pawl --home HOME`, the binary under test, without a log filter from the environment.
pub fn pawl(home: &std::path::Path) -> std::process::Command {
    // `option_env!`: the load example includes this module too and has no CARGO_BIN_EXE_pawl
    // (it never calls this); integration tests always have it.
    let mut c = std::process::Command::new(option_env!("CARGO_BIN_EXE_pawl").unwrap_or("pawl"));
    c.arg("--home").arg(home).env_remove("PAWL_LOG");
    c
}

/// `pawl serve` with its API and metrics listeners on loopback port 0 (each prints the address
/// it got on stdout: the API first, then the metrics).
pub fn serve_on_loopback(home: &std::path::Path) -> std::process::Command {
    let mut c = pawl(home);
    c.args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--metrics",
        "127.0.0.1:0",
    ]);
    c
}

/// A child process (a `pawl serve`) killed when the test ends, passed or panicked.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
