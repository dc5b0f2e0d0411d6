#!/usr/bin/env python3
"""The CometBFT bench's request stream and its comparison (tests/bench/cometbft.sh).

  cometbft_stream.py stream N CHAIN_ID > script.json
      N requests for pawl-cometbft-node --script: heights climbing from 1, each height a
      proposal, a prevote and a precommit (every other precommit with a vote extension), and
      between them, drawn from a fixed seed: identical re-requests, timestamp-only retries,
      conflicting block ids at the same height/round/step, a nil vote after a block vote, a
      new round, height and round regressions, and a wrong chain id. Each request carries its
      case as `tag`.

  cometbft_stream.py compare PAWL_OUT TMKMS_OUT
      The node's answers from both signers, request by request: where they agree, where they
      differ and how (a markdown table), and the latency of signed answers (p50/p99, ratio).

Standard library only."""

import json
import random
import sys
from collections import Counter, defaultdict

SEED = 20


def block(h: int, variant: int = 0) -> str:
    return f"{h:016x}{variant:016x}".ljust(64, "a")


def time_of(h: int, r: int, extra_ms: int = 0) -> str:
    ms = 1_700_000_000_000 + h * 5_000 + r * 1_000 + extra_ms
    s, ms = divmod(ms, 1000)
    from datetime import datetime, timezone
    t = datetime.fromtimestamp(s, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{t}.{ms:03d}000000Z"


def stream(n: int, chain: str) -> list[dict]:
    rng = random.Random(SEED)
    out: list[dict] = [{"op": "pubkey", "tag": "pubkey"}]
    h = 0
    while len(out) < n:
        h += 1
        r = 0
        steps = [("proposal", {}), ("prevote", {}), ("precommit", {})]
        if h % 2 == 0:
            steps[2] = ("precommit", {"extension": f"{h:08x}"})
        # Now and then a height takes a second round (nil prevote and precommit in round 0).
        if rng.random() < 0.10:
            out.append({"op": "prevote", "height": h, "round": 0, "block": None,
                        "time": time_of(h, 0), "tag": "nil prevote"})
            out.append({"op": "precommit", "height": h, "round": 0, "block": None,
                        "time": time_of(h, 0), "tag": "nil precommit"})
            r = 1
        for op, extra in steps:
            req = {"op": op, "height": h, "round": r, "block": block(h), "time": time_of(h, r),
                   **extra, "tag": op}
            if op == "proposal":
                req["pol_round"] = -1
            out.append(req)
            x = rng.random()
            if x < 0.06:
                out.append({**req, "tag": "identical retry"})
            elif x < 0.12:
                out.append({**req, "time": time_of(h, r, 700), "tag": "timestamp-only retry"})
            elif x < 0.16:
                out.append({**req, "block": block(h, 1), "tag": "conflicting block"})
            elif x < 0.18 and op != "proposal":
                out.append({**req, "block": None, "tag": "nil after block"})
            elif x < 0.183 and h > 2:
                out.append({**req, "height": h - 1, "tag": "height regression"})
            elif x < 0.19 and r > 0:
                out.append({**req, "round": r - 1, "block": block(h, 2), "tag": "round regression"})
            elif x < 0.192:
                out.append({**req, "height": h + 1, "chain_id": chain + "-other",
                            "tag": "wrong chain id"})
        if rng.random() < 0.03:
            out.append({"op": "ping", "tag": "ping"})
    return out[:n]


def load(path: str) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.startswith("{")]


def outcome(a: dict) -> str:
    if a["answer"] == "signed":
        return "signed" if a.get("sig_ok") and a.get("fields_match") else "signed-BAD"
    if a["answer"] in ("error", "closed"):
        return "refused"
    return a["answer"]


def pct(xs: list[int], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))] / 1000 if xs else float("nan")


def compare(pawl_path: str, tmkms_path: str) -> int:
    pawl, tmkms = load(pawl_path), load(tmkms_path)
    assert len(pawl) == len(tmkms), (len(pawl), len(tmkms))
    rows: Counter = Counter()
    examples: dict = {}
    looser = 0
    bad = 0
    conflicts = {"pawl": 0, "tmkms": 0}
    resigned = {"pawl": 0, "tmkms": 0}
    for p, t in zip(pawl, tmkms):
        tag = p.get("tag", "?")
        po, to = outcome(p), outcome(t)
        for name, a in (("pawl", p), ("tmkms", t)):
            conflicts[name] += bool(a.get("conflict"))
            resigned[name] += bool(a.get("resigned"))
            bad += outcome(a) == "signed-BAD"
        if po == to == "signed":
            if p["sig"] == t["sig"]:
                what = "same signature"
            elif p.get("time") != t.get("time"):
                what = "both signed, timestamps differ"
            else:
                what = "both signed, signatures differ"
            if p.get("extension_kept") != t.get("extension_kept"):
                what += (f"; extension returned: pawl {p.get('extension_kept')}, "
                         f"tmkms {t.get('extension_kept')}")
            if p.get("ext_sig_ok") != t.get("ext_sig_ok"):
                what += f"; extension signature pawl {p.get('ext_sig_ok')} tmkms {t.get('ext_sig_ok')}"
        elif po == to == "refused":
            what = f"both refused (pawl {p['answer']}, tmkms {t['answer']})"
        elif po == to:
            what = f"same answer ({po})"
        elif po == "refused" and to == "signed":
            what = "pawl refused, tmkms signed"
        elif po == "signed" and to == "refused":
            what = "pawl signed, tmkms refused"
            looser += 1
        else:
            what = f"pawl {po}, tmkms {to}"
        key = (tag, what)
        rows[key] += 1
        examples.setdefault(key, (p, t))
    print(f"requests: {len(pawl)}\n")
    print("| request | outcome | count | example (pawl / tmkms) |")
    print("| --- | --- | ---: | --- |")
    for (tag, what), count in sorted(rows.items()):
        p, t = examples[(tag, what)]
        ex = f"i={p['i']} h={p['height']} r={p['round']}: {brief(p)} / {brief(t)}"
        print(f"| {tag} | {what} | {count} | {ex} |")
    print()
    print(f"conflicting signatures (two blocks at one height/round/step): pawl {conflicts['pawl']}, "
          f"tmkms {conflicts['tmkms']}")
    print(f"same block signed again with other sign bytes (new timestamp): pawl {resigned['pawl']}, "
          f"tmkms {resigned['tmkms']}")
    print(f"signatures that do not verify or fields changed: {bad}")
    print(f"pawl signed where tmkms refused: {looser}\n")
    lat = {}
    for name, answers in (("pawl", pawl), ("tmkms", tmkms)):
        us = [a["us"] for a in answers if a["answer"] == "signed"]
        lat[name] = (pct(us, 0.50), pct(us, 0.99), len(us))
    print("| signer | signed answers | p50 ms | p99 ms |")
    print("| --- | ---: | ---: | ---: |")
    for name, (p50, p99, count) in lat.items():
        print(f"| {name} | {count} | {p50:.3f} | {p99:.3f} |")
    print(f"\nratio pawl/tmkms: p50 {lat['pawl'][0] / lat['tmkms'][0]:.2f}, "
          f"p99 {lat['pawl'][1] / lat['tmkms'][1]:.2f}")
    return 1 if (looser or bad or conflicts["pawl"]) else 0


def brief(a: dict) -> str:
    if a["answer"] == "signed":
        return f"signed {a['sig'][:8]}… at {a.get('time')}"
    if a["answer"] == "error":
        return f"error {a['code']}: {a['description'][:70]}"
    if a["answer"] == "closed":
        return "connection closed"
    return a["answer"]


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "stream":
        json.dump(stream(int(sys.argv[2]), sys.argv[3]), sys.stdout)
        return 0
    if len(sys.argv) == 4 and sys.argv[1] == "compare":
        return compare(sys.argv[2], sys.argv[3])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
