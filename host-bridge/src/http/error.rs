//! One error type for every HTTP answer that is not a success, in Octez's error shape:
//! `[{"kind":"temporary","id":"failure","msg":"…"}]`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use pawl_core::keys::KeyError;
use pawl_core::protocol::{FrameError, Refusal};
use pawl_core::store::StoreError;
use pawl_core::watermark::WatermarkError;

use crate::auth::AuthError;
use crate::link::LinkError;

/// A failed request: status and a message a human understands. Never carries payload bytes
/// or secrets.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Message for the client.
    pub msg: String,
    /// Short outcome label for logs and metrics.
    pub outcome: &'static str,
    /// Seconds for a `Retry-After` header (a transient refusal that names when to retry).
    pub retry_after: Option<u32>,
}

impl ApiError {
    /// An error with a status, an outcome label and a message.
    pub fn new(status: StatusCode, outcome: &'static str, msg: impl Into<String>) -> Self {
        ApiError {
            status,
            msg: msg.into(),
            outcome,
            retry_after: None,
        }
    }

    /// 400: the request is malformed.
    pub fn bad_request(msg: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", msg)
    }

    /// 403: the configuration does not allow this endpoint.
    pub fn not_allowed(msg: &'static str) -> Self {
        ApiError::new(StatusCode::FORBIDDEN, "not_allowed", msg)
    }

    /// A board refusal, with its status.
    pub fn refused(refusal: &Refusal) -> Self {
        let (status, outcome) = refusal_status(refusal);
        let mut error = ApiError::new(status, outcome, refusal.to_string());
        error.retry_after = retry_after(refusal);
        error
    }
}

/// HTTP status and outcome label of a board refusal. Exhaustive on purpose: a new refusal
/// kind does not compile until it has a status.
pub fn refusal_status(refusal: &Refusal) -> (StatusCode, &'static str) {
    match refusal {
        Refusal::UnknownKey { .. } => (StatusCode::NOT_FOUND, "unknown_key"),
        Refusal::Parse(_) => (StatusCode::BAD_REQUEST, "bad_request"),
        Refusal::Policy(_) => (StatusCode::FORBIDDEN, "refused_policy"),
        Refusal::NotConfirmed => (StatusCode::FORBIDDEN, "not_confirmed"),
        Refusal::ProvisioningOnly => (StatusCode::FORBIDDEN, "provisioning_only"),
        Refusal::Watermark(
            WatermarkError::Below { .. }
            | WatermarkError::NotAbove { .. }
            | WatermarkError::DifferentData { .. },
        ) => (StatusCode::CONFLICT, "refused_watermark"),
        Refusal::Watermark(WatermarkError::TableFull { .. }) => {
            (StatusCode::INSUFFICIENT_STORAGE, "watermark_table_full")
        }
        // The key's share of the table is used up (its quota, or the room kept for others).
        Refusal::Watermark(WatermarkError::KeyQuota { .. } | WatermarkError::Reserved { .. }) => {
            (StatusCode::INSUFFICIENT_STORAGE, "watermark_quota")
        }
        Refusal::Key(
            KeyError::BlsNeedsVersion2 { .. }
            | KeyError::UnknownSigningVersion { .. }
            | KeyError::PossessionNeedsBls
            | KeyError::InvalidPublicKey
            | KeyError::CurveMismatch
            | KeyError::NotHostHeldCurve { .. }
            | KeyError::InvalidPossessionKey,
        ) => (StatusCode::BAD_REQUEST, "bad_request"),
        Refusal::Key(
            KeyError::InvalidSecret | KeyError::EntropyFailed | KeyError::BadSignature,
        ) => (StatusCode::INTERNAL_SERVER_ERROR, "board_error"),
        Refusal::PayloadTooLarge { .. } | Refusal::Frame(FrameError::TooLong { .. }) => {
            (StatusCode::PAYLOAD_TOO_LARGE, "too_large")
        }
        Refusal::Frame(_) | Refusal::NoPendingSign => (StatusCode::BAD_GATEWAY, "link_error"),
        // The board's flash write budget is spent: transient, nothing written; `Retry-After`.
        Refusal::Store(StoreError::WriteBudget { .. }) => {
            (StatusCode::SERVICE_UNAVAILABLE, "write_budget")
        }
        Refusal::Store(_) | Refusal::ProtocolMismatch { .. } => {
            (StatusCode::SERVICE_UNAVAILABLE, "board_unavailable")
        }
        Refusal::KeyTableFull { .. } | Refusal::KeyExists { .. } => {
            (StatusCode::CONFLICT, "key_conflict")
        }
        // The board's YubiHSM2 session failed (relay, HSM or setup): nothing was signed.
        Refusal::Hsm(_) => (StatusCode::BAD_GATEWAY, "hsm_error"),
        // The key's operator did not allow proofs in operational mode.
        Refusal::PossessionNotAllowed => (StatusCode::FORBIDDEN, "not_allowed"),
        // Standby, a companion key asked for a block, or a level another board signs.
        Refusal::OffDuty(_) => (StatusCode::FORBIDDEN, "off_duty"),
        // An operator's undo of a mark that is not there, or not above the target.
        Refusal::NoSuchMark { .. } => (StatusCode::NOT_FOUND, "no_such_mark"),
        Refusal::NotBelowMark { .. } => (StatusCode::CONFLICT, "refused_watermark"),
        // A jump far above the mark, not confirmed on the board.
        Refusal::TooFarAhead { .. } => (StatusCode::FORBIDDEN, "not_confirmed"),
        // A CometBFT request the board's chain or height/round/step rules refuse.
        Refusal::CometBft(_) => (StatusCode::FORBIDDEN, "refused_cometbft"),
    }
}

/// Whole seconds after which a transient refusal may succeed (rounded up, at least 1).
fn retry_after(refusal: &Refusal) -> Option<u32> {
    match refusal {
        Refusal::Store(StoreError::WriteBudget { retry_ms }) => {
            Some(retry_ms.div_ceil(1000).max(1))
        }
        _ => None,
    }
}

impl From<LinkError> for ApiError {
    fn from(e: LinkError) -> Self {
        let status = match e {
            LinkError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::SERVICE_UNAVAILABLE,
        };
        let outcome = match e {
            LinkError::TooLarge(_) => "too_large",
            _ => "board_unavailable",
        };
        ApiError::new(status, outcome, e.to_string())
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Missing => {
                ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", e.to_string())
            }
            AuthError::Invalid => {
                ApiError::new(StatusCode::FORBIDDEN, "unauthenticated", e.to_string())
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!([{"kind": "temporary", "id": "failure", "msg": self.msg}]);
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
