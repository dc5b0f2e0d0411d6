//! Choosing the board: a serial device, a running `pawl serve` (through its control socket),
//! or the in-process virtual board.

use std::path::{Path, PathBuf};

use pawl_core::protocol::Mode;

use crate::control;
use crate::link::{Connector, ControlConnector, LinkSettings, SerialConnector, VirtualConnector};

/// Why no board could be opened.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// The virtual board's directory could not be opened (or another process holds it).
    #[error("cannot open the virtual board in {dir}: {source}")]
    Virtual {
        /// Its directory.
        dir: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
}

/// Where the virtual board keeps its state under a home directory.
pub fn virtual_dir(home: &Path) -> PathBuf {
    home.join("virtual-board")
}

/// What was chosen.
pub struct Chosen {
    /// The connector.
    pub connector: Box<dyn Connector>,
    /// True when this is the in-process virtual board (keys not hardware-protected).
    pub is_virtual: bool,
}

/// The board for `pawl serve`: the serial device if one is configured, else the in-process
/// virtual board in provisioning mode.
pub fn for_serve(home: &Path, serial: Option<&Path>, baud: u32) -> Result<Chosen, DeviceError> {
    match serial {
        Some(path) => Ok(Chosen {
            connector: Box::new(SerialConnector::new(path, baud)),
            is_virtual: false,
        }),
        None => open_virtual(home),
    }
}

/// The board for a CLI command: a live `pawl serve` first (it owns the device), then the
/// serial device, then the virtual board.
pub fn for_command(home: &Path, serial: Option<&Path>, baud: u32) -> Result<Chosen, DeviceError> {
    let socket = control::socket_path(home);
    if control::is_live(&socket) {
        return Ok(Chosen {
            connector: Box::new(ControlConnector::new(&socket)),
            is_virtual: false,
        });
    }
    for_serve(home, serial, baud)
}

fn open_virtual(home: &Path) -> Result<Chosen, DeviceError> {
    let dir = virtual_dir(home);
    let connector = VirtualConnector::open(&dir, Mode::Provisioning)
        .map_err(|source| DeviceError::Virtual { dir, source })?;
    Ok(Chosen {
        connector: Box::new(connector),
        is_virtual: true,
    })
}

/// Link settings for a one-shot CLI command: one request at a time, a short deadline.
pub fn command_settings() -> LinkSettings {
    LinkSettings {
        response_timeout: std::time::Duration::from_secs(3),
        request_timeout: std::time::Duration::from_secs(5),
        pipeline: 1,
        refresh_keys: false,
        ..LinkSettings::default()
    }
}

/// The warning printed whenever the virtual board is used.
pub const VIRTUAL_WARNING: &str = "\
!!! pawl is using the VIRTUAL BOARD: keys live on this computer's disk and are NOT \
hardware-protected. A compromised host can steal them. Use it to try pawl out and in tests; \
configure [device] path in pawl.toml (or --device) for a real board. !!!";
