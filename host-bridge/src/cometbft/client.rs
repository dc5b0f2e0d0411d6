//! One client per `[[cometbft]]` entry: dial the node, answer its requests one at a time in
//! the order they come, and when the connection fails or the node goes silent, dial again
//! after a backoff that doubles from [`BACKOFF_MIN`] to the entry's maximum (reset once a
//! connection has carried a request).

use std::sync::Arc;
use std::time::Duration;

use cometbft_p2p::IdentitySecret;
use pawl_core::keys::PublicKeyHash;

use super::CometBoard;
use super::answer::answer;
use super::metrics::CometMetrics;
use super::transport::{Connection, NodeAddress, TransportError};

/// First wait before dialling again.
pub const BACKOFF_MIN: Duration = Duration::from_millis(100);

/// What a client serves and how patient it is.
#[derive(Clone, Debug)]
pub struct ClientSettings {
    /// The chain it serves (the node's chain id).
    pub chain_id: String,
    /// The node's privval listener.
    pub address: NodeAddress,
    /// The board key that signs (tz1, pinned to `chain_id` on its board).
    pub key: PublicKeyHash,
    /// Longest a dial and its handshake, or one write, may take.
    pub connect_timeout: Duration,
    /// Longest the node may stay silent before the connection is dropped and dialled again
    /// (nodes ping every few seconds).
    pub idle_timeout: Duration,
    /// Longest wait between dials.
    pub max_backoff: Duration,
}

/// Why a connection ended.
#[derive(Debug, thiserror::Error)]
enum Ended {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("the node sent a message that is not a request")]
    NotARequest,
}

/// Serve the entry forever (the task is dropped when `pawl serve` stops).
pub async fn run<B: CometBoard>(
    board: Arc<B>,
    settings: ClientSettings,
    identity: Arc<IdentitySecret>,
    metrics: Arc<CometMetrics>,
) {
    let chain = settings.chain_id.as_str();
    let node = settings.address.to_string();
    metrics.configured(chain, &node);
    let mut backoff = BACKOFF_MIN;
    let mut last_failure = String::new();
    loop {
        match Connection::dial(&settings.address, &identity, settings.connect_timeout).await {
            Ok((conn, peer)) => {
                metrics.connected(chain, &node);
                tracing::info!(chain = %chain, node = %node, node_id = peer.as_deref().unwrap_or("-"), "connected to the CometBFT node");
                last_failure.clear();
                let (served, ended) = serve(&*board, &settings, &metrics, conn).await;
                metrics.disconnected(chain, &node, true);
                tracing::warn!(chain = %chain, node = %node, served, "connection to the CometBFT node ended: {ended}");
                if served > 0 {
                    backoff = BACKOFF_MIN;
                }
            }
            Err(e) => {
                metrics.disconnected(chain, &node, true);
                let text = e.to_string();
                // Once per kind of failure at warn, then quietly while it lasts.
                if text != last_failure {
                    tracing::warn!(chain = %chain, node = %node, "cannot reach the CometBFT node: {text}; retrying");
                    last_failure = text;
                } else {
                    tracing::debug!(chain = %chain, node = %node, "cannot reach the CometBFT node: {text}");
                }
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(settings.max_backoff.max(BACKOFF_MIN));
    }
}

/// Answer requests until the connection ends; how many were answered and why it ended.
async fn serve<B: CometBoard>(
    board: &B,
    settings: &ClientSettings,
    metrics: &CometMetrics,
    mut conn: Connection,
) -> (u64, Ended) {
    let mut served = 0;
    loop {
        let request = match conn.recv(settings.idle_timeout).await {
            Ok(r) => r,
            Err(e) => return (served, e.into()),
        };
        let Some(reply) = answer(board, &settings.chain_id, &settings.key, metrics, request).await
        else {
            return (served, Ended::NotARequest);
        };
        if let Err(e) = conn.send(reply, settings.connect_timeout).await {
            return (served, e.into());
        }
        served += 1;
    }
}
