//! A cursor over hostile bytes: every read is bounds-checked and fails with
//! [`ParseError::Truncated`] instead of panicking.

use super::ParseError;

/// Reads big-endian integers and slices from a byte string, front to back.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }

    /// Offset of the next byte, from the start of the whole request.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], ParseError> {
        if n > self.remaining() {
            return Err(ParseError::Truncated { offset: self.pos });
        }
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], ParseError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, ParseError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, ParseError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, ParseError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn i32(&mut self) -> Result<i32, ParseError> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    /// A `uint32` length followed by that many bytes (Data_encoding's dynamic size).
    pub(crate) fn dynamic(&mut self) -> Result<&'a [u8], ParseError> {
        let at = self.pos;
        let len = self.u32()?;
        let len = usize::try_from(len).map_err(|_| ParseError::Truncated { offset: at })?;
        self.take(len)
    }

    /// A Zarith natural (`N`) or integer (`Z`): little-endian base-128 groups, high bit set on
    /// every byte but the last. Only skipped: pawl never needs the value. A trailing zero
    /// group (non-canonical encoding) is refused, as the protocol's decoder does.
    pub(crate) fn zarith(&mut self) -> Result<(), ParseError> {
        let start = self.pos;
        loop {
            let b = self.u8()?;
            if b & 0x80 == 0 {
                if b == 0 && self.pos - start > 1 {
                    return Err(ParseError::NonCanonicalNumber { offset: start });
                }
                return Ok(());
            }
        }
    }

    /// An optional field: `0x00` absent, `0xff` present. Any other byte is invalid.
    pub(crate) fn option(&mut self) -> Result<bool, ParseError> {
        let at = self.pos;
        match self.u8()? {
            0x00 => Ok(false),
            0xff => Ok(true),
            _ => Err(ParseError::BadOptionTag { offset: at }),
        }
    }

    /// Refuse anything left over.
    pub(crate) fn finish(&self) -> Result<(), ParseError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(ParseError::TrailingBytes {
                offset: self.pos,
                count: self.remaining(),
            })
        }
    }
}
