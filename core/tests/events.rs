//! Board logs ([`EventsRequest`]): a bounded ring with sequence numbers, read statelessly;
//! boot, store health, refusals with their reason and key, flash erases and button waits are
//! logged; the ring overwrites the oldest and says how many a reader lost; no event carries
//! a secret the host sent.

mod support;

use pawl_core::keys::{Curve, PublicKeyHash, SecretBytes};
use pawl_core::policy::Policy;
use pawl_core::protocol::events::{
    EVENT_PAGE, EVENT_RING, Event, EventKind, EventPage, EventsRequest, EventsResponse,
};
use pawl_core::protocol::{Mode, Refusal, Request, Response, StoreHealth};
use pawl_core::sim::SimFlash;
use pawl_core::store::{MemoryStore, Store};
use pawl_core::watermark::{MarkKind, WatermarkError};
use support::board::{attestation, board, import, sign};
use support::power::{CHAINS, SharedGuard, boot};

const CHAIN: [u8; 4] = [0xb3, 0xd7, 0x9f, 0x99];
/// The ring's size as the sequence numbers count.
#[allow(clippy::cast_possible_truncation)] // 64
const RING: u32 = EVENT_RING as u32;

fn page<S: Store, E: pawl_core::keys::Entropy, P: pawl_core::board::Presence>(
    b: &mut pawl_core::board::Board<S, E, P>,
    after: u32,
) -> EventPage {
    match b.handle(Request::Events(EventsRequest::Since { after })) {
        Response::Events(EventsResponse::Page(p)) => p,
        other => panic!("events: {other:?}"),
    }
}

/// Every event above `after`, page by page.
fn all<S: Store, E: pawl_core::keys::Entropy, P: pawl_core::board::Presence>(
    b: &mut pawl_core::board::Board<S, E, P>,
    mut after: u32,
) -> Vec<Event> {
    let mut out = Vec::new();
    loop {
        let p = page(b, after);
        assert!(p.events.len() <= EVENT_PAGE);
        let Some(last) = p.events.last() else {
            return out;
        };
        after = last.seq;
        out.extend(p.events.iter().copied());
    }
}

fn secret_key(byte: u8) -> (SecretBytes, String) {
    let s = SecretBytes::new([byte; 32]);
    let b58 = s.to_b58(Curve::Ed25519).to_string();
    (SecretBytes::new([byte; 32]), b58)
}

#[test]
fn boot_and_store_health_come_first_then_refusals_with_reason_and_key() {
    let mut b = board(MemoryStore::default(), Mode::Provisioning);
    let (_, sk) = secret_key(0x31);
    let (pkh, _) = import(&mut b, &sk, Policy::default());
    sign(&mut b, &pkh, &attestation(CHAIN, 10, 0, 1)).expect("first");
    let refused = sign(&mut b, &pkh, &attestation(CHAIN, 10, 0, 2)).expect_err("double");
    let events = all(&mut b, 0);
    let kinds: Vec<_> = events.iter().map(|e| e.what).collect();
    assert_eq!(
        kinds[0],
        EventKind::Boot {
            mode: Mode::Provisioning
        }
    );
    assert_eq!(kinds[1], EventKind::Store(StoreHealth::Ok));
    assert_eq!(
        kinds[2],
        EventKind::Refused {
            key: Some(pkh),
            reason: refused
        }
    );
    assert!(matches!(
        refused,
        Refusal::Watermark(WatermarkError::NotAbove {
            kind: MarkKind::Attestation,
            ..
        }) | Refusal::Watermark(_)
    ));
    assert_eq!(kinds.len(), 3, "{kinds:?}");
    // Sequence numbers count from 1 without gaps.
    let seqs: Vec<u32> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, vec![1, 2, 3]);
    // Reading is stateless: the same question, the same answer.
    assert_eq!(page(&mut b, 0), page(&mut b, 0));
    assert_eq!(page(&mut b, 2).events.as_slice(), &events[2..]);
    assert_eq!(page(&mut b, 3).events.len(), 0);
    assert_eq!(page(&mut b, 3).next, 4);
}

#[test]
fn an_operational_board_logs_its_mode_and_provisioning_refusals() {
    let mut b = board(MemoryStore::default(), Mode::Operational);
    let (secret, _) = secret_key(0x32);
    let r = b.handle(Request::ImportKey {
        curve: Curve::Ed25519,
        secret,
        policy: Policy::default(),
    });
    assert_eq!(r, Response::Refused(Refusal::ProvisioningOnly));
    let events = all(&mut b, 0);
    assert_eq!(
        events[0].what,
        EventKind::Boot {
            mode: Mode::Operational
        }
    );
    assert_eq!(
        events.last().map(|e| e.what),
        Some(EventKind::Refused {
            key: None,
            reason: Refusal::ProvisioningOnly
        })
    );
}

#[test]
fn the_ring_is_bounded_and_counts_what_a_reader_lost() {
    let mut b = board(MemoryStore::default(), Mode::Operational);
    let unknown = PublicKeyHash::from_b58("tz1VSUr8wwNhLAzempoch5d6hLRiTh8Cjcjb").expect("tz1");
    // 2 boot events, then 3 rings' worth of refusals.
    let total = 2 + 3 * RING;
    for _ in 2..total {
        let _ = b.handle(Request::PublicKey { pkh: unknown });
    }
    let p = page(&mut b, 0);
    assert_eq!(p.next, total + 1);
    let oldest = total + 1 - RING;
    assert_eq!(p.events[0].seq, oldest, "the ring keeps the newest");
    assert_eq!(p.dropped, oldest - 1, "everything before the oldest kept");
    assert_eq!(page(&mut b, oldest - 1).dropped, 0);
    assert_eq!(page(&mut b, oldest - 2).dropped, 1);
    let kept = all(&mut b, 0);
    assert_eq!(kept.len(), EVENT_RING);
    assert!(kept.windows(2).all(|w| w[1].seq == w[0].seq + 1));
    // A reader past the end (a board that restarted) loses nothing it could count.
    let p = page(&mut b, total + 50);
    assert_eq!((p.events.len(), p.dropped), (0, 0));
    // The boot tag is the same for every read of one boot.
    assert_eq!(page(&mut b, 0).boot, page(&mut b, 5).boot);
}

#[test]
fn bad_frames_are_logged_without_their_bytes() {
    let mut b = board(MemoryStore::default(), Mode::Operational);
    let mut garbage = [0x55u8, 0x12, 0x34, 0x00];
    let mut out = [0u8; 4096];
    b.handle_frame(&mut garbage, &mut out).expect("answer");
    let events = all(&mut b, 0);
    assert!(
        matches!(
            events.last().map(|e| e.what),
            Some(EventKind::Refused {
                key: None,
                reason: Refusal::Frame(_)
            })
        ),
        "{events:?}"
    );
}

#[test]
fn flash_erases_are_logged_from_requests_and_idle_time() {
    const PAGES: usize = 8;
    const PAGES_U32: u32 = 8;
    let mut b = boot(SimFlash::new(PAGES), PAGES, 16, SharedGuard::default());
    let (_, sk) = secret_key(0x61);
    let (pkh, _) = import(&mut b, &sk, Policy::default());
    let mut level = 1_000;
    while b.store().wear().pages_erased < 2 * PAGES_U32 {
        while b.idle().expect("idle") {}
        level += 100;
        sign(&mut b, &pkh, &attestation(CHAINS[0], level, 0, 1)).expect("signs");
    }
    let erased = b.store().wear().pages_erased;
    // The ring holds only the newest events: count erases since the oldest one it holds.
    let events = all(&mut b, 0);
    let logged: u32 = events
        .iter()
        .map(|e| match e.what {
            EventKind::Erased { pages } => pages,
            _ => 0,
        })
        .sum();
    assert!(logged > 0, "no erase logged: {events:?}");
    assert!(logged <= erased);
    let p = page(&mut b, 0);
    if p.dropped == 0 {
        assert_eq!(logged, erased, "every erase logged");
    }
}

#[test]
fn button_waits_are_logged_with_their_outcome() {
    use support::board::SharedButton;
    let button = SharedButton::default();
    let mut b = pawl_core::board::Board::open(
        MemoryStore::default(),
        support::board::TestEntropy(3),
        button.clone(),
        Mode::Provisioning,
        support::board::INFO,
    );
    let (_, sk) = secret_key(0x41);
    use pawl_core::request::KindSet;
    use pawl_core::request::RequestKind;
    let policy = Policy {
        kinds: KindSet::CONSENSUS.with(RequestKind::Michelson),
        confirm: KindSet::EMPTY.with(RequestKind::Michelson),
        ..Policy::default()
    };
    let (pkh, _) = import(&mut b, &sk, policy);
    let pack = support::unhex("050a00000016000032041dca76bac940b478aae673e362bd15847ed8");
    assert_eq!(sign(&mut b, &pkh, &pack), Err(Refusal::NotConfirmed));
    let events = all(&mut b, 0);
    assert!(
        events.iter().any(|e| e.what
            == EventKind::ConfirmWait {
                key: pkh,
                kind: RequestKind::Michelson,
                confirmed: false
            }),
        "{events:?}"
    );
    assert_eq!(button.asked.get(), 1);
}

/// Every event page of `b` as the board sends it (the encoded response frames).
fn page_frames(b: &mut support::board::TestBoard) -> Vec<Vec<u8>> {
    let mut after = 0;
    let mut frames = Vec::new();
    loop {
        let mut request = [0u8; 64];
        let mut scratch = [0u8; 64];
        let n = pawl_core::protocol::encode_frame(
            7,
            &Request::Events(EventsRequest::Since { after }),
            &mut scratch,
            &mut request,
        )
        .expect("encode");
        let mut out = [0u8; 8192];
        let m = b.handle_frame(&mut request[..n], &mut out).expect("answer");
        frames.push(out[..m].to_vec());
        match page(b, after).events.last() {
            Some(e) => after = e.seq,
            None => return frames,
        }
    }
}

/// Whether any 8 consecutive bytes of `needle` occur in `hay`, or in its COBS-decoded body.
fn carries(hay: &[u8], needle: &[u8]) -> bool {
    let mut decoded = hay.to_vec();
    let body = cobs::decode_in_place(&mut decoded).map(|n| decoded[..n].to_vec());
    let found = |h: &[u8]| h.windows(8).any(|w| needle.windows(8).any(|x| x == w));
    found(hay) || body.is_ok_and(|b| found(&b))
}

#[test]
fn no_event_page_carries_a_secret_the_host_sent() {
    let mut b = board(MemoryStore::default(), Mode::Provisioning);
    let raw = [0x5au8; 32];
    let sk = SecretBytes::new(raw).to_b58(Curve::Ed25519).to_string();
    let (pkh, _) = import(&mut b, &sk, Policy::default());
    // Refused imports of the same secret (the key is there), an HSM credential with the same
    // bytes, a sign of bytes like the secret's.
    for _ in 0..3 {
        let r = b.handle(Request::ImportKey {
            curve: Curve::Ed25519,
            secret: SecretBytes::new(raw),
            policy: Policy::default(),
        });
        assert_eq!(r, Response::Refused(Refusal::KeyExists { pkh }));
    }
    let _ = b.handle(Request::YubiHsmSetup {
        auth_key_id: 2,
        keys: SecretBytes::new(raw),
    });
    let _ = sign(
        &mut b,
        &pkh,
        &[0x13, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a],
    );
    let mut frames = page_frames(&mut b);
    // The scan sees what events do carry: the key's hash, in the KeyExists refusals.
    assert!(
        frames.iter().any(|f| carries(f, &pkh.to_bytes()[1..])),
        "the scan must see the key hash the events carry"
    );
    let mut b = board(b.into_store(), Mode::Operational);
    let _ = b.handle(Request::ImportKey {
        curve: Curve::Ed25519,
        secret: SecretBytes::new(raw),
        policy: Policy::default(),
    });
    frames.extend(page_frames(&mut b));
    for f in &frames {
        assert!(!carries(f, &raw), "an event page carries secret bytes");
        assert!(!String::from_utf8_lossy(f).contains(&sk[..12]));
    }
}
