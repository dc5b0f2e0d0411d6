//! `pawl watermark show`, `forget`, `lower`.

mod undo;

use clap::Subcommand;
use serde_json::{Value, json};

use super::{Context, print_json};

/// `pawl watermark …`
#[derive(Debug, Subcommand)]
pub enum WatermarkCommand {
    /// The board's high watermarks: per chain, key and kind, the highest (level, round) signed.
    Show,
    /// Import high watermarks from octez-signer's or Signatory's files (raise-only;
    /// provisioning mode). Every file is checked first: one bad entry imports nothing.
    Import(crate::migrate::cli::ImportArgs),
    /// Write the board's high watermarks as octez-signer's or Signatory's files.
    Export(crate::migrate::cli::ExportArgs),
    /// Forget a key's marks on the chains its policy no longer allows, freeing their room
    /// (provisioning mode; press the board's button).
    Forget(undo::ForgetArgs),
    /// Lower one mark that was pushed too far, e.g. by a compromised host (provisioning mode;
    /// press the board's button). The key must never have signed above the new position.
    Lower(undo::LowerArgs),
    /// How far above its mark a key signs without a press of the board's button (the jump
    /// guard; provisioning mode).
    JumpLimit(undo::JumpLimitArgs),
}

/// Run `pawl watermark …`.
pub fn run(ctx: &Context, cmd: WatermarkCommand) -> anyhow::Result<()> {
    match cmd {
        WatermarkCommand::Show => show(ctx),
        WatermarkCommand::Import(args) => crate::migrate::cli::import(ctx, args),
        WatermarkCommand::Export(args) => crate::migrate::cli::export(ctx, args),
        WatermarkCommand::Forget(args) => undo::forget(ctx, args),
        WatermarkCommand::Lower(args) => undo::lower(ctx, args),
        WatermarkCommand::JumpLimit(args) => undo::jump_limit(ctx, args),
    }
}

fn show(ctx: &Context) -> anyhow::Result<()> {
    ctx.for_each_shown_board(|link, name| show_of(ctx, link, name))
}

fn show_of(ctx: &Context, link: &crate::link::Link, name: Option<&str>) -> anyhow::Result<()> {
    let all = super::board_marks(link)?;
    if ctx.json {
        let list: Vec<Value> = all
            .iter()
            .map(|e| {
                json!({
                    "chain": e.chain.to_b58().as_str(),
                    "pkh": e.pkh.to_b58().as_str(),
                    "kind": e.kind.name(),
                    "level": e.level,
                    "round": e.round,
                })
            })
            .collect();
        let mut value = json!({ "watermarks": list });
        if let Some(name) = name {
            value["name"] = json!(name);
        }
        print_json(&value);
    } else if all.is_empty() {
        println!("no watermarks yet");
    } else {
        println!(
            "{:<16} {:<37} {:<15} {:>10} {:>6}",
            "CHAIN", "KEY", "KIND", "LEVEL", "ROUND"
        );
        for e in &all {
            println!(
                "{:<16} {:<37} {:<15} {:>10} {:>6}",
                e.chain.to_b58().as_str(),
                e.pkh.to_b58().as_str(),
                e.kind.name(),
                e.level,
                e.round
            );
        }
    }
    Ok(())
}
