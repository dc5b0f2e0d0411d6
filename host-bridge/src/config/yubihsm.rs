//! `[yubihsm]` in `pawl.toml`: how the bridge reaches the YubiHSM2 whose session the board
//! holds (`crate::yubihsm`).

use std::time::Duration;

use super::{ConfigError, within_request_timeout};
use serde::Deserialize;

/// `[yubihsm]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawYubiHsm {
    /// The `yubihsm-connector` base URL, e.g. `http://127.0.0.1:12345` (plain HTTP only; the
    /// port defaults to 12345). Exactly one of `connector` and `usb = true`.
    pub connector: Option<String>,
    /// Talk to the YubiHSM2 directly over USB (libusb) instead of through a connector.
    #[serde(default)]
    pub usb: bool,
    /// With `usb = true`: the 10-digit serial of the YubiHSM2 to use; absent means the only
    /// one attached.
    pub usb_serial: Option<String>,
    /// Longest one relayed message may take, ms. Default 2000; below
    /// `device.request_timeout_ms`.
    pub message_timeout_ms: Option<u64>,
}

pub(super) fn validate_yubihsm(
    raw: RawYubiHsm,
    request_timeout: Duration,
    field: &dyn Fn(String, String) -> ConfigError,
) -> Result<crate::yubihsm::YubiHsmSettings, ConfigError> {
    use crate::yubihsm::HsmConnector;
    if raw.usb_serial.is_some() && !raw.usb {
        return Err(field(
            "yubihsm.usb_serial".into(),
            "only with usb = true".into(),
        ));
    }
    let connector = match (raw.connector, raw.usb) {
        (Some(_), true) => {
            return Err(field(
                "yubihsm.usb".into(),
                "set either yubihsm.connector (a yubihsm-connector URL) or usb = true, not both"
                    .into(),
            ));
        }
        (None, false) => {
            return Err(field(
                "yubihsm.connector".into(),
                "required (the yubihsm-connector URL, e.g. \"http://127.0.0.1:12345\"), or \
                 usb = true for a YubiHSM2 attached to this machine"
                    .into(),
            ));
        }
        (Some(text), false) => {
            let (addr, port) = connector_address(&text)
                .map_err(|why| field("yubihsm.connector".into(), format!("`{text}` {why}")))?;
            HsmConnector::Http { addr, port }
        }
        (None, true) => {
            let serial = raw
                .usb_serial
                .map(|text| {
                    text.bytes()
                        .all(|b| b.is_ascii_digit())
                        .then(|| text.parse::<yubihsm::device::SerialNumber>().ok())
                        .flatten()
                        .ok_or_else(|| {
                            field(
                                "yubihsm.usb_serial".into(),
                                format!(
                                    "`{text}` is not a YubiHSM2 serial number (10 digits, e.g. \
                                     \"0123456789\")"
                                ),
                            )
                        })
                })
                .transpose()?;
            HsmConnector::Usb { serial }
        }
    };
    let message_timeout = within_request_timeout(
        "yubihsm.message_timeout_ms",
        raw.message_timeout_ms.unwrap_or(2000),
        request_timeout,
        field,
    )?;
    Ok(crate::yubihsm::YubiHsmSettings {
        connector,
        message_timeout,
    })
}

/// Host and port of a `yubihsm-connector` URL; why it cannot be used otherwise. The yubihsm
/// crate's client speaks plain HTTP/1.1 to `<host>:<port>/connector/api`, so only `http://`
/// with no path prefix, query or credentials; the port defaults to the connector's 12345.
fn connector_address(text: &str) -> Result<(String, u16), String> {
    let url = reqwest::Url::parse(text)
        .map_err(|e| format!("is not an http:// URL ({e}), e.g. \"http://127.0.0.1:12345\""))?;
    match url.scheme() {
        "http" => {}
        "https" => {
            return Err(
                "uses https, which the YubiHSM2 connector client (the yubihsm crate's) \
                        does not speak: use http:// to a connector on this machine or a trusted \
                        link (every relayed message is SCP03-encrypted and MAC'd by the board), \
                        or usb = true"
                    .into(),
            );
        }
        other => return Err(format!("is not an http:// URL (scheme `{other}`)")),
    }
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or("has no host")?
        .to_string();
    if !url.username().is_empty() || url.password().is_some() {
        return Err("carries credentials, which the connector protocol has no use for".into());
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(
            "has a path, query or fragment: give only http://HOST[:PORT] (messages go to \
             /connector/api)"
                .into(),
        );
    }
    // `Url` drops a port equal to the scheme's default (80), so tell "absent" from ":80" by
    // looking at the authority as written.
    let authority = text
        .split_once("://")
        .map_or("", |(_, rest)| rest)
        .split(['/', '?', '#'])
        .next()
        .unwrap_or("");
    let port_written = authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    let port = match url.port() {
        Some(port) => port,
        None if port_written => 80,
        None => 12345,
    };
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::*;
    use std::path::Path;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(text, Path::new("pawl.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn yubihsm_section_is_validated_with_field_names() {
        use crate::yubihsm::HsmConnector;
        let http = |text: &str| match parse(text).expect(text).yubihsm.expect("[yubihsm]") {
            crate::yubihsm::YubiHsmSettings {
                connector: HsmConnector::Http { addr, port },
                message_timeout,
            } => (addr, port, message_timeout),
            other => panic!("{text}: {other:?}"),
        };
        assert_eq!(
            http("[yubihsm]\nconnector = \"http://127.0.0.1:12345\"\n"),
            ("127.0.0.1".into(), 12345, Duration::from_millis(2000))
        );
        assert_eq!(
            http("[yubihsm]\nconnector = \"http://hsm.lan\"\n").1,
            12345,
            "the connector's port when none is given"
        );
        assert_eq!(http("[yubihsm]\nconnector = \"http://h:80/\"\n").1, 80);
        assert_eq!(
            http("[yubihsm]\nconnector = \"http://[::1]:4000\"\nmessage_timeout_ms = 700\n"),
            ("[::1]".into(), 4000, Duration::from_millis(700))
        );
        let usb = |text: &str| match parse(text).expect(text).yubihsm.expect("[yubihsm]") {
            crate::yubihsm::YubiHsmSettings {
                connector: HsmConnector::Usb { serial },
                ..
            } => serial.map(|s| s.to_string()),
            other => panic!("{text}: {other:?}"),
        };
        assert_eq!(usb("[yubihsm]\nusb = true\n"), None);
        assert_eq!(
            usb("[yubihsm]\nusb = true\nusb_serial = \"0123456789\"\n").as_deref(),
            Some("0123456789")
        );
        assert!(parse("").expect("empty").yubihsm.is_none());
        for (text, field) in [
            ("[yubihsm]\n", "yubihsm.connector"),
            ("[yubihsm]\nusb = false\n", "yubihsm.connector"),
            (
                "[yubihsm]\nconnector = \"127.0.0.1:12345\"\n",
                "yubihsm.connector",
            ),
            ("[yubihsm]\nconnector = \"ftp://h/\"\n", "yubihsm.connector"),
            ("[yubihsm]\nconnector = \"https://h/\"\n", "https"),
            (
                "[yubihsm]\nconnector = \"http://h/api\"\n",
                "yubihsm.connector",
            ),
            (
                "[yubihsm]\nconnector = \"http://u:p@h/\"\n",
                "yubihsm.connector",
            ),
            (
                "[yubihsm]\nconnector = \"http://h\"\nusb = true\n",
                "yubihsm.usb",
            ),
            (
                "[yubihsm]\nconnector = \"http://h\"\nusb_serial = \"0123456789\"\n",
                "yubihsm.usb_serial",
            ),
            (
                "[yubihsm]\nusb_serial = \"0123456789\"\n",
                "yubihsm.usb_serial",
            ),
            (
                "[yubihsm]\nusb = true\nusb_serial = \"123456789\"\n",
                "yubihsm.usb_serial",
            ),
            (
                "[yubihsm]\nusb = true\nusb_serial = \"+123456789\"\n",
                "yubihsm.usb_serial",
            ),
            (
                "[yubihsm]\nusb = true\nusb_serial = \"99999999999\"\n",
                "yubihsm.usb_serial",
            ),
            ("[yubihsm]\nusb = \"yes\"\n", "usb"),
            (
                "[yubihsm]\nusb = true\nmessage_timeout_ms = 0\n",
                "yubihsm.message_timeout_ms",
            ),
            (
                "[yubihsm]\nconnector = \"http://h\"\nmessage_timeout_ms = 0\n",
                "yubihsm.message_timeout_ms",
            ),
            (
                "[yubihsm]\nconnector = \"http://h\"\nmessage_timeout_ms = 5000\n",
                "yubihsm.message_timeout_ms",
            ),
            (
                "[yubihsm]\nconnector = \"http://h\"\npassword = \"x\"\n",
                "password",
            ),
        ] {
            let err = parse(text).expect_err(text);
            assert!(err.contains(field), "{text}: {err}");
        }
    }
}
