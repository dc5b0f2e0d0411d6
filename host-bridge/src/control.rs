//! The control socket `<home>/control.sock`: while `pawl serve` owns the board, CLI commands
//! (`pawl keys generate`, …) reach it through this socket, which relays device frames.
//!
//! A connection first names its board: the board's name (`[[device]] name`) and a zero byte;
//! an empty name means the only board (refused when there are several). Then the socket
//! speaks the device protocol itself: each request frame is decoded, asked on that board's
//! link with the link's own id, and answered with the caller's id. The board's answers keep
//! the bridge's key list for it in step, so a key imported, put on standby, retired or
//! removed here changes routing and the duplicate-key check at once. Only the owner of the
//! home directory may connect (mode 0600).

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use pawl_core::protocol::{
    Fed, FrameAccumulator, MAX_FRAME, Refusal, Request, Response, decode_frame, encode_frame,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

use crate::boards::Boards;
use crate::link::Link;
use crate::yubihsm::HsmRelay;

/// The socket path for a home directory.
pub fn socket_path(home: &Path) -> PathBuf {
    home.join("control.sock")
}

/// Whether a `pawl serve` answers on `path`.
pub fn is_live(path: &Path) -> bool {
    std::os::unix::net::UnixStream::connect(path).is_ok()
}

/// Why the control socket could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// Another `pawl serve` runs on this home directory.
    #[error("another `pawl serve` is already running on {0} (its control socket answers)")]
    InUse(PathBuf),
    /// The socket could not be created.
    #[error("cannot create the control socket {path}: {source}")]
    Bind {
        /// Socket path.
        path: PathBuf,
        /// Cause.
        source: io::Error,
    },
}

/// Bind the control socket (replacing a stale one) with mode 0600.
pub fn bind(path: &Path) -> Result<UnixListener, ControlError> {
    if is_live(path) {
        return Err(ControlError::InUse(path.to_path_buf()));
    }
    let _ = std::fs::remove_file(path);
    let bind_err = |source| ControlError::Bind {
        path: path.to_path_buf(),
        source,
    };
    let listener = UnixListener::bind(path).map_err(bind_err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(bind_err)?;
    Ok(listener)
}

/// Accept connections forever, relaying each on its own task. `hsm` is the running bridge's
/// YubiHSM2 relay, whose turn a CLI's HSM key registration takes (see [`relay`]).
pub async fn serve(listener: UnixListener, boards: Boards, hsm: Option<Arc<HsmRelay>>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let boards = boards.clone();
                let hsm = hsm.clone();
                tokio::spawn(async move {
                    if let Err(e) = relay(stream, boards, hsm).await {
                        tracing::debug!("control connection ended: {e}");
                    }
                });
            }
            Err(e) => {
                tracing::warn!("control socket accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

/// Relay one CLI connection's frames. A YubiHSM2 key registration (`ImportHsmKey`,
/// `GenerateHsmKey`) holds the bridge's HSM turn from its first frame to the board's last
/// answer (the CLI relays the HSM messages itself, through `HsmReply` frames here): the board
/// keeps one pending HSM operation, so an HTTP sign for an HSM key waits instead of replacing
/// it. The turn ends with the exchange, or with the connection.
async fn relay(
    mut stream: UnixStream,
    boards: Boards,
    hsm: Option<Arc<HsmRelay>>,
) -> io::Result<()> {
    let (link, mut early) = choose_board(&mut stream, &boards).await?;
    let mut hsm_turn = None;
    let mut frames = Box::new(FrameAccumulator::<MAX_FRAME>::new());
    let mut buf = vec![0u8; 4096];
    let mut scratch = vec![0u8; MAX_FRAME];
    let mut out = vec![0u8; MAX_FRAME];
    loop {
        let n = if early.is_empty() {
            stream.read(&mut buf).await?
        } else {
            let n = early.len().min(buf.len());
            buf[..n].copy_from_slice(&early[..n]);
            early.drain(..n);
            n
        };
        if n == 0 {
            return Ok(());
        }
        let mut input = &buf[..n];
        while !input.is_empty() {
            let (used, fed) = frames.feed(input);
            input = &input[used..];
            let (id, response) = match fed {
                Fed::Incomplete => continue,
                Fed::Dropped(e) => (0, Response::Refused(Refusal::Frame(e))),
                Fed::Frame(frame) => match decode_frame::<Request<'_>>(frame) {
                    Err(e) => (0, Response::Refused(Refusal::Frame(e))),
                    Ok(envelope) => {
                        if let Request::GenerateKey { .. } | Request::ImportKey { .. } =
                            envelope.message
                        {
                            tracing::info!("provisioning request from the control socket");
                        }
                        if let (
                            Request::ImportHsmKey { .. } | Request::GenerateHsmKey { .. },
                            Some(relay),
                            None,
                        ) = (&envelope.message, hsm.as_deref(), &hsm_turn)
                        {
                            hsm_turn = Some(relay.serial.lock().await);
                        }
                        match link.ask(&envelope.message).await {
                            Ok(reply) => {
                                if !matches!(reply.response, Response::RelayToHsm { .. }) {
                                    hsm_turn = None;
                                }
                                (envelope.id, reply.response)
                            }
                            Err(e) => {
                                // The CLI sees the link error as a closed connection with a
                                // log line here; it reports "board unavailable".
                                tracing::warn!("control request failed: {e}");
                                return Err(io::Error::other(e.to_string()));
                            }
                        }
                    }
                },
            };
            let len = encode_frame(id, &response, &mut scratch, &mut out)
                .map_err(|e| io::Error::other(e.to_string()))?;
            stream.write_all(&out[..len]).await?;
        }
    }
}

/// Longest board name a connection may send before its zero byte.
const MAX_NAME: usize = 64;

/// Read the board's name (up to the first zero byte) and find its link; the bytes read past
/// the zero are the first frames.
async fn choose_board(stream: &mut UnixStream, boards: &Boards) -> io::Result<(Link, Vec<u8>)> {
    let mut head = Vec::new();
    let mut buf = [0u8; 256];
    let zero = loop {
        if let Some(at) = head.iter().position(|b| *b == 0) {
            break at;
        }
        if head.len() > MAX_NAME {
            return Err(io::Error::other(
                "no board name at the start of the connection",
            ));
        }
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err(io::Error::other("closed before naming a board"));
        }
        head.extend_from_slice(&buf[..n]);
    };
    let rest = head.split_off(zero + 1);
    let name = String::from_utf8_lossy(&head[..zero]).into_owned();
    let board = match (name.as_str(), boards.all()) {
        ("", [only]) => Some(only),
        _ => boards.by_name(&name),
    };
    match board {
        Some(board) => Ok((board.link.clone(), rest)),
        None => {
            let why = format!(
                "a control connection asked for board `{name}', which this pawl serve does not have (boards: {})",
                boards.names()
            );
            tracing::warn!("{why}");
            Err(io::Error::other(why))
        }
    }
}
