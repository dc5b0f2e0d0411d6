#!/usr/bin/env python3
"""pawl bring-up: the power-cut probe (docs/hardware.md, "Bring-up checklist").

A signing storm against a running `pawl serve` (the octez-signer HTTP API), the board's power
cut in the middle of it (unplug the board; in CI: kill -9 of the QEMU board), then a probe once
the board is back: every (chain, key, kind, level, round) the storm ever asked for is asked
again with the same payload and with a different one. The verdict: no position may ever have
two different payloads signed, and nothing at or below the last released mark may be signed
with bytes other than those released there.

    bringup.py storm --url http://127.0.0.1:6732 --key tz1... --chain NetXdQprcVkpaWU \\
        --log storm.jsonl --connections 4        # unplug the board mid-storm, then Ctrl-C
    bringup.py probe --url http://127.0.0.1:6732 --log storm.jsonl

Use a throw-away key made for the bring-up on a test chain (`pawl keys generate --chain ...`),
never a baking key: the storm pushes the key's marks up by thousands of levels.

Standard library only, so it runs on a baker's host as it is. Every request and answer goes to
the log (JSON lines) as it happens: a storm killed along with the board loses nothing it saw.
Exit status: 0 pass, 1 double signature or signature below the mark, 2 usage or setup error.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import signal
import struct
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field

KINDS = ("block", "preattestation", "attestation")
B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
CHAIN_PREFIX = bytes([87, 82, 0])  # "Net"


# -- payloads (docs/protocol.md §3) -----------------------------------------------------------

def _i32(v: int) -> bytes:
    return struct.pack(">i", v)


def _u32(v: int) -> bytes:
    return struct.pack(">I", v)


def block(chain: bytes, level: int, round_: int, salt: bytes) -> bytes:
    """A Tenderbake block header (0x11); `salt` (32 bytes) makes the payload unique."""
    fitness = b"".join(_u32(len(e)) + e for e in
                       (b"\x02", _i32(level), b"", _i32(-1), _i32(round_)))
    header = (_i32(level) + b"\x01" + salt + struct.pack(">q", 1_700_000_000 + level) + b"\x04"
              + os.urandom(32) + _u32(len(fitness)) + fitness + os.urandom(32) + os.urandom(32)
              + _i32(round_) + os.urandom(8) + b"\x00" + b"\x00")
    return b"\x11" + chain + header


def consensus(kind: str, bls: bool, chain: bytes, level: int, round_: int, salt: bytes) -> bytes:
    """A preattestation (0x12) or attestation (0x13); tags 20/21 carry a slot, BLS 40/41 not."""
    magic = 0x12 if kind == "preattestation" else 0x13
    tag = (40 if bls else 20) + (magic - 0x12)
    body = bytes([tag]) + (b"" if bls else struct.pack(">H", 0))
    body += _i32(level) + _i32(round_) + salt
    return bytes([magic]) + chain + os.urandom(32) + body


def payload(kind: str, bls: bool, chain: bytes, level: int, round_: int) -> bytes:
    salt = os.urandom(32)
    if kind == "block":
        return block(chain, level, round_, salt)
    return consensus(kind, bls, chain, level, round_, salt)


def chain_id(text: str) -> bytes:
    """A chain id: 8 hex digits or its base58 form (Net...)."""
    if len(text) == 8:
        return bytes.fromhex(text)
    n = 0
    for c in text:
        n = n * 58 + B58.index(c)
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    raw = b"\x00" * (len(text) - len(text.lstrip("1"))) + raw
    body, check = raw[:-4], raw[-4:]
    if hashlib.sha256(hashlib.sha256(body).digest()).digest()[:4] != check:
        raise ValueError(f"bad checksum in chain id {text}")
    if not body.startswith(CHAIN_PREFIX) or len(body) != 7:
        raise ValueError(f"{text} is not a chain id")
    return body[3:]


# -- the log ----------------------------------------------------------------------------------

class Log:
    """JSON lines, flushed and fsynced as written, shared by the storm's threads."""

    def __init__(self, path: str):
        self.file = open(path, "a", encoding="utf-8")
        self.lock = threading.Lock()

    def write(self, record: dict) -> None:
        line = json.dumps(record, separators=(",", ":")) + "\n"
        with self.lock:
            self.file.write(line)
            self.file.flush()
            os.fsync(self.file.fileno())


def read_log(path: str) -> list[dict]:
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                out.append(json.loads(line))
            except ValueError:
                pass  # a line cut short when the storm was killed
    return out


# -- HTTP -------------------------------------------------------------------------------------

class Signer:
    """One keep-alive connection to `pawl serve`."""

    def __init__(self, url: str, timeout: float):
        u = urllib.parse.urlsplit(url)
        if u.scheme != "http" or not u.hostname:
            raise ValueError(f"--url must be http://host:port, not {url}")
        self.host, self.port, self.timeout = u.hostname, u.port or 80, timeout
        self.conn: http.client.HTTPConnection | None = None

    def sign(self, pkh: str, data: bytes) -> tuple[int | None, str | None, str | None]:
        """(HTTP status or None, signature or None, error text or None)."""
        body = json.dumps(data.hex()).encode()
        for attempt in (0, 1):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(self.host, self.port,
                                                           timeout=self.timeout)
                self.conn.request("POST", f"/keys/{pkh}", body=body,
                                  headers={"Content-Type": "application/json"})
                resp = self.conn.getresponse()
                raw = resp.read()
                try:
                    answer = json.loads(raw)
                except ValueError:
                    answer = raw.decode(errors="replace")
                if resp.status == 200 and isinstance(answer, dict):
                    return 200, answer.get("signature"), None
                return resp.status, None, str(answer)[:200]
            except (OSError, http.client.HTTPException) as e:
                if self.conn is not None:
                    self.conn.close()
                    self.conn = None
                if attempt == 1:
                    return None, None, repr(e)[:200]
        return None, None, "unreachable"

    def public_key(self, pkh: str) -> str:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            conn.request("GET", f"/keys/{pkh}")
            resp = conn.getresponse()
            raw = resp.read()
            if resp.status != 200:
                raise RuntimeError(f"GET /keys/{pkh}: {resp.status} {raw[:200]!r}")
            return json.loads(raw)["public_key"]
        finally:
            conn.close()


# -- storm ------------------------------------------------------------------------------------

@dataclass
class Storm:
    url: str
    keys: list[tuple[str, bool]]  # (pkh, is BLS)
    chain: bytes
    log: Log
    start: int
    connections: int
    timeout: float
    stop: threading.Event = field(default_factory=threading.Event)
    next_level: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    counts: dict = field(default_factory=lambda: {"sent": 0, "signed": 0, "refused": 0,
                                                  "unanswered": 0})

    def take_level(self) -> int:
        with self.lock:
            level = self.start + self.next_level
            self.next_level += 1
            return level

    def ask(self, signer: Signer, pkh: str, bls: bool, kind: str, level: int, round_: int,
            worker: int) -> None:
        data = payload(kind, bls, self.chain, level, round_)
        status, sig, error = signer.sign(pkh, data)
        self.log.write({"phase": "storm", "t": time.time(), "worker": worker,
                        "chain": self.chain.hex(), "key": pkh, "kind": kind, "level": level,
                        "round": round_, "payload": data.hex(), "status": status,
                        "signature": sig, "error": error})
        with self.lock:
            self.counts["sent"] += 1
            key = "signed" if status == 200 else "unanswered" if status is None else "refused"
            self.counts[key] += 1

    def worker(self, n: int) -> None:
        signer = Signer(self.url, self.timeout)
        while not self.stop.is_set():
            level = self.take_level()
            for pkh, bls in self.keys:
                for kind in KINDS:
                    if self.stop.is_set():
                        return
                    self.ask(signer, pkh, bls, kind, level, 0, n)
                # A rival payload at the position just asked (another baker process, a bug):
                # the board must refuse it, storm or not.
                if not self.stop.is_set():
                    self.ask(signer, pkh, bls, "attestation", level, 0, n)
            if n % 2 == 1 and not self.stop.is_set():
                # Odd workers also go back a level, round 1: requests that race the others'.
                for pkh, bls in self.keys:
                    self.ask(signer, pkh, bls, "preattestation", max(self.start, level - 1), 1, n)

    def run(self, duration: float | None) -> None:
        threads = [threading.Thread(target=self.worker, args=(n,), daemon=True)
                   for n in range(self.connections)]
        for t in threads:
            t.start()
        deadline = None if duration is None else time.monotonic() + duration
        try:
            while any(t.is_alive() for t in threads):
                if deadline is not None and time.monotonic() > deadline:
                    break
                time.sleep(0.2)
        except KeyboardInterrupt:
            pass
        self.stop.set()
        for t in threads:
            t.join(timeout=self.timeout + 5)


def key_list(signer: Signer, pkhs: list[str]) -> list[tuple[str, bool]]:
    """Each key with whether it is BLS (its public key from `pawl serve`)."""
    return [(pkh, signer.public_key(pkh).startswith("BLpk")) for pkh in pkhs]


# -- probe ------------------------------------------------------------------------------------

def probe(url: str, records: list[dict], log: Log, timeout: float,
          wait: float) -> list[dict]:
    """Ask again, at every position the storm asked for, with a new payload and then with the
    same one (a new payload first: on a board that lost its marks it is signed, next to what
    the storm was given there — the double signature this looks for). Waits up to `wait`
    seconds for the board to answer first."""
    signer = Signer(url, timeout)
    bls = {r["key"] for r in records if _is_bls(r)}
    deadline = time.monotonic() + wait
    first = next((r for r in records if r.get("phase") == "storm"), None)
    if first is None:
        return []
    out = []
    # The board is back when a request is answered by the board (200 or a refusal), not by
    # a bridge that cannot reach it (502/503/504) or no bridge at all. The storm's first
    # request, again: logged like every other.
    while True:
        data = bytes.fromhex(first["payload"])
        status, sig, error = signer.sign(first["key"], data)
        if status not in (None, 502, 503, 504):
            rec = {"phase": "probe", "how": "same", "t": time.time(), "chain": first["chain"],
                   "key": first["key"], "kind": first["kind"], "level": first["level"],
                   "round": first["round"], "payload": first["payload"], "status": status,
                   "signature": sig, "error": error}
            log.write(rec)
            out.append(rec)
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"the board did not come back within {wait:.0f} s "
                               f"(last answer {status})")
        time.sleep(0.5)
    seen = set()
    for r in records:
        if r.get("phase") != "storm":
            continue
        position = (r["chain"], r["key"], r["kind"], r["level"], r["round"])
        asks = []
        if position not in seen:
            seen.add(position)
            asks.append(("different", payload(r["kind"], r["key"] in bls,
                                              bytes.fromhex(r["chain"]), r["level"], r["round"])))
        asks.append(("same", bytes.fromhex(r["payload"])))
        for how, data in asks:
            status, sig, error = signer.sign(r["key"], data)
            rec = {"phase": "probe", "how": how, "t": time.time(), "chain": r["chain"],
                   "key": r["key"], "kind": r["kind"], "level": r["level"],
                   "round": r["round"], "payload": data.hex(), "status": status,
                   "signature": sig, "error": error}
            log.write(rec)
            out.append(rec)
    return out


def _is_bls(record: dict) -> bool:
    """Whether a consensus payload in the log was built for a BLS key (tags 40/41)."""
    data = bytes.fromhex(record["payload"])
    return data[0] in (0x12, 0x13) and len(data) > 37 and data[37] in (40, 41)


# -- the verdict ------------------------------------------------------------------------------

@dataclass
class Verdict:
    positions: int
    signatures: int
    doubles: list[str]
    below_mark: list[str]
    unanswered: int

    @property
    def ok(self) -> bool:
        return not self.doubles and not self.below_mark

    def text(self) -> str:
        lines = [f"positions asked: {self.positions}; signatures released: {self.signatures}; "
                 f"requests the board never answered (in flight at the cut): {self.unanswered}"]
        for d in self.doubles[:20]:
            lines.append(f"DOUBLE SIGNATURE: {d}")
        for b in self.below_mark[:20]:
            lines.append(f"SIGNED AT OR BELOW THE MARK WITH OTHER BYTES: {b}")
        lines.append(f"double signatures: {len(self.doubles)}; signed below the mark with other "
                     f"bytes: {len(self.below_mark)}")
        lines.append("VERDICT: PASS" if self.ok else "VERDICT: FAIL")
        return "\n".join(lines)


def analyse(records: list[dict]) -> Verdict:
    """Every signature the logs saw, storm and probe: at most one payload signed per (chain,
    key, kind, level, round), and after the storm nothing at or below the storm's last released
    position for a (chain, key, kind) signed with bytes other than those released there."""
    signed: dict[tuple, dict[str, set[str]]] = {}
    positions = set()
    unanswered = 0
    for r in records:
        position = (r["chain"], r["key"], r["kind"], r["level"], r["round"])
        positions.add(position)
        if r.get("status") is None and r.get("phase") == "storm":
            unanswered += 1
        if r.get("status") == 200:
            signed.setdefault(position, {}).setdefault(r["payload"], set()).add(
                r.get("signature") or "")
    doubles = []
    for position, payloads in sorted(signed.items()):
        if len(payloads) > 1:
            sigs = sorted({s for ss in payloads.values() for s in ss})
            doubles.append(f"{_name(position)}: {len(payloads)} payloads signed "
                           f"({', '.join(s[:16] + '…' for s in sigs)})")
    # The storm's last released position per mark, and what it released at each position.
    last: dict[tuple, tuple[int, int]] = {}
    released: dict[tuple, str] = {}
    for r in records:
        if r.get("phase") == "storm" and r.get("status") == 200:
            mark = (r["chain"], r["key"], r["kind"])
            at = (r["level"], r["round"])
            last[mark] = max(last.get(mark, at), at)
            released[(*mark, *at)] = r["payload"]
    below = []
    for r in records:
        if r.get("phase") != "probe" or r.get("status") != 200:
            continue
        mark = (r["chain"], r["key"], r["kind"])
        at = (r["level"], r["round"])
        if mark in last and at <= last[mark] and released.get((*mark, *at)) != r["payload"]:
            below.append(f"{_name((*mark, *at))} (last released mark at {last[mark]})")
    signatures = sum(len(p) for p in signed.values())
    return Verdict(len(positions), signatures, doubles, below, unanswered)


def _name(position: tuple) -> str:
    chain, key, kind, level, round_ = position
    return f"chain {chain} key {key} {kind} level {level} round {round_}"


# -- command line -----------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    s = sub.add_parser("storm", help="sign at rising levels until stopped (Ctrl-C, SIGTERM, "
                                     "--duration); unplug the board meanwhile")
    s.add_argument("--url", required=True, help="pawl serve, e.g. http://127.0.0.1:6732")
    s.add_argument("--key", action="append", required=True,
                   help="a throw-away key's pkh (repeat for several)")
    s.add_argument("--chain", required=True, help="chain id (Net... or 8 hex digits) the "
                                                   "keys may sign on; a test chain")
    s.add_argument("--log", required=True, help="JSON-lines log (appended to)")
    s.add_argument("--connections", type=int, default=4)
    s.add_argument("--start-level", type=int, default=None,
                   help="first level (default: above every level in the log, else 1000)")
    s.add_argument("--duration", type=float, default=None, help="seconds (default: until "
                                                                "stopped)")
    s.add_argument("--timeout", type=float, default=10.0, help="per request, seconds")
    p = sub.add_parser("probe", help="after the board is back: ask every position again, "
                                     "print the verdict")
    p.add_argument("--url", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--wait", type=float, default=120.0,
                   help="seconds to wait for the board to answer first")
    p.add_argument("--timeout", type=float, default=10.0)
    a = sub.add_parser("analyse", help="the verdict over a log, without asking anything")
    a.add_argument("--log", required=True)
    args = ap.parse_args(argv)

    if args.command == "analyse":
        verdict = analyse(read_log(args.log))
        print(verdict.text())
        return 0 if verdict.ok else 1

    if args.command == "storm":
        try:
            chain = chain_id(args.chain)
            keys = key_list(Signer(args.url, args.timeout), args.key)
        except (ValueError, RuntimeError, OSError) as e:
            print(f"bringup: {e}", file=sys.stderr)
            return 2
        start = args.start_level
        if start is None:
            earlier = read_log(args.log) if os.path.exists(args.log) else []
            start = max((r["level"] for r in earlier), default=999) + 100
        storm = Storm(args.url, keys, chain, Log(args.log), start, args.connections,
                      args.timeout)
        signal.signal(signal.SIGTERM, lambda *_: storm.stop.set())
        # Ctrl-C stops the storm even when a non-interactive shell started us in the background
        # (it leaves SIGINT ignored, and Python then installs no KeyboardInterrupt handler).
        signal.signal(signal.SIGINT, signal.default_int_handler)
        print(f"storm: {len(keys)} key(s), {args.connections} connection(s), from level "
              f"{start}; unplug the board now and then, plug it back; Ctrl-C to stop",
              flush=True)
        storm.run(args.duration)
        c = storm.counts
        print(f"storm: {c['sent']} requests, {c['signed']} signed, {c['refused']} refused, "
              f"{c['unanswered']} unanswered; up to level {start + storm.next_level - 1}",
              flush=True)
        return 0

    records = read_log(args.log)
    if not any(r.get("phase") == "storm" for r in records):
        print(f"bringup: no storm in {args.log}", file=sys.stderr)
        return 2
    try:
        probe(args.url, records, Log(args.log), args.timeout, args.wait)
    except RuntimeError as e:
        print(f"bringup: {e}", file=sys.stderr)
        return 2
    verdict = analyse(read_log(args.log))
    print(verdict.text(), flush=True)
    return 0 if verdict.ok else 1


if __name__ == "__main__":
    sys.exit(main())
