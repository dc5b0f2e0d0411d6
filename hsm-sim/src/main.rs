//! `pawl-sim`: pawl's simulators, one subcommand each.
//!
//! * `pawl-sim board --pty` — the virtual board (the same `pawl-core` board entry point the
//!   firmware runs) served over a pseudo-terminal, so the bridge talks to it exactly as to a
//!   board on a serial port.
//!
//! * `pawl-sim qemu` — the real board firmware (`firmware/qemu`) in QEMU, its UART on a pty.
//!
//! * `pawl-sim azure` — an Azure Key Vault REST simulator over HTTPS (generated certificate),
//!   with a managed-identity token endpoint and fault switches.
//!
//! * `pawl-sim gcp` — the Google Cloud KMS REST calls the bridge makes (`getPublicKey`,
//!   `asymmetricSign`) and a service-account token endpoint, over HTTPS, with fault switches.
//!
//! * `pawl-sim yubihsm` — the yubihsm crate's MockHsm behind the yubihsm-connector HTTP
//!   protocol, with admin endpoints to make keys and count messages.

mod azure;
mod board;
mod gcp;
mod https;
mod pty;
mod qemu;
mod signals;
mod yubihsm;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// pawl's simulators.
#[derive(Parser, Debug)]
#[command(name = "pawl-sim", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the virtual board (keys on the host's disk, NOT hardware-protected).
    Board(board::Args),
    /// Boot the board firmware in QEMU (mps2-an505); prints `pty: /dev/pts/N`.
    Qemu(qemu::Args),
    /// Azure Key Vault REST simulator over HTTPS; prints `url:`, `cert:` and `identity:`.
    Azure(azure::Args),
    /// Google Cloud KMS REST simulator over HTTPS; prints `url:`, `cert:`, `service_account:`
    /// and `key_prefix:`.
    Gcp(gcp::Args),
    /// YubiHSM2 simulator (MockHsm) behind the yubihsm-connector HTTP API; prints `url:`.
    Yubihsm(yubihsm::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Board(args) => board::run(args),
        Command::Qemu(args) => qemu::run(args),
        Command::Azure(args) => azure::run(args).map_err(Into::into),
        Command::Gcp(args) => gcp::run(args).map_err(Into::into),
        Command::Yubihsm(args) => yubihsm::run(args).map_err(Into::into),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pawl-sim: error: {e}");
            ExitCode::FAILURE
        }
    }
}
