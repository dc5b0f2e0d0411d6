"""Cosmos mode end to end (issue 20): pawl as the remote signer of a CometBFT node, checked by an
independent node (tests/cometbft-node, Informal's tendermint-rs: tendermint-p2p's
SecretConnection, tendermint-proto's privval messages, tendermint's `into_signable_vec` sign
bytes) on the virtual board (`pawl-sim board --pty`) and on the QEMU board (the firmware), over
both transports (tcp:// SecretConnection, unix://).

One stack per board: the board, a Cosmos key per transport (`pawl keys generate --role cosmos
--chain-id`), one node per transport, and `pawl serve` with a `[[cometbft]]` entry for each.
Every test takes fresh heights, so the tests sharing a key never meet on its mark."""

import hashlib
import itertools
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from pytezos.crypto.encoding import base58_encode

import cometbft_node
import procs
import tezos
from conftest import Stack, _stacks
from test_qemu import QemuStack, qemu_elf  # noqa: F401  (the firmware image fixture)

CHAIN_ID = "pawl-e2e-1"
TRANSPORTS = ["tcp", "unix"]


def block(height: int, variant: int = 0) -> str:
    """A block hash (hex): different per height and per variant."""
    return hashlib.sha256(f"block {height} {variant}".encode()).hexdigest()


def stamp(height: int, round_: int = 0, extra_ms: int = 0) -> str:
    """A vote time (RFC 3339, nanoseconds)."""
    ms = 1_800_000_000_000 + height * 6_000 + round_ * 1_000 + extra_ms
    s, ms = divmod(ms, 1000)
    t = datetime.fromtimestamp(s, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{t}.{ms:03d}000001Z"


def instant(text: str) -> tuple[int, int]:
    """(seconds, nanoseconds) of an RFC 3339 UTC time, whatever its number of digits."""
    assert text.endswith("Z"), text
    whole, _, frac = text[:-1].partition(".")
    secs = int(datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S")
               .replace(tzinfo=timezone.utc).timestamp())
    return secs, int((frac or "0").ljust(9, "0"))


def tz1_of(pubkey_hex: str) -> str:
    return tezos.pkh_of(base58_encode(bytes.fromhex(pubkey_hex), b"edpk").decode())


def signed(a: dict) -> bool:
    return a["answer"] == "signed"


# RemoteSignerError codes: pawl's bridge (host-bridge/src/cometbft/answer.rs) answers 2 for what
# the board refuses as a double sign, a regression or a retry it has no record of (tmkms uses 2
# for double signs too), 1 for every other refusal.
DOUBLE_SIGN = 2


def refused(a: dict, code: int | None = None) -> bool:
    """A RemoteSignerError with a reason (pawl answers refusals; it never hangs up on them)."""
    return (a["answer"] == "error" and a["description"] != ""
            and (code is None or a["code"] == code))


def assert_signed(a: dict, time_asked: str | None = None):
    assert signed(a), f"not signed: {a}"
    assert a["sig_ok"] is True, f"signature does not verify over tendermint's sign bytes: {a}"
    assert a["fields_match"], f"the signer changed the vote or proposal: {a}"
    assert not a["conflict"], f"two blocks signed at one height/round/step: {a}"
    if time_asked is not None:
        assert instant(a["time"]) == instant(time_asked), a


class Heights:
    """Fresh height ranges, increasing, shared by every test of a stack."""

    def __init__(self):
        self._next = itertools.count(100, 100)

    def take(self) -> int:
        return next(self._next)


class CometStack:
    """A board (virtual or QEMU), one Cosmos key and one node per transport, and `pawl serve`
    with a `[[cometbft]]` entry per node."""

    def __init__(self, kind: str, bins, elf, root: Path, node_bin: Path):
        self.kind, self.bins, self.root = kind, bins, root
        self.logs = root / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        if kind == "virtual":
            self.stack = Stack(bins, root, "comet-virtual")
        else:
            self.stack = QemuStack(bins, elf, root, "comet-qemu")
            self.stack.boot()
        self.bridge_home = self.stack.bridge_home
        self.bridge_home.mkdir(parents=True, exist_ok=True)
        _stacks.append(self)  # conftest adds the logs to a failed test's report
        self.keys: dict[str, str] = {}
        self.nodes: dict[str, cometbft_node.Node] = {}
        self.heights = Heights()
        for transport in TRANSPORTS:
            self.keys[transport] = self.provision()
            listen = ("tcp://127.0.0.1:0" if transport == "tcp"
                      else f"unix://{root / f'node-{transport}.sock'}")
            self.nodes[transport] = cometbft_node.Node(node_bin, listen, CHAIN_ID, self.logs,
                                                       f"node-{kind}-{transport}")
        with open(self.bridge_home / "pawl.toml", "a") as f:
            for transport in TRANSPORTS:
                f.write(f'\n[[cometbft]]\nchain_id = "{CHAIN_ID}"\n'
                        f'address = "{self.nodes[transport].address}"\n'
                        f'key = "{self.keys[transport]}"\n')
        self.bridge = self.stack.start_bridge()

    def provision(self) -> str:
        out = procs.pawl_cli(self.bins, ["keys", "generate", "--home", str(self.bridge_home),
                                         "--device", str(self.stack.device), "--curve", "ed25519",
                                         "--role", "cosmos", "--chain-id", CHAIN_ID])
        pkh = out.split()[0]
        assert pkh.startswith("tz1"), out
        return pkh

    def kill9_board(self):
        if self.kind == "virtual":
            self.stack.sim.kill9()
            self.stack.sim.stop()
        else:
            self.stack.board.kill9()

    def restart_board(self):
        if self.kind == "virtual":
            self.stack.restart_sim()
        else:
            self.stack.boot()

    def log_tails(self) -> str:
        return "\n".join([self.stack.log_tails(), *(n.log_tail() for n in self.nodes.values())])

    def stop(self):
        for n in self.nodes.values():
            n.stop()
        self.stack.stop()


@pytest.fixture(scope="session")
def node_bin():
    return cometbft_node.build()


@pytest.fixture(scope="module", params=["virtual", "qemu"])
def comet(request, bins, node_bin, tmp_root):
    elf = request.getfixturevalue("qemu_elf") if request.param == "qemu" else None
    stack = None
    try:
        stack = CometStack(request.param, bins, elf, tmp_root / f"comet-{request.param}",
                           node_bin)
        # Both signers dial in and answer: the key's public key comes back.
        for transport in TRANSPORTS:
            a = stack.nodes[transport].ask_until("pubkey", lambda a: a["answer"] == "pubkey")
            assert a["answer"] == "pubkey", a
    except Exception:
        if stack:
            print(stack.log_tails())
            stack.stop()
        raise
    yield stack
    stack.stop()
    _stacks.remove(stack)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_public_key_is_the_provisioned_key(comet, transport):
    """The public key the node receives hashes to the tz1 pkh `pawl keys generate` printed."""
    node = comet.nodes[transport]
    a = node.ask("pubkey")
    assert a["answer"] == "pubkey", a
    assert tz1_of(a["pubkey"]) == comet.keys[transport], a
    assert node.ask("ping")["answer"] == "pong"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_heights_sign_and_verify(comet, transport):
    """Proposal, prevote and precommit (with a vote extension) over several heights and a
    second round: every signature verifies over tendermint's sign bytes with the timestamp
    asked, the extension signature over CanonicalVoteExtension, nothing is changed."""
    node, base = comet.nodes[transport], comet.heights.take()
    for h in range(base, base + 5):
        a = node.ask("proposal", height=h, round=0, pol_round=-1, block=block(h), time=stamp(h))
        assert_signed(a, stamp(h))
        assert_signed(node.ask("prevote", height=h, round=0, block=block(h), time=stamp(h)),
                      stamp(h))
        a = node.ask("precommit", height=h, round=0, block=block(h), time=stamp(h),
                     extension=f"{h:08x}")
        assert_signed(a, stamp(h))
        assert a["extension_kept"] and a["ext_sig_ok"] is True, a
    # A round with nil votes, then the next round signs a block.
    h = base + 5
    for op in ("prevote", "precommit"):
        assert_signed(node.ask(op, height=h, round=0, block=None, time=stamp(h)), stamp(h))
    for op in ("prevote", "precommit"):
        assert_signed(node.ask(op, height=h, round=1, block=block(h), time=stamp(h, 1)),
                      stamp(h, 1))


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_retries_get_the_recorded_signature_and_timestamp(comet, transport):
    """The identical request again gets the same signature; a request that differs only in
    its timestamp gets the recorded signature and the recorded timestamp, and the signature
    verifies over the sign bytes with that timestamp (CometBFT FilePV's rule)."""
    node, h = comet.nodes[transport], comet.heights.take()
    for op in ("proposal", "prevote", "precommit"):
        fields = dict(height=h, round=0, block=block(h), time=stamp(h))
        if op == "proposal":
            fields["pol_round"] = -1
        first = node.ask(op, **fields)
        assert_signed(first, stamp(h))
        again = node.ask(op, **fields)
        assert_signed(again, stamp(h))
        assert again["sig"] == first["sig"], (first, again)
        later = node.ask(op, **{**fields, "time": stamp(h, 0, 750)})
        assert_signed(later)  # verified over the sign bytes with the returned timestamp
        assert instant(later["time"]) == instant(stamp(h)), f"not the recorded time: {later}"
        assert later["sig"] == first["sig"] and later["sign_bytes"] == first["sign_bytes"]
        assert not later["resigned"], later


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_conflicts_and_regressions_are_refused(comet, transport):
    """At a signed height/round/step another block, or nil, is refused with a RemoteSignerError;
    so are lower heights, lower rounds and earlier steps. A refusal leaves the mark where it
    was: the recorded vote is still answered and the next height signs."""
    node, h = comet.nodes[transport], comet.heights.take()
    assert_signed(node.ask("proposal", height=h, round=1, pol_round=-1, block=block(h),
                           time=stamp(h, 1)))
    assert_signed(node.ask("prevote", height=h, round=1, block=block(h), time=stamp(h, 1)))
    attempts = {
        "another block, same step": ("prevote", dict(height=h, round=1, block=block(h, 1))),
        "nil after a block": ("prevote", dict(height=h, round=1, block=None)),
        "another proposal": ("proposal", dict(height=h, round=1, pol_round=-1,
                                              block=block(h, 1))),
        "lower height": ("prevote", dict(height=h - 1, round=5, block=block(h - 1))),
        "lower round": ("prevote", dict(height=h, round=0, block=block(h, 2))),
        "earlier step": ("proposal", dict(height=h, round=1, pol_round=-1,
                                          block=block(h), time=stamp(h, 1, 1))),
    }
    # Step regression needs a precommit first.
    last = node.ask("precommit", height=h, round=1, block=block(h), time=stamp(h, 1))
    assert_signed(last)
    attempts["prevote after the precommit"] = ("prevote", dict(height=h, round=1,
                                                               block=block(h, 3)))
    for what, (op, fields) in attempts.items():
        fields.setdefault("time", stamp(fields["height"], fields["round"]))
        a = node.ask(op, **fields)
        assert refused(a, DOUBLE_SIGN), f"{what}: not refused as a double sign: {a}"
    # The mark is still the precommit's: its retry gets the recorded signature.
    again = node.ask("precommit", height=h, round=1, block=block(h), time=stamp(h, 1))
    assert_signed(again)
    assert again["sig"] == last["sig"], "a refusal moved the mark"
    assert_signed(node.ask("prevote", height=h + 1, round=0, block=block(h + 1),
                           time=stamp(h + 1)))


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_wrong_chain_id_is_refused(comet, transport):
    """A vote or proposal for another chain than the key's is refused, and does not move the
    mark (the same height then signs on the right chain)."""
    node, h = comet.nodes[transport], comet.heights.take()
    for op in ("proposal", "prevote", "precommit"):
        fields = dict(height=h, round=0, block=block(h), time=stamp(h))
        if op == "proposal":
            fields["pol_round"] = -1
        a = node.ask(op, chain_id="cosmoshub-4", **fields)
        assert refused(a), f"{op} for another chain: {a}"
        assert_signed(node.ask(op, **fields), stamp(h))


def test_kill9_of_the_board_mid_stream_signs_nothing_conflicting(comet):
    """Requests stream over both transports while the board process is killed with SIGKILL
    (a power cut) and started again on the same state. Afterwards every height/round/step that
    was signed before the cut refuses another block; no height/round/step ever got two
    signatures over different sign bytes (the node checks every answer of the stack's life);
    and signing resumes above the board's persisted ceiling."""
    base = comet.heights.take()
    signed_before: list[tuple[str, str, dict]] = []
    stop = threading.Event()
    errors: list[BaseException] = []

    def stream(transport: str, start: int):
        node = comet.nodes[transport]
        try:
            for h in range(start, start + 10_000):
                if stop.is_set():
                    return
                for op in ("proposal", "prevote", "precommit"):
                    fields = dict(height=h, round=0, block=block(h), time=stamp(h))
                    if op == "proposal":
                        fields["pol_round"] = -1
                    a = node.ask(op, **fields)
                    if signed(a):
                        signed_before.append((transport, op, a))
                    else:  # the board is down or below its ceiling: do not race through heights
                        time.sleep(0.02)
        except BaseException as e:  # reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=stream, args=(t, base), daemon=True)
               for t in TRANSPORTS]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 120
    while len(signed_before) < 30 and time.monotonic() < deadline and not errors:
        time.sleep(0.05)
    assert len(signed_before) >= 30, f"the stream did not get going: {errors}"
    comet.kill9_board()
    cut_at = len(signed_before)
    time.sleep(0.5)
    comet.restart_board()
    # Let the stream run on until each transport has signed again after the restart.
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and not errors:
        after = {t for t, _, _ in signed_before[cut_at:]}
        if after >= set(TRANSPORTS):
            break
        time.sleep(0.2)
    stop.set()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    after = {t for t, _, _ in signed_before[cut_at:]}
    assert after >= set(TRANSPORTS), f"signing did not resume after the restart: {after}"

    outcomes: dict[str, int] = {}
    for n in comet.nodes.values():
        for a in n.answers:
            key = a["answer"] if a["answer"] != "error" else f"error {a['code']}"
            outcomes[key] = outcomes.get(key, 0) + 1
    print(f"kill -9 of the {comet.kind} board after {cut_at} signatures; answers over the "
          f"stack's life: {outcomes}")

    # Every signature the nodes ever saw: one set of sign bytes per height/round/step.
    for transport, node in comet.nodes.items():
        seen: dict[tuple, set[str]] = {}
        for a in node.answers:
            if signed(a):
                assert a["sig_ok"] is True and not a["conflict"], a
                seen.setdefault((a["op"], a["height"], a["round"]), set()).add(a["sign_bytes"])
        twice = {k: v for k, v in seen.items() if len(v) > 1}
        assert not twice, f"{transport}: one height/round/step signed over different bytes: {twice}"
    # What was signed before the cut refuses another block on the restarted board.
    for transport, op, a in signed_before[:cut_at]:
        fields = dict(height=a["height"], round=a["round"], block=block(a["height"], 9),
                      time=stamp(a["height"]))
        if op == "proposal":
            fields["pol_round"] = -1
        b = comet.nodes[transport].ask(op, **fields)
        assert refused(b, DOUBLE_SIGN), f"after the restart, {op} h={a['height']} with another block: {b}"

    # The mark itself must have been durable: sign a prevote on each key, cut the power right
    # after the answer, and before anything else is signed ask for another block at that very
    # height/round/step (and a proposal just below it). A board that kept its mark in RAM only
    # would sign them (the stream above cannot show it: its later signatures raise the mark).
    # (above every height the stream reached)
    h = max(a["height"] for n in comet.nodes.values() for a in n.answers) + 100
    for transport, node in comet.nodes.items():
        assert_signed(node.ask_until("prevote", signed, height=h, round=0, block=block(h),
                                     time=stamp(h)))
    comet.kill9_board()
    comet.restart_board()
    for transport, node in comet.nodes.items():
        # (asked again while the bridge cannot reach the restarting board: code 1, or no answer)
        probe = node.ask_until("prevote", lambda a: signed(a) or refused(a, DOUBLE_SIGN),
                               height=h, round=0, block=block(h, 9), time=stamp(h))
        assert refused(probe, DOUBLE_SIGN), f"{transport}: after a power cut: {probe}"
        probe = node.ask("proposal", height=h, round=0, pol_round=-1, block=block(h, 9),
                         time=stamp(h))
        assert refused(probe, DOUBLE_SIGN), f"{transport}: after a power cut: {probe}"
        assert not any(a.get("conflict") for a in node.answers)
