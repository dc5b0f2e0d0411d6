//! `pawl device info|reprovision|yubihsm-setup|selftest`.

use clap::Subcommand;
use pawl_core::protocol::{Mode, PROTOCOL_VERSION, Request, Response, StoreHealth};
use pawl_core::store::{EpochReport, EpochState};
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
    /// Bring back a board whose store it refuses (rolled back or damaged; `pawl device info`
    /// says which), in provisioning mode. Without `--erase` the board adopts the stored image
    /// as it is — keys and policies kept, marks possibly stale: import current watermarks next
    /// (`pawl watermark import`). With `--erase` it starts from an empty store.
    Reprovision {
        /// Erase the store: every key sealed on the board and every mark is gone for good
        /// (keys in a YubiHSM2 or a key service stay there but must be registered again).
        #[arg(long)]
        erase: bool,
    },
    /// Check the board and report: versions, mode, store health, board key, sign time per
    /// curve on the board's own clock (throw-away keys, provisioning mode only), scratch flash
    /// times, link round trip and throughput, the button, entropy. Exits non-zero when a check
    /// fails.
    Selftest(super::selftest::SelftestArgs),
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
        DeviceCommand::Reprovision { erase } => reprovision(ctx, erase),
        DeviceCommand::Selftest(args) => super::selftest::run(ctx, args),
    }
}

fn info(ctx: &Context) -> anyhow::Result<()> {
    ctx.for_each_shown_board(|link, name| info_of(ctx, link, name))
}

fn info_of(ctx: &Context, link: &crate::link::Link, name: Option<&str>) -> anyhow::Result<()> {
    let (protocol, firmware, board, mode) = match ask(
        link,
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
    let Response::Status(status) = ask(link, &Request::Status)? else {
        anyhow::bail!("unexpected answer to status");
    };
    let store = match status.store {
        StoreHealth::Ok => "ok".to_string(),
        StoreHealth::Refusing(e) => format!("refusing to sign: {e}"),
    };
    let via = link.view().describe;
    if ctx.json {
        let mut value = json!({
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
            "rollback_anchor": anchor_json(status.epoch.as_ref()),
        });
        if let Some(name) = name {
            value["name"] = json!(name);
        }
        print_json(&value);
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
        println!("anchor:      {}", anchor_line(status.epoch.as_ref()));
        println!("via:         {via}");
    }
    Ok(())
}

/// The OTP rollback anchor (`core/src/store/epoch.rs`) for `--json`; `null` without one.
fn anchor_json(epoch: Option<&EpochReport>) -> serde_json::Value {
    match epoch {
        None => serde_json::Value::Null,
        Some(e) => json!({
            "otp_epoch": e.otp,
            "flash_epoch": e.flash,
            "epochs_left": e.left,
            "state": anchor_state(e.state),
            "detail": e.describe(),
        }),
    }
}

fn anchor_state(state: EpochState) -> &'static str {
    match state {
        EpochState::Armed => "armed",
        EpochState::Burned => "burned",
        EpochState::Exhausted => "exhausted",
        EpochState::BurnFailed => "burn-failed",
    }
}

/// One line for `pawl device info`.
fn anchor_line(epoch: Option<&EpochReport>) -> String {
    match epoch {
        None => "none (this board has no OTP epoch: a restored whole-flash image goes undetected)"
            .to_string(),
        Some(e) => format!(
            "OTP epoch {} (flash {}), {} epochs left: {}",
            e.otp,
            e.flash,
            e.left,
            e.describe()
        ),
    }
}

fn reprovision(ctx: &Context, erase: bool) -> anyhow::Result<()> {
    let link = ctx.open_link()?;
    match ask(&link, &Request::Reprovision { erase })? {
        Response::Done => {}
        other => anyhow::bail!("unexpected answer to reprovision: {other:?}"),
    }
    let keys = super::board_keys(&link)?;
    let what = if erase {
        "store erased: the board holds no keys and no marks"
    } else {
        "store adopted as it is: import current watermarks next (`pawl watermark import`)"
    };
    if ctx.json {
        print_json(&json!({ "reprovisioned": true, "erased": erase, "keys": keys.len() }));
    } else {
        println!("{what}; {} key(s) on the board", keys.len());
    }
    Ok(())
}
