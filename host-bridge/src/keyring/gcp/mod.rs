//! Google Cloud KMS keyring ([`super::HostKeyring`] `gcp`): the host-trusted tier with keys in
//! Cloud KMS (`EC_SIGN_SECP256K1_SHA256` for tz2, HSM protection level only on Google's side;
//! `EC_SIGN_P256_SHA256` for tz3). The bridge holds a service account's key file.
//!
//! * The REST API over `reqwest` (rustls), not the `google-cloud-kms-v1` SDK: two calls are
//!   used (`cryptoKeyVersions.asymmetricSign`, `cryptoKeyVersions.getPublicKey`) and the SDK's
//!   gRPC/HTTP stack would add minutes of compile time to CI for them. `endpoint` and `ca_file`
//!   point it at `pawl-sim gcp`.
//! * What is signed: Cloud KMS signs a caller-supplied digest without hashing again, and
//!   checks only its length against the key's algorithm (SHA-256: 32 bytes). Tezos signs the
//!   32-byte BLAKE2b-256 digest of the watermarked bytes, so the bridge sends that digest in
//!   the `digest.sha256` field: the service cannot tell, and the ECDSA signature is over the
//!   digest Tezos verifies. The answer is a DER `ECDSA-Sig-Value`, turned into raw `r ‖ s`;
//!   the board normalises tz2 to low-S (Cloud KMS does not) and verifies before releasing.
//! * Credentials ([`auth`]): a service account key file, or the Compute Engine metadata server
//!   (`credential = "metadata"`: no key on the host); tokens are cached until a minute before
//!   they expire, and a 401 drops the cached token and retries once.
//! * Retries: 429 (honouring `Retry-After` when present), 408, 5xx and connection failures,
//!   with backoff, until `sign_deadline_ms`; other answers are refusals naming the status and
//!   the service's message. Mapped to 503 `gcp_throttled`, 504 `gcp_timeout`, 502 `gcp_error`.
//! * Which key version signs for which pkh: `<home>/gcp_keys.json`, written by
//!   `pawl keys import --backend gcp --gcp-key projects/…/cryptoKeyVersions/N` ([`import`]).

mod auth;
mod import;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use pawl_core::keys::{Curve, PublicKey, PublicKeyHash, Signature};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub use import::{ImportArgs, import};

use super::retry::Attempt;
use super::{Failure, FieldError, HostKeyring, KeyFile, KeyRecord, KeyringError, SignFuture};

/// The backend's name: `[gcp]`, `--backend gcp`, `gcp_keys.json`, metric label.
pub const NAME: &str = "gcp";

/// The Compute Engine metadata server.
pub const DEFAULT_METADATA: &str = "http://metadata.google.internal/";

/// The public Cloud KMS endpoint.
pub const DEFAULT_ENDPOINT: &str = "https://cloudkms.googleapis.com/";

/// `[gcp]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGcp {
    /// `service-account` (default: a key file) or `metadata` (the Compute Engine metadata
    /// server's token for the VM's attached service account).
    pub credential: Option<String>,
    /// With `service-account`: the JSON key file (its content is never logged or shown).
    pub service_account_file: Option<PathBuf>,
    /// With `metadata`: the metadata server. Default `http://metadata.google.internal/`.
    pub metadata_url: Option<String>,
    /// Cloud KMS base URL. Default `https://cloudkms.googleapis.com/`.
    pub endpoint: Option<String>,
    /// Trust only this CA certificate (PEM) for Cloud KMS and the token endpoint (simulator).
    pub ca_file: Option<PathBuf>,
    /// Longest one signature may take, retries included, ms. Default 3000; below
    /// `device.request_timeout_ms`.
    pub sign_deadline_ms: Option<u64>,
}

/// Where the bridge's tokens come from (never a secret itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GcpCredential {
    /// A service account key file.
    ServiceAccount(PathBuf),
    /// The metadata server at this URL (ending in `/`).
    Metadata(String),
}

/// `[gcp]`, validated.
#[derive(Clone, Debug)]
pub struct GcpSettings {
    /// The token source.
    pub credential: GcpCredential,
    /// Base URL, ending in `/`.
    pub endpoint: String,
    /// Private CA.
    pub ca_file: Option<PathBuf>,
    /// Longest one signature may take.
    pub sign_deadline: Duration,
}

impl RawGcp {
    /// Validate; `request_timeout` is `device.request_timeout_ms`.
    pub fn validate(self, request_timeout: Duration) -> Result<GcpSettings, FieldError> {
        let credential = match self.credential.as_deref().unwrap_or("service-account") {
            "service-account" => {
                if self.metadata_url.is_some() {
                    return Err(FieldError::new(
                        "gcp.metadata_url",
                        "only with credential = \"metadata\"",
                    ));
                }
                GcpCredential::ServiceAccount(self.service_account_file.ok_or_else(|| {
                    FieldError::new(
                        "gcp.service_account_file",
                        "required with credential = \"service-account\": the service account's JSON key file",
                    )
                })?)
            }
            "metadata" => {
                if self.service_account_file.is_some() {
                    return Err(FieldError::new(
                        "gcp.service_account_file",
                        "only with credential = \"service-account\"",
                    ));
                }
                let mut url = self.metadata_url.unwrap_or_else(|| DEFAULT_METADATA.into());
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(FieldError::new(
                        "gcp.metadata_url",
                        format!("`{url}` is not an http:// or https:// URL"),
                    ));
                }
                if !url.ends_with('/') {
                    url.push('/');
                }
                GcpCredential::Metadata(url)
            }
            other => {
                return Err(FieldError::new(
                    "gcp.credential",
                    format!("`{other}` is not one of service-account, metadata"),
                ));
            }
        };
        let mut endpoint = self.endpoint.unwrap_or_else(|| DEFAULT_ENDPOINT.into());
        if !endpoint.starts_with("https://") {
            return Err(FieldError::new(
                "gcp.endpoint",
                format!("`{endpoint}` must be an https:// URL"),
            ));
        }
        if !endpoint.ends_with('/') {
            endpoint.push('/');
        }
        let ms = self.sign_deadline_ms.unwrap_or(3000);
        let sign_deadline = Duration::from_millis(ms);
        if sign_deadline.is_zero() || sign_deadline >= request_timeout {
            return Err(FieldError::new(
                "gcp.sign_deadline_ms",
                format!(
                    "{ms} ms must be above 0 and below device.request_timeout_ms ({} ms)",
                    request_timeout.as_millis()
                ),
            ));
        }
        Ok(GcpSettings {
            credential,
            endpoint,
            ca_file: self.ca_file,
            sign_deadline,
        })
    }
}

/// A Cloud KMS key version that signs for one pkh (`<home>/gcp_keys.json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRef {
    /// `tz2…`/`tz3…`.
    pub pkh: String,
    /// `projects/P/locations/L/keyRings/R/cryptoKeys/K/cryptoKeyVersions/N`.
    pub key_version: String,
}

impl KeyRecord for KeyRef {
    fn pkh(&self) -> &str {
        &self.pkh
    }
}

/// Why Cloud KMS gave no signature. Never carries a token or key material.
#[derive(Debug, thiserror::Error)]
pub enum GcpError {
    /// Settings, key file or key table unusable.
    #[error("{0}")]
    Setup(String),
    /// No key version is recorded for this pkh.
    #[error("no Cloud KMS key is recorded for {0} (run `pawl keys import --backend gcp`)")]
    UnknownKey(String),
    /// Still throttled (429) at the deadline.
    #[error(
        "Cloud KMS throttled the request (HTTP 429) {attempts} time(s) until the {deadline_ms} ms deadline"
    )]
    Throttled {
        /// Attempts made.
        attempts: u32,
        /// Deadline.
        deadline_ms: u128,
    },
    /// No answer in time.
    #[error(
        "Cloud KMS gave no signature within {deadline_ms} ms ({attempts} attempt(s); last: {last})"
    )]
    Timeout {
        /// Attempts made.
        attempts: u32,
        /// Deadline.
        deadline_ms: u128,
        /// Last failure.
        last: String,
    },
    /// Refused (permissions, unknown key version, wrong algorithm…).
    #[error("Cloud KMS refused: HTTP {status}: {message}")]
    Refused {
        /// Status.
        status: u16,
        /// The service's message.
        message: String,
    },
    /// The answer is not what the API documents.
    #[error("Cloud KMS answer unusable: {0}")]
    BadAnswer(String),
}

crate::keyring::retry::gave_up_into!(GcpError);

/// The Cloud KMS keyring of a running bridge (and of `pawl keys import --backend gcp`).
pub struct GcpKeyring {
    settings: GcpSettings,
    http: reqwest::Client,
    account: auth::Credential,
    keys: KeyFile<KeyRef>,
}

impl GcpKeyring {
    /// Read the key file and `<home>/gcp_keys.json`; build the HTTP client.
    pub fn open(settings: &GcpSettings, home: &Path) -> Result<GcpKeyring, GcpError> {
        let mut http = reqwest::Client::builder().timeout(settings.sign_deadline);
        if let Some(path) = &settings.ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| GcpError::Setup(format!("gcp.ca_file {}: {e}", path.display())))?;
            let cert = reqwest::Certificate::from_pem(&pem)
                .map_err(|e| GcpError::Setup(format!("gcp.ca_file {}: {e}", path.display())))?;
            http = http.tls_certs_only([cert]);
        }
        let http = http
            .build()
            .map_err(|e| GcpError::Setup(format!("HTTP client: {e}")))?;
        Ok(GcpKeyring {
            account: match &settings.credential {
                GcpCredential::ServiceAccount(path) => {
                    auth::Credential::load(path).map_err(GcpError::Setup)?
                }
                GcpCredential::Metadata(url) => auth::Credential::metadata(url),
            },
            keys: KeyFile::open(home, NAME).map_err(GcpError::Setup)?,
            settings: settings.clone(),
            http,
        })
    }

    /// One call (`GET` when `body` is `None`) with retries until the deadline
    /// ([`crate::keyring::retry`]); the JSON answer.
    async fn call(&self, path: &str, body: Option<&Value>) -> Result<Value, GcpError> {
        let url = format!("{}v1/{path}", self.settings.endpoint);
        // A 401 drops the cached token and retries at once, once per call.
        let reauthorised = AtomicBool::new(false);
        let (url, reauthorised) = (&url, &reauthorised);
        crate::keyring::retry::retrying("Cloud KMS", self.settings.sign_deadline, |left| {
            self.attempt(url, body, left, reauthorised)
        })
        .await
    }

    /// One attempt of [`GcpKeyring::call`] with `left` of the deadline.
    async fn attempt(
        &self,
        url: &str,
        body: Option<&Value>,
        left: Duration,
        reauthorised: &AtomicBool,
    ) -> Attempt<Value, GcpError> {
        let retry = |what: String, throttled, wait| Attempt::Retry {
            what,
            throttled,
            wait,
        };
        let token = match self.account.token(&self.http).await {
            Err(auth::TokenError::Refused(m)) => return Attempt::Fatal(GcpError::Setup(m)),
            Err(auth::TokenError::Unreachable(m)) => return retry(m, false, None),
            Ok(token) => token,
        };
        let request = match body {
            Some(b) => self
                .http
                .post(url)
                .header("content-type", "application/json")
                .body(b.to_string()),
            None => self.http.get(url),
        };
        let response = match request
            .bearer_auth(token.as_str())
            .timeout(left.max(Duration::from_millis(1)))
            .send()
            .await
        {
            Err(e) => return retry(format!("{}", e.without_url()), false, None),
            Ok(response) => response,
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let text = response.text().await.unwrap_or_default();
        match status {
            200 => match serde_json::from_str(&text) {
                Ok(v) => Attempt::Done(v),
                Err(e) => Attempt::Fatal(GcpError::BadAnswer(e.to_string())),
            },
            401 if !reauthorised.swap(true, Ordering::Relaxed) => {
                self.account.forget().await;
                retry(
                    "HTTP 401 (token refused; asking for a new one)".into(),
                    false,
                    Some(Duration::ZERO),
                )
            }
            429 => retry(
                "HTTP 429".into(),
                true,
                retry_after.map(Duration::from_secs),
            ),
            408 | 500 | 502 | 503 | 504 => retry(format!("HTTP {status}"), false, None),
            _ => Attempt::Fatal(GcpError::Refused {
                status,
                message: service_message(&text),
            }),
        }
    }

    /// The public key of a key version, as the board registers it.
    pub async fn public_key(&self, key_version: &str) -> Result<PublicKey, GcpError> {
        let answer = self.call(&format!("{key_version}/publicKey"), None).await?;
        let field = |name: &str| {
            answer[name]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| GcpError::BadAnswer(format!("no `{name}` in the answer")))
        };
        let algorithm = field("algorithm")?;
        let curve = match algorithm.as_str() {
            "EC_SIGN_SECP256K1_SHA256" => Curve::Secp256k1,
            "EC_SIGN_P256_SHA256" => Curve::P256,
            other => {
                return Err(GcpError::BadAnswer(format!(
                    "algorithm {other}: only EC_SIGN_SECP256K1_SHA256 (tz2) and EC_SIGN_P256_SHA256 (tz3) keys sign for Tezos"
                )));
            }
        };
        use rustls_pki_types::SubjectPublicKeyInfoDer;
        use rustls_pki_types::pem::PemObject;
        let pem = field("pem")?;
        let der = SubjectPublicKeyInfoDer::from_pem_slice(pem.as_bytes())
            .map_err(|_| GcpError::BadAnswer("`pem` is not a PEM public key".into()))?;
        let point = super::aws::der::spki_point(&der, curve).map_err(GcpError::BadAnswer)?;
        let pk = PublicKey::from_curve_bytes(curve, &point)
            .map_err(|e| GcpError::BadAnswer(e.to_string()))?;
        pk.validate()
            .map_err(|e| GcpError::BadAnswer(e.to_string()))?;
        Ok(pk)
    }

    async fn sign(&self, pkh: &PublicKeyHash, digest: &[u8; 32]) -> Result<Signature, GcpError> {
        let key = self
            .keys
            .get(pkh)
            .map_err(GcpError::Setup)?
            .ok_or_else(|| GcpError::UnknownKey(pkh.to_string()))?;
        if !matches!(pkh.curve, Curve::Secp256k1 | Curve::P256) {
            return Err(GcpError::Setup(format!(
                "{} keys cannot be held in Cloud KMS",
                pkh.curve
            )));
        }
        // The BLAKE2b-256 digest goes where a SHA-256 digest is expected (module docs).
        let body = json!({"digest": {"sha256": B64.encode(digest)}});
        let answer = self
            .call(&format!("{}:asymmetricSign", key.key_version), Some(&body))
            .await?;
        let encoded = answer["signature"]
            .as_str()
            .ok_or_else(|| GcpError::BadAnswer("no `signature` in the answer".into()))?;
        let der = B64
            .decode(encoded)
            .map_err(|_| GcpError::BadAnswer("`signature` is not base64".into()))?;
        let raw = super::aws::der::ecdsa_signature(&der).map_err(GcpError::BadAnswer)?;
        Signature::from_curve_bytes(pkh.curve, &raw).map_err(|e| GcpError::BadAnswer(e.to_string()))
    }
}

/// `error.message` of a Google API error body, else its first 200 characters.
fn service_message(text: &str) -> String {
    serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| text.chars().take(200).collect())
}

impl HostKeyring for GcpKeyring {
    fn name(&self) -> &'static str {
        NAME
    }

    fn service(&self) -> &'static str {
        "Google Cloud KMS"
    }

    fn has_key(&self, pkh: &PublicKeyHash) -> bool {
        matches!(self.keys.get(pkh), Ok(Some(_)))
    }

    fn sign<'a>(&'a self, pkh: &'a PublicKeyHash, digest: &'a [u8; 32]) -> SignFuture<'a> {
        Box::pin(async move {
            GcpKeyring::sign(self, pkh, digest)
                .await
                .map_err(keyring_error)
        })
    }
}

/// The Cloud KMS error mapping: 429 until the deadline → 503 `gcp_throttled`; no answer →
/// 504 `gcp_timeout`; the rest → 502 `gcp_error`.
fn keyring_error(e: GcpError) -> KeyringError {
    let (failure, outcome) = match &e {
        GcpError::Throttled { .. } => (Failure::Throttled, "gcp_throttled"),
        GcpError::Timeout { .. } => (Failure::Timeout, "gcp_timeout"),
        GcpError::Setup(_)
        | GcpError::UnknownKey(_)
        | GcpError::Refused { .. }
        | GcpError::BadAnswer(_) => (Failure::Failed, "gcp_error"),
    };
    KeyringError {
        failure,
        outcome,
        message: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_name_the_field() {
        let ok = |text: &str| {
            let raw: RawGcp = toml::from_str(text).expect(text);
            raw.validate(Duration::from_millis(5000))
        };
        let s =
            ok("service_account_file = \"/sa.json\"\nendpoint = \"https://h:1\"\n").expect("ok");
        assert_eq!(s.endpoint, "https://h:1/");
        assert_eq!(
            s.credential,
            GcpCredential::ServiceAccount("/sa.json".into())
        );
        let m = ok("credential = \"metadata\"\n").expect("metadata");
        assert_eq!(
            m.credential,
            GcpCredential::Metadata(DEFAULT_METADATA.into())
        );
        assert_eq!(s.sign_deadline, Duration::from_millis(3000));
        for (text, field) in [
            ("endpoint = \"https://h/\"\n", "gcp.service_account_file"),
            (
                "credential = \"metadata\"\nservice_account_file = \"/s\"\n",
                "gcp.service_account_file",
            ),
            (
                "metadata_url = \"http://m/\"\nservice_account_file = \"/s\"\n",
                "gcp.metadata_url",
            ),
            (
                "credential = \"metadata\"\nmetadata_url = \"m\"\n",
                "gcp.metadata_url",
            ),
            ("credential = \"key\"\n", "gcp.credential"),
            (
                "service_account_file = \"/s\"\nendpoint = \"http://h/\"\n",
                "gcp.endpoint",
            ),
            (
                "service_account_file = \"/s\"\nsign_deadline_ms = 9000\n",
                "gcp.sign_deadline_ms",
            ),
        ] {
            let e = ok(text).expect_err(text);
            assert_eq!(e.field, field, "{text}");
        }
        assert!(
            toml::from_str::<RawGcp>("token = \"x\"\n").is_err(),
            "no secrets in pawl.toml"
        );
    }
}
