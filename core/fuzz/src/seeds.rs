//! The seed corpora of `core/fuzz/seeds/` (written by `cargo run --bin seedgen`): real
//! frames, real flash images made by the store, and board scripts that reach signing,
//! reboots and the operator's acts. `seeds/request/` holds the upstream payloads of
//! `core/tests/requests.rs` (Octez, Signatory, gotez, Taquito), copied as bytes; the frame
//! and board seeds are built around them.

use std::cell::Cell;
use std::rc::Rc;

use pawl_core::board::Board;
use pawl_core::keys::{Curve, PublicKeyHash, SecretBytes, Signature, SigningVersion};
use pawl_core::protocol::{
    MAX_BODY, MAX_FRAME, Mode, Request, Response, Status, StoreHealth, encode_frame,
};
use pawl_core::request::ChainId;
use pawl_core::sim::SimFlash;
use pawl_core::store::WearCounters;
use pawl_core::watermark::MarkKind;
use serde::Serialize;

use crate::board::{Button, allow_all};
use crate::store::{FixedEntropy, Guard, INFO, PAGES, open_store};

/// A named seed.
pub type Seed = (String, Vec<u8>);

fn frame<M: Serialize>(id: u32, message: &M) -> Vec<u8> {
    let mut scratch = vec![0u8; MAX_BODY + 64];
    let mut out = vec![0u8; MAX_FRAME + 64];
    let n = encode_frame(id, message, &mut scratch, &mut out).expect("seed fits a frame");
    out.truncate(n);
    out
}

fn body<M: Serialize>(id: u32, message: &M) -> Vec<u8> {
    let mut buf = vec![0u8; MAX_BODY + 64];
    let envelope = pawl_core::protocol::Envelope { id, message };
    postcard::to_slice(&envelope, &mut buf)
        .expect("seed fits a body")
        .to_vec()
}

const TZ1: PublicKeyHash = PublicKeyHash {
    curve: Curve::Ed25519,
    hash: [0x5a; 20],
};

/// Frames both ways, and bodies, around the upstream payloads in `request`.
pub fn frame_seeds(requests: &[Seed]) -> Vec<Seed> {
    let mut seeds = Vec::new();
    for (i, (name, payload)) in requests.iter().enumerate() {
        let id = u32::try_from(i).expect("few") + 1;
        seeds.push((
            format!("sign_{name}"),
            frame(
                id,
                &Request::Sign {
                    pkh: TZ1,
                    version: SigningVersion::LATEST,
                    payload,
                },
            ),
        ));
    }
    seeds.push(("hello".into(), frame(1, &Request::Hello { protocol: 1 })));
    seeds.push(("list_keys".into(), frame(2, &Request::ListKeys)));
    seeds.push((
        "import_watermark".into(),
        frame(
            3,
            &Request::ImportWatermark {
                chain: ChainId::MAINNET,
                pkh: TZ1,
                kind: MarkKind::Attestation,
                level: 5_000_000,
                round: 1,
            },
        ),
    ));
    seeds.push((
        "generate_key".into(),
        frame(
            4,
            &Request::GenerateKey {
                curve: Curve::Bls12_381,
                policy: allow_all(),
            },
        ),
    ));
    seeds.push((
        "import_key".into(),
        frame(
            5,
            &Request::ImportKey {
                curve: Curve::P256,
                secret: SecretBytes::new([0x33; 32]),
                policy: allow_all(),
            },
        ),
    ));
    seeds.push((
        "hsm_reply".into(),
        frame(
            6,
            &Request::HsmReply {
                sealed: &[0x85, 0, 3, 1, 2, 3],
            },
        ),
    ));
    seeds.push((
        "response_signature".into(),
        frame(7, &Response::Signature(Signature::Ed25519([0x11; 64]))),
    ));
    seeds.push((
        "response_status".into(),
        frame(
            8,
            &Response::Status(Status {
                mode: Mode::Operational,
                keys: 3,
                marks: 9,
                mark_capacity: 64,
                signatures: 100,
                refusals: 2,
                mark_writes: 7,
                store: StoreHealth::Ok,
                wear: WearCounters::default(),
                epoch: None,
            }),
        ),
    ));
    // Two frames in one stream, with a stray zero and garbage between them.
    let mut stream = frame(9, &Request::Status);
    stream.extend_from_slice(&[0, 0x41, 0x42, 0]);
    stream.extend(frame(10, &Request::ExportWatermarks { start: 0 }));
    seeds.push(("stream_two_frames".into(), stream));
    // Bare postcard bodies (the target also wraps every input in a valid CRC).
    seeds.push((
        "body_hello".into(),
        body(11, &Request::Hello { protocol: 1 }),
    ));
    if let Some((_, payload)) = requests.iter().find(|(n, _)| n == "c3") {
        seeds.push((
            "body_sign_c3".into(),
            body(
                12,
                &Request::Sign {
                    pkh: TZ1,
                    version: SigningVersion::LATEST,
                    payload,
                },
            ),
        ));
    }
    seeds
}

/// An attestation (tag 21) at `level`/`round` on mainnet.
fn attestation(level: u32, round: u32, fill: u8) -> Vec<u8> {
    let mut v = vec![0x13];
    v.extend_from_slice(&ChainId::MAINNET.0);
    v.extend_from_slice(&[0xaa; 32]);
    v.push(21);
    v.extend_from_slice(&7u16.to_be_bytes());
    v.extend_from_slice(&level.to_be_bytes());
    v.extend_from_slice(&round.to_be_bytes());
    v.extend_from_slice(&[fill; 32]);
    v
}

type SeedBoard = Board<crate::store::FuzzStore, FixedEntropy, Button>;

fn trimmed(image: &[u8]) -> Vec<u8> {
    let end = image.iter().rposition(|b| *b != 0xFF).map_or(0, |i| i + 1);
    image[..end].to_vec()
}

/// Flash images made by the store itself (4 pages, board key `[7; 32]`), trailing erased
/// bytes trimmed (the target pads them back).
pub fn store_seeds() -> Vec<Seed> {
    let guard = Guard::default();
    let press = Button(Rc::new(Cell::new(true)));
    let store = open_store(SimFlash::new(PAGES), PAGES, guard.clone());
    let mut board = Board::open(store, FixedEntropy(9), press, Mode::Provisioning, INFO);
    let mut seeds = Vec::new();
    seeds.push(("empty".to_string(), Vec::new()));
    let mut keys = Vec::new();
    for (curve, byte) in [(Curve::Ed25519, 0x11), (Curve::Bls12_381, 0x44)] {
        match board.handle(Request::ImportKey {
            curve,
            secret: SecretBytes::new([byte; 32]),
            policy: allow_all(),
        }) {
            Response::KeyInfo(info) => keys.push(info.pkh),
            other => panic!("seed import: {other:?}"),
        }
    }
    let image = |board: SeedBoard| board.into_store().into_flash();
    let reopen = |flash: SimFlash, guard: &Guard| {
        let store = open_store(
            SimFlash::from_image(flash.image().to_vec()),
            PAGES,
            guard.clone(),
        );
        Board::open(
            store,
            FixedEntropy(9),
            Button(Rc::new(Cell::new(true))),
            Mode::Provisioning,
            INFO,
        )
    };
    let flash = image(board);
    seeds.push(("two_keys".into(), trimmed(flash.image())));
    let mut board = reopen(flash, &guard);
    let sign = |board: &mut SeedBoard, pkh: PublicKeyHash, level: u32| {
        let payload = attestation(level, 0, 1);
        let _ = board.handle(Request::Sign {
            pkh,
            version: SigningVersion::LATEST,
            payload: &payload,
        });
    };
    for level in 1..=3 {
        sign(&mut board, keys[0], level);
    }
    let flash = image(board);
    seeds.push(("keys_and_marks".into(), trimmed(flash.image())));
    let mut board = reopen(flash, &guard);
    let _ = board.handle(Request::LowerWatermark {
        chain: ChainId::MAINNET,
        pkh: keys[0],
        kind: MarkKind::Attestation,
        level: 1,
        round: 0,
    });
    let _ = board.handle(Request::ForgetWatermarks { pkh: keys[0] });
    let flash = image(board);
    seeds.push(("lowered_and_forgotten".into(), trimmed(flash.image())));
    let mut board = reopen(flash, &guard);
    // Enough ceilings to fill the pages and make the store reclaim one.
    for i in 0..400u32 {
        sign(&mut board, keys[0], 100 + 17 * i);
    }
    let flash = image(board);
    seeds.push(("reclaimed".into(), trimmed(flash.image())));
    seeds
}

/// Builds a board script (the byte language of [`crate::board::run`]).
struct Script(Vec<u8>);

impl Script {
    fn new(operational: bool) -> Self {
        Script(vec![u8::from(operational)])
    }
    /// Op 0: sign an attestation (tag 21, or 41 for tz4) on mainnet with key `key`.
    fn attest(mut self, key: u8, level: u8, round: u8, fill: u8, bls: bool) -> Self {
        let tag = if bls { 4 } else { 1 };
        self.0
            .extend_from_slice(&[0, key, 3, 2, 0, level, round, tag, fill]);
        self
    }
    /// Op 0: sign a block with key `key`.
    fn block(mut self, key: u8, level: u8, round: u8, fill: u8) -> Self {
        self.0
            .extend_from_slice(&[0, key, 3, 0, 0, level, round, fill, 0, 0, 0]);
        self
    }
    /// Op 4: the last sign again.
    fn again(mut self) -> Self {
        self.0.extend_from_slice(&[4, 0]);
        self
    }
    /// Op 9: reboot, with a power cut before flash step `cut`.
    fn reboot(mut self, operational: bool, cut: Option<u16>) -> Self {
        self.0.extend_from_slice(&[9, u8::from(operational)]);
        match cut {
            Some(at) => {
                self.0.push(0);
                self.0.extend_from_slice(&at.to_be_bytes());
                self.0.push(1);
            }
            None => self.0.push(0xff),
        }
        self
    }
    /// Op 10: idle.
    fn idle(mut self) -> Self {
        self.0.push(10);
        self
    }
    /// Op 11: the button.
    fn button(mut self, pressed: bool) -> Self {
        self.0.extend_from_slice(&[11, u8::from(pressed)]);
        self
    }
    /// Op 12: `secs` seconds pass on the board's clock.
    fn wait(mut self, secs: u16) -> Self {
        self.0.extend_from_slice(&[12, 0]);
        self.0.extend_from_slice(&secs.to_be_bytes());
        self
    }
    /// Op 5: a structured request (`sub` as in `board::request`), then its argument bytes.
    fn request(mut self, sub: u8, args: &[u8]) -> Self {
        self.0.push(5);
        self.0.push(sub);
        self.0.extend_from_slice(args);
        self
    }
    /// Op 7: a postcard body behind a valid CRC.
    fn body(mut self, body: &[u8]) -> Self {
        self.0.push(7);
        let len = u16::try_from(body.len()).expect("short");
        self.0.extend_from_slice(&len.to_be_bytes());
        self.0.extend_from_slice(body);
        self
    }
    /// Op 8: raw bytes on the wire.
    fn wire(mut self, bytes: &[u8]) -> Self {
        self.0.push(8);
        let len = u16::try_from(bytes.len()).expect("short");
        self.0.extend_from_slice(&len.to_be_bytes());
        self.0.extend_from_slice(bytes);
        self
    }
}

/// Board scripts: signing with every key, retries, reboots, a power cut, the operator's
/// acts, host-held approval, raw frames, time passing for the write budget.
pub fn board_seeds() -> Vec<Seed> {
    let hello = body(1, &Request::Hello { protocol: 1 });
    vec![
        (
            "operational_sign_retry_reboot".into(),
            Script::new(true)
                .attest(0, 5, 0, 1, false)
                .again()
                .attest(0, 5, 0, 2, false)
                .reboot(true, None)
                .attest(0, 5, 0, 1, false)
                .attest(0, 30, 0, 1, false)
                .idle()
                .0,
        ),
        (
            "every_key".into(),
            Script::new(true)
                .attest(0, 7, 0, 1, false)
                .attest(1, 7, 0, 1, false)
                .attest(2, 7, 0, 1, false)
                .attest(3, 7, 0, 1, true)
                .wait(600)
                .block(0, 8, 1, 3)
                .block(4, 8, 0, 3)
                .button(true)
                .block(4, 9, 0, 3)
                .attest(5, 7, 0, 1, false)
                .0,
        ),
        (
            "power_cut".into(),
            Script::new(true)
                .reboot(true, Some(3))
                .attest(1, 10, 0, 1, false)
                .attest(1, 11, 0, 1, false)
                .reboot(true, None)
                .attest(1, 11, 0, 2, false)
                .attest(1, 40, 0, 2, false)
                .0,
        ),
        (
            "operator_acts".into(),
            Script::new(false)
                .attest(0, 9, 0, 1, false)
                // ImportWatermark mainnet key0 attestation level 20 round 0
                .request(6, &[0, 0, 2, 20, 0])
                .button(true)
                // LowerWatermark mainnet key0 attestation level 1 round 0
                .request(7, &[0, 0, 2, 1, 0])
                .attest(0, 9, 0, 2, false)
                // ForgetWatermarks key0
                .request(8, &[0])
                // Reprovision, erase
                .request(10, &[1])
                .reboot(true, None)
                .0,
        ),
        (
            "provisioning_keys_and_policy".into(),
            Script::new(false)
                // GenerateKey tz4, policy bits 0x1f
                .request(14, &[3, 0x1f])
                .attest(6, 3, 0, 1, true)
                // SetPolicy key0 consensus + pinned chain 1 ([0x10,0,0,1])
                .request(9, &[0, 0x47, 2])
                .attest(0, 3, 0, 1, false)
                // SetJumpLimit key1 Some(2)
                .request(12, &[1, 1, 2])
                .attest(1, 1, 0, 1, false)
                .attest(1, 9, 0, 1, false)
                .0,
        ),
        (
            "host_held_and_frames".into(),
            Script::new(true)
                .attest(5, 4, 0, 1, false)
                // HostSignature for the host key, a bad signature
                .request(11, &[[5].as_slice(), &[0x77; 64]].concat())
                .body(&hello)
                .wire(&frame(3, &Request::Status))
                .request(3, &[0])
                .0,
        ),
    ]
}
