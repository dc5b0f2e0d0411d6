//! `pawl device info|yubihsm-setup`.

use clap::Subcommand;
use pawl_core::protocol::{Mode, PROTOCOL_VERSION, Request, Response, StoreHealth};
use serde_json::json;

use super::{Context, ask, print_json};

/// `pawl device …`
#[derive(Debug, Subcommand)]
pub enum DeviceCommand {
    /// Board model, firmware, mode and counters.
    Info,
    /// Give the board the YubiHSM2 authentication key (its password on stdin) for the HSM keys
    /// registered next (provisioning mode).
    YubihsmSetup {
        /// The authentication key's object id in the HSM.
        #[arg(long)]
        auth_key_id: u16,
    },
}

/// Name of a mode as pawl prints it.
pub fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Provisioning => "provisioning",
        Mode::Operational => "operational",
    }
}

/// Run `pawl device …`.
pub fn run(ctx: &Context, cmd: DeviceCommand) -> anyhow::Result<()> {
    match cmd {
        DeviceCommand::Info => info(ctx),
        DeviceCommand::YubihsmSetup { auth_key_id } => super::yubihsm::setup(ctx, auth_key_id),
    }
}

fn info(ctx: &Context) -> anyhow::Result<()> {
    let link = ctx.open_link()?;
    let (protocol, firmware, board, mode) = match ask(
        &link,
        &Request::Hello {
            protocol: PROTOCOL_VERSION,
        },
    )? {
        Response::Info {
            protocol,
            firmware,
            board,
            mode,
        } => (protocol, firmware, board, mode),
        other => anyhow::bail!("unexpected answer to hello: {other:?}"),
    };
    let Response::Status(status) = ask(&link, &Request::Status)? else {
        anyhow::bail!("unexpected answer to status");
    };
    let store = match status.store {
        StoreHealth::Ok => "ok".to_string(),
        StoreHealth::Refusing(e) => format!("refusing to sign: {e}"),
    };
    let via = link.view().describe;
    if ctx.json {
        print_json(&json!({
            "via": via,
            "board": board.as_str(),
            "firmware": firmware.as_str(),
            "protocol": protocol,
            "mode": mode_name(mode),
            "keys": status.keys,
            "marks": status.marks,
            "mark_capacity": status.mark_capacity,
            "signatures": status.signatures,
            "refusals": status.refusals,
            "mark_writes": status.mark_writes,
            "store": store,
        }));
    } else {
        println!("board:       {board}");
        println!("firmware:    {firmware}");
        println!("protocol:    {protocol}");
        println!("mode:        {}", mode_name(mode));
        println!("keys:        {}", status.keys);
        println!("watermarks:  {} of {}", status.marks, status.mark_capacity);
        println!("signatures:  {} since boot", status.signatures);
        println!("refusals:    {} since boot", status.refusals);
        println!("mark writes: {} since boot", status.mark_writes);
        println!("store:       {store}");
        println!("via:         {via}");
    }
    Ok(())
}
