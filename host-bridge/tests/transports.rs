//! The transports beside plain HTTP, over an in-process virtual board:
//!
//! * the Octez socket signer protocol over TCP and a Unix socket, byte for byte against the
//!   fixtures of `tests/fixtures/socket/` (derived from Octez's layouts by `make.py`, with
//!   pytezos and py_ecc computing the signatures), plus frames cut short, a client leaving
//!   mid-message, the IP allow-list, the socket file's mode and removal;
//! * HTTPS with rustls: the same API, mutual TLS (no / wrong / right client certificate),
//!   and configuration errors naming the field and the file. Certificates are made here with
//!   rcgen; no private key is committed.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use pawl_bridge::auth::Authorizer;
use pawl_bridge::http::{AppState, HttpSettings, app};
use pawl_bridge::link::Link;
use pawl_bridge::metrics::Metrics;
use pawl_bridge::socket::{self, SocketAddress};
use pawl_bridge::tls::{TlsListener, TlsSettings, server_config};
use pawl_core::keys::PublicKey;
use pawl_core::policy::Policy;
use support::*;

const TZ4_SK: &str = "BLsk1hKAHyGqY9qRbgoSVnjiSmDWpKGjFF3WNQ7BaiaMUA6RMA6Pfq";

fn state(link: Link, authorized: &[&str], settings: HttpSettings) -> Arc<AppState> {
    Arc::new(AppState {
        boards: pawl_bridge::boards::Boards::single("board", link),
        auth: Authorizer::new(
            authorized
                .iter()
                .map(|k| PublicKey::from_b58(k).expect("key"))
                .collect(),
        ),
        settings,
        metrics: Arc::new(Metrics::default()),
        keyrings: Default::default(),
        yubihsm: None,
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// A board holding the Signatory tz1 key and the tz4 test key.
fn board(dir: &Path) -> Link {
    let link = virtual_link(dir);
    assert_eq!(
        import(&link, SIGNATORY_SK, Policy::default()),
        SIGNATORY_PKH
    );
    import(&link, TZ4_SK, Policy::default());
    link
}

struct Fixture {
    name: String,
    server: String,
    request: Vec<u8>,
    answer: String,
}

fn fixtures() -> Vec<Fixture> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/socket");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixtures")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    names.sort();
    assert!(names.len() >= 19, "fixtures missing in {}", dir.display());
    names
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path).expect("fixture");
            let get = |key: &str| {
                text.lines()
                    .find_map(|l| l.strip_prefix(key))
                    .unwrap_or_else(|| panic!("{}: no {key}", path.display()))
                    .trim()
                    .to_string()
            };
            Fixture {
                name: path.file_name().expect("name").to_string_lossy().into(),
                server: get("server:"),
                request: hex_bytes(&get("request:")),
                answer: get("answer:"),
            }
        })
        .collect()
}

/// `pattern` is hex where `??` matches any byte.
fn matches(pattern: &str, got: &[u8]) -> bool {
    pattern.len() == got.len() * 2
        && got.iter().enumerate().all(|(i, b)| {
            let p = &pattern[2 * i..2 * i + 2];
            p == "??" || p == format!("{b:02x}")
        })
}

fn roundtrip(stream: &mut (impl Read + Write), frame: &[u8]) -> Vec<u8> {
    stream.write_all(frame).expect("write");
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).expect("answer length");
    let mut body = vec![0u8; u16::from_be_bytes(len) as usize];
    stream.read_exact(&mut body).expect("answer body");
    let mut out = len.to_vec();
    out.extend_from_slice(&body);
    out
}

/// The message of an Octez error trace (one error): 0x01, list length, string length, BSON.
fn trace_msg(answer: &[u8]) -> String {
    assert_eq!(answer[2], 0x01, "not an error: {}", to_hex(answer));
    let doc = &answer[2 + 1 + 4 + 4..];
    let at = doc
        .windows(4)
        .position(|w| w == b"msg\0")
        .expect("msg field")
        + 4;
    let n = u32::from_le_bytes(doc[at..at + 4].try_into().expect("4")) as usize;
    String::from_utf8(doc[at + 4..at + 4 + n - 1].to_vec()).expect("utf8")
}

struct Sockets {
    open_tcp: SocketAddr,
    auth_tcp: SocketAddr,
    open_unix: PathBuf,
    _guards: Vec<socket::ServingGuard>,
}

fn serve_sockets(rt: &tokio::runtime::Runtime, link: &Link, dir: &Path) -> Sockets {
    let open_unix = dir.join("signer.sock");
    let open = rt
        .block_on(socket::bind(&[
            "tcp://127.0.0.1:0".parse().expect("addr"),
            SocketAddress::Unix(open_unix.clone()),
        ]))
        .expect("bind");
    let auth = rt
        .block_on(socket::bind(&["tcp://127.0.0.1:0".parse().expect("addr")]))
        .expect("bind");
    let tcp = |s: &socket::SocketServers| -> SocketAddr {
        s.addresses()[0]
            .strip_prefix("tcp://")
            .expect("tcp")
            .parse()
            .expect("addr")
    };
    let (open_tcp, auth_tcp) = (tcp(&open), tcp(&auth));
    assert_eq!(
        open.addresses()[1],
        format!("unix://{}", open_unix.display())
    );
    let _enter = rt.enter();
    let guards = vec![
        open.serve(state(link.clone(), &[], settings())),
        auth.serve(state(link.clone(), &[PYTEZOS_PK], settings())),
    ];
    Sockets {
        open_tcp,
        auth_tcp,
        open_unix,
        _guards: guards,
    }
}

#[test]
fn socket_protocol_answers_the_fixtures_byte_for_byte_over_tcp() {
    run_fixtures(false);
}

#[test]
fn socket_protocol_answers_the_fixtures_byte_for_byte_over_a_unix_socket() {
    run_fixtures(true);
}

/// Every fixture in order on a fresh board; the "open" ones over TCP or the Unix socket, the
/// "auth" ones over TCP (the authenticating server has no Unix socket here).
fn run_fixtures(use_unix: bool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let link = board(dir.path());
    let rt = runtime();
    let s = serve_sockets(&rt, &link, dir.path());
    let mode = std::fs::metadata(&s.open_unix)
        .expect("socket file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o660, "unix socket mode {mode:o}");

    // One connection per server carries every request, as octez-client does (Authorized_keys
    // then Sign on one connection).
    let mut open = TcpStream::connect(s.open_tcp).expect("connect");
    let mut auth = TcpStream::connect(s.auth_tcp).expect("connect");
    let mut unix = UnixStream::connect(&s.open_unix).expect("connect unix");
    let all = fixtures();
    for f in &all {
        let got = match (f.server.as_str(), use_unix) {
            ("open", false) => roundtrip(&mut open, &f.request),
            ("open", true) => roundtrip(&mut unix, &f.request),
            ("auth", _) => roundtrip(&mut auth, &f.request),
            (other, _) => panic!("{}: server {other}", f.name),
        };
        assert!(
            matches(&f.answer, &got),
            "{} (unix: {use_unix}): expected {}\n got {}",
            f.name,
            f.answer,
            to_hex(&got)
        );
    }
    // The tz1 signature of fixture 06 verifies with openssl (an independent check of the
    // fixture itself).
    let c3 = all.iter().find(|f| f.name.starts_with("06_")).expect("06");
    let sig = hex_bytes(&c3.answer)[3..].to_vec();
    assert!(openssl_ed25519_verifies(
        SIGNATORY_PK,
        &hex_bytes(C3),
        &b58_encode(&[9, 245, 205, 134, 18], &sig)
    ));
}

#[test]
fn socket_frames_cut_short_oversize_and_clients_leaving_mid_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let link = board(dir.path());
    let rt = runtime();
    let s = serve_sockets(&rt, &link, dir.path());

    // An empty frame: an error trace, and the connection goes on.
    let mut c = TcpStream::connect(s.open_tcp).expect("connect");
    let got = roundtrip(&mut c, &[0, 0]);
    assert!(trace_msg(&got).contains("message too short"), "{got:?}");
    assert_eq!(roundtrip(&mut c, &[0, 1, 2]), vec![0, 2, 0, 0]);

    // The largest frame (65535 bytes): a sign request whose data the board cannot take.
    let data = vec![0x13u8; 65535 - 1 - 21 - 4];
    let mut body = vec![0u8];
    body.extend_from_slice(&b58(SIGNATORY_PKH, 3).iter().fold(vec![0u8], |mut v, b| {
        v.push(*b);
        v
    }));
    body.extend_from_slice(&u32::try_from(data.len()).expect("len").to_be_bytes());
    body.extend_from_slice(&data);
    assert_eq!(body.len(), 65535);
    let mut frame = 65535u16.to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    let got = roundtrip(&mut c, &frame);
    let msg = trace_msg(&got);
    assert!(msg.contains("does not fit"), "{msg}");
    // A data length pointing past the end of the frame.
    let mut short = vec![0u8, 0];
    short.extend_from_slice(&b58(SIGNATORY_PKH, 3));
    short.extend_from_slice(&100u32.to_be_bytes());
    short.extend_from_slice(&[0x13; 10]);
    let mut frame = u16::try_from(short.len())
        .expect("len")
        .to_be_bytes()
        .to_vec();
    frame.extend_from_slice(&short);
    let msg = trace_msg(&roundtrip(&mut c, &frame));
    assert!(
        msg.contains("message too short: the data needs 100 bytes"),
        "{msg}"
    );
    // Bytes after a complete request.
    let msg = trace_msg(&roundtrip(&mut c, &[0, 2, 2, 0]));
    assert!(msg.contains("1 extra bytes"), "{msg}");

    // A client that announces 100 bytes, sends 10 and leaves: no answer, nothing signed, and
    // the server keeps serving others.
    for cut in [1usize, 2, 12] {
        let mut c = TcpStream::connect(s.open_tcp).expect("connect");
        let mut partial = 100u16.to_be_bytes().to_vec();
        partial.extend_from_slice(&[0u8; 10]);
        c.write_all(&partial[..cut]).expect("write");
        drop(c);
        let mut u = UnixStream::connect(&s.open_unix).expect("connect");
        u.write_all(&partial[..cut]).expect("write");
        u.shutdown(std::net::Shutdown::Write).expect("shutdown");
        let mut rest = Vec::new();
        u.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        u.read_to_end(&mut rest).expect("closed by the server");
        assert!(rest.is_empty(), "answered a cut message: {rest:?}");
    }
    let mut c = TcpStream::connect(s.open_tcp).expect("connect");
    assert_eq!(roundtrip(&mut c, &[0, 1, 2]), vec![0, 2, 0, 0]);

    // Stopping the servers removes the Unix socket file.
    let path = s.open_unix.clone();
    drop(s);
    assert!(!path.exists(), "socket file left behind");
}

#[test]
fn socket_refuses_tcp_clients_outside_allowed_ips_and_binds_only_valid_addresses() {
    let dir = tempfile::tempdir().expect("tempdir");
    let link = board(dir.path());
    let rt = runtime();
    let mut settings = settings();
    settings.allowed_ips = vec!["10.1.2.3".parse().expect("ip")].into();
    let servers = rt
        .block_on(socket::bind(&["tcp://127.0.0.1:0".parse().expect("addr")]))
        .expect("bind");
    let addr: SocketAddr = servers.addresses()[0]
        .strip_prefix("tcp://")
        .expect("tcp")
        .parse()
        .expect("addr");
    let _enter = rt.enter();
    let _guard = servers.serve(state(link, &[], settings));
    let mut c = TcpStream::connect(addr).expect("connect");
    let got = roundtrip(&mut c, &[0, 1, 2]);
    assert_eq!(trace_msg(&got), "client `127.0.0.1' is not allowed");

    for bad in [
        "tcp://127.0.0.1",
        "tcp://:7732",
        "tcp://127.0.0.1:7732/tz1abc",
        "tcp://127.0.0.1:99999",
        "unix://relative.sock",
        "http://127.0.0.1:7732",
    ] {
        assert!(bad.parse::<SocketAddress>().is_err(), "{bad} accepted");
    }
    // A live socket file is not taken over; a stale one is replaced.
    let path = dir.path().join("live.sock");
    let _live = std::os::unix::net::UnixListener::bind(&path).expect("bind");
    let err = rt
        .block_on(socket::bind(&[SocketAddress::Unix(path.clone())]))
        .err()
        .expect("refused");
    assert!(format!("{err:#}").contains("another process"), "{err:#}");
    drop(_live);
    let again = rt
        .block_on(socket::bind(&[SocketAddress::Unix(path.clone())]))
        .expect("stale file replaced");
    drop(again);
    assert!(!path.exists());
}

// ---------------------------------------------------------------- HTTPS ---------------------

struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    /// A CA, a server certificate for 127.0.0.1 signed by it, a client certificate signed by
    /// it, and a client certificate from another (self-signed) CA.
    fn new() -> Pki {
        use rcgen::{
            BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let write = |name: &str, text: String| {
            std::fs::write(dir.path().join(name), text).expect("write pem");
        };
        let make_ca = |name: &str| {
            let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, name);
            let key = KeyPair::generate().expect("key");
            let cert = params.self_signed(&key).expect("ca");
            (cert, Issuer::new(params, key))
        };
        let (ca_cert, ca) = make_ca("pawl test CA");
        write("ca.pem", ca_cert.pem());
        let leaf = |names: Vec<String>, eku: ExtendedKeyUsagePurpose, issuer: &Issuer<KeyPair>| {
            let mut params = CertificateParams::new(names).expect("params");
            params.extended_key_usages = vec![eku];
            let key = KeyPair::generate().expect("key");
            let cert = params.signed_by(&key, issuer).expect("sign");
            (cert.pem(), key.serialize_pem())
        };
        let (cert, key) = leaf(
            vec!["127.0.0.1".into(), "localhost".into()],
            ExtendedKeyUsagePurpose::ServerAuth,
            &ca,
        );
        write("server.pem", cert);
        write("server.key", key);
        let (cert, key) = leaf(
            vec!["baker".into()],
            ExtendedKeyUsagePurpose::ClientAuth,
            &ca,
        );
        write("client.pem", cert);
        write("client.key", key);
        let (_, other) = make_ca("another CA");
        let (cert, key) = leaf(
            vec!["baker".into()],
            ExtendedKeyUsagePurpose::ClientAuth,
            &other,
        );
        write("wrong.pem", cert);
        write("wrong.key", key);
        Pki { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn settings(&self, client_ca: bool) -> TlsSettings {
        TlsSettings {
            cert: self.path("server.pem"),
            key: self.path("server.key"),
            client_ca: client_ca.then(|| self.path("ca.pem")),
        }
    }

    fn client(&self, identity: Option<&str>) -> Arc<rustls::ClientConfig> {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(self.path("ca.pem")).expect("ca") {
            roots.add(c.expect("ca cert")).expect("root");
        }
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots);
        Arc::new(match identity {
            None => builder.with_no_client_auth(),
            Some(name) => builder
                .with_client_auth_cert(
                    CertificateDer::pem_file_iter(self.path(&format!("{name}.pem")))
                        .expect("cert")
                        .collect::<Result<Vec<_>, _>>()
                        .expect("certs"),
                    PrivateKeyDer::from_pem_file(self.path(&format!("{name}.key"))).expect("key"),
                )
                .expect("client auth"),
        })
    }
}

fn serve_https(
    rt: &tokio::runtime::Runtime,
    state: Arc<AppState>,
    tls: &TlsSettings,
) -> SocketAddr {
    use axum::serve::ListenerExt as _;
    let config = server_config(tls).expect("tls config");
    let _enter = rt.enter();
    let tcp = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let listener = TlsListener::new(tcp, config).expect("listener");
    let addr = axum::serve::Listener::local_addr(&listener).expect("addr");
    let listener = listener.tap_io(|_| {});
    rt.spawn(async move {
        axum::serve(
            listener,
            app(state).into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    addr
}

/// One HTTP/1.1 request over TLS; the status and body, or the TLS/IO error.
fn https(
    rt: &tokio::runtime::Runtime,
    addr: SocketAddr,
    client: Arc<rustls::ClientConfig>,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Result<(u16, String), String> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    rt.block_on(async move {
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| e.to_string())?;
        let connector = tokio_rustls::TlsConnector::from(client);
        let name = rustls_pki_types::ServerName::try_from("127.0.0.1").expect("name");
        let mut tls = connector
            .connect(name, tcp)
            .await
            .map_err(|e| e.to_string())?;
        let body = body.unwrap_or("");
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        tls.write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        tls.read_to_end(&mut out).await.map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&out).to_string();
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("no HTTP answer: {text:?}"))?;
        let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
        Ok((status, body))
    })
}

#[test]
fn https_serves_the_same_api_and_mutual_tls_refuses_missing_and_wrong_certificates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let link = board(dir.path());
    let pki = Pki::new();
    let rt = runtime();
    let plain = serve_https(
        &rt,
        state(link.clone(), &[], settings()),
        &pki.settings(false),
    );
    let mutual = serve_https(&rt, state(link, &[], settings()), &pki.settings(true));

    let (status, body) = https(
        &rt,
        plain,
        pki.client(None),
        "GET",
        &format!("/keys/{SIGNATORY_PKH}"),
        None,
    )
    .expect("https");
    assert_eq!(
        (status, field(&body, "public_key")),
        (200, SIGNATORY_PK.to_string())
    );
    let (status, body) = https(
        &rt,
        plain,
        pki.client(None),
        "POST",
        &format!("/keys/{SIGNATORY_PKH}"),
        Some(&format!("\"{C3}\"")),
    )
    .expect("https");
    assert_eq!(status, 200, "{body}");
    assert_eq!(field(&body, "signature"), C3_SIG);
    // A refusal keeps its status and Octez body over HTTPS.
    let mut below = hex_bytes(C3);
    below[40..44].copy_from_slice(&33u32.to_be_bytes());
    let (status, body) = https(
        &rt,
        plain,
        pki.client(None),
        "POST",
        &format!("/keys/{SIGNATORY_PKH}"),
        Some(&format!("\"{}\"", to_hex(&below))),
    )
    .expect("https");
    assert_eq!(status, 409, "{body}");
    assert!(
        octez_error(&body).contains("below high watermark"),
        "{body}"
    );

    // Mutual TLS: the right client certificate signs (the identical C3: recorded signature).
    let (status, body) = https(
        &rt,
        mutual,
        pki.client(Some("client")),
        "POST",
        &format!("/keys/{SIGNATORY_PKH}"),
        Some(&format!("\"{C3}\"")),
    )
    .expect("https with a client certificate");
    assert_eq!(
        (status, field(&body, "signature")),
        (200, C3_SIG.to_string())
    );
    // No certificate, or one from another CA: no HTTP answer at all.
    for identity in [None, Some("wrong")] {
        let got = https(
            &rt,
            mutual,
            pki.client(identity),
            "POST",
            &format!("/keys/{SIGNATORY_PKH}"),
            Some(&format!("\"{C3}\"")),
        );
        assert!(got.is_err(), "{identity:?} was served: {got:?}");
    }
    // allowed_ips sees the HTTPS client's address (ConnectInfo through the TLS listener).
    for (allowed, expected) in [("127.0.0.1", 200), ("10.1.2.3", 403)] {
        let mut settings = settings();
        settings.allowed_ips = vec![allowed.parse().expect("ip")].into();
        let dir = tempfile::tempdir().expect("tempdir");
        let server = serve_https(
            &rt,
            state(board(dir.path()), &[], settings),
            &pki.settings(false),
        );
        let (status, body) = https(
            &rt,
            server,
            pki.client(None),
            "GET",
            "/authorized_keys",
            None,
        )
        .expect("https");
        assert_eq!(status, expected, "allowed_ips = [{allowed}]: {body}");
    }
    // A plain-HTTP client on the HTTPS port gets nothing either.
    let (status, _) = std::panic::catch_unwind(|| http(plain, "GET", "/authorized_keys", None))
        .unwrap_or((0, String::new()));
    assert_ne!(status, 200);
}

#[test]
fn tls_configuration_errors_name_the_field_and_the_file() {
    let pki = Pki::new();
    let err = |s: TlsSettings| server_config(&s).expect_err("refused").to_string();
    let missing = pki.path("nope.pem");
    let e = err(TlsSettings {
        cert: missing.clone(),
        ..pki.settings(false)
    });
    assert!(
        e.contains("server.tls_cert") && e.contains(&*missing.to_string_lossy()),
        "{e}"
    );
    let e = err(TlsSettings {
        key: pki.path("server.pem"),
        ..pki.settings(false)
    });
    assert!(
        e.contains("server.tls_key") && e.contains("server.pem"),
        "{e}"
    );
    // A key that is not the certificate's.
    let e = err(TlsSettings {
        key: pki.path("client.key"),
        ..pki.settings(false)
    });
    assert!(
        e.contains("server.tls_key") && e.contains("client.key"),
        "{e}"
    );
    // Not PEM at all; and the key file's content never appears in the message.
    std::fs::write(pki.path("garbage.pem"), "not a certificate").expect("write");
    let e = err(TlsSettings {
        cert: pki.path("garbage.pem"),
        ..pki.settings(false)
    });
    assert!(
        e.contains("server.tls_cert") && e.contains("garbage.pem"),
        "{e}"
    );
    let e = err(TlsSettings {
        client_ca: Some(pki.path("garbage.pem")),
        ..pki.settings(false)
    });
    assert!(e.contains("server.tls_client_ca"), "{e}");
    let key_text = std::fs::read_to_string(pki.path("client.key")).expect("key");
    let body = key_text.lines().nth(1).expect("base64 line");
    let e = err(TlsSettings {
        cert: pki.path("client.key"),
        ..pki.settings(false)
    });
    assert!(!e.contains(body), "key material in an error: {e}");

    // pawl.toml: the fields go together.
    for (text, field) in [
        ("[server]\ntls_cert = \"/c\"\n", "server.tls_listen"),
        (
            "[server]\ntls_listen = \"127.0.0.1:0\"\ntls_cert = \"/c\"\n",
            "server.tls_key",
        ),
        ("[server]\ntls_client_ca = \"/c\"\n", "server.tls_client_ca"),
        ("[server]\nsocket = [\"tcp://h\"]\n", "server.socket[0]"),
    ] {
        let e = pawl_bridge::config::Config::parse(text, Path::new("pawl.toml"))
            .expect_err(text)
            .to_string();
        assert!(e.contains(field), "{text}: {e}");
    }
    let ok = pawl_bridge::config::Config::parse(
        "[server]\ntls_listen = \"127.0.0.1:6733\"\ntls_cert = \"/c\"\ntls_key = \"/k\"\nsocket = [\"tcp://127.0.0.1:7732\", \"unix:///run/pawl/signer.sock\"]\n",
        Path::new("pawl.toml"),
    )
    .expect("valid");
    assert_eq!(ok.sockets.len(), 2);
    assert!(ok.tls.is_some());
}

/// The `pawl` binary: a TLS file it cannot use stops `pawl serve` before anything is bound,
/// naming the field and the file; with good files it prints every address it serves.
#[test]
fn pawl_serve_names_a_bad_tls_file_and_prints_every_transport() {
    use std::io::BufRead as _;
    use std::process::{Command, Stdio};
    let pki = Pki::new();
    let home = tempfile::tempdir().expect("home");
    let toml = |key: &Path| {
        format!(
            "[server]\ntls_listen = \"127.0.0.1:0\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\n\
             socket = [\"tcp://127.0.0.1:0\", \"unix://{}\"]\n",
            pki.path("server.pem").display(),
            key.display(),
            home.path().join("signer.sock").display()
        )
    };
    let pawl = env!("CARGO_BIN_EXE_pawl");
    std::fs::write(home.path().join("pawl.toml"), toml(&pki.path("client.key"))).expect("toml");
    let out = Command::new(pawl)
        .args(["serve", "--home"])
        .arg(home.path())
        .args(["--listen", "127.0.0.1:0"])
        .output()
        .expect("run pawl");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("server.tls_key") && stderr.contains("client.key"),
        "{stderr}"
    );
    assert!(
        out.stdout.is_empty(),
        "printed an address: {:?}",
        out.stdout
    );
    assert!(!home.path().join("control.sock").exists());
    assert!(!home.path().join("signer.sock").exists());

    std::fs::write(home.path().join("pawl.toml"), toml(&pki.path("server.key"))).expect("toml");
    let mut child = Command::new(pawl)
        .args(["serve", "--home"])
        .arg(home.path())
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn pawl");
    let mut lines = std::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut next = || lines.next().expect("a line").expect("utf8");
    assert!(next().starts_with("listening on http://127.0.0.1:"));
    assert!(next().starts_with("listening on https://127.0.0.1:"));
    let tcp = next();
    assert!(tcp.starts_with("socket on tcp://127.0.0.1:"), "{tcp}");
    assert_eq!(
        next(),
        format!(
            "socket on unix://{}",
            home.path().join("signer.sock").display()
        )
    );
    let addr: SocketAddr = tcp["socket on tcp://".len()..].parse().expect("addr");
    let mut c = TcpStream::connect(addr).expect("connect");
    assert_eq!(roundtrip(&mut c, &[0, 1, 2]), vec![0, 2, 0, 0]);
    // SIGTERM: serve stops and removes its socket files.
    Command::new("kill")
        .arg(child.id().to_string())
        .status()
        .expect("kill");
    child.wait().expect("wait");
    assert!(
        !home.path().join("signer.sock").exists(),
        "unix socket left"
    );
}
