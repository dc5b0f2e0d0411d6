//! The board: one object that owns keys, policies, watermarks and the store, and answers
//! frames. Board glue (firmware, simulator) only moves bytes and supplies the store, entropy
//! and button.
//!
//! Signing, in order — each step refuses without touching state:
//!
//! 1. the key exists, the store is healthy, the payload fits;
//! 2. parse the payload ([`crate::request`]);
//! 3. policy ([`crate::policy`]), including the consensus form for the key's curve, and the
//!    signature version for BLS;
//! 4. watermark check ([`crate::watermark`]): an identical retry returns the recorded
//!    signature here;
//! 5. confirm-on-device, when the policy asks for it;
//! 6. **make the mark durable** ([`Store::persist_mark`]);
//! 7. sign; record the signature in RAM; release it.

use crate::digest::blake2b_256;
use crate::keys::{
    Curve, Entropy, KeyError, KeyPair, PublicKey, PublicKeyHash, Signature, SigningVersion,
    TezosSigner,
};
use crate::policy::Policy;
use crate::protocol::{
    Backend, FrameError, KeyInfo, MAX_KEYS, MAX_SEALED, MAX_SIGN_PAYLOAD, Mode, PROTOCOL_VERSION,
    Refusal, Request, Response, Status, StoreHealth, WATERMARK_PAGE, WatermarkEntry, decode_frame,
    encode_frame,
};
use crate::request::{self, RequestKind};
use crate::store::{Record, Store, StoreError, StoredKey};
use crate::watermark::{MarkId, MarkKind, Verdict, Watermarks};

/// Watermark entries a board keeps: (chain, key, kind) triples. 16 keys × 3 kinds on one chain
/// is 48; the rest is room for a test chain.
pub const MAX_MARKS: usize = 64;

/// Largest response body (a relayed HSM message plus its envelope).
pub const MAX_RESPONSE: usize = MAX_SEALED + 256;

/// The board's button, for confirm-on-device.
pub trait Presence {
    /// Ask the operator to confirm signing a `kind` request with `key`; `true` only after a
    /// physical press within the board's timeout.
    fn confirm(&mut self, key: &PublicKeyHash, kind: RequestKind) -> bool;
}

/// A board without a button: every confirmation is refused.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoButton;

impl Presence for NoButton {
    fn confirm(&mut self, _: &PublicKeyHash, _: RequestKind) -> bool {
        false
    }
}

/// Static facts about the board, for [`Response::Info`].
#[derive(Clone, Copy, Debug)]
pub struct BoardInfo {
    /// Firmware version.
    pub firmware: &'static str,
    /// Board model.
    pub board: &'static str,
}

struct KeySlot {
    pair: KeyPair,
    policy: Policy,
}

impl KeySlot {
    fn info(&self) -> KeyInfo {
        KeyInfo {
            pkh: *self.pair.pkh(),
            public_key: *self.pair.public_key(),
            backend: Backend::OnBoard,
            policy: self.policy.clone(),
        }
    }
}

#[derive(Default)]
struct Counters {
    signatures: u32,
    refusals: u32,
    mark_writes: u32,
}

/// The signing core of one board.
pub struct Board<S: Store, E: Entropy, P: Presence> {
    store: S,
    entropy: E,
    presence: P,
    mode: Mode,
    info: BoardInfo,
    health: StoreHealth,
    keys: heapless::Vec<KeySlot, MAX_KEYS>,
    marks: Watermarks<MAX_MARKS>,
    counters: Counters,
    scratch: [u8; MAX_RESPONSE],
}

fn capacity_u16(n: usize) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
}

impl<S: Store, E: Entropy, P: Presence> Board<S, E, P> {
    /// Start the board on `store`. A store that cannot be loaded does not stop the board: it
    /// comes up refusing every signature, and says why in its status.
    pub fn open(store: S, entropy: E, presence: P, mode: Mode, info: BoardInfo) -> Self {
        let mut board = Board {
            store,
            entropy,
            presence,
            mode,
            info,
            health: StoreHealth::Ok,
            keys: heapless::Vec::new(),
            marks: Watermarks::new(),
            counters: Counters::default(),
            scratch: [0; MAX_RESPONSE],
        };
        board.reload();
        board
    }

    /// Load keys and marks from the store; on failure hold nothing and refuse to sign.
    fn reload(&mut self) {
        self.keys.clear();
        self.marks = Watermarks::new();
        self.health = match self.load() {
            Ok(()) => StoreHealth::Ok,
            Err(e) => {
                self.keys.clear();
                self.marks = Watermarks::new();
                StoreHealth::Refusing(e)
            }
        };
    }

    fn load(&mut self) -> Result<(), StoreError> {
        let keys = &mut self.keys;
        let marks = &mut self.marks;
        self.store.load(&mut |record| match record {
            Record::Key { key, .. } => {
                let pair = KeyPair::from_secret(key.curve, &key.secret)
                    .map_err(|_| StoreError::Corrupted)?;
                keys.push(KeySlot {
                    pair,
                    policy: key.policy.clone(),
                })
                .map_err(|_| StoreError::Corrupted)
            }
            Record::Mark { id, level, round } => marks
                .restore(&id, level, round)
                .map_err(|_| StoreError::Corrupted),
        })
    }

    /// Give the store back (tests use it to "reboot" on the same state).
    pub fn into_store(self) -> S {
        self.store
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The watermark table.
    pub fn watermarks(&self) -> &Watermarks<MAX_MARKS> {
        &self.marks
    }

    /// Answer one frame: decode `frame` (modified in place), handle it, write the response
    /// frame into `out`; returns its length. Never panics on hostile input: a bad frame gets
    /// a [`Refusal::Frame`] answer with id 0.
    pub fn handle_frame(&mut self, frame: &mut [u8], out: &mut [u8]) -> Result<usize, FrameError> {
        let (id, response) = match decode_frame::<Request<'_>>(frame) {
            Ok(envelope) => (envelope.id, self.handle(envelope.message)),
            Err(e) => {
                self.counters.refusals = self.counters.refusals.saturating_add(1);
                (0, Response::Refused(Refusal::Frame(e)))
            }
        };
        encode_frame(id, &response, &mut self.scratch, out)
    }

    /// Idle-time work: board glue calls this when no frame is waiting, and again while it
    /// returns `Ok(true)` and nothing has arrived. Each call makes at most one durable write
    /// ([`Store::reserve_ahead`]), moving a watermark reservation up ahead of the signatures
    /// that would otherwise wait for it ([`Status::wear`] counts these writes). Does nothing
    /// on a store that is refusing.
    pub fn idle(&mut self) -> Result<bool, StoreError> {
        if self.health != StoreHealth::Ok {
            return Ok(false);
        }
        self.store.reserve_ahead()
    }

    /// Answer one request.
    pub fn handle(&mut self, request: Request<'_>) -> Response {
        let response = self.answer(request).unwrap_or_else(Response::Refused);
        match response {
            Response::Refused(_) => {
                self.counters.refusals = self.counters.refusals.saturating_add(1)
            }
            Response::Signature(_) => {
                self.counters.signatures = self.counters.signatures.saturating_add(1)
            }
            _ => {}
        }
        response
    }

    fn answer(&mut self, request: Request<'_>) -> Result<Response, Refusal> {
        match request {
            Request::Hello { .. } => Ok(Response::Info {
                protocol: PROTOCOL_VERSION,
                firmware: truncated(self.info.firmware),
                board: truncated(self.info.board),
                mode: self.mode,
            }),
            Request::ListKeys => Ok(Response::Keys(
                self.keys.iter().map(KeySlot::info).collect(),
            )),
            Request::PublicKey { pkh } => {
                Ok(Response::PublicKey(*self.slot(&pkh)?.pair.public_key()))
            }
            Request::Sign {
                pkh,
                version,
                payload,
            } => self.sign(&pkh, version, payload).map(Response::Signature),
            Request::ProvePossession { pkh, override_pk } => {
                self.healthy()?;
                let slot = self.slot(&pkh)?;
                let override_pk = match override_pk {
                    Some(PublicKey::Bls(pk)) => Some(pk),
                    Some(_) => return Err(Refusal::Key(KeyError::PossessionNeedsBls)),
                    None => None,
                };
                Ok(Response::Signature(
                    slot.pair.prove_possession(override_pk.as_ref())?,
                ))
            }
            Request::Status => Ok(Response::Status(self.status())),
            Request::ExportWatermarks { start } => Ok(self.export(start)),
            Request::GenerateKey { curve, policy } => {
                self.provisioning()?;
                let pair = KeyPair::generate(curve, &mut self.entropy)?;
                self.add_key(pair, policy)
            }
            Request::ImportKey {
                curve,
                secret,
                policy,
            } => {
                self.provisioning()?;
                let pair = KeyPair::from_secret(curve, &secret)?;
                self.add_key(pair, policy)
            }
            Request::SetPolicy { pkh, policy } => {
                self.provisioning()?;
                let index = self.index(&pkh)?;
                let slot_no = u8::try_from(index).map_err(|_| Refusal::KeyTableFull {
                    capacity: capacity_u16(MAX_KEYS),
                })?;
                let stored = self.stored_key(&self.keys[index].pair, &policy);
                self.store.persist_key(slot_no, &stored)?;
                self.keys[index].policy = policy;
                Ok(Response::KeyInfo(self.keys[index].info()))
            }
            Request::ImportWatermark {
                chain,
                pkh,
                kind,
                level,
                round,
            } => {
                self.provisioning()?;
                self.healthy()?;
                self.index(&pkh)?;
                let id = MarkId {
                    chain,
                    key: pkh,
                    kind,
                };
                self.marks.can_raise(&id, level, round)?;
                self.store.persist_mark(&id, level, round)?;
                self.counters.mark_writes = self.counters.mark_writes.saturating_add(1);
                self.marks.raise(&id, level, round)?;
                Ok(Response::Done)
            }
            Request::Reprovision { erase } => {
                self.provisioning()?;
                self.store.reprovision(erase)?;
                self.reload();
                self.healthy()?;
                Ok(Response::Done)
            }
            Request::HsmReply { .. } | Request::HostSignature { .. } => Err(Refusal::NoPendingSign),
        }
    }

    fn provisioning(&self) -> Result<(), Refusal> {
        match self.mode {
            Mode::Provisioning => Ok(()),
            Mode::Operational => Err(Refusal::ProvisioningOnly),
        }
    }

    fn healthy(&self) -> Result<(), Refusal> {
        match self.health {
            StoreHealth::Ok => Ok(()),
            StoreHealth::Refusing(e) => Err(Refusal::Store(e)),
        }
    }

    fn index(&self, pkh: &PublicKeyHash) -> Result<usize, Refusal> {
        self.keys
            .iter()
            .position(|k| k.pair.pkh() == pkh)
            .ok_or(Refusal::UnknownKey { pkh: *pkh })
    }

    fn slot(&self, pkh: &PublicKeyHash) -> Result<&KeySlot, Refusal> {
        self.index(pkh).map(|i| &self.keys[i])
    }

    fn stored_key(&self, pair: &KeyPair, policy: &Policy) -> StoredKey {
        StoredKey {
            curve: pair.curve(),
            secret: pair.to_secret(),
            policy: policy.clone(),
        }
    }

    fn add_key(&mut self, pair: KeyPair, policy: Policy) -> Result<Response, Refusal> {
        self.healthy()?;
        if self.index(pair.pkh()).is_ok() {
            return Err(Refusal::KeyExists { pkh: *pair.pkh() });
        }
        let full = Refusal::KeyTableFull {
            capacity: capacity_u16(MAX_KEYS),
        };
        if self.keys.is_full() {
            return Err(full);
        }
        let slot_no = u8::try_from(self.keys.len()).map_err(|_| full)?;
        let stored = self.stored_key(&pair, &policy);
        self.store.persist_key(slot_no, &stored)?;
        let slot = KeySlot { pair, policy };
        let info = slot.info();
        self.keys.push(slot).map_err(|_| full)?;
        Ok(Response::KeyInfo(info))
    }

    fn sign(
        &mut self,
        pkh: &PublicKeyHash,
        version: SigningVersion,
        payload: &[u8],
    ) -> Result<Signature, Refusal> {
        self.healthy()?;
        let index = self.index(pkh)?;
        if payload.len() > MAX_SIGN_PAYLOAD {
            return Err(Refusal::PayloadTooLarge {
                len: u32::try_from(payload.len()).unwrap_or(u32::MAX),
                max: u32::try_from(MAX_SIGN_PAYLOAD).unwrap_or(u32::MAX),
            });
        }
        let parsed = request::parse(payload)?;
        let slot = &self.keys[index];
        let is_bls = slot.pair.curve() == Curve::Bls12_381;
        slot.policy.check(&parsed, is_bls)?;
        // Checked here, not only in `try_sign`, so a bad version is refused before the
        // watermark moves.
        version.check()?;
        if is_bls {
            version.check_bls()?;
        }

        let mark = match (parsed.consensus, MarkKind::of(parsed.kind)) {
            (Some(c), Some(kind)) => {
                let id = MarkId {
                    chain: c.chain_id,
                    key: *pkh,
                    kind,
                };
                let hash = blake2b_256(payload);
                if let Verdict::Repeat(signature) =
                    self.marks.check(&id, c.level, c.round, &hash)?
                {
                    return Ok(signature);
                }
                Some((id, c.level, c.round, hash))
            }
            _ => None,
        };

        if slot.policy.needs_confirmation(parsed.kind) && !self.presence.confirm(pkh, parsed.kind) {
            return Err(Refusal::NotConfirmed);
        }

        if let Some((id, level, round, _)) = &mark {
            // Durable before anything is signed, let alone released.
            self.store.persist_mark(id, *level, *round)?;
            self.counters.mark_writes = self.counters.mark_writes.saturating_add(1);
        }
        let signature = self.keys[index].pair.try_sign(payload, version)?;
        if let Some((id, level, round, hash)) = mark {
            self.marks.record(&id, level, round, hash, signature)?;
        }
        Ok(signature)
    }

    fn status(&self) -> Status {
        Status {
            mode: self.mode,
            keys: capacity_u16(self.keys.len()),
            marks: capacity_u16(self.marks.len()),
            mark_capacity: capacity_u16(MAX_MARKS),
            signatures: self.counters.signatures,
            refusals: self.counters.refusals,
            mark_writes: self.counters.mark_writes,
            store: self.health,
            wear: self.store.wear(),
        }
    }

    fn export(&self, start: u16) -> Response {
        let start = usize::from(start);
        let entries = self
            .marks
            .iter()
            .skip(start)
            .take(WATERMARK_PAGE)
            .map(|(id, m)| WatermarkEntry {
                chain: id.chain,
                pkh: id.key,
                kind: id.kind,
                level: m.level,
                round: m.round,
            })
            .collect();
        let next = start + WATERMARK_PAGE;
        Response::Watermarks {
            entries,
            next: (next < self.marks.len()).then(|| capacity_u16(next)),
        }
    }
}

fn truncated<const N: usize>(s: &str) -> heapless::String<N> {
    let mut out = heapless::String::new();
    for c in s.chars() {
        if out.push(c).is_err() {
            break;
        }
    }
    out
}
