//! `pawl keys retire|activate|standby|role`: a key's duty on this board — the hand-off between
//! two boards (`docs/lifecycle.md`). Every change is one `SetDuty` in provisioning mode; the
//! board answers with the key as it now stands, which is printed.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use pawl_core::keys::PublicKeyHash;
use pawl_core::protocol::{Duty, KeyInfo, Request, Response, Role};

use super::super::{Context, ask, print_json};
use super::{key_json, key_line};
use crate::migrate::cli::{Format, ImportArgs};

/// `pawl keys retire PKH --above LEVEL`
#[derive(Debug, Args)]
pub struct RetireArgs {
    /// The key.
    pub pkh: String,
    /// The last level this board signs consensus requests at; the new board is activated from
    /// the next one.
    #[arg(long, value_name = "LEVEL")]
    pub above: u32,
}

/// `pawl keys activate PKH --from-level LEVEL [--marks DIR --format …]`
#[derive(Debug, Args)]
pub struct ActivateArgs {
    /// The key.
    pub pkh: String,
    /// The first level this board signs consensus requests at: the old board's retirement
    /// level + 1.
    #[arg(long = "from-level", value_name = "LEVEL")]
    pub from_level: u32,
    /// Also raise this key's marks from the old board's exported files first (`pawl
    /// watermark export` there), so the new board also refuses what the old one signed
    /// at the levels it has not passed yet.
    #[arg(long, value_name = "DIR")]
    pub marks: Option<PathBuf>,
    /// Format of the files in --marks.
    #[arg(long, value_enum, default_value = "signatory", requires = "marks")]
    pub format: Format,
}

/// `--role` on key commands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum RoleArg {
    /// A consensus key (the default).
    #[default]
    Consensus,
    /// A tz4 DAL companion key: attestations only.
    Companion,
    /// A CometBFT validator key (tz1 on the board): signs the votes and proposals of the
    /// chain `--chain-id` names, and no Tezos request.
    Cosmos,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Role {
        match r {
            RoleArg::Consensus => Role::Consensus,
            RoleArg::Companion => Role::Companion,
            RoleArg::Cosmos => Role::Cosmos,
        }
    }
}

fn parse_pkh(text: &str) -> anyhow::Result<PublicKeyHash> {
    PublicKeyHash::from_b58(text.trim())
        .map_err(|e| anyhow::anyhow!("`{text}` is not a key hash (tz1…/tz2…/tz3…/tz4…): {e}"))
}

/// The key as the board holds it now.
fn current(link: &crate::link::Link, pkh: &PublicKeyHash) -> anyhow::Result<KeyInfo> {
    super::super::board_keys(link)?
        .into_iter()
        .find(|k| k.pkh == *pkh)
        .ok_or_else(|| anyhow::anyhow!("unknown key {pkh}: the board does not hold it"))
}

/// Change `pkh`'s duty with `change`, print the key, and return it.
fn change(
    ctx: &Context,
    pkh: &PublicKeyHash,
    change: impl FnOnce(&mut Duty),
) -> anyhow::Result<KeyInfo> {
    let link = ctx.open_link()?;
    let mut duty = current(&link, pkh)?.duty;
    change(&mut duty);
    let Response::KeyInfo(key) = ask(&link, &Request::SetDuty { pkh: *pkh, duty })? else {
        anyhow::bail!("unexpected answer to set duty");
    };
    if ctx.json {
        print_json(&key_json(&key));
    } else {
        println!("{}", key_line(&key));
    }
    Ok(key)
}

/// `pawl keys retire`.
pub fn retire(ctx: &Context, args: &RetireArgs) -> anyhow::Result<()> {
    let pkh = parse_pkh(&args.pkh)?;
    change(ctx, &pkh, |d| d.until_level = Some(args.above))?;
    if !ctx.json {
        println!(
            "this board signs {pkh}'s consensus requests up to level {} only; on the new board: pawl keys activate {pkh} --from-level {}",
            args.above,
            u64::from(args.above) + 1
        );
    }
    Ok(())
}

/// `pawl keys activate`.
pub fn activate(ctx: &Context, args: ActivateArgs) -> anyhow::Result<()> {
    let pkh = parse_pkh(&args.pkh)?;
    if let Some(dir) = args.marks {
        // Marks first: the key stays on standby (or unactivated) while they are raised.
        crate::migrate::cli::import(
            ctx,
            ImportArgs {
                from: args.format,
                dir,
                dry_run: false,
                key: Some(args.pkh.clone()),
            },
        )?;
    }
    change(ctx, &pkh, |d| {
        d.standby = false;
        d.from_level = Some(args.from_level);
        d.until_level = None;
    })?;
    Ok(())
}

/// `--role` at generation: once the key is on the board, give it its role (a second
/// provisioning request; if it fails the key stays as a consensus key and the error says so).
/// A Cosmos key is pinned to `chain_id` instead (`--chain-id`), which makes it one.
pub fn with_role(
    link: &crate::link::Link,
    answer: anyhow::Result<Response>,
    role: RoleArg,
    chain_id: Option<&str>,
) -> anyhow::Result<Response> {
    let key = match answer {
        Ok(Response::KeyInfo(key)) if role != RoleArg::Consensus => key,
        other => return other,
    };
    if role == RoleArg::Cosmos {
        let chain_id = chain_id.context("--role cosmos needs --chain-id")?;
        return pin_chain(link, key.pkh, chain_id).with_context(|| {
            format!(
                "key {} was added, but could not be pinned to CometBFT chain `{chain_id}`: pin it with `pawl keys role {} --role cosmos --chain-id {chain_id}`",
                key.pkh, key.pkh
            )
        });
    }
    let duty = Duty {
        role: role.into(),
        ..key.duty
    };
    match ask(link, &Request::SetDuty { pkh: key.pkh, duty }) {
        Ok(Response::KeyInfo(key)) => Ok(Response::KeyInfo(key)),
        Ok(other) => anyhow::bail!("unexpected answer to set duty: {other:?}"),
        Err(e) => Err(e.context(format!(
            "key {} was added as a consensus key, but could not be made a {} key",
            key.pkh,
            Role::from(role).name()
        ))),
    }
}

/// `pawl keys remove PKH`.
pub fn remove(ctx: &Context, text: &str) -> anyhow::Result<()> {
    let pkh = parse_pkh(text)?;
    let link = ctx.open_link()?;
    match ask(&link, &Request::RemoveKey { pkh })? {
        Response::Done => {}
        other => anyhow::bail!("unexpected answer to remove key: {other:?}"),
    }
    let keys = super::super::board_keys(&link)?;
    let marks = super::super::board_marks(&link)?
        .iter()
        .filter(|m| m.pkh == pkh)
        .count();
    if ctx.json {
        print_json(&serde_json::json!({
            "removed": pkh.to_b58().as_str(),
            "keys": keys.len(),
            "marks_kept": marks,
        }));
    } else {
        println!(
            "{pkh} removed; {marks} of its marks stay on the board (they guard the key if it comes back; `pawl watermark forget {pkh}` frees them)"
        );
    }
    Ok(())
}

/// `pawl keys standby PKH`.
pub fn standby(ctx: &Context, pkh: &str) -> anyhow::Result<()> {
    change(ctx, &parse_pkh(pkh)?, |d| d.standby = true).map(drop)
}

/// `pawl keys role PKH --role …` (`--role cosmos --chain-id CHAIN`: pin the key to a
/// CometBFT chain).
pub fn role(ctx: &Context, pkh: &str, role: RoleArg, chain_id: Option<&str>) -> anyhow::Result<()> {
    let pkh = parse_pkh(pkh)?;
    if role == RoleArg::Cosmos {
        let chain_id = chain_id.context("--role cosmos needs --chain-id")?;
        let link = ctx.open_link()?;
        let key = match pin_chain(&link, pkh, chain_id)? {
            Response::KeyInfo(key) => key,
            other => anyhow::bail!("unexpected answer to pin a chain: {other:?}"),
        };
        if ctx.json {
            print_json(&super::key_json(&key));
        } else {
            println!("{}", super::key_line(&key));
        }
        return Ok(());
    }
    change(ctx, &pkh, |d| d.role = role.into()).map(drop)
}

/// Pin `pkh` to CometBFT chain `chain_id` (the board makes it a Cosmos key): the key's new
/// [`Response::KeyInfo`].
fn pin_chain(
    link: &crate::link::Link,
    pkh: PublicKeyHash,
    chain_id: &str,
) -> anyhow::Result<Response> {
    let request =
        Request::CometBft(pawl_core::protocol::cometbft::CometRequest::SetChain { pkh, chain_id });
    match ask(link, &request)? {
        Response::KeyInfo(key) => Ok(Response::KeyInfo(key)),
        other => anyhow::bail!("unexpected answer to pin a chain: {other:?}"),
    }
}
