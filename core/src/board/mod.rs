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
//! 5. confirm-on-device, when the policy asks for it, or when the request jumps far above
//!    the key's mark ([`jump`]);
//! 6. **make the mark durable** ([`Store::persist_mark`]);
//! 7. sign; record the signature in RAM; release it.
//!
//! A **host-held** key (Azure Key Vault, [`Backend::HostHeld`](crate::protocol::Backend::HostHeld)) stops after step 6 with
//! [`Response::DigestApproved`] and finishes when the host brings the signature back: see
//! [`host_held`] for that flow and its rules. A **YubiHSM2** key ([`Backend::YubiHsm`](crate::protocol::Backend::YubiHsm))
//! continues after step 6 with the board's own SCP03 session, relayed by the host: see
//! [`yubihsm`].
//!
//! Pending work of either tier is forgotten by every state change ([`pending`]). Proofs of
//! possession have their own rules ([`possession`]). Who may take a new entry in the bounded
//! watermark table is decided in [`room`]; how an operator forgets or lowers marks without
//! erasing keys, in [`undo`].

mod cometbft;
mod cometbft_hsm;
mod duty;
mod events;
mod host_held;
mod hsm_check;
mod jump;
mod material;
mod pending;
mod possession;
mod room;
mod selftest;
mod sign;
mod undo;
mod yubihsm;

pub use jump::DEFAULT_JUMP_LIMIT;
pub use room::{ANY_CHAIN_QUOTA, KEY_MINIMUM, quota};
pub use selftest::{Instruments, TEST_MESSAGE};

use material::{KeySlot, Material, Settings};

use crate::keys::{Entropy, KeyPair, PublicKeyHash};
use crate::policy::Policy;
use crate::protocol::{
    Duty, FrameError, MAX_KEYS, MAX_SEALED, Mode, PROTOCOL_VERSION, Refusal, Request, Response,
    Status, StoreHealth, WATERMARK_PAGE, WatermarkEntry, decode_frame, encode_frame,
};
use crate::request::RequestKind;
use crate::store::{Record, Store, StoreError};
use crate::watermark::{MarkId, Watermarks};

/// Watermark entries a board keeps: (chain, key, kind) triples. 16 keys × 3 kinds on one chain
/// is 48, each key slot's reserved minimum; the other 16 are shared within per-key quotas
/// ([`room`]).
pub const MAX_MARKS: usize = 64;

/// Largest response body (a relayed HSM message plus its envelope).
pub const MAX_RESPONSE: usize = MAX_SEALED + 256;

/// The board's button, for confirm-on-device.
pub trait Presence {
    /// Ask the operator to confirm signing a `kind` request with `key`; `true` only after a
    /// physical press within the board's timeout.
    fn confirm(&mut self, key: &PublicKeyHash, kind: RequestKind) -> bool;

    /// The self-test's button check (`pawl device selftest`): wait for one press within the
    /// board's confirmation window. `Some(true)` after a press, `Some(false)` without one,
    /// `None` when the board has no button it can test (the default).
    fn wait_press(&mut self) -> Option<bool> {
        None
    }
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
    /// The one host-held signature approved and not yet released ([`host_held`]).
    pending: Option<host_held::Pending>,
    /// YubiHSM2 credential, session and pending operation ([`yubihsm`]).
    hsm: yubihsm::Hsm,
    /// What `pawl device selftest` measures with ([`selftest`]).
    bench: selftest::Bench,
    /// Board logs kept for the host ([`events`]).
    events: events::EventLog,
    /// CometBFT signing state in RAM ([`cometbft`]).
    comet: cometbft::CometState,
    scratch: [u8; MAX_RESPONSE],
}

fn capacity_u16(n: usize) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
}

impl<S: Store, E: Entropy, P: Presence> Board<S, E, P> {
    /// Start the board on `store`. A store that cannot be loaded does not stop the board: it
    /// comes up refusing every signature, and says why in its status.
    pub fn open(mut store: S, entropy: E, presence: P, mode: Mode, info: BoardInfo) -> Self {
        store.board_mode(mode);
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
            pending: None,
            hsm: yubihsm::Hsm::default(),
            bench: selftest::Bench::default(),
            events: events::EventLog::default(),
            comet: cometbft::CometState::default(),
            scratch: [0; MAX_RESPONSE],
        };
        board.note_boot(mode);
        board.reload();
        board
    }

    /// Load keys and marks from the store; on failure hold nothing and refuse to sign.
    fn reload(&mut self) {
        self.forget_pending();
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
        self.hsm.credential = self.newest_hsm_credential();
        self.note_store();
    }

    /// The YubiHSM2 authentication key of the newest HSM key: the one sessions are opened with.
    fn newest_hsm_credential(&self) -> Option<crate::yubihsm::AuthKey> {
        self.keys.iter().rev().find_map(|k| match &k.material {
            Material::YubiHsm { auth, .. } => Some(auth.clone()),
            _ => None,
        })
    }

    fn load(&mut self) -> Result<(), StoreError> {
        let keys = &mut self.keys;
        let marks = &mut self.marks;
        self.store.load(&mut |record| match record {
            Record::Key { slot, key } => {
                let material = Material::from_stored(key).map_err(|_| StoreError::Corrupted)?;
                keys.push(KeySlot {
                    slot,
                    material,
                    policy: key.policy.clone(),
                    pop_operational: key.pop_operational.unwrap_or(false),
                    jump_limit: key.jump_limit,
                    duty: key.duty.unwrap_or_default(),
                    cometbft_chain: key.cometbft_chain.clone(),
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
                self.note_refused(None, Refusal::Frame(e));
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
        let before = self.erased();
        let moved = self.store.reserve_ahead();
        self.note_erased(before);
        moved
    }

    /// Answer one request.
    pub fn handle(&mut self, request: Request<'_>) -> Response {
        let before = self.note_before(&request);
        let response = self.answer(request).unwrap_or_else(Response::Refused);
        self.note_after(before, &response);
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
                Ok(Response::PublicKey(*self.slot(&pkh)?.material.public_key()))
            }
            Request::Sign {
                pkh,
                version,
                payload,
            } => self.sign(&pkh, version, payload),
            Request::ProvePossession { pkh, override_pk } => {
                self.prove_possession(&pkh, override_pk)
            }
            Request::Status => Ok(Response::Status(self.status())),
            Request::ExportWatermarks { start } => Ok(self.export(start)),
            Request::GenerateKey { curve, policy } => {
                self.provisioning()?;
                let pair = KeyPair::generate(curve, &mut self.entropy)?;
                self.add_key(Material::OnBoard(pair), policy)
            }
            Request::GenerateKeyWithBackup {
                curve,
                policy,
                recipient,
            } => {
                self.provisioning()?;
                let pair = KeyPair::generate(curve, &mut self.entropy)?;
                // Sealed before the key is stored: no backup, no key.
                let sealed =
                    crate::backup::seal(curve, &pair.to_secret(), &recipient, &mut self.entropy)?;
                match self.add_key(Material::OnBoard(pair), policy)? {
                    Response::KeyInfo(key) => Ok(Response::KeyBackup { key, sealed }),
                    other => Ok(other),
                }
            }
            Request::SetDuty { pkh, duty } => self.set_duty(&pkh, duty),
            Request::RemoveKey { pkh } => self.remove_key(&pkh),
            Request::ImportKeyWithDuty {
                curve,
                secret,
                policy,
                duty,
            } => self.import_with_duty(curve, &secret, policy, duty),
            Request::ImportKey {
                curve,
                secret,
                policy,
            } => {
                self.provisioning()?;
                let pair = KeyPair::from_secret(curve, &secret)?;
                self.add_key(Material::OnBoard(pair), policy)
            }
            Request::SetPolicy { pkh, policy } => {
                self.provisioning()?;
                let index = self.index(&pkh)?;
                // Nothing approved or started under the old policy is released under the new.
                self.rewrite_slot(index, |slot| slot.policy = policy)?;
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
                self.room_for(&id)?;
                self.marks.can_raise(&id, level, round)?;
                self.store.persist_mark(&id, level, round)?;
                self.counters.mark_writes = self.counters.mark_writes.saturating_add(1);
                self.marks.raise(&id, level, round)?;
                self.forget_pending();
                Ok(Response::Done)
            }
            Request::Reprovision { erase } => {
                self.provisioning()?;
                self.store.reprovision(erase)?;
                // Forgets pending work, as every state change does.
                self.reload();
                self.healthy()?;
                Ok(Response::Done)
            }
            Request::RegisterHostKey { public_key, policy } => {
                self.provisioning()?;
                let material = host_held::material(public_key)?;
                self.add_key(material, policy)
            }
            Request::HostSignature { pkh, signature } => self.host_signature(&pkh, signature),
            Request::HsmReply { sealed } => self.hsm_reply(sealed),
            Request::YubiHsmSetup { auth_key_id, keys } => {
                self.hsm_setup(crate::yubihsm::AuthKey::new(auth_key_id, &keys))
            }
            Request::RegisterHsmKey {
                key_id,
                public_key,
                policy,
            } => self.hsm_register(key_id, public_key, policy),
            Request::ImportHsmKey {
                key_id,
                expect,
                policy,
            } => self.hsm_import(key_id, expect, policy),
            Request::GenerateHsmKey {
                key_id,
                curve,
                label,
                domains,
                policy,
            } => self.hsm_generate(key_id, curve, label, domains, policy),
            Request::AllowPossession { pkh, operational } => {
                self.allow_possession(&pkh, operational)
            }
            Request::ForgetWatermarks { pkh } => self.forget_watermarks(&pkh),
            Request::SetJumpLimit { pkh, levels } => self.set_jump_limit(&pkh, levels),
            Request::LowerWatermark {
                chain,
                pkh,
                kind,
                level,
                round,
            } => self.lower_watermark(
                &MarkId {
                    chain,
                    key: pkh,
                    kind,
                },
                level,
                round,
            ),
            Request::SelfTest(r) => self.selftest(r),
            Request::Events(r) => self.events(r),
            Request::HsmCheck(r) => self.hsm_check(r),
            Request::CometBft(r) => self.cometbft(r),
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
            .position(|k| k.material.pkh() == pkh)
            .ok_or(Refusal::UnknownKey { pkh: *pkh })
    }

    fn slot(&self, pkh: &PublicKeyHash) -> Result<&KeySlot, Refusal> {
        self.index(pkh).map(|i| &self.keys[i])
    }

    fn add_key(&mut self, material: Material, policy: Policy) -> Result<Response, Refusal> {
        self.add_key_with(material, policy, Duty::default())
    }

    fn add_key_with(
        &mut self,
        material: Material,
        policy: Policy,
        duty: Duty,
    ) -> Result<Response, Refusal> {
        self.healthy()?;
        duty.validate(material.curve())?;
        let pkh = *material.pkh();
        if self.index(&pkh).is_ok() {
            return Err(Refusal::KeyExists { pkh });
        }
        let full = Refusal::KeyTableFull {
            capacity: capacity_u16(MAX_KEYS),
        };
        if self.keys.is_full() {
            return Err(full);
        }
        // The lowest slot number no key holds (a removed key's slot is reused).
        let slot_no = (0..MAX_KEYS)
            .filter_map(|n| u8::try_from(n).ok())
            .find(|n| self.keys.iter().all(|k| k.slot != *n))
            .ok_or(full)?;
        // A new key may prove possession in operational mode only once allowed to.
        let stored = material.stored(&policy, false, None, duty, None);
        self.store.persist_key(slot_no, &stored)?;
        let slot = KeySlot {
            slot: slot_no,
            material,
            policy,
            pop_operational: false,
            jump_limit: None,
            duty,
            cometbft_chain: None,
        };
        let info = slot.info();
        // In slot order, as a reload lists them.
        let at = self
            .keys
            .iter()
            .position(|k| k.slot > slot_no)
            .unwrap_or(self.keys.len());
        self.keys.insert(at, slot).map_err(|_| full)?;
        self.forget_pending();
        Ok(Response::KeyInfo(info))
    }

    /// Store key slot `index` again with its settings changed by `change` (its material
    /// unchanged), then hold them in RAM and forget pending work: the one path for
    /// `SetPolicy`, `AllowPossession`, `SetJumpLimit` and `SetDuty`. A store refusal changes
    /// nothing.
    fn rewrite_slot(
        &mut self,
        index: usize,
        change: impl FnOnce(&mut Settings),
    ) -> Result<(), Refusal> {
        let slot = &self.keys[index];
        let slot_no = slot.slot;
        let mut new = slot.settings();
        change(&mut new);
        new.duty.validate(slot.material.curve())?;
        let stored = slot.material.stored(
            &new.policy,
            new.pop_operational,
            new.jump_limit,
            new.duty,
            new.cometbft_chain.as_ref(),
        );
        self.store.persist_key(slot_no, &stored)?;
        self.keys[index].apply(new);
        self.forget_pending();
        Ok(())
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
            epoch: self.store.epoch(),
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
