//! `pawl.toml`: read in two stages — raw serde structs that refuse unknown fields, then a
//! validated, typed [`Config`] whose errors name the field.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use pawl_core::keys::PublicKey;
use serde::Deserialize;

mod azure;
mod cometbft;
mod devices;
mod yubihsm;
pub use azure::RawAzure;
use azure::validate_azure;
pub use cometbft::CometEntry;
pub use devices::{BoardConfig, Place, RawDevices, VIRTUAL};
pub use yubihsm::RawYubiHsm;
use yubihsm::validate_yubihsm;

/// The file name inside the home directory.
pub const FILE_NAME: &str = "pawl.toml";
/// Default HTTP listen address (the octez-signer port, loopback only).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:6732";
/// Default largest accepted request body.
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;

/// Why the configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file exists but could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown or mistyped fields.
    #[error("{path}: {message}")]
    Syntax {
        /// File.
        path: PathBuf,
        /// The parser's message (names the field, line and column).
        message: String,
    },
    /// A field has a value pawl cannot use.
    #[error("{path}: field `{field}`: {message}")]
    Field {
        /// File.
        path: PathBuf,
        /// The field, dotted (`server.authorized_keys[1]`).
        field: String,
        /// What is wrong.
        message: String,
    },
}

/// `pawl.toml` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// The board (`[device]`) or boards (`[[device]]`, each named); absent means the
    /// in-process virtual board.
    pub device: Option<RawDevices>,
    /// The HTTP signer API.
    #[serde(default)]
    pub server: RawServer,
    /// Prometheus metrics.
    #[serde(default)]
    pub metrics: RawMetrics,
    /// Azure Key Vault (host-held keys); absent means no Azure keys.
    pub azure: Option<RawAzure>,
    /// YubiHSM2 connector (HSM keys); absent means no YubiHSM2 keys can sign.
    pub yubihsm: Option<RawYubiHsm>,
    /// A PKCS#11 token (host-held keys); absent means no PKCS#11 keys.
    pub pkcs11: Option<crate::keyring::pkcs11::RawPkcs11>,
    /// Google Cloud KMS (host-held keys); absent means no Cloud KMS keys.
    pub gcp: Option<crate::keyring::gcp::RawGcp>,
    /// AWS KMS (host-held keys); absent means no AWS keys.
    pub aws: Option<crate::keyring::aws::RawAws>,
    /// CometBFT nodes to sign for (`[[cometbft]]`, one table each).
    #[serde(default)]
    pub cometbft: Vec<toml::Table>,
}

/// `[device]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDevice {
    /// The board's name (required in `[[device]]`; `board` by default in `[device]`): used in
    /// errors, metrics labels and `--board`.
    pub name: Option<String>,
    /// Serial device path (`/dev/ttyACM0`, `/dev/serial/by-id/…`, a pty), or `"virtual"` for the
    /// in-process virtual board. Absent: the virtual board (`[device]` only).
    pub path: Option<PathBuf>,
    /// Baud rate (ignored by USB CDC-ACM; used by UARTs). Default 115200.
    pub baud: Option<u32>,
    /// Longest silence from the board before the link is re-opened, ms. Default 2000.
    pub response_timeout_ms: Option<u64>,
    /// Longest a request waits for the board, reconnects included, ms. Default 5000.
    pub request_timeout_ms: Option<u64>,
    /// For a request the board holds until its button is pressed (policy `confirm`): the
    /// silence allowed and the time added to its deadline, ms. Default 35000 (the RP2350 waits
    /// 30 s for the press).
    pub confirm_timeout_ms: Option<u64>,
    /// Most requests in flight on the link (1 = one at a time). Default 8.
    pub pipeline: Option<usize>,
}

/// `[server]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    /// HTTP listen address. Default `127.0.0.1:6732`.
    pub listen: Option<String>,
    /// Largest request body in bytes. Default 65536.
    pub body_limit: Option<usize>,
    /// Public keys (`edpk…`, `sppk…`, `p2pk…`, `BLpk…`) allowed to ask for signatures; when
    /// non-empty every sign request must carry `?authentication=`.
    #[serde(default)]
    pub authorized_keys: Vec<String>,
    /// Client IP addresses allowed to connect; empty means any.
    #[serde(default)]
    pub allowed_ips: Vec<String>,
    /// Serve `GET /known_keys` (Octez `--allow-list-known-keys`).
    #[serde(default)]
    pub allow_list_known_keys: bool,
    /// Serve `GET /bls_prove_possession/<pkh>` (Octez `--allow-to-prove-possession`).
    #[serde(default)]
    pub allow_to_prove_possession: bool,
    /// HTTPS listen address (the same API as `listen`); needs `tls_cert` and `tls_key`.
    pub tls_listen: Option<String>,
    /// HTTPS certificate chain, PEM.
    pub tls_cert: Option<PathBuf>,
    /// HTTPS private key, PEM.
    pub tls_key: Option<PathBuf>,
    /// CA certificates (PEM) that must have issued an HTTPS client's certificate (mutual TLS).
    pub tls_client_ca: Option<PathBuf>,
    /// Octez socket signer addresses: `tcp://HOST:PORT`, `unix:///PATH`.
    #[serde(default)]
    pub socket: Vec<String>,
    /// `pawl serve`'s log filter (`PAWL_LOG` syntax, e.g. `info` or `warn,pawl_bridge=debug`);
    /// `PAWL_LOG` wins when set. Re-read on SIGHUP.
    pub log_filter: Option<String>,
}

/// `[metrics]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMetrics {
    /// Listen address for `GET /metrics`; absent means no metrics listener.
    pub listen: Option<String>,
}

/// The validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// The boards, in the file's order (at least one: the virtual board when none is
    /// configured).
    pub boards: Vec<BoardConfig>,
    /// HTTP listen address.
    pub listen: SocketAddr,
    /// Body limit.
    pub body_limit: usize,
    /// Keys allowed to authenticate sign requests.
    pub authorized_keys: Vec<PublicKey>,
    /// Allowed client addresses (empty: any).
    pub allowed_ips: Vec<IpAddr>,
    /// `GET /known_keys` enabled.
    pub allow_list_known_keys: bool,
    /// `GET /bls_prove_possession` enabled.
    pub allow_to_prove_possession: bool,
    /// Metrics listen address.
    pub metrics: Option<SocketAddr>,
    /// `[server] log_filter`, checked.
    pub log_filter: Option<String>,
    /// HTTPS listen address and files (`server.tls_*`).
    pub tls: Option<(SocketAddr, crate::tls::TlsSettings)>,
    /// Octez socket signer addresses.
    pub sockets: Vec<crate::socket::SocketAddress>,
    /// Azure Key Vault settings, if configured.
    pub azure: Option<crate::keyring::azure::AzureSettings>,
    /// YubiHSM2 connector settings, if configured.
    pub yubihsm: Option<crate::yubihsm::YubiHsmSettings>,
    /// PKCS#11 token settings, if configured.
    pub pkcs11: Option<crate::keyring::pkcs11::Pkcs11Settings>,
    /// Google Cloud KMS settings, if configured.
    pub gcp: Option<crate::keyring::gcp::GcpSettings>,
    /// AWS KMS settings, if configured.
    pub aws: Option<crate::keyring::aws::AwsSettings>,
    /// CometBFT nodes to sign for (`[[cometbft]]`).
    pub cometbft: Vec<CometEntry>,
}

impl Config {
    /// Read `<home>/pawl.toml`; a missing file gives the defaults.
    pub fn load(home: &Path) -> Result<Config, ConfigError> {
        let path = home.join(FILE_NAME);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => return Err(ConfigError::Read { path, source }),
        };
        Config::parse(&text, &path)
    }

    /// Parse and validate TOML text (`path` only names the file in errors).
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: path.to_path_buf(),
            message: syntax_message(text, &e),
        })?;
        Config::validate(raw, path)
    }

    fn validate(raw: RawConfig, path: &Path) -> Result<Config, ConfigError> {
        let field = |field: String, message: String| ConfigError::Field {
            path: path.to_path_buf(),
            field,
            message,
        };
        let addr = |name: &str, text: &str| -> Result<SocketAddr, ConfigError> {
            text.parse().map_err(|e| {
                field(
                    name.into(),
                    format!("`{text}` is not an IP:port address ({e})"),
                )
            })
        };
        let listen = addr(
            "server.listen",
            raw.server.listen.as_deref().unwrap_or(DEFAULT_LISTEN),
        )?;
        let metrics = raw
            .metrics
            .listen
            .as_deref()
            .map(|m| addr("metrics.listen", m))
            .transpose()?;
        let mut authorized_keys = Vec::new();
        for (i, text) in raw.server.authorized_keys.iter().enumerate() {
            let pk = PublicKey::from_b58(text.trim()).map_err(|e| {
                field(
                    format!("server.authorized_keys[{i}]"),
                    format!("not a public key: {e}"),
                )
            })?;
            pk.validate()
                .map_err(|e| field(format!("server.authorized_keys[{i}]"), e.to_string()))?;
            authorized_keys.push(pk);
        }
        let mut allowed_ips = Vec::new();
        for (i, text) in raw.server.allowed_ips.iter().enumerate() {
            allowed_ips.push(text.parse().map_err(|_| {
                field(
                    format!("server.allowed_ips[{i}]"),
                    format!("`{text}` is not an IP address"),
                )
            })?);
        }
        if let Some(text) = &raw.server.log_filter {
            tracing_subscriber::EnvFilter::try_new(text).map_err(|e| {
                field(
                    "server.log_filter".into(),
                    format!("`{text}` is not a log filter: {e}"),
                )
            })?;
        }
        let boards = devices::boards(raw.device, path)?;
        let cometbft = cometbft::entries(raw.cometbft, path)?;
        let body_limit = raw.server.body_limit.unwrap_or(DEFAULT_BODY_LIMIT);
        if body_limit < 1024 {
            return Err(field(
                "server.body_limit".into(),
                format!("{body_limit} bytes is too small for a block header (at least 1024)"),
            ));
        }
        let tls = validate_tls(&raw.server, &addr, &field)?;
        let mut sockets = Vec::new();
        for (i, text) in raw.server.socket.iter().enumerate() {
            sockets.push(
                text.parse()
                    .map_err(|e| field(format!("server.socket[{i}]"), e))?,
            );
        }
        // A key service must give up before the board link of any board does.
        let request_timeout = boards
            .iter()
            .map(|b| b.link.request_timeout)
            .min()
            .unwrap_or(Duration::from_secs(5));
        let azure = raw
            .azure
            .map(|a| validate_azure(a, request_timeout, &field))
            .transpose()?;
        let yubihsm = raw
            .yubihsm
            .map(|y| validate_yubihsm(y, request_timeout, &field))
            .transpose()?;
        let aws = raw
            .aws
            .map(|a| crate::keyring::aws::validate(a, request_timeout))
            .transpose()
            .map_err(|e| field(e.field, e.message))?;
        let backend = |e: crate::keyring::FieldError| field(e.field, e.message);
        let pkcs11 = raw
            .pkcs11
            .map(|p| p.validate(request_timeout).map_err(backend))
            .transpose()?;
        let gcp = raw
            .gcp
            .map(|g| g.validate(request_timeout).map_err(backend))
            .transpose()?;
        Ok(Config {
            cometbft,
            pkcs11,
            gcp,
            azure,
            yubihsm,
            aws,
            boards,
            listen,
            body_limit,
            authorized_keys,
            allowed_ips,
            allow_list_known_keys: raw.server.allow_list_known_keys,
            allow_to_prove_possession: raw.server.allow_to_prove_possession,
            metrics,
            log_filter: raw.server.log_filter,
            tls,
            sockets,
        })
    }
}

/// `server.tls_*`: all of listen, cert and key or none; a client CA only with them. The files
/// are read when `pawl serve` starts (errors name the field and the file).
fn validate_tls(
    raw: &RawServer,
    addr: &dyn Fn(&str, &str) -> Result<SocketAddr, ConfigError>,
    field: &dyn Fn(String, String) -> ConfigError,
) -> Result<Option<(SocketAddr, crate::tls::TlsSettings)>, ConfigError> {
    match (&raw.tls_listen, &raw.tls_cert, &raw.tls_key) {
        (None, None, None) => match raw.tls_client_ca {
            Some(_) => Err(field(
                "server.tls_client_ca".into(),
                "only with tls_listen, tls_cert and tls_key".into(),
            )),
            None => Ok(None),
        },
        (Some(listen), Some(cert), Some(key)) => Ok(Some((
            addr("server.tls_listen", listen)?,
            crate::tls::TlsSettings {
                cert: cert.clone(),
                key: key.clone(),
                client_ca: raw.tls_client_ca.clone(),
            },
        ))),
        (listen, cert, _) => {
            let missing = if listen.is_none() {
                "tls_listen"
            } else if cert.is_none() {
                "tls_cert"
            } else {
                "tls_key"
            };
            Err(field(
                format!("server.{missing}"),
                "required for HTTPS (tls_listen, tls_cert and tls_key go together)".into(),
            ))
        }
    }
}

/// A key service's timeout `ms` (field `name`): above 0 and below the board's
/// `device.request_timeout_ms`, so the bridge gives up on the service before the board.
fn within_request_timeout(
    name: &str,
    ms: u64,
    request_timeout: Duration,
    field: &dyn Fn(String, String) -> ConfigError,
) -> Result<Duration, ConfigError> {
    let timeout = Duration::from_millis(ms);
    if timeout.is_zero() || timeout >= request_timeout {
        return Err(field(
            name.into(),
            format!(
                "{ms} ms must be above 0 and below device.request_timeout_ms ({} ms)",
                request_timeout.as_millis()
            ),
        ));
    }
    Ok(timeout)
}

/// The parser's message with its line and column, but without the excerpt of the file that
/// `toml`'s own `Display` adds: that line may hold a secret (an AWS key or a PIN pasted into
/// `pawl.toml` is refused as an unknown field), and this message is printed and logged.
fn syntax_message(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim_end();
    let Some(span) = e.span() else {
        return message.to_string();
    };
    let before = text.get(..span.start).unwrap_or(text);
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = before.matches('\n').count() + 1;
    let column = before[line_start..].chars().count() + 1;
    // The key of that line (what is left of `=`) or a table header: never a value.
    let text_line = text[line_start..].lines().next().unwrap_or("").trim();
    let what = match text_line.split_once('=') {
        Some((key, _)) => format!(" (`{} = …`)", key.trim()),
        None if text_line.starts_with('[')
            && text_line.ends_with(']')
            && text_line
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "[]._- ".contains(c)) =>
        {
            format!(" (`{text_line}`)")
        }
        None => String::new(),
    };
    format!("line {line}, column {column}{what}: {message}")
}

#[cfg(test)]
mod syntax_tests {
    use super::*;

    #[test]
    fn a_syntax_error_names_line_and_field_but_not_the_line_itself() {
        let text = "[aws]\nregion = \"eu-west-1\"\nsecret_access_key = \"wJalrXUtnFEMI-SECRET\"\n";
        let e = Config::parse(text, Path::new("pawl.toml"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("line 3, column 1"), "{e}");
        assert!(e.contains("unknown field `secret_access_key`"), "{e}");
        assert!(!e.contains("SECRET"), "{e}");
        let e = Config::parse("[server]\nlisten = 7\n", Path::new("pawl.toml"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("line 2, column 10 (`listen = …`)"), "{e}");
        let e = Config::parse("[server]\n[server]\n", Path::new("pawl.toml"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("line 2, column 2 (`[server]`)"), "{e}");
    }
}
