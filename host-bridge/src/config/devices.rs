//! The boards of `pawl.toml`: one `[device]` table (the form of a single board, which may be
//! left out for the virtual board), or one `[[device]]` table per board, each with a name.
//!
//! ```toml
//! [[device]]
//! name = "left"
//! path = "/dev/pawl/E6614C311B4B8A2F"     # a serial device: USB, UART, pty
//!
//! [[device]]
//! name = "try-out"
//! path = "virtual"                        # the in-process virtual board, in <home>/virtual-boards/try-out
//! ```
//!
//! Each board takes the `[device]` fields (`baud`, the timeouts, `pipeline`) for itself.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, RawDevice};
use crate::link::LinkSettings;

/// The `path` that means the in-process virtual board.
pub const VIRTUAL: &str = "virtual";

/// Longest board name (it becomes a metric label and a CLI argument).
const MAX_NAME: usize = 32;

/// Where a board is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Place {
    /// A serial device (USB CDC-ACM, a UART adapter, a pty), opened again on every reconnect.
    Serial(PathBuf),
    /// The in-process virtual board; its directory under the home: `virtual-board` for the
    /// single `[device]` form (and no `[device]` at all), `virtual-boards/<name>` for a
    /// `[[device]]` entry.
    Virtual(PathBuf),
}

/// One configured board.
#[derive(Clone, Debug)]
pub struct BoardConfig {
    /// Its name: `[[device]] name`; `board` for the single `[device]` form (or its `name`),
    /// `virtual` when no board is configured.
    pub name: String,
    /// Where it is.
    pub place: Place,
    /// Baud rate (UARTs; USB ignores it).
    pub baud: u32,
    /// How its link behaves.
    pub link: LinkSettings,
}

/// `device` as written: a table or an array of tables.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawDevices {
    /// `[device]`.
    One(toml::Table),
    /// `[[device]]`.
    Many(Vec<toml::Table>),
}

/// Validate the boards (`path` names the file in errors).
pub fn boards(raw: Option<RawDevices>, path: &Path) -> Result<Vec<BoardConfig>, ConfigError> {
    let field = |field: String, message: String| ConfigError::Field {
        path: path.to_path_buf(),
        field,
        message,
    };
    let entry = |table: toml::Table, at: &str| -> Result<RawDevice, ConfigError> {
        RawDevice::deserialize(toml::Value::Table(table))
            .map_err(|e| field(at.to_string(), e.message().to_string()))
    };
    match raw {
        None => Ok(vec![board(RawDevice::default(), None, "device", &field)?]),
        Some(RawDevices::One(table)) => {
            let raw = entry(table, "device")?;
            let name = raw.name.clone();
            Ok(vec![board(raw, name, "device", &field)?])
        }
        Some(RawDevices::Many(tables)) => {
            if tables.is_empty() {
                return Err(field(
                    "device".into(),
                    "an empty list: give one [[device]] table per board".into(),
                ));
            }
            let mut boards: Vec<BoardConfig> = Vec::new();
            for (i, table) in tables.into_iter().enumerate() {
                let at = format!("device[{i}]");
                let raw = entry(table, &at)?;
                let Some(name) = raw.name.clone() else {
                    return Err(field(
                        format!("{at}.name"),
                        "required when several boards are configured ([[device]])".into(),
                    ));
                };
                if raw.path.is_none() {
                    return Err(field(
                        format!("{at}.path"),
                        format!("required: a serial device, or \"{VIRTUAL}\""),
                    ));
                }
                let board = board(raw, Some(name), &at, &field)?;
                if let Some(other) = boards.iter().position(|b| b.name == board.name) {
                    return Err(field(
                        format!("{at}.name"),
                        format!("`{}' is already the name of device[{other}]", board.name),
                    ));
                }
                if let Some(other) = boards.iter().position(|b| b.place == board.place) {
                    return Err(field(
                        format!("{at}.path"),
                        format!("device[{other}] is the same board"),
                    ));
                }
                boards.push(board);
            }
            Ok(boards)
        }
    }
}

fn board(
    raw: RawDevice,
    name: Option<String>,
    at: &str,
    field: &dyn Fn(String, String) -> ConfigError,
) -> Result<BoardConfig, ConfigError> {
    let single = at == "device";
    let place = match &raw.path {
        Some(p) if p.as_os_str() == VIRTUAL => Place::Virtual(match (&name, single) {
            (Some(n), false) => PathBuf::from("virtual-boards").join(n),
            _ => PathBuf::from("virtual-board"),
        }),
        Some(p) => Place::Serial(p.clone()),
        None => Place::Virtual(PathBuf::from("virtual-board")),
    };
    let name = name.unwrap_or_else(|| match place {
        Place::Virtual(_) if raw.path.is_none() => VIRTUAL.to_string(),
        _ => "board".to_string(),
    });
    let good = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !good {
        return Err(field(
            format!("{at}.name"),
            format!("`{name}' is not a board name: 1 to {MAX_NAME} letters, digits, `-' or `_'"),
        ));
    }
    let pipeline = raw.pipeline.unwrap_or(8);
    if !(1..=64).contains(&pipeline) {
        return Err(field(
            format!("{at}.pipeline"),
            format!("{pipeline} is outside 1..=64"),
        ));
    }
    let ms = |v: Option<u64>, default: u64| Duration::from_millis(v.unwrap_or(default));
    Ok(BoardConfig {
        name,
        place,
        baud: raw.baud.unwrap_or(115_200),
        link: LinkSettings {
            response_timeout: ms(raw.response_timeout_ms, 2000),
            request_timeout: ms(raw.request_timeout_ms, 5000),
            pipeline,
            refresh_keys: true,
            confirm_timeout: ms(raw.confirm_timeout_ms, 35_000),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::super::{Config, ConfigError};
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("pawl.toml"))
    }

    fn field_of(text: &str) -> String {
        match parse(text) {
            Err(ConfigError::Field { field, .. }) => field,
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn one_board_forms_keep_working() {
        let none = parse("").expect("no [device]");
        assert_eq!(none.boards.len(), 1);
        assert_eq!(none.boards[0].name, "virtual");
        assert_eq!(none.boards[0].place, Place::Virtual("virtual-board".into()));
        let one = parse("[device]\npath = \"/dev/ttyACM0\"\npipeline = 2\n").expect("[device]");
        assert_eq!(one.boards[0].name, "board");
        assert_eq!(one.boards[0].place, Place::Serial("/dev/ttyACM0".into()));
        assert_eq!(one.boards[0].link.pipeline, 2);
    }

    #[test]
    fn several_boards_each_with_a_name_and_their_own_settings() {
        let config = parse(
            "[[device]]\nname = \"left\"\npath = \"/dev/pts/3\"\nrequest_timeout_ms = 900\n\n\
             [[device]]\nname = \"try-out\"\npath = \"virtual\"\n",
        )
        .expect("two boards");
        let names: Vec<&str> = config.boards.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["left", "try-out"]);
        assert_eq!(config.boards[0].link.request_timeout.as_millis(), 900);
        assert_eq!(config.boards[1].link.request_timeout.as_millis(), 5000);
        assert_eq!(
            config.boards[1].place,
            Place::Virtual(PathBuf::from("virtual-boards/try-out"))
        );
    }

    #[test]
    fn errors_name_the_board_entry_and_field() {
        let one = "[[device]]\nname = \"a\"\npath = \"/dev/pts/1\"\n";
        assert_eq!(
            field_of(&format!("{one}[[device]]\npath = \"/dev/pts/2\"\n")),
            "device[1].name"
        );
        assert_eq!(
            field_of(&format!(
                "{one}[[device]]\nname = \"a\"\npath = \"/dev/pts/2\"\n"
            )),
            "device[1].name"
        );
        assert_eq!(
            field_of(&format!(
                "{one}[[device]]\nname = \"b\"\npath = \"/dev/pts/1\"\n"
            )),
            "device[1].path"
        );
        assert_eq!(
            field_of(&format!("{one}[[device]]\nname = \"b\"\n")),
            "device[1].path"
        );
        assert_eq!(
            field_of(&format!(
                "{one}[[device]]\nname = \"b c\"\npath = \"virtual\"\n"
            )),
            "device[1].name"
        );
        assert_eq!(
            field_of(&format!(
                "{one}[[device]]\nname = \"b\"\npath = \"virtual\"\npipeline = 0\n"
            )),
            "device[1].pipeline"
        );
        assert_eq!(
            field_of(&format!(
                "{one}[[device]]\nname = \"b\"\npath = \"virtual\"\nspeed = 1\n"
            )),
            "device[1]"
        );
    }
}
