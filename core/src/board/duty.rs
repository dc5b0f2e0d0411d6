//! A key's duty on this board ([`Duty`]): role, standby and the window of levels it signs
//! consensus requests in — the hand-off between two boards (`docs/lifecycle.md`) — and, at the
//! end of a key's life here, its removal. Set only in provisioning mode; the duty is checked on
//! every sign right after the policy ([`Duty::check`]), so a refusal changes nothing.

use super::{Board, Material, Presence, Refusal, Response};
use crate::keys::{Curve, Entropy, KeyPair, PublicKeyHash, SecretBytes};
use crate::policy::Policy;
use crate::protocol::Duty;
use crate::store::Store;

impl<S: Store, E: Entropy, P: Presence> Board<S, E, P> {
    /// [`crate::protocol::Request::SetDuty`]: the whole duty replaced, stored with the key.
    pub(super) fn set_duty(
        &mut self,
        pkh: &PublicKeyHash,
        duty: Duty,
    ) -> Result<Response, Refusal> {
        self.provisioning()?;
        self.healthy()?;
        let index = self.index(pkh)?;
        self.rewrite_slot(index, |slot| slot.duty = duty)?;
        Ok(Response::KeyInfo(self.keys[index].info()))
    }

    /// [`crate::protocol::Request::ImportKeyWithDuty`]: the key is stored with its duty in
    /// one record, so a key imported on standby never signs before it is activated.
    pub(super) fn import_with_duty(
        &mut self,
        curve: Curve,
        secret: &SecretBytes,
        policy: Policy,
        duty: Duty,
    ) -> Result<Response, Refusal> {
        self.provisioning()?;
        let pair = KeyPair::from_secret(curve, secret)?;
        self.add_key_with(Material::OnBoard(pair), policy, duty)
    }

    /// [`crate::protocol::Request::RemoveKey`]: durable first, then gone from RAM. The key's
    /// marks stay: removing and adding a key again must not reset its watermark.
    pub(super) fn remove_key(&mut self, pkh: &PublicKeyHash) -> Result<Response, Refusal> {
        self.provisioning()?;
        self.healthy()?;
        let index = self.index(pkh)?;
        self.store.remove_key(self.keys[index].slot)?;
        self.keys.remove(index);
        self.forget_pending();
        // The YubiHSM2 credential is the newest HSM key's, as at load.
        self.hsm.credential = self.newest_hsm_credential();
        Ok(Response::Done)
    }
}
