//! YubiHSM2 tier, bridge side: a relay. The board runs the SCP03 session with the HSM itself
//! (its authentication key never leaves it); the bridge only carries the board's sealed
//! messages to a `yubihsm-connector` (`POST /connector/api`, raw bytes) and the HSM's answers
//! back ([`pawl_core::protocol::Response::RelayToHsm`] →
//! [`pawl_core::protocol::Request::HsmReply`]). It cannot read or forge anything it carries:
//! every reply is authenticated by the board before it is used.

use std::time::Duration;

use reqwest::Url;

/// `[yubihsm]` settings, validated.
#[derive(Clone, Debug)]
pub struct YubiHsmSettings {
    /// The connector's base URL (`http://127.0.0.1:12345`).
    pub connector: Url,
    /// Longest one relayed message may take, ms (connection included).
    pub message_timeout: Duration,
}

/// Why a relayed message got no HSM answer.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The connector did not answer in time.
    #[error("the YubiHSM2 connector at {url} did not answer within {ms} ms")]
    Timeout {
        /// Connector URL.
        url: String,
        /// The timeout.
        ms: u128,
    },
    /// The connector could not be reached.
    #[error("the YubiHSM2 connector at {url} is unreachable: {why}")]
    Unreachable {
        /// Connector URL.
        url: String,
        /// Transport error.
        why: String,
    },
    /// The connector answered with an HTTP error (device missing or failed, message refused).
    #[error("the YubiHSM2 connector at {url} answered HTTP {status}")]
    Refused {
        /// Connector URL.
        url: String,
        /// HTTP status.
        status: u16,
    },
}

/// The relay of a running bridge: one HTTP client to the connector, and the lock that keeps
/// one HSM sign in flight at a time (the board holds one pending operation).
pub struct HsmRelay {
    http: reqwest::Client,
    api: Url,
    settings: YubiHsmSettings,
    /// Held from `Sign` to the board's final answer for YubiHSM2 keys.
    pub serial: tokio::sync::Mutex<()>,
}

impl HsmRelay {
    /// A relay to `settings.connector`.
    pub fn new(settings: YubiHsmSettings) -> anyhow::Result<HsmRelay> {
        let api = settings.connector.join("connector/api")?;
        let http = reqwest::Client::builder()
            .timeout(settings.message_timeout)
            .connect_timeout(settings.message_timeout)
            .pool_max_idle_per_host(1)
            .build()?;
        Ok(HsmRelay {
            http,
            api,
            settings,
            serial: tokio::sync::Mutex::new(()),
        })
    }

    /// The settings this relay runs with.
    pub fn settings(&self) -> &YubiHsmSettings {
        &self.settings
    }

    /// Carry one sealed message to the HSM; its raw answer.
    pub async fn send(&self, message: &[u8]) -> Result<Vec<u8>, RelayError> {
        let url = self.settings.connector.to_string();
        let failed = |e: reqwest::Error| {
            if e.is_timeout() {
                RelayError::Timeout {
                    url: url.clone(),
                    ms: self.settings.message_timeout.as_millis(),
                }
            } else {
                RelayError::Unreachable {
                    url: url.clone(),
                    why: e.to_string(),
                }
            }
        };
        let answer = self
            .http
            .post(self.api.clone())
            .header("content-type", "application/octet-stream")
            .body(message.to_vec())
            .send()
            .await
            .map_err(failed)?;
        if !answer.status().is_success() {
            return Err(RelayError::Refused {
                url: url.clone(),
                status: answer.status().as_u16(),
            });
        }
        Ok(answer.bytes().await.map_err(failed)?.to_vec())
    }
}
