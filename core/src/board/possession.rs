//! BLS proofs of possession (`ProvePossession`, Octez `GET /bls_prove_possession`).
//!
//! A proof of possession is a signature with the key, under its own domain tag, over a public
//! key: the key's own, or `override_pk` (Octez `bls_pk`). Rules:
//!
//! * **tz4 keys on the board only.** Host-held and YubiHSM2 keys are never BLS
//!   ([`KeyError::PossessionNeedsBls`]).
//! * **Provisioning mode: always.** The baker reveals a tz4 key with its proof at setup.
//! * **Operational mode: only if the key's permission says so** ([`Refusal::PossessionNotAllowed`]).
//!   The permission is off by default and set in provisioning mode
//!   ([`crate::protocol::Request::AllowPossession`]); it is stored with the key.
//! * **`override_pk` must be a public key**: a compressed G1 point, on the curve, in the
//!   prime-order subgroup and not the identity ([`KeyError::InvalidPossessionKey`], checked in
//!   [`crate::keys::KeyPair::prove_possession`]). Anything else is refused; nothing is signed.
//!
//! A proof changes no state, so it touches neither marks nor pending work.

use super::{Board, Entropy, Material, Presence};
use crate::keys::{Curve, KeyError, PublicKey, PublicKeyHash};
use crate::protocol::{Mode, Refusal, Response};
use crate::store::Store;

impl<S: Store, E: Entropy, P: Presence> Board<S, E, P> {
    /// `ProvePossession`: the proof, or a refusal saying why not.
    pub(super) fn prove_possession(
        &self,
        pkh: &PublicKeyHash,
        override_pk: Option<PublicKey>,
    ) -> Result<Response, Refusal> {
        self.healthy()?;
        let slot = self.slot(pkh)?;
        let pair = match &slot.material {
            Material::OnBoard(pair) if pair.curve() == Curve::Bls12_381 => pair,
            _ => return Err(Refusal::Key(KeyError::PossessionNeedsBls)),
        };
        if self.mode == Mode::Operational && !slot.pop_operational {
            return Err(Refusal::PossessionNotAllowed);
        }
        let override_pk = match override_pk {
            None => None,
            Some(PublicKey::Bls(pk)) => Some(pk),
            Some(_) => return Err(Refusal::Key(KeyError::InvalidPossessionKey)),
        };
        Ok(Response::Signature(
            pair.prove_possession(override_pk.as_ref())?,
        ))
    }

    /// `AllowPossession` (provisioning): set whether on-board tz4 key `pkh` may prove
    /// possession in operational mode, durably.
    pub(super) fn allow_possession(
        &mut self,
        pkh: &PublicKeyHash,
        operational: bool,
    ) -> Result<Response, Refusal> {
        self.provisioning()?;
        self.healthy()?;
        let index = self.index(pkh)?;
        let slot = &self.keys[index];
        if !matches!(&slot.material, Material::OnBoard(p) if p.curve() == Curve::Bls12_381) {
            return Err(Refusal::Key(KeyError::PossessionNeedsBls));
        }
        self.rewrite_slot(index, |slot| slot.pop_operational = operational)?;
        Ok(Response::Done)
    }
}
