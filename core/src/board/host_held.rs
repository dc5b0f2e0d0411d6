//! Host-held keys (Azure Key Vault, the host-trusted tier of `docs/design.md` §3): the board
//! decides and remembers, the host's key service signs, the board checks what comes back.
//!
//! ```text
//!  host                              board
//!  RegisterHostKey{pk, policy} ───►  provisioning only; tz1/tz2/tz3, point validated; persisted
//!  Sign{pkh, payload}          ───►  parse → policy → watermark → confirm → mark DURABLE
//!                              ◄───  DigestApproved{pkh, digest}      (one pending approval)
//!  (key service signs digest)
//!  HostSignature{pkh, sig}     ───►  matches the pending approval? tz2: high-S → low-S;
//!                                    verifies under the registered key? record in the table
//!                              ◄───  Signature                        (approval consumed)
//! ```
//!
//! Rules:
//!
//! * **One pending approval.** A new approval replaces it; every state change (policy, key
//!   added, watermark imported, re-provisioning) forgets it ([`super::pending`]); every other
//!   request leaves it as it is. The bridge serialises host-held signs, so the replaced one is
//!   a request the host gave up on.
//! * **The approved digest counts as signed.** The key service may have signed it whatever the
//!   board hears back, so the watermark is raised to the approved (level, round) with the
//!   request's hash ([`crate::watermark::Watermarks::approve`]) before `DigestApproved` leaves:
//!   any *other* request at or below that position is refused. The *identical* request is
//!   approved again (same digest: nothing new becomes signable), which is how a host retries
//!   after a failed cloud call or a replaced approval. After a restart only the durable
//!   position remains and the retry is refused.
//! * **A signature that does not verify is refused and changes nothing**: the approval stays
//!   pending, so the host may bring another signature for the same digest; nothing is released
//!   until one verifies under the registered public key.
//! * **Released once, repeated from the table.** The verified signature is recorded in the
//!   watermark table; an identical retry of a released request gets that signature from
//!   `Sign` directly, with no `DigestApproved` and so no key-service traffic.
//! * Non-consensus requests (when the policy allows them) have no mark: the approval carries
//!   only the digest.

use super::{Board, Entropy, Material, Presence};
use crate::keys::{Curve, KeyError, PublicKey, PublicKeyHash, Signature, secp256k1_normalize};
use crate::protocol::{Refusal, Response};
use crate::store::Store;
use crate::watermark::MarkId;

/// A digest the board approved and has not yet seen a valid signature for.
#[derive(Clone, Debug)]
pub(super) struct Pending {
    /// The key asked for.
    pub(super) key: PublicKeyHash,
    /// BLAKE2b-256 of the request: what the key service signs.
    digest: [u8; 32],
    /// The watermark position made durable for it (consensus requests).
    mark: Option<(MarkId, u32, u32)>,
}

/// A host-held key's material from its public key: tz1, tz2 or tz3 (a PKCS#11 token signs
/// Ed25519 over the digest, which is what Tezos signs), and a valid point.
pub(super) fn material(public: PublicKey) -> Result<Material, KeyError> {
    match public.curve() {
        Curve::Ed25519 | Curve::Secp256k1 | Curve::P256 => {}
        curve => return Err(KeyError::NotHostHeldCurve { curve }),
    }
    public.validate()?;
    Ok(Material::HostHeld {
        pkh: public.hash(),
        public,
    })
}

/// Bring a key service's `r ‖ s` into the form Octez accepts: low-S for secp256k1 (Key Vault
/// does not normalise), as is for P-256 and Ed25519.
fn normalise(public: &PublicKey, signature: Signature) -> Result<Signature, KeyError> {
    match (public, signature) {
        (PublicKey::Secp256k1(_), Signature::Secp256k1(raw)) => {
            Ok(Signature::Secp256k1(secp256k1_normalize(&raw)?))
        }
        (PublicKey::P256(_), Signature::P256(raw)) => Ok(Signature::P256(raw)),
        (PublicKey::Ed25519(_), Signature::Ed25519(raw)) => Ok(Signature::Ed25519(raw)),
        _ => Err(KeyError::CurveMismatch),
    }
}

impl<S: Store, E: Entropy, P: Presence> Board<S, E, P> {
    /// Step 7 for a host-held key, called once the mark (if any) is durable: raise the mark in
    /// RAM to the approval, remember it, and ask the host for a signature over `digest`.
    pub(super) fn approve(
        &mut self,
        pkh: &PublicKeyHash,
        digest: [u8; 32],
        mark: Option<(MarkId, u32, u32)>,
    ) -> Result<Response, Refusal> {
        if let Some((id, level, round)) = &mark {
            self.marks.approve(id, *level, *round, digest)?;
        }
        self.pending = Some(Pending {
            key: *pkh,
            digest,
            mark,
        });
        Ok(Response::DigestApproved { pkh: *pkh, digest })
    }

    /// The identical request to an approval still waiting for its signature: approve the same
    /// digest again (the mark is already durable and raised).
    pub(super) fn reapprove(
        &mut self,
        pkh: &PublicKeyHash,
        id: MarkId,
        level: u32,
        round: u32,
        digest: [u8; 32],
    ) -> Response {
        self.pending = Some(Pending {
            key: *pkh,
            digest,
            mark: Some((id, level, round)),
        });
        Response::DigestApproved { pkh: *pkh, digest }
    }

    /// [`crate::protocol::Request::HostSignature`]: release `signature` if it is for the
    /// pending approval and verifies under the registered key; refuse otherwise, changing
    /// nothing.
    pub(super) fn host_signature(
        &mut self,
        pkh: &PublicKeyHash,
        signature: Signature,
    ) -> Result<Response, Refusal> {
        self.healthy()?;
        let pending = match &self.pending {
            Some(p) if p.key == *pkh => p.clone(),
            _ => return Err(Refusal::NoPendingSign),
        };
        let index = self.index(pkh)?;
        let public = match &self.keys[index].material {
            Material::HostHeld { public, .. } => *public,
            Material::OnBoard(_) | Material::YubiHsm { .. } => return Err(Refusal::NoPendingSign),
        };
        let signature = normalise(&public, signature)?;
        public.verify_digest(&pending.digest, &signature)?;
        if let Some((id, level, round)) = &pending.mark {
            self.marks
                .complete(id, *level, *round, &pending.digest, signature)?;
        }
        self.pending = None;
        Ok(Response::Signature(signature))
    }
}
