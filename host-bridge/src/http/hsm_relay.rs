//! The relayed half of a YubiHSM2 sign: the board's mark is durable and it asks for the HSM
//! ([`BoardResponse::RelayToHsm`]); the bridge carries each sealed message to the connector and
//! the answer back as [`BoardRequest::HsmReply`] until the board gives its final answer.

use axum::http::StatusCode;
use pawl_core::protocol::{Request as BoardRequest, Response as BoardResponse};

use super::{ApiError, AppState};
use crate::yubihsm::{HsmRelay, RelayError};

/// Most relay round trips one sign may take: create + authenticate session, sign, and once
/// more after an expired session (the board reopens it once), with room to spare.
const MAX_ROUNDS: usize = 8;

/// Relay `sealed` and what follows; the board's final answer (a signature or a refusal).
pub(super) async fn finish(
    state: &AppState,
    relay: Option<&HsmRelay>,
    mut sealed: Vec<u8>,
) -> Result<BoardResponse, ApiError> {
    let Some(relay) = relay else {
        return Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "hsm_error",
            "the board asks for a YubiHSM2 but this bridge has no connector ([yubihsm] connector in pawl.toml)",
        ));
    };
    for _ in 0..MAX_ROUNDS {
        let started = std::time::Instant::now();
        let answer = relay.send(&sealed).await.map_err(relay_error)?;
        state.metrics.hsm_hop.observe(started.elapsed());
        let reply = state
            .link
            .ask(&BoardRequest::HsmReply { sealed: &answer })
            .await?;
        match reply.response {
            BoardResponse::RelayToHsm { sealed: next } => sealed = next.to_vec(),
            other => return Ok(other),
        }
    }
    Err(ApiError::new(
        StatusCode::BAD_GATEWAY,
        "hsm_error",
        format!(
            "the board asked for more than {MAX_ROUNDS} YubiHSM2 round trips for one signature"
        ),
    ))
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
