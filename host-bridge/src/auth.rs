//! Who may ask for signatures: Octez's `--require-authentication`.
//!
//! The client signs `0x04 ‖ 0x01 ‖ pkh (21 bytes) ‖ data` with one of the authorized keys and
//! sends the signature as `?authentication=`. The board enforces *what* may be signed; the
//! bridge enforces *who* may ask.

use std::net::IpAddr;
use std::sync::{Arc, RwLock};

use pawl_core::keys::{PublicKey, PublicKeyHash, Signature, SigningVersion};

/// Why a request was not authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Authentication is required and the request carries none.
    #[error("missing authentication signature field")]
    Missing,
    /// No authorized key verifies the signature.
    #[error("invalid authentication signature")]
    Invalid,
}

/// The authorized keys. Clones share one list, which [`Authorizer::replace`] swaps whole
/// (`pawl serve` on SIGHUP): a request is checked against the old list or the new one.
#[derive(Clone, Debug, Default)]
pub struct Authorizer {
    keys: Arc<RwLock<Arc<Vec<PublicKey>>>>,
}

impl Authorizer {
    /// Authorize `keys`; an empty list means no authentication is required.
    pub fn new(keys: Vec<PublicKey>) -> Self {
        Authorizer {
            keys: Arc::new(RwLock::new(Arc::new(keys))),
        }
    }

    /// Authorize `keys` from now on, instead of the keys before.
    pub fn replace(&self, keys: Vec<PublicKey>) {
        if let Ok(mut k) = self.keys.write() {
            *k = Arc::new(keys);
        }
    }

    fn keys(&self) -> Arc<Vec<PublicKey>> {
        self.keys.read().map(|k| Arc::clone(&k)).unwrap_or_default()
    }

    /// Whether sign requests must be authenticated.
    pub fn required(&self) -> bool {
        !self.keys().is_empty()
    }

    /// Hashes of the authorized keys, as `GET /authorized_keys` lists them.
    pub fn hashes(&self) -> Vec<String> {
        self.keys()
            .iter()
            .map(|k| k.hash().to_b58().to_string())
            .collect()
    }

    /// The authorized keys' hashes.
    pub fn key_hashes(&self) -> Vec<PublicKeyHash> {
        self.keys().iter().map(PublicKey::hash).collect()
    }

    /// Check the `authentication` signature (base58, as HTTP carries it) of a request to sign
    /// `data` with `pkh`.
    pub fn check(
        &self,
        pkh: &PublicKeyHash,
        data: &[u8],
        authentication: Option<&str>,
    ) -> Result<(), AuthError> {
        self.check_with(pkh, data, authentication, |text, key| {
            Signature::from_b58(text, key.curve()).ok()
        })
    }

    /// The same check for a signature given as raw bytes (the socket protocol's): 64 bytes
    /// for tz1–tz3 keys, 96 for tz4, read for each authorized key's curve.
    pub fn check_raw(
        &self,
        pkh: &PublicKeyHash,
        data: &[u8],
        authentication: Option<&[u8]>,
    ) -> Result<(), AuthError> {
        self.check_with(pkh, data, authentication, |bytes, key| {
            Signature::from_curve_bytes(key.curve(), bytes).ok()
        })
    }

    fn check_with<T: ?Sized>(
        &self,
        pkh: &PublicKeyHash,
        data: &[u8],
        authentication: Option<&T>,
        read: impl Fn(&T, &PublicKey) -> Option<Signature>,
    ) -> Result<(), AuthError> {
        let keys = self.keys();
        if keys.is_empty() {
            return Ok(());
        }
        let given = authentication.ok_or(AuthError::Missing)?;
        let mut message = Vec::with_capacity(2 + 21 + data.len());
        message.extend_from_slice(&[0x04, 0x01]);
        message.extend_from_slice(&pkh.to_bytes());
        message.extend_from_slice(data);
        let accepted = keys.iter().any(|key| {
            read(given, key)
                .is_some_and(|sig| key.verify(&message, &sig, SigningVersion::LATEST).is_ok())
        });
        if accepted {
            Ok(())
        } else {
            Err(AuthError::Invalid)
        }
    }
}

/// Client IP addresses allowed to connect (`[server] allowed_ips`; empty: any). Clones share
/// one list, which [`AllowedIps::replace`] swaps whole (`pawl serve` on SIGHUP).
#[derive(Clone, Debug, Default)]
pub struct AllowedIps(Arc<RwLock<Arc<Vec<IpAddr>>>>);

impl AllowedIps {
    /// The list now.
    pub fn to_vec(&self) -> Vec<IpAddr> {
        self.0.read().map(|l| l.to_vec()).unwrap_or_default()
    }

    /// Whether any client may connect.
    pub fn is_empty(&self) -> bool {
        self.0.read().map(|l| l.is_empty()).unwrap_or(true)
    }

    /// Whether `ip` is on the list.
    pub fn contains(&self, ip: &IpAddr) -> bool {
        self.0.read().map(|l| l.contains(ip)).unwrap_or(false)
    }

    /// Allow `ips` from now on (empty: any).
    pub fn replace(&self, ips: Vec<IpAddr>) {
        if let Ok(mut l) = self.0.write() {
            *l = Arc::new(ips);
        }
    }
}

impl From<Vec<IpAddr>> for AllowedIps {
    fn from(ips: Vec<IpAddr>) -> Self {
        AllowedIps(Arc::new(RwLock::new(Arc::new(ips))))
    }
}
