//! YubiHSM2 tier, bridge side: a relay. The board runs the SCP03 session with the HSM itself
//! (its authentication key never leaves it); the bridge only carries the board's sealed
//! messages to the HSM and the HSM's answers back
//! ([`pawl_core::protocol::Response::RelayToHsm`] →
//! [`pawl_core::protocol::Request::HsmReply`]). It cannot read or forge anything it carries:
//! every reply is authenticated by the board before it is used.
//!
//! The messages go through the yubihsm crate's connector layer ([`yubihsm::Connector`]): to a
//! `yubihsm-connector` over HTTP (`POST /connector/api`, raw bytes, one persistent TCP
//! connection), or straight to the device over USB (libusb bulk transfers).
//!
//! **Timeouts.** The crate's calls block, so each message runs on a blocking thread and the
//! bridge bounds it with its own timer: the baker gets [`RelayError::Timeout`] after
//! [`YubiHsmSettings::message_timeout`] whatever the transport does. Behind that timer:
//! - HTTP: the crate's client ignores [`yubihsm::HttpConfig::timeout_ms`]; it connects, reads
//!   and writes with its own fixed 20 s socket timeouts. A message the bridge gave up on keeps
//!   its blocking thread and the connector (the crate's connection mutex, and ours) until the
//!   connector answers or that socket times out; messages sent meanwhile wait for it and time
//!   out in their turn, so at most one blocking call is ever in flight. When the stuck call
//!   ends in an error the crate drops the connection, and the next message opens a fresh one;
//!   when it ends in a late answer, that answer is consumed by the abandoned call, so the
//!   connection stays in step and the next message gets its own answer.
//! - USB: [`yubihsm::UsbConfig::timeout_ms`] is honoured (each bulk transfer), and is set to
//!   the message timeout.
//!
//! **The crate's HTTP client** expects `HTTP/1.1 200 OK` exactly (any other status is an
//! error), reads the body length from a `Content-Length: ` header written in that case, refuses
//! chunked bodies, caps answers at 64 KiB, and only reassembles an answer that arrives in one
//! `read` (a real `yubihsm-connector` writes its small answers in one go).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use yubihsm::Connector;
use yubihsm::connector::ErrorKind;
use yubihsm::device::SerialNumber;

/// How the bridge reaches the YubiHSM2.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HsmConnector {
    /// A `yubihsm-connector` over plain HTTP.
    Http {
        /// Host name or address (IPv6 in brackets, as in a URL).
        addr: String,
        /// TCP port.
        port: u16,
    },
    /// The device itself over USB.
    Usb {
        /// Which YubiHSM2; `None` is the only one attached.
        serial: Option<SerialNumber>,
    },
}

impl fmt::Display for HsmConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HsmConnector::Http { addr, port } => write!(f, "http://{addr}:{port}"),
            HsmConnector::Usb { serial: Some(s) } => write!(f, "USB (serial {s})"),
            HsmConnector::Usb { serial: None } => write!(f, "USB (the one YubiHSM2 attached)"),
        }
    }
}

/// `[yubihsm]` settings, validated.
#[derive(Clone, Debug)]
pub struct YubiHsmSettings {
    /// Where the HSM is: a connector URL or USB.
    pub connector: HsmConnector,
    /// Longest one relayed message may take (connection included); what the baker waits at most.
    pub message_timeout: Duration,
}

/// Why a relayed message got no HSM answer. Each names the connector (`http://HOST:PORT`) or
/// `USB` and the serial.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// No answer in time.
    #[error("the YubiHSM2 at {connector} did not answer within {ms} ms{note}")]
    Timeout {
        /// The connector, as in [`HsmConnector`]'s display.
        connector: String,
        /// The timeout.
        ms: u128,
        /// Empty, or why the message could not even start.
        note: &'static str,
    },
    /// The connector or device could not be reached (connection refused, address unknown, I/O
    /// failure, no such USB device, USB access denied).
    #[error("the YubiHSM2 at {connector} is unreachable: {why}")]
    Unreachable {
        /// The connector.
        connector: String,
        /// Transport error.
        why: String,
    },
    /// The connector answered, but with an HTTP error or something that is not an answer
    /// (device missing or failed behind the connector, message refused, malformed response).
    #[error("the YubiHSM2 at {connector} refused the message: {why}")]
    Refused {
        /// The connector.
        connector: String,
        /// What the connector said.
        why: String,
    },
}

/// The relay of a running bridge: the crate's connector (one connection, reopened after a
/// failure), and the lock that keeps one HSM sign in flight at a time (the board holds one
/// pending operation).
pub struct HsmRelay {
    /// Held, by a blocking thread, for the whole of one message: a message abandoned by its
    /// timer still holds it until the crate returns.
    connector: Arc<tokio::sync::Mutex<Connector>>,
    settings: YubiHsmSettings,
    /// Held from `Sign` to the board's final answer for YubiHSM2 keys.
    pub serial: tokio::sync::Mutex<()>,
}

impl HsmRelay {
    /// A relay to `settings.connector`. Nothing is opened until the first message.
    pub fn new(settings: YubiHsmSettings) -> anyhow::Result<HsmRelay> {
        Ok(HsmRelay {
            connector: Arc::new(tokio::sync::Mutex::new(connect(&settings))),
            settings,
            serial: tokio::sync::Mutex::new(()),
        })
    }

    /// The settings this relay runs with.
    pub fn settings(&self) -> &YubiHsmSettings {
        &self.settings
    }

    /// Carry one sealed message to the HSM; its raw answer, within `message_timeout`.
    pub async fn send(&self, message: &[u8]) -> Result<Vec<u8>, RelayError> {
        let connector = self.connector.clone();
        let settings = self.settings.clone();
        let message = message.to_vec();
        let started = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let began = started.clone();
        let exchange = async move {
            let mut held = connector.lock_owned().await;
            began.store(true, std::sync::atomic::Ordering::Relaxed);
            tokio::task::spawn_blocking(move || {
                let answer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    held.send_message(uuid::Uuid::nil(), message.into())
                }));
                match answer {
                    Ok(answer) => answer.map(Vec::<u8>::from).map_err(Failure::Connector),
                    Err(_) => {
                        // The crate panicked, perhaps holding (and so poisoning) its
                        // connection mutex: start over with a fresh connector.
                        *held = connect(&settings);
                        Err(Failure::Panicked)
                    }
                }
            })
            .await
        };
        let name = self.settings.connector.to_string();
        match tokio::time::timeout(self.settings.message_timeout, exchange).await {
            Ok(Ok(Ok(answer))) => Ok(answer),
            Ok(Ok(Err(Failure::Connector(e)))) => Err(classify(&e, name, &self.settings)),
            Ok(Ok(Err(Failure::Panicked))) | Ok(Err(_)) => Err(RelayError::Refused {
                connector: name,
                why: "the yubihsm crate's connector failed (panicked); it is reopened for the \
                      next message"
                    .into(),
            }),
            Err(_elapsed) => Err(RelayError::Timeout {
                connector: name,
                ms: self.settings.message_timeout.as_millis(),
                note: if started.load(std::sync::atomic::Ordering::Relaxed) {
                    ""
                } else {
                    " (an earlier message that timed out still holds the connection; the \
                     crate gives up on it after its 20 s socket timeout)"
                },
            }),
        }
    }
}

/// What the blocking half reports.
enum Failure {
    Connector(yubihsm::connector::Error),
    Panicked,
}

/// The crate's connector for `settings`.
fn connect(settings: &YubiHsmSettings) -> Connector {
    let timeout_ms = u64::try_from(settings.message_timeout.as_millis()).unwrap_or(u64::MAX);
    match &settings.connector {
        HsmConnector::Http { addr, port } => Connector::http(&yubihsm::HttpConfig {
            addr: addr.clone(),
            port: *port,
            // Ignored by the crate's HTTP client (see the module documentation).
            timeout_ms,
        }),
        HsmConnector::Usb { serial } => Connector::usb(&yubihsm::UsbConfig {
            serial: *serial,
            timeout_ms,
        }),
    }
}

/// The crate's error as a [`RelayError`] naming `connector`.
fn classify(
    e: &yubihsm::connector::Error,
    connector: String,
    settings: &YubiHsmSettings,
) -> RelayError {
    let why = detail(e);
    // The crate's own socket (HTTP, 20 s) or transfer (USB) timeout, when it fires before ours.
    let lower = why.to_ascii_lowercase();
    if lower.contains("timed out") || lower.contains("temporarily unavailable") {
        return RelayError::Timeout {
            connector,
            ms: settings.message_timeout.as_millis(),
            note: "",
        };
    }
    match e.kind() {
        ErrorKind::RequestError | ErrorKind::ResponseError => {
            RelayError::Refused { connector, why }
        }
        ErrorKind::AddrInvalid
        | ErrorKind::AccessDenied
        | ErrorKind::DeviceBusyError
        | ErrorKind::ConnectionFailed
        | ErrorKind::IoError
        | ErrorKind::UsbError => RelayError::Unreachable {
            why: match settings.connector {
                HsmConnector::Usb { .. } => format!(
                    "{why} (is the YubiHSM2 attached, may this user open it — udev rule, \
                     /dev/bus/usb — and is no yubihsm-connector holding it?)"
                ),
                HsmConnector::Http { .. } => why,
            },
            connector,
        },
    }
}

/// The crate's error as text. Its HTTP client's errors display only their kind ("I/O error");
/// the cause is in their `Debug` form (`Error { kind: IoError, description: Some("…") }`).
fn detail(e: &yubihsm::connector::Error) -> String {
    let kind = e.kind().to_string();
    let Some(source) = std::error::Error::source(e) else {
        return kind;
    };
    let debug = format!("{source:?}");
    let cause = debug
        .split_once("description: Some(\"")
        .and_then(|(_, rest)| rest.rsplit_once("\")"))
        .map(|(text, _)| text.replace("\\\"", "\""))
        .unwrap_or_else(|| source.to_string());
    if cause == kind {
        kind
    } else {
        format!("{kind}: {cause}")
    }
}
