//! What the hostile host of `core/tests/hostile.rs` sends: well-formed requests of every
//! variant with interesting payloads, their mutations re-framed with a valid CRC, raw bytes,
//! relayed HSM replies (honest or not) and host signatures (right or wrong).

use pawl_core::digest::blake2b_256;
use pawl_core::keys::{Curve, PublicKey, PublicKeyHash, SecretBytes, Signature, SigningVersion};
use pawl_core::policy::{BallotSet, Policy};
use pawl_core::protocol::cometbft::CometRequest;
use pawl_core::protocol::events::EventsRequest;
use pawl_core::protocol::hsm_check::HsmCheckRequest;
use pawl_core::protocol::selftest::SelfTestRequest;
use pawl_core::protocol::{Backend, Duty, MAX_FRAME, PROTOCOL_VERSION, Request, Role};
use pawl_core::request::{ChainId, KindSet, OpKind, OpKindSet, RequestKind};
use pawl_core::watermark::{MarkId, MarkKind};

use crate::driver::Harness;
use crate::fuzz::{self, Rng};
use crate::support::hsm::{AUTH_ID, ED25519_ID, K256_ID, P256_ID, SIGNER_AUTH_ID};

/// The keys the mock HSM holds.
pub const HSM_IDS: [u16; 3] = [K256_ID, P256_ID, ED25519_ID];

const KINDS: [MarkKind; 3] = [
    MarkKind::Block,
    MarkKind::Preattestation,
    MarkKind::Attestation,
];

fn random_pkh(rng: &mut Rng) -> PublicKeyHash {
    PublicKeyHash {
        curve: *rng.pick(&Curve::ALL),
        hash: rng.array(),
    }
}

fn random_public(rng: &mut Rng) -> PublicKey {
    match rng.below(4) {
        0 => PublicKey::Ed25519(rng.array()),
        1 => {
            let mut k: [u8; 33] = rng.array();
            k[0] = 2 + (k[0] & 1);
            PublicKey::Secp256k1(k)
        }
        2 => {
            let mut k: [u8; 33] = rng.array();
            k[0] = 2 + (k[0] & 1);
            PublicKey::P256(k)
        }
        _ => PublicKey::Bls(rng.array()),
    }
}

fn random_signature(rng: &mut Rng) -> Signature {
    match rng.below(4) {
        0 => Signature::Ed25519(rng.array()),
        1 => Signature::Secp256k1(rng.array()),
        2 => Signature::P256(rng.array()),
        _ => Signature::Bls(rng.array()),
    }
}

impl Harness {
    /// A policy: consensus kinds, sometimes generic and Michelson data with operation kinds,
    /// sometimes pinned chains or confirm-on-device.
    /// A chain and kind for `pkh`, with the key's mark there as the model knows it (or level
    /// 1000 when it has none): where watermark requests aim.
    fn some_mark(&mut self, pkh: &PublicKeyHash) -> (ChainId, MarkKind, (u32, u32)) {
        let chain = ChainId(self.chain());
        let kind = *self.rng.pick(&KINDS);
        let id = MarkId {
            chain,
            key: *pkh,
            kind,
        };
        (
            chain,
            kind,
            self.marks.get(&id).copied().unwrap_or((1000, 0)),
        )
    }

    /// A duty: mostly ordinary, sometimes standby, a companion, or a window around the levels
    /// the steps use (some of them empty, which the board refuses).
    pub fn duty(&mut self) -> Duty {
        let level = |rng: &mut Rng| {
            if rng.pct(50) {
                None
            } else {
                Some(rng.below(3_000) as u32)
            }
        };
        Duty {
            role: if self.rng.pct(15) {
                Role::Companion
            } else {
                Role::Consensus
            },
            standby: self.rng.pct(15),
            from_level: level(&mut self.rng),
            until_level: level(&mut self.rng),
        }
    }

    pub fn policy(&mut self, generic: bool) -> Policy {
        let mut p = Policy::default();
        if generic || self.rng.pct(20) {
            p.kinds = p
                .kinds
                .with(RequestKind::Generic)
                .with(RequestKind::Michelson);
            let mut ops = OpKindSet::EMPTY;
            for op in OpKind::ALL {
                if self.rng.pct(70) {
                    ops = ops.with(*op);
                }
            }
            p.ops = ops;
            p.ballots = if self.rng.pct(70) {
                BallotSet::ALL
            } else {
                BallotSet::EMPTY.with(pawl_core::request::Ballot::Yay)
            };
        }
        if self.rng.pct(10) {
            p.kinds = KindSet::EMPTY.with(*self.rng.pick(&RequestKind::ALL));
        }
        if self.rng.pct(8) {
            for _ in 0..1 + self.rng.below(2) {
                let chain = ChainId(*self.rng.pick(&self.chains.clone()));
                let _ = p.chains.push(chain);
            }
        }
        if self.rng.pct(8) {
            p.confirm = KindSet::EMPTY.with(*self.rng.pick(&RequestKind::ALL));
        }
        p
    }

    pub fn some_pkh(&mut self) -> PublicKeyHash {
        if self.keys.is_empty() || self.rng.pct(4) {
            return random_pkh(&mut self.rng);
        }
        let i = self.rng.below(self.keys.len() as u64) as usize;
        self.keys[i].pkh
    }

    fn chain(&mut self) -> [u8; 4] {
        match self.rng.below(100) {
            0..50 => self.chains[0],
            50..80 => self.chains[1],
            80..97 => {
                let c = self.chains.clone();
                *self.rng.pick(&c[2..])
            }
            _ => self.rng.array(),
        }
    }

    /// A (level, round) near, at, below or far above `(l, r)`.
    fn near(&mut self, (l, r): (u32, u32)) -> (u32, u32) {
        const MAX: u32 = i32::MAX as u32;
        // After a restart a mark is a ceiling (level + N, u32::MAX): go on from its level.
        let r = if r >= MAX - 1 && self.rng.pct(90) {
            0
        } else {
            r
        };
        // A mark near 2^31 - 1 is burned (a known limit): mostly ask about another level.
        let l = if l > MAX - 1000 && self.rng.pct(90) {
            1000 + self.rng.below(1000) as u32
        } else {
            l
        };
        // Huge levels are rare: a mark at 2^31 - 1 is burned for good (a known limit), and a
        // run whose marks are all burned signs nothing more.
        match self.rng.below(1000) {
            0..300 => (l.saturating_add(1), 0),
            300..450 => (l, r.saturating_add(1)),
            450..550 => (l, r),
            550..650 => (l.saturating_sub(1 + self.rng.below(4) as u32), 0),
            650..780 => (
                l.saturating_add(2 + self.rng.below(100) as u32),
                self.rng.below(3) as u32,
            ),
            780..784 => (MAX - self.rng.below(3) as u32, self.rng.below(2) as u32),
            784..790 => (self.rng.next() as u32, self.rng.next() as u32),
            790..820 => (l, MAX - self.rng.below(2) as u32),
            820..900 => (l.saturating_add(self.ahead + self.rng.below(3) as u32), 0),
            _ => (l.saturating_add(1), self.rng.bits(31) as u32),
        }
    }

    /// A payload for `pkh` to sign: consensus (every tag, near the current marks), an
    /// identical retry, generic operations, Michelson data or junk.
    pub fn payload(&mut self, pkh: &PublicKeyHash) -> Vec<u8> {
        let tz4 = pkh.curve == Curve::Bls12_381;
        let roll = self.rng.below(100);
        if roll < 12 {
            let mine: Vec<Vec<u8>> = self
                .recent
                .iter()
                .filter(|(k, _)| k == pkh)
                .map(|(_, p)| p.clone())
                .collect();
            if !mine.is_empty() {
                return self.rng.pick(&mine).clone();
            }
        }
        let payload = match roll {
            0..76 => {
                // Mostly a mark the board already keeps (a full table refuses new ones).
                let known: Vec<MarkId> = self
                    .marks
                    .keys()
                    .filter(|m| m.key == *pkh && m.kind != MarkKind::CometBft)
                    .copied()
                    .collect();
                let (chain, kind) = if !known.is_empty() && self.rng.pct(60) {
                    let m = *self.rng.pick(&known);
                    (m.chain.0, m.kind)
                } else {
                    (self.chain(), *self.rng.pick(&KINDS))
                };
                let id = MarkId {
                    chain: ChainId(chain),
                    key: *pkh,
                    kind,
                };
                let base = match self.marks.get(&id) {
                    Some(m) => *m,
                    None => (1000 + self.rng.below(50) as u32, 0),
                };
                let (level, round) = self.near(base);
                let bls_form = if self.rng.pct(90) { tz4 } else { !tz4 };
                match kind {
                    MarkKind::Block => fuzz::block(&mut self.rng, chain, level, round),
                    MarkKind::Preattestation => {
                        let tag = if bls_form { 40 } else { 20 };
                        fuzz::attestation(&mut self.rng, 0x12, tag, chain, level, round)
                    }
                    MarkKind::Attestation => {
                        let tag = if bls_form {
                            41
                        } else {
                            *self.rng.pick(&[21, 21, 23])
                        };
                        fuzz::attestation(&mut self.rng, 0x13, tag, chain, level, round)
                    }
                    MarkKind::CometBft => unreachable!("the kinds drawn are Tezos kinds"),
                }
            }
            76..89 => fuzz::generic(&mut self.rng),
            89..97 => fuzz::michelson(&mut self.rng),
            _ => {
                let mut v = self.rng.upto(120);
                if let Some(b) = v.first_mut() {
                    *b = *self
                        .rng
                        .pick(&[0x01, 0x02, 0x04, 0x11, 0x12, 0x13, 0x03, 0x05]);
                }
                v
            }
        };
        self.recent.push_back((*pkh, payload.clone()));
        if self.recent.len() > 64 {
            self.recent.pop_front();
        }
        payload
    }

    /// Build one well-formed request and hand it, encoded, to `emit`.
    fn request(&mut self) -> (u32, Vec<u8>, Vec<u8>) {
        let id = self.rng.next() as u32;
        let pkh = self.some_pkh();
        let payload;
        let label;
        let chain_text;
        let extension;
        // 0..1000: the Tezos-era mix; 1000..1040: the self-test, events, HSM check and
        // CometBFT families (4%), so the older mix keeps its proportions.
        let roll = self.rng.below(1040);
        let request = match roll {
            0..700 => {
                payload = self.payload(&pkh);
                let version = if self.rng.pct(90) {
                    SigningVersion::LATEST
                } else {
                    SigningVersion(*self.rng.pick(&[0, 1, 2, 4, 255]))
                };
                Request::Sign {
                    pkh,
                    version,
                    payload: &payload,
                }
            }
            700..720 => Request::Hello {
                protocol: if self.rng.pct(80) {
                    PROTOCOL_VERSION
                } else {
                    self.rng.next() as u16
                },
            },
            720..740 => Request::ListKeys,
            740..760 => Request::PublicKey { pkh },
            760..800 => {
                let override_pk = match self.rng.below(4) {
                    0 => Some(PublicKey::Bls(self.rng.array())),
                    1 => Some(random_public(&mut self.rng)),
                    2 => self
                        .keys
                        .iter()
                        .map(|k| k.public_key)
                        .find(|k| k.curve() == Curve::Bls12_381),
                    _ => None,
                };
                Request::ProvePossession { pkh, override_pk }
            }
            800..820 => Request::Status,
            820..840 => Request::ExportWatermarks {
                start: self.rng.below(80) as u16,
            },
            840..846 => Request::GenerateKey {
                curve: *self.rng.pick(&Curve::ALL),
                policy: self.policy(false),
            },
            846..850 => Request::GenerateKeyWithBackup {
                curve: *self.rng.pick(&Curve::ALL),
                policy: self.policy(false),
                // Any 32 bytes: a low-order point is refused, the rest seal.
                recipient: if self.rng.pct(10) {
                    [0; 32]
                } else {
                    self.rng.array()
                },
            },
            850..860 => {
                let secrets = crate::support::power::secrets();
                let (curve, secret) = if self.rng.pct(50) {
                    SecretBytes::from_b58(self.rng.pick(&secrets).as_str()).expect("secret")
                } else {
                    (
                        *self.rng.pick(&Curve::ALL),
                        SecretBytes::new(self.rng.array()),
                    )
                };
                if self.rng.pct(30) {
                    Request::ImportKeyWithDuty {
                        curve,
                        secret,
                        policy: self.policy(false),
                        duty: self.duty(),
                    }
                } else {
                    Request::ImportKey {
                        curve,
                        secret,
                        policy: self.policy(false),
                    }
                }
            }
            860..876 => Request::SetPolicy {
                pkh,
                policy: self.policy(false),
            },
            876..882 => Request::SetDuty {
                pkh,
                duty: self.duty(),
            },
            882..885 => Request::RemoveKey { pkh },
            885..915 => {
                let (chain, kind, base) = self.some_mark(&pkh);
                let (level, round) = self.near(base);
                Request::ImportWatermark {
                    chain,
                    pkh,
                    kind,
                    level,
                    round,
                }
            }
            915..925 => {
                payload = self.rng.upto(200);
                Request::HsmReply { sealed: &payload }
            }
            925..935 => Request::HostSignature {
                pkh,
                signature: random_signature(&mut self.rng),
            },
            935..945 => Request::Reprovision {
                // Erasing ends the run's history (a new epoch): rare.
                erase: self.rng.below(50) == 0,
            },
            945..960 => {
                let public_key = match self.rng.below(3) {
                    0 => random_public(&mut self.rng),
                    _ => {
                        let i = self.rng.below(self.service.len() as u64) as usize;
                        self.service[i].public()
                    }
                };
                Request::RegisterHostKey {
                    public_key,
                    policy: self.policy(false),
                }
            }
            960..970 => Request::YubiHsmSetup {
                auth_key_id: *self
                    .rng
                    .pick(&[SIGNER_AUTH_ID, SIGNER_AUTH_ID, AUTH_ID, 77]),
                keys: if self.rng.pct(70) {
                    self.hsm_auth.clone()
                } else {
                    SecretBytes::new(self.rng.array())
                },
            },
            970..980 => {
                let key_id = *self.rng.pick(&HSM_IDS);
                let public_key = if self.rng.pct(70) {
                    self.hsm_public(key_id)
                } else {
                    random_public(&mut self.rng)
                };
                Request::RegisterHsmKey {
                    key_id,
                    public_key,
                    policy: self.policy(false),
                }
            }
            980..993 => {
                let key_id = *self.rng.pick(&[K256_ID, P256_ID, ED25519_ID, 0x99]);
                let expect = match self.rng.below(3) {
                    0 => None,
                    1 if key_id != 0x99 => Some(self.hsm_public(key_id)),
                    _ => Some(random_public(&mut self.rng)),
                };
                Request::ImportHsmKey {
                    key_id,
                    expect,
                    policy: self.policy(false),
                }
            }
            993..995 => {
                let (chain, kind, base) = self.some_mark(&pkh);
                Request::LowerWatermark {
                    chain,
                    pkh,
                    kind,
                    level: base.0.saturating_sub(self.rng.below(50) as u32),
                    round: 0,
                }
            }
            995 => Request::ForgetWatermarks { pkh },
            996..998 => Request::SetJumpLimit {
                pkh,
                levels: if self.rng.pct(30) {
                    None
                } else {
                    Some(self.rng.bits(24) as u32)
                },
            },
            998 => Request::AllowPossession {
                pkh,
                operational: self.rng.pct(50),
            },
            999 => {
                label = "hostile".repeat(1 + self.rng.below(7) as usize);
                Request::GenerateHsmKey {
                    key_id: 0,
                    curve: *self.rng.pick(&Curve::ALL),
                    label: &label,
                    domains: *self.rng.pick(&[1, 1, 0, 0xffff]),
                    policy: self.policy(false),
                }
            }
            1000..1006 => Request::SelfTest(match self.rng.below(6) {
                0 => SelfTestRequest::Facts,
                1 => SelfTestRequest::SignTime {
                    curve: *self.rng.pick(&Curve::ALL),
                },
                2 => SelfTestRequest::FlashTime,
                3 => SelfTestRequest::Entropy,
                4 => SelfTestRequest::Button,
                _ => {
                    payload = self.rng.upto(400);
                    SelfTestRequest::Echo { payload: &payload }
                }
            }),
            1006..1009 => Request::Events(EventsRequest::Since {
                after: if self.rng.pct(70) {
                    self.rng.below(100) as u32
                } else {
                    self.rng.next() as u32
                },
            }),
            1009..1012 => Request::HsmCheck(match self.rng.below(3) {
                0 => HsmCheckRequest::Session,
                1 => HsmCheckRequest::Key { pkh },
                _ => HsmCheckRequest::ThrowAway {
                    curve: *self.rng.pick(&Curve::ALL),
                    domains: *self.rng.pick(&[1, 1, 0, 0xffff]),
                },
            }),
            1012..1014 => {
                let pkh = self.comet_key(false);
                chain_text = self.comet_chain();
                Request::CometBft(CometRequest::SetChain {
                    pkh,
                    chain_id: &chain_text,
                })
            }
            1014..1030 => {
                let pkh = self.comet_key(true);
                payload = self.comet_sign_bytes(&pkh, true);
                extension = self.comet_extension(&payload);
                Request::CometBft(CometRequest::SignVote {
                    pkh,
                    sign_bytes: &payload,
                    extension: extension.as_deref(),
                })
            }
            1030..1036 => {
                let pkh = self.comet_key(true);
                payload = self.comet_sign_bytes(&pkh, false);
                Request::CometBft(CometRequest::SignProposal {
                    pkh,
                    sign_bytes: &payload,
                })
            }
            _ => Request::CometBft(CometRequest::State {
                pkh: self.comet_key(false),
            }),
        };
        let frame = fuzz::encode(id, &request);
        let body = fuzz::body_of(id, &request);
        (id, frame, body)
    }

    pub fn wellformed_frame(&mut self) -> Vec<u8> {
        self.request().1
    }

    /// A well-formed request's body, mutated, framed with a valid CRC; sometimes a random
    /// variant index with random fields (every variant, those added later included).
    pub fn mutated_frame(&mut self) -> Vec<u8> {
        let mut body = if self.rng.pct(15) {
            let mut b = Vec::new();
            fuzz::zarith(self.rng.next() >> 40, &mut b); // id
            // Every variant (31 with the CometBFT family, index 30) and a few past the last.
            b.push(self.rng.below(33) as u8); // variant
            b.extend(self.rng.upto(120));
            b
        } else {
            self.request().2
        };
        fuzz::mutate(&mut self.rng, &mut body);
        fuzz::frame_of_body(&body)
    }

    /// Bytes that are not a valid frame: garbage, bad CRC, truncated, zeros, too long.
    pub fn raw_frame(&mut self) -> Vec<u8> {
        match self.rng.below(7) {
            0 => self.rng.upto(200),
            1 => {
                let mut v = self.rng.upto(200);
                v.push(0);
                v
            }
            2 | 3 => {
                let mut f = self.wellformed_frame();
                let n = f.len() - 1;
                let at = self.rng.below(n as u64) as usize;
                f[at] ^= 1 << self.rng.below(8);
                f
            }
            4 => {
                let mut f = self.wellformed_frame();
                let keep = self.rng.below(f.len() as u64) as usize;
                f.truncate(keep);
                f
            }
            5 => vec![0; 1 + self.rng.below(8) as usize],
            _ => {
                let mut v: Vec<u8> = (0..MAX_FRAME + self.rng.below(64) as usize)
                    .map(|_| 1 + self.rng.below(255) as u8)
                    .collect();
                v.push(0);
                v
            }
        }
    }

    /// Carry the board's sealed message to the mock HSM and its reply back: mostly honest,
    /// sometimes altered, replayed, junk or dropped.
    pub fn relay_step(&mut self) {
        let Some(sealed) = self.relay.take() else {
            return;
        };
        if self.rng.pct(4) {
            self.frames.push("(relay dropped)".into());
            return;
        }
        let hsm = &mut self.hsm;
        let mut reply = match crate::quietly(|| hsm.send(&sealed)) {
            Ok(reply) => reply,
            Err(e) => {
                if e.contains("panicked") {
                    // The mock refused by panicking and is poisoned: a fresh one, same keys.
                    self.hsm = fuzz::fresh_hsm();
                    self.stats.frame("(mock HSM replaced)");
                }
                vec![0x7f, 0, 1, 0x0e]
            }
        };
        match self.rng.below(100) {
            0..8 => fuzz::mutate(&mut self.rng, &mut reply),
            8..11 => reply = self.last_reply.clone(),
            11..13 => reply = self.rng.upto(100),
            _ => self.last_reply = reply.clone(),
        }
        let id = self.rng.next() as u32;
        let frame = fuzz::encode(id, &Request::HsmReply { sealed: &reply });
        self.send(frame, "HSM relay");
    }

    /// Bring a signature for the pending approval: right (high-S sometimes), over another
    /// digest, junk, or for another key.
    pub fn host_signature_step(&mut self) {
        let Some((pkh, payload)) = self.approval.clone() else {
            return;
        };
        let digest = blake2b_256(&payload);
        let public = self
            .keys
            .iter()
            .find(|k| k.pkh == pkh && k.backend == Backend::HostHeld)
            .map(|k| k.public_key);
        let service = self.service.iter().position(|s| Some(s.public()) == public);
        let mut to = pkh;
        let signature = match (self.rng.below(100), service) {
            (0..70, Some(i)) => self.service[i].sign(&digest, self.rng.pct(30)),
            (70..80, Some(i)) => self.service[i].sign(&self.rng.array(), false),
            (80..88, _) => {
                to = self.some_pkh();
                match service {
                    Some(i) => self.service[i].sign(&digest, false),
                    None => random_signature(&mut self.rng),
                }
            }
            _ => random_signature(&mut self.rng),
        };
        let id = self.rng.next() as u32;
        let frame = fuzz::encode(id, &Request::HostSignature { pkh: to, signature });
        self.send(frame, "host signature");
    }
}
