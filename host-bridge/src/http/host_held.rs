//! The second half of a host-held sign ([`crate::keyring`]): the board approved a digest (its
//! mark is durable); the key's keyring signs it; the board verifies and releases. Errors say
//! which hop failed. Nothing here names a backend.

use std::time::Instant;

use axum::http::StatusCode;
use pawl_core::keys::{KeyError, PublicKeyHash};
use pawl_core::protocol::{Refusal, Request as BoardRequest, Response as BoardResponse};

use super::{ApiError, AppState};
use crate::keyring::{Failure, HostKeyring, KeyringError};
use crate::link::Link;

/// Have `digest` signed by `keyring` and bring the signature to the board; returns the
/// board's answer (a released signature, or a refusal).
pub(super) async fn finish(
    state: &AppState,
    link: &Link,
    keyring: Option<&dyn HostKeyring>,
    pkh: PublicKeyHash,
    digest: [u8; 32],
) -> Result<BoardResponse, ApiError> {
    // A key imported between the lookup and the approval is found now.
    let Some(keyring) = keyring.or_else(|| state.keyrings.holder(&pkh)) else {
        let names = state.keyrings.names();
        let configured = if names.is_empty() {
            "none is configured".to_string()
        } else {
            format!("configured: {}", names.join(", "))
        };
        return Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "host_key_unknown",
            format!(
                "{pkh} is a host-held key but no key service of this bridge holds it ({configured}; `pawl keys import --backend NAME`)"
            ),
        ));
    };
    let started = Instant::now();
    let signed = keyring.sign(&pkh, &digest).await;
    let outcome = match &signed {
        Ok(_) => "signed",
        Err(e) => e.outcome,
    };
    state
        .metrics
        .keyring_call(keyring.name(), outcome, started.elapsed());
    let signature = signed.map_err(keyring_error)?;
    let reply = link
        .ask(&BoardRequest::HostSignature { pkh, signature })
        .await?;
    match reply.response {
        BoardResponse::Refused(Refusal::Key(KeyError::BadSignature | KeyError::CurveMismatch)) => {
            let service = keyring.service();
            tracing::error!(key = %pkh, backend = keyring.name(), "{service} returned a signature that does not verify under the registered key; nothing released");
            state.metrics.keyring_bad_signature(keyring.name());
            Err(ApiError::new(
                StatusCode::BAD_GATEWAY,
                "cloud_signature_refused",
                format!(
                    "{service} returned a signature that does not verify under the key registered on the board; nothing was released"
                ),
            ))
        }
        other => Ok(other),
    }
}

fn keyring_error(e: KeyringError) -> ApiError {
    let status = match e.failure {
        Failure::Throttled => StatusCode::SERVICE_UNAVAILABLE,
        Failure::Timeout => StatusCode::GATEWAY_TIMEOUT,
        Failure::Failed => StatusCode::BAD_GATEWAY,
    };
    ApiError::new(status, e.outcome, e.message)
}
