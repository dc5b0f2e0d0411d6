"""Signing through the bridge, checked by the third-party clients."""

import os

from pytezos.crypto.encoding import base58_encode

import procs
import tezos


def branch_b58() -> str:
    return base58_encode(os.urandom(32), b"B").decode()


def sign_verified(bridge, key, payloads: list[bytes], version: int | None = None) -> list[str]:
    """Sign every payload and have every signature verified twice, by Taquito and by pytezos /
    py_ecc. tz1/tz2/tz3 go through Taquito's RemoteSigner (which checks the public key against
    the pkh and verifies the signature itself); tz4, which RemoteSigner 21 does not handle, goes
    through plain HTTP and is verified by Taquito's verifySignature and py_ecc."""
    if key.curve != "bls" and version is None:
        results = procs.taquito([
            {"op": "remote_sign", "url": bridge.url, "pkh": key.pkh, "hex": p[1:].hex(),
             "watermark": p[:1].hex()} for p in payloads])
        sigs = []
        for p, r in zip(payloads, results):
            assert r["ok"], f"Taquito RemoteSigner refused {p.hex()}: {r}"
            sigs.append(r["prefixSig"])
    else:
        sigs = []
        for p in payloads:
            status, body = bridge.sign(key.pkh, p, version=version)
            assert status == 200, f"sign {p.hex()} with {key.name}: {status} {body!r}"
            sigs.append(body["signature"])
        checks = procs.taquito([{"op": "verify", "hex": p.hex(), "pk": key.pk, "sig": s}
                                for p, s in zip(payloads, sigs)])
        for p, s, c in zip(payloads, sigs, checks):
            assert c["ok"] and c["valid"], f"Taquito rejects {s} over {p.hex()}: {c}"
    for p, s in zip(payloads, sigs):
        tezos.verify(key.pk, s, p)
        prefix = {"ed": "edsig", "sp": "spsig1", "p2": "p2sig", "bls": "BLsig"}[key.curve]
        assert s.startswith(prefix), f"{key.name} signature has the wrong prefix: {s}"
    return sigs


def transfer(source: str, destination: str | None = None, counter: int = 7) -> dict:
    return {"kind": "transaction", "source": source, "fee": "1283", "counter": str(counter),
            "gas_limit": "1527", "storage_limit": "257", "amount": "1000000",
            "destination": destination or tezos.random_tz1()}


def delegation(source: str, delegate: str, counter: int = 8) -> dict:
    return {"kind": "delegation", "source": source, "fee": "1000", "counter": str(counter),
            "gas_limit": "1100", "storage_limit": "0", "delegate": delegate}


def forge(contents: list[dict]) -> bytes:
    """Forge an operation with Taquito's local forger; returns the bytes to sign (0x03 first)."""
    [r] = procs.taquito([{"op": "forge",
                          "operation": {"branch": branch_b58(), "contents": contents}}])
    assert r["ok"], r
    return b"\x03" + bytes.fromhex(r["hex"])
