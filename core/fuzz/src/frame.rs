//! Target `frame`: the device protocol's frame decoder and accumulator, both directions.

use pawl_core::protocol::{
    Envelope, Fed, FrameAccumulator, MAX_BODY, MAX_FRAME, Request, Response, decode_frame,
    encode_frame,
};
use serde::Serialize;

/// Small enough that fuzzer inputs overflow it (the `TooLong` path).
const SMALL: usize = 48;

/// Run one input: as a frame, as a byte stream, and as a body behind a valid CRC.
pub fn run(data: &[u8]) {
    // 1. The bytes as one frame, with and without its trailing zero: what `handle_frame` and
    //    the bridge's reader see.
    decode_both(data);
    // 2. The bytes as a stream through the accumulators the board (MAX_FRAME) and a small one.
    stream::<MAX_FRAME>(data);
    stream::<SMALL>(data);
    // 3. The bytes as a postcard body with a valid CRC: the decoder proper.
    let framed = crate::frame_of_body(data);
    decode_both(&framed);
}

fn decode_both(bytes: &[u8]) {
    let mut copy = bytes.to_vec();
    if let Ok(envelope) = decode_frame::<Request<'_>>(&mut copy) {
        round_trip_request(&envelope);
    }
    let mut copy = bytes.to_vec();
    if let Ok(envelope) = decode_frame::<Response>(&mut copy) {
        let again = re_encode(&envelope);
        let mut again = again;
        let back = decode_frame::<Response>(&mut again).expect("a re-encoded response decodes");
        assert_eq!(back, envelope, "response changed through encode/decode");
    }
}

fn round_trip_request(envelope: &Envelope<Request<'_>>) {
    let mut again = re_encode(envelope);
    let back = decode_frame::<Request<'_>>(&mut again).expect("a re-encoded request decodes");
    assert_eq!(back, *envelope, "request changed through encode/decode");
}

/// Encode a decoded envelope again through the real `encode_frame`.
fn re_encode<M: Serialize>(envelope: &Envelope<M>) -> Vec<u8> {
    let mut scratch = vec![0u8; MAX_BODY + 64];
    let mut out = vec![0u8; MAX_FRAME + 64];
    let n = encode_frame(envelope.id, &envelope.message, &mut scratch, &mut out)
        .expect("what decoded from at most MAX_FRAME bytes encodes again");
    assert!(n <= MAX_FRAME, "encoded frame of {n} bytes");
    assert_eq!(out[n - 1], 0, "frame not ended by a zero");
    assert!(
        !out[..n - 1].contains(&0),
        "zero byte inside an encoded frame"
    );
    out.truncate(n);
    out
}

/// Feed `data` to an accumulator in chunks whose sizes come from the data itself.
fn stream<const N: usize>(data: &[u8]) {
    let mut acc = FrameAccumulator::<N>::new();
    let chunk = usize::from(data.first().copied().unwrap_or(1)).max(1);
    for piece in data.chunks(chunk) {
        let mut rest = piece;
        while !rest.is_empty() {
            let (used, fed) = acc.feed(rest);
            assert!(
                used >= 1 && used <= rest.len(),
                "feed consumed {used} of {}",
                rest.len()
            );
            if let Fed::Frame(frame) = fed {
                assert!(
                    !frame.is_empty() && frame.len() <= N,
                    "frame of {}",
                    frame.len()
                );
                assert!(!frame.contains(&0), "zero byte inside an accumulated frame");
                if let Ok(envelope) = decode_frame::<Request<'_>>(frame) {
                    round_trip_request(&envelope);
                }
            }
            rest = &rest[used..];
        }
    }
}
