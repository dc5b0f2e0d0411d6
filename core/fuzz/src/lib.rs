//! Coverage-guided fuzz targets for `pawl-core` (see `core/fuzz/README.md`).
//!
//! Each target is one function taking the fuzzer's bytes. It panics on a violated invariant
//! (AFL counts a panic as a crash) and returns normally otherwise. The binaries in `src/bin`
//! call the same functions: under `cargo afl build` in AFL's persistent loop, under a plain
//! `cargo build` on the files named on the command line (a replay tool); `tests/replay.rs`
//! runs every committed seed and crash reproducer through them in `cargo test`.
//!
//! | target | what it feeds | invariants |
//! |---|---|---|
//! | [`frame::run`] | bytes as a raw frame, as a stream into `FrameAccumulator`, and as a postcard body behind a valid CRC | no panic; a decoded request or response re-encodes and decodes to itself; the accumulator never hands out a zero byte or more than its capacity |
//! | [`request::run`] | bytes as a signing payload to `request::parse` | no panic; a parsed consensus request carries the chain, level and round Octez reads at its fixed offsets; the policy check does not panic |
//! | [`store::run`] | bytes as a 4-page flash image under `NorStore` and `Board::open` | no panic; the store and the board agree whether it loads; it loads the same way twice; after a durable write it either refuses or holds the mark at or above its position, and every other mark as high as before |
//! | [`board::run`] | bytes as a script of frames, reboots, power cuts, button presses and time against one board under a write budget | no panic; every frame gets one decodable answer; never two payloads released or approved at one (chain, key, kind, level, round); no mark lowered or dropped in operational mode |

pub mod board;
pub mod frame;
pub mod input;
pub mod replay;
pub mod request;
pub mod seeds;
pub mod store;

/// A target: takes the fuzzer's bytes, panics on a violated invariant.
pub type Target = fn(&[u8]);

/// The four targets by name, for the replay tool and the tests.
pub const TARGETS: [(&str, Target); 4] = [
    ("frame", frame::run),
    ("request", request::run),
    ("store", store::run),
    ("board", board::run),
];

/// The target called `name`.
pub fn target(name: &str) -> Option<Target> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

/// One frame `COBS(body ‖ crc32-le) ‖ 0` around any body bytes (the CRC made valid, so a
/// fuzzer's body reaches the postcard decoder).
pub fn frame_of_body(body: &[u8]) -> Vec<u8> {
    const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);
    let mut raw = body.to_vec();
    raw.extend_from_slice(&CRC.checksum(body).to_le_bytes());
    let mut out = vec![0u8; cobs::max_encoding_length(raw.len()) + 1];
    let n = cobs::encode(&raw, &mut out);
    out.truncate(n);
    out.push(0);
    out
}

/// (chain, magic, level, round) read at Octez's fixed offsets (`docs/protocol.md` §3), as
/// the hostile-host fuzzer reads them: level at 38 for tz4 keys (BLS-mode tags), 40 otherwise;
/// a block's round is the last fitness element, at 83 + fitness length.
pub fn octez_position(payload: &[u8], tz4: bool) -> Option<([u8; 4], u8, u32, u32)> {
    let be = |at: usize| -> Option<u32> {
        Some(u32::from_be_bytes(
            payload.get(at..at.checked_add(4)?)?.try_into().ok()?,
        ))
    };
    let magic = *payload.first()?;
    let chain: [u8; 4] = payload.get(1..5)?.try_into().ok()?;
    match magic {
        0x11 => {
            let f = usize::try_from(be(83)?).ok()?;
            Some((chain, magic, be(5)?, be(83usize.checked_add(f)?)?))
        }
        0x12 | 0x13 => {
            let at = if tz4 { 38 } else { 40 };
            Some((chain, magic, be(at)?, be(at + 4)?))
        }
        _ => None,
    }
}
