//! `pawl`: the host bridge's command line.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use pawl_bridge::commands::{self, Cli, Command};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pawl: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // `serve` logs a line per request; one-shot commands only say what went wrong.
    let default = match cli.command {
        Command::Serve(_) => "info",
        _ => "warn",
    };
    let filter = EnvFilter::try_from_env("PAWL_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    // The filter can be changed while running (`[server] log_filter`, SIGHUP: src/reload.rs).
    let (filter, handle) = tracing_subscriber::reload::Layer::new(filter);
    tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal())
                .with_target(false),
        )
        .init();
    pawl_bridge::reload::install_log_filter(Box::new(move |text| {
        let filter = EnvFilter::try_new(text).map_err(|e| e.to_string())?;
        handle.reload(filter).map_err(|e| e.to_string())
    }));
    commands::run(cli)
}
