//! OAuth 2.0 access tokens for Cloud KMS, from one of two sources:
//!
//! * a service account's JSON key (the file `gcloud iam service-accounts keys create` writes):
//!   a JWT with the account's email as issuer, the Cloud KMS scope and the key file's
//!   `token_uri` as audience, signed RS256 with its private key, exchanged at `token_uri`
//!   (grant type `urn:ietf:params:oauth:grant-type:jwt-bearer`, RFC 7523);
//! * the metadata server of a Compute Engine VM (or GKE node) with a service account attached:
//!   `GET computeMetadata/v1/instance/service-accounts/default/token` with the header
//!   `Metadata-Flavor: Google` (no key file on the host; the VM's access scopes must allow
//!   Cloud KMS, e.g. `cloud-platform`).
//!
//! A token is kept until a minute before it expires. The private key and the tokens are never
//! logged or shown; an error names the file or endpoint and the step.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use rustls_pki_types::PrivatePkcs8KeyDer;
use rustls_pki_types::pem::PemObject;
use serde::Deserialize;
use serde_json::json;
use zeroize::Zeroizing;

/// The scope Cloud KMS calls need.
pub const SCOPE: &str = "https://www.googleapis.com/auth/cloudkms";

/// The fields of a service account key file that pawl uses.
#[derive(Deserialize)]
struct KeyFile {
    #[serde(rename = "type")]
    kind: String,
    client_email: String,
    private_key: String,
    private_key_id: Option<String>,
    token_uri: String,
}

/// A service account's key: who it is, the key, where tokens come from.
struct AccountKey {
    email: String,
    key_id: Option<String>,
    key: RsaKeyPair,
    token_uri: String,
}

/// Where tokens come from.
enum Origin {
    /// A service account key file.
    Key(AccountKey),
    /// The metadata server at this base URL (ending in `/`).
    Metadata(String),
}

/// A token source and the current token.
pub struct Credential {
    origin: Origin,
    token: tokio::sync::Mutex<Option<(Zeroizing<String>, Instant)>>,
}

impl Credential {
    /// Tokens from the metadata server at `url`.
    pub fn metadata(url: &str) -> Credential {
        Credential {
            origin: Origin::Metadata(url.to_string()),
            token: tokio::sync::Mutex::new(None),
        }
    }

    /// Tokens for the service account whose key file is `path`.
    pub fn load(path: &Path) -> Result<Credential, String> {
        let what = || format!("gcp.service_account_file {}", path.display());
        let text =
            Zeroizing::new(std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", what()))?);
        let file: KeyFile = serde_json::from_str(&text)
            .map_err(|e| format!("{}: not a service account key file ({e})", what()))?;
        let private_key = Zeroizing::new(file.private_key);
        if file.kind != "service_account" {
            return Err(format!(
                "{}: type `{}`, expected `service_account`",
                what(),
                file.kind
            ));
        }
        let der = PrivatePkcs8KeyDer::from_pem_slice(private_key.as_bytes())
            .map_err(|_| format!("{}: private_key is not a PKCS#8 PEM key", what()))?;
        let key = RsaKeyPair::from_pkcs8(der.secret_pkcs8_der())
            .map_err(|e| format!("{}: private_key is not an RSA key ({e})", what()))?;
        if !file.token_uri.starts_with("https://") {
            return Err(format!("{}: token_uri must be https://", what()));
        }
        Ok(Credential {
            origin: Origin::Key(AccountKey {
                email: file.client_email,
                key_id: file.private_key_id,
                key,
                token_uri: file.token_uri,
            }),
            token: tokio::sync::Mutex::new(None),
        })
    }
}

impl AccountKey {
    /// The signed JWT assertion for a token request now.
    fn assertion(&self) -> Result<String, String> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|e| e.to_string())?
            .as_secs();
        let mut header = json!({"alg": "RS256", "typ": "JWT"});
        if let Some(kid) = &self.key_id {
            header["kid"] = json!(kid);
        }
        let claims = json!({"iss": self.email, "scope": SCOPE, "aud": self.token_uri,
                            "iat": now, "exp": now + 3600});
        let signing_input = format!(
            "{}.{}",
            B64URL.encode(header.to_string()),
            B64URL.encode(claims.to_string())
        );
        let mut sig = vec![0u8; self.key.public_modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                signing_input.as_bytes(),
                &mut sig,
            )
            .map_err(|_| "signing the token request failed".to_string())?;
        Ok(format!("{signing_input}.{}", B64URL.encode(sig)))
    }
}

impl Credential {
    /// A bearer token: the cached one, or a new one from `token_uri` or the metadata server.
    pub async fn token(&self, http: &reqwest::Client) -> Result<Zeroizing<String>, TokenError> {
        let mut cached = self.token.lock().await;
        if let Some((token, until)) = cached.as_ref()
            && Instant::now() < *until
        {
            return Ok(token.clone());
        }
        let (request, what) = match &self.origin {
            Origin::Key(account) => {
                let assertion = account.assertion().map_err(TokenError::Refused)?;
                let body = format!(
                    "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={assertion}"
                );
                let request = http
                    .post(&account.token_uri)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body);
                (request, "token endpoint")
            }
            Origin::Metadata(url) => {
                let request = http
                    .get(format!(
                        "{url}computeMetadata/v1/instance/service-accounts/default/token"
                    ))
                    .header("metadata-flavor", "Google");
                (request, "metadata server")
            }
        };
        let response = request
            .send()
            .await
            .map_err(|e| TokenError::Unreachable(format!("{what}: {}", e.without_url())))?;
        let status = response.status().as_u16();
        if status != 200 {
            let text = response.text().await.unwrap_or_default();
            let short: String = text.chars().take(200).collect();
            return Err(if status == 429 || status >= 500 {
                TokenError::Unreachable(format!("{what}: HTTP {status}"))
            } else {
                TokenError::Refused(format!("{what} gave no token: HTTP {status}: {short}"))
            });
        }
        #[derive(Deserialize)]
        struct Answer {
            access_token: String,
            expires_in: Option<u64>,
        }
        let text = Zeroizing::new(
            response
                .text()
                .await
                .map_err(|e| TokenError::Unreachable(format!("{what}: {}", e.without_url())))?,
        );
        let answer: Answer = serde_json::from_str(&text)
            .map_err(|_| TokenError::Refused(format!("{what} answer: no access_token in JSON")))?;
        let token = Zeroizing::new(answer.access_token);
        let life = Duration::from_secs(answer.expires_in.unwrap_or(3600).saturating_sub(60));
        *cached = Some((token.clone(), Instant::now() + life));
        Ok(token)
    }

    /// Forget the cached token (the service refused it).
    pub async fn forget(&self) {
        *self.token.lock().await = None;
    }
}

/// Why no token.
#[derive(Debug)]
pub enum TokenError {
    /// The endpoint could not be reached or failed (retryable).
    Unreachable(String),
    /// The endpoint refused the account, or the key cannot sign.
    Refused(String),
}
