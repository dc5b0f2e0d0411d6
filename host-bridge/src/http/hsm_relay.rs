//! The relayed half of a YubiHSM2 sign: the board's mark is durable and it asks for the HSM
//! ([`BoardResponse::RelayToHsm`]); [`crate::hsm_exchange::carry`] takes it to the board's
//! final answer, and failures become HTTP errors here.

use axum::http::StatusCode;
use pawl_core::protocol::Response as BoardResponse;

use super::{ApiError, AppState};
use crate::hsm_exchange::{ExchangeError, carry};
use crate::link::Link;
use crate::yubihsm::{HsmRelay, RelayError};

/// Relay `sealed` and what follows; the board's final answer (a signature or a refusal).
pub(super) async fn finish(
    state: &AppState,
    link: &Link,
    relay: Option<&HsmRelay>,
    sealed: Vec<u8>,
) -> Result<BoardResponse, ApiError> {
    let Some(relay) = relay else {
        return Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "hsm_error",
            "the board asks for a YubiHSM2 but this bridge has no connector ([yubihsm] in pawl.toml)",
        ));
    };
    carry(link, relay, sealed, |hop| {
        state.metrics.hsm_hop.observe(hop)
    })
    .await
    .map_err(|e| match e {
        ExchangeError::Relay(e) => relay_error(e),
        ExchangeError::Link(e) => e.into(),
        e @ ExchangeError::TooManyRounds => {
            ApiError::new(StatusCode::BAD_GATEWAY, "hsm_error", e.to_string())
        }
    })
}

fn relay_error(e: RelayError) -> ApiError {
    let (status, outcome) = match &e {
        RelayError::Timeout { .. } => (StatusCode::GATEWAY_TIMEOUT, "hsm_timeout"),
        RelayError::Unreachable { .. } | RelayError::Refused { .. } => {
            (StatusCode::BAD_GATEWAY, "hsm_error")
        }
    };
    ApiError::new(status, outcome, e.to_string())
}
