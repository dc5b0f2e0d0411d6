//! The YubiHSM2 relay through the yubihsm crate's connector layer, against a tiny
//! yubihsm-connector stand-in on 127.0.0.1 (just enough HTTP/1.1 for `POST /connector/api`):
//! bytes carried unchanged both ways on one persistent connection, the bridge's own timeout,
//! reconnection after a failed message, HTTP errors, an unreachable connector, and USB
//! without a device.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pawl_bridge::yubihsm::{HsmConnector, HsmRelay, RelayError, YubiHsmSettings};

/// What the stand-in does with the request on the `n`th connection (from 0).
#[derive(Clone, Copy)]
enum Behaviour {
    /// Answer every request: `0xA5` then the request reversed.
    Echo,
    /// Read the request, wait, close without answering.
    SilentThenClose(Duration),
    /// Read the request, wait, then answer it as `Echo` would (and go on as `Echo`).
    Late(Duration),
    /// Answer every request as `Echo`, with the head as hyper (so `pawl-sim yubihsm`) writes
    /// it: lower-case `content-length`, which the crate's client does not recognise.
    LowerCaseEcho,
    /// Answer with an HTTP error status.
    Status500,
}

/// The answer `Echo` gives to `request`.
fn echoed(request: &[u8]) -> Vec<u8> {
    let mut answer = vec![0xA5];
    answer.extend(request.iter().rev());
    answer
}

struct Connector {
    port: u16,
    connections: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
}

/// A stand-in connector; `plan(n)` is the behaviour on the `n`th connection.
fn connector(plan: fn(usize) -> Behaviour) -> Connector {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let connections = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(AtomicUsize::new(0));
    let (c, r) = (connections.clone(), requests.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let n = c.fetch_add(1, Ordering::SeqCst);
            let r = r.clone();
            std::thread::spawn(move || serve(stream, plan(n), &r));
        }
    });
    Connector {
        port,
        connections,
        requests,
    }
}

/// One connection: requests one after the other (keep-alive) until the client closes it.
fn serve(mut stream: TcpStream, mut behaviour: Behaviour, requests: &AtomicUsize) {
    while let Some(body) = read_request(&mut stream) {
        requests.fetch_add(1, Ordering::SeqCst);
        let (status, answer) = match behaviour {
            Behaviour::Echo => ("200 OK", echoed(&body)),
            Behaviour::LowerCaseEcho => {
                let answer = echoed(&body);
                let mut out = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: {}\r\n\r\n",
                    answer.len()
                )
                .into_bytes();
                out.extend_from_slice(&answer);
                if stream.write_all(&out).is_err() {
                    return;
                }
                continue;
            }
            Behaviour::SilentThenClose(wait) => {
                std::thread::sleep(wait);
                return;
            }
            Behaviour::Late(wait) => {
                std::thread::sleep(wait);
                behaviour = Behaviour::Echo;
                ("200 OK", echoed(&body))
            }
            Behaviour::Status500 => ("500 Internal Server Error", b"device error".to_vec()),
        };
        // Head and body in one write, as yubihsm-connector does (the crate's client needs the
        // answer in one read).
        let mut out = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
            answer.len()
        )
        .into_bytes();
        out.extend_from_slice(&answer);
        if stream.write_all(&out).is_err() {
            return;
        }
    }
}

/// The body of the next `POST /connector/api`; `None` when the client closed.
fn read_request(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut data = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).ok().filter(|n| *n > 0)?;
        data.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_string();
    assert!(
        head.starts_with("POST /connector/api HTTP/1.1\r\n"),
        "{head}"
    );
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().expect("length"))
        })
        .expect("Content-Length");
    while data.len() < head_end + length {
        let n = stream.read(&mut chunk).ok().filter(|n| *n > 0)?;
        data.extend_from_slice(&chunk[..n]);
    }
    Some(data[head_end..head_end + length].to_vec())
}

fn relay(port: u16, timeout_ms: u64) -> HsmRelay {
    HsmRelay::new(YubiHsmSettings {
        connector: HsmConnector::Http {
            addr: "127.0.0.1".into(),
            port,
        },
        message_timeout: Duration::from_millis(timeout_ms),
    })
    .expect("relay")
}

#[tokio::test(flavor = "multi_thread")]
async fn bytes_cross_unchanged_both_ways_on_one_connection() {
    let hsm = connector(|_| Behaviour::Echo);
    let relay = relay(hsm.port, 2000);
    let all: Vec<u8> = (0..=255).collect();
    let messages: Vec<Vec<u8>> = vec![
        vec![0x03, 0x00, 0x0a, 0x00, 0x02],
        b"\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n".to_vec(),
        all.clone(),
        all.iter().cycle().take(2029).copied().collect(),
        vec![0x05],
        vec![0; 1],
    ];
    for message in &messages {
        let answer = relay.send(message).await.expect("answer");
        assert_eq!(answer, echoed(message));
    }
    assert_eq!(hsm.requests.load(Ordering::SeqCst), messages.len());
    assert_eq!(
        hsm.connections.load(Ordering::SeqCst),
        1,
        "one persistent connection"
    );
}

/// The crate's client finds no `Content-Length: ` in a lower-case head and takes whatever
/// the first read brought as the body: right when head and body come in one write, as hyper
/// writes small answers. (`pawl-sim yubihsm` writes title-case headers, as a yubihsm-connector
/// does, so it does not depend on this.)
#[tokio::test(flavor = "multi_thread")]
async fn a_lower_case_head_in_one_write_is_read_whole() {
    let hsm = connector(|_| Behaviour::LowerCaseEcho);
    let relay = relay(hsm.port, 2000);
    for message in [&b"\x03\x00\x01\x02"[..], &[0x55; 300]] {
        assert_eq!(relay.send(message).await.expect("answer"), echoed(message));
    }
    assert_eq!(hsm.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_connector_times_out_and_the_next_message_reconnects() {
    // The first connection reads the message and closes after 1.2 s without answering; the
    // next ones answer.
    let hsm = connector(|n| {
        if n == 0 {
            Behaviour::SilentThenClose(Duration::from_millis(1200))
        } else {
            Behaviour::Echo
        }
    });
    let relay = relay(hsm.port, 300);
    let started = Instant::now();
    let err = relay.send(b"first").await.expect_err("no answer");
    let took = started.elapsed();
    assert!(matches!(err, RelayError::Timeout { .. }), "{err}");
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_millis(1000),
        "{took:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains(&format!("http://127.0.0.1:{}", hsm.port)) && text.contains("300 ms"),
        "{text}"
    );
    // The abandoned call still holds the connection: this one times out too, saying why.
    let err = relay.send(b"second").await.expect_err("still held");
    assert!(
        matches!(err, RelayError::Timeout { .. }) && err.to_string().contains("earlier message"),
        "{err}"
    );
    // Once the connector closed the first connection, the crate dropped it; the next message
    // opens a fresh one.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let answer = relay.send(b"third").await.expect("reconnected");
    assert_eq!(answer, echoed(b"third"));
    assert_eq!(hsm.connections.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_late_answer_is_consumed_and_the_connection_stays_in_step() {
    let hsm = connector(|_| Behaviour::Late(Duration::from_millis(500)));
    let relay = relay(hsm.port, 200);
    let err = relay.send(b"slow").await.expect_err("late");
    assert!(matches!(err, RelayError::Timeout { .. }), "{err}");
    tokio::time::sleep(Duration::from_millis(600)).await;
    for message in [&b"next"[..], b"and next"] {
        assert_eq!(
            relay.send(message).await.expect("answer"),
            echoed(message),
            "each message gets its own answer, not the late one"
        );
    }
    assert_eq!(hsm.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_http_error_is_refused_and_names_the_connector() {
    let hsm = connector(|_| Behaviour::Status500);
    let relay = relay(hsm.port, 2000);
    let err = relay.send(b"x").await.expect_err("500");
    let text = err.to_string();
    assert!(matches!(err, RelayError::Refused { .. }), "{text}");
    assert!(
        text.contains(&format!("http://127.0.0.1:{}", hsm.port)) && text.contains("500"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_connector_is_unreachable() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let relay = relay(port, 2000);
    let started = Instant::now();
    let err = relay.send(b"x").await.expect_err("nobody there");
    let text = err.to_string();
    assert!(matches!(err, RelayError::Unreachable { .. }), "{text}");
    assert!(
        text.contains(&format!("http://127.0.0.1:{port}")) && text.contains("refused"),
        "{text}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test(flavor = "multi_thread")]
async fn usb_without_a_device_is_unreachable_and_says_usb() {
    for (serial, shown) in [
        (None, "USB (the one YubiHSM2 attached)".to_string()),
        (
            Some("0123456789".parse().expect("serial")),
            "USB (serial 0123456789)".to_string(),
        ),
    ] {
        let relay = HsmRelay::new(YubiHsmSettings {
            connector: HsmConnector::Usb { serial },
            message_timeout: Duration::from_millis(2000),
        })
        .expect("a USB relay is built without a device");
        let err = relay.send(b"x").await.expect_err("no device");
        let text = err.to_string();
        assert!(matches!(err, RelayError::Unreachable { .. }), "{text}");
        assert!(text.contains(&shown), "{text}");
    }
}
