//! Target `board`: a script of frames, reboots, power cuts, button presses and the passing of
//! time against one board on the simulated NOR flash under a write budget (`Budgeted`, as
//! every board runs it, with a tighter budget), with the hostile-host fuzzer's core invariants checked
//! after every step (`core/tests/hostile.rs` checks more, with a random driver; this is the
//! coverage-guided counterpart, small enough to run a few hundred scripts a second):
//!
//! 1. the board never panics, and answers every frame with one frame that decodes;
//! 2. never two different payloads released (`Signature`) or approved (`DigestApproved`,
//!    `RelayToHsm`) at one (chain, key, kind, level, round), read at Octez's fixed offsets
//!    from the payload sent, across reboots and power cuts — except after the operator's own
//!    acts in provisioning mode (an erase, a lowered or forgotten mark), which start that
//!    key's history again;
//! 3. in operational mode no mark is lowered or dropped, by a request or by a reboot (unless
//!    the store refuses, when the board signs nothing at all).

use std::cell::Cell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::OnceLock;

use pawl_core::board::{Board, Presence};
use pawl_core::digest::blake2b_256;
use pawl_core::keys::{
    Curve, KeyPair, PublicKey, PublicKeyHash, SecretBytes, Signature, SigningVersion, TezosSigner,
};
use pawl_core::policy::{BallotSet, Policy};
use pawl_core::protocol::{
    Fed, FrameAccumulator, MAX_BODY, MAX_FRAME, Mode, Request, Response, StoreHealth, decode_frame,
    encode_frame,
};
use pawl_core::request::{ChainId, KindSet, OpKind, OpKindSet, RequestKind};
use pawl_core::sim::SimFlash;
use pawl_core::store::{Budgeted, Clock, WriteBudget};
use pawl_core::watermark::{MarkId, MarkKind};

use crate::input::Input;
use crate::store::{FixedEntropy, FuzzStore, Guard, INFO, open_store};

/// Flash pages of the board's store (few, so page reclaim comes soon).
pub const PAGES: usize = 8;
/// Steps per input at most (keeps every input well under AFL's time limit).
pub const MAX_STEPS: usize = 64;

/// A button the script presses or not.
#[derive(Clone, Default)]
pub struct Button(pub Rc<Cell<bool>>);

impl Presence for Button {
    fn confirm(&mut self, _: &PublicKeyHash, _: RequestKind) -> bool {
        self.0.get()
    }
}

/// The board's clock: the script moves it (a new one at every boot, as on a board).
#[derive(Clone, Default)]
pub struct ScriptClock(pub Rc<Cell<u64>>);

impl Clock for ScriptClock {
    fn now_ms(&mut self) -> u64 {
        self.0.get()
    }
}

/// A tight write budget (the default is 1,620 records an hour, 96 at once), so that a
/// script meets it often.
pub const BUDGET: WriteBudget = WriteBudget {
    records_per_hour: 720,
    capacity: 16,
    idle_reserve: 8,
};

type FStore = Budgeted<FuzzStore, ScriptClock>;
type FBoard = Board<FStore, FixedEntropy, Button>;

/// A policy that allows every request kind and operation on any chain.
pub fn allow_all() -> Policy {
    let mut policy = Policy::default();
    for kind in RequestKind::ALL {
        policy.kinds = policy.kinds.with(kind);
    }
    policy.ops = OpKind::ALL
        .iter()
        .fold(OpKindSet::EMPTY, |set, k| set.with(*k));
    policy
}

/// The provisioned board every input starts from.
pub struct Setup {
    /// Its flash image.
    pub image: Vec<u8>,
    /// The rollback counter's value.
    pub seq: u32,
    /// Its keys: tz1, tz2, tz3, tz4 allowing everything, a tz1 pinned to mainnet that
    /// confirms blocks on the button, and a host-held tz2.
    pub keys: Vec<PublicKeyHash>,
}

/// Secrets of the on-board keys (fixed, so a crash replays).
const SECRETS: [(Curve, u8); 4] = [
    (Curve::Ed25519, 0x11),
    (Curve::Secp256k1, 0x22),
    (Curve::P256, 0x33),
    (Curve::Bls12_381, 0x44),
];

fn key_info(response: Response) -> PublicKeyHash {
    match response {
        Response::KeyInfo(info) => info.pkh,
        other => panic!("setup: {other:?}"),
    }
}

/// The board of [`Setup`], provisioned once per process.
pub fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let guard = Guard::default();
        let store = open_store(SimFlash::new(PAGES), PAGES, guard.clone());
        let mut board = Board::open(
            store,
            FixedEntropy(3),
            Button::default(),
            Mode::Provisioning,
            INFO,
        );
        let mut keys = Vec::new();
        for (curve, byte) in SECRETS {
            keys.push(key_info(board.handle(Request::ImportKey {
                curve,
                secret: SecretBytes::new([byte; 32]),
                policy: allow_all(),
            })));
        }
        let mut pinned = Policy::default();
        pinned.chains.push(ChainId::MAINNET).expect("room");
        pinned.confirm = KindSet::EMPTY.with(RequestKind::Block);
        keys.push(key_info(board.handle(Request::ImportKey {
            curve: Curve::Ed25519,
            secret: SecretBytes::new([0x55; 32]),
            policy: pinned,
        })));
        let host =
            KeyPair::from_secret(Curve::Secp256k1, &SecretBytes::new([0x66; 32])).expect("secret");
        keys.push(key_info(board.handle(Request::RegisterHostKey {
            public_key: *host.public_key(),
            policy: allow_all(),
        })));
        let image = board.into_store().into_flash().image().to_vec();
        Setup {
            image,
            seq: guard.0.get(),
            keys,
        }
    })
}

/// (chain, key, magic, level, round).
type Pos = ([u8; 4], PublicKeyHash, u8, u32, u32);

/// What a frame sent was, as the board must have read it.
enum Sent {
    Sign {
        pkh: PublicKeyHash,
        payload: Vec<u8>,
    },
    /// Lowering or forgetting marks, re-provisioning: the operator's acts.
    Operator {
        pkh: Option<PublicKeyHash>,
        erase: bool,
    },
    Other,
    Unreadable,
}

fn sent_of(frame: &[u8]) -> Sent {
    let mut copy = frame.to_vec();
    let Ok(envelope) = decode_frame::<Request<'_>>(&mut copy) else {
        return Sent::Unreadable;
    };
    match envelope.message {
        Request::Sign { pkh, payload, .. } => Sent::Sign {
            pkh,
            payload: payload.to_vec(),
        },
        Request::LowerWatermark { pkh, .. } | Request::ForgetWatermarks { pkh } => Sent::Operator {
            pkh: Some(pkh),
            erase: false,
        },
        Request::Reprovision { erase } => Sent::Operator { pkh: None, erase },
        _ => Sent::Other,
    }
}

type Marks = Vec<(MarkId, (u32, u32))>;

/// `PAWL_FUZZ_TRACE=1`: print every frame's answer (for reading a reproducer).
fn trace() -> bool {
    static TRACE: OnceLock<bool> = OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("PAWL_FUZZ_TRACE").is_some())
}

fn describe(sent: &Sent) -> String {
    match sent {
        Sent::Sign { pkh, payload } => format!(
            "sign {pkh:?} {:02x?}…({} bytes)",
            &payload[..payload.len().min(12)],
            payload.len()
        ),
        Sent::Operator { pkh, erase } => format!("operator act {pkh:?} erase={erase}"),
        Sent::Other => "request".into(),
        Sent::Unreadable => "unreadable frame".into(),
    }
}

struct Run {
    board: Option<FBoard>,
    guard: Guard,
    clock: ScriptClock,
    button: Button,
    mode: Mode,
    acc: Box<FrameAccumulator<MAX_FRAME>>,
    keys: Vec<PublicKeyHash>,
    releases: BTreeMap<Pos, [u8; 32]>,
    /// The operator acted since the last reboot (a reboot may then show lower marks).
    operator_touched: bool,
    last_frame: Vec<u8>,
    out: Vec<u8>,
    scratch: Vec<u8>,
}

impl Run {
    fn board(&mut self) -> &mut FBoard {
        self.board.as_mut().expect("a board is always running")
    }

    fn marks(&mut self) -> Marks {
        let mut marks: Marks = self
            .board()
            .watermarks()
            .iter()
            .map(|(id, m)| (*id, (m.level, m.round)))
            .collect();
        marks.sort();
        marks
    }

    fn healthy(&mut self) -> bool {
        match self.board().handle(Request::Status) {
            Response::Status(s) => s.store == StoreHealth::Ok,
            other => panic!("status answered {other:?}"),
        }
    }

    /// Invariant 3: in operational mode, every mark of `before` is still there, as high.
    fn check_marks(&mut self, before: &Marks, what: &str) {
        if self.mode != Mode::Operational {
            return;
        }
        let after = self.marks();
        for (id, pos) in before {
            let now = after.iter().find(|(m, _)| m == id).map(|(_, p)| *p);
            if now.is_none_or(|now| now < *pos) && self.healthy() {
                panic!("operational mode: mark {id:?} went from {pos:?} to {now:?} ({what})");
            }
        }
    }

    fn reboot(&mut self, mode: Mode, cut: Option<(u64, bool)>) {
        let before = self.marks();
        let touched = std::mem::take(&mut self.operator_touched);
        let flash = self
            .board
            .take()
            .expect("a board is always running")
            .into_store()
            .into_inner()
            .into_flash();
        let mut flash = SimFlash::from_image(flash.image().to_vec());
        if let Some((at, torn)) = cut {
            flash.cut_after(at, torn);
        }
        self.clock = ScriptClock::default();
        let store = Budgeted::new(
            open_store(flash, PAGES, self.guard.clone()),
            self.clock.clone(),
            BUDGET,
        );
        self.board = Some(Board::open(
            store,
            FixedEntropy(5),
            self.button.clone(),
            mode,
            INFO,
        ));
        self.mode = mode;
        *self.acc = FrameAccumulator::new();
        if trace() {
            eprintln!("  reboot {mode:?} cut {cut:?}");
        }
        if !touched {
            self.check_marks(&before, "reboot");
        }
    }

    /// Send one frame (as bytes on the wire, zero included or not) and check the answer.
    fn send(&mut self, frame: &mut [u8]) {
        let sent = sent_of(frame);
        let before = self.marks();
        let n = {
            let board = self.board.as_mut().expect("a board is always running");
            board.handle_frame(frame, &mut self.out)
        }
        .expect("the board answers every frame with a frame");
        let mut answer = self.out[..n].to_vec();
        let response = decode_frame::<Response>(&mut answer)
            .expect("the board's answer decodes")
            .message;
        if trace() {
            eprintln!("  {} → {response:?}", describe(&sent));
        }
        if let Response::KeyInfo(info) = &response
            && !self.keys.contains(&info.pkh)
        {
            self.keys.push(info.pkh);
        }
        match sent {
            Sent::Sign { pkh, payload } => {
                let released = matches!(
                    response,
                    Response::Signature(_)
                        | Response::DigestApproved { .. }
                        | Response::RelayToHsm { .. }
                );
                if released {
                    self.released(pkh, &payload);
                }
            }
            Sent::Operator { pkh, erase } => {
                // In provisioning mode the act may have happened even when the answer says
                // otherwise (a power cut after the write): that key's history starts again.
                self.operator_touched = true;
                if self.mode == Mode::Provisioning {
                    match pkh {
                        Some(pkh) => self.releases.retain(|pos, _| pos.1 != pkh),
                        None if erase => self.releases.clear(),
                        None => {}
                    }
                }
            }
            Sent::Other | Sent::Unreadable => {}
        }
        self.check_marks(&before, "frame");
    }

    /// Invariant 2 for one released or approved payload.
    fn released(&mut self, pkh: PublicKeyHash, payload: &[u8]) {
        let tz4 = pkh.curve == Curve::Bls12_381;
        let Some((chain, magic, level, round)) = crate::octez_position(payload, tz4) else {
            return;
        };
        let hash = blake2b_256(payload);
        let pos = (chain, pkh, magic, level, round);
        if let Some(old) = self.releases.insert(pos, hash) {
            assert!(
                old == hash,
                "two different payloads released at {pos:?}: {old:02x?} then {hash:02x?}"
            );
        }
    }

    fn encode(&mut self, id: u32, request: &Request<'_>) -> Vec<u8> {
        let n = encode_frame(id, request, &mut self.scratch, &mut self.out)
            .expect("a scripted request fits a frame");
        self.out[..n].to_vec()
    }

    fn pkh(&self, input: &mut Input<'_>) -> PublicKeyHash {
        let i = usize::from(input.u8());
        match self.keys.get(i % (self.keys.len() + 1)) {
            Some(pkh) => *pkh,
            None => PublicKeyHash::from_bytes(&input.array::<21>()).unwrap_or(PublicKeyHash {
                curve: Curve::Ed25519,
                hash: [0; 20],
            }),
        }
    }
}

fn chain(input: &mut Input<'_>) -> [u8; 4] {
    match input.u8() % 4 {
        0 | 1 => ChainId::MAINNET.0,
        2 => [0x10, 0, 0, 1],
        _ => input.array(),
    }
}

/// A level or round: mostly small (so positions collide), sometimes any u32.
fn number(input: &mut Input<'_>) -> u32 {
    let b = input.u8();
    if b >= 0xf0 { input.u32() } else { u32::from(b) }
}

fn mark_kind(input: &mut Input<'_>) -> MarkKind {
    match input.u8() % 3 {
        0 => MarkKind::Block,
        1 => MarkKind::Preattestation,
        _ => MarkKind::Attestation,
    }
}

/// A Tenderbake block header (`docs/protocol.md` §3.1).
fn block(input: &mut Input<'_>, chain: [u8; 4], level: u32, round: u32) -> Vec<u8> {
    let fill = input.u8();
    let mut v = vec![0x11];
    v.extend_from_slice(&chain);
    v.extend_from_slice(&level.to_be_bytes());
    v.push(2); // proto level
    v.extend_from_slice(&[fill; 32]); // predecessor
    v.extend_from_slice(&1_700_000_000u64.to_be_bytes());
    v.push(4); // validation passes
    v.extend_from_slice(&[0x22; 32]); // operations hash
    let mut fitness = Vec::new();
    let mut element = |bytes: &[u8]| {
        let len = u32::try_from(bytes.len()).expect("short");
        fitness.extend_from_slice(&len.to_be_bytes());
        fitness.extend_from_slice(bytes);
    };
    element(&[2]);
    element(&level.to_be_bytes());
    if input.bit() {
        element(&round.saturating_sub(1).to_be_bytes());
    } else {
        element(&[]);
    }
    element(&0u32.to_be_bytes());
    element(&round.to_be_bytes());
    let len = u32::try_from(fitness.len()).expect("short");
    v.extend_from_slice(&len.to_be_bytes());
    v.extend(fitness);
    v.extend_from_slice(&[0x33; 64]); // context, payload hash
    v.extend_from_slice(&round.to_be_bytes()); // payload round
    v.extend_from_slice(&[0; 8]); // proof-of-work nonce
    if input.bit() {
        v.push(0xff);
        v.extend_from_slice(&[0x44; 32]);
    } else {
        v.push(0);
    }
    v.push(input.u8() % 3); // per-block votes
    v
}

/// A (pre)attestation (`docs/protocol.md` §3.2–3.3).
fn consensus(input: &mut Input<'_>, magic: u8, chain: [u8; 4], level: u32, round: u32) -> Vec<u8> {
    let tag = match input.u8() % 6 {
        0 => 20,
        1 => 21,
        2 => 23,
        3 => 40,
        4 => 41,
        _ => input.u8(),
    };
    let fill = input.u8();
    let mut v = vec![magic];
    v.extend_from_slice(&chain);
    v.extend_from_slice(&[0xaa; 32]); // branch
    v.push(tag);
    if tag != 40 && tag != 41 {
        v.extend_from_slice(&7u16.to_be_bytes()); // slot
    }
    v.extend_from_slice(&level.to_be_bytes());
    v.extend_from_slice(&round.to_be_bytes());
    v.extend_from_slice(&[fill; 32]); // block payload hash
    if tag == 23 {
        v.extend_from_slice(input.short()); // DAL bit set (a Zarith number, or not)
    }
    v
}

/// Upstream generic operations (`core/tests/requests.rs`).
const GENERIC: [&str; 2] = [
    "03573a2d2d49a3b9634d1605c3aa48ebdd5d21a5885ad17aa44c2b1d0dbcbcac686c004b415314d2b56b0481a3ae8c992ce8bb8dba0369d086039ecb2dc35000c0843d000076b2f1ea1cf6753888ac5488693977446652d79e00",
    "03b89591b37be370e3db3fc7f77fdd176c5153f75ddcd239094c7ebeb66ee5e8bd6e002ea14368f6494539861ba04cf8cc946ace12cfd4ea09d89f40f44e00ff004b415314d2b56b0481a3ae8c992ce8bb8dba0369",
];

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn payload(input: &mut Input<'_>) -> Vec<u8> {
    match input.u8() % 8 {
        0 | 1 => {
            let (c, l, r) = (chain(input), number(input), number(input));
            block(input, c, l, r)
        }
        2 | 3 => {
            let (c, l, r) = (chain(input), number(input), number(input));
            consensus(input, 0x13, c, l, r)
        }
        4 => {
            let (c, l, r) = (chain(input), number(input), number(input));
            consensus(input, 0x12, c, l, r)
        }
        5 => {
            let mut v = unhex(GENERIC[usize::from(input.u8() % 2)]);
            v[1] = input.u8(); // branch
            v
        }
        6 => {
            let mut v = vec![0x05];
            v.extend_from_slice(input.short());
            v
        }
        _ => input.long(MAX_BODY).to_vec(),
    }
}

fn policy(input: &mut Input<'_>) -> Policy {
    let bits = input.u8();
    let mut policy = Policy {
        kinds: KindSet::EMPTY,
        ..Policy::default()
    };
    for (i, kind) in RequestKind::ALL.into_iter().enumerate() {
        if bits & (1 << i) != 0 {
            policy.kinds = policy.kinds.with(kind);
        }
    }
    if bits & 0x20 != 0 {
        policy.ops = allow_all().ops;
    }
    if bits & 0x40 != 0 {
        let _ = policy.chains.push(ChainId(chain(input)));
    }
    if bits & 0x80 != 0 {
        policy.confirm = KindSet::EMPTY.with(RequestKind::Block);
        policy.ballots = BallotSet::EMPTY;
    }
    policy
}

fn curve(input: &mut Input<'_>) -> Curve {
    Curve::ALL[usize::from(input.u8() % 4)]
}

/// A structured request other than a sign.
fn request<'a>(run: &Run, input: &mut Input<'a>) -> Request<'a> {
    match input.u8() % 16 {
        0 => Request::Hello {
            protocol: input.u16(),
        },
        1 => Request::ListKeys,
        2 => Request::Status,
        3 => Request::ExportWatermarks {
            start: u16::from(input.u8()),
        },
        4 => Request::PublicKey {
            pkh: run.pkh(input),
        },
        5 => Request::ProvePossession {
            pkh: run.pkh(input),
            override_pk: if input.bit() {
                PublicKey::from_curve_bytes(Curve::Bls12_381, &input.array::<48>()).ok()
            } else {
                None
            },
        },
        6 => Request::ImportWatermark {
            chain: ChainId(chain(input)),
            pkh: run.pkh(input),
            kind: mark_kind(input),
            level: number(input),
            round: number(input),
        },
        7 => Request::LowerWatermark {
            chain: ChainId(chain(input)),
            pkh: run.pkh(input),
            kind: mark_kind(input),
            level: number(input),
            round: number(input),
        },
        8 => Request::ForgetWatermarks {
            pkh: run.pkh(input),
        },
        9 => Request::SetPolicy {
            pkh: run.pkh(input),
            policy: policy(input),
        },
        10 => Request::Reprovision { erase: input.bit() },
        11 => Request::HostSignature {
            pkh: run.pkh(input),
            signature: Signature::Secp256k1(input.array::<64>()),
        },
        12 => Request::SetJumpLimit {
            pkh: run.pkh(input),
            levels: if input.bit() {
                Some(number(input))
            } else {
                None
            },
        },
        13 => Request::AllowPossession {
            pkh: run.pkh(input),
            operational: input.bit(),
        },
        14 => Request::GenerateKey {
            curve: curve(input),
            policy: policy(input),
        },
        _ => Request::ImportKey {
            curve: curve(input),
            secret: SecretBytes::new(input.array::<32>()),
            policy: policy(input),
        },
    }
}

/// Run one input as a script.
pub fn run(data: &[u8]) {
    let setup = setup();
    let mut input = Input::new(data);
    let mode = if input.bit() {
        Mode::Operational
    } else {
        Mode::Provisioning
    };
    let guard = Guard(Rc::new(Cell::new(setup.seq)));
    let button = Button::default();
    let clock = ScriptClock::default();
    let store = Budgeted::new(
        open_store(
            SimFlash::from_image(setup.image.clone()),
            PAGES,
            guard.clone(),
        ),
        clock.clone(),
        BUDGET,
    );
    let mut run = Run {
        board: Some(Board::open(
            store,
            FixedEntropy(5),
            button.clone(),
            mode,
            INFO,
        )),
        guard,
        clock,
        button,
        mode,
        acc: Box::new(FrameAccumulator::new()),
        keys: setup.keys.clone(),
        releases: BTreeMap::new(),
        operator_touched: false,
        last_frame: Vec::new(),
        out: vec![0u8; MAX_FRAME + 64],
        scratch: vec![0u8; MAX_BODY + 64],
    };
    let mut id = 1u32;
    for _ in 0..MAX_STEPS {
        if input.is_empty() {
            break;
        }
        id = id.wrapping_add(1);
        match input.u8() % 13 {
            0..=3 => {
                let pkh = run.pkh(&mut input);
                let version = match input.u8() {
                    v @ 0..=5 => SigningVersion(v),
                    _ => SigningVersion::LATEST,
                };
                let payload = payload(&mut input);
                let mut frame = run.encode(
                    id,
                    &Request::Sign {
                        pkh,
                        version,
                        payload: &payload,
                    },
                );
                run.last_frame = frame.clone();
                run.send(&mut frame);
            }
            4 => {
                // The last sign again, maybe with one byte changed.
                let mut frame = run.last_frame.clone();
                if !frame.is_empty() && input.bit() {
                    let at = usize::from(input.u16()) % frame.len();
                    frame[at] ^= input.u8();
                }
                run.send(&mut frame);
            }
            5 | 6 => {
                let request = request(&run, &mut input);
                let mut frame = run.encode(id, &request);
                run.send(&mut frame);
            }
            7 => {
                // Any postcard body behind a valid CRC.
                let mut frame = crate::frame_of_body(input.long(MAX_BODY));
                run.send(&mut frame);
            }
            8 => {
                // Raw bytes on the wire, through the board glue's accumulator.
                let mut rest = input.long(4096);
                while !rest.is_empty() {
                    let (used, fed) = run.acc.feed(rest);
                    rest = &rest[used..];
                    if let Fed::Frame(frame) = fed {
                        let mut frame = frame.to_vec();
                        run.send(&mut frame);
                    }
                }
            }
            9 => {
                let mode = if input.bit() {
                    Mode::Operational
                } else {
                    Mode::Provisioning
                };
                let cut = if input.u8() < 64 {
                    Some((u64::from(input.u16() % 2048), input.bit()))
                } else {
                    None
                };
                run.reboot(mode, cut);
            }
            10 => {
                let before = run.marks();
                let _ = run.board().idle();
                run.check_marks(&before, "idle");
            }
            11 => run.button.0.set(input.bit()),
            _ => {
                // Time passes: up to 65 s, or up to 18 h.
                let step = if input.bit() {
                    u64::from(input.u16())
                } else {
                    u64::from(input.u16()) * 1000
                };
                let now = run.clock.0.get();
                run.clock.0.set(now.saturating_add(step));
            }
        }
    }
}
