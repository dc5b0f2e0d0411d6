//! Michelson data (`0x05 ‖ Micheline`): check it is exactly one well-formed Micheline expression.
//!
//! Binary Micheline node tags: 0 int (Z), 1 string, 2 sequence, 3–8 primitive with 0/1/2
//! arguments without/with annotations, 9 primitive with an argument list and annotations,
//! 10 bytes. Depth is bounded so a hostile request cannot exhaust the board's stack.

use super::reader::Reader;
use super::{OpKindSet, ParseError, ParsedRequest, RequestKind};

/// Deepest nesting pawl walks.
const MAX_DEPTH: u8 = 48;

pub(super) fn data(bytes: &[u8]) -> Result<ParsedRequest, ParseError> {
    let mut r = Reader::new(bytes);
    r.u8()?; // magic
    node(&mut r, 0)?;
    r.finish()?;
    Ok(ParsedRequest {
        kind: RequestKind::Michelson,
        consensus: None,
        op_kinds: OpKindSet::EMPTY,
        op_count: 0,
        ballot: None,
    })
}

fn node(r: &mut Reader<'_>, depth: u8) -> Result<(), ParseError> {
    let at = r.pos();
    if depth > MAX_DEPTH {
        return Err(ParseError::TooDeep { offset: at });
    }
    match r.u8()? {
        0 => r.zarith(),
        1 | 10 => r.dynamic().map(|_| ()),
        2 => {
            let seq = r.dynamic()?;
            sequence(seq, items_at(r, seq), depth)
        }
        tag @ 3..=8 => {
            r.u8()?; // primitive
            let args = (tag - 3) / 2;
            for _ in 0..args {
                node(r, depth + 1)?;
            }
            if tag % 2 == 0 {
                r.dynamic()?; // annotations
            }
            Ok(())
        }
        9 => {
            r.u8()?; // primitive
            let args = r.dynamic()?;
            sequence(args, items_at(r, args), depth)?;
            r.dynamic()?; // annotations
            Ok(())
        }
        value => Err(ParseError::BadTag { offset: at, value }),
    }
}

/// Where the list `items`, just read by `r`, starts in `r`'s bytes (after its length prefix).
fn items_at(r: &Reader<'_>, items: &[u8]) -> usize {
    r.pos().saturating_sub(items.len())
}

/// A length-delimited list of nodes starting at offset `start` of the enclosing bytes; errors
/// inside are reported at offsets of the enclosing bytes.
fn sequence(items: &[u8], start: usize, depth: u8) -> Result<(), ParseError> {
    let mut inner = Reader::new(items);
    while !inner.is_empty() {
        node(&mut inner, depth + 1).map_err(|e| shift(e, start))?;
    }
    Ok(())
}

fn shift(e: ParseError, base: usize) -> ParseError {
    match e {
        ParseError::Truncated { offset } => ParseError::Truncated {
            offset: base + offset,
        },
        ParseError::BadTag { offset, value } => ParseError::BadTag {
            offset: base + offset,
            value,
        },
        ParseError::TooDeep { offset } => ParseError::TooDeep {
            offset: base + offset,
        },
        ParseError::NonCanonicalNumber { offset } => ParseError::NonCanonicalNumber {
            offset: base + offset,
        },
        other => other,
    }
}
