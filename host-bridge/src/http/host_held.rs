//! The second half of a host-held sign: the board approved a digest (its mark is durable);
//! Key Vault signs it; the board verifies and releases. Errors say which hop failed.

use axum::http::StatusCode;
use pawl_core::keys::{KeyError, PublicKeyHash};
use pawl_core::protocol::{Refusal, Request as BoardRequest, Response as BoardResponse};

use super::{ApiError, AppState};
use crate::azure::{AzureError, AzureKeyring};

/// Have `digest` signed by Key Vault and bring the signature to the board; returns the
/// board's answer (a released signature, or a refusal).
pub(super) async fn finish(
    state: &AppState,
    azure: Option<&std::sync::Arc<AzureKeyring>>,
    pkh: PublicKeyHash,
    digest: [u8; 32],
) -> Result<BoardResponse, ApiError> {
    let Some(azure) = azure else {
        return Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "azure_error",
            format!(
                "{pkh} is a host-held key but this bridge has no Azure Key Vault key for it ([azure] in pawl.toml, `pawl keys import --backend azure`)"
            ),
        ));
    };
    let signature = azure.sign(&pkh, &digest).await.map_err(cloud_error)?;
    let reply = state
        .link
        .ask(&BoardRequest::HostSignature { pkh, signature })
        .await?;
    match reply.response {
        BoardResponse::Refused(Refusal::Key(KeyError::BadSignature | KeyError::CurveMismatch)) => {
            tracing::error!(key = %pkh, "Key Vault returned a signature that does not verify under the registered key; nothing released");
            Err(ApiError::new(
                StatusCode::BAD_GATEWAY,
                "cloud_signature_refused",
                "Azure Key Vault returned a signature that does not verify under the key registered on the board; nothing was released",
            ))
        }
        other => Ok(other),
    }
}

fn cloud_error(e: AzureError) -> ApiError {
    let (status, outcome) = match &e {
        AzureError::Throttled { .. } => (StatusCode::SERVICE_UNAVAILABLE, "azure_throttled"),
        AzureError::Timeout { .. } => (StatusCode::GATEWAY_TIMEOUT, "azure_timeout"),
        AzureError::Setup(_)
        | AzureError::UnknownKey(_)
        | AzureError::Refused { .. }
        | AzureError::BadAnswer(_) => (StatusCode::BAD_GATEWAY, "azure_error"),
    };
    ApiError::new(status, outcome, e.to_string())
}
