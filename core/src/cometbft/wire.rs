//! The protobuf wire format, as far as CometBFT's canonical sign bytes use it: varints, 64-bit
//! fixed fields and length-delimited fields, read from a borrowed slice. Every read is bounded
//! by the slice; nothing allocates.

use crate::protocol::cometbft::SignBytesError;

/// Wire type 0: varint.
pub(super) const VARINT: u8 = 0;
/// Wire type 1: 64-bit little-endian.
pub(super) const FIXED64: u8 = 1;
/// Wire type 2: length-delimited.
pub(super) const LEN: u8 = 2;

/// A cursor over one protobuf message.
pub(super) struct Reader<'a> {
    bytes: &'a [u8],
    /// Highest field number read so far: fields must come in increasing order, each once
    /// (how every CometBFT encoder writes them), so that no field can be given twice with a
    /// "last one wins" meaning the board would read differently from a node.
    last: u32,
}

impl<'a> Reader<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, last: 0 }
    }

    /// Bytes not read yet.
    pub(super) fn rest(&self) -> &'a [u8] {
        self.bytes
    }

    /// A varint of at most 64 bits in its shortest form (a last byte of zero after others is an
    /// over-long form and refused: one value, one encoding).
    pub(super) fn varint(&mut self) -> Result<u64, SignBytesError> {
        let mut value: u64 = 0;
        for i in 0..10 {
            let (&byte, rest) = self.bytes.split_first().ok_or(SignBytesError::Varint)?;
            self.bytes = rest;
            let low = u64::from(byte & 0x7f);
            // The tenth byte holds only the 64th bit.
            if i == 9 && byte > 1 {
                return Err(SignBytesError::Varint);
            }
            value |= low << (7 * i);
            if byte & 0x80 == 0 {
                if i > 0 && byte == 0 {
                    return Err(SignBytesError::Varint);
                }
                return Ok(value);
            }
        }
        Err(SignBytesError::Varint)
    }

    /// The next field's number and wire type, or `None` at the end of the message. Refuses a
    /// field number not above the previous one.
    pub(super) fn field(&mut self) -> Result<Option<(u32, u8)>, SignBytesError> {
        if self.bytes.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let number = u32::try_from(key >> 3).map_err(|_| SignBytesError::Field { number: 0 })?;
        // Truncation intended: the wire type is the low three bits.
        #[allow(clippy::cast_possible_truncation)]
        let wire = (key & 7) as u8;
        if number == 0 || number <= self.last {
            return Err(SignBytesError::Field { number });
        }
        self.last = number;
        Ok(Some((number, wire)))
    }

    /// A 64-bit little-endian field, as a signed number (`sfixed64`).
    pub(super) fn sfixed64(&mut self) -> Result<i64, SignBytesError> {
        let (head, rest) = self
            .bytes
            .split_first_chunk::<8>()
            .ok_or(SignBytesError::Length)?;
        self.bytes = rest;
        Ok(i64::from_le_bytes(*head))
    }

    /// A length-delimited field's bytes.
    pub(super) fn bytes(&mut self) -> Result<&'a [u8], SignBytesError> {
        let len = usize::try_from(self.varint()?).map_err(|_| SignBytesError::Length)?;
        if len > self.bytes.len() {
            return Err(SignBytesError::Length);
        }
        let (head, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        Ok(head)
    }
}

/// Split sign bytes into their message: a uvarint length, then exactly that many bytes.
pub(super) fn delimited(sign_bytes: &[u8]) -> Result<&[u8], SignBytesError> {
    let mut r = Reader::new(sign_bytes);
    let len = usize::try_from(r.varint().map_err(|_| SignBytesError::Length)?)
        .map_err(|_| SignBytesError::Length)?;
    let message = r.rest();
    if message.len() != len {
        return Err(SignBytesError::Length);
    }
    Ok(message)
}

/// Refuse field `number` read with wire type `got` when the message has it as `want`.
pub(super) fn expect(number: u32, got: u8, want: u8) -> Result<(), SignBytesError> {
    if got == want {
        Ok(())
    } else {
        Err(SignBytesError::Field { number })
    }
}
