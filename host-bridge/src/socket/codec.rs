//! The bytes of the Octez socket signer protocol (`docs/protocol.md` §10): requests read,
//! answers written. Pure functions; the server is in the parent module.
//!
//! Read at the source: Octez `src/lib_signer_services/signer_messages.ml` (requests and
//! answers), `src/lib_base/unix/socket.ml` (the uint16 frame), `src/lib_error_monad/
//! monad_maker.ml` (`result_encoding`), `src/lib_error_monad/core_maker.ml` (an error's binary
//! form: its JSON as BSON in a uint30-prefixed string), `src/lib_crypto/signature_v3.ml`
//! (key hashes, public keys, signatures).

use pawl_core::keys::{PublicKey, PublicKeyHash, SigningVersion};

/// Largest message body a frame can carry (its length is a uint16).
pub const MAX_MESSAGE: usize = u16::MAX as usize;

/// A request as read from one frame.
#[derive(Debug, PartialEq, Eq)]
pub enum SocketRequest<'a> {
    /// Tag 0.
    Sign {
        /// The key.
        pkh: PublicKeyHash,
        /// Only tz4 (and ML-DSA) key hashes carry one.
        version: Option<SigningVersion>,
        /// The bytes to sign.
        data: &'a [u8],
        /// Raw authentication signature, when given.
        signature: Option<&'a [u8]>,
    },
    /// Tag 1.
    PublicKey(PublicKeyHash),
    /// Tag 2.
    AuthorizedKeys,
    /// Tags 3 and 4 (deterministic nonce, its hash): pawl does not serve them.
    DeterministicNonce,
    /// Tag 5.
    SupportsDeterministicNonces(PublicKeyHash),
    /// Tag 6.
    KnownKeys,
    /// Tag 7.
    BlsProvePossession {
        /// The key.
        pkh: PublicKeyHash,
        /// A BLS public key (48 bytes) to prove instead of the key's own.
        override_pk: Option<[u8; 48]>,
    },
}

/// Why a message could not be read (the message goes back in an error trace).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(pub String);

fn fail<T>(msg: impl Into<String>) -> Result<T, DecodeError> {
    Err(DecodeError(msg.into()))
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], DecodeError> {
        if self.bytes.len() - self.at < n {
            return fail(format!(
                "message too short: {what} needs {n} bytes at offset {}, {} left",
                self.at,
                self.bytes.len() - self.at
            ));
        }
        let out = &self.bytes[self.at..self.at + n];
        self.at += n;
        Ok(out)
    }

    fn byte(&mut self, what: &str) -> Result<u8, DecodeError> {
        Ok(self.take(1, what)?[0])
    }

    fn rest(&mut self) -> &'a [u8] {
        let out = &self.bytes[self.at..];
        self.at = self.bytes.len();
        out
    }

    fn end(&self) -> Result<(), DecodeError> {
        if self.at == self.bytes.len() {
            Ok(())
        } else {
            fail(format!(
                "{} extra bytes after the request",
                self.bytes.len() - self.at
            ))
        }
    }

    /// A `Public_key_hash.encoding`: curve tag (0 tz1, 1 tz2, 2 tz3, 3 tz4) ‖ 20 bytes.
    fn pkh(&mut self) -> Result<PublicKeyHash, DecodeError> {
        let tag = self.byte("the key hash's tag")?;
        let hash = self.take(20, "the key hash")?;
        hash_of(tag, hash)
    }
}

fn hash_of(tag: u8, hash: &[u8]) -> Result<PublicKeyHash, DecodeError> {
    let mut bytes = [0u8; 21];
    bytes[0] = tag;
    bytes[1..].copy_from_slice(hash);
    PublicKeyHash::from_bytes(&bytes).map_or_else(
        || {
            fail(format!(
                "key hash tag {tag} is not a key pawl knows (0 tz1, 1 tz2, 2 tz3, 3 tz4)"
            ))
        },
        Ok,
    )
}

/// Read one message body (the frame's length already removed).
pub fn decode(message: &[u8]) -> Result<SocketRequest<'_>, DecodeError> {
    let mut r = Reader {
        bytes: message,
        at: 0,
    };
    let request = match r.byte("the request tag")? {
        0 => {
            // signer_messages.ml `pkh_encoding`: tags 0-2 then 20 bytes; tag 3 then a whole
            // Public_key_hash.encoding (21 bytes) and the signature version (int8).
            let tag = r.byte("the key hash's tag")?;
            let (pkh, version) = if tag == 3 {
                let pkh = r.pkh()?;
                let v = r.byte("the signature version")?;
                if v > 3 {
                    return fail(format!("Invalid signature version {v} (0 to 3)"));
                }
                (pkh, Some(SigningVersion(v)))
            } else {
                (hash_of(tag, r.take(20, "the key hash")?)?, None)
            };
            // `bytes`: uint30 length (4 bytes, big-endian) ‖ bytes.
            let len = u32::from_be_bytes(
                r.take(4, "the data length")?
                    .try_into()
                    .map_err(|_| DecodeError("data length".into()))?,
            );
            if len >= 1 << 30 {
                return fail(format!("data length {len} is above the uint30 limit"));
            }
            let data = r.take(len as usize, "the data")?;
            // `opt "signature" Signature.encoding`: the signature's encoding is variable-size,
            // so the option has no tag: absent = nothing left, present = all that is left.
            let sig = r.rest();
            let signature = match sig.len() {
                0 => None,
                64 | 96 => Some(sig),
                n => {
                    return fail(format!(
                        "authentication signature of {n} bytes (64, or 96 for BLS)"
                    ));
                }
            };
            SocketRequest::Sign {
                pkh,
                version,
                data,
                signature,
            }
        }
        1 => SocketRequest::PublicKey(r.pkh()?),
        2 => SocketRequest::AuthorizedKeys,
        3 | 4 => {
            r.rest();
            SocketRequest::DeterministicNonce
        }
        5 => SocketRequest::SupportsDeterministicNonces(r.pkh()?),
        6 => SocketRequest::KnownKeys,
        7 => {
            let pkh = r.pkh()?;
            // `opt` of a fixed-size value: 0x00, or 0xff ‖ the 48-byte BLS public key.
            let override_pk = match r.byte("the override_pk option")? {
                0x00 => None,
                0xff => Some(
                    r.take(48, "override_pk")?
                        .try_into()
                        .map_err(|_| DecodeError("override_pk".into()))?,
                ),
                other => {
                    return fail(format!(
                        "override_pk option byte 0x{other:02x} (0x00 or 0xff)"
                    ));
                }
            };
            SocketRequest::BlsProvePossession { pkh, override_pk }
        }
        tag => return fail(format!("unknown request tag {tag}")),
    };
    r.end()?;
    Ok(request)
}

/// `Ok` of `result_encoding`: `0x00 ‖ payload`.
pub fn ok(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + payload.len());
    out.push(0x00);
    out.extend_from_slice(payload);
    out
}

/// A public key as `Public_key.encoding`: curve tag ‖ key bytes (32, 33, 33 or 48).
pub fn public_key(pk: &PublicKey) -> Vec<u8> {
    let mut out = vec![pk.curve().tag()];
    out.extend_from_slice(pk.as_bytes());
    out
}

/// A `list` of key hashes: uint30 byte length ‖ 21 bytes each.
pub fn pkh_list(keys: &[PublicKeyHash]) -> Vec<u8> {
    let len = u32::try_from(keys.len() * 21).unwrap_or(u32::MAX);
    let mut out = len.to_be_bytes().to_vec();
    for k in keys {
        out.extend_from_slice(&k.to_bytes());
    }
    out
}

/// `Error` of `result_encoding`: `0x01 ‖` a trace of one error, Octez's generic failure
/// `{"kind":"temporary","id":"failure","msg":…}`. The trace is a `list` (uint30 byte length)
/// of errors, each a uint30-prefixed string holding the error's JSON as a BSON document.
pub fn error(msg: &str) -> Vec<u8> {
    // BSON strings end at a NUL; a message never needs one.
    let msg = msg.replace('\0', " ");
    let doc = bson_strings(&[("kind", "temporary"), ("id", "failure"), ("msg", &msg)]);
    let mut error = Vec::with_capacity(4 + doc.len());
    error.extend_from_slice(&u32_len(doc.len()).to_be_bytes());
    error.extend_from_slice(&doc);
    let mut out = Vec::with_capacity(5 + error.len());
    out.push(0x01);
    out.extend_from_slice(&u32_len(error.len()).to_be_bytes());
    out.extend_from_slice(&error);
    out
}

fn u32_len(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// A BSON document of string fields: int32 LE total size ‖ (0x02 ‖ key ‖ 0x00 ‖ int32 LE
/// (len + 1) ‖ value ‖ 0x00)* ‖ 0x00 — what Octez's `Json_repr_bson` writes for a JSON object.
fn bson_strings(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (key, value) in fields {
        body.push(0x02);
        body.extend_from_slice(key.as_bytes());
        body.push(0x00);
        body.extend_from_slice(&u32_len(value.len() + 1).to_le_bytes());
        body.extend_from_slice(value.as_bytes());
        body.push(0x00);
    }
    let mut doc = u32_len(4 + body.len() + 1).to_le_bytes().to_vec();
    doc.extend_from_slice(&body);
    doc.push(0x00);
    doc
}

/// One frame: uint16 big-endian length ‖ body. An answer too long for a frame (never: the
/// longest pawl writes is an error message it bounds) becomes an error that fits.
pub fn frame(body: &[u8]) -> Vec<u8> {
    let body = if body.len() > MAX_MESSAGE {
        error("answer too long for a socket frame")
    } else {
        body.to_vec()
    };
    let mut out = Vec::with_capacity(2 + body.len());
    out.extend_from_slice(&u16::try_from(body.len()).unwrap_or(u16::MAX).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_trace_bytes() {
        let e = error("no");
        // 0x01, list length, string length, BSON size.
        let doc_len = 4 + (1 + 5 + 4 + 10) + (1 + 3 + 4 + 8) + (1 + 4 + 4 + 3) + 1;
        assert_eq!(e[0], 1);
        assert_eq!(
            u32::from_be_bytes(e[1..5].try_into().expect("4")),
            doc_len + 4
        );
        assert_eq!(u32::from_be_bytes(e[5..9].try_into().expect("4")), doc_len);
        assert_eq!(u32::from_le_bytes(e[9..13].try_into().expect("4")), doc_len);
        assert_eq!(e.len(), 13 + doc_len as usize - 4);
        assert_eq!(*e.last().expect("byte"), 0);
    }

    #[test]
    fn short_and_extra_bytes_are_refused() {
        assert!(decode(&[]).is_err());
        assert!(decode(&[1, 0, 1, 2]).is_err());
        assert!(decode(&[2, 0]).is_err());
        assert!(decode(&[9]).is_err());
        assert_eq!(decode(&[2]), Ok(SocketRequest::AuthorizedKeys));
    }
}
