//! `[azure]` in `pawl.toml`: Azure Key Vault, a host-held key home (`crate::keyring::azure`).

use std::path::PathBuf;
use std::time::Duration;

use super::{ConfigError, within_request_timeout};
use serde::Deserialize;

/// `[azure]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAzure {
    /// Default vault for `pawl keys import --backend azure` (`https://NAME.vault.azure.net/`).
    pub vault_url: Option<String>,
    /// `managed-identity` (default), `workload-identity`, `client-secret` or `azure-cli`.
    pub credential: Option<String>,
    /// User-assigned managed identity's client id; or the client id for `client-secret`.
    pub client_id: Option<String>,
    /// Tenant for `client-secret`.
    pub tenant_id: Option<String>,
    /// File holding the client secret for `client-secret` (the secret never goes in this file).
    pub client_secret_file: Option<PathBuf>,
    /// Trust only this CA certificate (PEM) for Key Vault and token endpoints (simulator).
    pub ca_file: Option<PathBuf>,
    /// Check that Key Vault's 401 challenge names a Key Vault resource. Default true.
    pub verify_challenge_resource: Option<bool>,
    /// Key Vault REST API version. Default: the SDK's.
    pub api_version: Option<String>,
    /// Longest one Key Vault signature may take, retries included, ms. Default 3000.
    pub sign_deadline_ms: Option<u64>,
}

pub(super) fn validate_azure(
    raw: RawAzure,
    request_timeout: Duration,
    field: &dyn Fn(String, String) -> ConfigError,
) -> Result<crate::keyring::azure::AzureSettings, ConfigError> {
    use crate::keyring::azure::CredentialChoice;
    let need = |name: &str, v: Option<String>, why: &str| {
        v.ok_or_else(|| field(format!("azure.{name}"), format!("required {why}")))
    };
    let credential = match raw.credential.as_deref().unwrap_or("managed-identity") {
        "managed-identity" => CredentialChoice::ManagedIdentity {
            client_id: raw.client_id,
        },
        "workload-identity" => CredentialChoice::WorkloadIdentity,
        "azure-cli" => CredentialChoice::AzureCli,
        "client-secret" => CredentialChoice::ClientSecret {
            tenant_id: need(
                "tenant_id",
                raw.tenant_id,
                "with credential = \"client-secret\"",
            )?,
            client_id: need(
                "client_id",
                raw.client_id,
                "with credential = \"client-secret\"",
            )?,
            secret_file: raw.client_secret_file.ok_or_else(|| {
                field(
                    "azure.client_secret_file".into(),
                    "required with credential = \"client-secret\"".into(),
                )
            })?,
        },
        other => {
            return Err(field(
                "azure.credential".into(),
                format!(
                    "`{other}` is not one of managed-identity, workload-identity, client-secret, azure-cli"
                ),
            ));
        }
    };
    if let Some(url) = raw
        .vault_url
        .as_ref()
        .filter(|u| !u.starts_with("https://"))
    {
        return Err(field(
            "azure.vault_url".into(),
            format!("`{url}` must be an https:// URL"),
        ));
    }
    let sign_deadline = within_request_timeout(
        "azure.sign_deadline_ms",
        raw.sign_deadline_ms.unwrap_or(3000),
        request_timeout,
        field,
    )?;
    Ok(crate::keyring::azure::AzureSettings {
        vault_url: raw.vault_url,
        credential,
        ca_file: raw.ca_file,
        verify_challenge_resource: raw.verify_challenge_resource.unwrap_or(true),
        api_version: raw.api_version,
        sign_deadline,
    })
}
