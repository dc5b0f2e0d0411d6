//! Request parsing against upstream payloads (Signatory, gotez, Taquito), and every refusal
//! path: truncated, trailing, unknown magic, unknown tag.

mod support;

use pawl_core::digest::blake2b_256;
use pawl_core::encoding::{Prefix, encode};
use pawl_core::request::{Ballot, ChainId, ConsensusForm, OpKind, ParseError, RequestKind, parse};
use support::unhex;

// ecadlabs/signatory pkg/signatory/request/request_test.go (chain NetXxkAx4woPLyu)
const SIG_BLOCK: &str = "11ed9d217c0000518e0118425847ac255b6d7c30ce8fec23b8eaf13b741de7d18509ac2ef83c741209630000000061947af504805682ea5d089837764b3efcc90b91db24294ff9ddb66019f332ccba17cc4741000000210000000102000000040000518e0000000000000004ffffffff0000000400000000eb1320a71e8bf8b0162a3ec315461e9153a38b70d00d5dde2df85eb92748f8d068d776e356683a9e23c186ccfb72ddc6c9857bb1704487972922e7c89a7121f800000000a8e1dd3c000000000000";
const SIG_PREATTESTATION: &str = "12ed9d217c2f50673bab6b20dfb0a88ca93b4a0c72a34c807af5dffbece2cba3d2b509835f14006000000002000000041f1ebb39759cc957216f88fb4d005abc206fb00a53f8d57ac01be00c084cba97";
const SIG_ATTESTATION: &str = "13ed9d217cfc81eee810737b04018acef4db74d056b79edc43e6be46cae7e4c217c22a82f01500120000518d0000000003e7ea1f67dbb0bb6cfa372cb092cd9cf786b4f1b5e5139da95b915fb95e698d";
// ecadlabs/signatory integration_test/tests/server/watermark_test.go (chain NetXo5iVw1vBoxM)
const A1: &str = "11b3d79f990000000218954ac461a1b7642a78880e485b1db8da1e96f6cac6ee7dae541c7b6a8e66840b0000000069a8c3a3043c218c11c12df01faa1113bb827d7de00cc6f95993e220901ca35ff0cec5954000000021000000010200000004000000020000000000000004ffffffff0000000400000000ecbf5c99c96392b252bb846394c12c422e0cb2e050aa018dcc2a880f9c9c636858335430566f4b95401c110f33e74d3a324f83ad6003ed9d5e93ce617fa11e4400000000d7d4b0aea9d000000000";
const B1: &str = "11b3d79f9900000007184572152267169504aff4d7cb486684d7e36ffed77523565eb2981d05f00f95520000000069a8c397042b9ee182b36afeb571d6d7218853177fff8d2aca0738eaf9a32284eb932bca3500000021000000010200000004000000070000000000000004ffffffff0000000400000002be32a3976c093ad2a4ce5168b38e0756589b740ca2477fc07c5fa52f55c241f222497e0fc752e228440e90f23f104c8de0aec6b5c502dfbfe8e5e21857bacf01000000025a3ca147680601000000";
const C1: &str = "11b3d79f990000002218954ac461a1b7642a78880e485b1db8da1e96f6cac6ee7dae541c7b6a8e66840b0000000069a8c3a3043c218c11c12df01faa1113bb827d7de00cc6f95993e220901ca35ff0cec5954000000021000000010200000004000000220000000000000004ffffffff0000000400000004ecbf5c99c96392b252bb846394c12c422e0cb2e050aa018dcc2a880f9c9c636858335430566f4b95401c110f33e74d3a324f83ad6003ed9d5e93ce617fa11e4400000004d7d4b0aea9d000000000";
const C2: &str = "12b3d79f993222f293d2f293230ec36b0bef1caead619f1a7206ff54a0c198f07ae25bb151140014000000220000000458335430566f4b95401c110f33e74d3a324f83ad6003ed9d5e93ce617fa11e44";
const C3: &str = "13b3d79f993222f293d2f293230ec36b0bef1caead619f1a7206ff54a0c198f07ae25bb151150015000000220000000458335430566f4b95401c110f33e74d3a324f83ad6003ed9d5e93ce617fa11e44";
// docs/protocol.md §8.5 (derived vectors: BLS mode, tags 41 and 40, from C3/C2)
const C3_BLS: &str = "13b3d79f993222f293d2f293230ec36b0bef1caead619f1a7206ff54a0c198f07ae25bb15129000000220000000458335430566f4b95401c110f33e74d3a324f83ad6003ed9d5e93ce617fa11e44";
const C2_BLS: &str = "12b3d79f993222f293d2f293230ec36b0bef1caead619f1a7206ff54a0c198f07ae25bb15128000000220000000458335430566f4b95401c110f33e74d3a324f83ad6003ed9d5e93ce617fa11e44";

fn chain(b58: &str) -> ChainId {
    ChainId::from_b58(b58).expect("chain id")
}

#[test]
fn consensus_level_round_and_chain_match_upstream() {
    let cases: &[(&str, RequestKind, &str, u32, u32, ConsensusForm)] = &[
        (
            SIG_BLOCK,
            RequestKind::Block,
            "NetXxkAx4woPLyu",
            20878,
            0,
            ConsensusForm::Block,
        ),
        (
            SIG_PREATTESTATION,
            RequestKind::Preattestation,
            "NetXxkAx4woPLyu",
            2,
            4,
            ConsensusForm::WithSlot,
        ),
        (
            SIG_ATTESTATION,
            RequestKind::Attestation,
            "NetXxkAx4woPLyu",
            20877,
            0,
            ConsensusForm::WithSlot,
        ),
        (
            A1,
            RequestKind::Block,
            "NetXo5iVw1vBoxM",
            2,
            0,
            ConsensusForm::Block,
        ),
        (
            B1,
            RequestKind::Block,
            "NetXo5iVw1vBoxM",
            7,
            2,
            ConsensusForm::Block,
        ),
        (
            C1,
            RequestKind::Block,
            "NetXo5iVw1vBoxM",
            34,
            4,
            ConsensusForm::Block,
        ),
        (
            C2,
            RequestKind::Preattestation,
            "NetXo5iVw1vBoxM",
            34,
            4,
            ConsensusForm::WithSlot,
        ),
        (
            C3,
            RequestKind::Attestation,
            "NetXo5iVw1vBoxM",
            34,
            4,
            ConsensusForm::WithSlot,
        ),
        (
            C3_BLS,
            RequestKind::Attestation,
            "NetXo5iVw1vBoxM",
            34,
            4,
            ConsensusForm::BlsMode,
        ),
        (
            C2_BLS,
            RequestKind::Preattestation,
            "NetXo5iVw1vBoxM",
            34,
            4,
            ConsensusForm::BlsMode,
        ),
    ];
    for (hex, kind, chain_id, level, round, form) in cases {
        let p = parse(&unhex(hex)).unwrap_or_else(|e| panic!("{hex}: {e}"));
        assert_eq!(p.kind, *kind);
        let c = p.consensus.expect("consensus");
        assert_eq!(
            (c.chain_id, c.level, c.round, c.form),
            (chain(chain_id), *level, *round, *form),
            "{hex}"
        );
    }
    assert_eq!(unhex(C3_BLS).len(), 78);
    assert_eq!(unhex(C3).len(), 80);
}

#[test]
fn watermark_hashes_match_upstream() {
    // Signatory watermark_test.go expected `vh…` hashes (blake2b-256 of the whole payload).
    for (hex, vh) in [
        (A1, "vh2THNfr1pU3TjJyJkw7BKq19suqMX1W9PXRVAgpueELhGTAuhSx"),
        (B1, "vh2LsbNPiuNja766Mzq1DXd7kMAhF358snWJHhK9XPG6F5dSmXPn"),
        (C1, "vh2QmrcNURnrNwT5HEJv6ZA8n2gfw1MzThoBHK7dgyJsjHmVJhvj"),
        (C2, "vh1mTiEJuJiyimZf5sctgbnHBTLFthMVRNbiViYpLDMGK79TzUwB"),
        (C3, "vh2UEcdXfsAWcTP1omYSp1q54H5S2x3zqfr2YqAcZ2Neyjauix1K"),
    ] {
        assert_eq!(
            encode(Prefix::BlockPayloadHash, &blake2b_256(&unhex(hex)))
                .expect("vh")
                .as_str(),
            vh
        );
    }
    assert_eq!(
        hex::encode(blake2b_256(&unhex(A1))),
        "668a611b1c0cd51c29de34de5959ab0f1504598de1e35c74af57477b688affd8"
    );
}

#[test]
fn dal_attestation_tag_23_is_an_attestation() {
    // C3 with tag 23 and a DAL bitset (Zarith N 0x05) appended.
    let mut bytes = unhex(C3);
    bytes[37] = 23;
    bytes.push(0x05);
    let p = parse(&bytes).expect("tag 23");
    assert_eq!(p.kind, RequestKind::Attestation);
    assert_eq!(p.consensus.map(|c| (c.level, c.round)), Some((34, 4)));
    // Without its bitset it is truncated.
    bytes.pop();
    assert!(matches!(parse(&bytes), Err(ParseError::Truncated { .. })));
}

#[test]
fn consensus_refusals() {
    let c3 = unhex(C3);
    // Every truncation of every consensus vector is refused.
    for hex in [SIG_BLOCK, C2, C3, C3_BLS, C2_BLS, A1] {
        let b = unhex(hex);
        for n in 1..b.len() {
            assert!(parse(&b[..n]).is_err(), "{hex} truncated to {n}");
        }
        let mut long = b.clone();
        long.push(0);
        assert!(
            matches!(parse(&long), Err(ParseError::TrailingBytes { .. })),
            "{hex} + 1"
        );
    }
    // Tag not valid under the magic byte: an attestation tag under 0x12 and vice versa.
    let mut t = c3.clone();
    t[0] = 0x12;
    assert_eq!(
        parse(&t),
        Err(ParseError::UnknownConsensusTag {
            magic: 0x12,
            tag: 21
        })
    );
    let mut t = unhex(C2);
    t[0] = 0x13;
    assert_eq!(
        parse(&t),
        Err(ParseError::UnknownConsensusTag {
            magic: 0x13,
            tag: 20
        })
    );
    // Aggregates (30/31) are never signed.
    let mut t = c3.clone();
    t[37] = 31;
    assert!(matches!(
        parse(&t),
        Err(ParseError::UnknownConsensusTag { .. })
    ));
    // Negative level.
    let mut t = c3.clone();
    t[40] = 0x80;
    assert!(matches!(
        parse(&t),
        Err(ParseError::NegativeLevelOrRound { offset: 40 })
    ));
    // BLS mode must be exactly 78 bytes.
    let mut t = unhex(C3_BLS);
    t.extend_from_slice(&[0, 0]);
    assert!(matches!(
        parse(&t),
        Err(ParseError::TrailingBytes {
            offset: 78,
            count: 2
        })
    ));
}

#[test]
fn block_round_is_last_fitness_element_not_payload_round() {
    // B1: payload_round 2, fitness round 2. Make the fitness round 5: the parse must follow it.
    let mut b = unhex(B1);
    let f = u32::from_be_bytes(b[83..87].try_into().expect("4")) as usize;
    assert_eq!(f, 33);
    b[83 + f..87 + f].copy_from_slice(&5u32.to_be_bytes());
    assert_eq!(parse(&b).expect("block").round(), Some(5));
    // A fitness whose last element is not 4 bytes is refused.
    let mut b = unhex(B1);
    b[83 + f - 4..83 + f].copy_from_slice(&3u32.to_be_bytes());
    assert!(parse(&b).is_err());
}

#[test]
fn unknown_magic_bytes_are_refused() {
    for byte in [0x00u8, 0x01, 0x02, 0x04, 0x06, 0x10, 0x14, 0xff] {
        assert_eq!(
            parse(&[byte, 1, 2, 3]),
            Err(ParseError::UnknownMagicByte { byte })
        );
    }
    assert_eq!(parse(&[]), Err(ParseError::Empty));
}

// ecadlabs/signatory pkg/signatory/signatory_test.go / request_test.go (generic operations)
const TX_KT1: &str = "03a60703a9567bf69ec66b368c3d8562eba4cbf29278c2c10447a684e3aa1436856c00a0c7a9b0bcd6a48ee0c13094327f215ba2adeaa7d40dabc1af25e36fde02c096b10201f525eabd8b0eeace1494233ea0230d2c9ad6619b00ffff0b66756c66696c6c5f61736b0000000907070088f0f6010306";
const DELEGATION_TAIL: &str = "6e00e1ba5449f2938568ace14b5dd54f31936dc86722ba08e0eaa917f53800ff0002298c03ed7d454a101eb7022bc95f7e5f41ac78";
const TX: &str = "03573a2d2d49a3b9634d1605c3aa48ebdd5d21a5885ad17aa44c2b1d0dbcbcac686c004b415314d2b56b0481a3ae8c992ce8bb8dba0369d086039ecb2dc35000c0843d000076b2f1ea1cf6753888ac5488693977446652d79e00";
const DELEGATION: &str = "03b89591b37be370e3db3fc7f77fdd176c5153f75ddcd239094c7ebeb66ee5e8bd6e002ea14368f6494539861ba04cf8cc946ace12cfd4ea09d89f40f44e00ff004b415314d2b56b0481a3ae8c992ce8bb8dba0369";
const ORIGINATION: &str = "03742d8e0a99049a5053bd71ac18b40fbb1f20e262e45dec88acd6795ba75147066d004b415314d2b56b0481a3ae8c992ce8bb8dba0369d80aa1cb2d8156bb0200000000001c02000000170500035b0501035b050202000000080316053d036d0342000000020000";
const REVEAL_DELEGATION: &str = "0333faca8a156c5e69fc8a63a799911b7c94b126fc7294dbbc0b8cb6880a81944e6b0008460955bf19f2d43ff015d938d53198b14ff637eb09f5ae3f904e000084d813c61c2478b2f30cda0b5593ae5ba293226f44120e42476f0e0941f3702a006e0008460955bf19f2d43ff015d938d53198b14ff6378a09f6ae3ff44e00ff004b415314d2b56b0481a3ae8c992ce8bb8dba0369";
const INCREASE_PAID_STORAGE: &str = "031ca15e385360cc8843937ece7471307086020e8eaff1613c8c25124519710fe9710079cae4c9a1885f17d3995619bf28636c4394458bdd02ef8a09e807000101c83a61cd1cb193d2d7d5e49d867cc2299211575d00";
const DRAIN_DELEGATE: &str = "0375959f80af0577302c9ed036371bc6c18644eeabf441fbad257c1a67d36a57fe090244cd5d0b4cb5a18d926b25bc37e58105e6786f0802f846b9ed8834c257a6f0c3cebeab4f58508b20ad0244cd5d0b4cb5a18d926b25bc37e58105e6786f08";
// Pre-Seoul update_consensus_key (no proof byte): a current-protocol parser finds it short.
const UPDATE_CK_PRE_SEOUL: &str = "03ebcaec6ed8ab1a8a515164df37f47be175fb92851249f2b83fb96b7434ec57d3720079cae4c9a1885f17d3995619bf28636c4394458bf102f31fcc08000202d56e7b5258aa58eeb61701476c46863e2f9f31b4b467ca3175fb2f1fed6b4106";
// Taquito taquito-remote-signer tests (origination, delegation / transaction variants)
const TAQUITO_ORIGINATION: &str = "0365cac93523b8c10346c0107cfea5e12ff3c759459020e532f299e2f41082f7cb6d0000f68c4abfa21dfc0c9efcf588190388cac85d9db60f81d6038b79d8030000000000b902000000b405000764045b0000000a2564656372656d656e74045b0000000a25696e6372656d656e740501035b0502020000008503210317057000010321057100020316072e020000002b032105700002032105710003034203210317057000010321057100020316034b051f020000000405200002020000002b0321057000020321057100030342032103170570000103210571000203160312051f0200000004052000020321053d036d0342051f020000000405200003000000020000";
// gotez proto_023 sign_request_test.go: Michelson PACK
const PACK: &str = "050a00000016000032041dca76bac940b478aae673e362bd15847ed8";

#[test]
fn generic_operations_list_their_kinds() {
    let batch = format!("{TX_KT1}{DELEGATION_TAIL}");
    let cases: &[(&str, &[OpKind])] = &[
        (TX_KT1, &[OpKind::Transaction]),
        (&batch, &[OpKind::Transaction, OpKind::Delegation]),
        (TX, &[OpKind::Transaction]),
        (DELEGATION, &[OpKind::Delegation]),
        (ORIGINATION, &[OpKind::Origination]),
        (REVEAL_DELEGATION, &[OpKind::Reveal, OpKind::Delegation]),
        (INCREASE_PAID_STORAGE, &[OpKind::IncreasePaidStorage]),
        (DRAIN_DELEGATE, &[OpKind::DrainDelegate]),
        (TAQUITO_ORIGINATION, &[OpKind::Origination]),
    ];
    for (hex, kinds) in cases {
        let p = parse(&unhex(hex)).unwrap_or_else(|e| panic!("{hex}: {e}"));
        assert_eq!(p.kind, RequestKind::Generic);
        assert_eq!(p.consensus, None);
        let found: Vec<OpKind> = p.op_kinds.iter().collect();
        let mut want = kinds.to_vec();
        want.sort_by_key(|k| *k as u8);
        assert_eq!(found, want, "{hex}");
        assert_eq!(usize::from(p.op_count), kinds.len());
    }
}

#[test]
fn pre_seoul_update_consensus_key_is_refused_as_truncated() {
    assert!(matches!(
        parse(&unhex(UPDATE_CK_PRE_SEOUL)),
        Err(ParseError::Truncated { .. })
    ));
    // With the Seoul proof-absent byte it decodes.
    let with_proof = format!("{UPDATE_CK_PRE_SEOUL}00");
    let p = parse(&unhex(&with_proof)).expect("seoul form");
    assert!(p.op_kinds.contains(OpKind::UpdateConsensusKey));
}

fn branch() -> String {
    "00".repeat(32)
}

#[test]
fn staking_entrypoints_are_pseudo_kinds() {
    // A transaction to oneself with entrypoint tags 6..9 (entrypoint_repr.ml smart_encoding),
    // empty Unit parameters `0300000002030b`? — parameters are `uint32 len ‖ Micheline`: Unit = 030b.
    let src = format!("00{}", "11".repeat(20));
    for (tag, kind) in [
        (6, OpKind::Stake),
        (7, OpKind::Unstake),
        (8, OpKind::FinalizeUnstake),
        (9, OpKind::SetDelegateParameters),
        (0, OpKind::Transaction),
    ] {
        let hex = format!(
            "03{}6c{src}0a0b0c0d{amount}00{src}ff{tag:02x}00000002030b",
            branch(),
            amount = "01"
        );
        let p = parse(&unhex(&hex)).unwrap_or_else(|e| panic!("{hex}: {e}"));
        assert_eq!(p.op_kinds.iter().collect::<Vec<_>>(), vec![kind]);
    }
}

#[test]
fn ballots_carry_their_vote() {
    let src = format!("00{}", "22".repeat(20));
    for (v, ballot) in [(0, Ballot::Yay), (1, Ballot::Nay), (2, Ballot::Pass)] {
        let hex = format!("03{}06{src}0000002a{}{v:02x}", branch(), "33".repeat(32));
        let p = parse(&unhex(&hex)).expect("ballot");
        assert_eq!(p.ballot, Some(ballot));
        assert!(p.op_kinds.contains(OpKind::Ballot));
    }
    let hex = format!("03{}06{src}0000002a{}03", branch(), "33".repeat(32));
    assert!(matches!(
        parse(&unhex(&hex)),
        Err(ParseError::BadTag { value: 3, .. })
    ));
    // A ballot cannot be batched.
    let one = format!("06{src}0000002a{}00", "33".repeat(32));
    let hex = format!("03{}{one}{one}", branch());
    assert!(matches!(
        parse(&unhex(&hex)),
        Err(ParseError::NonManagerInBatch { tag: 6 })
    ));
    let hex = format!("03{}{}{one}", branch(), &DELEGATION[66..]);
    assert!(matches!(
        parse(&unhex(&hex)),
        Err(ParseError::NonManagerInBatch { tag: 6 })
    ));
}

#[test]
fn generic_refusals() {
    // Unknown / undecodable kinds are refused, not guessed.
    for tag in [2u8, 3, 7, 20, 21, 30, 116, 158, 200, 230, 250, 255] {
        let hex = format!("03{}{tag:02x}{}", branch(), "00".repeat(64));
        assert!(
            matches!(parse(&unhex(&hex)), Err(ParseError::UnsupportedOperation { tag: t, .. }) if t == tag),
            "tag {tag}"
        );
    }
    assert_eq!(
        parse(&unhex(&format!("03{}", branch()))),
        Err(ParseError::NoContents)
    );
    for hex in [
        TX_KT1,
        TX,
        DELEGATION,
        ORIGINATION,
        REVEAL_DELEGATION,
        DRAIN_DELEGATE,
    ] {
        let b = unhex(hex);
        // Only a cut exactly between two contents of a batch may still parse (as the shorter
        // batch); every other truncation is refused.
        let accepted: Vec<usize> = (1..b.len()).filter(|n| parse(&b[..*n]).is_ok()).collect();
        let expected: Vec<usize> = if hex == REVEAL_DELEGATION {
            // The delegation content starts where its tag and source (`6e 00 0846…`) appear.
            vec![hex.find("6e0008460955").expect("delegation") / 2]
        } else {
            vec![]
        };
        assert_eq!(accepted, expected, "{hex}");
        let mut long = b.clone();
        long.push(0x6c);
        assert!(parse(&long).is_err());
    }
    // Bad option tag in a delegation.
    let mut d = unhex(DELEGATION);
    let last = d.len() - 22;
    d[last] = 0x01;
    assert!(matches!(parse(&d), Err(ParseError::BadOptionTag { .. })));
}

#[test]
fn michelson_data() {
    let p = parse(&unhex(PACK)).expect("pack");
    assert_eq!(p.kind, RequestKind::Michelson);
    assert!(matches!(
        parse(&unhex(&format!("{PACK}00"))),
        Err(ParseError::TrailingBytes { .. })
    ));
    assert!(parse(&unhex("05")).is_err());
    assert!(matches!(
        parse(&unhex("050b")),
        Err(ParseError::BadTag { value: 11, .. })
    ));
    // Deep nesting is bounded: Some(Some(...)) 200 deep (prim 1 arg: tag 5, prim `Some` = 0x09).
    let mut deep = "05".to_string();
    deep.push_str(&"0509".repeat(200));
    deep.push_str("030b");
    assert!(matches!(
        parse(&unhex(&deep)),
        Err(ParseError::TooDeep { .. })
    ));
    let mut ok = "05".to_string();
    ok.push_str(&"0509".repeat(10));
    ok.push_str("030b");
    assert!(parse(&unhex(&ok)).is_ok());
}

// ---------------------------------------------------------------------------------------------
// Micheline error offsets inside nested nodes (issue 13, finding 6: `TooDeep` said offset 1).
// ---------------------------------------------------------------------------------------------

/// `depth` + 1 nested Micheline nodes around an int 0, each level either a sequence
/// (`02 ‖ len32 ‖ items`) or a primitive application with an argument list and no annotations
/// (`09 ‖ prim ‖ len32 ‖ args ‖ 00000000`).
fn nested(levels: usize, prim_app: bool) -> Vec<u8> {
    let mut node = vec![0x00, 0x00]; // int 0
    for _ in 0..levels {
        let len = u32::try_from(node.len()).expect("small").to_be_bytes();
        let mut outer = if prim_app {
            vec![0x09, 0x00] // prim `parameter`
        } else {
            vec![0x02]
        };
        outer.extend_from_slice(&len);
        outer.extend_from_slice(&node);
        if prim_app {
            outer.extend_from_slice(&[0, 0, 0, 0]); // no annotations
        }
        node = outer;
    }
    let mut payload = vec![0x05];
    payload.extend_from_slice(&node);
    payload
}

#[test]
fn too_deep_reports_the_offset_of_the_too_deep_node() {
    // The outermost node is at depth 0, offset 1 (after the 0x05 magic byte); pawl walks
    // depths 0 to 48, so the node at depth 49 is the first too deep.
    //
    // Sequences: each enclosing level adds its tag byte and 4-byte length, so the node at
    // depth d starts at 1 + 5·d, and the depth-49 node at 1 + 245 = 246.
    assert_eq!(
        parse(&nested(49, false)),
        Err(ParseError::TooDeep { offset: 246 })
    );
    // Primitive applications: tag, primitive and 4-byte length, 6 bytes a level: the node at
    // depth 49 starts at 1 + 6·49 = 295.
    assert_eq!(
        parse(&nested(49, true)),
        Err(ParseError::TooDeep { offset: 295 })
    );
    // One level less is within the bound and parses.
    assert!(parse(&nested(48, false)).is_ok());
    assert!(parse(&nested(48, true)).is_ok());
    // Errors further in are placed the same way: a bad tag (0x0b) as the only item of the
    // third nested sequence sits at 1 + 5·3 = 16.
    let mut bad = nested(3, false);
    bad[16] = 0x0b;
    assert_eq!(
        parse(&bad),
        Err(ParseError::BadTag {
            offset: 16,
            value: 0x0b
        })
    );
}
