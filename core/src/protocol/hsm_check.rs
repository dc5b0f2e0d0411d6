//! `pawl device selftest --yubihsm`: the board's checks of its YubiHSM2 (session, each key's public key, a throw-away key).
//!
//! One request family of the device protocol: its own request and response types, carried by
//! [`super::Request::HsmCheck`] and [`super::Response::HsmCheck`]. Variants are only ever appended.
//!
//! Every check runs through the board's own SCP03 session and is relayed like a sign: the
//! board answers [`super::Response::RelayToHsm`] until its final [`HsmCheckResponse`] (or a
//! refusal). The host only carries sealed bytes; it cannot make a check pass.
//!
//! * [`HsmCheckRequest::Session`]: open (or reuse) a session with the board's authentication
//!   key and run Echo through it: both directions of the channel work.
//! * [`HsmCheckRequest::Key`]: read a registered key's public key from the HSM (Get Public
//!   Key, under the key's own authentication key) and compare it with the board's record.
//! * [`HsmCheckRequest::ThrowAway`] (provisioning mode only): generate a sign-only key in the
//!   HSM, read its public key, sign a fixed test digest with it, verify the signature on the
//!   board, and delete the object — the delete is sent whether or not signing or verifying
//!   succeeded. The key is never registered as a board key.

use serde::{Deserialize, Serialize};

use crate::keys::{Curve, PublicKeyHash};

/// The label of a throw-away key in the HSM (so an operator who finds one left behind, after
/// a broken session, knows what it is).
pub const THROW_AWAY_LABEL: &str = "pawl selftest throw-away";

/// A request of this family.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum HsmCheckRequest {
    /// Open the session and run Echo through it: [`HsmCheckResponse::Session`].
    Session,
    /// Compare HSM key `pkh`'s public key in the HSM with the board's record:
    /// [`HsmCheckResponse::Key`].
    Key {
        /// A YubiHSM2 key registered on the board.
        pkh: PublicKeyHash,
    },
    /// Provisioning: a throw-away `curve` key in `domains` (bit mask, sharing one with the
    /// authentication key): generate, sign, verify, delete. [`HsmCheckResponse::ThrowAway`].
    ThrowAway {
        /// tz1 (Ed25519), tz2 (secp256k1) or tz3 (P-256).
        curve: Curve,
        /// Domains bit mask (bit 0 = domain 1).
        domains: u16,
    },
}

/// The board's answer to a [`HsmCheckRequest`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum HsmCheckResponse {
    /// The session works: Echo came back, authenticated, with the bytes sent.
    Session {
        /// The authentication key's object id the session runs under.
        auth_key_id: u16,
    },
    /// What the HSM holds under the key's object id.
    Key {
        /// The key.
        pkh: PublicKeyHash,
        /// Its object id in the HSM.
        key_id: u16,
        /// Whether the HSM's public key is the board's record.
        matches: bool,
    },
    /// The throw-away key's round.
    ThrowAway {
        /// Curve.
        curve: Curve,
        /// The object id the HSM gave it.
        key_id: u16,
        /// The HSM signed the test digest and the signature verified on the board under the
        /// public key the HSM reported.
        verified: bool,
        /// The HSM confirmed the object's deletion.
        deleted: bool,
    },
}

impl HsmCheckRequest {
    /// Whether the request may be written again after its answer was lost (the bridge's
    /// reconnect rule): reads yes, anything that changes the board no.
    pub fn reasking_is_safe(&self) -> bool {
        match self {
            HsmCheckRequest::Session | HsmCheckRequest::Key { .. } => true,
            // Creates an HSM object: asked once.
            HsmCheckRequest::ThrowAway { .. } => false,
        }
    }
}
