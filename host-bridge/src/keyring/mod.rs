//! Host-held keys: the one seam between the sign path and every key service the bridge reaches
//! with a credential it holds (Azure Key Vault, PKCS#11 tokens, Google Cloud KMS, AWS KMS, …).
//! The host-trusted tier of `docs/design.md` §3.
//!
//! ```text
//!  signer::sign ── Sign ──────────────────────────► board: policy, watermark, mark DURABLE
//!               ◄─ DigestApproved{pkh, digest} ───
//!  Keyrings::holder(pkh) → one HostKeyring ── sign(pkh, digest) ──► its key service
//!               ── HostSignature{pkh, r‖s | sig} ► board: tz2 → low-S, verify under the
//!               ◄─ Signature (released, recorded)   registered public key, record, release
//! ```
//!
//! The sign path ([`crate::signer`], [`crate::http`]) knows only [`HostKeyring`] and
//! [`Keyrings`]; it never names a backend. The board knows only that a key is host-held
//! (`Backend::HostHeld`, registered with `RegisterHostKey` from its public key): which service
//! holds it is the bridge's business, recorded per backend in `<home>/<name>_keys.json`.
//!
//! # The trait
//!
//! A backend implements [`HostKeyring`]:
//!
//! * [`HostKeyring::name`]: its name in the baker's words, the same string everywhere — the
//!   `pawl.toml` section (`[pkcs11]`), `pawl keys import --backend NAME`, the key file
//!   `<home>/NAME_keys.json` ([`KeyFile`]), the `backend` label of the metrics.
//! * [`HostKeyring::service`]: what an operator calls the service ("Azure Key Vault"), for
//!   messages.
//! * [`HostKeyring::has_key`]: whether it signs for a pkh (a key imported while `pawl serve`
//!   runs must be found without a restart: [`KeyFile`] re-reads its file for an unknown pkh).
//! * [`HostKeyring::sign`]: sign the 32-byte digest the board approved (BLAKE2b-256 of the
//!   watermarked bytes: what Tezos signs). Return the signature as the service gave it — tz1
//!   the 64-byte Ed25519 signature of the digest, tz2/tz3 raw `r ‖ s`. High-S need not be
//!   normalised: the board does it and verifies. Retries and deadlines are the backend's; it
//!   must give up before `device.request_timeout_ms`.
//! * Its errors as a [`KeyringError`]: a [`Failure`] (the HTTP status class) and an outcome
//!   label of its own (`azure_throttled`, `pkcs11_error`, …) for the log and the metrics. An
//!   error message never carries a credential, a PIN or a token.
//!
//! # Adding a backend
//!
//! One module here (`keyring/NAME.rs`) with its settings (a `Raw…` section struct and its
//! validation, errors naming `NAME.field`), its keyring, its error mapping and its import
//! (`import(ctx, args, policy)`: read the public key from the service, `RegisterHostKey` on
//! the board, record the pkh in its [`KeyFile`]); then one field in [`crate::config`], one
//! arm in [`Keyrings::open`] and one `--backend` value in the CLI. Nothing in the sign path.

pub mod aws;
pub mod azure;
pub mod gcp;
pub mod pkcs11;
pub mod retry;

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pawl_core::keys::{PublicKeyHash, Signature};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// What [`HostKeyring::sign`] returns.
pub type SignFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Signature, KeyringError>> + Send + 'a>>;

/// A key service that signs approved digests for some host-held keys.
pub trait HostKeyring: Send + Sync {
    /// The backend's name: config section, `--backend`, key file, metric label.
    fn name(&self) -> &'static str;
    /// The service as an operator calls it, for messages.
    fn service(&self) -> &'static str;
    /// Whether this keyring signs for `pkh`.
    fn has_key(&self, pkh: &PublicKeyHash) -> bool;
    /// Sign the approved `digest` for `pkh` (see the module documentation).
    fn sign<'a>(&'a self, pkh: &'a PublicKeyHash, digest: &'a [u8; 32]) -> SignFuture<'a>;
}

/// How a key service failed, as the HTTP status class the baker sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Still throttled at the deadline: 503 (the baker may retry).
    Throttled,
    /// No answer by the deadline: 504.
    Timeout,
    /// Refused, misconfigured, or an unusable answer: 502.
    Failed,
}

/// Why a key service gave no signature. Never carries a credential.
#[derive(Clone, Debug)]
pub struct KeyringError {
    /// Status class.
    pub failure: Failure,
    /// Outcome label for logs and metrics, the backend's own (`azure_timeout`, `gcp_error`).
    pub outcome: &'static str,
    /// What happened, for the baker and the log.
    pub message: String,
}

/// A settings field a backend could not use: `field` is dotted (`pkcs11.slot`).
#[derive(Debug)]
pub struct FieldError {
    /// The field.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl FieldError {
    /// `field`: `message`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The keyrings of a running bridge, one per configured backend.
#[derive(Default)]
pub struct Keyrings {
    list: Vec<Arc<dyn HostKeyring>>,
    /// Host-held signs go one at a time from `Sign` to `HostSignature`, whatever the backend:
    /// the board keeps one pending approval.
    pub serial: tokio::sync::Mutex<()>,
}

impl Keyrings {
    /// Open every backend `config` configures (their key files under `home`).
    pub fn open(config: &crate::config::Config, home: &Path) -> anyhow::Result<Keyrings> {
        use anyhow::Context as _;
        let mut list: Vec<Arc<dyn HostKeyring>> = Vec::new();
        if let Some(settings) = &config.azure {
            list.push(Arc::new(
                azure::AzureKeyring::open(settings.clone(), home)
                    .context("[azure] in pawl.toml")?,
            ));
        }
        if let Some(settings) = &config.aws {
            list.push(Arc::new(
                aws::AwsKeyring::open(settings.clone(), home).context("[aws] in pawl.toml")?,
            ));
        }
        if let Some(settings) = &config.pkcs11 {
            list.push(Arc::new(
                pkcs11::Pkcs11Keyring::open(settings, home).context("[pkcs11] in pawl.toml")?,
            ));
        }
        if let Some(settings) = &config.gcp {
            list.push(Arc::new(
                gcp::GcpKeyring::open(settings, home).context("[gcp] in pawl.toml")?,
            ));
        }
        Ok(Keyrings::new(list))
    }

    /// Keyrings from a list (tests, and [`Keyrings::open`]).
    pub fn new(list: Vec<Arc<dyn HostKeyring>>) -> Keyrings {
        Keyrings {
            list,
            serial: tokio::sync::Mutex::new(()),
        }
    }

    /// The keyring that signs for `pkh`, if any.
    pub fn holder(&self, pkh: &PublicKeyHash) -> Option<&dyn HostKeyring> {
        self.list.iter().find(|k| k.has_key(pkh)).map(|k| &**k)
    }

    /// The configured backends' names.
    pub fn names(&self) -> Vec<&'static str> {
        self.list.iter().map(|k| k.name()).collect()
    }
}

/// Shortest time between two reads of a key file for an unknown pkh (on-board keys are asked
/// about too).
const KEYS_REREAD: Duration = Duration::from_secs(1);

/// A backend's record of which service key signs for which pkh: `<home>/<name>_keys.json`, a
/// JSON list of `R` (each with a `pkh` field), written by its import command, re-read by a
/// running bridge when a pkh is missing.
pub struct KeyFile<R> {
    path: PathBuf,
    table: Mutex<(HashMap<PublicKeyHash, R>, Instant)>,
}

/// A record of a [`KeyFile`].
pub trait KeyRecord: Clone + Serialize + DeserializeOwned {
    /// The pkh it signs for, as written (`tz2…`).
    fn pkh(&self) -> &str;
}

impl<R: KeyRecord> KeyFile<R> {
    /// The file of backend `name` under `home`, read now (absent: no keys yet).
    pub fn open(home: &Path, name: &str) -> Result<KeyFile<R>, String> {
        let path = home.join(format!("{name}_keys.json"));
        let keys = Self::load(&path)?;
        Ok(KeyFile {
            path,
            table: Mutex::new((keys, Instant::now())),
        })
    }

    /// Where it lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn load(path: &Path) -> Result<HashMap<PublicKeyHash, R>, String> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashMap::new()),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let list: Vec<R> =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut keys = HashMap::new();
        for record in list {
            let pkh = PublicKeyHash::from_b58(record.pkh())
                .map_err(|e| format!("{}: `{}`: {e}", path.display(), record.pkh()))?;
            keys.insert(pkh, record);
        }
        Ok(keys)
    }

    /// The record for `pkh`; an unknown pkh re-reads the file (at most once a second).
    pub fn get(&self, pkh: &PublicKeyHash) -> Result<Option<R>, String> {
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        if !table.0.contains_key(pkh) && table.1.elapsed() >= KEYS_REREAD {
            table.0 = Self::load(&self.path)?;
            table.1 = Instant::now();
        }
        Ok(table.0.get(pkh).cloned())
    }

    /// Record (or replace) the key of one pkh.
    pub fn record(&self, record: R) -> Result<(), String> {
        let mut list: Vec<R> = Self::load(&self.path)?
            .into_values()
            .filter(|k| k.pkh() != record.pkh())
            .collect();
        list.push(record);
        list.sort_by(|a, b| a.pkh().cmp(b.pkh()));
        let text = serde_json::to_string_pretty(&list).map_err(|e| e.to_string())?;
        std::fs::write(&self.path, text).map_err(|e| format!("{}: {e}", self.path.display()))?;
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        table.0 = Self::load(&self.path)?;
        table.1 = Instant::now();
        Ok(())
    }
}
