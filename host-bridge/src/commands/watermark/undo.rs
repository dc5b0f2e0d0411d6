//! `pawl watermark forget` and `pawl watermark lower`: an operator undoing marks without
//! erasing keys (provisioning mode, and a press of the board's button; the board's rules are
//! in `core/src/board/undo.rs`). And `pawl watermark jump-limit`, the guard that makes such a
//! burn need the button in the first place (`core/src/board/jump.rs`).

use clap::Args;
use pawl_core::keys::PublicKeyHash;
use pawl_core::protocol::{Request, Response};
use pawl_core::request::ChainId;
use pawl_core::watermark::MarkKind;
use serde_json::json;

use crate::commands::{Context, ask, print_json};
use crate::link::Link;

/// `pawl watermark forget`.
#[derive(Debug, Args)]
pub struct ForgetArgs {
    /// The key (tz1…/tz2…/tz3…/tz4…) whose marks on chains its policy no longer allows are
    /// forgotten. Pin the key to its chains first (its policy). For a key the board no longer
    /// holds (`pawl keys remove`), every mark it left.
    pub pkh: String,
}

/// `pawl watermark lower`.
#[derive(Debug, Args)]
pub struct LowerArgs {
    /// Chain id (Net…).
    #[arg(long)]
    pub chain: String,
    /// The key.
    #[arg(long)]
    pub pkh: String,
    /// block, preattestation or attestation.
    #[arg(long)]
    pub kind: String,
    /// The level the mark is set to. The key must never have signed above it.
    #[arg(long)]
    pub level: u32,
    /// The round the mark is set to.
    #[arg(long, default_value_t = 0)]
    pub round: u32,
}

/// `pawl watermark jump-limit`.
#[derive(Debug, Args)]
pub struct JumpLimitArgs {
    /// The key.
    pub pkh: String,
    /// Levels above its mark a request may be without a press of the button.
    #[arg(long, conflicts_with = "default", required_unless_present = "default")]
    pub levels: Option<u32>,
    /// Back to the board's default (1,000,000 levels).
    #[arg(long)]
    pub default: bool,
}

fn pkh(text: &str) -> anyhow::Result<PublicKeyHash> {
    PublicKeyHash::from_b58(text.trim())
        .map_err(|e| anyhow::anyhow!("`{text}` is not a key hash: {e:?}"))
}

/// A link whose timeouts leave the operator time to press the button.
fn open_link_for_button(ctx: &Context) -> anyhow::Result<Link> {
    let mut settings = crate::device::command_settings();
    settings.response_timeout = settings.confirm_timeout;
    settings.request_timeout += settings.confirm_timeout;
    ctx.open_link_to(ctx.board()?, settings)
}

fn done(ctx: &Context, answer: Response, what: &str) -> anyhow::Result<()> {
    match answer {
        Response::Done => {
            if ctx.json {
                print_json(&json!({ "done": what }));
            } else {
                println!("{what}");
            }
            Ok(())
        }
        other => anyhow::bail!("unexpected answer from the board: {other:?}"),
    }
}

/// Run `pawl watermark forget`.
pub fn forget(ctx: &Context, args: ForgetArgs) -> anyhow::Result<()> {
    let pkh = pkh(&args.pkh)?;
    let link = open_link_for_button(ctx)?;
    eprintln!("press the board's button to confirm (provisioning mode)");
    let answer = ask(&link, &Request::ForgetWatermarks { pkh })?;
    done(
        ctx,
        answer,
        &format!("forgot the marks of {pkh} on chains its policy does not allow"),
    )
}

/// Run `pawl watermark lower`.
pub fn lower(ctx: &Context, args: LowerArgs) -> anyhow::Result<()> {
    let chain = ChainId::from_b58(args.chain.trim())
        .map_err(|e| anyhow::anyhow!("--chain: `{}` is not a chain id: {e}", args.chain))?;
    let pkh = pkh(&args.pkh)?;
    let kind = MarkKind::from_name(args.kind.trim()).ok_or_else(|| {
        anyhow::anyhow!(
            "--kind: `{}` is not block, preattestation or attestation",
            args.kind
        )
    })?;
    let link = open_link_for_button(ctx)?;
    eprintln!("press the board's button to confirm (provisioning mode)");
    let answer = ask(
        &link,
        &Request::LowerWatermark {
            chain,
            pkh,
            kind,
            level: args.level,
            round: args.round,
        },
    )?;
    done(
        ctx,
        answer,
        &format!(
            "{kind} watermark of {pkh} on {} lowered to ({}, {})",
            chain.to_b58().as_str(),
            args.level,
            args.round
        ),
    )
}

/// Run `pawl watermark jump-limit`.
pub fn jump_limit(ctx: &Context, args: JumpLimitArgs) -> anyhow::Result<()> {
    let pkh = pkh(&args.pkh)?;
    let levels = if args.default { None } else { args.levels };
    let link = ctx.open_link()?;
    let answer = ask(&link, &Request::SetJumpLimit { pkh, levels })?;
    let what = match levels {
        Some(n) => format!("{pkh}: a request more than {n} levels above its mark needs the button"),
        None => format!("{pkh}: jump limit back to the board's default"),
    };
    done(ctx, answer, &what)
}
