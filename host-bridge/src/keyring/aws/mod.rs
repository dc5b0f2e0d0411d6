//! AWS KMS keyring ([`super::HostKeyring`] `aws`): the host-trusted tier (`docs/design.md` §3).
//! The board approves a digest (its mark already durable); this module has KMS sign it and
//! hands the raw `r ‖ s` back, which the board normalises (tz2: low-S), verifies under the
//! registered public key and releases.
//!
//! * Official SDK (`aws-sdk-kms`, `aws-config`) over its default HTTPS client (rustls).
//! * tz2 keys are `ECC_SECG_P256K1`, tz3 keys `ECC_NIST_P256`, both `SIGN_VERIFY`. `Sign` is
//!   called with `MessageType=DIGEST` and `ECDSA_SHA_256` on the 32-byte BLAKE2b digest the
//!   board approved: with `DIGEST`, KMS signs the 32 bytes as given (it does not hash them
//!   again), which is what Tezos verifies. KMS answers a DER `ECDSA-Sig-Value`; [`der`] turns
//!   it into `r ‖ s`. The public key (`GetPublicKey`) is a DER SubjectPublicKeyInfo.
//! * Credentials: the SDK's standard chain (environment, `~/.aws` profile files incl.
//!   `credential_process`, web identity, ECS/EKS container credentials, EC2 instance
//!   metadata); never in `pawl.toml`, never in a message or log line of ours.
//! * Retries: the SDK's own retry is off; [`retrying`] retries throttling, 5xx and connection
//!   failures until `[aws] sign_deadline_ms`, and never sleeps past it.
//! * Which KMS key signs for which pkh is recorded by `pawl keys import --backend aws` in
//!   `<home>/aws_keys.json` (the key's ARN as `GetPublicKey` names it).

/// Shared with the Cloud KMS keyring (the same DER answers).
pub(super) mod der;
mod import;
mod retry;

pub use import::import;

use std::path::Path;
use std::time::Duration;

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{KeySpec, KeyUsageType, MessageType, SigningAlgorithmSpec};
use pawl_core::keys::{Curve, PublicKey, PublicKeyHash, Signature};
use serde::{Deserialize, Serialize};

use super::{FieldError, KeyFile, KeyRecord};
use retry::retrying;

/// The backend's name: `[aws]`, `--backend aws`, `aws_keys.json`, the metrics label.
pub const NAME: &str = "aws";

/// `[aws]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAws {
    /// The region of the keys (`eu-west-1`); required.
    pub region: Option<String>,
    /// Another KMS endpoint (a VPC endpoint, LocalStack): `https://…`, or `http://` on loopback.
    pub endpoint: Option<String>,
    /// A named profile of `~/.aws/config` / `~/.aws/credentials` (default: `AWS_PROFILE`, or
    /// `default`).
    pub profile: Option<String>,
    /// Longest one signature may take at KMS, retries included (default 3000 ms).
    pub sign_deadline_ms: Option<u64>,
}

/// `[aws]`, validated.
#[derive(Clone, Debug)]
pub struct AwsSettings {
    /// Region.
    pub region: String,
    /// Endpoint override.
    pub endpoint: Option<String>,
    /// Profile.
    pub profile: Option<String>,
    /// Longest one signature may take at KMS, retries included.
    pub sign_deadline: Duration,
}

/// Check `[aws]`; `request_timeout` is the board's (`device.request_timeout_ms`), which the
/// sign deadline must stay under.
pub fn validate(raw: RawAws, request_timeout: Duration) -> Result<AwsSettings, FieldError> {
    let region = raw
        .region
        .ok_or_else(|| FieldError::new("aws.region", "required (the region of the keys)"))?;
    let region_ok = !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !region_ok {
        return Err(FieldError::new(
            "aws.region",
            format!("`{region}` is not a region name (like eu-west-1)"),
        ));
    }
    if let Some(url) = &raw.endpoint
        && !(url.starts_with("https://") || is_loopback_http(url))
    {
        return Err(FieldError::new(
            "aws.endpoint",
            format!("`{url}` must be an https:// URL (http:// only on loopback)"),
        ));
    }
    let ms = raw.sign_deadline_ms.unwrap_or(3000);
    let sign_deadline = Duration::from_millis(ms);
    if sign_deadline.is_zero() || sign_deadline >= request_timeout {
        return Err(FieldError::new(
            "aws.sign_deadline_ms",
            format!(
                "{ms} ms must be above 0 and below device.request_timeout_ms ({} ms)",
                request_timeout.as_millis()
            ),
        ));
    }
    Ok(AwsSettings {
        region,
        endpoint: raw.endpoint,
        profile: raw.profile,
        sign_deadline,
    })
}

fn is_loopback_http(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let host = rest.split('/').next().unwrap_or("");
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A KMS key that signs for one pkh (`<home>/aws_keys.json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRef {
    /// `tz2…`/`tz3…`.
    pub pkh: String,
    /// The key's ARN.
    pub key_id: String,
}

impl KeyRecord for KeyRef {
    fn pkh(&self) -> &str {
        &self.pkh
    }
}

/// Why KMS did not give a signature. Never carries a credential.
#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    /// The configuration or key file cannot be used.
    #[error("{0}")]
    Setup(String),
    /// No KMS key is recorded for this pkh.
    #[error("no AWS KMS key is recorded for {0} (run `pawl keys import --backend aws`)")]
    UnknownKey(String),
    /// Still throttled when the deadline came.
    #[error("AWS KMS throttled the request {attempts} time(s) until the {deadline_ms} ms deadline")]
    Throttled {
        /// Attempts made.
        attempts: u32,
        /// Deadline.
        deadline_ms: u128,
    },
    /// No answer in time (timeouts, 5xx, connection failures until the deadline).
    #[error(
        "AWS KMS gave no signature within {deadline_ms} ms ({attempts} attempt(s); last: {last})"
    )]
    Timeout {
        /// Attempts made.
        attempts: u32,
        /// Deadline.
        deadline_ms: u128,
        /// Last failure.
        last: String,
    },
    /// KMS refused (credentials, permissions, unknown or disabled key…).
    #[error("AWS KMS refused: {0}")]
    Refused(String),
    /// The answer was not what the API documents.
    #[error("AWS KMS answer unusable: {0}")]
    BadAnswer(String),
}

/// The AWS keyring of a running bridge (or of `pawl keys import`).
pub struct AwsKeyring {
    settings: AwsSettings,
    /// Built at first use: loading the SDK's configuration is asynchronous.
    client: tokio::sync::OnceCell<aws_sdk_kms::Client>,
    keys: KeyFile<KeyRef>,
}

impl AwsKeyring {
    /// Open the keyring; `<home>/aws_keys.json` is read if present. Nothing is asked of AWS
    /// yet (credentials are resolved at the first call).
    pub fn open(settings: AwsSettings, home: &Path) -> Result<AwsKeyring, AwsError> {
        Ok(AwsKeyring {
            settings,
            client: tokio::sync::OnceCell::new(),
            keys: KeyFile::open(home, NAME).map_err(AwsError::Setup)?,
        })
    }

    async fn client(&self) -> &aws_sdk_kms::Client {
        self.client
            .get_or_init(|| async {
                let mut loader = aws_config::defaults(aws_config::BehaviorVersion::v2026_01_12())
                    .region(aws_config::Region::new(self.settings.region.clone()))
                    // Retries are ours: they must respect the sign deadline.
                    .retry_config(aws_config::retry::RetryConfig::disabled());
                if let Some(url) = &self.settings.endpoint {
                    loader = loader.endpoint_url(url);
                }
                if let Some(profile) = &self.settings.profile {
                    loader = loader.profile_name(profile);
                }
                aws_sdk_kms::Client::new(&loader.load().await)
            })
            .await
    }

    /// The public key of KMS key `key_id` (an ARN, key id or alias) and the key's ARN, after
    /// checking that it is a tz2/tz3 signing key KMS will use with `ECDSA_SHA_256`.
    pub async fn public_key(&self, key_id: &str) -> Result<(PublicKey, String), AwsError> {
        if let Some(region) = arn_region(key_id)
            && region != self.settings.region
        {
            return Err(AwsError::Setup(format!(
                "the key is in region {region} but aws.region is {}",
                self.settings.region
            )));
        }
        let client = self.client().await;
        let out = retrying(self.settings.sign_deadline, || {
            client.get_public_key().key_id(key_id).send()
        })
        .await?;
        let curve = match out.key_spec() {
            Some(KeySpec::EccSecgP256K1) => Curve::Secp256k1,
            Some(KeySpec::EccNistP256) => Curve::P256,
            other => {
                return Err(AwsError::BadAnswer(format!(
                    "key spec {other:?}: only ECC_SECG_P256K1 (tz2) and ECC_NIST_P256 (tz3) keys can sign for Tezos"
                )));
            }
        };
        if out.key_usage() != Some(&KeyUsageType::SignVerify) {
            return Err(AwsError::BadAnswer(format!(
                "key usage {:?}: the key must be SIGN_VERIFY",
                out.key_usage()
            )));
        }
        if !out
            .signing_algorithms()
            .contains(&SigningAlgorithmSpec::EcdsaSha256)
        {
            return Err(AwsError::BadAnswer(
                "the key does not offer ECDSA_SHA_256".into(),
            ));
        }
        let arn = out
            .key_id()
            .ok_or(AwsError::BadAnswer("no KeyId in the answer".into()))?
            .to_string();
        let spki = out
            .public_key()
            .ok_or(AwsError::BadAnswer("no PublicKey in the answer".into()))?;
        let point = der::spki_point(spki.as_ref(), curve).map_err(AwsError::BadAnswer)?;
        let pk = PublicKey::from_curve_bytes(curve, &point)
            .map_err(|e| AwsError::BadAnswer(e.to_string()))?;
        pk.validate()
            .map_err(|e| AwsError::BadAnswer(e.to_string()))?;
        Ok((pk, arn))
    }

    /// Record that KMS key `key_arn` signs for `pkh`.
    pub fn record(&self, pkh: &PublicKeyHash, key_arn: &str) -> Result<(), AwsError> {
        self.keys
            .record(KeyRef {
                pkh: pkh.to_b58().to_string(),
                key_id: key_arn.to_string(),
            })
            .map_err(AwsError::Setup)
    }

    fn key_ref(&self, pkh: &PublicKeyHash) -> Result<KeyRef, AwsError> {
        self.keys
            .get(pkh)
            .map_err(AwsError::Setup)?
            .ok_or_else(|| AwsError::UnknownKey(pkh.to_string()))
    }

    /// Have KMS sign `digest` for `pkh`: raw `r ‖ s` as KMS made it (not normalised: the
    /// board does that, and verifies).
    pub async fn sign(
        &self,
        pkh: &PublicKeyHash,
        digest: &[u8; 32],
    ) -> Result<Signature, AwsError> {
        let key = self.key_ref(pkh)?;
        if !matches!(pkh.curve, Curve::Secp256k1 | Curve::P256) {
            return Err(AwsError::Setup(format!(
                "{} keys cannot be held in AWS KMS",
                pkh.curve
            )));
        }
        let client = self.client().await;
        let out = retrying(self.settings.sign_deadline, || {
            client
                .sign()
                .key_id(&key.key_id)
                .message(Blob::new(digest.to_vec()))
                .message_type(MessageType::Digest)
                .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
                .send()
        })
        .await?;
        let der = out
            .signature()
            .ok_or(AwsError::BadAnswer("no Signature in the answer".into()))?;
        let raw = der::ecdsa_signature(der.as_ref()).map_err(AwsError::BadAnswer)?;
        Signature::from_curve_bytes(pkh.curve, &raw).map_err(|e| AwsError::BadAnswer(e.to_string()))
    }
}

impl super::HostKeyring for AwsKeyring {
    fn name(&self) -> &'static str {
        NAME
    }

    fn service(&self) -> &'static str {
        "AWS KMS"
    }

    fn has_key(&self, pkh: &PublicKeyHash) -> bool {
        self.key_ref(pkh).is_ok()
    }

    fn sign<'a>(&'a self, pkh: &'a PublicKeyHash, digest: &'a [u8; 32]) -> super::SignFuture<'a> {
        Box::pin(async move {
            AwsKeyring::sign(self, pkh, digest)
                .await
                .map_err(keyring_error)
        })
    }
}

/// The error mapping of the AWS tier, as Azure's: throttled until the deadline → 503, no
/// answer → 504, the rest → 502.
fn keyring_error(e: AwsError) -> super::KeyringError {
    use super::Failure;
    let (failure, outcome) = match &e {
        AwsError::Throttled { .. } => (Failure::Throttled, "aws_throttled"),
        AwsError::Timeout { .. } => (Failure::Timeout, "aws_timeout"),
        AwsError::Setup(_)
        | AwsError::UnknownKey(_)
        | AwsError::Refused(_)
        | AwsError::BadAnswer(_) => (Failure::Failed, "aws_error"),
    };
    super::KeyringError {
        failure,
        outcome,
        message: e.to_string(),
    }
}

/// The region of a KMS ARN (`arn:PARTITION:kms:REGION:ACCOUNT:key/…`), if `id` is one.
fn arn_region(id: &str) -> Option<&str> {
    let mut parts = id.strip_prefix("arn:")?.splitn(5, ':');
    let (_partition, service, region) = (parts.next()?, parts.next()?, parts.next()?);
    (service == "kms").then_some(region)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn raw(region: Option<&str>, endpoint: Option<&str>, deadline: Option<u64>) -> RawAws {
        RawAws {
            region: region.map(str::to_string),
            endpoint: endpoint.map(str::to_string),
            profile: None,
            sign_deadline_ms: deadline,
        }
    }

    #[test]
    fn settings_name_the_field_at_fault() {
        let t = Duration::from_secs(10);
        let ok = validate(raw(Some("eu-west-1"), None, None), t).unwrap();
        assert_eq!(ok.sign_deadline, Duration::from_millis(3000));
        assert_eq!(
            validate(raw(None, None, None), t).unwrap_err().field,
            "aws.region"
        );
        assert_eq!(
            validate(raw(Some("EU West"), None, None), t)
                .unwrap_err()
                .field,
            "aws.region"
        );
        for bad in [
            "http://kms.example.com",
            "ftp://127.0.0.1",
            "http://127.0.0.1.example.com:1",
        ] {
            let e = validate(raw(Some("eu-west-1"), Some(bad), None), t).unwrap_err();
            assert_eq!(e.field, "aws.endpoint", "{bad}");
        }
        for good in [
            "https://kms.eu-west-1.amazonaws.com",
            "http://127.0.0.1:4566",
            "http://localhost:4566/",
            "http://[::1]:4566",
        ] {
            assert!(
                validate(raw(Some("eu-west-1"), Some(good), None), t).is_ok(),
                "{good}"
            );
        }
        for bad in [0, 10_000, 20_000] {
            let e = validate(raw(Some("eu-west-1"), None, Some(bad)), t).unwrap_err();
            assert_eq!(e.field, "aws.sign_deadline_ms");
        }
    }

    #[test]
    fn arn_regions() {
        assert_eq!(
            arn_region("arn:aws:kms:eu-west-1:111122223333:key/1234abcd"),
            Some("eu-west-1")
        );
        assert_eq!(
            arn_region("arn:aws-cn:kms:cn-north-1:111122223333:alias/baker"),
            Some("cn-north-1")
        );
        assert_eq!(arn_region("1234abcd-12ab-34cd-56ef-1234567890ab"), None);
        assert_eq!(arn_region("alias/baker"), None);
        assert_eq!(arn_region("arn:aws:s3:::bucket"), None);
    }
}
