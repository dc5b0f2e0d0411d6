//! Routing between boards (`pawl_bridge::boards`), on two in-process virtual boards: a key on
//! one board goes there; the same key live on both is refused naming both; standby and a
//! hand-off (retired at L, active from L + 1) resolve it, the hand-off routing by level.

mod support;

use std::time::{Duration, Instant};

use pawl_bridge::boards::{Board, Boards, RouteError};
use pawl_bridge::link::Link;
use pawl_core::keys::PublicKeyHash;
use pawl_core::policy::Policy;
use pawl_core::protocol::{Duty, Request, Response};
use support::*;

fn set_duty(link: &Link, pkh: &PublicKeyHash, duty: Duty) {
    let reply = link
        .ask_blocking(&Request::SetDuty { pkh: *pkh, duty })
        .expect("link");
    assert!(
        matches!(reply.response, Response::KeyInfo(_)),
        "{:?}",
        reply.response
    );
}

/// Wait until `board` lists `pkh` with `duty` (the link updates its list from the answer).
fn listed(boards: &Boards, board: &str, pkh: &PublicKeyHash) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let link = &boards.by_name(board).expect("board").link;
    while link.cached_key(pkh).is_none() {
        assert!(Instant::now() < deadline, "{board} never listed {pkh}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn route(boards: &Boards, pkh: &PublicKeyHash, level: Option<u32>) -> Result<String, String> {
    boards
        .for_signing(pkh, level)
        .map(|b| b.name.clone())
        .map_err(|e| e.to_string())
}

#[test]
fn keys_route_to_their_board_and_two_live_copies_are_refused_until_resolved() {
    let (da, db) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let (a, b) = (virtual_link(da.path()), virtual_link(db.path()));
    let only_a = PublicKeyHash::from_b58(&import(&a, PYTEZOS_SK, Policy::default())).expect("pkh");
    let twice = PublicKeyHash::from_b58(&import(&a, SIGNATORY_SK, Policy::default())).expect("pkh");
    let boards = Boards::new(vec![
        Board {
            name: "a".into(),
            link: a.clone(),
        },
        Board {
            name: "b".into(),
            link: b.clone(),
        },
    ]);
    listed(&boards, "a", &twice);
    assert_eq!(route(&boards, &only_a, Some(10)), Ok("a".into()));
    assert_eq!(route(&boards, &twice, Some(10)), Ok("a".into()));
    assert!(boards.conflicts().is_empty());
    // A key no board holds (b has not connected yet: its keys are unknown, so 503; then 404).
    let nobody = PublicKeyHash::from_b58("tz1burnburnburnburnburnburnburjAYjjX").expect("pkh");
    assert!(matches!(
        boards.for_signing(&nobody, None),
        Err(RouteError::NotListedYet { .. })
    ));

    // The same key on b, live: refused on both, naming both.
    import(&b, SIGNATORY_SK, Policy::default());
    listed(&boards, "b", &twice);
    let refused = route(&boards, &twice, Some(10)).expect_err("two live copies");
    assert!(refused.contains("`a' and `b'"), "{refused}");
    assert!(matches!(
        boards.for_signing(&nobody, None),
        Err(RouteError::Unknown { .. })
    ));
    let conflicts = boards.conflicts();
    assert_eq!(conflicts.len(), 1);
    assert_eq!(conflicts[0].boards, ["a", "b"]);
    // Other keys are not affected; the public key is still served.
    assert_eq!(route(&boards, &only_a, Some(10)), Ok("a".into()));
    assert_eq!(
        boards.for_reading(&twice).map(|b| b.name.clone()).ok(),
        Some("a".into())
    );

    // Retiring a's copy at 100 alone leaves b's open copy overlapping it.
    let retired = Duty {
        until_level: Some(100),
        ..Duty::default()
    };
    set_duty(&a, &twice, retired);
    assert!(route(&boards, &twice, Some(10)).is_err());
    // The hand-off: b from 101. Each level goes to the board whose window holds it.
    set_duty(
        &b,
        &twice,
        Duty {
            from_level: Some(101),
            ..Duty::default()
        },
    );
    assert_eq!(route(&boards, &twice, Some(100)), Ok("a".into()));
    assert_eq!(route(&boards, &twice, Some(101)), Ok("b".into()));
    assert_eq!(route(&boards, &twice, None), Ok("b".into()));
    assert!(boards.conflicts().is_empty());

    // Standby on b with a active everywhere again: a signs, nothing is flagged.
    set_duty(&a, &twice, Duty::default());
    assert!(route(&boards, &twice, Some(10)).is_err());
    set_duty(
        &b,
        &twice,
        Duty {
            standby: true,
            ..Duty::default()
        },
    );
    assert_eq!(route(&boards, &twice, Some(500)), Ok("a".into()));
    assert!(boards.conflicts().is_empty());
}

/// The control socket relays to the board a connection names; an unknown name, or no name
/// while there are several boards, gets nothing.
#[test]
fn the_control_socket_relays_to_the_board_named() {
    use pawl_bridge::link::{ControlConnector, LinkSettings};
    let (da, db) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let (a, b) = (virtual_link(da.path()), virtual_link(db.path()));
    let on_b = import(&b, SIGNATORY_SK, Policy::default());
    let boards = Boards::new(vec![
        Board {
            name: "a".into(),
            link: a,
        },
        Board {
            name: "b".into(),
            link: b,
        },
    ]);
    let home = tempfile::tempdir().expect("home");
    let socket = pawl_bridge::control::socket_path(home.path());
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let listener = runtime
        .block_on(async { pawl_bridge::control::bind(&socket) })
        .expect("bind");
    runtime.spawn(pawl_bridge::control::serve(listener, boards, None));
    let settings = LinkSettings {
        request_timeout: Duration::from_millis(800),
        response_timeout: Duration::from_millis(400),
        refresh_keys: false,
        ..LinkSettings::default()
    };
    let keys_of = |name: &str| -> Result<Vec<String>, String> {
        let link = Link::start(
            Box::new(ControlConnector::new(&socket, name)),
            settings.clone(),
        );
        let reply = link
            .ask_blocking(&Request::ListKeys)
            .map_err(|e| e.to_string())?;
        match reply.response {
            Response::Keys(keys) => Ok(keys.iter().map(|k| k.pkh.to_b58().to_string()).collect()),
            other => Err(format!("{other:?}")),
        }
    };
    assert_eq!(keys_of("b"), Ok(vec![on_b]));
    assert_eq!(keys_of("a"), Ok(vec![]));
    assert!(keys_of("c").is_err());
    assert!(keys_of("").is_err());
}
