"""Tezos payloads and signature checks for the end-to-end tests, written from the protocol's
byte layouts (docs/protocol.md §3) and verified with third-party libraries (pytezos, py_ecc).
Nothing here uses pawl's code or output as a reference."""

import hashlib
import os
import struct

from py_ecc.bls import G2ProofOfPossession
from pytezos.crypto.encoding import base58_decode, base58_encode
from pytezos.crypto.key import Key

# secp256k1 group order (SEC 2), for the low-S check Octez requires of tz2 signatures.
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

# A chain id of our own for the tests, so that no test depends on another chain's marks.
TEST_CHAIN = bytes.fromhex("5a11e2e2")
# The chain of Signatory's consensus vectors (C3 and the BLS-mode forms derived from it).
VECTOR_CHAIN = bytes.fromhex("b3d79f99")


def chain_b58(chain: bytes) -> str:
    return base58_encode(chain, b"Net").decode()


def blake2b_256(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32).digest()


def rand32() -> bytes:
    return os.urandom(32)


def i32(v: int) -> bytes:
    return struct.pack(">i", v)


def u32(v: int) -> bytes:
    return struct.pack(">I", v)


def zarith_n(v: int) -> bytes:
    """Zarith natural: little-endian base-128, high bit = more bytes follow."""
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def block(chain: bytes, level: int, round_: int, *, payload_round: int | None = None,
          locked_round: int | None = None, payload_hash: bytes | None = None) -> bytes:
    """A Tenderbake block header to sign (0x11), docs/protocol.md §3.1."""
    fitness_elems = [
        b"\x02",
        i32(level),
        b"" if locked_round is None else i32(locked_round),
        i32(-1),  # -(predecessor_round) - 1 with predecessor round 0
        i32(round_),
    ]
    fitness = b"".join(u32(len(e)) + e for e in fitness_elems)
    header = (
        i32(level)
        + bytes([1])  # proto_level
        + rand32()  # predecessor
        + struct.pack(">q", 1_700_000_000 + level)  # timestamp
        + bytes([4])  # validation_passes
        + rand32()  # operations_hash
        + u32(len(fitness)) + fitness
        + rand32()  # context
        + (payload_hash or rand32())
        + i32(round_ if payload_round is None else payload_round)
        + os.urandom(8)  # proof_of_work_nonce
        + b"\x00"  # no seed_nonce_hash
        + b"\x00"  # per_block_votes
    )
    return b"\x11" + chain + header


def consensus(magic: int, tag: int, chain: bytes, level: int, round_: int, *, slot: int = 0,
              payload_hash: bytes | None = None, dal: int | None = None,
              branch: bytes | None = None) -> bytes:
    """(Pre)attestation to sign (0x12/0x13), docs/protocol.md §3.2 and §3.3. Tags 20/21/23
    carry a slot (and, for 23, a Zarith DAL bitset at the end); BLS-mode tags 40/41 have
    neither."""
    body = bytes([tag])
    if tag in (20, 21, 23):
        body += struct.pack(">H", slot)
    body += i32(level) + i32(round_) + (payload_hash or rand32())
    if tag == 23:
        body += zarith_n(dal if dal is not None else 0b1011)
    return bytes([magic]) + chain + (branch or rand32()) + body


def preattestation(curve: str, chain: bytes, level: int, round_: int, **kw) -> bytes:
    return consensus(0x12, 40 if curve == "bls" else 20, chain, level, round_, **kw)


def attestation(curve: str, chain: bytes, level: int, round_: int, **kw) -> bytes:
    return consensus(0x13, 41 if curve == "bls" else 21, chain, level, round_, **kw)


def verify(pk: str, sig: str, msg: bytes) -> None:
    """Raise unless `sig` is a valid signature of `msg` (the bytes sent, magic byte included)
    by `pk`, as Octez verifies it: Ed25519 / secp256k1 (low-S) / P-256 over blake2b-256 with
    pytezos; BLS with the POP ciphersuite (signature versions 2/3) with py_ecc."""
    if pk.startswith("BLpk"):
        ok = G2ProofOfPossession.Verify(base58_decode(pk.encode()), msg,
                                        base58_decode(sig.encode()))
        if not ok:
            raise AssertionError(f"BLS signature {sig} does not verify (POP ciphersuite)")
        return
    key = Key.from_encoded_key(pk)
    key.verify(sig, msg)  # raises ValueError when invalid
    if pk.startswith("sppk"):
        s = int.from_bytes(base58_decode(sig.encode())[32:], "big")
        assert s <= SECP256K1_N // 2, f"tz2 signature is not low-S: {sig}"


def verify_pop(pk: str, proof: str) -> bool:
    return G2ProofOfPossession.PopVerify(base58_decode(pk.encode()), base58_decode(proof.encode()))


def pkh_of(pk: str) -> str:
    return Key.from_encoded_key(pk).public_key_hash()


def public_key_of(secret: str) -> str:
    return Key.from_encoded_key(secret).public_key()


def random_tz1() -> str:
    return base58_encode(os.urandom(20), b"tz1").decode()
