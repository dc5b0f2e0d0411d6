//! The Octez socket signer protocol over TCP (`tcp://HOST:PORT`) and Unix sockets
//! (`unix:///PATH`), as `octez-signer launch socket signer` / `launch local signer` serve it
//! and `octez-client` speaks it for `tcp://…/tz1…` and `unix:/…?pkh=tz1…` signer URIs.
//!
//! Each message is a frame (uint16 big-endian length ‖ body); a connection carries any number
//! of request/answer pairs, one at a time. Every request takes the same path as its HTTP twin
//! ([`crate::signer`]): authentication, the board, the log line and the metrics. Refusals are
//! answered with an Octez error trace holding the same message the HTTP body carries.
//! Bytes: [`codec`] and `docs/protocol.md` §10.

pub mod codec;

use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use pawl_core::keys::{PublicKey, SigningVersion};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::Semaphore;

use crate::http::{ApiError, AppState};
use crate::signer::{self, Authentication, SignRequest};
use codec::SocketRequest;

/// Longest a started message may take to arrive in full (a client that stalls mid-message is
/// dropped).
pub const MESSAGE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a connection may stay silent between messages before it is closed (octez-client
/// opens a connection per request; an idle one only holds a slot).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Most connections served at once on one socket; more wait to be accepted.
pub const MAX_CONNECTIONS: usize = 256;

/// Where a socket signer listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SocketAddress {
    /// `tcp://HOST:PORT` (port 0 picks one).
    Tcp {
        /// Host name or IP (IPv6 in brackets).
        host: String,
        /// Port.
        port: u16,
    },
    /// `unix:///PATH`.
    Unix(PathBuf),
}

impl std::str::FromStr for SocketAddress {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if let Some(rest) = text.strip_prefix("tcp://") {
            let rest = rest.strip_suffix('/').unwrap_or(rest);
            if rest.contains('/') {
                return Err(format!(
                    "`{text}`: a socket signer address has no path (the key goes in the client's URI, not here)"
                ));
            }
            let (host, port) = rest
                .rsplit_once(':')
                .ok_or_else(|| format!("`{text}` has no port (tcp://HOST:PORT)"))?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            if host.is_empty() {
                return Err(format!("`{text}` has no host (tcp://HOST:PORT)"));
            }
            let port = port
                .parse()
                .map_err(|_| format!("`{text}`: `{port}` is not a port"))?;
            Ok(SocketAddress::Tcp {
                host: host.to_string(),
                port,
            })
        } else if let Some(path) = text.strip_prefix("unix://") {
            if !path.starts_with('/') {
                return Err(format!(
                    "`{text}`: give an absolute path, unix:///PATH (three slashes)"
                ));
            }
            Ok(SocketAddress::Unix(PathBuf::from(path)))
        } else {
            Err(format!(
                "`{text}` is neither tcp://HOST:PORT nor unix:///PATH"
            ))
        }
    }
}

enum Bound {
    Tcp(TcpListener),
    Unix(UnixListener, UnixSocketFile),
}

/// Removes a Unix socket's file when the server stops.
struct UnixSocketFile(PathBuf);

impl Drop for UnixSocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Bound socket signers, not yet serving. Dropping them removes their Unix socket files.
pub struct SocketServers {
    bound: Vec<(String, Bound)>,
}

/// Bind every address: TCP with `SO_REUSEADDR` as Octez does; a Unix socket file is made
/// mode 0660 (owner and group: put the baker in the group), a stale one left by a crash is
/// replaced, a live one (another process answering) is an error.
pub async fn bind(addresses: &[SocketAddress]) -> anyhow::Result<SocketServers> {
    let mut bound = Vec::new();
    for address in addresses {
        match address {
            SocketAddress::Tcp { host, port } => {
                let listener = TcpListener::bind((host.as_str(), *port))
                    .await
                    .with_context(|| format!("cannot listen on tcp://{host}:{port}"))?;
                let local = listener.local_addr()?;
                bound.push((format!("tcp://{local}"), Bound::Tcp(listener)));
            }
            SocketAddress::Unix(path) => {
                let listener = bind_unix(path)?;
                bound.push((
                    format!("unix://{}", path.display()),
                    Bound::Unix(listener, UnixSocketFile(path.clone())),
                ));
            }
        }
    }
    Ok(SocketServers { bound })
}

fn bind_unix(path: &Path) -> anyhow::Result<UnixListener> {
    if std::fs::symlink_metadata(path).is_ok() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            anyhow::bail!(
                "cannot listen on unix://{}: another process is serving it",
                path.display()
            );
        }
        std::fs::remove_file(path)
            .with_context(|| format!("cannot remove the stale socket file {}", path.display()))?;
    }
    let listener = UnixListener::bind(path)
        .with_context(|| format!("cannot listen on unix://{}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .with_context(|| format!("cannot make {} mode 0660", path.display()))?;
    Ok(listener)
}

impl SocketServers {
    /// `tcp://IP:PORT` (the bound port) or `unix:///PATH` of each socket, in order.
    pub fn addresses(&self) -> Vec<String> {
        self.bound.iter().map(|(shown, _)| shown.clone()).collect()
    }

    /// Serve every socket until the returned guard is dropped (which also removes the Unix
    /// socket files).
    pub fn serve(self, state: Arc<AppState>) -> ServingGuard {
        let mut files = Vec::new();
        let mut tasks = Vec::new();
        for (shown, bound) in self.bound {
            let state = Arc::clone(&state);
            match bound {
                Bound::Tcp(listener) => tasks.push(tokio::spawn(accept_tcp(listener, state))),
                Bound::Unix(listener, file) => {
                    files.push(file);
                    tasks.push(tokio::spawn(accept_unix(listener, state)));
                }
            }
            tracing::info!(socket = %shown, "serving the Octez socket signer protocol");
        }
        ServingGuard {
            tasks,
            _files: files,
        }
    }
}

/// Stops the socket servers and removes their Unix socket files when dropped.
pub struct ServingGuard {
    tasks: Vec<tokio::task::JoinHandle<()>>,
    _files: Vec<UnixSocketFile>,
}

impl Drop for ServingGuard {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn accept_tcp(listener: TcpListener, state: Arc<AppState>) {
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = Arc::clone(&limit).acquire_owned().await else {
            return;
        };
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("socket accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let refused = refusal(&state.settings.allowed_ips.to_vec(), peer);
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            serve_connection(&state, stream, &peer.to_string(), refused).await;
            drop(permit);
        });
    }
}

/// `allowed_ips` applies to TCP socket clients as to HTTP ones: every request on a refused
/// connection is answered with this error.
fn refusal(allowed: &[IpAddr], peer: SocketAddr) -> Option<String> {
    if allowed.is_empty() || allowed.contains(&peer.ip()) {
        None
    } else {
        tracing::warn!(client = %peer.ip(), "refused a socket client not in allowed_ips");
        Some(format!("client `{}' is not allowed", peer.ip()))
    }
}

async fn accept_unix(listener: UnixListener, state: Arc<AppState>) {
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = Arc::clone(&limit).acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::warn!("socket accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            serve_connection(&state, stream, "unix", None).await;
            drop(permit);
        });
    }
}

/// Read frames and answer them in order until the client closes, stalls mid-message or
/// cannot be written to.
pub async fn serve_connection<S: AsyncRead + AsyncWrite + Unpin>(
    state: &AppState,
    mut stream: S,
    peer: &str,
    refused: Option<String>,
) {
    loop {
        let mut first = [0u8; 1];
        match tokio::time::timeout(IDLE_TIMEOUT, stream.read_exact(&mut first)).await {
            Ok(Ok(_)) => {}
            Ok(Err(_)) => return, // closed between messages
            Err(_) => {
                tracing::debug!(client = %peer, "idle socket connection closed");
                return;
            }
        }
        let mut rest = [0u8; 1];
        let read = async {
            stream.read_exact(&mut rest).await?;
            let len = u16::from_be_bytes([first[0], rest[0]]) as usize;
            let mut body = vec![0u8; len];
            stream.read_exact(&mut body).await?;
            Ok::<_, std::io::Error>(body)
        };
        let body = match tokio::time::timeout(MESSAGE_TIMEOUT, read).await {
            Ok(Ok(body)) => body,
            Ok(Err(e)) => {
                tracing::debug!(client = %peer, "socket client left mid-message: {e}");
                return;
            }
            Err(_) => {
                tracing::warn!(client = %peer, "socket client stalled mid-message; closed");
                return;
            }
        };
        let answer = match &refused {
            Some(msg) => codec::error(msg),
            None => answer(state, &body).await,
        };
        if stream.write_all(&codec::frame(&answer)).await.is_err() || stream.flush().await.is_err()
        {
            return;
        }
    }
}

/// The answer body (without its frame) to one request body.
pub async fn answer(state: &AppState, body: &[u8]) -> Vec<u8> {
    let request = match codec::decode(body) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!("socket request not understood: {e}");
            return codec::error(&format!("cannot read the request: {e}"));
        }
    };
    match request {
        SocketRequest::Sign {
            pkh,
            version,
            data,
            signature,
        } => {
            let key = pkh.to_b58();
            let request = SignRequest {
                pkh,
                version: version.unwrap_or(SigningVersion::LATEST),
                payload: data.to_vec(),
                authentication: signature.map_or(Authentication::Absent, Authentication::Raw),
            };
            result(
                signer::sign(state, key.as_str(), Ok(request))
                    .await
                    .map(|sig| sig.as_bytes().to_vec()),
            )
        }
        SocketRequest::PublicKey(pkh) => result(
            signer::public_key(state, pkh)
                .await
                .map(|pk| codec::public_key(&pk)),
        ),
        SocketRequest::AuthorizedKeys => codec::ok(&match signer::authorized_keys(state) {
            None => vec![0x00],
            Some(keys) => {
                let mut out = vec![0x01];
                out.extend_from_slice(&codec::pkh_list(&keys));
                out
            }
        }),
        SocketRequest::DeterministicNonce => {
            codec::error("pawl does not compute deterministic nonces")
        }
        SocketRequest::SupportsDeterministicNonces(_) => codec::ok(&[0x00]),
        SocketRequest::KnownKeys => result(
            signer::known_keys(state)
                .await
                .map(|keys| codec::pkh_list(&keys)),
        ),
        SocketRequest::BlsProvePossession { pkh, override_pk } => {
            let override_pk = match override_pk
                .map(|b| PublicKey::from_curve_bytes(pawl_core::keys::Curve::Bls12_381, &b))
                .transpose()
            {
                Ok(pk) => pk,
                Err(e) => return codec::error(&format!("override_pk is not a public key: {e}")),
            };
            result(
                signer::prove_possession(state, pkh, override_pk)
                    .await
                    .map(|sig| sig.as_bytes().to_vec()),
            )
        }
    }
}

fn result(r: Result<Vec<u8>, ApiError>) -> Vec<u8> {
    match r {
        Ok(payload) => codec::ok(&payload),
        Err(e) => codec::error(&e.msg),
    }
}
