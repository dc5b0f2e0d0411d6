//! Carrying one board operation through the YubiHSM2 to its end: the board answered
//! [`Response::RelayToHsm`]; each sealed message goes to the HSM and the HSM's answer back to
//! the board ([`Request::HsmReply`]) until the board gives its final answer — a signature
//! (`pawl serve`), a registered key (`pawl keys generate|import --backend yubihsm`) or a
//! refusal. The bridge only carries bytes: the board checks every reply.

use std::time::{Duration, Instant};

use pawl_core::protocol::{Request, Response};

use crate::link::{Link, LinkError};
use crate::yubihsm::{HsmRelay, RelayError};

/// Most relay round trips one operation may take: create + authenticate session, up to two
/// commands (generate, then read the public key back), and once more after an expired
/// session (the board reopens it once), with room to spare.
pub const MAX_ROUNDS: usize = 8;

/// Why an operation did not reach the board's final answer.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// The HSM (or its connector) did not answer.
    #[error(transparent)]
    Relay(#[from] RelayError),
    /// The board did not answer.
    #[error(transparent)]
    Link(#[from] LinkError),
    /// The board kept asking for the HSM.
    #[error("the board asked for more than {MAX_ROUNDS} YubiHSM2 round trips for one operation")]
    TooManyRounds,
}

/// Relay `sealed` and what follows; the board's final answer. `on_hop` gets each HSM round
/// trip's duration (for metrics).
pub async fn carry(
    link: &Link,
    relay: &HsmRelay,
    mut sealed: Vec<u8>,
    mut on_hop: impl FnMut(Duration),
) -> Result<Response, ExchangeError> {
    for _ in 0..MAX_ROUNDS {
        let started = Instant::now();
        let answer = relay.send(&sealed).await?;
        on_hop(started.elapsed());
        let reply = link.ask(&Request::HsmReply { sealed: &answer }).await?;
        match reply.response {
            Response::RelayToHsm { sealed: next } => sealed = next.to_vec(),
            other => return Ok(other),
        }
    }
    Err(ExchangeError::TooManyRounds)
}
