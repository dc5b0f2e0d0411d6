//! The invariants of `core/tests/hostile.rs`, checked on every answer and after every step:
//! what was released or approved where (1), marks never lower (2), nothing changes but by
//! signing or provisioning (3), every signature verifies under a second library (5); and the
//! run's counters.

use std::collections::{BTreeMap, BTreeSet};

use pawl_core::digest::blake2b_256;
use pawl_core::keys::{Curve, PublicKey, PublicKeyHash, Signature};
use pawl_core::protocol::cometbft::CometResponse;
use pawl_core::protocol::selftest::SelfTestResponse;
use pawl_core::protocol::{Backend, KeyInfo, Mode, Refusal, Request, Response};
use pawl_core::request::ChainId;
use pawl_core::store::StoreError;
use pawl_core::watermark::{MarkId, MarkKind};

use crate::driver::{Harness, Pos, Release, Sent, kind_of_magic};
use crate::fuzz::octez_position;
use crate::support::{verify_independently, verify_pop_independently};

impl Harness {
    pub fn key(&self, pkh: &PublicKeyHash) -> Option<&KeyInfo> {
        self.keys.iter().find(|k| k.pkh == *pkh)
    }

    pub fn process(&mut self, sent: Sent, name: String, response: Response) {
        let answer = response_name(&response);
        *self.stats.requests.entry(name.clone()).or_default() += 1;
        if let Response::Refused(r) = &response {
            *self.stats.refusals.entry(reason(r)).or_default() += 1;
            if matches!(r, Refusal::Store(StoreError::WriteBudget { .. })) {
                // The write budget (issue 13, finding 3): transient, refused before anything
                // was written; invariants 2-3 (after the step) check the marks did not move.
                if self.wrote != 0 {
                    self.fail(
                        3,
                        format!(
                            "{name} was refused for the write budget after writing {} record(s)",
                            self.wrote
                        ),
                    );
                }
                self.stats.budget_refusals += 1;
            } else if matches!(r, Refusal::Store(_)) {
                if self.cut_armed {
                    if !self.effect.power_failed {
                        // The write the power went in: the only one that may have landed.
                        match &sent {
                            Sent::KeyWrite { pkh, policy } => {
                                self.effect.cut_key_write = Some((Some(*pkh), policy.clone()))
                            }
                            Sent::Other | Sent::HsmReply => {
                                self.effect.cut_key_write = Some((None, None))
                            }
                            Sent::Operator { pkh, forget: true } => {
                                self.effect.cut_forget = Some(*pkh)
                            }
                            Sent::KeyRemoval { pkh } => self.effect.cut_key_removal = Some(*pkh),
                            Sent::CometPin { pkh, .. } => {
                                self.effect.cut_key_write = Some((Some(*pkh), None))
                            }
                            _ => {}
                        }
                    }
                    self.effect.power_failed = true;
                } else if !self.refusing_after_erase {
                    let status = self.ask(Request::Status);
                    let example = format!("step {}: {name} → {r:?}; {status:?}", self.stats.steps);
                    self.stats
                        .suspicious("a store error with the power on", example);
                }
            }
        }
        self.stats.paths.insert((name.clone(), answer.clone()));
        if let Sent::Harmless { flash } = &sent {
            if self.wrote != 0 {
                self.fail(
                    3,
                    format!(
                        "{name}, which changes nothing durable, wrote {} record(s): {answer}",
                        self.wrote
                    ),
                );
            }
            let skipped = matches!(
                response,
                Response::SelfTest(SelfTestResponse::Skipped(_)) | Response::Refused(_)
            );
            if *flash && !skipped {
                self.fail(
                    3,
                    format!("FlashTime on a board lent no instruments answered {response:?}"),
                );
            }
        }
        match (sent, response) {
            (Sent::Sign { pkh, payload }, Response::Signature(sig)) => {
                self.released(&pkh, &payload, &sig, "sign");
            }
            (Sent::Sign { pkh, payload }, Response::DigestApproved { pkh: p, digest }) => {
                match self.key(&pkh) {
                    Some(k) if k.backend == Backend::HostHeld && p == pkh => {}
                    other => self.fail(1, format!("DigestApproved for {p:?} asked of {other:?}")),
                }
                if digest != blake2b_256(&payload) {
                    self.fail(1, "approved a digest that is not the request's".into());
                }
                self.position(&pkh, &payload, "approval");
                self.stats.release("host-held approvals");
                self.approval = Some((pkh, payload));
            }
            (Sent::Sign { pkh, payload }, Response::RelayToHsm { sealed }) => {
                if self.key(&pkh).map(|k| k.backend) != Some(Backend::YubiHsm) {
                    self.fail(
                        1,
                        format!("RelayToHsm for a key that is not in the HSM: {pkh:?}"),
                    );
                }
                self.position(&pkh, &payload, "HSM sign");
                self.stats.release("HSM signs started");
                self.hsm_flow = Some((pkh, payload));
                self.comet_flow = None;
                self.relay = Some(sealed.to_vec());
            }
            (Sent::Sign { pkh, payload }, Response::Refused(_)) => {
                let tz4 = pkh.curve == Curve::Bls12_381;
                if let Some((chain, magic, level, round)) = octez_position(&payload, tz4) {
                    let id = MarkId {
                        chain: ChainId(chain),
                        key: pkh,
                        kind: kind_of_magic(magic),
                    };
                    self.effect.refused_at.push((id, (level, round)));
                }
            }
            (Sent::HostSignature { pkh }, Response::Signature(sig)) => match self.approval.take() {
                Some((p, payload)) if p == pkh => {
                    self.released(&pkh, &payload, &sig, "host-held signatures")
                }
                other => self.fail(
                    1,
                    format!("a host signature for {pkh:?} released with approval {other:?}"),
                ),
            },
            (Sent::HsmReply, Response::Signature(sig)) => {
                self.relay = None;
                match self.hsm_flow.take() {
                    Some((pkh, payload)) => self.released(&pkh, &payload, &sig, "HSM signatures"),
                    None => self.fail(1, "an HSM signature with no HSM sign under way".into()),
                }
            }
            (Sent::HsmReply, Response::RelayToHsm { sealed }) => self.relay = Some(sealed.to_vec()),
            (Sent::HsmReply, Response::CometBft(answer)) => {
                self.relay = None;
                match self.comet_flow.take() {
                    Some((pkh, bytes)) => self.comet_released(&pkh, &bytes, None, answer, true),
                    None => self.fail(
                        1,
                        format!("a CometBFT answer with no CometBFT sign under way: {answer:?}"),
                    ),
                }
            }
            (Sent::HsmReply, r) => {
                self.relay = None;
                self.hsm_flow = None;
                self.comet_flow = None;
                self.provisioned(&r);
            }
            (
                Sent::CometSign {
                    pkh,
                    sign_bytes,
                    extension,
                },
                Response::CometBft(answer),
            ) => self.comet_released(&pkh, &sign_bytes, extension.as_deref(), answer, false),
            (
                Sent::CometSign {
                    pkh, sign_bytes, ..
                },
                Response::RelayToHsm { sealed },
            ) => {
                self.comet_approved(&pkh, &sign_bytes);
                self.hsm_flow = None;
                self.comet_flow = Some((pkh, sign_bytes));
                self.relay = Some(sealed.to_vec());
            }
            (Sent::CometPin { pkh, chain }, r @ Response::KeyInfo(_)) => {
                self.provisioned(&r);
                self.comet_pins.insert(pkh, chain);
            }
            (
                _,
                Response::CometBft(
                    answer @ (CometResponse::Vote { .. } | CometResponse::Proposal { .. }),
                ),
            ) => self.fail(
                5,
                format!("a CometBFT signature in answer to {name}: {answer:?}"),
            ),
            (Sent::Prove { pkh, other }, Response::Signature(sig)) => {
                let ok = match (self.key(&pkh).map(|k| k.public_key), other, sig) {
                    (Some(PublicKey::Bls(pk)), None, s) => verify_pop_independently(&pk, &s),
                    (Some(PublicKey::Bls(pk)), Some(PublicKey::Bls(o)), Signature::Bls(s)) => {
                        crate::fuzz::verify_pop_of(&pk, &o, &s)
                    }
                    _ => false,
                };
                if !ok {
                    self.fail(
                        5,
                        format!("a proof of possession that does not verify: {sig:?}"),
                    );
                }
                self.stats.release("proofs of possession");
            }
            (_, Response::Signature(sig)) => {
                self.fail(5, format!("a signature in answer to {name}: {sig:?}"))
            }
            (_, Response::DigestApproved { .. }) => {
                self.fail(1, format!("an approval in answer to {name}"))
            }
            (_, Response::RelayToHsm { sealed }) => {
                self.hsm_flow = None;
                self.comet_flow = None;
                self.relay = Some(sealed.to_vec());
            }
            (Sent::ImportWatermark { id, level, round }, Response::Done) => {
                self.effect.allowed.push((id, (level, round)));
                self.provisioned(&Response::Done);
            }
            (Sent::Reprovision { erase: true }, Response::Refused(Refusal::Store(_)))
                if self.cut_armed =>
            {
                self.effect.erase_cut = true;
            }
            (Sent::Operator { pkh, .. }, Response::Refused(Refusal::Store(_))) => {
                // The operator confirmed; the power went while the undo was written.
                self.effect.operator_keys.push(pkh);
                self.effect.operator_cut = true;
            }
            (Sent::Operator { pkh, .. }, Response::Done) => {
                self.stats.frame("(operator lowered or forgot marks)");
                self.effect.operator_keys.push(pkh);
                self.provisioned(&Response::Done);
            }
            (Sent::Reprovision { erase }, Response::Done) => {
                self.refusing_after_erase = false;
                self.approval = None;
                // Adopting the image reloads the marks as ceilings: they may rise, not fall.
                self.effect.reloaded = true;
                if erase {
                    self.effect.reset = true;
                    // The operator's physical act erased everything: a new epoch, and the
                    // operator provisions the keys again.
                    self.stats.erases += 1;
                    self.releases.clear();
                    self.forget_comet(None);
                    self.needs_setup = true;
                    // A new board configuration from the next boot on (ceilings are absolute).
                    self.ahead = *self.rng.pick(&[0, 1, 4, 16]);
                }
                self.provisioned(&Response::Done);
            }
            (_, r) => self.provisioned(&r),
        }
    }

    /// A provisioning answer: allowed only in provisioning mode; keys may change.
    pub fn provisioned(&mut self, r: &Response) {
        if matches!(
            r,
            Response::KeyInfo(_) | Response::KeyBackup { .. } | Response::Done
        ) {
            if self.mode == Mode::Operational {
                self.fail(3, format!("operational mode answered {r:?}"));
            }
            self.effect.keys_may_change = true;
            if let Response::KeyInfo(info) = r {
                // Rewritten otherwise than by `SetChain`: its pin is no longer known.
                self.comet_pins.remove(&info.pkh);
            }
            // The board ends pending work on a state change; a `Done` that changed nothing
            // leaves it. The model keeps it either way: a board that forgot refuses the
            // continuation, and what it releases is checked against the pending payload.
        }
    }

    /// A released signature: verify it (5) and record its position (1).
    pub fn released(
        &mut self,
        pkh: &PublicKeyHash,
        payload: &[u8],
        sig: &Signature,
        what: &'static str,
    ) {
        let Some(key) = self.key(pkh) else {
            self.fail(
                5,
                format!("a signature for {pkh:?}, which ListKeys does not show"),
            )
        };
        if !verify_independently(&key.public_key, payload, sig) {
            self.fail(
                5,
                format!(
                    "a {what} signature that does not verify under {:?}: payload {} signature {sig:?}",
                    key.public_key,
                    hex::encode(payload)
                ),
            );
        }
        self.position(pkh, payload, what);
        self.stats.release(what);
    }

    /// Invariant 1: remember what was released or approved at the payload's position.
    pub fn position(&mut self, pkh: &PublicKeyHash, payload: &[u8], what: &'static str) {
        let tz4 = pkh.curve == Curve::Bls12_381;
        let Some((chain, magic, level, round)) = octez_position(payload, tz4) else {
            return;
        };
        if level > i32::MAX as u32 || round > i32::MAX as u32 {
            self.fail(
                1,
                format!("{what} at a negative int32 level/round ({level}, {round}): docs/protocol.md §1 says pawl refuses them"),
            );
        }
        let hash = blake2b_256(payload);
        let pos: Pos = (chain, *pkh, magic, level, round);
        if let Some(r) = self.releases.get(&pos)
            && r.hash != hash
        {
            self.fail(
                1,
                format!(
                    "two payloads at (chain {}, key {}, kind {magic:#04x}, level {level}, round {round}):\n    {} at step {}: {}\n    {what} now: {}",
                    hex::encode(chain),
                    pkh.to_b58(),
                    r.what,
                    r.step,
                    hex::encode(&r.payload),
                    hex::encode(payload)
                ),
            );
        }
        self.releases.entry(pos).or_insert(Release {
            hash,
            step: self.stats.steps,
            payload: payload.to_vec(),
            what,
        });
        let id = MarkId {
            chain: ChainId(chain),
            key: *pkh,
            kind: kind_of_magic(magic),
        };
        self.effect.allowed.push((id, (level, round)));
    }
    /// Invariants 2 and 3, against the board's own key list and watermark export.
    pub fn check_after(&mut self) {
        let keys = match self.ask(Request::ListKeys) {
            Response::Keys(k) => k.to_vec(),
            other => self.fail(4, format!("ListKeys answered {other:?}")),
        };
        if keys != self.keys && !(self.effect.keys_may_change || self.effect.rebooted) {
            self.fail(
                3,
                format!("keys or policies changed without a provisioning answer:\n    before {:?}\n    after  {keys:?}", self.keys),
            );
        }
        if self.effect.rebooted && keys != self.keys {
            let gone: Vec<&KeyInfo> = self.keys.iter().filter(|k| !keys.contains(k)).collect();
            let new: Vec<&KeyInfo> = keys.iter().filter(|k| !self.keys.contains(k)).collect();
            let example = format!(
                "step {}:\n    before {gone:?}\n    after  {new:?}",
                self.stats.steps
            );
            if self.effect.erase_cut {
                // An erase: keys are meant to go.
            } else if self.effect.cut_fired
                && self.effect.ran_in == Some(Mode::Provisioning)
                && self.cut_write_landed(&gone, &new)
            {
                // The power went during this key write: the board never answered it (a real
                // board has no power to), and the record was complete or not.
                self.stats
                    .frame("(a key write cut by the power landed: docs/design.md §8)");
            } else {
                self.fail(
                    3,
                    format!("keys or policies changed across a reboot, other than by the one write a power cut interrupted ({:?}): {example}", self.effect.cut_key_write),
                );
            }
        }
        self.comet_pins
            .retain(|pkh, _| keys.iter().any(|k| k.pkh == *pkh));
        let before = core::mem::replace(&mut self.keys, keys);
        let mut marks = BTreeMap::new();
        let mut start = 0u16;
        loop {
            match self.ask(Request::ExportWatermarks { start }) {
                Response::Watermarks { entries, next } => {
                    for e in entries {
                        let id = MarkId {
                            chain: e.chain,
                            key: e.pkh,
                            kind: e.kind,
                        };
                        if marks.insert(id, (e.level, e.round)).is_some() {
                            self.fail(2, format!("the export lists {id:?} twice"));
                        }
                    }
                    match next {
                        Some(n) if n > start => start = n,
                        Some(n) => self.fail(4, format!("export page {start} points back to {n}")),
                        None => break,
                    }
                }
                other => self.fail(4, format!("ExportWatermarks answered {other:?}")),
            }
        }
        if !self.effect.reset {
            if let Some(pkh) = self.effect.cut_forget {
                self.forget_all_or_none(&pkh, &before, &marks);
            }
            for (id, old) in &self.marks {
                if self.effect.operator_keys.contains(&id.key) {
                    if marks.get(id).is_none_or(|new| new < old) {
                        // The operator lowered or forgot this mark: its history starts again.
                        let magic = match id.kind {
                            MarkKind::Block => 0x11,
                            MarkKind::Preattestation => 0x12,
                            MarkKind::Attestation => 0x13,
                            // No Tezos release shares a CometBFT mark.
                            MarkKind::CometBft => 0x00,
                        };
                        self.releases
                            .retain(|pos, _| (pos.0, pos.1, pos.2) != (id.chain.0, id.key, magic));
                        if id.kind == MarkKind::CometBft {
                            // Its CometBFT history starts again too.
                            self.comet_signed.retain(|pos, _| pos.1 != id.key);
                            self.comet_high.retain(|(key, _), _| *key != id.key);
                        }
                    }
                    continue;
                }
                match marks.get(id) {
                    None => self.fail(2, format!("mark {id:?} at {old:?} is gone")),
                    Some(new) if new < old => {
                        self.fail(2, format!("mark {id:?} lowered from {old:?} to {new:?}"))
                    }
                    _ => {}
                }
            }
            for (id, new) in &marks {
                if self.marks.get(id) == Some(new)
                    || self.effect.rebooted
                    || self.effect.reloaded
                    || self.effect.operator_keys.contains(&id.key)
                {
                    continue;
                }
                if self.effect.allowed.contains(&(*id, *new)) {
                    continue;
                }
                if self.effect.refused_at.contains(&(*id, *new)) {
                    let example = format!("step {}: {id:?} to {new:?}", self.stats.steps);
                    self.stats
                        .suspicious("a refused sign request moved its mark", example);
                    continue;
                }
                self.fail(
                    3,
                    format!(
                        "mark {id:?} moved from {:?} to {new:?} by no release or import at that position",
                        self.marks.get(id)
                    ),
                );
            }
        }
        self.marks = marks;
    }
}

impl Harness {
    /// Whether the keys that changed across this step's reboot are exactly what the one key
    /// write the power cut interrupted asked: one key rewritten (with the policy asked), or
    /// one key added.
    fn cut_write_landed(&self, gone: &[&KeyInfo], new: &[&KeyInfo]) -> bool {
        let one_rewritten = |pkh: Option<PublicKeyHash>| {
            matches!((gone, new), ([g], [n]) if g.pkh == n.pkh
                && g.public_key == n.public_key
                && g.backend == n.backend
                && pkh.is_none_or(|p| p == n.pkh))
        };
        if let Some(pkh) = self.effect.cut_key_removal {
            return matches!((gone, new), ([g], []) if g.pkh == pkh);
        }
        match &self.effect.cut_key_write {
            Some((Some(pkh), policy)) => {
                one_rewritten(Some(*pkh)) && policy.as_ref().is_none_or(|p| new[0].policy == *p)
            }
            Some((None, _)) => (gone.is_empty() && new.len() == 1) || one_rewritten(None),
            None => false,
        }
    }

    /// A `ForgetWatermarks` of `pkh` cut by the power: of the key's marks on chains its
    /// policy refuses, all are gone or none (one record, `core/src/store/resets.rs`).
    fn forget_all_or_none(
        &self,
        pkh: &PublicKeyHash,
        before: &[KeyInfo],
        marks: &BTreeMap<MarkId, (u32, u32)>,
    ) {
        let Some(key) = self.keys.iter().find(|k| k.pkh == *pkh) else {
            return;
        };
        if before.iter().find(|k| k.pkh == *pkh) != Some(key) {
            // The policy changed in this step too: which marks were doomed is not known.
            return;
        }
        let chains = &key.policy.chains;
        let doomed: Vec<&MarkId> = self
            .marks
            .keys()
            .filter(|id| id.key == *pkh && !chains.is_empty() && !chains.contains(&id.chain))
            .collect();
        let gone = doomed.iter().filter(|id| !marks.contains_key(id)).count();
        if gone != 0 && gone != doomed.len() {
            self.fail(
                2,
                format!(
                    "a forget cut by the power took effect in part: {gone} of {} marks gone ({doomed:?})",
                    doomed.len()
                ),
            );
        }
    }
}

/// The first word of a `Debug` rendering: a variant's name.
pub fn head(debug: &str) -> &str {
    let end = debug.find([' ', '(', ')', '{']).unwrap_or(debug.len());
    &debug[..end]
}

/// A refusal's reason, two levels deep (`Watermark(NotAbove)`).
pub fn reason(r: &Refusal) -> String {
    let debug = format!("{r:?}");
    let outer = head(&debug).to_string();
    match debug
        .get(outer.len()..)
        .and_then(|rest| rest.strip_prefix('('))
    {
        Some(inner) => format!("{outer}({})", head(inner)),
        None => outer,
    }
}

/// A response's name, refusals with their reason.
pub fn response_name(r: &Response) -> String {
    match r {
        Response::Refused(refusal) => format!("Refused:{}", reason(refusal)),
        other => head(&format!("{other:?}")).to_string(),
    }
}

/// What a run did, printed at the end.
#[derive(Default)]
pub struct Stats {
    pub steps: u64,
    pub frames: BTreeMap<&'static str, u64>,
    pub requests: BTreeMap<String, u64>,
    pub refusals: BTreeMap<String, u64>,
    pub released: BTreeMap<&'static str, u64>,
    pub paths: BTreeSet<(String, String)>,
    pub reboots: u64,
    pub mode_switches: u64,
    pub cuts_armed: u64,
    pub cuts_fired: u64,
    pub erases: u64,
    pub idle_writes: u64,
    /// Requests refused for the flash write budget (each checked to have written nothing).
    pub budget_refusals: u64,
    pub suspicious: BTreeMap<String, (u64, String)>,
}

impl Stats {
    pub fn frame(&mut self, category: &'static str) {
        *self.frames.entry(category).or_default() += 1;
    }
    pub fn release(&mut self, what: &'static str) {
        *self.released.entry(what).or_default() += 1;
    }
    /// Something that breaks no invariant but deserves a look: counted, first example kept.
    pub fn suspicious(&mut self, what: &str, example: String) {
        self.suspicious
            .entry(what.to_string())
            .or_insert((0, example))
            .0 += 1;
    }

    pub fn print(&self, seed: u64, ahead: u32, secs: f64) {
        let rate = self.steps as f64 / secs.max(1e-9);
        println!(
            "hostile: seed {seed:#x} (ceiling_ahead N = {ahead} last, new after each erase): {} steps in {secs:.1} s ({rate:.0} steps/s)",
            self.steps
        );
        println!("  frames by category: {:?}", self.frames);
        println!("  released: {:?}", self.released);
        println!(
            "  reboots {} (mode switches {}), power cuts armed {} / fired {}, erases {}, idle writes {}, write-budget refusals {}",
            self.reboots,
            self.mode_switches,
            self.cuts_armed,
            self.cuts_fired,
            self.erases,
            self.idle_writes,
            self.budget_refusals
        );
        println!("  requests decoded by the board: {:?}", self.requests);
        println!("  refusals by reason:");
        for (r, n) in &self.refusals {
            println!("    {n:>9}  {r}");
        }
        println!("  distinct (request, answer) pairs: {}", self.paths.len());
        for (what, (n, example)) in &self.suspicious {
            println!("  suspicious (not an invariant): {what}: {n}×, first: {example}");
        }
    }
}
