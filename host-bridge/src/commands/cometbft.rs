//! `pawl cometbft identity`: the SecretConnection identity of the CometBFT clients — made
//! on first use — and its node id, which a node operator may pin. The secret is never printed.

use clap::Subcommand;
use serde_json::json;

use super::{Context, print_json};
use crate::cometbft::identity;

/// `pawl cometbft …`
#[derive(Debug, Subcommand)]
pub enum CometCommand {
    /// Print the node id of the signer's identity key (each `identity_key` of pawl.toml's
    /// `[[cometbft]]` entries, or `<home>/cometbft-identity.key`), making the key if there
    /// is none (mode 0600).
    Identity,
}

/// Run `pawl cometbft …`.
pub fn run(ctx: &Context, cmd: CometCommand) -> anyhow::Result<()> {
    match cmd {
        CometCommand::Identity => {
            let mut paths: Vec<std::path::PathBuf> = ctx
                .config
                .cometbft
                .iter()
                .map(|e| identity::path_of(e, &ctx.home))
                .collect();
            if paths.is_empty() {
                paths.push(identity::default_path(&ctx.home));
            }
            paths.dedup();
            let mut shown = Vec::new();
            for path in paths {
                let key = identity::load_or_create(&path)?;
                let id = identity::node_id(&key);
                if ctx.json {
                    shown.push(json!({"node_id": id, "identity_key": path.display().to_string()}));
                } else {
                    println!("{id} {}", path.display());
                }
            }
            if ctx.json {
                print_json(&json!({ "identities": shown }));
            }
            Ok(())
        }
    }
}
