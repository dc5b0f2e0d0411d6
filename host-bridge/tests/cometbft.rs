//! The CometBFT client against a fake node on a Unix socket, with a fake board.
//!
//! The node side writes its requests as bytes assembled here by hand, field by field, from
//! CometBFT's proto definitions (not with the bridge's own structs), and the sign bytes the
//! board must receive are the vectors generated with CometBFT's Go `types.VoteSignBytes`
//! (published in tendermint-rs, `tendermint/src/vote/sign_vote.rs`). Answers are read with
//! the bridge's structs and checked field by field.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use pawl_bridge::cometbft::client::{ClientSettings, run};
use pawl_bridge::cometbft::metrics::CometMetrics;
use pawl_bridge::cometbft::proto::{Message, Sum, Timestamp};
use pawl_bridge::cometbft::transport::NodeAddress;
use pawl_bridge::cometbft::{CometBoard, Refused, SignItem, Signed};
use pawl_core::keys::PublicKeyHash;
use prost::Message as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{UnixListener, UnixStream};

const CHAIN: &str = "test_chain_id";
const PUBLIC_KEY: [u8; 32] = [0x5a; 32];

/// What the fake board does with the next signing request.
#[derive(Clone)]
enum Mode {
    Sign,
    /// Sign, and say the request only differed from the recorded one by its timestamp.
    Retry(Timestamp),
    Refuse(Refused),
}

struct FakeBoard {
    asked: Mutex<Vec<SignItem>>,
    mode: Mutex<Mode>,
}

impl CometBoard for FakeBoard {
    async fn public_key(&self, _key: &PublicKeyHash) -> Result<[u8; 32], Refused> {
        Ok(PUBLIC_KEY)
    }

    async fn sign(&self, _key: &PublicKeyHash, item: SignItem) -> Result<Signed, Refused> {
        let extension = matches!(
            &item,
            SignItem::Vote {
                extension: Some(_),
                ..
            }
        );
        self.asked.lock().expect("lock").push(item);
        let mode = self.mode.lock().expect("lock").clone();
        match mode {
            Mode::Refuse(r) => Err(r),
            Mode::Sign | Mode::Retry(_) => Ok(Signed {
                signature: [0x11; 64],
                timestamp: match mode {
                    Mode::Retry(t) => Some(t),
                    _ => None,
                },
                extension_signature: extension.then_some([0x22; 64]),
            }),
        }
    }
}

/// A protobuf field: tag byte(s) for `number` with wire type 2 (bytes), its length, the bytes.
fn field(number: u8, bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![(number << 3) | 2];
    out.extend(uvarint(bytes.len() as u64));
    out.extend(bytes);
    out
}

fn uvarint(mut v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// 2017-12-25T03:00:01.234Z, the Go vector's time, as a `Timestamp`'s fields.
const VECTOR_TIME: [u8; 11] = [
    0x08, 0xb1, 0xd3, 0x81, 0xd2, 0x05, 0x10, 0x80, 0x9d, 0xca, 0x6f,
];

/// `types.Vote` at height 12345, round 2, for the block of the Go vector, field by field.
fn vote_bytes(vote_type: u8, extension: &[u8]) -> Vec<u8> {
    vote_bytes_at(
        vote_type,
        extension,
        &VECTOR_TIME,
        b"DEADBEEFDEADBEEFBAFBAFBAFBAFBAFA",
    )
}

fn vote_bytes_at(vote_type: u8, extension: &[u8], time: &[u8], hash: &[u8]) -> Vec<u8> {
    let mut psh = vec![0x08, 0xc0, 0x84, 0x3d]; // total 1000000
    psh.extend(field(2, b"0022446688AACCEE1133557799BBDDFF"));
    let mut block_id = field(1, hash);
    block_id.extend(field(2, &psh));
    let mut v = vec![0x08, vote_type, 0x10, 0xb9, 0x60, 0x18, 0x02]; // type, height, round
    v.extend(field(4, &block_id));
    v.extend(field(5, time));
    v.extend(field(6, &[0xa3; 20])); // validator address
    v.extend([0x38, 0xd5, 0xbb, 0x03]); // validator index 56789
    if !extension.is_empty() {
        v.extend(field(9, extension));
    }
    v
}

/// `VoteSignBytes("test_chain_id", vote)` of CometBFT's Go for that vote (prevote; byte 2 is
/// the type).
fn go_vote_sign_bytes(vote_type: u8) -> Vec<u8> {
    let mut b = vec![
        124, 8, 1, 17, 57, 48, 0, 0, 0, 0, 0, 0, 25, 2, 0, 0, 0, 0, 0, 0, 0, 34, 74, 10, 32, 68,
        69, 65, 68, 66, 69, 69, 70, 68, 69, 65, 68, 66, 69, 69, 70, 66, 65, 70, 66, 65, 70, 66, 65,
        70, 66, 65, 70, 66, 65, 70, 65, 18, 38, 8, 192, 132, 61, 18, 32, 48, 48, 50, 50, 52, 52,
        54, 54, 56, 56, 65, 65, 67, 67, 69, 69, 49, 49, 51, 51, 53, 53, 55, 55, 57, 57, 66, 66, 68,
        68, 70, 70, 42, 11, 8, 177, 211, 129, 210, 5, 16, 128, 157, 202, 111, 50, 13, 116, 101,
        115, 116, 95, 99, 104, 97, 105, 110, 95, 105, 100,
    ];
    b[2] = vote_type;
    b
}

/// `privval.Message` holding a `SignVoteRequest` (field 3).
fn sign_vote_request(vote: &[u8], chain: &str) -> Vec<u8> {
    let mut r = field(1, vote);
    r.extend(field(2, chain.as_bytes()));
    field(3, &r)
}

struct Node {
    listener: UnixListener,
    conn: UnixStream,
}

impl Node {
    async fn ask(&mut self, message: &[u8]) -> Message {
        let mut framed = uvarint(message.len() as u64);
        framed.extend(message);
        self.conn.write_all(&framed).await.expect("write");
        // The answer: a uvarint length, then the message.
        let mut length = 0u64;
        let mut shift = 0;
        loop {
            let b = self.conn.read_u8().await.expect("length");
            length |= u64::from(b & 0x7f) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                break;
            }
        }
        let mut body = vec![0; length as usize];
        self.conn.read_exact(&mut body).await.expect("body");
        Message::decode(body.as_slice()).expect("a privval message")
    }

    async fn accept(&mut self) {
        let (conn, _) = tokio::time::timeout(Duration::from_secs(5), self.listener.accept())
            .await
            .expect("the signer dials again")
            .expect("accept");
        self.conn = conn;
    }
}

#[tokio::test]
async fn the_client_answers_a_node_over_a_unix_socket() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("privval.sock");
    let listener = UnixListener::bind(&path).expect("bind");
    let board = Arc::new(FakeBoard {
        asked: Mutex::new(Vec::new()),
        mode: Mutex::new(Mode::Sign),
    });
    let metrics = Arc::new(CometMetrics::default());
    let settings = ClientSettings {
        chain_id: CHAIN.into(),
        address: NodeAddress::Unix(path.clone()),
        key: PublicKeyHash::from_b58("tz1KqTpEZ7Yob7QbPE4Hy4Wo8fHG8LhKxZSx").expect("pkh"),
        connect_timeout: Duration::from_secs(2),
        idle_timeout: Duration::from_secs(30),
        max_backoff: Duration::from_millis(200),
    };
    let identity = Arc::new(cometbft_p2p::IdentitySecret::from_bytes(&[9; 32]));
    let client = tokio::spawn(run(
        Arc::clone(&board),
        settings,
        identity,
        Arc::clone(&metrics),
    ));
    let (conn, _) = tokio::time::timeout(Duration::from_secs(5), listener.accept())
        .await
        .expect("the signer dials")
        .expect("accept");
    let mut node = Node { listener, conn };

    // Ping (field 7, empty).
    let pong = node.ask(&field(7, &[])).await;
    assert!(matches!(pong.sum, Some(Sum::PingResponse(_))), "{pong:?}");

    // The public key, in both the 0.38 and the 1.0 fields.
    let answer = node.ask(&field(1, &field(1, CHAIN.as_bytes()))).await;
    let Some(Sum::PubKeyResponse(pk)) = answer.sum else {
        panic!("{answer:?}")
    };
    assert_eq!(pk.error, None);
    assert_eq!(pk.pub_key.map(|k| k.ed25519), Some(PUBLIC_KEY.to_vec()));
    assert_eq!(pk.pub_key_bytes, PUBLIC_KEY);
    assert_eq!(pk.pub_key_type, "ed25519");
    // Another chain: an error and no key.
    let answer = node.ask(&field(1, &field(1, b"other-1"))).await;
    let Some(Sum::PubKeyResponse(pk)) = answer.sum else {
        panic!("{answer:?}")
    };
    assert!(
        pk.error
            .is_some_and(|e| e.code == 1 && e.description.contains("other-1"))
    );
    assert!(pk.pub_key.is_none() && pk.pub_key_bytes.is_empty());

    // A prevote: the board gets Go's sign bytes, no extension; the signature goes in.
    let answer = node
        .ask(&sign_vote_request(&vote_bytes(1, &[]), CHAIN))
        .await;
    let Some(Sum::SignedVoteResponse(r)) = answer.sum else {
        panic!("{answer:?}")
    };
    assert_eq!(r.error, None);
    let vote = r.vote.expect("vote");
    assert_eq!(vote.signature, [0x11; 64]);
    assert!(vote.extension_signature.is_empty());
    assert_eq!(vote.validator_index, 56789);
    assert_eq!(
        board.asked.lock().expect("lock").pop(),
        Some(SignItem::Vote {
            sign_bytes: go_vote_sign_bytes(1),
            extension: None
        })
    );

    // A precommit for the block with an extension: both sign bytes, both signatures.
    let answer = node
        .ask(&sign_vote_request(&vote_bytes(2, b"ext"), CHAIN))
        .await;
    let Some(Sum::SignedVoteResponse(r)) = answer.sum else {
        panic!("{answer:?}")
    };
    let vote = r.vote.expect("vote");
    assert_eq!(
        (
            vote.signature.as_slice(),
            vote.extension_signature.as_slice()
        ),
        (&[0x11; 64][..], &[0x22; 64][..])
    );
    assert_eq!(vote.extension, b"ext");
    // CanonicalVoteExtension: extension (1), height (2, sfixed64), round (3), chain id (4).
    let mut ext = field(1, b"ext");
    ext.extend([
        0x11, 0x39, 0x30, 0, 0, 0, 0, 0, 0, 0x19, 2, 0, 0, 0, 0, 0, 0, 0,
    ]);
    ext.extend(field(4, CHAIN.as_bytes()));
    let mut ext_sign_bytes = uvarint(ext.len() as u64);
    ext_sign_bytes.extend(ext);
    assert_eq!(
        board.asked.lock().expect("lock").pop(),
        Some(SignItem::Vote {
            sign_bytes: go_vote_sign_bytes(2),
            extension: Some(ext_sign_bytes)
        })
    );

    // A retry that differs only in its timestamp: the recorded timestamp goes into the vote.
    let recorded = Timestamp {
        seconds: 1_514_170_800,
        nanos: 5,
    };
    *board.mode.lock().expect("lock") = Mode::Retry(recorded);
    let answer = node
        .ask(&sign_vote_request(&vote_bytes(1, &[]), CHAIN))
        .await;
    let Some(Sum::SignedVoteResponse(r)) = answer.sum else {
        panic!("{answer:?}")
    };
    assert_eq!(r.vote.and_then(|v| v.timestamp), Some(recorded));

    // A board refusal becomes the answer's error, named, with its code; no vote.
    *board.mode.lock().expect("lock") = Mode::Refuse(Refused {
        reason: "double_sign",
        code: 2,
        description: "prevote at height 12345 round 2 already signed with different data: double sign refused".into(),
    });
    let answer = node
        .ask(&sign_vote_request(&vote_bytes(1, &[]), CHAIN))
        .await;
    let Some(Sum::SignedVoteResponse(r)) = answer.sum else {
        panic!("{answer:?}")
    };
    assert!(r.vote.is_none());
    let e = r.error.expect("error");
    assert_eq!(e.code, 2);
    assert!(e.description.contains("double sign"), "{}", e.description);

    // Another chain: refused before the board is asked. Raw bytes: never signed.
    let before = board.asked.lock().expect("lock").len();
    let answer = node
        .ask(&sign_vote_request(&vote_bytes(1, &[]), "other-1"))
        .await;
    assert!(
        matches!(answer.sum, Some(Sum::SignedVoteResponse(r)) if r.error.as_ref().is_some_and(|e| e.code == 1))
    );
    let answer = node.ask(&field(9, &field(1, b"abc"))).await;
    assert!(
        matches!(answer.sum, Some(Sum::SignBytesResponse(r)) if r.signature.is_empty() && r.error.is_some())
    );
    assert_eq!(board.asked.lock().expect("lock").len(), before);

    // An oversized frame (10241 bytes announced) breaks the connection; the signer dials
    // again and answers on the new one.
    node.conn.write_all(&uvarint(10241)).await.expect("write");
    let mut rest = Vec::new();
    let closed =
        tokio::time::timeout(Duration::from_secs(5), node.conn.read_to_end(&mut rest)).await;
    assert!(matches!(closed, Ok(Ok(0))), "the signer hangs up");
    node.accept().await;
    let pong = node.ask(&field(7, &[])).await;
    assert!(matches!(pong.sum, Some(Sum::PingResponse(_))));

    let mut out = String::new();
    metrics.render(&mut out);
    for line in [
        "pawl_cometbft_signatures_total{chain=\"test_chain_id\",kind=\"prevote\"} 2",
        "pawl_cometbft_signatures_total{chain=\"test_chain_id\",kind=\"precommit\"} 1",
        "pawl_cometbft_refusals_total{chain=\"test_chain_id\",reason=\"double_sign\"} 1",
        "pawl_cometbft_refusals_total{chain=\"test_chain_id\",reason=\"wrong_chain\"} 1",
        "pawl_cometbft_refusals_total{chain=\"test_chain_id\",reason=\"raw_bytes\"} 1",
        "pawl_cometbft_last_signed_height{chain=\"test_chain_id\"} 12345",
    ] {
        assert!(out.lines().any(|l| l == line), "{line} missing from\n{out}");
    }
    let connects = format!(
        "pawl_cometbft_connects_total{{chain=\"test_chain_id\",node=\"unix://{}\"}} 2",
        path.display()
    );
    assert!(
        out.lines().any(|l| l == connects),
        "{connects} missing from\n{out}"
    );
    client.abort();
}

/// Verify a raw Ed25519 signature (CometBFT signs the sign bytes themselves) with openssl.
fn ed25519_verifies(public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    let key =
        openssl::pkey::PKey::public_key_from_raw_bytes(public_key, openssl::pkey::Id::ED25519)
            .expect("ed25519 key");
    let mut v = openssl::sign::Verifier::new_without_digest(&key).expect("verifier");
    v.verify_oneshot(signature, message).unwrap_or(false)
}

/// A `SignProposalRequest` as tendermint-rs encodes it (`tendermint/src/proposal.rs`,
/// `test_deserialization`): height 12345, round 23456, no POL round, the DEADBEEF… block,
/// 2018-02-11T07:09:22.765Z, chain `test_chain_id`.
fn tendermint_rs_sign_proposal_request() -> Vec<u8> {
    let mut r = vec![
        10, 176, 1, 8, 32, 16, 185, 96, 24, 160, 183, 1, 32, 255, 255, 255, 255, 255, 255, 255,
        255, 255, 1, 42, 74, 10, 32, 222, 173, 190, 239, 222, 173, 190, 239, 186, 251, 175, 186,
        251, 175, 186, 250, 222, 173, 190, 239, 222, 173, 190, 239, 186, 251, 175, 186, 251, 175,
        186, 250, 18, 38, 8, 255, 255, 3, 18, 32, 0, 34, 68, 102, 136, 170, 204, 238, 17, 51, 85,
        119, 153, 187, 221, 255, 0, 34, 68, 102, 136, 170, 204, 238, 17, 51, 85, 119, 153, 187,
        221, 255, 50, 12, 8, 162, 216, 255, 211, 5, 16, 192, 242, 227, 236, 2, 58, 64,
    ];
    r.extend([0; 64]); // the signature field, zero
    r.extend([18, 13]);
    r.extend(b"test_chain_id");
    r
}

/// `ProposalSignBytes("test_chain_id", that proposal)` from CometBFT's Go (the vector in
/// tendermint-rs `tendermint/src/proposal.rs`, `test_serialization`).
const GO_PROPOSAL_SIGN_BYTES: [u8; 138] = [
    136, 1, 8, 32, 17, 57, 48, 0, 0, 0, 0, 0, 0, 25, 160, 91, 0, 0, 0, 0, 0, 0, 32, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 1, 42, 74, 10, 32, 222, 173, 190, 239, 222, 173, 190, 239, 186,
    251, 175, 186, 251, 175, 186, 250, 222, 173, 190, 239, 222, 173, 190, 239, 186, 251, 175, 186,
    251, 175, 186, 250, 18, 38, 8, 255, 255, 3, 18, 32, 0, 34, 68, 102, 136, 170, 204, 238, 17, 51,
    85, 119, 153, 187, 221, 255, 0, 34, 68, 102, 136, 170, 204, 238, 17, 51, 85, 119, 153, 187,
    221, 255, 50, 12, 8, 162, 216, 255, 211, 5, 16, 192, 242, 227, 236, 2, 58, 13, 116, 101, 115,
    116, 95, 99, 104, 97, 105, 110, 95, 105, 100,
];

#[test]
fn the_virtual_board_signs_through_the_client_and_its_rules_hold() {
    use pawl_core::protocol::cometbft::CometRequest;
    use pawl_core::protocol::{Request, Response};

    let dir = tempfile::tempdir().expect("tempdir");
    let link = support::virtual_link(dir.path());
    let pkh = support::import(&link, support::SIGNATORY_SK, Default::default());
    let pkh = PublicKeyHash::from_b58(&pkh).expect("pkh");
    let pinned = link
        .ask_blocking(&Request::CometBft(CometRequest::SetChain {
            pkh,
            chain_id: CHAIN,
        }))
        .expect("link");
    assert!(
        matches!(pinned.response, Response::KeyInfo(_)),
        "{pinned:?}"
    );
    let public_key = support::b58(support::SIGNATORY_PK, 4);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(serve_the_node(dir.path(), link, pkh, public_key));
}

async fn serve_the_node(
    dir: &std::path::Path,
    link: pawl_bridge::link::Link,
    pkh: PublicKeyHash,
    public_key: Vec<u8>,
) {
    use pawl_bridge::boards::Boards;
    use pawl_bridge::cometbft::board::BoardSigner;

    let path = dir.join("privval.sock");
    let listener = UnixListener::bind(&path).expect("bind");
    let settings = ClientSettings {
        chain_id: CHAIN.into(),
        address: NodeAddress::Unix(path),
        key: pkh,
        connect_timeout: Duration::from_secs(2),
        idle_timeout: Duration::from_secs(30),
        max_backoff: Duration::from_millis(200),
    };
    let client = tokio::spawn(run(
        Arc::new(BoardSigner {
            boards: Boards::single("board", link),
            yubihsm: None,
        }),
        settings,
        Arc::new(cometbft_p2p::IdentitySecret::from_bytes(&[9; 32])),
        Arc::new(CometMetrics::default()),
    ));
    let (conn, _) = tokio::time::timeout(Duration::from_secs(5), listener.accept())
        .await
        .expect("the signer dials")
        .expect("accept");
    let mut node = Node { listener, conn };

    let answer = node.ask(&field(1, &field(1, CHAIN.as_bytes()))).await;
    assert!(
        matches!(&answer.sum, Some(Sum::PubKeyResponse(r)) if r.pub_key_bytes == public_key),
        "{answer:?}"
    );

    // A prevote: the board's signature verifies over Go's sign bytes.
    let answer = node
        .ask(&sign_vote_request(&vote_bytes(1, &[]), CHAIN))
        .await;
    let Some(Sum::SignedVoteResponse(r)) = answer.sum else {
        panic!("{answer:?}")
    };
    let first = r.vote.expect("signed").signature;
    assert!(ed25519_verifies(
        &public_key,
        &go_vote_sign_bytes(1),
        &first
    ));

    // The same prevote stamped a second later: the board answers with the signature and the
    // timestamp it recorded, and the signature still verifies over the first sign bytes.
    let later = [
        0x08, 0xb2, 0xd3, 0x81, 0xd2, 0x05, 0x10, 0x80, 0x9d, 0xca, 0x6f,
    ];
    let answer = node
        .ask(&sign_vote_request(
            &vote_bytes_at(1, &[], &later, b"DEADBEEFDEADBEEFBAFBAFBAFBAFBAFA"),
            CHAIN,
        ))
        .await;
    let Some(Sum::SignedVoteResponse(r)) = answer.sum else {
        panic!("{answer:?}")
    };
    let vote = r
        .vote
        .unwrap_or_else(|| panic!("the recorded signature: {:?}", r.error));
    assert_eq!(vote.signature, first);
    assert_eq!(
        vote.timestamp,
        Some(Timestamp {
            seconds: 1_514_170_801,
            nanos: 234_000_000
        })
    );

    // Another block at the same height, round and step: a double sign, refused with code 2.
    let other = vote_bytes_at(1, &[], &VECTOR_TIME, b"0000000000000000BAFBAFBAFBAFBAFA");
    let answer = node.ask(&sign_vote_request(&other, CHAIN)).await;
    let Some(Sum::SignedVoteResponse(r)) = answer.sum else {
        panic!("{answer:?}")
    };
    assert!(r.vote.is_none());
    let e = r.error.expect("refused");
    assert_eq!(e.code, 2, "{}", e.description);

    // The precommit with an extension: both signatures verify.
    let answer = node
        .ask(&sign_vote_request(&vote_bytes(2, b"ext"), CHAIN))
        .await;
    let Some(Sum::SignedVoteResponse(r)) = answer.sum else {
        panic!("{answer:?}")
    };
    let vote = r.vote.expect("signed");
    assert!(ed25519_verifies(
        &public_key,
        &go_vote_sign_bytes(2),
        &vote.signature
    ));
    let mut ext = field(1, b"ext");
    ext.extend([
        0x11, 0x39, 0x30, 0, 0, 0, 0, 0, 0, 0x19, 2, 0, 0, 0, 0, 0, 0, 0,
    ]);
    ext.extend(field(4, CHAIN.as_bytes()));
    let mut ext_sign_bytes = uvarint(ext.len() as u64);
    ext_sign_bytes.extend(ext);
    assert!(ed25519_verifies(
        &public_key,
        &ext_sign_bytes,
        &vote.extension_signature
    ));

    // A proposal in a later round, as tendermint-rs encodes the request.
    let answer = node
        .ask(&field(5, &tendermint_rs_sign_proposal_request()))
        .await;
    let Some(Sum::SignedProposalResponse(r)) = answer.sum else {
        panic!("{answer:?}")
    };
    let proposal = r.proposal.expect("signed");
    assert!(ed25519_verifies(
        &public_key,
        &GO_PROPOSAL_SIGN_BYTES,
        &proposal.signature
    ));
    client.abort();
}

/// Over `tcp://` the client runs SecretConnection and, when the address pins a node id, talks
/// to that node only. (The node side here uses the same `cometbft-p2p` crate; the independent
/// tendermint-p2p node is the end-to-end test's, `tests/e2e/test_cometbft.py`.)
#[tokio::test]
async fn over_tcp_the_pinned_node_is_served_and_another_is_not() {
    use cometbft_p2p::{
        AsyncReadMsg as _, AsyncSecretConnection, AsyncWriteMsg as _, IdentitySecret,
    };

    let node_key = IdentitySecret::from_bytes(&[3; 32]);
    let node_id = pawl_bridge::cometbft::identity::node_id(&node_key);
    let signer_key = IdentitySecret::from_bytes(&[4; 32]);
    let signer_id = pawl_bridge::cometbft::identity::node_id(&signer_key);
    let board = Arc::new(FakeBoard {
        asked: Mutex::new(Vec::new()),
        mode: Mutex::new(Mode::Sign),
    });
    for (pin, served) in [(node_id.clone(), true), ("ab".repeat(20), false)] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let metrics = Arc::new(CometMetrics::default());
        let settings = ClientSettings {
            chain_id: CHAIN.into(),
            address: format!("tcp://{pin}@127.0.0.1:{port}")
                .parse()
                .expect("address"),
            key: PublicKeyHash::from_b58("tz1KqTpEZ7Yob7QbPE4Hy4Wo8fHG8LhKxZSx").expect("pkh"),
            connect_timeout: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(30),
            max_backoff: Duration::from_millis(200),
        };
        let client = tokio::spawn(run(
            Arc::clone(&board),
            settings,
            Arc::new(IdentitySecret::from_bytes(&[4; 32])),
            Arc::clone(&metrics),
        ));
        let (tcp, _) = tokio::time::timeout(Duration::from_secs(5), listener.accept())
            .await
            .expect("the signer dials")
            .expect("accept");
        let mut conn = AsyncSecretConnection::new(tcp, &node_key)
            .await
            .expect("handshake");
        // The node sees the signer's identity, the one `pawl cometbft identity` prints.
        assert_eq!(conn.peer_public_key().peer_id().to_string(), signer_id);
        let ping = Message::of(Sum::PingRequest(
            pawl_bridge::cometbft::proto::PingRequest {},
        ));
        conn.write_msg(ping).await.expect("write");
        let answer = tokio::time::timeout(Duration::from_secs(2), conn.read_msg::<Message>()).await;
        if served {
            let answer = answer.expect("in time").expect("an answer");
            assert!(
                matches!(answer.sum, Some(Sum::PingResponse(_))),
                "{answer:?}"
            );
        } else {
            assert!(
                matches!(answer, Ok(Err(_))),
                "a node with another id is hung up on"
            );
            let mut out = String::new();
            metrics.render(&mut out);
            assert!(
                out.contains(&format!(
                    "pawl_cometbft_connects_total{{chain=\"test_chain_id\",node=\"tcp://127.0.0.1:{port}\"}} 0"
                )),
                "{out}"
            );
        }
        client.abort();
    }
}

/// `pawl keys generate --role cosmos --chain-id` on the virtual board, then `pawl keys list`:
/// the key is pinned, and its validator address is SHA-256 of the public key (openssl), cut to
/// 20 bytes, in upper-case hex. Flags that do not go together are refused before the board.
#[test]
fn keys_generate_and_list_a_cosmos_key() {
    use base64::Engine as _;

    let home = tempfile::tempdir().expect("tempdir");
    let run = |args: &[&str]| {
        let out = support::pawl(home.path())
            .args(args)
            .output()
            .expect("run pawl");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    for (args, error) in [
        (
            &["--curve", "ed25519", "--role", "cosmos"][..],
            "--role cosmos needs --chain-id",
        ),
        (
            &["--curve", "ed25519", "--chain-id", "c-1"][..],
            "--chain-id goes with --role cosmos",
        ),
        (
            &["--curve", "p256", "--role", "cosmos", "--chain-id", "c-1"][..],
            "tz1 keys on the board",
        ),
    ] {
        let (ok, _, stderr) = run(&[&["keys", "generate"][..], args].concat());
        assert!(!ok && stderr.contains(error), "{args:?}: {stderr}");
    }
    let (ok, _, stderr) = run(&["keys", "list", "--json"]);
    assert!(ok && !stderr.contains("panicked"), "{stderr}");

    let (ok, _, stderr) = run(&[
        "keys",
        "generate",
        "--curve",
        "ed25519",
        "--role",
        "cosmos",
        "--chain-id",
        "test-1",
    ]);
    assert!(ok, "{stderr}");
    let (ok, stdout, stderr) = run(&["--json", "keys", "list"]);
    assert!(ok, "{stderr}");
    let list: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    let key = &list["keys"][0];
    assert_eq!(key["duty"]["role"], "cosmos");
    let raw = support::b58(key["public_key"].as_str().expect("edpk"), 4);
    let cosmos = &key["cosmos"];
    assert_eq!(cosmos["chain_id"], "test-1");
    assert_eq!(
        cosmos["public_key"],
        base64::engine::general_purpose::STANDARD.encode(&raw)
    );
    let digest = openssl::sha::sha256(&raw);
    assert_eq!(
        cosmos["validator_address"],
        hex::encode_upper(&digest[..20])
    );
}
