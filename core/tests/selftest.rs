//! `pawl device selftest` on the board (issue 18): the self-test never touches the store, signs
//! nothing in operational mode, bounds its flash tests, and its entropy health tests catch the
//! sources they are meant to catch (expected verdicts from the standards' definitions, worked
//! out by hand on constructed streams, not by the code under test).

mod support;

use pawl_core::board::{Board, Instruments, NoButton, Presence, TEST_MESSAGE};
use pawl_core::keys::{Curve, Entropy, KeyError, PublicKeyHash};
use pawl_core::protocol::selftest::{
    BoardKeyState, ButtonCheck, ENTROPY_SAMPLE, EntropyReport, FLASH_TESTS_PER_BOOT, FlashTiming,
    SelfTestRequest, SelfTestResponse, Skip,
};
use pawl_core::protocol::{
    Envelope, MAX_FRAME, Mode, Request, Response, Status, decode_frame, encode_frame,
};
use pawl_core::request::RequestKind;
use pawl_core::sim::VirtualBoard;
use pawl_core::store::MemoryStore;
use support::board::{INFO, TestEntropy};
use support::verify_independently;

/// One request through the virtual board's frame path, as the bridge sends it.
fn ask(board: &mut VirtualBoard, request: &Request<'_>) -> Response {
    let mut scratch = vec![0u8; MAX_FRAME];
    let mut frame = vec![0u8; MAX_FRAME];
    let n = encode_frame(9, request, &mut scratch, &mut frame).expect("encode");
    let mut out = vec![0u8; MAX_FRAME];
    let m = board
        .handle_frame(&mut frame[..n], &mut out)
        .expect("answer");
    let env: Envelope<Response> = decode_frame(&mut out[..m]).expect("decode");
    env.message
}

fn self_test(board: &mut VirtualBoard, request: SelfTestRequest<'_>) -> SelfTestResponse {
    match ask(board, &Request::SelfTest(request)) {
        Response::SelfTest(r) => r,
        other => panic!("self-test answered {other:?}"),
    }
}

fn status(board: &mut VirtualBoard) -> Status {
    match ask(board, &Request::Status) {
        Response::Status(s) => s,
        other => panic!("{other:?}"),
    }
}

/// Every self-test request, a payload of `echo` bytes for the echo.
fn every_request(echo: &[u8]) -> Vec<SelfTestRequest<'_>> {
    let mut all = vec![SelfTestRequest::Facts];
    all.extend(Curve::ALL.map(|curve| SelfTestRequest::SignTime { curve }));
    all.extend([
        SelfTestRequest::FlashTime,
        SelfTestRequest::Entropy,
        SelfTestRequest::Button,
        SelfTestRequest::Echo { payload: echo },
    ]);
    all
}

/// The store's bytes and counters, and what the board holds, before and after.
struct Snapshot {
    flash: Vec<u8>,
    counter: Vec<u8>,
    status: Status,
    keys: Response,
}

fn snapshot(board: &mut VirtualBoard) -> Snapshot {
    let dir = board.dir().to_path_buf();
    Snapshot {
        flash: std::fs::read(dir.join("flash.bin")).expect("flash.bin"),
        counter: std::fs::read(dir.join("rollback-counter")).unwrap_or_default(),
        status: status(board),
        keys: ask(board, &Request::ListKeys),
    }
}

fn same_store(before: &Snapshot, after: &Snapshot) {
    assert!(before.flash == after.flash, "flash.bin changed");
    assert_eq!(before.counter, after.counter, "rollback counter changed");
    assert_eq!(before.status.wear, after.status.wear, "wear counters moved");
    assert_eq!(before.status.keys, after.status.keys);
    assert_eq!(before.status.marks, after.status.marks);
    assert_eq!(before.status.signatures, after.status.signatures);
    assert_eq!(before.status.mark_writes, after.status.mark_writes);
    assert_eq!(before.keys, after.keys);
}

#[test]
fn provisioning_self_test_signs_with_throw_away_keys_and_leaves_the_store_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut board = VirtualBoard::open(dir.path(), Mode::Provisioning).expect("open");
    let before = snapshot(&mut board);
    let echo = vec![0xA5u8; 1000];
    let mut signed = Vec::new();
    for request in every_request(&echo) {
        match self_test(&mut board, request.clone()) {
            SelfTestResponse::Signed {
                curve,
                sign_us,
                verify_us,
                verified,
                public_key,
                signature,
            } => {
                assert_eq!(SelfTestRequest::SignTime { curve }, request);
                assert!(verified, "{curve:?}");
                assert_eq!(public_key.curve(), curve);
                // Checked by a second implementation, not the board's.
                assert!(verify_independently(&public_key, TEST_MESSAGE, &signature));
                assert!(sign_us < 10_000_000 && verify_us < 10_000_000);
                signed.push((curve, public_key));
            }
            SelfTestResponse::Facts(f) => {
                assert!(f.instruments);
                assert_eq!(f.board_key, BoardKeyState::SimulatedFile);
                assert!(f.scratch_flash);
                assert_eq!(f.flash_tests_left, FLASH_TESTS_PER_BOOT);
                assert!(f.clock.contains("Instant"), "{}", f.clock);
            }
            SelfTestResponse::Flash(FlashTiming::Done {
                bytes,
                erased_ok,
                readback_ok,
                ..
            }) => {
                assert_eq!(bytes, 256);
                assert!(erased_ok && readback_ok);
            }
            SelfTestResponse::Entropy(e) => {
                assert!(e.pass, "{e:?}");
                assert_eq!(e.bytes as usize, ENTROPY_SAMPLE);
            }
            SelfTestResponse::Skipped(Skip::NoButton) => {
                assert_eq!(request, SelfTestRequest::Button);
            }
            SelfTestResponse::Echoed { len, crc } => {
                assert_eq!(len, 1000);
                // CRC-32/ISO-HDLC of 1000 bytes of 0xA5, from zlib (python3 -c
                // "import zlib; print(hex(zlib.crc32(b'\xa5' * 1000)))").
                assert_eq!(crc, 0x2156_b7dc);
            }
            other => panic!("{request:?} answered {other:?}"),
        }
    }
    assert_eq!(signed.len(), 4, "one throw-away key per curve");
    // Two self-tests make different keys: they come from entropy, not a fixed seed.
    let SelfTestResponse::Signed { public_key, .. } = self_test(
        &mut board,
        SelfTestRequest::SignTime {
            curve: Curve::Ed25519,
        },
    ) else {
        panic!("no signature")
    };
    assert_ne!(public_key, signed[0].1);
    let after = snapshot(&mut board);
    same_store(&before, &after);
    assert_eq!(after.status.refusals, before.status.refusals);
    // The scratch sector is a file of its own, left erased.
    let scratch = std::fs::read(dir.path().join("selftest-scratch.bin")).expect("scratch");
    assert_eq!(scratch, vec![0xFF; 4096]);
}

#[test]
fn operational_self_test_signs_nothing_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut board = VirtualBoard::open(dir.path(), Mode::Operational).expect("open");
    let before = snapshot(&mut board);
    for curve in Curve::ALL {
        assert_eq!(
            self_test(&mut board, SelfTestRequest::SignTime { curve }),
            SelfTestResponse::Skipped(Skip::OperationalMode)
        );
    }
    assert_eq!(
        self_test(&mut board, SelfTestRequest::FlashTime),
        SelfTestResponse::Skipped(Skip::OperationalMode)
    );
    // What operational mode still answers.
    assert!(matches!(
        self_test(&mut board, SelfTestRequest::Entropy),
        SelfTestResponse::Entropy(EntropyReport { pass: true, .. })
    ));
    assert!(matches!(
        self_test(&mut board, SelfTestRequest::Facts),
        SelfTestResponse::Facts(_)
    ));
    let after = snapshot(&mut board);
    same_store(&before, &after);
    assert_eq!(after.status.signatures, 0);
    assert!(!dir.path().join("selftest-scratch.bin").exists());
}

#[test]
fn flash_tests_are_bounded_per_boot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut board = VirtualBoard::open(dir.path(), Mode::Provisioning).expect("open");
    for _ in 0..FLASH_TESTS_PER_BOOT {
        assert!(matches!(
            self_test(&mut board, SelfTestRequest::FlashTime),
            SelfTestResponse::Flash(FlashTiming::Done { .. })
        ));
    }
    for _ in 0..3 {
        assert_eq!(
            self_test(&mut board, SelfTestRequest::FlashTime),
            SelfTestResponse::Skipped(Skip::FlashTestsUsed)
        );
    }
    let SelfTestResponse::Facts(f) = self_test(&mut board, SelfTestRequest::Facts) else {
        panic!()
    };
    assert_eq!(f.flash_tests_left, 0);
}

#[test]
fn hostile_self_test_frames_are_refused_and_counted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut board = VirtualBoard::open(dir.path(), Mode::Operational).expect("open");
    let before = snapshot(&mut board);
    // The largest echo a frame carries is answered; nothing is kept.
    let big = vec![0u8; pawl_core::protocol::MAX_SIGN_PAYLOAD];
    assert!(matches!(
        self_test(&mut board, SelfTestRequest::Echo { payload: &big }),
        SelfTestResponse::Echoed { len, .. } if len as usize == big.len()
    ));
    // A self-test frame with an unknown variant, a curve tag past the last, or a truncated
    // body: a frame refusal, counted.
    let mut scratch = vec![0u8; MAX_FRAME];
    let mut frame = vec![0u8; MAX_FRAME];
    let n = encode_frame(
        3,
        &Request::SelfTest(SelfTestRequest::Facts),
        &mut scratch,
        &mut frame,
    )
    .expect("encode");
    // The envelope up to the self-test request: id and the Request variant, learnt from a
    // valid frame (its body ends with the Facts tag, one byte, then the CRC).
    let valid = cobs_decode(&frame[..n - 1]);
    let prefix = &valid[..valid.len() - 4 - 1];
    let mut refusals = 0;
    for body in [vec![200u8], vec![1, 9], vec![5, 200, 200], vec![9]] {
        let mut envelope = prefix.to_vec();
        envelope.extend_from_slice(&body);
        let crc = crc32(&envelope);
        envelope.extend_from_slice(&crc.to_le_bytes());
        let mut hostile = cobs_encode(&envelope);
        let mut out = vec![0u8; MAX_FRAME];
        let m = board.handle_frame(&mut hostile, &mut out).expect("answer");
        let env: Envelope<Response> = decode_frame(&mut out[..m]).expect("decode");
        assert!(
            matches!(env.message, Response::Refused(_)),
            "{body:?}: {:?}",
            env.message
        );
        refusals += 1;
    }
    let after = snapshot(&mut board);
    same_store(&before, &after);
    assert_eq!(after.status.refusals, before.status.refusals + refusals);
}

fn crc32(bytes: &[u8]) -> u32 {
    // CRC-32/ISO-HDLC, bitwise (reflected polynomial 0xEDB88320), written out here.
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn cobs_encode(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8];
    let mut code_at = 0;
    let mut code = 1u8;
    for &b in data {
        if b == 0 {
            out[code_at] = code;
            code_at = out.len();
            out.push(0);
            code = 1;
        } else {
            out.push(b);
            code += 1;
            if code == 0xFF {
                out[code_at] = code;
                code_at = out.len();
                out.push(0);
                code = 1;
            }
        }
    }
    out[code_at] = code;
    out.push(0);
    out
}

fn cobs_decode(frame: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < frame.len() {
        let code = frame[i] as usize;
        out.extend_from_slice(&frame[i + 1..i + code]);
        i += code;
        if code < 0xFF && i < frame.len() {
            out.push(0);
        }
    }
    out
}

/// A board over a memory store with `entropy`, to read its entropy report.
fn entropy_report<E: Entropy>(entropy: E) -> EntropyReport {
    let mut board = Board::open(
        MemoryStore::default(),
        entropy,
        NoButton,
        Mode::Operational,
        INFO,
    );
    match board.handle(Request::SelfTest(SelfTestRequest::Entropy)) {
        Response::SelfTest(SelfTestResponse::Entropy(e)) => e,
        other => panic!("{other:?}"),
    }
}

/// Cycles through every byte value with exactly `ones` one bits, in increasing order.
struct Cycle {
    values: Vec<u8>,
    at: usize,
    /// Before sample `n`, insert `len` copies of the next value (a run).
    run: Option<(usize, usize)>,
    /// Put the window's first value at these positions of the first window too.
    repeat_first: usize,
    drawn: usize,
    fail: bool,
}

impl Cycle {
    fn new(ones: u32) -> Cycle {
        Cycle {
            values: (0..=255u8).filter(|v| v.count_ones() == ones).collect(),
            at: 0,
            run: None,
            repeat_first: 0,
            drawn: 0,
            fail: false,
        }
    }

    fn next(&mut self) -> u8 {
        let n = self.drawn;
        self.drawn += 1;
        if let Some((start, len)) = self.run
            && n >= start
            && n < start + len
        {
            return 0xAA; // 4 ones, so the monobit count is unchanged in a popcount-4 stream
        }
        // Every 8th sample of the first window repeats the window's first value.
        if n > 0 && n < 512 && n.is_multiple_of(8) && n / 8 < self.repeat_first {
            return self.values[0];
        }
        let v = self.values[self.at % self.values.len()];
        self.at += 1;
        v
    }
}

impl Entropy for Cycle {
    fn fill(&mut self, dest: &mut [u8]) -> Result<(), KeyError> {
        if self.fail {
            return Err(KeyError::EntropyFailed);
        }
        for b in dest {
            *b = self.next();
        }
        Ok(())
    }
}

#[test]
fn entropy_health_tests_catch_what_they_should() {
    // 70 values with four one bits, cycled: exactly 10,000 ones in 20,000 bits, no value twice
    // in a row, each value 7 or 8 times a window: passes all three.
    let good = entropy_report(Cycle::new(4));
    assert!(good.pass, "{good:?}");
    assert_eq!(good.monobit_ones, 10_000);
    assert_eq!(good.longest_run, 1);
    assert_eq!(good.bytes as usize, ENTROPY_SAMPLE);

    // 56 values with three one bits: 7,500 ones, below FIPS 140-2's 9,725.
    let light = entropy_report(Cycle::new(3));
    assert_eq!(light.monobit_ones, 7_500);
    assert!(!light.pass);
    assert!(light.longest_run < 6 && light.apt_max < 62, "{light:?}");

    // A run of 6 equal bytes fails the repetition count test (cutoff 1 + 20/4 = 6); 5 passes.
    for (len, pass) in [(5, true), (6, false)] {
        let mut c = Cycle::new(4);
        c.run = Some((1000, len));
        let r = entropy_report(c);
        assert_eq!(r.longest_run as usize, len);
        assert_eq!(r.pass, pass, "run of {len}: {r:?}");
    }

    // The first window's first value 62 times in the window fails the adaptive proportion
    // test (SP 800-90B Table 2: W = 512, H = 4 → 62); 61 passes. Value 0 of the cycle comes
    // back by itself at positions 0, 70, 140, … (7 or 8 times), so the repeats are tuned.
    let natural = |repeats: usize| {
        let mut c = Cycle::new(4);
        c.repeat_first = repeats;
        entropy_report(c).apt_max
    };
    let base = natural(1);
    let mut found = (None, None);
    for k in 1..64 {
        let max = natural(k);
        if max == 61 {
            found.0 = Some(k);
        }
        if max == 62 {
            found.1 = Some(k);
        }
    }
    let (Some(k61), Some(k62)) = found else {
        panic!("could not tune the first window (base {base})")
    };
    let mut c = Cycle::new(4);
    c.repeat_first = k61;
    assert!(entropy_report(c).pass);
    let mut c = Cycle::new(4);
    c.repeat_first = k62;
    let r = entropy_report(c);
    assert_eq!(r.apt_max, 62);
    assert!(!r.pass, "{r:?}");

    // A dead source: nothing drawn, failed.
    let mut dead = Cycle::new(4);
    dead.fail = true;
    let r = entropy_report(dead);
    assert!(!r.source_ok && !r.pass && r.bytes == 0);

    // A deterministic generator that is not stuck passes (not a proof of quality).
    assert!(entropy_report(TestEntropy(7)).pass);
}

/// A board button the self-test can press.
struct Pressable(Option<bool>);

impl Presence for Pressable {
    fn confirm(&mut self, _: &PublicKeyHash, _: RequestKind) -> bool {
        false
    }
    fn wait_press(&mut self) -> Option<bool> {
        self.0
    }
}

struct FixedClock;

impl Instruments for FixedClock {
    fn now_us(&self) -> u64 {
        7
    }
    fn clock(&self) -> &'static str {
        "fixed"
    }
    fn board_key(&self) -> BoardKeyState {
        BoardKeyState::OtpLocked
    }
}

static FIXED: FixedClock = FixedClock;

#[test]
fn button_and_missing_instruments() {
    let answer = |press: Option<bool>, lend: bool, request: SelfTestRequest<'static>| {
        let mut board = Board::open(
            MemoryStore::default(),
            TestEntropy(3),
            Pressable(press),
            Mode::Provisioning,
            INFO,
        );
        if lend {
            board.lend(&FIXED);
        }
        match board.handle(Request::SelfTest(request)) {
            Response::SelfTest(r) => r,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(
        answer(Some(true), true, SelfTestRequest::Button),
        SelfTestResponse::Button(ButtonCheck::Pressed { after_us: 0 })
    );
    assert_eq!(
        answer(Some(false), false, SelfTestRequest::Button),
        SelfTestResponse::Button(ButtonCheck::NotPressed)
    );
    assert_eq!(
        answer(None, true, SelfTestRequest::Button),
        SelfTestResponse::Skipped(Skip::NoButton)
    );
    // Without instruments nothing is timed, and no key is made.
    assert_eq!(
        answer(
            None,
            false,
            SelfTestRequest::SignTime {
                curve: Curve::Bls12_381
            }
        ),
        SelfTestResponse::Skipped(Skip::NoInstruments)
    );
    assert_eq!(
        answer(None, false, SelfTestRequest::FlashTime),
        SelfTestResponse::Skipped(Skip::NoInstruments)
    );
    // Instruments without a scratch sector: no flash test.
    assert_eq!(
        answer(None, true, SelfTestRequest::FlashTime),
        SelfTestResponse::Skipped(Skip::NoScratch)
    );
    let SelfTestResponse::Facts(f) = answer(None, false, SelfTestRequest::Facts) else {
        panic!()
    };
    assert!(!f.instruments && f.board_key == BoardKeyState::Unknown);
    let SelfTestResponse::Facts(f) = answer(None, true, SelfTestRequest::Facts) else {
        panic!()
    };
    assert!(f.instruments && f.board_key == BoardKeyState::OtpLocked && !f.scratch_flash);
    assert_eq!(f.clock.as_str(), "fixed");
}
