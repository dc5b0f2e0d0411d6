//! Azure Key Vault keyring ([`super::HostKeyring`] `azure`): the host-trusted tier
//! (`docs/design.md` §3). The board approves a digest (its mark already durable); this module
//! has Key Vault sign it (`ES256K` for tz2, `ES256` for tz3) and hands the raw `r ‖ s` back,
//! which the board converts, verifies and releases.
//!
//! * Official SDK (`azure_security_keyvault_keys`, `azure_identity`) over rustls. Its HTTP
//!   client is built here so a private CA (`[azure] ca_file`, the simulator's) can be trusted.
//! * Credentials: managed identity (IMDS on a VM; App Service/simulator when
//!   `IDENTITY_ENDPOINT` + `IDENTITY_HEADER` are set), workload identity (`AZURE_*` variables
//!   of the Kubernetes webhook), client secret (read from a file, never logged), Azure CLI.
//! * Retries: the SDK's own retry is off; this loop retries 429 (honouring `Retry-After`),
//!   408/5xx and connection failures until the sign deadline, and never sleeps past it.
//! * Which Key Vault key signs for which pkh is recorded by `pawl keys import --backend azure`
//!   in `<home>/azure_keys.json`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use azure_core::credentials::{Secret, TokenCredential};
use azure_core::http::{ClientOptions, RetryOptions, Transport};
use azure_identity::{
    AzureCliCredential, ClientSecretCredential, ManagedIdentityCredential,
    ManagedIdentityCredentialOptions, UserAssignedId, WorkloadIdentityCredential,
};
use azure_security_keyvault_keys::models::{
    CurveName, KeyClientGetKeyOptions, KeyClientSignOptions, SignParameters, SignatureAlgorithm,
};
use azure_security_keyvault_keys::{KeyClient, KeyClientOptions};
use pawl_core::keys::{Curve, PublicKey, PublicKeyHash, Signature};
use serde::{Deserialize, Serialize};

use super::retry::Attempt;

/// The file `pawl keys import --backend azure` writes in the home directory.
pub const KEYS_FILE: &str = "azure_keys.json";

/// How the bridge authenticates to Key Vault (`[azure] credential`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CredentialChoice {
    /// Managed identity; `client_id` selects a user-assigned identity.
    ManagedIdentity {
        /// User-assigned identity's client id.
        client_id: Option<String>,
    },
    /// Workload identity (AKS): `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_FEDERATED_TOKEN_FILE`.
    WorkloadIdentity,
    /// A service principal's client secret, read from `secret_file`.
    ClientSecret {
        /// Tenant.
        tenant_id: String,
        /// Application (client) id.
        client_id: String,
        /// File holding the secret (its content is never logged or shown).
        secret_file: PathBuf,
    },
    /// The signed-in Azure CLI (`az account get-access-token`).
    AzureCli,
}

/// `[azure]`, validated.
#[derive(Clone, Debug)]
pub struct AzureSettings {
    /// Default vault for `pawl keys import --backend azure`.
    pub vault_url: Option<String>,
    /// Credential.
    pub credential: CredentialChoice,
    /// Trust only this CA (PEM) for Key Vault and token endpoints (the simulator).
    pub ca_file: Option<PathBuf>,
    /// Check that a 401 challenge names a Key Vault resource (off for the simulator).
    pub verify_challenge_resource: bool,
    /// Key Vault REST API version (`None`: the SDK's).
    pub api_version: Option<String>,
    /// Longest one signature may take at Key Vault, retries included.
    pub sign_deadline: Duration,
}

/// A Key Vault key that signs for one pkh.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRef {
    /// `tz2…`/`tz3…`.
    pub pkh: String,
    /// Vault URL.
    pub vault: String,
    /// Key name.
    pub key: String,
    /// Key version (`None`: the current one).
    pub version: Option<String>,
}

/// Why Key Vault did not give a signature. Never carries a token or a secret.
#[derive(Debug, thiserror::Error)]
pub enum AzureError {
    /// The configuration or key file cannot be used.
    #[error("{0}")]
    Setup(String),
    /// No Key Vault key is recorded for this pkh.
    #[error("no Azure Key Vault key is recorded for {0} (run `pawl keys import --backend azure`)")]
    UnknownKey(String),
    /// Still throttled (429) when the deadline came.
    #[error(
        "Azure Key Vault throttled the request (HTTP 429) {attempts} time(s) until the {deadline_ms} ms deadline"
    )]
    Throttled {
        /// Attempts made.
        attempts: u32,
        /// Deadline.
        deadline_ms: u128,
    },
    /// No answer in time (timeouts, 5xx, connection failures until the deadline).
    #[error(
        "Azure Key Vault gave no signature within {deadline_ms} ms ({attempts} attempt(s); last: {last})"
    )]
    Timeout {
        /// Attempts made.
        attempts: u32,
        /// Deadline.
        deadline_ms: u128,
        /// Last failure.
        last: String,
    },
    /// Key Vault refused (auth, permissions, unknown key…).
    #[error("Azure Key Vault refused: HTTP {status}: {message}")]
    Refused {
        /// Status.
        status: u16,
        /// Service message.
        message: String,
    },
    /// The answer was not what the API documents.
    #[error("Azure Key Vault answer unusable: {0}")]
    BadAnswer(String),
}

/// Shortest time between two reads of `<home>/azure_keys.json` for an unknown pkh.
const KEYS_REREAD: Duration = Duration::from_secs(1);

/// pkh → Key Vault key, and when the file was last read.
struct KeyTable {
    keys: HashMap<PublicKeyHash, KeyRef>,
    read: Instant,
}

/// The Azure keyring of a running bridge.
pub struct AzureKeyring {
    settings: AzureSettings,
    credential: Arc<dyn TokenCredential>,
    transport: Option<Transport>,
    clients: Mutex<HashMap<String, Arc<KeyClient>>>,
    /// pkh → Key Vault key, from `<home>/azure_keys.json`; re-read when a pkh is missing, so a
    /// key imported while `pawl serve` runs signs without a restart.
    keys: Mutex<KeyTable>,
    home: PathBuf,
}

fn setup<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> AzureError + '_ {
    move |e| AzureError::Setup(format!("{what}: {e}"))
}

impl AzureKeyring {
    /// Build the credential and HTTP transport; load `<home>/azure_keys.json` if present.
    pub fn open(settings: AzureSettings, home: &Path) -> Result<AzureKeyring, AzureError> {
        let transport = match &settings.ca_file {
            None => None,
            Some(path) => {
                let pem = std::fs::read(path)
                    .map_err(setup(&format!("azure.ca_file {}", path.display())))?;
                let cert = reqwest::Certificate::from_pem(&pem).map_err(setup("azure.ca_file"))?;
                let http = reqwest::Client::builder()
                    .tls_certs_only([cert])
                    .build()
                    .map_err(setup("HTTP client"))?;
                Some(Transport::new(Arc::new(http)))
            }
        };
        let client_options = ClientOptions {
            transport: transport.clone(),
            ..Default::default()
        };
        let credential: Arc<dyn TokenCredential> = match &settings.credential {
            CredentialChoice::ManagedIdentity { client_id } => {
                ManagedIdentityCredential::new(Some(ManagedIdentityCredentialOptions {
                    user_assigned_id: client_id.clone().map(UserAssignedId::ClientId),
                    client_options,
                }))
                .map_err(setup("managed identity"))?
            }
            CredentialChoice::WorkloadIdentity => {
                WorkloadIdentityCredential::new(None).map_err(setup("workload identity"))?
            }
            CredentialChoice::ClientSecret {
                tenant_id,
                client_id,
                secret_file,
            } => {
                let secret = std::fs::read_to_string(secret_file).map_err(setup(&format!(
                    "azure.client_secret_file {}",
                    secret_file.display()
                )))?;
                let secret = Secret::new(secret.trim().to_string());
                ClientSecretCredential::new(
                    tenant_id,
                    client_id.clone(),
                    secret,
                    Some(azure_identity::ClientSecretCredentialOptions { client_options }),
                )
                .map_err(setup("client secret credential"))?
            }
            CredentialChoice::AzureCli => {
                AzureCliCredential::new(None).map_err(setup("Azure CLI credential"))?
            }
        };
        let keys = load_keys(home)?;
        Ok(AzureKeyring {
            settings,
            credential,
            transport,
            clients: Mutex::new(HashMap::new()),
            keys: Mutex::new(KeyTable {
                keys,
                read: Instant::now(),
            }),
            home: home.to_path_buf(),
        })
    }

    /// The settings.
    pub fn settings(&self) -> &AzureSettings {
        &self.settings
    }

    /// Whether `pkh` is a Key Vault key this bridge knows.
    pub fn has_key(&self, pkh: &PublicKeyHash) -> bool {
        self.key_ref(pkh).is_ok()
    }

    fn client(&self, vault: &str) -> Result<Arc<KeyClient>, AzureError> {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = clients.get(vault) {
            return Ok(Arc::clone(c));
        }
        let mut options = KeyClientOptions {
            verify_challenge_resource: Some(self.settings.verify_challenge_resource),
            ..Default::default()
        };
        if let Some(v) = &self.settings.api_version {
            options.api_version = v.clone();
        }
        options.client_options.transport = self.transport.clone();
        // Retries are ours: they must respect the sign deadline.
        options.client_options.retry = RetryOptions::none();
        let client = Arc::new(
            KeyClient::new(vault, Arc::clone(&self.credential), Some(options))
                .map_err(setup(&format!("vault URL {vault}")))?,
        );
        clients.insert(vault.to_string(), Arc::clone(&client));
        Ok(client)
    }

    /// The public key of `key` in `vault` (from its JWK), as the board registers it.
    pub async fn public_key(
        &self,
        vault: &str,
        key: &str,
        version: Option<&str>,
    ) -> Result<PublicKey, AzureError> {
        let client = self.client(vault)?;
        let options = KeyClientGetKeyOptions {
            key_version: version.map(str::to_string),
            ..Default::default()
        };
        let key = retrying(self.settings.sign_deadline, || {
            client.get_key(key, Some(options.clone()))
        })
        .await?;
        let key = key
            .into_model()
            .map_err(|e| AzureError::BadAnswer(e.to_string()))?;
        let jwk = key
            .key
            .ok_or(AzureError::BadAnswer("no `key` in the answer".into()))?;
        let curve = match jwk.crv {
            Some(CurveName::P256K) => Curve::Secp256k1,
            Some(CurveName::P256) => Curve::P256,
            other => {
                return Err(AzureError::BadAnswer(format!(
                    "curve {other:?}: only P-256K (tz2) and P-256 (tz3) keys can sign for Tezos"
                )));
            }
        };
        let (Some(x), Some(y)) = (jwk.x, jwk.y) else {
            return Err(AzureError::BadAnswer("the JWK has no x/y".into()));
        };
        if x.len() != 32 || y.len() != 32 {
            return Err(AzureError::BadAnswer(format!(
                "x/y of {}/{} bytes, expected 32",
                x.len(),
                y.len()
            )));
        }
        let mut compressed = [0u8; 33];
        compressed[0] = 2 | (y[31] & 1);
        compressed[1..].copy_from_slice(&x);
        let pk = PublicKey::from_curve_bytes(curve, &compressed)
            .map_err(|e| AzureError::BadAnswer(e.to_string()))?;
        pk.validate()
            .map_err(|e| AzureError::BadAnswer(e.to_string()))?;
        Ok(pk)
    }

    /// The Key Vault key recorded for `pkh`. A pkh not in the table makes it re-read
    /// `<home>/azure_keys.json` (at most once a second: on-board keys are asked about too), so
    /// a key imported after this keyring was opened is found.
    fn key_ref(&self, pkh: &PublicKeyHash) -> Result<KeyRef, AzureError> {
        let mut table = self
            .keys
            .lock()
            .map_err(|_| AzureError::Setup("key table lock poisoned".into()))?;
        if !table.keys.contains_key(pkh) && table.read.elapsed() >= KEYS_REREAD {
            table.keys = load_keys(&self.home)?;
            table.read = Instant::now();
        }
        table
            .keys
            .get(pkh)
            .cloned()
            .ok_or_else(|| AzureError::UnknownKey(pkh.to_string()))
    }

    /// Have Key Vault sign `digest` for `pkh`: raw `r ‖ s` as returned (not normalised; the
    /// board does that and verifies).
    pub async fn sign(
        &self,
        pkh: &PublicKeyHash,
        digest: &[u8; 32],
    ) -> Result<Signature, AzureError> {
        let key = self.key_ref(pkh)?;
        let key = &key;
        let client = self.client(&key.vault)?;
        let algorithm = match pkh.curve {
            Curve::Secp256k1 => SignatureAlgorithm::Es256K,
            Curve::P256 => SignatureAlgorithm::Es256,
            c => {
                return Err(AzureError::Setup(format!(
                    "{c} keys cannot be held in Key Vault"
                )));
            }
        };
        let options = KeyClientSignOptions {
            key_version: key.version.clone(),
            ..Default::default()
        };
        let answer = retrying(self.settings.sign_deadline, || {
            let params = SignParameters {
                algorithm: Some(algorithm.clone()),
                value: Some(digest.to_vec()),
            };
            let client = Arc::clone(&client);
            let options = options.clone();
            let name = key.key.clone();
            async move {
                let body = params.try_into()?;
                client.sign(&name, body, Some(options)).await
            }
        })
        .await?;
        let result = answer
            .into_model()
            .map_err(|e| AzureError::BadAnswer(e.to_string()))?;
        let raw = result
            .result
            .ok_or(AzureError::BadAnswer("no signature value".into()))?;
        Signature::from_curve_bytes(pkh.curve, &raw).map_err(|_| {
            AzureError::BadAnswer(format!(
                "signature of {} bytes, expected 64 (r ‖ s)",
                raw.len()
            ))
        })
    }
}

impl super::HostKeyring for AzureKeyring {
    fn name(&self) -> &'static str {
        "azure"
    }

    fn service(&self) -> &'static str {
        "Azure Key Vault"
    }

    fn has_key(&self, pkh: &PublicKeyHash) -> bool {
        AzureKeyring::has_key(self, pkh)
    }

    fn sign<'a>(&'a self, pkh: &'a PublicKeyHash, digest: &'a [u8; 32]) -> super::SignFuture<'a> {
        Box::pin(async move {
            AzureKeyring::sign(self, pkh, digest)
                .await
                .map_err(keyring_error)
        })
    }
}

/// The error mapping of the Azure tier: 429 until the deadline → 503, no answer → 504, the
/// rest → 502.
fn keyring_error(e: AzureError) -> super::KeyringError {
    use super::Failure;
    let (failure, outcome) = match &e {
        AzureError::Throttled { .. } => (Failure::Throttled, "azure_throttled"),
        AzureError::Timeout { .. } => (Failure::Timeout, "azure_timeout"),
        AzureError::Setup(_)
        | AzureError::UnknownKey(_)
        | AzureError::Refused { .. }
        | AzureError::BadAnswer(_) => (Failure::Failed, "azure_error"),
    };
    super::KeyringError {
        failure,
        outcome,
        message: e.to_string(),
    }
}

/// Run `call` until it succeeds, fails for good, or `budget` has passed ([`super::retry`]).
async fn retrying<T, F, Fut>(budget: Duration, mut call: F) -> Result<T, AzureError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = azure_core::Result<T>>,
{
    super::retry::retrying("Key Vault", budget, |_| {
        let answer = call();
        async move { attempt(answer.await) }
    })
    .await
}

/// What one Key Vault answer means: 429 is throttling (wait as `Retry-After` says), 408/5xx
/// and no HTTP answer at all are worth another attempt, any other status is final.
fn attempt<T>(outcome: azure_core::Result<T>) -> Attempt<T, AzureError> {
    let error = match outcome {
        Ok(v) => return Attempt::Done(v),
        Err(e) => e,
    };
    match error.http_status().map(u16::from) {
        Some(429) => Attempt::Retry {
            what: "HTTP 429".into(),
            throttled: true,
            wait: retry_after(&error),
        },
        Some(status @ (408 | 500 | 502 | 503 | 504)) => Attempt::Retry {
            what: format!("HTTP {status}"),
            throttled: false,
            wait: None,
        },
        None => Attempt::Retry {
            what: error.to_string(),
            throttled: false,
            wait: None,
        },
        Some(status) => Attempt::Fatal(AzureError::Refused {
            status,
            message: error.to_string(),
        }),
    }
}

crate::keyring::retry::gave_up_into!(AzureError);

fn retry_after(error: &azure_core::Error) -> Option<Duration> {
    let azure_core::error::ErrorKind::HttpResponse {
        raw_response: Some(raw),
        ..
    } = error.kind()
    else {
        return None;
    };
    let value = raw
        .headers()
        .get_optional_str(&azure_core::http::headers::RETRY_AFTER)?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

fn load_keys(home: &Path) -> Result<HashMap<PublicKeyHash, KeyRef>, AzureError> {
    let path = home.join(KEYS_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(e) => return Err(AzureError::Setup(format!("{}: {e}", path.display()))),
    };
    let list: Vec<KeyRef> =
        serde_json::from_str(&text).map_err(setup(&path.display().to_string()))?;
    let mut keys = HashMap::new();
    for k in list {
        let pkh = PublicKeyHash::from_b58(&k.pkh).map_err(setup(&format!(
            "{}: `{}`",
            path.display(),
            k.pkh
        )))?;
        keys.insert(pkh, k);
    }
    Ok(keys)
}

/// Record (or replace) the Key Vault key of one pkh in `<home>/azure_keys.json`.
pub fn record_key(home: &Path, key: KeyRef) -> Result<(), AzureError> {
    let mut list: Vec<KeyRef> = load_keys(home)?
        .into_values()
        .filter(|k| k.pkh != key.pkh)
        .collect();
    list.push(key);
    list.sort_by(|a, b| a.pkh.cmp(&b.pkh));
    let text = serde_json::to_string_pretty(&list).map_err(setup("key file"))?;
    let path = home.join(KEYS_FILE);
    std::fs::write(&path, text).map_err(setup(&path.display().to_string()))
}
