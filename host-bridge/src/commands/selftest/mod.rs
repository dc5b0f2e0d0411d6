//! `pawl device selftest`: check the board that is configured (RP2350, QEMU, the virtual
//! board) and write a report, as text or (`--json`) one JSON object.
//!
//! * [`board`]: the board's own self-test (`pawl_core::protocol::selftest`) plus what this
//!   process measures about the link. Signs only with throw-away keys the board makes in RAM
//!   and drops (provisioning mode); signs nothing in operational mode. Fields and what a bad
//!   value means: `docs/hardware.md`, "Self-test report".
//! * [`yubihsm`]: with `--yubihsm`, the YubiHSM2 checks instead (the board's session with its
//!   HSM, its HSM keys, throw-away HSM keys in provisioning mode), with their own report.
//!
//! The exit status is non-zero when a check failed; a check skipped (operational mode,
//! `--no-button`, no scratch flash) is not a failure.

pub mod board;
mod link;
pub mod yubihsm;

use clap::Args;

use super::Context;

/// `pawl device selftest …`
#[derive(Debug, Args)]
pub struct SelftestArgs {
    /// Skip the button check (the board would otherwise wait for a press).
    #[arg(long)]
    pub no_button: bool,
    /// Check the board's YubiHSM2 (session, keys, throw-away keys) instead of the board.
    #[arg(long)]
    pub yubihsm: bool,
    /// Status round trips timed for the link latency.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub round_trips: u32,
}

/// Run `pawl device selftest`.
pub fn run(ctx: &Context, args: SelftestArgs) -> anyhow::Result<()> {
    if args.yubihsm {
        return yubihsm::run(ctx, yubihsm::Options::default());
    }
    board::run(ctx, &args)
}
