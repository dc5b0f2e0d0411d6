//! Framing of privval messages on a plain stream (`unix://`): each message is a uvarint length
//! then that many bytes of `privval.Message`, at most [`MAX_MESSAGE`] bytes — CometBFT's
//! `protoio` delimited reader with the signer endpoint's limit (`maxRemoteSignerMsgSize`,
//! 10 KiB). Over `tcp://` the same length-delimited messages travel inside the
//! SecretConnection, whose crate does this framing ([`super::transport`]).

use prost::Message as _;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

use super::proto::Message;

/// Largest message body (without its length prefix), as CometBFT's signer endpoint reads.
pub const MAX_MESSAGE: usize = 10 * 1024;

/// Why a message could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The stream ended or failed.
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    /// The length prefix is not a uvarint of at most 10 bytes.
    #[error("bad length prefix")]
    Length,
    /// The message is longer than [`MAX_MESSAGE`].
    #[error("message of {0} bytes is over the {MAX_MESSAGE}-byte limit")]
    TooLong(u64),
    /// The bytes are not a `privval.Message`.
    #[error("not a privval message: {0}")]
    Decode(#[from] prost::DecodeError),
}

/// Read one message. The length is checked before anything else is read or allocated.
pub async fn read<R: AsyncRead + Unpin>(r: &mut R) -> Result<Message, CodecError> {
    let mut length: u64 = 0;
    let mut shift = 0;
    loop {
        let byte = r.read_u8().await?;
        if shift > 63 {
            return Err(CodecError::Length);
        }
        length |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    if length > MAX_MESSAGE as u64 {
        return Err(CodecError::TooLong(length));
    }
    let mut body = vec![0; length as usize];
    r.read_exact(&mut body).await?;
    Ok(Message::decode(body.as_slice())?)
}

/// Write one message (refused, and nothing written, when it is longer than the node reads).
pub async fn write<W: AsyncWrite + Unpin>(w: &mut W, message: &Message) -> Result<(), CodecError> {
    let length = message.encoded_len();
    if length > MAX_MESSAGE {
        return Err(CodecError::TooLong(length as u64));
    }
    w.write_all(&message.encode_length_delimited_to_vec())
        .await?;
    w.flush().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::proto::{PingRequest, Sum};
    use super::*;

    fn read_all(bytes: &[u8]) -> Result<Message, CodecError> {
        let mut bytes = bytes;
        tokio::runtime::Builder::new_current_thread()
            .build()
            .map_err(CodecError::Io)?
            .block_on(read(&mut bytes))
    }

    #[test]
    fn a_ping_is_three_bytes() {
        // uvarint 2 ‖ field 7, length 0: a PingRequest as CometBFT writes it.
        let m = read_all(&[0x02, 0x3a, 0x00]).expect("ping");
        assert_eq!(m.sum, Some(Sum::PingRequest(PingRequest {})));
    }

    #[test]
    fn the_limit_is_ten_kib_of_body() {
        // A message of exactly 10240 bytes: field 9 holding a 10237-byte SignBytesRequest
        // (field 1, length 10234 as 2 bytes, then the bytes).
        let mut inner = vec![0x0a, 0xfa, 0x4f];
        inner.extend(vec![0u8; 10234]);
        let mut body = vec![0x4a, 0xfd, 0x4f];
        body.extend(&inner);
        assert_eq!(body.len(), MAX_MESSAGE);
        let mut framed = vec![0x80, 0x50]; // 10240
        framed.extend(&body);
        assert!(read_all(&framed).is_ok());
        // One byte more is refused on its length alone (no body follows).
        assert!(matches!(
            read_all(&[0x81, 0x50]),
            Err(CodecError::TooLong(10241))
        ));
        // So is a huge length.
        assert!(matches!(
            read_all(&[0xff, 0xff, 0xff, 0xff, 0x0f]),
            Err(CodecError::TooLong(_))
        ));
    }

    #[test]
    fn truncated_and_malformed_frames_are_errors() {
        // The body is shorter than its length.
        assert!(matches!(
            read_all(&[0x05, 0x3a, 0x00]),
            Err(CodecError::Io(_))
        ));
        // The prefix is cut short.
        assert!(matches!(read_all(&[0x80]), Err(CodecError::Io(_))));
        // An eleven-byte varint.
        assert!(matches!(
            read_all(&[
                0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01
            ]),
            Err(CodecError::Length)
        ));
        // A body that is not a message (a field with wire type 7).
        assert!(matches!(
            read_all(&[0x01, 0x0f]),
            Err(CodecError::Decode(_))
        ));
    }

    #[test]
    fn an_oversized_answer_is_not_written() {
        let big = Message::of(Sum::SignBytesRequest(
            super::super::proto::SignBytesRequest {
                value: vec![0; MAX_MESSAGE],
            },
        ));
        let mut out = Vec::new();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        assert!(matches!(
            rt.block_on(write(&mut out, &big)),
            Err(CodecError::TooLong(_))
        ));
        assert!(out.is_empty());
        let ping = Message::of(Sum::PingRequest(PingRequest {}));
        rt.block_on(write(&mut out, &ping)).expect("written");
        assert_eq!(out, [0x02, 0x3a, 0x00]);
    }
}
