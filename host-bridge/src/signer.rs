//! The signer's operations, whatever carries them: HTTP(S) handlers (`http`) and the Octez
//! socket protocol (`socket`) parse their requests into these calls and render the answers
//! in their own shapes. One path to the board for every transport: authentication, the
//! host-held / HSM turns, the log line and the metrics all live here.

use std::time::Instant;

use axum::http::StatusCode;
use pawl_core::keys::{PublicKey, PublicKeyHash, Signature, SigningVersion};
use pawl_core::protocol::{Request as BoardRequest, Response as BoardResponse};
use pawl_core::request::parse;

use crate::http::{ApiError, AppState};

/// How a sign request proves who asks (Octez's `--require-authentication`).
#[derive(Clone, Copy, Debug)]
pub enum Authentication<'a> {
    /// None given.
    Absent,
    /// A base58 signature (HTTP `?authentication=`).
    B58(&'a str),
    /// Raw signature bytes (the socket protocol's optional `signature` field).
    Raw(&'a [u8]),
}

/// A sign request as a transport understood it.
#[derive(Debug)]
pub struct SignRequest<'a> {
    /// The key.
    pub pkh: PublicKeyHash,
    /// Signature version (matters for tz4 only).
    pub version: SigningVersion,
    /// The bytes to sign, magic byte first.
    pub payload: Vec<u8>,
    /// The caller's authentication signature.
    pub authentication: Authentication<'a>,
}

/// Sign, log one line and count. `key_text` names the key in the log even when the transport
/// could not parse the request (`request` is then the transport's error).
pub async fn sign(
    state: &AppState,
    key_text: &str,
    request: Result<SignRequest<'_>, ApiError>,
) -> Result<Signature, ApiError> {
    let started = Instant::now();
    // What the log line says about the request; filled in as it is understood.
    let mut what = (String::from("-"), None::<u32>, None::<u32>);
    let result = match request {
        Ok(request) => sign_inner(state, request, &mut what).await,
        Err(e) => Err(e),
    };
    let latency = started.elapsed();
    state.metrics.sign_latency.observe(latency);
    let (kind, level, round) = what;
    let us = latency.as_micros();
    match &result {
        Ok(_) => {
            state.metrics.sign_outcome("signed");
            state.metrics.signed_by(key_text);
            tracing::info!(key = %key_text, %kind, level, round, outcome = "signed", latency_us = us, "sign");
        }
        Err(e) => {
            state.metrics.sign_outcome(e.outcome);
            tracing::warn!(key = %key_text, %kind, level, round, outcome = e.outcome, status = e.status.as_u16(), latency_us = us, reason = %e.msg, "sign");
        }
    }
    result
}

async fn sign_inner(
    state: &AppState,
    request: SignRequest<'_>,
    what: &mut (String, Option<u32>, Option<u32>),
) -> Result<Signature, ApiError> {
    let SignRequest {
        pkh,
        version,
        payload,
        authentication,
    } = request;
    if payload.is_empty() {
        return Err(ApiError::bad_request("nothing to sign: the body is empty"));
    }
    // For the log only: the board does its own parsing and decides.
    if let Ok(parsed) = parse(&payload) {
        *what = (
            parsed.kind.name().to_string(),
            parsed.level(),
            parsed.round(),
        );
    } else {
        what.0 = format!("magic 0x{:02x}", payload[0]);
    }
    match authentication {
        Authentication::Absent => state.auth.check(&pkh, &payload, None)?,
        Authentication::B58(text) => state.auth.check(&pkh, &payload, Some(text))?,
        Authentication::Raw(bytes) => state.auth.check_raw(&pkh, &payload, Some(bytes))?,
    }
    // The board that holds the key (several boards: routed by pkh, and refused when two hold
    // live copies); the level only picks between the two halves of a hand-off. After the
    // caller is known: routing answers say which keys exist.
    let board = state.boards.for_signing(&pkh, what.1)?;
    let link = &board.link;
    // Host-held keys: one sign at a time from Sign to HostSignature, because the board keeps
    // one pending approval. A key the board lists as host-held but no keyring knows is
    // serialised too (its approval then fails naming the configured backends).
    let keyring = state.keyrings.holder(&pkh);
    let host_held = keyring.is_some()
        || link
            .cached_key(&pkh)
            .is_some_and(|k| k.backend == pawl_core::protocol::Backend::HostHeld);
    let _serial = match host_held {
        true => Some(state.keyrings.serial.lock().await),
        false => None,
    };
    // YubiHSM2 keys: likewise from Sign to the board's last answer (one pending operation,
    // one session). A key the bridge has not seen listed yet is treated as one.
    let hsm = state.yubihsm.as_deref().filter(|_| {
        link.cached_key(&pkh)
            .is_none_or(|k| k.backend == pawl_core::protocol::Backend::YubiHsm)
    });
    let _hsm_serial = match hsm {
        Some(r) => Some(r.serial.lock().await),
        None => None,
    };
    let reply = link
        .ask(&BoardRequest::Sign {
            pkh,
            version,
            payload: &payload,
        })
        .await
        .map_err(|e| board.unavailable(e))?;
    state.metrics.device_hop.observe(reply.hop);
    let response = match reply.response {
        BoardResponse::DigestApproved {
            pkh: approved,
            digest,
        } if approved == pkh => crate::http::host_held_finish(state, link, keyring, pkh, digest)
            .await
            .map_err(|e| named(board, e))?,
        BoardResponse::RelayToHsm { sealed } => {
            crate::http::hsm_relay_finish(state, link, state.yubihsm.as_deref(), sealed.to_vec())
                .await
                .map_err(|e| named(board, e))?
        }
        other => other,
    };
    match response {
        BoardResponse::Signature(sig) => Ok(sig),
        BoardResponse::Refused(r) => Err(ApiError::refused(&r)),
        other => Err(unexpected(&other)),
    }
}

/// The public key of `pkh` (from the key cache, else asked).
pub async fn public_key(state: &AppState, pkh: PublicKeyHash) -> Result<PublicKey, ApiError> {
    if let Some(key) = state.boards.cached_key(&pkh) {
        return Ok(key.public_key);
    }
    let board = state.boards.for_reading(&pkh)?;
    let reply = board
        .link
        .ask(&BoardRequest::PublicKey { pkh })
        .await
        .map_err(|e| board.unavailable(e))?;
    match reply.response {
        BoardResponse::PublicKey(pk) => Ok(pk),
        BoardResponse::Refused(r) => Err(ApiError::refused(&r)),
        other => Err(unexpected(&other)),
    }
}

/// The hashes of the authorized keys, or `None` when no authentication is required.
pub fn authorized_keys(state: &AppState) -> Option<Vec<PublicKeyHash>> {
    state.auth.required().then(|| state.auth.key_hashes())
}

/// The keys the board holds (Octez `--allow-list-known-keys`).
pub async fn known_keys(state: &AppState) -> Result<Vec<PublicKeyHash>, ApiError> {
    if !state.settings.allow_list_known_keys {
        return Err(ApiError::not_allowed(
            "List known keys request not allowed.",
        ));
    }
    // Every board's keys; a board that cannot be asked now contributes the list it gave last
    // (its keys answer 503 until it is back), so one board down does not hide the others'.
    let mut known = Vec::new();
    let mut answered = false;
    let mut first_error = None;
    for board in state.boards.all() {
        let keys: Vec<PublicKeyHash> = match board.link.ask(&BoardRequest::ListKeys).await {
            Ok(reply) => match reply.response {
                BoardResponse::Keys(keys) => {
                    answered = true;
                    keys.iter().map(|k| k.pkh).collect()
                }
                BoardResponse::Refused(r) => return Err(named(board, ApiError::refused(&r))),
                other => return Err(unexpected(&other)),
            },
            Err(e) => {
                tracing::warn!(board = %board.name, "known keys: {e}; using its last key list");
                first_error.get_or_insert_with(|| board.unavailable(e));
                board.link.view().keys.iter().map(|k| k.pkh).collect()
            }
        };
        for pkh in keys {
            if !known.contains(&pkh) {
                known.push(pkh);
            }
        }
    }
    match first_error {
        Some(e) if !answered => Err(e),
        _ => Ok(known),
    }
}

/// A BLS proof of possession (Octez `--allow-to-prove-possession`).
pub async fn prove_possession(
    state: &AppState,
    pkh: PublicKeyHash,
    override_pk: Option<PublicKey>,
) -> Result<Signature, ApiError> {
    if !state.settings.allow_to_prove_possession {
        return Err(ApiError::not_allowed(
            "Request to prove possession is not allowed.",
        ));
    }
    // A proof of possession is a signature: the same routing as a sign (no level).
    let board = state.boards.for_signing(&pkh, None)?;
    let reply = board
        .link
        .ask(&BoardRequest::ProvePossession { pkh, override_pk })
        .await
        .map_err(|e| board.unavailable(e))?;
    match reply.response {
        BoardResponse::Signature(sig) => Ok(sig),
        BoardResponse::Refused(r) => Err(ApiError::refused(&r)),
        other => Err(unexpected(&other)),
    }
}

/// An error of the hop after the board (a key service, the HSM) or of a board's own answer,
/// naming the board that was asked.
fn named(board: &crate::boards::Board, mut e: ApiError) -> ApiError {
    if !e.msg.contains(&format!("board `{}'", board.name)) {
        e.msg = format!("board `{}': {}", board.name, e.msg);
    }
    e
}

fn unexpected(response: &BoardResponse) -> ApiError {
    tracing::error!("unexpected answer from the board: {response:?}");
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        "link_error",
        "the board gave an unexpected answer",
    )
}
