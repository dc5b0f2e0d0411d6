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

mod port;

pub use port::{Connector, ControlConnector, Port, SerialConnector, VirtualConnector};

use std::collections::VecDeque;
use std::io;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use pawl_core::keys::PublicKeyHash;
use pawl_core::protocol::{
    Envelope, Fed, FrameAccumulator, FrameError, KeyInfo, MAX_BODY, MAX_FRAME, Mode,
    PROTOCOL_VERSION, Request, Response, decode_frame, encode_frame,
};
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
}

impl Default for LinkSettings {
    fn default() -> Self {
        LinkSettings {
            response_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(5),
            pipeline: 8,
            refresh_keys: true,
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

struct Job {
    message: Vec<u8>,
    reasking_is_safe: bool,
    deadline: Instant,
    reply: oneshot::Sender<Result<Reply, LinkError>>,
    id: u32,
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
        let mut thread = LinkThread {
            connector,
            settings: settings.clone(),
            view: Arc::clone(&view),
            queue,
            waiting: VecDeque::new(),
            port: None,
            frames: Box::new(FrameAccumulator::new()),
            scratch: vec![0; MAX_BODY + 16],
            frame: vec![0; MAX_FRAME],
            next_id: 1,
            backoff: MIN_BACKOFF,
            pending_answers: VecDeque::new(),
            last: None,
        };
        std::thread::Builder::new()
            .name("pawl-link".into())
            .spawn(move || thread.run())
            .map(drop)
            .unwrap_or_else(|e| tracing::error!("cannot start the device link thread: {e}"));
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
        let reasking_is_safe = !matches!(
            request,
            Request::GenerateKey { .. }
                | Request::ImportKey { .. }
                | Request::SetPolicy { .. }
                | Request::ImportWatermark { .. }
                | Request::HsmReply { .. }
                | Request::HostSignature { .. }
        );
        self.jobs
            .send(Job {
                message,
                reasking_is_safe,
                deadline: Instant::now() + self.settings.request_timeout,
                reply,
                id: 0,
            })
            .map_err(|_| LinkError::Stopped)?;
        Ok(answer)
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

const MIN_BACKOFF: Duration = Duration::from_millis(10);
const MAX_BACKOFF: Duration = Duration::from_millis(250);

struct LinkThread {
    connector: Box<dyn Connector>,
    settings: LinkSettings,
    view: Arc<RwLock<BoardView>>,
    queue: mpsc::Receiver<Job>,
    waiting: VecDeque<Job>,
    port: Option<Box<dyn Port>>,
    frames: Box<FrameAccumulator<MAX_FRAME>>,
    scratch: Vec<u8>,
    frame: Vec<u8>,
    next_id: u32,
    backoff: Duration,
    /// Answers read but not yet consumed (several can arrive in one read).
    pending_answers: VecDeque<Envelope<Response>>,
    last: Option<LastError>,
}

/// Why an exchange with the board broke off.
enum Broken {
    Io(io::Error),
    Silent,
    Closed,
}

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Broken::Io(e) => write!(f, "{e}"),
            Broken::Silent => f.write_str("the board stopped answering"),
            Broken::Closed => f.write_str("the device closed the connection"),
        }
    }
}

impl LinkThread {
    fn run(&mut self) {
        loop {
            if self.waiting.is_empty() {
                match self.queue.recv() {
                    Ok(job) => self.waiting.push_back(job),
                    Err(_) => return,
                }
            }
            while let Ok(job) = self.queue.try_recv() {
                self.waiting.push_back(job);
            }
            self.expire();
            if self.waiting.is_empty() {
                continue;
            }
            if self.port.is_none() {
                if let Err(reason) = self.connect() {
                    self.disconnected(Some(reason));
                    // Wait before the next attempt, still taking new requests.
                    match self.queue.recv_timeout(self.backoff) {
                        Ok(job) => self.waiting.push_back(job),
                        Err(RecvTimeoutError::Timeout) => {}
                        Err(RecvTimeoutError::Disconnected) => return,
                    }
                    self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
                self.backoff = MIN_BACKOFF;
            }
            self.exchange_batch();
        }
    }

    /// Answer jobs whose caller gave up or whose deadline passed.
    fn expire(&mut self) {
        let now = Instant::now();
        let reason = &self.last;
        let mut kept = VecDeque::with_capacity(self.waiting.len());
        for job in self.waiting.drain(..) {
            if job.reply.is_closed() {
                continue;
            }
            if now >= job.deadline {
                let _ = job.reply.send(Err(match reason {
                    Some(LastError::Mismatch(board)) => LinkError::ProtocolMismatch {
                        board: *board,
                        host: PROTOCOL_VERSION,
                    },
                    Some(LastError::Other(r)) => LinkError::Unavailable { reason: r.clone() },
                    None => LinkError::Unavailable {
                        reason: "no answer from the board in time".into(),
                    },
                }));
                continue;
            }
            kept.push_back(job);
        }
        self.waiting = kept;
    }

    fn disconnected(&mut self, reason: Option<LastError>) {
        self.port = None;
        if let Ok(mut v) = self.view.write() {
            if v.connected {
                tracing::warn!(device = %v.describe, "board link lost; reconnecting");
            }
            v.connected = false;
            if let Some(reason) = &reason {
                v.last_error = Some(reason.to_string());
            }
        }
        if reason.is_some() {
            self.last = reason;
        }
    }

    fn take_id(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        id
    }

    fn connect(&mut self) -> Result<(), LastError> {
        let mut port = self.connector.connect().map_err(|e| {
            LastError::Other(format!("cannot open {}: {e}", self.connector.describe()))
        })?;
        *self.frames = FrameAccumulator::new();
        self.pending_answers.clear();
        // A lone zero ends whatever half frame the board may hold from before.
        port.send(&[0])
            .map_err(|e| LastError::Other(format!("cannot write to the board: {e}")))?;
        self.port = Some(port);
        let hello = self
            .single(&Request::Hello {
                protocol: PROTOCOL_VERSION,
            })
            .map_err(|e| LastError::Other(format!("no answer to hello: {e}")))?;
        let identity = match hello {
            Response::Info {
                protocol,
                firmware,
                board,
                mode,
            } => Identity {
                protocol,
                firmware: firmware.as_str().into(),
                board: board.as_str().into(),
                mode,
            },
            Response::Refused(pawl_core::protocol::Refusal::ProtocolMismatch { board, .. }) => {
                return Err(LastError::Mismatch(board));
            }
            other => {
                return Err(LastError::Other(format!(
                    "unexpected answer to hello: {other:?}"
                )));
            }
        };
        if identity.protocol != PROTOCOL_VERSION {
            return Err(LastError::Mismatch(identity.protocol));
        }
        let keys = if self.settings.refresh_keys {
            match self.single(&Request::ListKeys) {
                Ok(Response::Keys(keys)) => Some(keys.into_iter().collect()),
                Ok(other) => {
                    return Err(LastError::Other(format!(
                        "unexpected answer to list keys: {other:?}"
                    )));
                }
                Err(e) => return Err(LastError::Other(format!("no answer to list keys: {e}"))),
            }
        } else {
            None
        };
        if let Ok(mut v) = self.view.write() {
            tracing::info!(
                device = %v.describe,
                board = %identity.board,
                firmware = %identity.firmware,
                mode = ?identity.mode,
                "board connected"
            );
            v.connected = true;
            v.identity = Some(identity);
            v.last_error = None;
            v.connects += 1;
            v.describe = self.connector.describe();
            if let Some(keys) = keys {
                v.keys = keys;
            }
        }
        self.last = None;
        Ok(())
    }

    /// One request, one answer, on the current port (used while connecting).
    fn single(&mut self, request: &Request<'_>) -> Result<Response, Broken> {
        let id = self.take_id();
        let n = encode_frame(id, request, &mut self.scratch, &mut self.frame)
            .map_err(|e| Broken::Io(io::Error::other(e.to_string())))?;
        let port = self.port.as_mut().ok_or(Broken::Closed)?;
        port.send(&self.frame[..n]).map_err(Broken::Io)?;
        loop {
            let answer = self.read_answer()?;
            if answer.id == id {
                return Ok(answer.message);
            }
        }
    }

    /// Write up to `pipeline` waiting requests, then read their answers in order.
    fn exchange_batch(&mut self) {
        let n = self.settings.pipeline.max(1).min(self.waiting.len());
        let mut batch: Vec<Job> = Vec::with_capacity(n);
        let mut out: Vec<u8> = Vec::new();
        let taken: Vec<Job> = self.waiting.drain(..n).collect();
        for mut job in taken {
            let request = match postcard::from_bytes::<Request<'_>>(&job.message) {
                Ok(r) => r,
                Err(_) => {
                    let _ = job.reply.send(Err(LinkError::TooLarge(FrameError::Decode)));
                    continue;
                }
            };
            let id = self.take_id();
            match encode_frame(id, &request, &mut self.scratch, &mut self.frame) {
                Ok(len) => {
                    out.extend_from_slice(&self.frame[..len]);
                    job.id = id;
                    batch.push(job);
                }
                Err(e) => {
                    let _ = job.reply.send(Err(LinkError::TooLarge(e)));
                }
            }
        }
        if batch.is_empty() {
            return;
        }
        let sent = Instant::now();
        let written = match self.port.as_mut() {
            Some(port) => port.send(&out).map_err(Broken::Io),
            None => Err(Broken::Closed),
        };
        if let Err(e) = written {
            self.broken(e, batch);
            return;
        }
        let mut batch: VecDeque<Job> = batch.into();
        while let Some(expected) = batch.front().map(|j| j.id) {
            match self.read_answer() {
                Ok(answer) if answer.id == expected => {
                    if let Some(job) = batch.pop_front() {
                        self.observe(&answer.message);
                        let _ = job.reply.send(Ok(Reply {
                            response: answer.message,
                            hop: sent.elapsed(),
                        }));
                    }
                }
                Ok(answer) if answer.id == 0 => {
                    // The board could not read a frame (line noise): in order, it is ours.
                    if let Some(job) = batch.pop_front() {
                        tracing::warn!(
                            "the board could not read a request frame: {:?}",
                            answer.message
                        );
                        let _ = job.reply.send(Ok(Reply {
                            response: answer.message,
                            hop: sent.elapsed(),
                        }));
                    }
                }
                Ok(stale) => {
                    tracing::debug!(id = stale.id, "dropping a stale answer");
                }
                Err(e) => {
                    self.broken(e, batch.into());
                    return;
                }
            }
        }
    }

    /// Keep the key cache in step with provisioning answers.
    fn observe(&mut self, response: &Response) {
        let Ok(mut v) = self.view.write() else { return };
        match response {
            Response::KeyInfo(info) => match v.keys.iter_mut().find(|k| k.pkh == info.pkh) {
                Some(slot) => *slot = info.clone(),
                None => v.keys.push(info.clone()),
            },
            Response::Keys(keys) => v.keys = keys.iter().cloned().collect(),
            _ => {}
        }
    }

    /// The link broke with `unanswered` written and not answered: close the port, re-queue
    /// what may safely be asked again (first, in order), and tell the others.
    fn broken(&mut self, why: Broken, unanswered: Vec<Job>) {
        tracing::warn!(
            unanswered = unanswered.len(),
            "board link broke: {why}; reconnecting"
        );
        self.disconnected(Some(LastError::Other(why.to_string())));
        for job in unanswered.into_iter().rev() {
            if job.reasking_is_safe {
                self.waiting.push_front(job);
            } else {
                let _ = job.reply.send(Err(LinkError::OutcomeUnknown));
            }
        }
    }

    /// Read until one whole answer frame arrives.
    fn read_answer(&mut self) -> Result<Envelope<Response>, Broken> {
        if let Some(answer) = self.pending_answers.pop_front() {
            return Ok(answer);
        }
        let port = self.port.as_mut().ok_or(Broken::Closed)?;
        let mut buf = [0u8; 4096];
        loop {
            let n = match port.recv(&mut buf, self.settings.response_timeout) {
                Ok(0) => return Err(Broken::Closed),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::TimedOut => return Err(Broken::Silent),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Broken::Io(e)),
            };
            let mut input = &buf[..n];
            let mut found = None;
            while !input.is_empty() {
                let (used, fed) = self.frames.feed(input);
                input = &input[used..];
                if let Fed::Frame(frame) = fed {
                    match decode_frame::<Response>(frame) {
                        Ok(answer) if found.is_none() => found = Some(answer),
                        Ok(answer) => {
                            // More than one answer in one read: keep it for the next call.
                            self.pending_answers.push_back(answer);
                        }
                        Err(e) => tracing::warn!("unreadable frame from the board: {e}"),
                    }
                }
            }
            if let Some(answer) = found {
                return Ok(answer);
            }
        }
    }
}

enum LastError {
    Mismatch(u16),
    Other(String),
}

impl std::fmt::Display for LastError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LastError::Mismatch(board) => write!(
                f,
                "device protocol mismatch: board speaks version {board}, pawl speaks {PROTOCOL_VERSION}"
            ),
            LastError::Other(reason) => f.write_str(reason),
        }
    }
}
