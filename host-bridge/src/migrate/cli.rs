//! `pawl watermark import` and `pawl watermark export`.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use pawl_core::protocol::{Mode, Request, Response, WatermarkEntry};
use serde_json::{Value, json};

use super::{Action, FileMark, Planned, fold, octez, plan, position, show_position, signatory};
use crate::commands::{Context, ask, board_keys, board_marks, print_json};

/// Another signer's watermark format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// octez-signer's `*_high_watermarks` files (its base directory, `~/.tezos-signer`).
    Octez,
    /// Signatory's `watermark_v2/<chain>.json` files (its base directory).
    Signatory,
}

/// `pawl watermark import --from octez|signatory DIR`
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Which signer wrote the files.
    #[arg(long, value_enum)]
    pub from: Format,
    /// The signer's base directory (octez-signer: ~/.tezos-signer; Signatory: its base dir
    /// holding watermark_v2/, or watermark_v2/ itself).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Print what would change and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Only this key's marks (others in the files are left out, not refused).
    #[arg(long, value_name = "PKH")]
    pub key: Option<String>,
}

/// `pawl watermark export --format octez|signatory DIR`
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Which signer will read the files.
    #[arg(long, value_enum)]
    pub format: Format,
    /// The directory to write into (the other signer's base directory); existing watermark
    /// files there are not overwritten.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Print what would be written and write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

fn names(m: &WatermarkEntry) -> (String, String) {
    (
        m.chain.to_b58().as_str().to_string(),
        m.pkh.to_b58().as_str().to_string(),
    )
}

fn read(format: Format, dir: &Path) -> anyhow::Result<Vec<FileMark>> {
    match format {
        Format::Octez => octez::read(dir),
        Format::Signatory => signatory::read(dir),
    }
}

/// Run `pawl watermark import`.
pub fn import(ctx: &Context, args: ImportArgs) -> anyhow::Result<()> {
    // Every file and entry is checked before the board is asked anything.
    let mut folded = fold(read(args.from, &args.dir)?);
    if let Some(text) = &args.key {
        let only = pawl_core::keys::PublicKeyHash::from_b58(text.trim())
            .map_err(|e| anyhow::anyhow!("--key: `{text}` is not a key hash: {e}"))?;
        folded.marks.retain(|m| m.mark.pkh == only);
        folded.skipped.retain(|(m, _)| m.mark.pkh == only);
    }
    let link = ctx.open_link()?;
    let Response::Status(status) = ask(&link, &Request::Status)? else {
        anyhow::bail!("unexpected answer to status");
    };
    let keys = board_keys(&link)?;
    let held: Vec<_> = keys.iter().map(|k| k.pkh).collect();
    let board = board_marks(&link)?;
    let free = usize::from(status.mark_capacity.saturating_sub(status.marks));
    let planned = plan(&folded.marks, &board, &held, free)?;
    let raises = planned.iter().filter(|p| p.action == Action::Raise).count();
    if !args.dry_run && raises > 0 && status.mode != Mode::Provisioning {
        anyhow::bail!(
            "watermarks can only be imported while the board is in provisioning mode (hold the button at power-up); nothing was imported"
        );
    }

    let mut imported = 0usize;
    let mut failure = None;
    if !args.dry_run {
        for p in planned.iter().filter(|p| p.action == Action::Raise) {
            let m = &p.file.mark;
            let request = Request::ImportWatermark {
                chain: m.chain,
                pkh: m.pkh,
                kind: m.kind,
                level: m.level,
                round: m.round,
            };
            if let Err(e) = ask(&link, &request) {
                failure = Some(format!(
                    "{}: {e:#}; {imported} of {raises} raises were imported before it, none after",
                    p.file.origin
                ));
                break;
            }
            imported += 1;
        }
    }

    report_import(ctx, &args, &planned, &folded.skipped, imported);
    match failure {
        Some(f) => Err(anyhow::anyhow!(f)),
        None => Ok(()),
    }
}

fn report_import(
    ctx: &Context,
    args: &ImportArgs,
    planned: &[Planned],
    skipped: &[(FileMark, String)],
    imported: usize,
) {
    if ctx.json {
        let mut entries: Vec<Value> = planned
            .iter()
            .map(|p| {
                let m = &p.file.mark;
                let (chain, pkh) = names(m);
                json!({
                    "chain": chain,
                    "pkh": pkh,
                    "kind": m.kind.name(),
                    "board": p.board.map(|(level, round)| json!({"level": level, "round": round})),
                    "new": {"level": m.level, "round": m.round},
                    "action": match p.action { Action::Raise => "raise", Action::Kept => "kept" },
                    "from": p.file.origin,
                })
            })
            .collect();
        entries.extend(skipped.iter().map(|(f, why)| {
            let (chain, pkh) = names(&f.mark);
            json!({
                "chain": chain,
                "pkh": pkh,
                "kind": f.mark.kind.name(),
                "new": {"level": f.mark.level, "round": f.mark.round},
                "action": "skipped",
                "reason": why,
                "from": f.origin,
            })
        }));
        print_json(&json!({
            "dry_run": args.dry_run,
            "entries": entries,
            "imported": imported,
        }));
        return;
    }
    if args.dry_run {
        println!("dry run: nothing is changed on the board");
    }
    for p in planned {
        let m = &p.file.mark;
        let (chain, pkh) = names(m);
        let board = p.board.map_or("no mark".to_string(), show_position);
        let what = match p.action {
            Action::Raise => format!("{board} → {}", show_position(position(m))),
            Action::Kept => format!(
                "kept: board is higher or equal ({board} ≥ {})",
                show_position(position(m))
            ),
        };
        println!("{chain} {pkh} {:<14} {what}", m.kind.name());
    }
    for (f, why) in skipped {
        let (chain, pkh) = names(&f.mark);
        println!(
            "{chain} {pkh} {:<14} {}: {why}",
            f.mark.kind.name(),
            show_position(position(&f.mark))
        );
    }
    let raises = planned.iter().filter(|p| p.action == Action::Raise).count();
    if args.dry_run {
        println!(
            "{raises} mark(s) would be raised, {} kept",
            planned.len() - raises
        );
    } else {
        println!("{imported} mark(s) raised, {} kept", planned.len() - raises);
    }
}

/// Run `pawl watermark export`.
pub fn export(ctx: &Context, args: ExportArgs) -> anyhow::Result<()> {
    let link = ctx.open_link()?;
    let marks = board_marks(&link)?;
    let files = match args.format {
        Format::Octez => octez::render(&marks)?,
        Format::Signatory => signatory::render(&marks)?,
    };
    // Never overwrite another signer's marks: they may be higher than the board's.
    for (name, _) in &files {
        let path = args.dir.join(name);
        if path.exists() {
            anyhow::bail!(
                "{} exists; export into an empty directory and merge by hand (nothing was written)",
                path.display()
            );
        }
    }
    if !args.dry_run {
        for (name, text) in &files {
            let path = args.dir.join(name);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("cannot create {}", parent.display()))?;
            }
            std::fs::write(&path, text)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
    }
    if ctx.json {
        let list: Vec<Value> = marks
            .iter()
            .map(|m| {
                let (chain, pkh) = names(m);
                json!({"chain": chain, "pkh": pkh, "kind": m.kind.name(), "level": m.level, "round": m.round})
            })
            .collect();
        let paths: Vec<String> = files
            .iter()
            .map(|(n, _)| args.dir.join(n).display().to_string())
            .collect();
        print_json(&json!({"dry_run": args.dry_run, "files": paths, "watermarks": list}));
        return Ok(());
    }
    if args.dry_run {
        println!("dry run: nothing is written");
    }
    for m in &marks {
        let (chain, pkh) = names(m);
        println!(
            "{chain} {pkh} {:<14} {}",
            m.kind.name(),
            show_position(position(m))
        );
    }
    let verb = if args.dry_run { "would write" } else { "wrote" };
    for (name, _) in &files {
        println!("{verb} {}", args.dir.join(name).display());
    }
    if marks.is_empty() {
        println!("no watermarks on the board: nothing to export");
    }
    Ok(())
}
