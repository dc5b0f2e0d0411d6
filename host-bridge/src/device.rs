//! Opening a board: a serial device, a running `pawl serve` (through its control socket, which
//! relays to the board named), or the in-process virtual board.

use std::path::{Path, PathBuf};

use pawl_core::protocol::Mode;

use crate::config::{BoardConfig, Place};
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

/// Where the virtual board of the single-board form keeps its state under a home directory.
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

/// Open `board` for `pawl serve`: its serial device, or the in-process virtual board in
/// provisioning mode.
pub fn for_serve(home: &Path, board: &BoardConfig) -> Result<Chosen, DeviceError> {
    match &board.place {
        Place::Serial(path) => Ok(Chosen {
            connector: Box::new(SerialConnector::new(path, board.baud)),
            is_virtual: false,
        }),
        Place::Virtual(dir) => open_virtual(&home.join(dir)),
    }
}

/// `board` for a CLI command: through a live `pawl serve` first (it owns the boards; when
/// `by_name`, the control socket is told which one, else it relays to its only board), then
/// the board itself.
pub fn for_command(home: &Path, board: &BoardConfig, by_name: bool) -> Result<Chosen, DeviceError> {
    let socket = control::socket_path(home);
    if control::is_live(&socket) {
        let name = if by_name { board.name.as_str() } else { "" };
        return Ok(Chosen {
            connector: Box::new(ControlConnector::new(&socket, name)),
            is_virtual: false,
        });
    }
    for_serve(home, board)
}

fn open_virtual(dir: &Path) -> Result<Chosen, DeviceError> {
    let connector =
        VirtualConnector::open(dir, Mode::Provisioning).map_err(|source| DeviceError::Virtual {
            dir: dir.to_path_buf(),
            source,
        })?;
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
