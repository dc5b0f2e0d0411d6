//! Pending work dies with every state change.
//!
//! Two things can be half done between frames: a host-held approval waiting for the key
//! service's signature ([`super::host_held`]) and a YubiHSM2 operation waiting for the HSM's
//! next reply, with its open session ([`super::yubihsm`]). Both were started under the keys,
//! policies, marks and HSM credential of that moment. When any of those changes — a policy,
//! a key added or registered, a watermark imported, the HSM set up again, the store
//! re-provisioned or reloaded — whatever was pending is forgotten, so nothing decided under
//! the old state is released under the new one. The host starts again from `Sign`, which
//! applies the rules as they are now.
//!
//! [`Board::forget_pending`] is the one place that does it. Every state-changing request calls
//! it once it has succeeded (a refusal changes nothing, pending work included); the
//! watermark marks already raised for an approval stay where they are (they only ever rise).

use super::{Board, Entropy, Presence};
use crate::store::Store;

impl<S: Store, E: Entropy, P: Presence> Board<S, E, P> {
    /// Forget the pending host-held approval and the pending YubiHSM2 operation, and drop the
    /// HSM session. A continuation (`HostSignature`, `HsmReply`) for either is then refused
    /// with [`crate::protocol::Refusal::NoPendingSign`].
    pub(super) fn forget_pending(&mut self) {
        self.pending = None;
        self.hsm.reset();
    }
}
