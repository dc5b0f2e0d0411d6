//! CometBFT requests (`core/src/board/cometbft.rs`, `core/src/cometbft/`): the sign bytes read
//! from vectors tendermint-rs wrote (`core/tests/fixtures/cometbft/`), FilePV's
//! height/round/step rule, the chain pin and the Cosmos role, vote extensions — every
//! signature checked with OpenSSL against the key's public key, and every refusal leaving the
//! board as it was.

mod support;

use pawl_core::cometbft;
use pawl_core::keys::{PublicKey, PublicKeyHash};
use pawl_core::policy::Policy;
use pawl_core::protocol::cometbft::{
    CometError, CometMark, CometResponse, SignBytesError, Step, Timestamp,
};
use pawl_core::protocol::{Duty, Mode, OffDuty, Refusal, Request, Response, Role};
use pawl_core::store::MemoryStore;
use support::board::{TestBoard, attestation, board, import, sign};
use support::cometbft::{
    CHAIN, SECONDS, patched, proposal, set_chain, state, v, vectors, verifies, vote,
};

const TZ1: &str = "edsk4FTF78Qf1m2rykGpHqostAiq5gYW4YZEoGUSWBTJr2njsDHSnd";
const TZ2: &str = "spsk1zkqrmst1yg2c4xi3crWcZPqgdc9KtPtb9SAZWYHAdiQzdHy7j";

/// A board with TZ1 made a Cosmos key of `cosmoshub-4`.
fn cosmos() -> (TestBoard, PublicKeyHash, PublicKey) {
    let mut b = board(MemoryStore::new(), Mode::Provisioning);
    let (pkh, pk) = import(&mut b, TZ1, Policy::default());
    match set_chain(&mut b, &pkh, CHAIN) {
        Response::KeyInfo(info) => assert_eq!(info.duty.role, Role::Cosmos),
        other => panic!("set chain: {other:?}"),
    }
    (b, pkh, pk)
}

/// What a refusal must leave as it was: marks in RAM, stored records, mark writes, and the
/// key's CometBFT state as the board reports it.
fn snapshot(b: &mut TestBoard, pkh: &PublicKeyHash) -> (Vec<String>, Vec<String>, u32, String) {
    let (marks, stored, writes) = support::board::memory_state(b);
    (marks, stored, writes, format!("{:?}", state(b, pkh)))
}

fn refused(b: &mut TestBoard, pkh: &PublicKeyHash, name: &str, want: Refusal) {
    let before = snapshot(b, pkh);
    assert_eq!(vote(b, pkh, &v(name), None), Err(want), "{name}");
    assert_eq!(
        snapshot(b, pkh),
        before,
        "{name}: a refusal changed the board"
    );
}

fn double_sign(height: u32, round: u32, step: Step) -> Refusal {
    Refusal::CometBft(CometError::DoubleSign {
        height,
        round,
        step,
    })
}

#[test]
fn the_reader_reads_what_tendermint_rs_wrote() {
    for (name, bytes) in vectors() {
        let parts: Vec<&str> = name.split('_').collect();
        let read = match parts[0] {
            "prevote" | "precommit" => cometbft::vote(&bytes),
            "proposal" => cometbft::proposal(&bytes),
            "extension" => {
                let e = cometbft::extension(&bytes).expect(&name);
                let want: (u32, u32) = (
                    parts[1].parse().expect("test vector"),
                    parts[2].parse().expect("test vector"),
                );
                assert_eq!((e.height, e.round), want, "{name}");
                let chain = if name.ends_with("other_chain") {
                    "osmosis-1"
                } else {
                    CHAIN
                };
                assert_eq!(e.chain_id, chain.as_bytes(), "{name}");
                continue;
            }
            other => panic!("vector kind {other}"),
        };
        match (parts[1], parts.get(2)) {
            ("over", _) => {
                let want = if parts[2] == "height" {
                    CometError::HeightOutOfRange
                } else {
                    CometError::RoundOutOfRange
                };
                assert_eq!(read, Err(want), "{name}");
            }
            ("max", _) => {
                let s = read.expect(&name);
                if parts[2] == "height" {
                    assert_eq!((s.height, s.round), (u32::MAX, 0));
                } else {
                    assert_eq!((s.height, s.round), (300, (1 << 30) - 1));
                }
            }
            (height, Some(round)) => {
                let s = read.expect(&name);
                let step = match parts[0] {
                    "prevote" => Step::Prevote,
                    "precommit" => Step::Precommit,
                    _ => Step::Propose,
                };
                assert_eq!(s.step, step, "{name}");
                assert_eq!(
                    s.height,
                    height.parse::<u32>().expect("test vector"),
                    "{name}"
                );
                assert_eq!(
                    s.round,
                    round.parse::<u32>().expect("test vector"),
                    "{name}"
                );
                assert_eq!(s.for_block, !name.ends_with("nil"), "{name}");
                assert_eq!(s.timestamp.seconds, SECONDS, "{name}");
                let nanos = match () {
                    _ if name.ends_with("later") => {
                        [500, 900, 700][["prevote", "precommit", "proposal"]
                            .iter()
                            .position(|k| *k == parts[0])
                            .expect("test vector")]
                    }
                    _ => 0,
                };
                assert_eq!(s.timestamp.nanos, nanos, "{name}");
                let chain = if name.ends_with("other_chain") {
                    "osmosis-1"
                } else {
                    CHAIN
                };
                assert_eq!(s.chain_id, chain.as_bytes(), "{name}");
            }
            _ => panic!("vector name {name}"),
        }
    }
    // A vote is not a proposal, nor the other way round.
    let wrong = Err(CometError::Parse(SignBytesError::WrongType));
    assert_eq!(cometbft::proposal(&v("prevote_100_0")), wrong);
    assert_eq!(cometbft::vote(&v("proposal_100_0")), wrong);
    // Same bytes without the timestamp: the later vote and the first agree, another block not.
    let digest = |name: &str| {
        cometbft::vote(&v(name))
            .expect("test vector")
            .without_timestamp
    };
    assert_eq!(digest("precommit_100_0"), digest("precommit_100_0_later"));
    assert_ne!(digest("precommit_100_0"), digest("precommit_100_0_nil"));
}

/// Non-canonical and hostile forms of a valid vote are refused.
#[test]
fn the_reader_refuses_what_no_encoder_writes() {
    let good = v("prevote_100_1");
    assert!(cometbft::vote(&good).is_ok());
    let body = &good[1..];
    let with = |body: &[u8]| {
        let mut out = vec![u8::try_from(body.len()).expect("test vector")];
        out.extend_from_slice(body);
        out
    };
    let parse = |e| Err(CometError::Parse(e));
    // Trailing byte, short length, empty.
    let mut trailing = good.clone();
    trailing.push(0);
    assert_eq!(cometbft::vote(&trailing), parse(SignBytesError::Length));
    assert_eq!(
        cometbft::vote(&good[..good.len() - 1]),
        parse(SignBytesError::Length)
    );
    assert_eq!(cometbft::vote(&[]), parse(SignBytesError::Length));
    // An unknown field (7, varint) at the end.
    let mut unknown = body.to_vec();
    unknown.extend_from_slice(&[0x38, 0x01]);
    assert_eq!(
        cometbft::vote(&with(&unknown)),
        parse(SignBytesError::Field { number: 7 })
    );
    // The height given twice (the second would win in a lax reader).
    let mut twice = body[..11].to_vec();
    twice.extend_from_slice(&body[2..11]);
    twice.extend_from_slice(&body[11..]);
    assert_eq!(
        cometbft::vote(&with(&twice)),
        parse(SignBytesError::Field { number: 2 })
    );
    // Fields out of order: round before height.
    let mut swapped = body[..2].to_vec();
    swapped.extend_from_slice(&body[11..20]);
    swapped.extend_from_slice(&body[2..11]);
    swapped.extend_from_slice(&body[20..]);
    assert_eq!(
        cometbft::vote(&with(&swapped)),
        parse(SignBytesError::Field { number: 2 })
    );
    // The type as an over-long varint (0x81 0x00 for 1).
    let mut long = vec![0x08, 0x81, 0x00];
    long.extend_from_slice(&body[2..]);
    assert_eq!(cometbft::vote(&with(&long)), parse(SignBytesError::Varint));
    // The height with the wrong wire type (varint instead of fixed64).
    let mut wire = body.to_vec();
    wire[2] = 0x10;
    assert!(cometbft::vote(&with(&wire)).is_err());
    // No timestamp at all.
    let ts = body.iter().position(|&b| b == 0x2a).expect("test vector");
    let mut no_ts = body[..ts].to_vec();
    no_ts.extend_from_slice(&body[ts + 8..]);
    assert_eq!(
        cometbft::vote(&with(&no_ts)),
        parse(SignBytesError::Missing { number: 5 })
    );
    // Every truncation of the message is refused, never a panic.
    for cut in 0..body.len() {
        assert!(cometbft::vote(&with(&body[..cut])).is_err(), "cut at {cut}");
    }
}

#[test]
fn votes_and_proposals_verify_under_the_key() {
    let (mut b, pkh, pk) = cosmos();
    let bytes = v("proposal_100_0");
    let (sig, ts) = proposal(&mut b, &pkh, &bytes).expect("proposal");
    assert!(verifies(&pk, &bytes, &sig));
    assert_eq!(ts, None);
    for name in ["prevote_100_0", "precommit_100_0"] {
        let bytes = v(name);
        let (sig, ts, ext) = vote(&mut b, &pkh, &bytes, None).expect(name);
        assert!(verifies(&pk, &bytes, &sig), "{name}");
        assert!(!verifies(&pk, &v("proposal_100_0"), &sig), "{name}");
        assert_eq!((ts, ext), (None, None));
    }
}

#[test]
fn height_then_round_then_step_only_go_up() {
    let (mut b, pkh, _) = cosmos();
    // One height: propose, prevote, precommit; then round 1; then height 101.
    proposal(&mut b, &pkh, &v("proposal_100_0")).expect("propose");
    vote(&mut b, &pkh, &v("prevote_100_0"), None).expect("prevote");
    vote(&mut b, &pkh, &v("precommit_100_0"), None).expect("precommit");
    // Step regression: a prevote after the precommit of the same round.
    let regression = |h, r, step, mh, mr| {
        Refusal::CometBft(CometError::Regression {
            height: h,
            round: r,
            step,
            mark_height: mh,
            mark_round: mr,
        })
    };
    refused(
        &mut b,
        &pkh,
        "prevote_100_0_other_block",
        regression(100, 0, Step::Prevote, 100, 0),
    );
    let before = snapshot(&mut b, &pkh);
    assert_eq!(
        proposal(&mut b, &pkh, &v("proposal_100_0_other_block")),
        Err(regression(100, 0, Step::Propose, 100, 0))
    );
    assert_eq!(snapshot(&mut b, &pkh), before);
    vote(&mut b, &pkh, &v("prevote_100_1"), None).expect("round 1");
    // Round regression.
    refused(
        &mut b,
        &pkh,
        "precommit_100_0_nil",
        regression(100, 0, Step::Precommit, 100, 1),
    );
    vote(&mut b, &pkh, &v("precommit_100_1"), None).expect("round 1 precommit");
    vote(&mut b, &pkh, &v("prevote_101_0"), None).expect("height 101");
    // Height regression, even at a higher round.
    refused(
        &mut b,
        &pkh,
        "prevote_99_5",
        regression(99, 5, Step::Prevote, 101, 0),
    );
    refused(
        &mut b,
        &pkh,
        "prevote_100_1",
        regression(100, 1, Step::Prevote, 101, 0),
    );
    match state(&mut b, &pkh) {
        Response::CometBft(CometResponse::State { chain_id, mark }) => {
            assert_eq!(chain_id.as_deref(), Some(CHAIN));
            assert_eq!(
                mark,
                Some(CometMark {
                    height: 101,
                    round: 0,
                    step: Some(Step::Prevote),
                    signed_here: true
                })
            );
        }
        other => panic!("state: {other:?}"),
    }
}

#[test]
fn a_retry_gets_the_recorded_signature_and_timestamp() {
    let (mut b, pkh, pk) = cosmos();
    let first = v("precommit_100_0");
    let (sig, _, _) = vote(&mut b, &pkh, &first, None).expect("precommit");
    let writes = support::board::memory_state(&b).2;
    // Identical: the same signature, no timestamp to adopt, nothing written.
    assert_eq!(vote(&mut b, &pkh, &first, None), Ok((sig, None, None)));
    // Only the timestamp differs: the recorded signature and the recorded timestamp, which is
    // what the signature covers.
    let later = v("precommit_100_0_later");
    let recorded = Timestamp {
        seconds: SECONDS,
        nanos: 0,
    };
    assert_eq!(
        vote(&mut b, &pkh, &later, None),
        Ok((sig, Some(recorded), None))
    );
    assert!(verifies(&pk, &first, &sig));
    assert!(!verifies(&pk, &later, &sig));
    assert_eq!(
        support::board::memory_state(&b).2,
        writes,
        "a retry writes nothing"
    );
    // Proposals alike.
    let (psig, _) = proposal(&mut b, &pkh, &v("proposal_101_0")).expect("proposal");
    assert_eq!(
        proposal(&mut b, &pkh, &v("proposal_101_0")),
        Ok((psig, None))
    );
    let (b2, pkh2, _) = cosmos();
    let mut b2 = b2;
    let (p0, _) = proposal(&mut b2, &pkh2, &v("proposal_100_0")).expect("proposal");
    assert_eq!(
        proposal(&mut b2, &pkh2, &v("proposal_100_0_later")),
        Ok((p0, Some(recorded)))
    );
}

#[test]
fn anything_else_at_the_same_position_is_a_double_sign() {
    let (mut b, pkh, _) = cosmos();
    vote(&mut b, &pkh, &v("prevote_100_0"), None).expect("prevote");
    refused(
        &mut b,
        &pkh,
        "prevote_100_0_other_block",
        double_sign(100, 0, Step::Prevote),
    );
    refused(
        &mut b,
        &pkh,
        "prevote_100_0_nil",
        double_sign(100, 0, Step::Prevote),
    );
    vote(&mut b, &pkh, &v("precommit_100_0_nil"), None).expect("precommit nil");
    refused(
        &mut b,
        &pkh,
        "precommit_100_0",
        double_sign(100, 0, Step::Precommit),
    );
    let (mut b, pkh, _) = cosmos();
    proposal(&mut b, &pkh, &v("proposal_100_0")).expect("proposal");
    let before = snapshot(&mut b, &pkh);
    assert_eq!(
        proposal(&mut b, &pkh, &v("proposal_100_0_other_block")),
        Err(double_sign(100, 0, Step::Propose))
    );
    assert_eq!(snapshot(&mut b, &pkh), before);
    // Patched heights and blocks (the vote template's layout): a conflict at any position.
    vote(&mut b, &pkh, &patched(&v("prevote_100_1"), 150, 3, 1), None).expect("150/3");
    assert_eq!(
        vote(&mut b, &pkh, &patched(&v("prevote_100_1"), 150, 3, 2), None),
        Err(double_sign(150, 3, Step::Prevote))
    );
}

#[test]
fn the_chain_is_pinned_and_the_roles_do_not_mix() {
    let mut b = board(MemoryStore::new(), Mode::Provisioning);
    let (tz1, _) = import(&mut b, TZ1, Policy::default());
    let (tz2, _) = import(&mut b, TZ2, Policy::default());
    // A Tezos key signs no CometBFT request.
    let before = snapshot(&mut b, &tz1);
    assert_eq!(
        vote(&mut b, &tz1, &v("prevote_100_0"), None),
        Err(Refusal::OffDuty(OffDuty::NotCosmos))
    );
    assert_eq!(snapshot(&mut b, &tz1), before);
    // Only tz1 takes the Cosmos role; chain ids are checked.
    assert_eq!(
        set_chain(&mut b, &tz2, CHAIN),
        Response::Refused(Refusal::CometBft(CometError::NotEd25519))
    );
    for bad in ["", "has space", &"x".repeat(51)] {
        assert_eq!(
            set_chain(&mut b, &tz1, bad),
            Response::Refused(Refusal::CometBft(CometError::BadChainId)),
            "{bad:?}"
        );
    }
    assert_eq!(snapshot(&mut b, &tz1), before);
    // SetDuty to Cosmos without a chain: refused for want of a chain.
    let duty = Duty {
        role: Role::Cosmos,
        ..Duty::default()
    };
    assert!(matches!(
        b.handle(Request::SetDuty { pkh: tz1, duty }),
        Response::KeyInfo(_)
    ));
    assert_eq!(
        vote(&mut b, &tz1, &v("prevote_100_0"), None),
        Err(Refusal::CometBft(CometError::NoChain))
    );
    assert!(matches!(
        set_chain(&mut b, &tz1, CHAIN),
        Response::KeyInfo(_)
    ));
    // Another chain's sign bytes.
    refused(
        &mut b,
        &tz1,
        "prevote_100_0_other_chain",
        Refusal::CometBft(CometError::WrongChain),
    );
    // A Cosmos key signs no Tezos request.
    assert_eq!(
        sign(
            &mut b,
            &tz1,
            &attestation([0x7a, 0x06, 0xa7, 0x70], 5, 0, 1)
        ),
        Err(Refusal::OffDuty(OffDuty::CosmosSignsCometBftOnly))
    );
    // Pinning is provisioning only.
    let mut op = board(b.into_store(), Mode::Operational);
    assert_eq!(
        set_chain(&mut op, &tz1, "osmosis-1"),
        Response::Refused(Refusal::ProvisioningOnly)
    );
    // The pin survives a restart, and the key signs.
    vote(&mut op, &tz1, &v("prevote_100_0"), None).expect("pinned after reboot");
}

#[test]
fn heights_and_rounds_out_of_range_are_refused() {
    let (mut b, pkh, _) = cosmos();
    let range = |e| Refusal::CometBft(e);
    refused(
        &mut b,
        &pkh,
        "prevote_over_height",
        range(CometError::HeightOutOfRange),
    );
    refused(
        &mut b,
        &pkh,
        "prevote_over_round",
        range(CometError::RoundOutOfRange),
    );
    vote(&mut b, &pkh, &v("prevote_max_round"), None).expect("round 2^30-1");
    vote(&mut b, &pkh, &v("prevote_max_height"), None).expect_err("jump guard");
}

#[test]
fn a_far_jump_needs_the_button() {
    let (mut b, pkh, _) = cosmos();
    vote(&mut b, &pkh, &v("prevote_100_0"), None).expect("prevote");
    let before = snapshot(&mut b, &pkh);
    match vote(&mut b, &pkh, &v("prevote_5000000_0"), None) {
        Err(Refusal::TooFarAhead {
            level, mark_level, ..
        }) => {
            assert_eq!((level, mark_level), (5_000_000, 100))
        }
        other => panic!("jump: {other:?}"),
    }
    assert_eq!(snapshot(&mut b, &pkh), before);
    vote(&mut b, &pkh, &v("prevote_200_0"), None).expect("a near height");
}

#[test]
fn extensions_are_signed_with_their_precommit_only() {
    let (mut b, pkh, pk) = cosmos();
    let ext = v("extension_100_0");
    let mismatch = Refusal::CometBft(CometError::ExtensionMismatch);
    // With a prevote, a nil precommit, or an extension of another height, round or chain.
    for (vote_name, ext_name) in [
        ("prevote_100_0", "extension_100_0"),
        ("precommit_100_0_nil", "extension_100_0"),
        ("precommit_100_0", "extension_101_0"),
        ("precommit_100_0", "extension_100_1"),
        ("precommit_100_0", "extension_100_0_other_chain"),
    ] {
        let before = snapshot(&mut b, &pkh);
        assert_eq!(
            vote(&mut b, &pkh, &v(vote_name), Some(&v(ext_name))),
            Err(mismatch),
            "{vote_name} + {ext_name}"
        );
        assert_eq!(snapshot(&mut b, &pkh), before);
    }
    // A vote's bytes are no extension.
    assert!(matches!(
        vote(
            &mut b,
            &pkh,
            &v("precommit_100_0"),
            Some(&v("precommit_100_0"))
        ),
        Err(Refusal::CometBft(CometError::Parse(_)))
    ));
    let (sig, _, ext_sig) =
        vote(&mut b, &pkh, &v("precommit_100_0"), Some(&ext)).expect("precommit + extension");
    let ext_sig = ext_sig.expect("extension signature");
    assert!(verifies(&pk, &v("precommit_100_0"), &sig));
    assert!(verifies(&pk, &ext, &ext_sig));
    // A retry re-signs the extension it carries (FilePV does), even another one.
    let other = v("extension_100_0_other");
    let (again, _, other_sig) =
        vote(&mut b, &pkh, &v("precommit_100_0"), Some(&other)).expect("retry");
    assert_eq!(again, sig);
    assert!(verifies(&pk, &other, &other_sig.expect("signed")));
    let empty = v("extension_100_0_empty");
    let (_, _, empty_sig) = vote(&mut b, &pkh, &v("precommit_100_0"), Some(&empty)).expect("empty");
    assert!(verifies(&pk, &empty, &empty_sig.expect("signed")));
}

#[test]
fn a_restart_refuses_up_to_the_persisted_mark() {
    let (mut b, pkh, _) = cosmos();
    vote(&mut b, &pkh, &v("prevote_100_0"), None).expect("prevote");
    let mut b = board(b.into_store(), Mode::Operational);
    // The board no longer knows what it signed at 100/0/prevote: even the identical request
    // is refused rather than answered from nothing.
    assert_eq!(
        vote(&mut b, &pkh, &v("prevote_100_0"), None),
        Err(Refusal::CometBft(CometError::NoRecord {
            height: 100,
            round: 0
        }))
    );
    vote(&mut b, &pkh, &v("precommit_100_0"), None).expect("the next step");
}

#[test]
fn forgetting_marks_keeps_the_pinned_chain() {
    use pawl_core::board::Board;
    use pawl_core::request::ChainId;
    use support::board::{INFO, SharedButton, TestEntropy};
    let button = SharedButton::default();
    button.press.set(true);
    let mut b = Board::open(
        MemoryStore::new(),
        TestEntropy(1),
        button,
        Mode::Provisioning,
        INFO,
    );
    // A Tezos policy pinned to mainnet: it names no CometBFT chain.
    let mut policy = Policy::default();
    policy
        .chains
        .push(ChainId([0x7a, 0x06, 0xa7, 0x70]))
        .expect("room");
    let (pkh, _) = import(&mut b, TZ1, policy);
    assert!(matches!(
        set_chain(&mut b, &pkh, "osmosis-1"),
        Response::KeyInfo(_)
    ));
    vote(&mut b, &pkh, &v("prevote_100_0_other_chain"), None).expect("osmosis");
    assert!(matches!(
        set_chain(&mut b, &pkh, CHAIN),
        Response::KeyInfo(_)
    ));
    vote(&mut b, &pkh, &v("prevote_100_0"), None).expect("cosmoshub");
    assert_eq!(b.watermarks().len(), 2);
    assert_eq!(b.handle(Request::ForgetWatermarks { pkh }), Response::Done);
    // The pinned chain's mark stays and still refuses a conflict; the other chain's went.
    assert_eq!(b.watermarks().len(), 1);
    assert_eq!(
        vote(&mut b, &pkh, &v("prevote_100_0_other_block"), None),
        Err(double_sign(100, 0, Step::Prevote))
    );
}
