//! Which board answers for a key, and when none may ([`super`] has the rules).

use axum::http::StatusCode;
use pawl_core::keys::PublicKeyHash;
use pawl_core::protocol::{Duty, KeyInfo};

use super::{Board, Boards};
use crate::http::ApiError;

/// A key that two or more boards could sign with at one level.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// The key.
    pub pkh: PublicKeyHash,
    /// The boards holding a live copy whose levels overlap another's, in configuration order.
    pub boards: Vec<String>,
}

/// Why no board is asked.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// Every board's key list is known and none holds the key.
    #[error("unknown key {pkh}: no board holds it (boards: {boards})")]
    Unknown {
        /// The key.
        pkh: PublicKeyHash,
        /// Every board's name.
        boards: String,
    },
    /// No board that answered holds the key, and some have not answered yet.
    #[error(
        "key {pkh} is on no board that answered; board {silent} has not listed its keys yet (not connected)"
    )]
    NotListedYet {
        /// The key.
        pkh: PublicKeyHash,
        /// The boards whose key lists are unknown, quoted.
        silent: String,
    },
    /// Two live copies of the key.
    #[error(
        "key {} is active on boards {} at the same levels: two live copies of one key could sign twice; every signature by it is refused until all but one copy are on standby (`pawl keys standby --board NAME`), handed off (`keys retire --above L` on one, `keys activate --from-level L+1` on the other) or removed",
        .0.pkh, quoted(&.0.boards)
    )]
    TwoLiveCopies(Conflict),
}

impl From<RouteError> for ApiError {
    fn from(e: RouteError) -> Self {
        let (status, outcome) = match &e {
            RouteError::Unknown { .. } => (StatusCode::NOT_FOUND, "unknown_key"),
            RouteError::NotListedYet { .. } => {
                (StatusCode::SERVICE_UNAVAILABLE, "board_unavailable")
            }
            RouteError::TwoLiveCopies(_) => (StatusCode::SERVICE_UNAVAILABLE, "duplicate_key"),
        };
        ApiError::new(status, outcome, e.to_string())
    }
}

fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}'"))
        .collect::<Vec<_>>()
        .join(" and ")
}

/// The levels a copy may sign consensus requests at (inclusive).
fn window(duty: &Duty) -> (u32, u32) {
    (
        duty.from_level.unwrap_or(0),
        duty.until_level.unwrap_or(u32::MAX),
    )
}

fn overlap(a: &Duty, b: &Duty) -> bool {
    let (a, b) = (window(a), window(b));
    a.0 <= b.1 && b.0 <= a.1
}

/// The boards among `live` whose copy overlaps another's; empty when none does.
fn overlapping(live: &[(&Board, KeyInfo)]) -> Vec<String> {
    live.iter()
        .enumerate()
        .filter(|(i, (_, k))| {
            live.iter()
                .enumerate()
                .any(|(j, (_, other))| *i != j && overlap(&k.duty, &other.duty))
        })
        .map(|(_, (b, _))| b.name.clone())
        .collect()
}

fn unlisted<'a>(boards: &'a Boards, pkh: &PublicKeyHash) -> Result<&'a Board, RouteError> {
    if let [only] = boards.all() {
        // One board: it answers for every key, as before there were several (an unknown key
        // is its refusal, 404).
        return Ok(only);
    }
    let silent: Vec<String> = boards
        .all()
        .iter()
        .filter(|b| b.link.view().connects == 0)
        .map(|b| format!("`{}'", b.name))
        .collect();
    if silent.is_empty() {
        Err(RouteError::Unknown {
            pkh: *pkh,
            boards: boards.names(),
        })
    } else {
        Err(RouteError::NotListedYet {
            pkh: *pkh,
            silent: silent.join(", "),
        })
    }
}

pub(super) fn for_signing<'a>(
    boards: &'a Boards,
    pkh: &PublicKeyHash,
    level: Option<u32>,
) -> Result<&'a Board, RouteError> {
    let holders = boards.holders(pkh);
    let Some((first, _)) = holders.first() else {
        return unlisted(boards, pkh);
    };
    let live: Vec<(&Board, KeyInfo)> = holders
        .iter()
        .filter(|(_, k)| !k.duty.standby)
        .map(|(b, k)| (*b, k.clone()))
        .collect();
    match live.as_slice() {
        // Every copy on standby: the board refuses (403, standby) and says so.
        [] => Ok(first),
        [(only, _)] => Ok(only),
        _ => {
            let clash = overlapping(&live);
            if !clash.is_empty() {
                return Err(RouteError::TwoLiveCopies(Conflict {
                    pkh: *pkh,
                    boards: clash,
                }));
            }
            // Disjoint windows (a hand-off): the board whose window holds the level; a request
            // without a level, or at a level no window holds, goes to the newest copy (the
            // highest first level), which refuses what its duty does not cover.
            let holding = level.and_then(|l| {
                live.iter().find(|(_, k)| {
                    let (from, until) = window(&k.duty);
                    (from..=until).contains(&l)
                })
            });
            let newest = live.iter().max_by_key(|(_, k)| window(&k.duty).0);
            Ok(holding.or(newest).map_or(*first, |(b, _)| *b))
        }
    }
}

pub(super) fn for_reading<'a>(
    boards: &'a Boards,
    pkh: &PublicKeyHash,
) -> Result<&'a Board, RouteError> {
    let holders = boards.holders(pkh);
    let connected = holders.iter().find(|(b, _)| b.link.view().connected);
    match connected.or(holders.first()) {
        Some((b, _)) => Ok(b),
        None => unlisted(boards, pkh),
    }
}

pub(super) fn conflicts(boards: &Boards) -> Vec<Conflict> {
    let mut seen: Vec<PublicKeyHash> = Vec::new();
    let mut found = Vec::new();
    for board in boards.all() {
        for key in board.link.view().keys {
            if seen.contains(&key.pkh) {
                continue;
            }
            seen.push(key.pkh);
            let live: Vec<(&Board, KeyInfo)> = boards
                .holders(&key.pkh)
                .into_iter()
                .filter(|(_, k)| !k.duty.standby)
                .collect();
            let clash = overlapping(&live);
            if !clash.is_empty() {
                found.push(Conflict {
                    pkh: key.pkh,
                    boards: clash,
                });
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn duty(standby: bool, from: Option<u32>, until: Option<u32>) -> Duty {
        Duty {
            standby,
            from_level: from,
            until_level: until,
            ..Duty::default()
        }
    }

    #[test]
    fn windows_overlap_unless_a_hand_off_separates_them() {
        let open = duty(false, None, None);
        assert!(overlap(&open, &open));
        // Retired at 100 alone: the other copy still signs 0..=100 too.
        assert!(overlap(&duty(false, None, Some(100)), &open));
        // The hand-off: ..=100 and 101..
        assert!(!overlap(
            &duty(false, None, Some(100)),
            &duty(false, Some(101), None)
        ));
        assert!(overlap(
            &duty(false, None, Some(101)),
            &duty(false, Some(101), None)
        ));
    }
}
