//! What the board holds for each key, by tier, and how it is stored.

use super::host_held;
use crate::keys::{Curve, KeyError, KeyPair, PublicKey, PublicKeyHash, SecretBytes, TezosSigner};
use crate::policy::Policy;
use crate::protocol::cometbft::CometChainId;
use crate::protocol::{Backend, Duty, KeyInfo};
use crate::store::{HsmLink, StoredKey};
use crate::yubihsm::AuthKey;

/// Where a key's secret is: in the board, with the host (the board keeps the public key), or
/// in a YubiHSM2 the board reaches through its own SCP03 session.
// No heap on the board to box the key pair into; the table holds at most `MAX_KEYS` of these.
#[allow(clippy::large_enum_variant)]
pub(super) enum Material {
    OnBoard(KeyPair),
    HostHeld {
        public: PublicKey,
        pkh: PublicKeyHash,
    },
    YubiHsm {
        public: PublicKey,
        pkh: PublicKeyHash,
        key_id: u16,
        /// The authentication key sessions for this key are opened with.
        auth: AuthKey,
    },
}

impl Material {
    pub(super) fn pkh(&self) -> &PublicKeyHash {
        match self {
            Material::OnBoard(pair) => pair.pkh(),
            Material::HostHeld { pkh, .. } | Material::YubiHsm { pkh, .. } => pkh,
        }
    }

    pub(super) fn public_key(&self) -> &PublicKey {
        match self {
            Material::OnBoard(pair) => pair.public_key(),
            Material::HostHeld { public, .. } | Material::YubiHsm { public, .. } => public,
        }
    }

    pub(super) fn curve(&self) -> Curve {
        self.public_key().curve()
    }

    pub(super) fn backend(&self) -> Backend {
        match self {
            Material::OnBoard(_) => Backend::OnBoard,
            Material::HostHeld { .. } => Backend::HostHeld,
            Material::YubiHsm { .. } => Backend::YubiHsm,
        }
    }

    /// What the store keeps: the sealed secret, the public key of a host-held key, or a
    /// YubiHSM2 key's public key and place with the authentication key sealed as its secret;
    /// with the policy, the proof-of-possession permission, the jump limit and the duty.
    pub(super) fn stored(
        &self,
        policy: &Policy,
        pop_operational: bool,
        jump_limit: Option<u32>,
        duty: Duty,
        cometbft_chain: Option<&CometChainId>,
    ) -> StoredKey {
        let mut stored = match self {
            Material::OnBoard(pair) => StoredKey {
                curve: pair.curve(),
                secret: pair.to_secret(),
                policy: policy.clone(),
                host_public: None,
                hsm: None,
                pop_operational: None,
                jump_limit: None,
                duty: None,
                cometbft_chain: None,
            },
            Material::HostHeld { public, .. } => StoredKey {
                curve: public.curve(),
                secret: SecretBytes::zero(),
                policy: policy.clone(),
                host_public: Some(*public),
                hsm: None,
                pop_operational: None,
                jump_limit: None,
                duty: None,
                cometbft_chain: None,
            },
            Material::YubiHsm {
                public,
                key_id,
                auth,
                ..
            } => StoredKey {
                curve: public.curve(),
                secret: auth.to_secret(),
                policy: policy.clone(),
                host_public: Some(*public),
                hsm: Some(HsmLink {
                    auth_key_id: auth.id(),
                    key_id: *key_id,
                }),
                pop_operational: None,
                jump_limit: None,
                duty: None,
                cometbft_chain: None,
            },
        };
        stored.pop_operational = Some(pop_operational);
        stored.jump_limit = jump_limit;
        stored.duty = Some(duty);
        stored.cometbft_chain = cometbft_chain.cloned();
        stored
    }

    pub(super) fn from_stored(key: &StoredKey) -> Result<Material, KeyError> {
        match (&key.host_public, &key.hsm) {
            (None, None) => KeyPair::from_secret(key.curve, &key.secret).map(Material::OnBoard),
            (Some(public), _) if public.curve() != key.curve => Err(KeyError::CurveMismatch),
            (Some(public), None) => host_held::material(*public),
            (Some(public), Some(link)) => super::yubihsm::material(
                *public,
                link.key_id,
                AuthKey::new(link.auth_key_id, &key.secret),
            ),
            (None, Some(_)) => Err(KeyError::InvalidPublicKey),
        }
    }
}

pub(super) struct KeySlot {
    /// The store slot the key is kept in (the board's list keeps slot order; after a removal
    /// a slot number may be free in the middle).
    pub(super) slot: u8,
    pub(super) material: Material,
    pub(super) policy: Policy,
    /// May prove possession in operational mode (tz4 on the board; `super::possession`).
    pub(super) pop_operational: bool,
    /// The jump guard's limit as set for this key; `None` is the default (`super::jump`).
    pub(super) jump_limit: Option<u32>,
    /// Role, standby and signing window on this board (`super::duty`).
    pub(super) duty: Duty,
    /// The CometBFT chain of a Cosmos key (`super::cometbft`).
    pub(super) cometbft_chain: Option<CometChainId>,
}

/// What an operator may change about a key without touching its material.
pub(super) struct Settings {
    pub(super) policy: Policy,
    pub(super) pop_operational: bool,
    pub(super) jump_limit: Option<u32>,
    pub(super) duty: Duty,
    pub(super) cometbft_chain: Option<CometChainId>,
}

impl KeySlot {
    pub(super) fn settings(&self) -> Settings {
        Settings {
            policy: self.policy.clone(),
            pop_operational: self.pop_operational,
            jump_limit: self.jump_limit,
            duty: self.duty,
            cometbft_chain: self.cometbft_chain.clone(),
        }
    }

    pub(super) fn apply(&mut self, s: Settings) {
        self.policy = s.policy;
        self.pop_operational = s.pop_operational;
        self.jump_limit = s.jump_limit;
        self.duty = s.duty;
        self.cometbft_chain = s.cometbft_chain;
    }

    pub(super) fn info(&self) -> KeyInfo {
        KeyInfo {
            pkh: *self.material.pkh(),
            public_key: *self.material.public_key(),
            backend: self.material.backend(),
            policy: self.policy.clone(),
            duty: self.duty,
        }
    }
}
