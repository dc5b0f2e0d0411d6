//! YubiHSM2 client for the board: the SCP03 secure channel ([`scp03`]) and the commands the
//! board needs ([`command`]), `no_std`, no heap, no I/O.
//!
//! The board holds the HSM's authentication key ([`AuthKey`]: the two long-lived AES-128 keys,
//! derived on the host from the password once, at provisioning) and runs the secure channel
//! itself. The host bridge only relays the messages this module writes and the HSM's replies;
//! it can neither read nor forge them (see the [`scp03`] module doc for the message layout and
//! what each check rejects). The board's use of it — one pending operation, watermark durable
//! before the first HSM byte, signature verified before release — is in the board's `yubihsm`
//! module.

pub mod command;
pub mod scp03;

use core::fmt;

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::keys::SecretBytes;

/// Command codes (Yubico "Commands"); a reply carries `code | REPLY`, an error `ERROR`.
pub mod code {
    /// Echo.
    pub const ECHO: u8 = 0x01;
    /// Create Session.
    pub const CREATE_SESSION: u8 = 0x03;
    /// Authenticate Session.
    pub const AUTHENTICATE_SESSION: u8 = 0x04;
    /// Session Message.
    pub const SESSION_MESSAGE: u8 = 0x05;
    /// Generate Asymmetric Key.
    pub const GENERATE_ASYMMETRIC_KEY: u8 = 0x46;
    /// Get Public Key.
    pub const GET_PUBLIC_KEY: u8 = 0x54;
    /// Delete Object.
    pub const DELETE_OBJECT: u8 = 0x58;
    /// Sign ECDSA.
    pub const SIGN_ECDSA: u8 = 0x56;
    /// Sign EdDSA.
    pub const SIGN_EDDSA: u8 = 0x6a;
    /// Error reply.
    pub const ERROR: u8 = 0x7f;
    /// Set in every successful reply's code.
    pub const REPLY: u8 = 0x80;
}

/// A YubiHSM2 authentication key as the board keeps it: its object id and the two long-lived
/// AES-128 keys (K-ENC, K-MAC).
///
/// Invariants: never leaves the board after provisioning; zeroized on drop; `Debug` shows
/// only the id; equality is constant-time on the keys.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct AuthKey {
    id: u16,
    enc: [u8; 16],
    mac: [u8; 16],
}

impl AuthKey {
    /// From the object id and the 32 bytes `K-ENC ‖ K-MAC` (for a password-derived key:
    /// PBKDF2-HMAC-SHA256(password, "Yubico", 10 000 iterations, 32 bytes)).
    pub fn new(id: u16, keys: &SecretBytes) -> Self {
        let mut enc = [0u8; 16];
        let mut mac = [0u8; 16];
        enc.copy_from_slice(&keys.expose()[..16]);
        mac.copy_from_slice(&keys.expose()[16..]);
        AuthKey { id, enc, mac }
    }

    /// The authentication key's object id in the HSM.
    pub fn id(&self) -> u16 {
        self.id
    }

    /// `K-ENC ‖ K-MAC`, for sealing in the store.
    pub fn to_secret(&self) -> SecretBytes {
        let mut s = SecretBytes::zero();
        s.expose_mut()[..16].copy_from_slice(&self.enc);
        s.expose_mut()[16..].copy_from_slice(&self.mac);
        s
    }

    pub(crate) fn enc(&self) -> &[u8; 16] {
        &self.enc
    }

    pub(crate) fn mac(&self) -> &[u8; 16] {
        &self.mac
    }
}

impl PartialEq for AuthKey {
    fn eq(&self, other: &Self) -> bool {
        use subtle::ConstantTimeEq;
        self.id == other.id && bool::from(self.enc.ct_eq(&other.enc) & self.mac.ct_eq(&other.mac))
    }
}

impl Eq for AuthKey {}

impl fmt::Debug for AuthKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AuthKey {{ id: {}, keys: <redacted> }}", self.id)
    }
}

/// Why an exchange with the HSM failed. Everything except [`HsmError::Refused`] ends the
/// session: the board drops it and the next signature opens a fresh one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HsmError {
    /// No YubiHSM2 authentication key on the board (`pawl device yubihsm-setup`).
    NotSetUp,
    /// The reply is not a well-formed message (length, layout, padding, DER).
    Malformed,
    /// The reply answers another command (reordered or substituted).
    UnexpectedReply {
        /// The reply's code.
        code: u8,
    },
    /// The HSM did not prove it holds the authentication key (wrong key, or a forged reply).
    BadCardCryptogram,
    /// The reply's MAC does not verify: altered, replayed or from another session.
    BadMac,
    /// The reply names another session.
    SessionMismatch,
    /// The HSM answered with an unauthenticated error (session expired or unknown, HSM reset,
    /// authentication failed); YubiHSM2 error code.
    Device {
        /// YubiHSM2 error code.
        code: u8,
    },
    /// The HSM refused the command inside the session (authenticated); YubiHSM2 error code
    /// (e.g. 0x0b object not found, 0x04 insufficient permissions).
    Refused {
        /// YubiHSM2 error code.
        code: u8,
    },
    /// The session carried its maximum number of messages.
    MessageLimit,
    /// A message would not fit the relay frame.
    TooLong,
    /// The HSM key is of a curve pawl does not sign with through a YubiHSM2.
    UnsupportedCurve,
    /// The HSM holds another key under this id than the one expected (another public key or
    /// curve).
    KeyMismatch,
    /// An object label longer than the HSM's 40 bytes.
    LabelTooLong,
}

impl fmt::Display for HsmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HsmError::NotSetUp => f.write_str("no YubiHSM2 authentication key on the board"),
            HsmError::Malformed => f.write_str("malformed HSM reply"),
            HsmError::UnexpectedReply { code } => {
                write!(f, "HSM reply 0x{code:02x} answers another command")
            }
            HsmError::BadCardCryptogram => f.write_str(
                "the HSM did not prove it holds the authentication key (card cryptogram)",
            ),
            HsmError::BadMac => f.write_str("HSM reply failed its MAC check"),
            HsmError::SessionMismatch => f.write_str("HSM reply is for another session"),
            HsmError::Device { code } => write!(f, "HSM error 0x{code:02x} outside the session"),
            HsmError::Refused { code } => write!(f, "HSM refused the command: error 0x{code:02x}"),
            HsmError::MessageLimit => f.write_str("HSM session message limit reached"),
            HsmError::TooLong => f.write_str("HSM message too long for the relay"),
            HsmError::UnsupportedCurve => f.write_str("curve not supported through a YubiHSM2"),
            HsmError::KeyMismatch => {
                f.write_str("the HSM holds another key under this id than the one expected")
            }
            HsmError::LabelTooLong => f.write_str("HSM object labels are at most 40 bytes"),
        }
    }
}

impl core::error::Error for HsmError {}
