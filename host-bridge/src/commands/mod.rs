//! The command line: one file per subcommand.

pub mod azure_import;
pub mod device;
pub mod keys;
pub mod serve;
pub mod watermark;
pub mod yubihsm;

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use pawl_core::protocol::{Request, Response};

use crate::config::Config;
use crate::link::Link;

/// pawl: a Tezos baking signer whose rules live in a board the host cannot change.
#[derive(Debug, Parser)]
#[command(name = "pawl", version, about)]
pub struct Cli {
    /// Options every subcommand takes.
    #[command(flatten)]
    pub global: Global,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every subcommand takes.
#[derive(Debug, Args)]
pub struct Global {
    /// State and configuration directory (pawl.toml, the virtual board, control.sock).
    /// Default: $XDG_DATA_HOME/pawl or ~/.local/share/pawl.
    #[arg(long, global = true, value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// Serial device of the board (overrides [device] path in pawl.toml).
    #[arg(long, global = true, value_name = "PATH")]
    pub device: Option<PathBuf>,
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    pub json: bool,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the octez-signer HTTP API.
    Serve(serve::ServeArgs),
    /// The board itself.
    #[command(subcommand)]
    Device(device::DeviceCommand),
    /// Keys on the board.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// High watermarks on the board.
    #[command(subcommand)]
    Watermark(watermark::WatermarkCommand),
}

/// Run the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let home = home_dir(cli.global.home.as_deref())?;
    let config = Config::load(&home)?;
    let ctx = Context {
        home,
        device: cli.global.device.or_else(|| config.device.clone()),
        json: cli.global.json,
        config,
    };
    match cli.command {
        Command::Serve(args) => serve::run(&ctx, args),
        Command::Device(cmd) => device::run(&ctx, cmd),
        Command::Keys(cmd) => keys::run(&ctx, cmd),
        Command::Watermark(cmd) => watermark::run(&ctx, cmd),
    }
}

/// What every subcommand gets.
pub struct Context {
    /// Home directory (created).
    pub home: PathBuf,
    /// Serial device, if any.
    pub device: Option<PathBuf>,
    /// JSON output.
    pub json: bool,
    /// Configuration.
    pub config: Config,
}

impl Context {
    /// Open the board for a one-shot command (through `pawl serve` when it runs).
    pub fn open_link(&self) -> anyhow::Result<Link> {
        let chosen =
            crate::device::for_command(&self.home, self.device.as_deref(), self.config.baud)?;
        if chosen.is_virtual {
            eprintln!("{}", crate::device::VIRTUAL_WARNING);
        }
        Ok(Link::start(
            chosen.connector,
            crate::device::command_settings(),
        ))
    }
}

/// Ask the board and fail with a readable error on a link failure or a refusal.
pub fn ask(link: &Link, request: &Request<'_>) -> anyhow::Result<Response> {
    let reply = link
        .ask_blocking(request)
        .with_context(|| format!("talking to {}", link.view().describe))?;
    match reply.response {
        Response::Refused(r) => Err(anyhow::anyhow!("the board refused: {r}")),
        other => Ok(other),
    }
}

/// Every mark on the board, page by page.
pub fn board_marks(link: &Link) -> anyhow::Result<Vec<pawl_core::protocol::WatermarkEntry>> {
    let mut all = Vec::new();
    let mut start = 0u16;
    loop {
        let Response::Watermarks { entries, next } =
            ask(link, &Request::ExportWatermarks { start })?
        else {
            anyhow::bail!("unexpected answer to export watermarks");
        };
        all.extend(entries.iter().copied());
        match next {
            Some(n) if n > start => start = n,
            _ => return Ok(all),
        }
    }
}

/// The board's keys; asking also brings a running `pawl serve`'s key cache in step (after a
/// removal or an erase, which answer without the key).
pub fn board_keys(link: &Link) -> anyhow::Result<Vec<pawl_core::protocol::KeyInfo>> {
    match ask(link, &Request::ListKeys)? {
        Response::Keys(keys) => Ok(keys.iter().cloned().collect()),
        other => anyhow::bail!("unexpected answer to list keys: {other:?}"),
    }
}

fn home_dir(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    let home = match given {
        Some(h) => h.to_path_buf(),
        None => match std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
            Some(data) => PathBuf::from(data).join("pawl"),
            None => {
                PathBuf::from(std::env::var_os("HOME").context("neither --home nor $HOME is set")?)
                    .join(".local/share/pawl")
            }
        },
    };
    std::fs::create_dir_all(&home)
        .with_context(|| format!("cannot create the home directory {}", home.display()))?;
    Ok(home)
}

/// Print `value` as one line of JSON.
pub fn print_json(value: &serde_json::Value) {
    println!("{value}");
}
