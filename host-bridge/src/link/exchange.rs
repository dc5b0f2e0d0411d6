//! The link thread: owns the port, writes batches of frames, reads answers in order,
//! reconnects, re-asks what is safe to re-ask.

use std::collections::VecDeque;
use std::io;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use pawl_core::protocol::{
    Envelope, Fed, FrameAccumulator, FrameError, MAX_BODY, MAX_FRAME, PROTOCOL_VERSION, Request,
    Response, decode_frame, encode_frame,
};

use super::{BoardView, Connector, Identity, Job, LinkError, LinkSettings, Port, Reply};

/// Start the link thread.
pub(crate) fn spawn(
    connector: Box<dyn Connector>,
    settings: LinkSettings,
    view: Arc<RwLock<BoardView>>,
    queue: mpsc::Receiver<Job>,
) {
    let mut thread = LinkThread {
        connector,
        settings,
        view,
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
            let answer = self.read_answer(self.settings.response_timeout)?;
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
            // The board answers in order: while a request that waits for the button is
            // outstanding, silence is expected for as long as that wait.
            let patience = batch
                .iter()
                .map(|j| j.patience)
                .max()
                .unwrap_or(self.settings.response_timeout);
            match self.read_answer(patience) {
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
            Response::KeyInfo(info) | Response::KeyBackup { key: info, .. } => {
                match v.keys.iter_mut().find(|k| k.pkh == info.pkh) {
                    Some(slot) => *slot = info.clone(),
                    None => v.keys.push(info.clone()),
                }
            }
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

    /// Read until one whole answer frame arrives, or `patience` passes without a byte.
    fn read_answer(&mut self, patience: Duration) -> Result<Envelope<Response>, Broken> {
        if let Some(answer) = self.pending_answers.pop_front() {
            return Ok(answer);
        }
        let port = self.port.as_mut().ok_or(Broken::Closed)?;
        let mut buf = [0u8; 4096];
        loop {
            let n = match port.recv(&mut buf, patience) {
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
