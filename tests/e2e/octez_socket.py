"""A client of the Octez socket signer protocol, written from the byte layouts in
docs/protocol.md §10 (read at the source: Octez src/lib_signer_services/signer_messages.ml,
src/lib_base/unix/socket.ml, src/lib_error_monad/{monad_maker,core_maker}.ml,
src/lib_crypto/signature_v3.ml). It shares no code with pawl: keys and signatures are
decoded with pytezos' base58 and the error trace's BSON is read here.

Every message: uint16 big-endian length ‖ body. Answers: 0x00 ‖ result, or 0x01 ‖ trace.
"""

import socket
import struct

from pytezos.crypto.encoding import base58_decode, base58_encode

# Key-hash prefixes by curve tag (0 tz1, 1 tz2, 2 tz3, 3 tz4).
PKH_PREFIX = {0: b"tz1", 1: b"tz2", 2: b"tz3", 3: b"tz4"}
PK_PREFIX = {0: (b"edpk", 32), 1: (b"sppk", 33), 2: (b"p2pk", 33), 3: (b"BLpk", 48)}
SIG_PREFIX = {0: b"edsig", 1: b"spsig", 2: b"p2sig", 3: b"BLsig"}


class SignerError(Exception):
    """An error trace: the messages of its errors."""

    def __init__(self, errors: list[dict], raw: bytes):
        self.errors = errors
        self.raw = raw
        super().__init__("; ".join(e.get("msg", str(e)) for e in errors))


def pkh_bytes(pkh: str) -> bytes:
    """Public_key_hash.encoding: curve tag ‖ 20 bytes."""
    tag = {v.decode(): k for k, v in PKH_PREFIX.items()}[pkh[:3]]
    return bytes([tag]) + base58_decode(pkh.encode())


def pkh_from(raw: bytes) -> str:
    return base58_encode(raw[1:21], PKH_PREFIX[raw[0]]).decode()


def sign_request(pkh: str, data: bytes, version: int | None = None,
                 auth_sig: bytes | None = None) -> bytes:
    """Sign (tag 0): the key as signer_messages' pkh_encoding (tz1-tz3: tag ‖ 20 bytes; tz4:
    0x03 ‖ the 21-byte hash ‖ version int8), data as uint30 length ‖ bytes, then the raw
    authentication signature if any (variable-size option: no tag byte)."""
    raw = pkh_bytes(pkh)
    if raw[0] == 3:
        key = b"\x03" + raw + bytes([3 if version is None else version])
    else:
        key = raw
    return b"\x00" + key + struct.pack(">I", len(data)) + data + (auth_sig or b"")


def public_key_request(pkh: str) -> bytes:
    return b"\x01" + pkh_bytes(pkh)


AUTHORIZED_KEYS = b"\x02"
KNOWN_KEYS = b"\x06"


def supports_nonces_request(pkh: str) -> bytes:
    return b"\x05" + pkh_bytes(pkh)


def prove_possession_request(pkh: str, override_pk: str | None = None) -> bytes:
    opt = b"\x00" if override_pk is None else b"\xff" + base58_decode(override_pk.encode())
    return b"\x07" + pkh_bytes(pkh) + opt


def read_bson(doc: bytes) -> dict:
    """A BSON document of strings (what Octez writes for an error's JSON)."""
    size = struct.unpack("<i", doc[:4])[0]
    assert size == len(doc), (size, len(doc))
    out, at = {}, 4
    while doc[at] != 0:
        kind = doc[at]
        end = doc.index(b"\x00", at + 1)
        key = doc[at + 1:end].decode()
        at = end + 1
        assert kind == 0x02, f"BSON element 0x{kind:02x}"
        n = struct.unpack("<i", doc[at:at + 4])[0]
        out[key] = doc[at + 4:at + 4 + n - 1].decode()
        assert doc[at + 4 + n - 1] == 0
        at += 4 + n
    assert at == len(doc) - 1
    return out


def read_trace(body: bytes) -> list[dict]:
    """0x01 ‖ uint30 list length ‖ (uint30 length ‖ BSON document)*."""
    assert body[0] == 1
    total = struct.unpack(">I", body[1:5])[0]
    assert total == len(body) - 5, (total, len(body))
    errors, at = [], 5
    while at < len(body):
        n = struct.unpack(">I", body[at:at + 4])[0]
        errors.append(read_bson(body[at + 4:at + 4 + n]))
        at += 4 + n
    return errors


class Client:
    """One connection (tcp:// or unix://); any number of requests, one at a time."""

    def __init__(self, uri: str, timeout: float = 30):
        if uri.startswith("tcp://"):
            host, port = uri[len("tcp://"):].rsplit(":", 1)
            self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        elif uri.startswith("unix://"):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect(uri[len("unix://"):])
        else:
            raise ValueError(uri)

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.close()

    def _read(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise ConnectionError(f"closed after {len(out)} of {n} bytes")
            out += chunk
        return out

    def roundtrip(self, body: bytes) -> bytes:
        """Send one frame, return the answer's body (0x00/0x01 first)."""
        self.sock.sendall(struct.pack(">H", len(body)) + body)
        n = struct.unpack(">H", self._read(2))[0]
        return self._read(n)

    def call(self, body: bytes) -> bytes:
        """The result bytes, or SignerError with the trace."""
        answer = self.roundtrip(body)
        if answer[0] == 0:
            return answer[1:]
        raise SignerError(read_trace(answer), answer)

    def sign(self, pkh: str, data: bytes, version: int | None = None,
             auth_sig: bytes | None = None) -> str:
        raw = self.call(sign_request(pkh, data, version, auth_sig))
        tag = pkh_bytes(pkh)[0]
        expected = 96 if tag == 3 else 64
        assert len(raw) == expected, (len(raw), expected)
        return base58_encode(raw, SIG_PREFIX[tag]).decode()

    def public_key(self, pkh: str) -> str:
        raw = self.call(public_key_request(pkh))
        prefix, size = PK_PREFIX[raw[0]]
        assert len(raw) == 1 + size, raw.hex()
        return base58_encode(raw[1:], prefix).decode()

    def authorized_keys(self) -> list[str] | None:
        raw = self.call(AUTHORIZED_KEYS)
        if raw == b"\x00":
            return None
        assert raw[0] == 1
        return _pkh_list(raw[1:])

    def known_keys(self) -> list[str]:
        return _pkh_list(self.call(KNOWN_KEYS))

    def supports_deterministic_nonces(self, pkh: str) -> bool:
        raw = self.call(supports_nonces_request(pkh))
        assert raw in (b"\x00", b"\xff"), raw.hex()
        return raw == b"\xff"

    def prove_possession(self, pkh: str, override_pk: str | None = None) -> str:
        raw = self.call(prove_possession_request(pkh, override_pk))
        assert len(raw) == 96, len(raw)
        return base58_encode(raw, b"BLsig").decode()


def _pkh_list(raw: bytes) -> list[str]:
    n = struct.unpack(">I", raw[:4])[0]
    assert n == len(raw) - 4 and n % 21 == 0, raw.hex()
    return [pkh_from(raw[4 + i:4 + i + 21]) for i in range(0, n, 21)]
