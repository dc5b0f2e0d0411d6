//! Frames: `COBS(postcard(envelope) ‖ crc32-le) ‖ 0x00`, and a fixed-capacity accumulator that
//! cuts a byte stream into frames and resynchronises after garbage.

use core::fmt;

use serde::{Deserialize, Serialize};

use super::{Envelope, MAX_FRAME};

const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// Why a frame could not be made or read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FrameError {
    /// Longer than the maximum frame.
    TooLong {
        /// Bytes seen before giving up.
        len: u32,
        /// The maximum.
        max: u32,
    },
    /// Not valid COBS.
    Cobs,
    /// Shorter than a CRC.
    TooShort,
    /// The CRC does not match.
    Crc,
    /// The body is not a valid message.
    Decode,
    /// The output buffer is too small for the message.
    BufferTooSmall,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::TooLong { len, max } => {
                write!(
                    f,
                    "frame of at least {len} bytes exceeds the maximum of {max}"
                )
            }
            FrameError::Cobs => f.write_str("invalid COBS framing"),
            FrameError::TooShort => f.write_str("frame shorter than its checksum"),
            FrameError::Crc => f.write_str("frame checksum mismatch"),
            FrameError::Decode => f.write_str("frame does not hold a valid message"),
            FrameError::BufferTooSmall => f.write_str("message too large for the frame buffer"),
        }
    }
}

impl core::error::Error for FrameError {}

fn too_long(len: usize) -> FrameError {
    FrameError::TooLong {
        len: u32::try_from(len).unwrap_or(u32::MAX),
        max: u32::try_from(MAX_FRAME).unwrap_or(u32::MAX),
    }
}

/// Encode `message` with request id `id` into `out` as one complete frame (trailing zero
/// included), using `scratch` for the unframed body. Returns the frame length.
pub fn encode_frame<M: Serialize>(
    id: u32,
    message: &M,
    scratch: &mut [u8],
    out: &mut [u8],
) -> Result<usize, FrameError> {
    let envelope = Envelope { id, message };
    let body_len = postcard::to_slice(&envelope, scratch)
        .map_err(|_| FrameError::BufferTooSmall)?
        .len();
    let crc = CRC.checksum(&scratch[..body_len]).to_le_bytes();
    let total = body_len + crc.len();
    scratch
        .get_mut(body_len..total)
        .ok_or(FrameError::BufferTooSmall)?
        .copy_from_slice(&crc);
    let n = cobs::try_encode(&scratch[..total], out).map_err(|_| FrameError::BufferTooSmall)?;
    if n + 1 > MAX_FRAME {
        return Err(too_long(n + 1));
    }
    *out.get_mut(n).ok_or(FrameError::BufferTooSmall)? = 0;
    Ok(n + 1)
}

/// Decode one frame in place (with or without its trailing zero). The message may borrow from
/// `frame` (a sign request's payload does).
pub fn decode_frame<'a, M: Deserialize<'a>>(
    frame: &'a mut [u8],
) -> Result<Envelope<M>, FrameError> {
    let end = match frame.last() {
        Some(0) => frame.len() - 1,
        _ => frame.len(),
    };
    let frame = &mut frame[..end];
    if frame.len() + 1 > MAX_FRAME {
        return Err(too_long(frame.len() + 1));
    }
    let n = cobs::decode_in_place(frame).map_err(|_| FrameError::Cobs)?;
    let frame: &'a [u8] = &frame[..n];
    if n < 4 {
        return Err(FrameError::TooShort);
    }
    let (body, crc) = frame.split_at(n - 4);
    if CRC.checksum(body).to_le_bytes() != crc {
        return Err(FrameError::Crc);
    }
    postcard::from_bytes(body).map_err(|_| FrameError::Decode)
}

/// Collects bytes from a stream into frames of at most `N` bytes.
///
/// A frame that grows past `N` is dropped up to its terminating zero and reported once as
/// [`FrameError::TooLong`]; the next frame is read normally.
pub struct FrameAccumulator<const N: usize> {
    buf: [u8; N],
    len: usize,
    overflowed: usize,
}

/// What [`FrameAccumulator::feed`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Fed<'a> {
    /// More bytes needed.
    Incomplete,
    /// A complete frame (without its zero), to be decoded with [`decode_frame`].
    Frame(&'a mut [u8]),
    /// A frame was dropped.
    Dropped(FrameError),
}

impl<const N: usize> Default for FrameAccumulator<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> FrameAccumulator<N> {
    /// An empty accumulator.
    pub const fn new() -> Self {
        FrameAccumulator {
            buf: [0; N],
            len: 0,
            overflowed: 0,
        }
    }

    /// Feed bytes; returns the outcome for the first frame boundary found and how many bytes
    /// of `input` were consumed. Call again with the rest.
    pub fn feed<'s>(&'s mut self, input: &[u8]) -> (usize, Fed<'s>) {
        for (i, &b) in input.iter().enumerate() {
            if b == 0 {
                let len = core::mem::take(&mut self.len);
                let overflowed = core::mem::take(&mut self.overflowed);
                if overflowed > 0 {
                    return (i + 1, Fed::Dropped(too_long(overflowed)));
                }
                if len == 0 {
                    continue; // stray zero between frames
                }
                return (i + 1, Fed::Frame(&mut self.buf[..len]));
            }
            if self.overflowed > 0 {
                self.overflowed += 1;
            } else if self.len < N {
                self.buf[self.len] = b;
                self.len += 1;
            } else {
                self.overflowed = self.len + 1;
                self.len = 0;
            }
        }
        (input.len(), Fed::Incomplete)
    }
}
