//! The link to the board: one thread owns the byte stream, asks the board, matches answers
//! to questions, reconnects, and never reports a request whose outcome is unknown as done.
//!
//! ```text
//!  HTTP handlers / control socket / CLI ──ask()──► queue ──► link thread ──frames──► Port ──► board
//!        ▲                                                        │
//!        └──────────── oneshot reply (Response or LinkError) ◄────┘
//! ```
//!
//! * **Pipelining.** The thread takes up to `pipeline` queued requests, writes their frames in
//!   one write, then reads the answers, which the board sends in order, each carrying its
//!   request id. With one caller it is one request in flight; under load requests batch up.
//!   An answer whose id is not the one expected (left over from a timed-out exchange) is
//!   dropped.
//! * **Reconnect.** Any I/O error or silence longer than the response timeout closes the
//!   port. The next attempt re-opens it, ends any half frame with a zero, says
//!   [`Request::Hello`], checks the protocol version and refreshes the key cache.
//! * **Unknown outcomes.** A request that was written but not answered is *re-asked* after
//!   reconnecting when asking twice is harmless — a signature is (the board's watermark
//!   returns the recorded signature for an identical request, or refuses), as are reads.
//!   Provisioning requests are not re-asked: the caller gets [`LinkError::OutcomeUnknown`].

mod exchange;
mod port;

pub use port::{Connector, ControlConnector, Port, SerialConnector, VirtualConnector};

use std::sync::mpsc;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use pawl_core::keys::PublicKeyHash;
use pawl_core::protocol::{FrameError, KeyInfo, MAX_BODY, Mode, Request, Response};
use tokio::sync::oneshot;

/// How the link behaves.
#[derive(Clone, Debug)]
pub struct LinkSettings {
    /// Longest silence from the board, with requests outstanding, before the link is
    /// considered broken and re-opened.
    pub response_timeout: Duration,
    /// Longest a caller waits, reconnects included, before getting an error.
    pub request_timeout: Duration,
    /// Most requests written before their answers are read (1 = one in flight).
    pub pipeline: usize,
    /// Ask the board for its key list on every (re)connect.
    pub refresh_keys: bool,
    /// For a sign request the board will hold until its button is pressed (the key's policy
    /// marks that kind "confirm"): the silence allowed while it waits, and the time added to
    /// the request's deadline. Longer than the board's own confirmation window (30 s on the
    /// RP2350), so the board, not the bridge, decides when the wait is over.
    pub confirm_timeout: Duration,
}

impl Default for LinkSettings {
    fn default() -> Self {
        LinkSettings {
            response_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(5),
            pipeline: 8,
            refresh_keys: true,
            confirm_timeout: Duration::from_secs(35),
        }
    }
}

/// Why the link could not get an answer. A board's *refusal* is not an error here: it is the
/// answer [`Response::Refused`].
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// No board could be reached before the request's deadline.
    #[error("board unavailable: {reason}")]
    Unavailable {
        /// The last connection failure.
        reason: String,
    },
    /// A provisioning request was written but never answered; it may or may not have been
    /// carried out.
    #[error(
        "the board did not answer; the request may or may not have been carried out (check with `pawl keys list`)"
    )]
    OutcomeUnknown,
    /// The request does not fit in a device frame.
    #[error("request does not fit in a device frame: {0}")]
    TooLarge(FrameError),
    /// The board speaks another protocol version.
    #[error("device protocol mismatch: board speaks version {board}, pawl speaks {host}")]
    ProtocolMismatch {
        /// Board's version.
        board: u16,
        /// Ours.
        host: u16,
    },
    /// The link thread has stopped (the bridge is shutting down).
    #[error("the device link has stopped")]
    Stopped,
}

/// An answer and how long the device hop took (from writing the frame to reading the answer).
#[derive(Debug)]
pub struct Reply {
    /// The board's answer (possibly a refusal).
    pub response: Response,
    /// Device hop latency.
    pub hop: Duration,
}

/// What the bridge knows about the board, kept fresh by the link.
#[derive(Clone, Debug, Default)]
pub struct BoardView {
    /// Connected right now.
    pub connected: bool,
    /// What the board said in answer to hello.
    pub identity: Option<Identity>,
    /// Keys, refreshed on every connect and after provisioning answers.
    pub keys: Vec<KeyInfo>,
    /// Why the last connection attempt failed.
    pub last_error: Option<String>,
    /// Connections made since start.
    pub connects: u64,
    /// Where the board is.
    pub describe: String,
}

/// The board's answer to hello.
#[derive(Clone, Debug)]
pub struct Identity {
    /// Protocol version.
    pub protocol: u16,
    /// Firmware version.
    pub firmware: String,
    /// Board model.
    pub board: String,
    /// Provisioning or operational.
    pub mode: Mode,
}

pub(crate) struct Job {
    pub(crate) message: Vec<u8>,
    pub(crate) reasking_is_safe: bool,
    pub(crate) deadline: Instant,
    /// Silence from the board allowed while this request is outstanding.
    pub(crate) patience: Duration,
    pub(crate) reply: oneshot::Sender<Result<Reply, LinkError>>,
    pub(crate) id: u32,
}

/// Handle to the link thread; cheap to clone.
#[derive(Clone)]
pub struct Link {
    jobs: mpsc::Sender<Job>,
    view: Arc<RwLock<BoardView>>,
    settings: LinkSettings,
}

impl Link {
    /// Start the link thread over `connector`. It connects on first use.
    pub fn start(connector: Box<dyn Connector>, settings: LinkSettings) -> Link {
        let (jobs, queue) = mpsc::channel();
        let view = Arc::new(RwLock::new(BoardView {
            describe: connector.describe(),
            ..BoardView::default()
        }));
        exchange::spawn(connector, settings.clone(), Arc::clone(&view), queue);
        Link {
            jobs,
            view,
            settings,
        }
    }

    fn submit(
        &self,
        request: &Request<'_>,
    ) -> Result<oneshot::Receiver<Result<Reply, LinkError>>, LinkError> {
        let message = postcard::to_allocvec(request)
            .map_err(|_| LinkError::TooLarge(FrameError::BufferTooSmall))?;
        if message.len() + 8 > MAX_BODY {
            return Err(LinkError::TooLarge(FrameError::TooLong {
                len: u32::try_from(message.len()).unwrap_or(u32::MAX),
                max: u32::try_from(MAX_BODY).unwrap_or(u32::MAX),
            }));
        }
        let (reply, answer) = oneshot::channel();
        let reasking_is_safe = reasking_is_safe(request);
        let (patience, deadline) = if self.waits_for_button(request) {
            let wait = self.settings.confirm_timeout;
            (wait, self.settings.request_timeout + wait)
        } else {
            (
                self.settings.response_timeout,
                self.settings.request_timeout,
            )
        };
        self.jobs
            .send(Job {
                message,
                reasking_is_safe,
                deadline: Instant::now() + deadline,
                patience,
                reply,
                id: 0,
            })
            .map_err(|_| LinkError::Stopped)?;
        Ok(answer)
    }

    /// Whether the board will wait for its button before answering `request`: forgetting or
    /// lowering watermarks (always an operator's press), the self-test's button check, or a
    /// sign request whose kind the key's policy (as the board last reported it) marks
    /// "confirm". A payload the bridge cannot parse gets the ordinary timeouts (the board
    /// refuses it at once). A sign that trips the board's jump guard also waits, but the
    /// bridge cannot tell: it times out, and the identical request asked again gets the
    /// board's recorded answer.
    fn waits_for_button(&self, request: &Request<'_>) -> bool {
        let (pkh, payload) = match request {
            Request::ForgetWatermarks { .. }
            | Request::LowerWatermark { .. }
            | Request::SelfTest(pawl_core::protocol::selftest::SelfTestRequest::Button) => {
                return true;
            }
            Request::Sign { pkh, payload, .. } => (pkh, payload),
            _ => return false,
        };
        let Ok(parsed) = pawl_core::request::parse(payload) else {
            return false;
        };
        self.view
            .read()
            .ok()
            .and_then(|v| {
                v.keys
                    .iter()
                    .find(|k| k.pkh == *pkh)
                    .map(|k| k.policy.needs_confirmation(parsed.kind))
            })
            .unwrap_or(false)
    }

    /// Ask the board (from async code).
    pub async fn ask(&self, request: &Request<'_>) -> Result<Reply, LinkError> {
        let answer = self.submit(request)?;
        answer.await.unwrap_or(Err(LinkError::Stopped))
    }

    /// Ask the board from a thread that is not running an async runtime (the CLI).
    pub fn ask_blocking(&self, request: &Request<'_>) -> Result<Reply, LinkError> {
        let answer = self.submit(request)?;
        answer.blocking_recv().unwrap_or(Err(LinkError::Stopped))
    }

    /// A snapshot of what the bridge knows about the board.
    pub fn view(&self) -> BoardView {
        self.view.read().map(|v| v.clone()).unwrap_or_default()
    }

    /// The cached public key of `pkh`, if the board listed it.
    pub fn cached_key(&self, pkh: &PublicKeyHash) -> Option<KeyInfo> {
        let view = self.view.read().ok()?;
        view.keys.iter().find(|k| &k.pkh == pkh).cloned()
    }

    /// The settings this link runs with.
    pub fn settings(&self) -> &LinkSettings {
        &self.settings
    }
}

/// Whether a request whose answer was lost may be written again after a reconnect. Reads, and
/// `Sign` (the board returns the recorded signature or refuses: it never signs one position
/// twice). Everything that changes the board's state or continues a multi-frame exchange is
/// asked once; its caller learns the outcome is unknown. Exhaustive on purpose: a new request
/// kind needs a decision here.
fn reasking_is_safe(request: &Request<'_>) -> bool {
    match request {
        Request::Hello { .. }
        | Request::ListKeys
        | Request::PublicKey { .. }
        | Request::Sign { .. }
        | Request::ProvePossession { .. }
        | Request::Status
        | Request::ExportWatermarks { .. } => true,
        Request::GenerateKey { .. }
        | Request::GenerateKeyWithBackup { .. }
        | Request::SetDuty { .. }
        | Request::ImportKeyWithDuty { .. }
        | Request::RemoveKey { .. }
        | Request::ImportKey { .. }
        | Request::SetPolicy { .. }
        | Request::ImportWatermark { .. }
        | Request::Reprovision { .. }
        | Request::RegisterHostKey { .. }
        | Request::HostSignature { .. }
        | Request::HsmReply { .. }
        | Request::YubiHsmSetup { .. }
        | Request::RegisterHsmKey { .. }
        | Request::ImportHsmKey { .. }
        | Request::GenerateHsmKey { .. }
        | Request::AllowPossession { .. }
        | Request::ForgetWatermarks { .. }
        | Request::LowerWatermark { .. }
        | Request::SetJumpLimit { .. } => false,
        Request::SelfTest(r) => r.reasking_is_safe(),
        Request::Events(r) => r.reasking_is_safe(),
        Request::HsmCheck(r) => r.reasking_is_safe(),
        Request::CometBft(r) => r.reasking_is_safe(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_changes_are_asked_once_and_reads_again() {
        // Re-asking a lost Reprovision { erase: true } would run a second erase.
        assert!(!reasking_is_safe(&Request::Reprovision { erase: true }));
        assert!(!reasking_is_safe(&Request::Reprovision { erase: false }));
        assert!(reasking_is_safe(&Request::Status));
        assert!(reasking_is_safe(&Request::ListKeys));
    }
}
