//! The bytes a validator signs, as CometBFT's `VoteSignBytes`, `VoteExtensionSignBytes` and
//! `ProposalSignBytes` make them: a uvarint length, then the protobuf canonical form
//! (`CanonicalVote`, `CanonicalVoteExtension`, `CanonicalProposal`) with the chain id.
//!
//! Go's rules that shape the bytes, followed here:
//!
//! * height and round are `sfixed64` (8 bytes each), written unless zero;
//! * the block id is left out when it is zero (no hash and a zero part set header: a nil
//!   vote); otherwise its part set header is always written (non-nullable);
//! * the timestamp is always written (non-nullable); an absent one is Go's zero time, which is
//!   what a Go node decodes it to;
//! * a proposal's `pol_round` is an `int64` varint (-1: ten bytes).
//!
//! The board decodes these bytes itself and decides; nothing here is a rule.

use prost::Message as _;

use super::proto::{
    BlockId, CanonicalBlockId, CanonicalPartSetHeader, CanonicalProposal, CanonicalVote,
    CanonicalVoteExtension, GO_ZERO_TIME, PRECOMMIT, Proposal, Vote,
};

/// Whether `id` is the zero block id (Go's `BlockID.IsZero`): no hash and a zero part set
/// header. An absent block id is zero too.
pub fn block_id_is_zero(id: Option<&BlockId>) -> bool {
    match id {
        None => true,
        Some(id) => {
            id.hash.is_empty()
                && id
                    .part_set_header
                    .as_ref()
                    .is_none_or(|p| p.total == 0 && p.hash.is_empty())
        }
    }
}

fn canonical_block_id(id: Option<&BlockId>) -> Option<CanonicalBlockId> {
    if block_id_is_zero(id) {
        return None;
    }
    let id = id?;
    let psh = id.part_set_header.clone().unwrap_or_default();
    Some(CanonicalBlockId {
        hash: id.hash.clone(),
        part_set_header: Some(CanonicalPartSetHeader {
            total: psh.total,
            hash: psh.hash,
        }),
    })
}

/// `VoteSignBytes(chain_id, vote)`.
pub fn vote(chain_id: &str, vote: &Vote) -> Vec<u8> {
    CanonicalVote {
        r#type: vote.r#type,
        height: vote.height,
        round: i64::from(vote.round),
        block_id: canonical_block_id(vote.block_id.as_ref()),
        timestamp: Some(vote.timestamp.unwrap_or(GO_ZERO_TIME)),
        chain_id: chain_id.to_string(),
    }
    .encode_length_delimited_to_vec()
}

/// Whether the node expects the vote's extension signed (FilePV's rule): a precommit for a
/// block (not nil), unless the node said to skip it (1.0's `skip_extension_signing`, sent when
/// extensions are off). The extension may be empty and is signed all the same.
pub fn extension_expected(vote: &Vote, skip_extension_signing: bool) -> bool {
    !skip_extension_signing && vote.r#type == PRECOMMIT && !block_id_is_zero(vote.block_id.as_ref())
}

/// `VoteExtensionSignBytes(chain_id, vote)`.
pub fn vote_extension(chain_id: &str, vote: &Vote) -> Vec<u8> {
    CanonicalVoteExtension {
        extension: vote.extension.clone(),
        height: vote.height,
        round: i64::from(vote.round),
        chain_id: chain_id.to_string(),
    }
    .encode_length_delimited_to_vec()
}

/// `ProposalSignBytes(chain_id, proposal)`.
pub fn proposal(chain_id: &str, proposal: &Proposal) -> Vec<u8> {
    CanonicalProposal {
        r#type: proposal.r#type,
        height: proposal.height,
        round: i64::from(proposal.round),
        pol_round: i64::from(proposal.pol_round),
        block_id: canonical_block_id(proposal.block_id.as_ref()),
        timestamp: Some(proposal.timestamp.unwrap_or(GO_ZERO_TIME)),
        chain_id: chain_id.to_string(),
    }
    .encode_length_delimited_to_vec()
}

#[cfg(test)]
mod tests {
    //! Expected bytes come from outside this code: CometBFT's Go test vectors
    //! (`types/vote_test.go`, `TestVoteSignBytesTestVectors`), the vectors tendermint-rs
    //! generated with Go's `types.VoteSignBytes` / `types.ProposalSignBytes`
    //! (`tendermint/src/vote/sign_vote.rs`, `tendermint/src/proposal.rs`), and, for the vote
    //! extension (for which no published vector was found), bytes assembled by hand from the
    //! `CanonicalVoteExtension` definition, tag by tag.

    use super::super::proto::{PREVOTE, PROPOSAL, PartSetHeader, Timestamp};
    use super::*;

    const ZERO_TIME: [u8; 13] = [
        0x2a, 0xb, 0x8, 0x80, 0x92, 0xb8, 0xc3, 0x98, 0xfe, 0xff, 0xff, 0xff, 0x1,
    ];

    #[test]
    fn votes_match_cometbft_go_vectors() {
        // 0: an empty vote, empty chain id: only Go's zero timestamp.
        let mut want = vec![0xd];
        want.extend(ZERO_TIME);
        assert_eq!(vote("", &Vote::default()), want);
        // 1 and 2: precommit and prevote at height 1 round 1.
        for (t, byte) in [(PRECOMMIT, 0x2), (PREVOTE, 0x1)] {
            let v = Vote {
                r#type: t,
                height: 1,
                round: 1,
                ..Vote::default()
            };
            let mut want = vec![0x21, 0x8, byte, 0x11, 1, 0, 0, 0, 0, 0, 0, 0, 0x19];
            want.extend([1, 0, 0, 0, 0, 0, 0, 0]);
            want.extend(ZERO_TIME);
            assert_eq!(vote("", &v), want, "type {t}");
        }
        // 4 and 5: a chain id; the extension is not part of the vote's sign bytes.
        let mut v = Vote {
            height: 1,
            round: 1,
            ..Vote::default()
        };
        let mut want = vec![
            0x2e, 0x11, 1, 0, 0, 0, 0, 0, 0, 0, 0x19, 1, 0, 0, 0, 0, 0, 0, 0,
        ];
        want.extend(ZERO_TIME);
        want.extend([0x32, 0xd]);
        want.extend(b"test_chain_id");
        assert_eq!(vote("test_chain_id", &v), want);
        v.extension = b"extension".to_vec();
        assert_eq!(vote("test_chain_id", &v), want);
    }

    fn tendermint_rs_vote(hash: &[u8]) -> Vote {
        Vote {
            r#type: PREVOTE,
            height: 12345,
            round: 2,
            // 2017-12-25T03:00:01.234Z
            timestamp: Some(Timestamp {
                seconds: 1_514_170_801,
                nanos: 234_000_000,
            }),
            block_id: Some(BlockId {
                hash: hash.to_vec(),
                part_set_header: Some(PartSetHeader {
                    total: 1_000_000,
                    hash: b"0022446688AACCEE1133557799BBDDFF".to_vec(),
                }),
            }),
            validator_address: vec![
                0xa3, 0xb2, 0xcc, 0xdd, 0x71, 0x86, 0xf1, 0x68, 0x5f, 0x21, 0xf2, 0x48, 0x2a, 0xf4,
                0xfb, 0x34, 0x46, 0xa8, 0x4b, 0x35,
            ],
            validator_index: 56789,
            ..Vote::default()
        }
    }

    #[test]
    fn a_vote_for_a_block_matches_the_go_generated_vector() {
        let want: Vec<u8> = vec![
            124, 8, 1, 17, 57, 48, 0, 0, 0, 0, 0, 0, 25, 2, 0, 0, 0, 0, 0, 0, 0, 34, 74, 10, 32,
            68, 69, 65, 68, 66, 69, 69, 70, 68, 69, 65, 68, 66, 69, 69, 70, 66, 65, 70, 66, 65, 70,
            66, 65, 70, 66, 65, 70, 66, 65, 70, 65, 18, 38, 8, 192, 132, 61, 18, 32, 48, 48, 50,
            50, 52, 52, 54, 54, 56, 56, 65, 65, 67, 67, 69, 69, 49, 49, 51, 51, 53, 53, 55, 55, 57,
            57, 66, 66, 68, 68, 70, 70, 42, 11, 8, 177, 211, 129, 210, 5, 16, 128, 157, 202, 111,
            50, 13, 116, 101, 115, 116, 95, 99, 104, 97, 105, 110, 95, 105, 100,
        ];
        let v = tendermint_rs_vote(b"DEADBEEFDEADBEEFBAFBAFBAFBAFBAFA");
        assert_eq!(vote("test_chain_id", &v), want);
        // A block id with no hash but a part set header is not zero: it is written.
        let want: Vec<u8> = vec![
            90, 8, 1, 17, 57, 48, 0, 0, 0, 0, 0, 0, 25, 2, 0, 0, 0, 0, 0, 0, 0, 34, 40, 18, 38, 8,
            192, 132, 61, 18, 32, 48, 48, 50, 50, 52, 52, 54, 54, 56, 56, 65, 65, 67, 67, 69, 69,
            49, 49, 51, 51, 53, 53, 55, 55, 57, 57, 66, 66, 68, 68, 70, 70, 42, 11, 8, 177, 211,
            129, 210, 5, 16, 128, 157, 202, 111, 50, 13, 116, 101, 115, 116, 95, 99, 104, 97, 105,
            110, 95, 105, 100,
        ];
        assert_eq!(vote("test_chain_id", &tendermint_rs_vote(b"")), want);
    }

    fn tendermint_rs_proposal(hash: &[u8]) -> Proposal {
        let hex = |s: &str| hex::decode(s).unwrap_or_default();
        Proposal {
            r#type: PROPOSAL,
            height: 12345,
            round: 23456,
            pol_round: -1,
            block_id: Some(BlockId {
                hash: hash.to_vec(),
                part_set_header: Some(PartSetHeader {
                    total: 65535,
                    hash: hex("0022446688AACCEE1133557799BBDDFF0022446688AACCEE1133557799BBDDFF"),
                }),
            }),
            // 2018-02-11T07:09:22.765Z
            timestamp: Some(Timestamp {
                seconds: 1_518_332_962,
                nanos: 765_000_000,
            }),
            signature: vec![0; 64],
        }
    }

    #[test]
    fn proposals_match_the_go_generated_vectors() {
        let hash = hex::decode("DEADBEEFDEADBEEFBAFBAFBAFBAFBAFADEADBEEFDEADBEEFBAFBAFBAFBAFBAFA")
            .unwrap_or_default();
        let want: Vec<u8> = vec![
            136, 1, 8, 32, 17, 57, 48, 0, 0, 0, 0, 0, 0, 25, 160, 91, 0, 0, 0, 0, 0, 0, 32, 255,
            255, 255, 255, 255, 255, 255, 255, 255, 1, 42, 74, 10, 32, 222, 173, 190, 239, 222,
            173, 190, 239, 186, 251, 175, 186, 251, 175, 186, 250, 222, 173, 190, 239, 222, 173,
            190, 239, 186, 251, 175, 186, 251, 175, 186, 250, 18, 38, 8, 255, 255, 3, 18, 32, 0,
            34, 68, 102, 136, 170, 204, 238, 17, 51, 85, 119, 153, 187, 221, 255, 0, 34, 68, 102,
            136, 170, 204, 238, 17, 51, 85, 119, 153, 187, 221, 255, 50, 12, 8, 162, 216, 255, 211,
            5, 16, 192, 242, 227, 236, 2, 58, 13, 116, 101, 115, 116, 95, 99, 104, 97, 105, 110,
            95, 105, 100,
        ];
        assert_eq!(
            proposal("test_chain_id", &tendermint_rs_proposal(&hash)),
            want
        );
        let want: Vec<u8> = vec![
            102, 8, 32, 17, 57, 48, 0, 0, 0, 0, 0, 0, 25, 160, 91, 0, 0, 0, 0, 0, 0, 32, 255, 255,
            255, 255, 255, 255, 255, 255, 255, 1, 42, 40, 18, 38, 8, 255, 255, 3, 18, 32, 0, 34,
            68, 102, 136, 170, 204, 238, 17, 51, 85, 119, 153, 187, 221, 255, 0, 34, 68, 102, 136,
            170, 204, 238, 17, 51, 85, 119, 153, 187, 221, 255, 50, 12, 8, 162, 216, 255, 211, 5,
            16, 192, 242, 227, 236, 2, 58, 13, 116, 101, 115, 116, 95, 99, 104, 97, 105, 110, 95,
            105, 100,
        ];
        assert_eq!(
            proposal("test_chain_id", &tendermint_rs_proposal(&[])),
            want
        );
    }

    #[test]
    fn a_vote_extension_is_extension_height_round_chain() {
        let v = Vote {
            r#type: PRECOMMIT,
            height: 0x0102,
            round: 3,
            extension: b"ext".to_vec(),
            ..Vote::default()
        };
        let mut want = vec![
            0x1e, // length 30
            0x0a, 3, b'e', b'x', b't', // field 1, bytes
            0x11, 0x02, 0x01, 0, 0, 0, 0, 0, 0, // field 2, sfixed64
            0x19, 3, 0, 0, 0, 0, 0, 0, 0, // field 3, sfixed64
            0x22, 5, // field 4, string
        ];
        want.extend(b"chain");
        assert_eq!(vote_extension("chain", &v), want);
        // An empty extension is signed too: the field is then absent.
        let empty = Vote {
            extension: Vec::new(),
            ..v
        };
        assert_eq!(vote_extension("chain", &empty)[..2], [0x19, 0x11]);
    }

    #[test]
    fn extensions_are_signed_for_precommits_for_a_block_only() {
        let block = tendermint_rs_vote(b"DEADBEEFDEADBEEFBAFBAFBAFBAFBAFA").block_id;
        let precommit = Vote {
            r#type: PRECOMMIT,
            block_id: block.clone(),
            ..Vote::default()
        };
        assert!(extension_expected(&precommit, false));
        assert!(!extension_expected(&precommit, true));
        let nil = Vote {
            block_id: None,
            ..precommit.clone()
        };
        assert!(!extension_expected(&nil, false));
        let zero = Vote {
            block_id: Some(BlockId::default()),
            ..precommit.clone()
        };
        assert!(!extension_expected(&zero, false));
        let prevote = Vote {
            r#type: PREVOTE,
            ..precommit
        };
        assert!(!extension_expected(&prevote, false));
    }
}
