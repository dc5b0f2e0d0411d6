//! The device protocol between the host bridge and the board, defined once for both ends.
//!
//! # Wire format
//!
//! Every message, in either direction, is one **frame**:
//!
//! ```text
//! frame   = COBS( body ‖ crc32 ) ‖ 0x00
//! body    = postcard( Envelope { id: u32 (varint), message: Request | Response } )
//! crc32   = CRC-32/ISO-HDLC of `body`, 4 bytes little-endian
//! ```
//!
//! * COBS removes every zero byte, so `0x00` only ever ends a frame: a receiver that lost sync
//!   (garbage, a half frame after a reset) drops bytes up to the next zero and carries on.
//! * A frame may be at most [`MAX_FRAME`] bytes, zero included; a longer one is discarded whole
//!   and answered with [`Refusal::Frame`]`(`[`FrameError::TooLong`]`)`.
//! * `id` is chosen by the host and echoed by the board in the response, so the bridge can
//!   match answers to questions and detect a stale answer after a timeout. A frame whose CRC
//!   or encoding is bad is answered with id 0.
//! * postcard encodes enums as a varint variant index followed by the fields, in declaration
//!   order. **Variants are only ever appended** — never reordered or removed — so a newer
//!   board still understands an older bridge for everything the bridge knows. Incompatible
//!   changes bump [`PROTOCOL_VERSION`], which [`Request::Hello`] and [`Response::Info`] carry.
//!
//! # Conversation
//!
//! The host asks, the board answers: exactly one response per request frame, in the order the
//! requests arrived, and the board never sends a frame it was not asked for — so a host may
//! pipeline requests and match answers by id and order. Signing with an
//! on-board key is one round trip (`Sign` → `Signature`). The HSM tiers add continuations that
//! reuse the same request id:
//!
//! * YubiHSM2: `Sign` → [`Response::RelayToHsm`] (sealed SCP03 message) → the bridge forwards it
//!   and sends the HSM's answer back as [`Request::HsmReply`] → … → `Signature`.
//! * Host-held cloud key: `Sign` → [`Response::DigestApproved`] (the mark is already durable) →
//!   the bridge has the digest signed and sends [`Request::HostSignature`] → the board verifies
//!   it against the registered public key (tz2: after bringing it to low-S), records it →
//!   `Signature`. A signature that does not verify is refused ([`KeyError::BadSignature`](crate::keys::KeyError::BadSignature))
//!   and the approval stays pending. Keys are registered with [`Request::RegisterHostKey`];
//!   the rules are in the board's `host_held` module.
//! * YubiHSM2 details: the `sealed` bytes are whole YubiHSM2 messages (Create Session,
//!   Authenticate Session, Session Message) for the bridge to send as they are; a sign takes
//!   one round trip with a session open and three when the board opens one. The authentication
//!   key is set with [`Request::YubiHsmSetup`]; keys are registered with
//!   [`Request::GenerateHsmKey`] / [`Request::ImportHsmKey`] (relayed the same way: the board
//!   reads the public key through its session) or, unchecked, [`Request::RegisterHsmKey`];
//!   a failed exchange is [`Refusal::Hsm`]. The rules are in the board's `yubihsm` module.

pub mod cometbft;
mod duty;
pub mod events;
mod frame;
pub mod hsm_check;
mod refusal;
pub mod selftest;

pub use duty::{Duty, OffDuty, Role};
pub use frame::{Fed, FrameAccumulator, FrameError, decode_frame, encode_frame};
pub use refusal::Refusal;

use serde::{Deserialize, Serialize};

use crate::keys::{Curve, PublicKey, PublicKeyHash, SecretBytes, Signature, SigningVersion};
use crate::policy::Policy;
use crate::request::ChainId;
use crate::store::{StoreError, WearCounters};
use crate::watermark::MarkKind;

/// Version of this protocol; both ends must agree.
pub const PROTOCOL_VERSION: u16 = 1;
/// Largest request payload the board signs (Octez's own operation limit is 32 KiB; a baker's
/// consensus requests are under 256 bytes and transfers a few hundred).
pub const MAX_SIGN_PAYLOAD: usize = 16 * 1024;
/// Largest decoded frame body (the payload plus room for the rest of a request).
pub const MAX_BODY: usize = MAX_SIGN_PAYLOAD + 256;
/// Largest frame on the wire, trailing zero included.
pub const MAX_FRAME: usize = cobs::max_encoding_length(MAX_BODY + 4) + 1;
/// Most keys one board holds.
pub const MAX_KEYS: usize = 16;
/// Most watermark entries in one [`Response::Watermarks`] page.
pub const WATERMARK_PAGE: usize = 16;
/// Longest sealed HSM message relayed in one frame.
pub const MAX_SEALED: usize = 2048;

/// One frame's content: a request id and the message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope<M> {
    /// Request id chosen by the host, echoed by the board.
    pub id: u32,
    /// The message.
    pub message: M,
}

/// Whether the board accepts provisioning requests (`docs/design.md` §7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    /// Keys may be generated or imported, policies set and watermarks imported. Entered by a
    /// physical action (the button, during the boot window) or the simulator's flag.
    Provisioning,
    /// Only public keys, signatures, proofs of possession, status and watermark export.
    Operational,
}

/// Where a key's secret lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Backend {
    /// Generated or imported into the board, sealed in its flash.
    OnBoard,
    /// In a YubiHSM2, reached through an SCP03 session the board holds.
    YubiHsm,
    /// In a host-reachable key service (Azure Key Vault); the board approves digests.
    HostHeld,
}

/// A host's question to the board.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Request<'a> {
    /// Say hello; the board answers [`Response::Info`].
    Hello {
        /// The host's [`PROTOCOL_VERSION`].
        protocol: u16,
    },
    /// List keys: [`Response::Keys`].
    ListKeys,
    /// Public key of one key: [`Response::PublicKey`].
    PublicKey {
        /// Which key.
        pkh: PublicKeyHash,
    },
    /// Sign `payload` (magic byte first) with `pkh`: [`Response::Signature`] or a refusal.
    Sign {
        /// Which key.
        pkh: PublicKeyHash,
        /// Octez signature version (`?version=`).
        version: SigningVersion,
        /// The bytes to sign.
        #[serde(borrow)]
        payload: &'a [u8],
    },
    /// BLS proof of possession: [`Response::Signature`]. Always in provisioning mode; in
    /// operational mode only for a key allowed to ([`Request::AllowPossession`]), else
    /// [`Refusal::PossessionNotAllowed`].
    ProvePossession {
        /// Which key.
        pkh: PublicKeyHash,
        /// Prove possession of this public key instead (Octez `bls_pk`): a valid BLS12-381
        /// public key (subgroup point, not the identity), else
        /// [`KeyError::InvalidPossessionKey`](crate::keys::KeyError::InvalidPossessionKey).
        override_pk: Option<PublicKey>,
    },
    /// Board status: [`Response::Status`].
    Status,
    /// Export the watermark table from entry `start`: [`Response::Watermarks`].
    ExportWatermarks {
        /// First entry.
        start: u16,
    },
    /// Provisioning: generate a key on the board: [`Response::KeyInfo`].
    GenerateKey {
        /// Curve.
        curve: Curve,
        /// Policy.
        policy: Policy,
    },
    /// Provisioning: import a secret key: [`Response::KeyInfo`].
    ImportKey {
        /// Curve.
        curve: Curve,
        /// Secret in the Tezos encoding of the curve.
        secret: SecretBytes,
        /// Policy.
        policy: Policy,
    },
    /// Provisioning: replace a key's policy: [`Response::KeyInfo`].
    SetPolicy {
        /// Which key.
        pkh: PublicKeyHash,
        /// New policy.
        policy: Policy,
    },
    /// Provisioning: raise a watermark (never lowers): [`Response::Done`].
    ImportWatermark {
        /// Chain.
        chain: ChainId,
        /// Key.
        pkh: PublicKeyHash,
        /// Which mark.
        kind: MarkKind,
        /// Level.
        level: u32,
        /// Round.
        round: u32,
    },
    /// Continuation of a YubiHSM2 sign: the HSM's answer to [`Response::RelayToHsm`].
    HsmReply {
        /// The HSM's response bytes, as received.
        #[serde(borrow)]
        sealed: &'a [u8],
    },
    /// Continuation of a host-held sign: the signature over [`Response::DigestApproved`]'s digest.
    HostSignature {
        /// Which key.
        pkh: PublicKeyHash,
        /// The signature as the key service returned it (`r ‖ s`).
        signature: Signature,
    },
    /// Provisioning: recover from a store the board refuses ([`StoreHealth::Refusing`]). With
    /// `erase`, start from an empty store (keys and marks gone); without, adopt the image as it
    /// is — then import current watermarks, since a rolled-back image holds stale ones.
    /// [`Response::Done`].
    Reprovision {
        /// Erase everything instead of adopting the image.
        erase: bool,
    },
    /// Provisioning: register a host-held key (a key service the bridge reaches: Azure Key
    /// Vault, a PKCS#11 token, a cloud KMS) by its public key — tz1 (Ed25519), tz2 (secp256k1)
    /// or tz3 (P-256) — with `policy`. The board keeps the public key and the
    /// policy, and signs for it by approving digests ([`Response::DigestApproved`]) and
    /// verifying what the host brings back. [`Response::KeyInfo`].
    RegisterHostKey {
        /// The key service's public key.
        public_key: PublicKey,
        /// Policy.
        policy: Policy,
    },
    /// Provisioning: the YubiHSM2 authentication key the board opens sessions with, for the
    /// keys registered next ([`Request::RegisterHsmKey`]). [`Response::Done`].
    YubiHsmSetup {
        /// Authentication key object id.
        auth_key_id: u16,
        /// `K-ENC ‖ K-MAC` (for a password: PBKDF2-HMAC-SHA256, salt "Yubico", 10 000
        /// iterations). Never logged; the board seals it with each key.
        keys: SecretBytes,
    },
    /// Provisioning: register a key inside the YubiHSM2 — tz1, tz2 or tz3 — by its object id
    /// and public key, with `policy`. Signatures are made through the board's own SCP03
    /// session ([`Response::RelayToHsm`]) and verified under `public_key` before release.
    /// [`Response::KeyInfo`].
    RegisterHsmKey {
        /// Asymmetric key object id.
        key_id: u16,
        /// The key's public key.
        public_key: PublicKey,
        /// Policy.
        policy: Policy,
    },
    /// Provisioning: register a key inside the YubiHSM2 by its object id alone. The board reads
    /// the public key itself, through its own authenticated session (Get Public Key), so the
    /// host cannot substitute one; with `expect`, a different key is refused
    /// ([`HsmError::KeyMismatch`](crate::yubihsm::HsmError::KeyMismatch)). Relayed like a sign ([`Response::RelayToHsm`]), then
    /// [`Response::KeyInfo`].
    ImportHsmKey {
        /// Asymmetric key object id.
        key_id: u16,
        /// The public key the operator expects, if they know it.
        expect: Option<PublicKey>,
        /// Policy.
        policy: Policy,
    },
    /// Provisioning: have the YubiHSM2 generate a key (Generate Asymmetric Key: sign capability
    /// only, not exportable), read its public key back through the session and register it.
    /// Relayed ([`Response::RelayToHsm`]), then [`Response::KeyInfo`].
    GenerateHsmKey {
        /// Object id for the new key (0: the HSM picks one).
        key_id: u16,
        /// tz1 (Ed25519), tz2 (secp256k1) or tz3 (P-256).
        curve: Curve,
        /// Object label, at most 40 bytes.
        #[serde(borrow)]
        label: &'a str,
        /// Domains bit mask the key belongs to (bit 0 = domain 1); must share one with the
        /// authentication key.
        domains: u16,
        /// Policy.
        policy: Policy,
    },
    /// Provisioning: whether on-board tz4 key `pkh` may prove possession
    /// ([`Request::ProvePossession`]) in operational mode. Off for every new key; in
    /// provisioning mode a proof is always allowed. Stored with the key. [`Response::Done`].
    AllowPossession {
        /// Which key (tz4, on the board).
        pkh: PublicKeyHash,
        /// Allow proofs in operational mode.
        operational: bool,
    },
    /// Provisioning, confirmed on the board's button: forget key `pkh`'s watermarks on every
    /// chain its policy no longer allows (pin the key with [`Request::SetPolicy`] first), to
    /// free their room in the table. Allowing such a chain again later needs its current
    /// watermark imported first. [`Response::Done`]; without a press [`Refusal::NotConfirmed`].
    ForgetWatermarks {
        /// Which key.
        pkh: PublicKeyHash,
    },
    /// Provisioning, confirmed on the board's button: set a watermark to exactly (`level`,
    /// `round`), below where it is — to recover a key whose mark a compromised host pushed far
    /// ahead. The operator must know the key never signed above that position.
    /// [`Response::Done`]; without a press [`Refusal::NotConfirmed`].
    LowerWatermark {
        /// Chain.
        chain: ChainId,
        /// Key.
        pkh: PublicKeyHash,
        /// Which mark.
        kind: MarkKind,
        /// Level.
        level: u32,
        /// Round.
        round: u32,
    },
    /// Provisioning: the jump guard of key `pkh` — a consensus request more than `levels`
    /// above the key's mark for its (chain, kind) needs a press of the board's button
    /// ([`Refusal::TooFarAhead`] without one). `None`: the default (1,000,000 levels). Stored
    /// with the key. [`Response::Done`].
    SetJumpLimit {
        /// Which key.
        pkh: PublicKeyHash,
        /// The limit in levels, or `None` for the default.
        levels: Option<u32>,
    },
    /// Provisioning: generate a key on the board, as [`Request::GenerateKey`], and seal its
    /// secret once to the operator's age X25519 recipient ([`crate::backup`]):
    /// [`Response::KeyBackup`]. The only way a secret ever leaves the board, and only at
    /// generation: the key is stored only if the backup was made.
    GenerateKeyWithBackup {
        /// Curve.
        curve: Curve,
        /// Policy.
        policy: Policy,
        /// The 32-byte X25519 public key inside the operator's `age1…` recipient.
        recipient: [u8; 32],
    },
    /// Provisioning: set key `pkh`'s [`Duty`] — role, standby, the levels it signs consensus
    /// requests in (retire, activate). Stored with the key: [`Response::KeyInfo`].
    SetDuty {
        /// Which key.
        pkh: PublicKeyHash,
        /// The whole new duty.
        duty: Duty,
    },
    /// Provisioning: [`Request::ImportKey`] with a [`Duty`] from the first moment — a key
    /// imported on standby (the new board of a hand-off) never signs before it is activated.
    /// [`Response::KeyInfo`].
    ImportKeyWithDuty {
        /// Curve.
        curve: Curve,
        /// Secret in the Tezos encoding of the curve.
        secret: SecretBytes,
        /// Policy.
        policy: Policy,
        /// Duty.
        duty: Duty,
    },
    /// Provisioning: remove key `pkh` from the board (an on-board secret is gone for good; a
    /// YubiHSM2 or host-held key stays where it lives). Its marks stay and guard it if it is
    /// added again; `ForgetWatermarks` (button) frees them. [`Response::Done`].
    RemoveKey {
        /// Which key.
        pkh: PublicKeyHash,
    },
    /// `pawl device selftest` ([`selftest`]).
    SelfTest(#[serde(borrow)] selftest::SelfTestRequest<'a>),
    /// Board logs ([`events`]).
    Events(events::EventsRequest),
    /// YubiHSM2 checks of `pawl device selftest --yubihsm` ([`hsm_check`]).
    HsmCheck(hsm_check::HsmCheckRequest),
    /// CometBFT privval ([`cometbft`]).
    CometBft(#[serde(borrow)] cometbft::CometRequest<'a>),
}

/// One key as the board lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeyInfo {
    /// Hash.
    pub pkh: PublicKeyHash,
    /// Public key.
    pub public_key: PublicKey,
    /// Where the secret lives.
    pub backend: Backend,
    /// Policy.
    pub policy: Policy,
    /// Role, standby, and the levels this board signs the key's consensus requests in.
    pub duty: Duty,
}

/// Board health and counters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// Mode.
    pub mode: Mode,
    /// Keys held.
    pub keys: u16,
    /// Watermark entries used.
    pub marks: u16,
    /// Watermark entries available.
    pub mark_capacity: u16,
    /// Signatures released since boot (repeats included).
    pub signatures: u32,
    /// Requests refused since boot.
    pub refusals: u32,
    /// Mark writes the store was asked for since boot (most are answered from the ceiling in
    /// RAM; [`Status::wear`] counts what reached flash).
    pub mark_writes: u32,
    /// Store health.
    pub store: StoreHealth,
    /// Flash records written, bytes programmed and pages erased since boot.
    pub wear: WearCounters,
    /// The OTP rollback anchor (`store::epoch`): epochs burned and left, and whether this
    /// boot is anchored; `None` on a board without one.
    pub epoch: Option<crate::store::EpochReport>,
}

/// Whether the store can be trusted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StoreHealth {
    /// Loaded and writable.
    Ok,
    /// The store is damaged or was rolled back; the board refuses to sign until re-provisioned.
    Refusing(StoreError),
}

/// The board's answer.
// One response exists at a time, built and encoded per frame; without a heap there is nothing
// to box the large variants into.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Response {
    /// Answer to [`Request::Hello`].
    Info {
        /// The board's [`PROTOCOL_VERSION`].
        protocol: u16,
        /// Firmware version.
        firmware: heapless::String<24>,
        /// Board model.
        board: heapless::String<24>,
        /// Mode.
        mode: Mode,
    },
    /// Answer to [`Request::ListKeys`].
    Keys(heapless::Vec<KeyInfo, MAX_KEYS>),
    /// Answer to [`Request::PublicKey`].
    PublicKey(PublicKey),
    /// A signature (sign, identical retry, or proof of possession).
    Signature(Signature),
    /// Answer to [`Request::Status`].
    Status(Status),
    /// A page of watermarks; `next` is the start of the following page, if any.
    Watermarks {
        /// Entries.
        entries: heapless::Vec<WatermarkEntry, WATERMARK_PAGE>,
        /// Next page start.
        next: Option<u16>,
    },
    /// A key was created, imported or changed.
    KeyInfo(KeyInfo),
    /// Done, nothing to return.
    Done,
    /// The request was refused; nothing changed.
    Refused(Refusal),
    /// YubiHSM2 tier: forward these bytes to the HSM and answer with [`Request::HsmReply`].
    RelayToHsm {
        /// Sealed SCP03 message.
        sealed: heapless::Vec<u8, MAX_SEALED>,
    },
    /// Host-held tier: the mark is durable; have this digest signed, answer with
    /// [`Request::HostSignature`].
    DigestApproved {
        /// Key.
        pkh: PublicKeyHash,
        /// BLAKE2b-256 of the request.
        digest: [u8; 32],
    },
    /// The key [`Request::GenerateKeyWithBackup`] made, and its secret sealed to the
    /// operator's age recipient (an age v1 file; only that recipient's identity opens it).
    KeyBackup {
        /// The new key.
        key: KeyInfo,
        /// The age file.
        sealed: crate::backup::Sealed,
    },
    /// Answer to [`Request::SelfTest`].
    SelfTest(selftest::SelfTestResponse),
    /// Answer to [`Request::Events`].
    Events(events::EventsResponse),
    /// Answer to [`Request::HsmCheck`].
    HsmCheck(hsm_check::HsmCheckResponse),
    /// Answer to [`Request::CometBft`].
    CometBft(cometbft::CometResponse),
}

/// One exported watermark.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatermarkEntry {
    /// Chain.
    pub chain: ChainId,
    /// Key.
    pub pkh: PublicKeyHash,
    /// Which mark.
    pub kind: MarkKind,
    /// Level.
    pub level: u32,
    /// Round.
    pub round: u32,
}
