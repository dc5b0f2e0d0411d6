//! `pawl keys import --backend gcp --gcp-key projects/…/cryptoKeyVersions/N`: read the key
//! version's public key (`getPublicKey`), register it on the board as a host-held key
//! (provisioning mode) and record `pkh → key version` in `<home>/gcp_keys.json`.

use anyhow::Context as _;
use clap::Args;
use pawl_core::policy::Policy;
use pawl_core::protocol::{Request, Response};

use super::{GcpKeyring, KeyRef};
use crate::commands::{Context, ask};

/// The Cloud KMS options of `pawl keys import`.
#[derive(Debug, Args)]
#[group(id = "gcp_import")]
pub struct ImportArgs {
    /// Cloud KMS: the key version's resource name,
    /// `projects/P/locations/L/keyRings/R/cryptoKeys/K/cryptoKeyVersions/N`.
    #[arg(long = "gcp-key", value_name = "KEY_VERSION")]
    pub gcp_key: Option<String>,
}

/// Run the import; `print` prints the board's answer like other key commands.
pub fn import(
    ctx: &Context,
    args: ImportArgs,
    policy: Policy,
    print: fn(&Context, anyhow::Result<Response>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let settings =
        ctx.config.gcp.clone().context(
            "--backend gcp needs a [gcp] section in pawl.toml (service_account_file, …)",
        )?;
    let name = args.gcp_key.context(
        "--gcp-key projects/…/cryptoKeys/K/cryptoKeyVersions/N is required with --backend gcp",
    )?;
    if !(name.starts_with("projects/") && name.contains("/cryptoKeyVersions/")) {
        anyhow::bail!(
            "--gcp-key `{name}` is not a key version name (projects/P/locations/L/keyRings/R/cryptoKeys/K/cryptoKeyVersions/N)"
        );
    }
    let keyring = GcpKeyring::open(&settings, &ctx.home).context("[gcp] in pawl.toml")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let public_key = runtime
        .block_on(keyring.public_key(&name))
        .with_context(|| format!("reading the public key of {name}"))?;
    let link = ctx.open_link()?;
    let answer = ask(&link, &Request::RegisterHostKey { public_key, policy });
    if let Ok(Response::KeyInfo(info)) = &answer {
        keyring
            .keys
            .record(KeyRef {
                pkh: info.pkh.to_b58().to_string(),
                key_version: name.clone(),
            })
            .map_err(anyhow::Error::msg)?;
    }
    print(ctx, answer)
}
