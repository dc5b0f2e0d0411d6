//! `[[cometbft]]` in `pawl.toml`: one entry per CometBFT node the bridge signs for
//! (`crate::cometbft`).
//!
//! ```toml
//! [[cometbft]]
//! chain_id = "cosmoshub-4"
//! address = "tcp://127.0.0.1:26659"       # the node's priv_validator_laddr; tcp://NODE_ID@HOST:PORT pins the node
//! key = "tz1…"                            # the board key pinned to this chain (pawl keys generate --role cosmos)
//! # identity_key = "/var/lib/pawl/cometbft-identity.key"   # default: <home>/cometbft-identity.key
//! # connect_timeout_ms = 5000    idle_timeout_ms = 30000    max_backoff_ms = 10000
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use pawl_core::keys::{Curve, PublicKeyHash};
use serde::Deserialize;

use super::ConfigError;
use crate::cometbft::client::ClientSettings;
use crate::cometbft::transport::NodeAddress;

/// Longest CometBFT chain id (CometBFT's `MaxChainIDLen`).
const MAX_CHAIN_ID: usize = 50;

/// One `[[cometbft]]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    chain_id: Option<String>,
    address: Option<String>,
    key: Option<String>,
    identity_key: Option<PathBuf>,
    connect_timeout_ms: Option<u64>,
    idle_timeout_ms: Option<u64>,
    max_backoff_ms: Option<u64>,
}

/// One validated entry.
#[derive(Clone, Debug)]
pub struct CometEntry {
    /// What its client serves.
    pub settings: ClientSettings,
    /// Its SecretConnection identity key file (relative: to the home); `None`:
    /// `<home>/cometbft-identity.key`.
    pub identity_key: Option<PathBuf>,
}

/// Validate the `[[cometbft]]` tables (`path` names the file in errors).
pub fn entries(raw: Vec<toml::Table>, path: &Path) -> Result<Vec<CometEntry>, ConfigError> {
    let field = |field: String, message: String| ConfigError::Field {
        path: path.to_path_buf(),
        field,
        message,
    };
    let mut entries: Vec<CometEntry> = Vec::new();
    for (i, table) in raw.into_iter().enumerate() {
        let at = format!("cometbft[{i}]");
        let raw = RawEntry::deserialize(toml::Value::Table(table))
            .map_err(|e| field(at.clone(), e.message().to_string()))?;
        let need = |name: &str, v: Option<String>, what: &str| {
            v.ok_or_else(|| field(format!("{at}.{name}"), format!("required: {what}")))
        };
        let chain_id = need("chain_id", raw.chain_id, "the node's chain id")?;
        if chain_id.is_empty()
            || chain_id.len() > MAX_CHAIN_ID
            || !chain_id.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(field(
                format!("{at}.chain_id"),
                format!("a chain id is 1 to {MAX_CHAIN_ID} printable ASCII characters, no spaces"),
            ));
        }
        let address: NodeAddress = need(
            "address",
            raw.address,
            "the node's priv_validator_laddr, tcp://HOST:PORT or unix:///PATH",
        )?
        .parse()
        .map_err(|e| field(format!("{at}.address"), e))?;
        let key_text = need("key", raw.key, "the tz1 key that signs for this chain")?;
        let key = PublicKeyHash::from_b58(key_text.trim())
            .ok()
            .filter(|k| k.curve == Curve::Ed25519)
            .ok_or_else(|| {
                field(
                    format!("{at}.key"),
                    "not a tz1 key hash: CometBFT validators sign with Ed25519 keys".into(),
                )
            })?;
        let ms = |name: &str, v: Option<u64>, default: u64| {
            let ms = v.unwrap_or(default);
            if !(1..=3_600_000).contains(&ms) {
                return Err(field(
                    format!("{at}.{name}"),
                    format!("{ms} ms is outside 1..=3600000"),
                ));
            }
            Ok(Duration::from_millis(ms))
        };
        let entry = CometEntry {
            settings: ClientSettings {
                chain_id,
                address,
                key,
                connect_timeout: ms("connect_timeout_ms", raw.connect_timeout_ms, 5_000)?,
                idle_timeout: ms("idle_timeout_ms", raw.idle_timeout_ms, 30_000)?,
                max_backoff: ms("max_backoff_ms", raw.max_backoff_ms, 10_000)?,
            },
            identity_key: raw.identity_key,
        };
        if let Some(other) = entries.iter().position(|e| {
            e.settings.chain_id == entry.settings.chain_id
                && e.settings.address == entry.settings.address
        }) {
            return Err(field(
                format!("{at}.address"),
                format!("cometbft[{other}] already serves this chain at this address"),
            ));
        }
        entries.push(entry);
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::super::{Config, ConfigError};
    use super::*;

    const KEY: &str = "tz1KqTpEZ7Yob7QbPE4Hy4Wo8fHG8LhKxZSx";

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("pawl.toml"))
    }

    fn error_of(text: &str) -> (String, String) {
        match parse(text) {
            Err(ConfigError::Field { field, message, .. }) => (field, message),
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn entries_parse_with_defaults() {
        let c = parse(&format!(
            "[[cometbft]]\nchain_id = \"test-1\"\naddress = \"unix:///run/n.sock\"\nkey = \"{KEY}\"\n\n\
             [[cometbft]]\nchain_id = \"test-1\"\naddress = \"tcp://{}@127.0.0.1:26659\"\nkey = \"{KEY}\"\nidle_timeout_ms = 900\nidentity_key = \"/k\"\n",
            "ab".repeat(20)
        ))
        .expect("two entries");
        assert_eq!(c.cometbft.len(), 2);
        let first = &c.cometbft[0].settings;
        assert_eq!(first.chain_id, "test-1");
        assert_eq!(first.address, NodeAddress::Unix("/run/n.sock".into()));
        assert_eq!(first.key.to_b58().to_string(), KEY);
        assert_eq!(first.connect_timeout, Duration::from_secs(5));
        assert_eq!(first.idle_timeout, Duration::from_secs(30));
        assert_eq!(
            c.cometbft[1].settings.idle_timeout,
            Duration::from_millis(900)
        );
        assert_eq!(c.cometbft[1].identity_key.as_deref(), Some(Path::new("/k")));
        assert!(parse("").expect("none").cometbft.is_empty());
    }

    #[test]
    fn errors_name_the_entry_and_field_and_never_echo_a_value() {
        let ok = format!("chain_id = \"c\"\naddress = \"unix:///s\"\nkey = \"{KEY}\"\n");
        let cases = [
            ("address = \"unix:///s\"\nkey = \"K\"\n".replace('K', KEY), "cometbft[0].chain_id"),
            (format!("chain_id = \"a b\"\naddress = \"unix:///s\"\nkey = \"{KEY}\"\n"), "cometbft[0].chain_id"),
            (format!("chain_id = \"{}\"\naddress = \"unix:///s\"\nkey = \"{KEY}\"\n", "c".repeat(51)), "cometbft[0].chain_id"),
            (format!("chain_id = \"c\"\naddress = \"udp://h:1\"\nkey = \"{KEY}\"\n"), "cometbft[0].address"),
            ("chain_id = \"c\"\naddress = \"unix:///s\"\n".into(), "cometbft[0].key"),
            ("chain_id = \"c\"\naddress = \"unix:///s\"\nkey = \"tz2BFTyPeYRzxd5aiBchbXN3WCZhx7BqbMBq\"\n".into(), "cometbft[0].key"),
            (format!("{ok}idle_timeout_ms = 0\n"), "cometbft[0].idle_timeout_ms"),
            (format!("{ok}secret = \"hunter2\"\n"), "cometbft[0]"),
        ];
        for (body, want) in cases {
            let (field, message) = error_of(&format!("[[cometbft]]\n{body}"));
            assert_eq!(field, want, "{body}");
            assert!(!message.contains("hunter2"), "{message}");
        }
        // The same chain at the same node twice.
        let (field, _) = error_of(&format!("[[cometbft]]\n{ok}\n[[cometbft]]\n{ok}"));
        assert_eq!(field, "cometbft[1].address");
    }
}
