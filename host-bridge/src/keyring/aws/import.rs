//! `pawl keys import --backend aws --key-id ARN`: read the KMS key's public key
//! (`GetPublicKey`), register it on the board as a host-held key (provisioning mode), and
//! record which KMS key signs for the new pkh in `<home>/aws_keys.json`.

use anyhow::Context as _;
use pawl_core::policy::Policy;
use pawl_core::protocol::{Request, Response};

use super::AwsKeyring;
use crate::commands::{Context, ask};

/// Run the import; `print` prints the board's answer like other key commands.
pub fn import(
    ctx: &Context,
    key_id: Option<&str>,
    policy: Policy,
    print: fn(&Context, anyhow::Result<Response>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let settings = ctx
        .config
        .aws
        .clone()
        .context("--backend aws needs an [aws] section in pawl.toml (region, …)")?;
    let key_id = key_id.context("--key-id ARN is required with --backend aws")?;
    let keyring = AwsKeyring::open(settings, &ctx.home).context("[aws] in pawl.toml")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (public_key, arn) = runtime
        .block_on(keyring.public_key(key_id))
        .with_context(|| format!("reading --key-id {key_id} from AWS KMS"))?;
    let link = ctx.open_link()?;
    let answer = ask(&link, &Request::RegisterHostKey { public_key, policy });
    if let Ok(Response::KeyInfo(info)) = &answer {
        keyring.record(&info.pkh, &arn)?;
    }
    print(ctx, answer)
}
