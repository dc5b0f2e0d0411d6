//! The serial link against a virtual board served over a real pty: signing, concurrency
//! (pipelining), and reconnect after the board disappears with an answer in flight.

mod support;

use std::sync::atomic::Ordering;

use pawl_bridge::link::{Link, LinkSettings, SerialConnector};
use pawl_core::policy::Policy;
use pawl_core::protocol::Mode;
use support::pty::PtyBoard;
use support::*;

fn pty_setup(dir: &std::path::Path) -> (PtyBoard, Link, String) {
    let pty = PtyBoard::start(&dir.join("board"), Mode::Provisioning, &dir.join("ttyPAWL"));
    let link = Link::start(
        Box::new(SerialConnector::new(&pty.link_path, 115_200)),
        LinkSettings::default(),
    );
    // Provisioned through the serial link itself.
    let pkh = import(&link, SIGNATORY_SK, Policy::default());
    (pty, link, pkh)
}

#[test]
fn signs_over_a_pty_and_many_clients_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (pty, link, pkh) = pty_setup(dir.path());
    let server = std::sync::Arc::new(Server::start(link, &[], settings()));
    let (status, body) = server.sign(&pkh, &hex_bytes(C3));
    assert_eq!(status, 200, "{body}");
    assert_eq!(field(&body, "signature"), C3_SIG);

    // 5 clients, each on its own chain so their levels are independent (a key allowed any
    // chain holds at most 6 watermark entries: C3's and these five; core/src/board/room.rs).
    let threads: Vec<_> = (0..5u8)
        .map(|c| {
            let server = std::sync::Arc::clone(&server);
            let pkh = pkh.clone();
            std::thread::spawn(move || {
                for level in 1..=80 {
                    let payload = attestation([1, 2, 3, c], level, 0, c);
                    let (status, body) = server.sign(&pkh, &payload);
                    assert_eq!(status, 200, "{body}");
                    let sig = field(&body, "signature");
                    assert!(openssl_ed25519_verifies(SIGNATORY_PK, &payload, &sig));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("client thread");
    }
    assert_eq!(pty.control.signs.load(Ordering::SeqCst), 1 + 5 * 80);
}

#[test]
fn an_answer_lost_with_the_board_is_asked_again_after_reconnect() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (pty, link, pkh) = pty_setup(dir.path());
    let server = Server::start(link, &[], settings());
    let first = attestation([9, 9, 9, 9], 10, 0, 1);
    let (status, body) = server.sign(&pkh, &first);
    assert_eq!(status, 200, "{body}");

    // The board signs the next request, then its cable is pulled before the answer leaves;
    // it comes back 300 ms later on a new pty behind the same name.
    pty.control.unplug_after_sign.store(2, Ordering::SeqCst);
    let second = attestation([9, 9, 9, 9], 11, 0, 1);
    let (status, body) = server.sign(&pkh, &second);
    assert_eq!(status, 200, "{body}");
    let sig = field(&body, "signature");
    assert!(openssl_ed25519_verifies(SIGNATORY_PK, &second, &sig));
    assert_eq!(pty.control.replugs.load(Ordering::SeqCst), 1);
    // Asked twice: once lost, once answered by the watermark with the recorded signature.
    assert_eq!(pty.control.signs.load(Ordering::SeqCst), 3);

    // The re-asked answer is the board's recorded one: an identical retry gives the same.
    let (status, body) = server.sign(&pkh, &second);
    assert_eq!(status, 200, "{body}");
    assert_eq!(field(&body, "signature"), sig);
    // And a different request at that level is refused: nothing was signed twice.
    let (status, body) = server.sign(&pkh, &attestation([9, 9, 9, 9], 11, 0, 2));
    assert_eq!(status, 409, "{body}");
}
