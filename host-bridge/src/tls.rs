//! HTTPS: the same router as plain HTTP behind a rustls listener (`[server] tls_listen`,
//! `tls_cert`, `tls_key`, optional `tls_client_ca` for mutual TLS).
//!
//! [`TlsListener`] is an `axum::serve::Listener`: handshakes run on their own tasks (a slow or
//! hostile client never holds up the accept loop) and only finished TLS streams reach axum.
//! The handlers do not know which transport carried a request.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// Longest a client may take to finish its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Most handshakes in progress at once; further connections wait to be accepted.
pub const MAX_HANDSHAKES: usize = 256;

/// The TLS files of `[server]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsSettings {
    /// Certificate chain, PEM (`server.tls_cert`).
    pub cert: PathBuf,
    /// Private key, PEM: PKCS#8, PKCS#1 or SEC1 (`server.tls_key`).
    pub key: PathBuf,
    /// When set, clients must present a certificate issued by one of these CAs, PEM
    /// (`server.tls_client_ca`).
    pub client_ca: Option<PathBuf>,
}

/// A TLS file pawl cannot use; the message names the `pawl.toml` field and the file, never
/// key material.
#[derive(Debug, thiserror::Error)]
#[error("server.{field} ({}): {message}", path.display())]
pub struct TlsError {
    /// The field (`tls_cert`, `tls_key`, `tls_client_ca`).
    pub field: &'static str,
    /// The file.
    pub path: PathBuf,
    /// What is wrong.
    pub message: String,
}

fn certificates(
    field: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let error = |message: String| TlsError {
        field,
        path: path.to_path_buf(),
        message,
    };
    std::fs::metadata(path).map_err(|e| error(format!("cannot read: {e}")))?;
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| error(format!("cannot read PEM certificates: {e}")))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| error(format!("not a PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(error("no CERTIFICATE block in the file".into()));
    }
    Ok(certs)
}

/// The rustls server configuration (aws-lc-rs, TLS 1.2 and 1.3, ALPN `http/1.1`).
pub fn server_config(settings: &TlsSettings) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let chain = certificates("tls_cert", &settings.cert)?;
    let key_error = |message: String| TlsError {
        field: "tls_key",
        path: settings.key.clone(),
        message,
    };
    std::fs::metadata(&settings.key).map_err(|e| key_error(format!("cannot read: {e}")))?;
    // The parser's error names the PEM problem only; the key bytes never reach a message.
    let key = PrivateKeyDer::from_pem_file(&settings.key).map_err(|e| {
        key_error(format!(
            "no usable PEM private key (PKCS#8, PKCS#1 or SEC1): {e}"
        ))
    })?;
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| key_error(format!("TLS setup: {e}")))?;
    let builder = match &settings.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in certificates("tls_client_ca", ca)? {
                roots.add(cert).map_err(|e| TlsError {
                    field: "tls_client_ca",
                    path: ca.clone(),
                    message: format!("not a usable CA certificate: {e}"),
                })?;
            }
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
                    .build()
                    .map_err(|e| TlsError {
                        field: "tls_client_ca",
                        path: ca.clone(),
                        message: format!("cannot verify clients with it: {e}"),
                    })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(chain, key).map_err(|e| {
        key_error(format!(
            "does not go with the certificate in {} (or is not usable): {e}",
            settings.cert.display()
        ))
    })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Accepted, handshaken TLS connections.
pub struct TlsListener {
    accepted: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Accept on `listener` and run each handshake on its own task (bounded by
    /// [`HANDSHAKE_TIMEOUT`]). A failed handshake (wrong client certificate, not TLS) is
    /// logged with the client's address and the connection closed.
    pub fn new(listener: TcpListener, config: Arc<rustls::ServerConfig>) -> std::io::Result<Self> {
        let local = listener.local_addr()?;
        let (tx, accepted) = mpsc::channel(64);
        let acceptor = TlsAcceptor::from(config);
        let handshakes = Arc::new(tokio::sync::Semaphore::new(MAX_HANDSHAKES));
        tokio::spawn(async move {
            loop {
                let Ok(permit) = Arc::clone(&handshakes).acquire_owned().await else {
                    return;
                };
                let (tcp, peer) = match listener.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!("HTTPS accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                if tx.is_closed() {
                    return;
                }
                let _ = tcp.set_nodelay(true);
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let handshake =
                        tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await;
                    drop(permit);
                    match handshake {
                        Ok(Ok(stream)) => {
                            let _ = tx.send((stream, peer)).await;
                        }
                        Ok(Err(e)) => {
                            tracing::warn!(client = %peer, "TLS handshake refused: {e}");
                        }
                        Err(_) => {
                            tracing::warn!(client = %peer, "TLS handshake timed out");
                        }
                    }
                });
            }
        });
        Ok(TlsListener { accepted, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.accepted.recv().await {
            Some(c) => c,
            // The accept task ended (it never does while this listener lives).
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
