//! The command line: one file per subcommand.

pub mod azure_import;
pub mod cometbft;
pub mod device;
pub mod keys;
pub mod selftest;
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
    /// Serial device of the board (replaces the boards of pawl.toml with this one).
    #[arg(long, global = true, value_name = "PATH")]
    pub device: Option<PathBuf>,
    /// The board to talk to, by its `[[device]] name` in pawl.toml: needed by every command
    /// that changes a board when several are configured; `device info`, `keys list` and
    /// `watermark show` show every board without it.
    #[arg(long, global = true, value_name = "NAME")]
    pub board: Option<String>,
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
    /// The CometBFT signer (`[[cometbft]]` in pawl.toml).
    #[command(subcommand)]
    Cometbft(cometbft::CometCommand),
}

/// Run the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let home = home_dir(cli.global.home.as_deref())?;
    let config = Config::load(&home)?;
    let mut boards = config.boards.clone();
    if let Some(path) = cli.global.device {
        // One board at this path, with the first configured board's link settings.
        let first = boards.swap_remove(0);
        boards = vec![crate::config::BoardConfig {
            name: "board".into(),
            place: crate::config::Place::Serial(path),
            ..first
        }];
    }
    let ctx = Context {
        home,
        boards,
        board: cli.global.board,
        json: cli.global.json,
        config,
    };
    match cli.command {
        Command::Serve(args) => serve::run(&ctx, args),
        Command::Device(cmd) => device::run(&ctx, cmd),
        Command::Keys(cmd) => keys::run(&ctx, cmd),
        Command::Watermark(cmd) => watermark::run(&ctx, cmd),
        Command::Cometbft(cmd) => cometbft::run(&ctx, cmd),
    }
}

/// What every subcommand gets.
pub struct Context {
    /// Home directory (created).
    pub home: PathBuf,
    /// The boards (pawl.toml's, or the one `--device` names).
    pub boards: Vec<crate::config::BoardConfig>,
    /// `--board NAME`.
    pub board: Option<String>,
    /// JSON output.
    pub json: bool,
    /// Configuration.
    pub config: Config,
}

impl Context {
    /// The board a command that changes a board talks to: `--board NAME`, or the only one.
    pub fn board(&self) -> anyhow::Result<&crate::config::BoardConfig> {
        match (&self.board, self.boards.as_slice()) {
            (None, [only]) => Ok(only),
            (None, _) => anyhow::bail!(
                "{} boards are configured ({}): name one with --board NAME",
                self.boards.len(),
                self.board_names()
            ),
            (Some(name), _) => self.boards.iter().find(|b| &b.name == name).ok_or_else(|| {
                anyhow::anyhow!(
                    "no board named `{name}' (configured: {})",
                    self.board_names()
                )
            }),
        }
    }

    /// The boards a command that shows state reports on: `--board NAME`, else every one.
    pub fn shown_boards(&self) -> anyhow::Result<Vec<&crate::config::BoardConfig>> {
        match &self.board {
            Some(_) => Ok(vec![self.board()?]),
            None => Ok(self.boards.iter().collect()),
        }
    }

    /// Whether more than one board is configured (output then names each board).
    pub fn several_boards(&self) -> bool {
        self.boards.len() > 1
    }

    fn board_names(&self) -> String {
        let names: Vec<&str> = self.boards.iter().map(|b| b.name.as_str()).collect();
        names.join(", ")
    }

    /// Open the board for a one-shot command (through `pawl serve` when it runs).
    pub fn open_link(&self) -> anyhow::Result<Link> {
        self.open_link_to(self.board()?, crate::device::command_settings())
    }

    /// Open `board` with `settings` (through `pawl serve` when it runs).
    pub fn open_link_to(
        &self,
        board: &crate::config::BoardConfig,
        settings: crate::link::LinkSettings,
    ) -> anyhow::Result<Link> {
        let by_name = self.board.is_some() || self.several_boards();
        let chosen = crate::device::for_command(&self.home, board, by_name)?;
        if chosen.is_virtual {
            eprintln!("{}", crate::device::VIRTUAL_WARNING);
        }
        Ok(Link::start(chosen.connector, settings))
    }

    /// Run `show` for every board shown (`--board`, else all). With several boards each one's
    /// output follows a `board NAME:` line (text) or carries `"name"` (JSON), and one board that
    /// cannot be reached is reported without hiding the others (the command then fails).
    pub fn for_each_shown_board(
        &self,
        mut show: impl FnMut(&Link, Option<&str>) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let boards = self.shown_boards()?;
        let several = boards.len() > 1;
        let mut failed = Vec::new();
        for board in boards {
            let name = several.then_some(board.name.as_str());
            if several && !self.json {
                println!("board {}:", board.name);
            }
            let result = self
                .open_link_to(board, crate::device::command_settings())
                .and_then(|link| show(&link, name));
            if let Err(e) = result {
                if !several {
                    return Err(e);
                }
                eprintln!("board `{}': {e:#}", board.name);
                failed.push(board.name.clone());
            }
        }
        match failed.as_slice() {
            [] => Ok(()),
            _ => anyhow::bail!("could not read board(s): {}", failed.join(", ")),
        }
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
