//! Moving high watermarks between pawl and other signers (docs/protocol.md §9).
//!
//! One module per format: [`octez`] (octez-signer's `*_high_watermarks` files) and
//! [`signatory`] (Signatory's `watermark_v2/<chain>.json`). Each parses a directory into a
//! list of [`FileMark`]s, or renders a list of board marks into the files that signer reads.
//! Parsing checks every file and entry before anything touches the board: an error names the
//! file and the entry. [`fold`] keeps the highest mark per (chain, key, kind) and [`plan`]
//! compares them with the board's marks; [`cli`] runs the two commands.

pub mod cli;
pub mod octez;
pub mod signatory;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use pawl_core::protocol::WatermarkEntry;
use pawl_core::watermark::MarkKind;
use pawl_core::{keys::PublicKeyHash, request::ChainId};

/// One mark read from another signer's files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileMark {
    /// Chain, key, kind and position.
    pub mark: WatermarkEntry,
    /// Where it was read: `<file>: <chain> <pkh> [<kind>]`.
    pub origin: String,
}

/// A file's text as a JSON value, or an error naming the file.
pub(crate) fn read_json(path: &Path) -> anyhow::Result<serde_json::Value> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", path.display()))?;
    serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}: malformed JSON: {e}", path.display()))
}

/// An error about one entry of one file.
pub(crate) fn entry_error(origin: &str, why: impl fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("{origin}: {why}; nothing was imported")
}

/// A chain id from its `Net…` text.
pub(crate) fn parse_chain(text: &str) -> Result<ChainId, String> {
    ChainId::from_b58(text).map_err(|e| format!("bad chain id {text:?}: {e:?}"))
}

/// A key hash from its `tz1…`–`tz4…` text.
pub(crate) fn parse_pkh(text: &str) -> Result<PublicKeyHash, String> {
    PublicKeyHash::from_b58(text).map_err(|e| format!("bad key hash {text:?}: {e:?}"))
}

/// A level or round as the other signers store it (a signed 32-bit integer), read as the
/// board's unsigned form: negative or non-integer values are refused.
pub(crate) fn parse_position(value: &serde_json::Value, field: &str) -> Result<u32, String> {
    let n = value
        .as_i64()
        .ok_or_else(|| format!("{field} is not an integer: {value}"))?;
    if !(0..=i64::from(i32::MAX)).contains(&n) {
        return Err(format!("{field} {n} is outside 0..=2147483647"));
    }
    u32::try_from(n).map_err(|_| format!("{field} {n} is out of range"))
}

/// Marks after folding: one per (chain, key, kind), the highest; the others are skipped.
#[derive(Debug, Default)]
pub struct Folded {
    /// The highest mark of each (chain, key, kind), in (chain, key, kind) order.
    pub marks: Vec<FileMark>,
    /// Lower marks of the same (chain, key, kind) (e.g. Signatory's `attestation_with_dal`
    /// below its `attestation`), with the mark that wins. Equal duplicates are not listed.
    pub skipped: Vec<(FileMark, String)>,
}

type Slot = ([u8; 4], PublicKeyHash, MarkKind);

fn slot(m: &WatermarkEntry) -> Slot {
    (m.chain.0, m.pkh, m.kind)
}

/// Keep the highest (level, round) of each (chain, key, kind).
pub fn fold(all: Vec<FileMark>) -> Folded {
    let mut best: BTreeMap<Slot, FileMark> = BTreeMap::new();
    let mut lower: Vec<FileMark> = Vec::new();
    for m in all {
        match best.get_mut(&slot(&m.mark)) {
            None => {
                best.insert(slot(&m.mark), m);
            }
            Some(held) => {
                let (new, old) = (position(&m.mark), position(&held.mark));
                if new > old {
                    lower.push(std::mem::replace(held, m));
                } else if new < old {
                    lower.push(m);
                }
            }
        }
    }
    let skipped = lower
        .into_iter()
        .map(|m| {
            let winner = &best[&slot(&m.mark)];
            let why = format!(
                "skipped: {} is higher ({})",
                winner.origin,
                show_position(position(&winner.mark))
            );
            (m, why)
        })
        .collect();
    Folded {
        marks: best.into_values().collect(),
        skipped,
    }
}

/// (level, round).
pub fn position(m: &WatermarkEntry) -> (u32, u32) {
    (m.level, m.round)
}

/// `level L round R`, or `level L all rounds` for the board's whole-level form (round
/// `u32::MAX`: a mark restored from its ceiling, or a mark without a round).
pub fn show_position((level, round): (u32, u32)) -> String {
    if round == u32::MAX {
        format!("level {level} all rounds")
    } else {
        format!("level {level} round {round}")
    }
}

/// What an import does with one mark.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// The board's mark moves up to the file's (or is created).
    Raise,
    /// The board's mark is at or above the file's: nothing to do (the board is raise-only).
    Kept,
}

/// One mark of an import, against the board.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Planned {
    /// The file's mark.
    pub file: FileMark,
    /// The board's mark for the same (chain, key, kind), if any.
    pub board: Option<(u32, u32)>,
    /// What the import does.
    pub action: Action,
}

/// Compare folded marks with the board's: every key must be held by the board, and the new
/// entries must fit in its table. Nothing is asked of the board here.
pub fn plan(
    marks: &[FileMark],
    board: &[WatermarkEntry],
    held: &[PublicKeyHash],
    free_entries: usize,
) -> anyhow::Result<Vec<Planned>> {
    let mut out = Vec::with_capacity(marks.len());
    for m in marks {
        if !held.contains(&m.mark.pkh) {
            return Err(entry_error(
                &m.origin,
                format!(
                    "the board does not hold key {}; import the key first (`pawl keys import`)",
                    m.mark.pkh.to_b58().as_str()
                ),
            ));
        }
        let current = board
            .iter()
            .find(|b| slot(b) == slot(&m.mark))
            .map(position);
        let action = match current {
            Some(c) if c >= position(&m.mark) => Action::Kept,
            _ => Action::Raise,
        };
        out.push(Planned {
            file: m.clone(),
            board: current,
            action,
        });
    }
    let new = out.iter().filter(|p| p.board.is_none()).count();
    if new > free_entries {
        anyhow::bail!(
            "the import needs {new} new watermark entries but the board has room for {free_entries}; nothing was imported"
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const TZ1: &str = "tz1LggX2HUdvJ1tF4Fvv8fjsrzLeW4Jr9t2Q";
    pub(crate) const NET: &str = "NetXo5iVw1vBoxM";

    fn mark(kind: MarkKind, level: u32, round: u32, origin: &str) -> FileMark {
        FileMark {
            mark: WatermarkEntry {
                chain: parse_chain(NET).expect("chain"),
                pkh: parse_pkh(TZ1).expect("pkh"),
                kind,
                level,
                round,
            },
            origin: origin.into(),
        }
    }

    #[test]
    fn fold_keeps_the_highest_and_lists_the_lower() {
        let f = fold(vec![
            mark(MarkKind::Attestation, 10, 0, "a"),
            mark(MarkKind::Attestation, 12, 1, "b"),
            mark(MarkKind::Attestation, 12, 1, "c"),
            mark(MarkKind::Block, 3, 0, "d"),
        ]);
        assert_eq!(f.marks.len(), 2);
        let att = f
            .marks
            .iter()
            .find(|m| m.mark.kind == MarkKind::Attestation)
            .expect("attestation");
        assert_eq!(
            (att.mark.level, att.mark.round, att.origin.as_str()),
            (12, 1, "b")
        );
        assert_eq!(f.skipped.len(), 1, "{:?}", f.skipped);
        assert_eq!(f.skipped[0].0.origin, "a");
        assert!(f.skipped[0].1.contains("b is higher"), "{}", f.skipped[0].1);
    }

    #[test]
    fn plan_refuses_a_key_the_board_does_not_hold_and_keeps_higher_board_marks() {
        let m = [
            mark(MarkKind::Block, 5, 0, "f: block"),
            mark(MarkKind::Attestation, 7, 0, "f: att"),
        ];
        let err = plan(&m, &[], &[], 10).expect_err("no key");
        assert!(err.to_string().contains("f: block"), "{err}");
        assert!(err.to_string().contains("does not hold key"), "{err}");
        let pkh = m[0].mark.pkh;
        let board = [WatermarkEntry {
            level: 9,
            ..m[1].mark
        }];
        let p = plan(&m, &board, &[pkh], 10).expect("plan");
        assert_eq!(p[0].action, Action::Raise);
        assert_eq!(p[0].board, None);
        assert_eq!(p[1].action, Action::Kept);
        assert_eq!(p[1].board, Some((9, 0)));
        // Equal is kept too: the board refuses a value at its mark.
        let board = [m[1].mark];
        assert_eq!(
            plan(&m, &board, &[pkh], 10).expect("plan")[1].action,
            Action::Kept
        );
        // One new entry, no room.
        let err = plan(&m, &board, &[pkh], 0).expect_err("full");
        assert!(err.to_string().contains("room for 0"), "{err}");
    }

    #[test]
    fn positions_must_be_non_negative_int32() {
        assert_eq!(parse_position(&serde_json::json!(7), "level"), Ok(7));
        assert!(parse_position(&serde_json::json!(-1), "level").is_err());
        assert!(parse_position(&serde_json::json!(2147483648u64), "level").is_err());
        assert!(parse_position(&serde_json::json!(1.5), "level").is_err());
        assert!(parse_position(&serde_json::json!("7"), "level").is_err());
    }
}
