//! The hostile host of `core/tests/hostile.rs`: one board on the simulated NOR flash, driven
//! frame by frame, with reboots, power cuts and mode switches, and the invariants checked after
//! every step (see the test's module documentation). What is sent is in `hostile_steps.rs`, the
//! checks in `hostile_checks.rs`, the helpers in `hostile.rs`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};

use pawl_core::board::{Board, Presence};
use pawl_core::keys::{Curve, PublicKey, PublicKeyHash, SecretBytes, Signature};
use pawl_core::policy::Policy;
use pawl_core::protocol::cometbft::CometRequest;
use pawl_core::protocol::selftest::SelfTestRequest;
use pawl_core::protocol::{
    Envelope, KeyInfo, MAX_FRAME, Mode, Refusal, Request, Response, StoreHealth, decode_frame,
};
use pawl_core::request::{ChainId, RequestKind};
use pawl_core::sim::SimFlash;
use pawl_core::sim::flash::PAGE;
use pawl_core::store::{BoardKey, Budgeted, NorStore, NorStoreConfig, Store, WriteBudget};
use pawl_core::watermark::{MarkId, MarkKind};

use crate::checks::{Stats, head};
use crate::fuzz::{Rng, ServiceKey};
use crate::support::board::{INFO, TestEntropy};
use crate::support::budget::FakeClock;
use crate::support::hsm::{Hsm, SIGNER_AUTH_ID, SIGNER_PASSWORD, derive};

use crate::support::power::{BOARD_KEY, SharedGuard};

/// A button pressed at random (confirm-on-device policies get both answers).
pub struct Button(pub Rng);

impl Presence for Button {
    fn confirm(&mut self, _: &PublicKeyHash, _: RequestKind) -> bool {
        self.0.pct(50)
    }
}

/// The board under the flash write budget, on a clock the steps move.
pub type HBoard = Board<Budgeted<NorStore<SimFlash, SharedGuard>, FakeClock>, TestEntropy, Button>;

/// A tighter write budget than the boards' (`WriteBudget::DEFAULT`), so that the storm of
/// random requests meets it often: 720 records an hour, 8 at most.
const BUDGET: WriteBudget = WriteBudget {
    records_per_hour: 720,
    capacity: 8,
    idle_reserve: 4,
};

/// Flash pages of the store (the boards reserve 64; fewer reach page reclaim sooner).
const PAGES: usize = 16;

/// (chain, key, magic byte, level, round): one signing position as Octez reads it.
pub type Pos = ([u8; 4], PublicKeyHash, u8, u32, u32);

/// (chain id, key, height, round, step): one CometBFT signing position.
pub type CometPos = (Vec<u8>, PublicKeyHash, i64, i64, u8);

/// What was released or approved at one position.
pub struct Release {
    pub hash: [u8; 32],
    pub step: u64,
    pub payload: Vec<u8>,
    pub what: &'static str,
}

/// What the board saw in one frame (decoded by the harness from the very bytes it sent).
pub enum Sent {
    Sign {
        pkh: PublicKeyHash,
        payload: Vec<u8>,
    },
    HostSignature {
        pkh: PublicKeyHash,
    },
    HsmReply,
    Prove {
        pkh: PublicKeyHash,
        other: Option<PublicKey>,
    },
    ImportWatermark {
        id: MarkId,
        level: u32,
        round: u32,
    },
    Reprovision {
        erase: bool,
    },
    /// `RemoveKey`: across a power cut the key is whole or gone.
    KeyRemoval {
        pkh: PublicKeyHash,
    },
    /// The operator's own acts (provisioning mode and a press of the button): a mark lowered
    /// or a key's marks forgotten (`forget`), after which the key's history starts again.
    Operator {
        pkh: PublicKeyHash,
        forget: bool,
    },
    /// A rewrite of one key's record: `SetPolicy` (with the policy), `AllowPossession`,
    /// `SetJumpLimit`.
    KeyWrite {
        pkh: PublicKeyHash,
        policy: Option<Policy>,
    },
    /// CometBFT `SetChain`: a key write that pins the key to `chain`.
    CometPin {
        pkh: PublicKeyHash,
        chain: Vec<u8>,
    },
    /// A CometBFT vote or proposal.
    CometSign {
        pkh: PublicKeyHash,
        sign_bytes: Vec<u8>,
        extension: Option<Vec<u8>>,
    },
    /// A request that changes nothing durable: the self-tests, `Events`, `HsmCheck`, CometBFT
    /// `State`. `flash`: the flash timing, which this board (no instruments lent) skips.
    Harmless {
        flash: bool,
    },
    Other,
}

impl Sent {
    fn of(request: &Request<'_>) -> Sent {
        match request {
            Request::Sign { pkh, payload, .. } => Sent::Sign {
                pkh: *pkh,
                payload: payload.to_vec(),
            },
            Request::HostSignature { pkh, .. } => Sent::HostSignature { pkh: *pkh },
            Request::HsmReply { .. } => Sent::HsmReply,
            Request::ProvePossession { pkh, override_pk } => Sent::Prove {
                pkh: *pkh,
                other: *override_pk,
            },
            Request::ImportWatermark {
                chain,
                pkh,
                kind,
                level,
                round,
            } => Sent::ImportWatermark {
                id: MarkId {
                    chain: *chain,
                    key: *pkh,
                    kind: *kind,
                },
                level: *level,
                round: *round,
            },
            Request::Reprovision { erase } => Sent::Reprovision { erase: *erase },
            Request::LowerWatermark { pkh, .. } => Sent::Operator {
                pkh: *pkh,
                forget: false,
            },
            Request::ForgetWatermarks { pkh } => Sent::Operator {
                pkh: *pkh,
                forget: true,
            },
            Request::SetPolicy { pkh, policy } => Sent::KeyWrite {
                pkh: *pkh,
                policy: Some(policy.clone()),
            },
            Request::RemoveKey { pkh } => Sent::KeyRemoval { pkh: *pkh },
            Request::AllowPossession { pkh, .. }
            | Request::SetJumpLimit { pkh, .. }
            | Request::SetDuty { pkh, .. } => Sent::KeyWrite {
                pkh: *pkh,
                policy: None,
            },
            Request::CometBft(CometRequest::SetChain { pkh, chain_id }) => Sent::CometPin {
                pkh: *pkh,
                chain: chain_id.as_bytes().to_vec(),
            },
            Request::CometBft(CometRequest::SignVote {
                pkh,
                sign_bytes,
                extension,
            }) => Sent::CometSign {
                pkh: *pkh,
                sign_bytes: sign_bytes.to_vec(),
                extension: extension.map(<[u8]>::to_vec),
            },
            Request::CometBft(CometRequest::SignProposal { pkh, sign_bytes }) => Sent::CometSign {
                pkh: *pkh,
                sign_bytes: sign_bytes.to_vec(),
                extension: None,
            },
            Request::CometBft(CometRequest::State { .. })
            | Request::Events(_)
            | Request::HsmCheck(_) => Sent::Harmless { flash: false },
            Request::SelfTest(t) => Sent::Harmless {
                flash: matches!(t, SelfTestRequest::FlashTime),
            },
            _ => Sent::Other,
        }
    }
}

/// What one step was allowed to change.
#[derive(Default)]
pub struct Effect {
    /// Marks set by a released or approved request (or an import), to exactly this position.
    pub allowed: Vec<(MarkId, (u32, u32))>,
    /// Positions of refused sign requests (a mark moving there is noted, not failed).
    pub refused_at: Vec<(MarkId, (u32, u32))>,
    pub keys_may_change: bool,
    pub reset: bool,
    pub rebooted: bool,
    /// `Reprovision { erase: false }` reloaded the store.
    pub reloaded: bool,
    /// Keys whose marks the operator lowered or forgot.
    pub operator_keys: Vec<PublicKeyHash>,
    /// An operator's act was refused by the store (the power went midway).
    pub operator_cut: bool,
    /// A power cut happened at the reboot: a write the board refused may have landed.
    pub cut_fired: bool,
    /// The write the power cut interrupted (the first store refusal with a cut armed), when
    /// it was a key write: the key it rewrote and the policy asked (`None`, `None`: a key
    /// added, or a request the model does not take apart). Only this write may land
    /// (docs/design.md §8).
    pub cut_key_write: Option<(Option<PublicKeyHash>, Option<Policy>)>,
    /// The `RemoveKey` the power cut interrupted: the key may be gone (nothing else).
    pub cut_key_removal: Option<PublicKeyHash>,
    /// The `ForgetWatermarks` the power cut interrupted: all of its marks go, or none.
    pub cut_forget: Option<PublicKeyHash>,
    pub power_failed: bool,
    /// The power failed during an erase the operator asked for: a new epoch either way.
    pub erase_cut: bool,
    /// The mode the board ran in before this step's reboot.
    pub ran_in: Option<Mode>,
}

pub struct Harness {
    pub seed: u64,
    pub rng: Rng,
    pub stats: Stats,
    pub board: Option<HBoard>,
    /// The running board's clock (milliseconds since its boot; every step moves it).
    pub clock: FakeClock,
    /// Records the board wrote while answering the last frame.
    pub wrote: u32,
    pub guard: SharedGuard,
    pub ahead: u32,
    pub mode: Mode,
    pub cut_armed: bool,
    /// An erase cut by the power left a store that refuses until re-provisioned.
    pub refusing_after_erase: bool,
    pub hsm: Hsm,
    /// The mock's public keys, read once.
    pub hsm_keys: Vec<(u16, PublicKey)>,
    pub hsm_auth: SecretBytes,
    pub service: Vec<ServiceKey>,
    pub keys: Vec<KeyInfo>,
    pub marks: BTreeMap<MarkId, (u32, u32)>,
    pub releases: HashMap<Pos, Release>,
    /// The host-held approval the board holds (the harness's model of it).
    pub approval: Option<(PublicKeyHash, Vec<u8>)>,
    /// The YubiHSM2 sign under way, and the last message to relay.
    pub hsm_flow: Option<(PublicKeyHash, Vec<u8>)>,
    pub relay: Option<Vec<u8>>,
    pub last_reply: Vec<u8>,
    /// The operator re-provisions the board after an erase.
    pub needs_setup: bool,
    /// CometBFT signatures released, by position (invariant 1: one per position).
    pub comet_signed: HashMap<CometPos, (Signature, u64)>,
    /// The highest position signed per (key, chain id): (height, round, step).
    pub comet_high: HashMap<(PublicKeyHash, Vec<u8>), (i64, i64, u8)>,
    /// The chain each key was last pinned to by an answered `SetChain` (forgotten when the
    /// key is rewritten otherwise, removed, or a power cut may have rewritten it).
    pub comet_pins: HashMap<PublicKeyHash, Vec<u8>>,
    /// The CometBFT sign relayed to the YubiHSM2 (key, sign bytes).
    pub comet_flow: Option<(PublicKeyHash, Vec<u8>)>,
    /// Recent sign payloads, for identical retries.
    pub recent: VecDeque<(PublicKeyHash, Vec<u8>)>,
    pub chains: Vec<[u8; 4]>,
    pub frames: Vec<String>,
    pub history: VecDeque<String>,
    pub effect: Effect,
}

pub fn hex_short(bytes: &[u8]) -> String {
    let h = hex::encode(bytes);
    if h.len() > 600 {
        format!("{}…({} bytes)", &h[..600], bytes.len())
    } else {
        h
    }
}

pub fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(ToString::to_string)
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(non-text panic)".into())
}

/// A request's name for the counts: the variant, and for the families that hold several
/// requests (`SelfTest`, `Events`, `HsmCheck`, `CometBft`) the inner one too.
pub fn request_name(request: &Request<'_>) -> String {
    let inner = match request {
        Request::SelfTest(r) => format!("{r:?}"),
        Request::Events(r) => format!("{r:?}"),
        Request::HsmCheck(r) => format!("{r:?}"),
        Request::CometBft(r) => format!("{r:?}"),
        other => return head(&format!("{other:?}")).to_string(),
    };
    format!("{}::{}", head(&format!("{request:?}")), head(&inner))
}

pub fn kind_of_magic(magic: u8) -> MarkKind {
    match magic {
        0x11 => MarkKind::Block,
        0x12 => MarkKind::Preattestation,
        _ => MarkKind::Attestation,
    }
}

impl Harness {
    pub fn new(seed: u64) -> Harness {
        let mut rng = Rng(seed);
        let ahead = *rng.pick(&[0, 1, 4, 16]);
        let mut chains = vec![[0xb3, 0xd7, 0x9f, 0x99], ChainId::MAINNET.0];
        chains.extend((0..6).map(|_| rng.array::<4>()));
        let mut h = Harness {
            seed,
            rng,
            stats: Stats::default(),
            board: None,
            clock: FakeClock::default(),
            wrote: 0,
            guard: SharedGuard::default(),
            ahead,
            mode: Mode::Provisioning,
            cut_armed: false,
            refusing_after_erase: false,
            hsm: crate::fuzz::fresh_hsm(),
            hsm_keys: Vec::new(),
            hsm_auth: derive(SIGNER_PASSWORD),
            service: vec![ServiceKey::secp(0x21), ServiceKey::p256()],
            keys: Vec::new(),
            marks: BTreeMap::new(),
            releases: HashMap::new(),
            approval: None,
            hsm_flow: None,
            relay: None,
            last_reply: Vec::new(),
            needs_setup: false,
            recent: VecDeque::new(),
            comet_signed: HashMap::new(),
            comet_high: HashMap::new(),
            comet_pins: HashMap::new(),
            comet_flow: None,
            chains,
            frames: Vec::new(),
            history: VecDeque::new(),
            effect: Effect::default(),
        };
        h.board = Some(h.boot(SimFlash::new(PAGES), Mode::Provisioning));
        h.setup();
        h.check_after();
        h.reboot(Mode::Operational, false);
        h.check_after();
        h
    }

    fn boot(&mut self, flash: SimFlash, mode: Mode) -> HBoard {
        let config = NorStoreConfig {
            region: 0..(PAGES * PAGE) as u32,
            ceiling_ahead: self.ahead,
        };
        let store = NorStore::new(flash, config, &BoardKey::new(BOARD_KEY), self.guard.clone())
            .expect("store config");
        // A new clock from zero at every boot, as on a board.
        self.clock = FakeClock::default();
        let store = Budgeted::new(store, self.clock.clone(), BUDGET);
        let entropy = TestEntropy(self.rng.next());
        let button = Button(Rng(self.rng.next()));
        match catch_unwind(AssertUnwindSafe(|| {
            Board::open(store, entropy, button, mode, INFO)
        })) {
            Ok(b) => b,
            Err(p) => self.fail(4, format!("Board::open panicked: {}", panic_text(&*p))),
        }
    }

    /// Keys of every tier and curve, set up in provisioning mode through frames.
    fn setup(&mut self) {
        let wellformed = |h: &mut Harness, r: &Request<'_>| {
            let id = h.rng.next() as u32;
            h.send(crate::fuzz::encode(id, r), "setup");
        };
        for sk in crate::support::power::secrets() {
            let (curve, secret) = SecretBytes::from_b58(&sk).expect("secret");
            let policy = self.policy(curve != Curve::Secp256k1);
            wellformed(
                self,
                &Request::ImportKey {
                    curve,
                    secret,
                    policy,
                },
            );
        }
        // A Cosmos validator key, pinned to the vectors' chain: most CometBFT requests aim
        // at it, so that the Tezos keys keep their mix.
        let policy = self.policy(false);
        wellformed(
            self,
            &Request::ImportKey {
                curve: Curve::Ed25519,
                secret: SecretBytes::new(crate::comet::COSMOS_SECRET),
                policy,
            },
        );
        let pkh = crate::comet::cosmos_pkh();
        wellformed(
            self,
            &Request::CometBft(CometRequest::SetChain {
                pkh,
                chain_id: crate::comet::COSMOS,
            }),
        );
        for i in 0..self.service.len() {
            let public_key = self.service[i].public();
            let policy = self.policy(i == 0);
            wellformed(self, &Request::RegisterHostKey { public_key, policy });
        }
        let keys = self.hsm_auth.clone();
        wellformed(
            self,
            &Request::YubiHsmSetup {
                auth_key_id: SIGNER_AUTH_ID,
                keys,
            },
        );
        for id in crate::steps::HSM_IDS {
            let public_key = self.hsm_public(id);
            let policy = self.policy(false);
            wellformed(
                self,
                &Request::RegisterHsmKey {
                    key_id: id,
                    public_key,
                    policy,
                },
            );
        }
    }

    pub fn hsm_public(&mut self, id: u16) -> PublicKey {
        if let Some((_, k)) = self.hsm_keys.iter().find(|(i, _)| *i == id) {
            return *k;
        }
        let theirs = self.hsm.client().get_public_key(id).expect("public key");
        let mut data = vec![theirs.algorithm as u8];
        data.extend_from_slice(theirs.as_ref());
        let public = pawl_core::yubihsm::command::public_key(&data).expect("parse");
        self.hsm_keys.push((id, public));
        public
    }

    pub fn board(&mut self) -> &mut HBoard {
        self.board.as_mut().expect("a board is running")
    }

    /// Stop with the invariant, the seed, the step and the frames.
    pub fn fail(&self, invariant: u8, message: String) -> ! {
        let this = self.frames.join("\n    ");
        let before: Vec<&String> = self.history.iter().collect();
        panic!(
            "\nhostile: INVARIANT {invariant} VIOLATED at step {step} (seed {seed:#x}, N = {ahead}, {mode:?} mode):\n  {message}\n  frames of this step (hex):\n    {this}\n  frames of the steps before (oldest first):\n    {before}\n  replay: PAWL_HOSTILE_SEED={seed:#x} PAWL_HOSTILE_STEPS={step} PAWL_HOSTILE_SECS=3600 cargo test -p pawl-core --test hostile -- --nocapture\n",
            step = self.stats.steps,
            seed = self.seed,
            ahead = self.ahead,
            mode = self.mode,
            before = before
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("\n    "),
        );
    }

    /// One step of the fuzzer: pick an action, perform it, check every invariant.
    pub fn step(&mut self) {
        self.stats.steps += 1;
        self.effect = Effect::default();
        for f in self.frames.drain(..) {
            self.history.push_back(f);
        }
        while self.history.len() > 24 {
            self.history.pop_front();
        }
        // Time passes between requests: mostly a storm (the write budget refuses), sometimes
        // seconds or minutes (it refills).
        let gap = match self.rng.below(100) {
            0..80 => self.rng.below(200),
            80..98 => self.rng.below(5_000),
            _ => self.rng.below(120_000),
        };
        self.clock.advance(gap);
        let roll = self.rng.below(1000);
        if self.needs_setup && self.mode == Mode::Provisioning {
            self.needs_setup = false;
            self.setup();
        } else if self.refusing_after_erase && roll < 50 {
            // The operator repeats the erase the power cut interrupted.
            if self.mode == Mode::Provisioning {
                let id = self.rng.next() as u32;
                let frame = crate::fuzz::encode(id, &Request::Reprovision { erase: true });
                self.send(frame, "operator");
            } else {
                self.reboot(Mode::Provisioning, false);
            }
        } else if self.relay.is_some() && roll < 750 {
            self.relay_step();
        } else if self.approval.is_some() && roll < 60 {
            self.host_signature_step();
        } else if roll < 12 {
            let switch = self.rng.pct(30);
            let mode = match (self.mode, switch) {
                (m, false) => m,
                (Mode::Operational, true) => Mode::Provisioning,
                (Mode::Provisioning, true) => Mode::Operational,
            };
            self.stats.mode_switches += u64::from(switch);
            let cut = self.rng.pct(50);
            self.reboot(mode, cut);
        } else if roll < 60 {
            let frame = self.raw_frame();
            self.send(frame, "raw");
        } else if roll < 150 {
            let frame = self.mutated_frame();
            self.send(frame, "mutated");
        } else if roll < 165 {
            self.stream_step();
        } else if roll < 185 {
            self.idle_step();
        } else {
            let frame = self.wellformed_frame();
            self.send(frame, "well-formed");
        }
        self.check_after();
        if self.effect.power_failed {
            let mode = self.mode;
            self.reboot(mode, false);
            self.check_after();
        }
    }

    fn idle_step(&mut self) {
        self.frames.push("(idle)".into());
        let board = self.board();
        match catch_unwind(AssertUnwindSafe(|| board.idle())) {
            Err(p) => self.fail(4, format!("Board::idle panicked: {}", panic_text(&*p))),
            Ok(Ok(true)) => self.stats.idle_writes += 1,
            Ok(Ok(false)) => {}
            Ok(Err(_)) => self.effect.power_failed |= self.cut_armed,
        }
    }

    /// Feed bytes through a `FrameAccumulator` as board glue does, answering each frame.
    fn stream_step(&mut self) {
        let mut bytes = Vec::new();
        for _ in 0..1 + self.rng.below(4) {
            match self.rng.below(4) {
                0 | 1 => bytes.extend(self.wellformed_frame()),
                2 => bytes.extend(self.raw_frame()),
                _ => bytes.extend(self.mutated_frame()),
            }
        }
        let mut acc = Box::new(pawl_core::protocol::FrameAccumulator::<{ MAX_FRAME }>::new());
        let mut at = 0;
        while at < bytes.len() {
            let chunk = (1 + self.rng.below(300) as usize).min(bytes.len() - at);
            let mut input = &bytes[at..at + chunk];
            while !input.is_empty() {
                let (used, fed) = acc.feed(input);
                let frame = match fed {
                    pawl_core::protocol::Fed::Frame(f) => Some(f.to_vec()),
                    _ => None,
                };
                input = &input[used..];
                if let Some(mut f) = frame {
                    f.push(0);
                    self.send(f, "stream");
                }
            }
            at += chunk;
        }
    }

    /// Send one frame to the board as it is, and check and account for its answer.
    pub fn send(&mut self, frame: Vec<u8>, category: &'static str) {
        self.stats.frame(category);
        self.frames
            .push(format!("[{category}] {}", hex_short(&frame)));
        let mut mine = frame.clone();
        let decoded: Option<Envelope<Request<'_>>> = decode_frame(&mut mine).ok();
        let (id, sent, name) = match &decoded {
            Some(e) => (Some(e.id), Sent::of(&e.message), request_name(&e.message)),
            None => (None, Sent::Other, "(unreadable frame)".to_string()),
        };
        let mut input = frame;
        let mut out = vec![0u8; MAX_FRAME + 64];
        let board = self.board();
        let records = board.store().wear().records;
        let n = match catch_unwind(AssertUnwindSafe(|| {
            board.handle_frame(&mut input, &mut out)
        })) {
            Err(p) => self.fail(4, format!("the board panicked: {}", panic_text(&*p))),
            Ok(Err(e)) => self.fail(4, format!("handle_frame gave no answer: {e}")),
            Ok(Ok(n)) => n,
        };
        self.wrote = self.board().store().wear().records.wrapping_sub(records);
        let answer = match decode_frame::<Response>(&mut out[..n]) {
            Ok(a) => a,
            Err(e) => self.fail(4, format!("the answer does not decode: {e}")),
        };
        match id {
            Some(id) if answer.id != id => {
                self.fail(4, format!("answer id {} for request id {id}", answer.id))
            }
            None if !matches!(answer.message, Response::Refused(Refusal::Frame(_))) => self.fail(
                4,
                format!("an unreadable frame was answered {:?}", answer.message),
            ),
            _ => {}
        }
        self.process(sent, name, answer.message);
    }

    /// Reboot on the same flash (its image as the power left it), maybe cutting the power
    /// again somewhere in the next flash steps.
    pub fn reboot(&mut self, mode: Mode, cut: bool) {
        self.stats.reboots += 1;
        self.frames
            .push(format!("(reboot into {mode:?}, power cut armed: {cut})"));
        let board = self.board.take().expect("a board");
        let flash = match catch_unwind(AssertUnwindSafe(|| {
            board.into_store().into_inner().into_flash()
        })) {
            Ok(f) => f,
            Err(p) => self.fail(4, format!("into_store panicked: {}", panic_text(&*p))),
        };
        self.stats.cuts_fired += u64::from(flash.is_off());
        self.effect.cut_fired |= flash.is_off();
        let mut flash = SimFlash::from_image(flash.image().to_vec());
        if cut {
            self.stats.cuts_armed += 1;
            flash.cut_after(self.rng.below(40), self.rng.pct(50));
        }
        self.cut_armed = cut;
        self.effect.ran_in.get_or_insert(self.mode);
        self.mode = mode;
        let board = self.boot(flash, mode);
        self.board = Some(board);
        self.approval = None;
        self.hsm_flow = None;
        self.comet_flow = None;
        self.relay = None;
        self.effect.rebooted = true;
        if self.effect.cut_fired {
            // A cut key write may have re-pinned or unpinned a key without an answer.
            self.comet_pins.clear();
        }
        let status = match self.ask(Request::Status) {
            Response::Status(s) => s,
            other => self.fail(4, format!("Status answered {other:?}")),
        };
        if self.effect.erase_cut {
            // The operator erased the board and the power went: whatever loads (an empty, a
            // partly erased or a refusing store), the history before the erase is over.
            self.effect.reset = true;
            self.releases.clear();
            self.stats.erases += 1;
            self.forget_comet(None);
            if let StoreHealth::Refusing(e) = status.store {
                self.refusing_after_erase = true;
                let example = format!("step {}: {e:?}", self.stats.steps);
                self.stats.suspicious(
                    "a power cut during an erase leaves a refusing store",
                    example,
                );
            }
            return;
        }
        if let StoreHealth::Refusing(e) = status.store {
            if self.refusing_after_erase {
                return;
            }
            if cut {
                // The power went during the boot itself: boot again.
                return self.reboot(mode, false);
            }
            self.fail(
                2,
                format!(
                    "the store refuses after a reboot ({e:?}): every mark is gone from the board"
                ),
            );
        }
    }

    pub fn ask(&mut self, request: Request<'_>) -> Response {
        let board = self.board();
        match catch_unwind(AssertUnwindSafe(|| board.handle(request))) {
            Ok(r) => r,
            Err(p) => self.fail(4, format!("the board panicked: {}", panic_text(&*p))),
        }
    }
}
