//! The HTTP API over an in-process virtual board: shapes, status mapping, watermark answers,
//! authentication. Every signature is checked with openssl or libsecp256k1.

mod support;

use pawl_bridge::link::{Link, LinkSettings, VirtualConnector};
use pawl_core::policy::Policy;
use support::*;

const CHAIN: [u8; 4] = [0xb3, 0xd7, 0x9f, 0x99];

fn board() -> (tempfile::TempDir, Link, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let link = virtual_link(dir.path());
    let pkh = import(&link, SIGNATORY_SK, Policy::default());
    (dir, link, pkh)
}

#[test]
fn public_key_and_signature_match_the_upstream_vectors() {
    let (_dir, link, pkh) = board();
    assert_eq!(pkh, SIGNATORY_PKH);
    let server = Server::start(link, &[], settings());
    let (status, body) = server.get(&format!("/keys/{pkh}"));
    assert_eq!(status, 200, "{body}");
    assert_eq!(field(&body, "public_key"), SIGNATORY_PK);

    let (status, body) = server.post(&format!("/keys/{pkh}?version=3"), &format!("\"{C3}\""));
    assert_eq!(status, 200, "{body}");
    let sig = field(&body, "signature");
    assert_eq!(sig, C3_SIG);
    assert!(openssl_ed25519_verifies(SIGNATORY_PK, &hex_bytes(C3), &sig));
}

#[test]
fn identical_retry_gives_the_same_signature_and_lower_or_different_is_409() {
    let (_dir, link, pkh) = board();
    let server = Server::start(link, &[], settings());
    let first = attestation(CHAIN, 100, 0, 1);
    let (status, a) = server.sign(&pkh, &first);
    assert_eq!(status, 200, "{a}");
    let (status, b) = server.sign(&pkh, &first);
    assert_eq!(status, 200, "{b}");
    let (a, b) = (field(&a, "signature"), field(&b, "signature"));
    assert_eq!(
        a, b,
        "an identical retry must return the recorded signature"
    );
    assert!(openssl_ed25519_verifies(SIGNATORY_PK, &first, &a));

    // Same level and round, other bytes: a double signature.
    let (status, body) = server.sign(&pkh, &attestation(CHAIN, 100, 0, 2));
    assert_eq!(status, 409, "{body}");
    assert!(octez_error(&body).contains("already signed"), "{body}");
    // Lower level.
    let (status, body) = server.sign(&pkh, &attestation(CHAIN, 99, 5, 1));
    assert_eq!(status, 409, "{body}");
    assert!(
        octez_error(&body).contains("below high watermark"),
        "{body}"
    );
    // Higher is fine.
    let next = attestation(CHAIN, 101, 0, 1);
    let (status, body) = server.sign(&pkh, &next);
    assert_eq!(status, 200, "{body}");
    assert!(openssl_ed25519_verifies(
        SIGNATORY_PK,
        &next,
        &field(&body, "signature")
    ));
}

#[test]
fn status_codes_and_octez_error_bodies() {
    let (_dir, link, pkh) = board();
    let server = Server::start(link, &[], settings());
    // A valid pkh that is not on the board.
    let (status, body) = server.sign(PYTEZOS_TZ2, &hex_bytes(C3));
    assert_eq!(status, 404, "{body}");
    assert!(octez_error(&body).contains("unknown key"), "{body}");
    let (status, body) = server.get(&format!("/keys/{PYTEZOS_TZ2}"));
    assert_eq!(status, 404, "{body}");
    octez_error(&body);
    // Malformed: bad hex, not a JSON string, bad pkh, bad version, unknown magic byte.
    for (path, body_text) in [
        (format!("/keys/{pkh}"), "\"zz13\"".to_string()),
        (format!("/keys/{pkh}"), format!("{{\"data\":\"{C3}\"}}")),
        (format!("/keys/{pkh}"), C3.to_string()),
        ("/keys/tz1notakey".to_string(), format!("\"{C3}\"")),
        (format!("/keys/{pkh}?version=x"), format!("\"{C3}\"")),
        (format!("/keys/{pkh}"), "\"ff00\"".to_string()),
        (format!("/keys/{pkh}"), "\"\"".to_string()),
    ] {
        let (status, body) = server.post(&path, &body_text);
        assert_eq!(status, 400, "{path} {body_text}: {body}");
        octez_error(&body);
    }
    // Policy: a baking key does not sign transfers.
    let (status, body) = server.sign(&pkh, &hex_bytes(TRANSFER));
    assert_eq!(status, 403, "{body}");
    assert!(octez_error(&body).contains("not allowed"), "{body}");
    // Body limit (4096 in the test settings).
    let big = format!("\"{}\"", "13".repeat(5000));
    let (status, body) = server.post(&format!("/keys/{pkh}"), &big);
    assert_eq!(status, 413, "{body}");
    octez_error(&body);
    // Switches off: as in Octez, refused with its messages.
    let (status, body) = server.get("/known_keys");
    assert_eq!(status, 403, "{body}");
    assert_eq!(octez_error(&body), "List known keys request not allowed.");
    let (status, body) = server.get(&format!("/bls_prove_possession/{pkh}"));
    assert_eq!(status, 403, "{body}");
    octez_error(&body);
    // Nothing above changed the watermark: C3 still signs.
    let (status, body) = server.sign(&pkh, &hex_bytes(C3));
    assert_eq!(status, 200, "{body}");
}

#[test]
fn board_unavailable_is_503() {
    let link = Link::start(
        Box::new(Nowhere),
        LinkSettings {
            request_timeout: std::time::Duration::from_millis(300),
            ..LinkSettings::default()
        },
    );
    let server = Server::start(link, &[], settings());
    let (status, body) = server.sign(SIGNATORY_PKH, &hex_bytes(C3));
    assert_eq!(status, 503, "{body}");
    assert!(octez_error(&body).contains("no board plugged in"), "{body}");
}

#[test]
fn known_keys_and_possession_when_enabled() {
    let (_dir, link, pkh) = board();
    let mut s = settings();
    s.allow_list_known_keys = true;
    s.allow_to_prove_possession = true;
    let server = Server::start(link, &[], s);
    let (status, body) = server.get("/known_keys");
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["known_keys"], serde_json::json!([pkh]));
    // Not a BLS key: refused as a bad request, with the core's message.
    let (status, body) = server.get(&format!("/bls_prove_possession/{pkh}"));
    assert_eq!(status, 400, "{body}");
    assert!(octez_error(&body).contains("BLS"), "{body}");
}

#[test]
fn secp256k1_signatures_verify_with_libsecp256k1() {
    let dir = tempfile::tempdir().expect("tempdir");
    let link = virtual_link(dir.path());
    let pkh = import(&link, PYTEZOS_SPSK, Policy::default());
    assert_eq!(pkh, PYTEZOS_TZ2);
    let server = Server::start(link, &[], settings());
    let (_, body) = server.get(&format!("/keys/{pkh}"));
    let sppk = field(&body, "public_key");
    for level in 1..=20 {
        let payload = attestation(CHAIN, level, 0, 7);
        let (status, body) = server.sign(&pkh, &payload);
        assert_eq!(status, 200, "{body}");
        assert!(secp256k1_verifies(
            &sppk,
            &payload,
            &field(&body, "signature")
        ));
    }
}

#[test]
fn authentication_as_octez() {
    let (_dir, link, pkh) = board();
    let server = Server::start(link, &[PYTEZOS_PK], settings());
    let (status, body) = server.get("/authorized_keys");
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(
        v["authorized_keys"],
        serde_json::json!(["tz1eKkWU5hGtfLUiqNpucHrXymm83z3DG9Sq"])
    );

    // docs/protocol.md §8.5: the derived vector for a key this board does not hold. The
    // authentication is accepted, so the answer is "unknown key", not "unauthenticated".
    let vector = "edsigu5X2o15uRym8yPfxydF26gLT9cE7XDVkzgQw1DubEyBQ7G321YsdvsAnxPZvCEyVyPrwcqLdqnAhWcpnaMT5GpVk1HwAsi";
    let path = format!("/keys/tz1WGcYos3hL7GXYXjKrMnSFdkT7FyXnFBvf?authentication={vector}");
    let (status, body) = server.post(&path, &format!("\"{C3}\""));
    assert_eq!(status, 404, "{body}");

    // Missing, then signed over other data, then by a key that is not authorized.
    let (status, body) = server.sign(&pkh, &hex_bytes(C3));
    assert_eq!(status, 401, "{body}");
    assert_eq!(octez_error(&body), "missing authentication signature field");
    let path = format!("/keys/{pkh}?authentication={vector}");
    let (status, body) = server.post(&path, &format!("\"{C3}\""));
    assert_eq!(status, 403, "{body}");
    assert_eq!(octez_error(&body), "invalid authentication signature");

    let pkh_bytes = {
        let mut b = vec![0u8];
        b.extend(b58(&pkh, 3));
        b
    };
    let mut auth_bytes = vec![0x04, 0x01];
    auth_bytes.extend_from_slice(&pkh_bytes);
    auth_bytes.extend(hex_bytes(C3));
    let wrong_key = openssl_ed25519_sign(SIGNATORY_SK, &auth_bytes);
    let (status, _) = server.post(
        &format!("/keys/{pkh}?authentication={wrong_key}"),
        &format!("\"{C3}\""),
    );
    assert_eq!(status, 403);

    // Made by openssl with the authorized key: accepted, and the signature verifies.
    let auth = openssl_ed25519_sign(PYTEZOS_SK, &auth_bytes);
    let (status, body) = server.post(
        &format!("/keys/{pkh}?authentication={auth}&version=2"),
        &format!("\"{C3}\""),
    );
    assert_eq!(status, 200, "{body}");
    assert!(openssl_ed25519_verifies(
        SIGNATORY_PK,
        &hex_bytes(C3),
        &field(&body, "signature")
    ));
}

/// The hostile-host guards of the board reach a baker with their own statuses and reasons, and
/// leave the marks as they were: the jump guard (403, names the limit) and a key's table quota
/// (507, names it).
#[test]
fn jump_guard_and_table_quota_refusals_over_http() {
    let (_dir, link, pkh) = board();
    let server = Server::start(link, &[], settings());
    let chain = [0x5a, 0x11, 0xe2, 0xe2];
    let (status, body) = server.sign(&pkh, &attestation(chain, 10, 0, 1));
    assert_eq!(status, 200, "{body}");
    // The burn of issue 13: the virtual board has no button, so the guard refuses.
    let (status, body) = server.sign(&pkh, &attestation(chain, 0x7fff_ffff, 0x7fff_ffff, 1));
    assert_eq!(status, 403, "{body}");
    assert!(octez_error(&body).contains("jump limit"), "{body}");
    // Nothing moved: the next level signs.
    let (status, body) = server.sign(&pkh, &attestation(chain, 11, 0, 1));
    assert_eq!(status, 200, "{body}");
    // This key may sign on any chain (the core's default policy): 6 entries at most. Five more
    // invented chains fill them; the seventh chain is refused and names the quota.
    for i in 1..=5u8 {
        let (status, body) = server.sign(&pkh, &attestation([0xaa, 0, 0, i], 1, 0, 1));
        assert_eq!(status, 200, "chain {i}: {body}");
    }
    let (status, body) = server.sign(&pkh, &attestation([0xaa, 0, 0, 6], 1, 0, 1));
    assert_eq!(status, 507, "{body}");
    assert!(octez_error(&body).contains("quota"), "{body}");
    // The key's own chain still signs.
    let (status, body) = server.sign(&pkh, &attestation(chain, 12, 0, 1));
    assert_eq!(status, 200, "{body}");
}

/// Issue 13, finding 3: a host that walks an operational board's marks upward, every request
/// above the stored ceiling, meets the flash write budget: 503 `write_budget` with a
/// `Retry-After` header, nothing written (the next level under the last ceiling still signs).
#[test]
fn write_budget_is_503_with_retry_after() {
    let (dir, link, pkh) = board();
    drop(link);
    // The same board, powered up in operational mode (the provisioning thread lets go of the
    // directory's lock when its link is gone).
    let mut opened = None;
    for _ in 0..100 {
        match VirtualConnector::open(dir.path(), pawl_core::protocol::Mode::Operational) {
            Ok(board) => {
                opened = Some(board);
                break;
            }
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(50)),
        }
    }
    let board = opened.expect("reopen the virtual board");
    let server = Server::start(
        Link::start(Box::new(board), LinkSettings::default()),
        &[],
        settings(),
    );
    // A fresh store starts with a full bucket (96 records): the first mark costs two (name
    // and ceiling) plus the 16 the boot's first record is charged for opening an OTP epoch
    // (`docs/hardware.md`, rollback anchor), each later request one: ~78 signatures.
    let mut refused = None;
    let mut last_signed = 0;
    for i in 0..200u32 {
        let level = 1 + i * 17;
        let payload = attestation(CHAIN, level, 0, 1);
        let (status, headers, body) = http_full(
            server.addr,
            &format!("/keys/{pkh}"),
            &format!("\"{}\"", to_hex(&payload)),
        );
        if status == 200 {
            last_signed = level;
            continue;
        }
        refused = Some((i, status, headers, body));
        break;
    }
    let (i, status, headers, body) = refused.expect("the budget refuses within 200 requests");
    assert!((73..=83).contains(&i), "refused after {i} requests");
    assert_eq!(status, 503, "{body}");
    assert!(
        octez_error(&body).contains("flash write budget spent: retry in"),
        "{body}"
    );
    let retry = headers
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("retry-after:")
                .map(|v| v.trim().to_string())
        })
        .expect("a Retry-After header");
    let seconds: u32 = retry.parse().expect("seconds");
    assert!((1..=3).contains(&seconds), "Retry-After: {seconds}");
    // Nothing moved: a level under the last ceiling signs without a write.
    let (status, body) = server.sign(&pkh, &attestation(CHAIN, last_signed + 1, 0, 1));
    assert_eq!(status, 200, "{body}");
}

/// One POST with `Connection: close`; returns status, header block and body.
fn http_full(addr: std::net::SocketAddr, path: &str, body: &str) -> (u16, String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .ok();
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).expect("write");
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("read");
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (status, head.to_string(), body.to_string())
}
