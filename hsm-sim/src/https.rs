//! The HTTPS front of the cloud key-service simulators (`pawl-sim azure`, `pawl-sim gcp`): a
//! certificate made at start-up for 127.0.0.1 (written to `cert.pem` for the bridge to trust), a
//! listener on a free loopback port, and serving until SIGTERM/SIGINT.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use axum_server::tls_rustls::RustlsConfig;

/// A bound HTTPS listener, not yet serving.
pub(crate) struct Https {
    listener: std::net::TcpListener,
    tls: RustlsConfig,
    /// `https://127.0.0.1:PORT/`.
    pub base: String,
    /// Where the certificate was written.
    pub cert_path: PathBuf,
}

impl Https {
    /// Make a certificate (written to `dir/cert.pem`) and bind 127.0.0.1 on a free port.
    pub(crate) async fn bind(dir: &Path) -> Result<Https, String> {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
            .map_err(|e| format!("certificate: {e}"))?;
        let cert_pem = cert.cert.pem();
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let cert_path = dir.join("cert.pem");
        std::fs::write(&cert_path, &cert_pem)
            .map_err(|e| format!("{}: {e}", cert_path.display()))?;
        let tls = RustlsConfig::from_pem(
            cert_pem.into_bytes(),
            cert.signing_key.serialize_pem().into_bytes(),
        )
        .await
        .map_err(|e| format!("tls: {e}"))?;
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
        let addr: SocketAddr = listener.local_addr().map_err(|e| format!("bind: {e}"))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| format!("bind: {e}"))?;
        Ok(Https {
            listener,
            tls,
            base: format!("https://127.0.0.1:{}/", addr.port()),
            cert_path,
        })
    }

    /// Flush what the simulator printed (the test reads it to find the port), then serve `app`
    /// until SIGTERM/SIGINT.
    pub(crate) async fn serve(self, app: axum::Router) -> Result<(), String> {
        use std::io::Write;
        std::io::stdout().flush().map_err(|e| e.to_string())?;
        let handle = axum_server::Handle::new();
        crate::signals::stop_on_term(handle.clone());
        axum_server::from_tcp_rustls(self.listener, self.tls)
            .map_err(|e| format!("listen: {e}"))?
            .handle(handle)
            .serve(app.into_make_service())
            .await
            .map_err(|e| format!("serve: {e}"))
    }
}
