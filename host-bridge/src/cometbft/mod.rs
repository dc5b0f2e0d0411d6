//! The CometBFT privval client: pawl signs Cosmos (CometBFT) votes and proposals with a board
//! key, as a remote signer.
//!
//! ```text
//!  CometBFT node (listens on priv_validator_laddr)
//!        ▲ tcp:// SecretConnection | unix:// plain      (transport, codec)
//!        │ privval.Message, uvarint length ≤ 10 KiB      (proto)
//!  client per [[cometbft]] entry: dial, answer, redial   (client)
//!        │ request → sign bytes → board → answer         (answer, sign_bytes)
//!        ▼
//!  the board holding the entry's key (routed by pkh)     (board)
//! ```
//!
//! The node is the server: the signer dials it and keeps dialling with backoff. The bridge
//! speaks the 0.38 and 1.0 privval protocols (the same field numbers; the few differences are
//! in [`proto`]). It decides nothing about what may be signed: the chain pin, the
//! height/round/step mark and the timestamp rule are the board's. `docs/cometbft.md` has the
//! configuration.

pub mod answer;
pub mod board;
pub mod client;
pub mod codec;
pub mod identity;
pub mod metrics;
pub mod proto;
pub mod sign_bytes;
pub mod transport;

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use pawl_core::keys::PublicKeyHash;

use crate::config::CometEntry;

pub use proto::Timestamp;

/// What the board is asked to sign.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignItem {
    /// A prevote or precommit.
    Vote {
        /// `VoteSignBytes`.
        sign_bytes: Vec<u8>,
        /// `VoteExtensionSignBytes`, when the node expects the extension signed.
        extension: Option<Vec<u8>>,
    },
    /// A proposal.
    Proposal {
        /// `ProposalSignBytes`.
        sign_bytes: Vec<u8>,
    },
}

/// The board's signature(s).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signed {
    /// Ed25519 signature over the sign bytes (or the one recorded for a retry).
    pub signature: [u8; 64],
    /// The recorded timestamp, when the board answered a timestamp-only retry: it goes into
    /// the vote or proposal (the signature covers it).
    pub timestamp: Option<Timestamp>,
    /// Ed25519 signature over the extension's sign bytes, when they were given.
    pub extension_signature: Option<[u8; 64]>,
}

/// Why nothing was signed: a board refusal, a board that cannot be reached, or a request the
/// bridge refuses before asking.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    /// Metric label (`double_sign`, `chain_not_pinned`, `board_unavailable`, …).
    pub reason: &'static str,
    /// `RemoteSignerError.code` ([`answer::CODE_REFUSED`], [`answer::CODE_DOUBLE_SIGN`]).
    pub code: i32,
    /// What the node logs.
    pub description: String,
}

/// The board side of the clients: [`board::Boards`] in `pawl serve`, a fake in tests.
pub trait CometBoard: Send + Sync + 'static {
    /// The Ed25519 public key of `key`.
    fn public_key(
        &self,
        key: &PublicKeyHash,
    ) -> impl Future<Output = Result<[u8; 32], Refused>> + Send;
    /// Have `key` sign `item`.
    fn sign(
        &self,
        key: &PublicKeyHash,
        item: SignItem,
    ) -> impl Future<Output = Result<Signed, Refused>> + Send;
}

/// Start one client per entry (`pawl serve`): load (or make) each entry's identity key first —
/// a bad key file stops serve before anything is dialled — log the node id, then dial.
pub fn start<B: CometBoard>(
    entries: &[CometEntry],
    home: &Path,
    board: Arc<B>,
    metrics: Arc<metrics::CometMetrics>,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let mut identities: Vec<(std::path::PathBuf, Arc<cometbft_p2p::IdentitySecret>)> = Vec::new();
    let mut tasks = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let path = identity::path_of(entry, home);
        let identity = match identities.iter().find(|(p, _)| *p == path) {
            Some((_, key)) => Arc::clone(key),
            None => {
                let key = Arc::new(
                    identity::load_or_create(&path)
                        .with_context(|| format!("cometbft[{i}].identity_key"))?,
                );
                tracing::info!(node_id = %identity::node_id(&key), file = %path.display(), "CometBFT signer identity");
                identities.push((path, Arc::clone(&key)));
                key
            }
        };
        tracing::info!(chain = %entry.settings.chain_id, node = %entry.settings.address, key = %entry.settings.key.to_b58(), "signing for a CometBFT node");
        tasks.push(tokio::spawn(client::run(
            Arc::clone(&board),
            entry.settings.clone(),
            identity,
            Arc::clone(&metrics),
        )));
    }
    Ok(tasks)
}
