"""Fixtures: build the binaries, start `pawl-sim board --pty` and `pawl serve` as separate
processes, provision one key per curve, and kill everything at the end."""

import atexit
import itertools
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

import procs
import tezos

atexit.register(procs.kill_all)


@dataclass
class KeySpec:
    name: str
    curve: str  # pawl's --curve
    secret: str | None  # imported when given, generated on the board otherwise
    allow: str
    ops: str | None = None
    chain: bytes | None = None


# Secrets from docs/protocol.md §8.4 (upstream test vectors; public, never real keys).
KEY_SPECS = [
    KeySpec("tz1", "ed25519", "edsk4FTF78Qf1m2rykGpHqostAiq5gYW4YZEoGUSWBTJr2njsDHSnd",
            "block,preattestation,attestation,generic", "transaction,reveal"),
    KeySpec("tz2", "secp256k1", "spsk1zkqrmst1yg2c4xi3crWcZPqgdc9KtPtb9SAZWYHAdiQzdHy7j",
            "block,preattestation,attestation"),
    # Generated on the board, restricted to the test chain, while `pawl serve` runs (so through
    # serve's control socket).
    KeySpec("tz3", "p256", None, "block,preattestation,attestation", chain=tezos.TEST_CHAIN),
    KeySpec("tz4", "bls", "BLsk1hKAHyGqY9qRbgoSVnjiSmDWpKGjFF3WNQ7BaiaMUA6RMA6Pfq",
            "block,preattestation,attestation,generic", "reveal"),
]


@dataclass
class Key:
    name: str
    curve: str  # "ed" | "sp" | "p2" | "bls" (payload builders)
    pkh: str
    pk: str
    secret: str | None


CURVE_TAG = {"ed25519": "ed", "secp256k1": "sp", "p256": "p2", "bls": "bls"}


def provision(bins, home: Path, device: Path, spec: KeySpec) -> str:
    args = ["keys", "import" if spec.secret else "generate", "--home", str(home),
            "--device", str(device), "--allow", spec.allow]
    if not spec.secret:
        args += ["--curve", spec.curve]
    if spec.ops:
        args += ["--allow-ops", spec.ops]
    # `pawl keys` pins mainnet unless told otherwise: these keys sign on the test chain and on
    # the chain of the upstream vectors (test_reference_vectors).
    for chain in [spec.chain] if spec.chain else [tezos.TEST_CHAIN, tezos.VECTOR_CHAIN]:
        args += ["--chain", tezos.chain_b58(chain)]
    out = procs.pawl_cli(bins, args, stdin_text=(spec.secret + "\n") if spec.secret else None)
    tokens = out.split()
    assert tokens, f"pawl keys printed nothing: {out!r}"
    return tokens[0]


class Stack:
    """One virtual board and one bridge, each its own process, with temp homes."""

    def __init__(self, bins, root: Path, name: str):
        self.bins = bins
        self.root = root
        self.logs = root / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.board_home = root / "board"
        self.bridge_home = root / "bridge"
        self.device = root / "device"  # symlink to the current /dev/pts/N
        self.name = name
        self.sim = procs.Sim(bins, self.board_home, self.logs, self.device, name=f"{name}-sim")
        self.bridge: procs.Bridge | None = None
        self.restarts = 0

    def start_bridge(self):
        self.bridge = procs.Bridge(self.bins, self.bridge_home, self.device, self.logs,
                                   name=f"{self.name}-serve")
        return self.bridge

    def restart_sim(self):
        self.restarts += 1
        self.sim = procs.Sim(self.bins, self.board_home, self.logs, self.device,
                             name=f"{self.name}-sim{self.restarts}")

    def log_tails(self) -> str:
        parts = [self.sim.log_tail()]
        if self.bridge:
            parts.append(self.bridge.log_tail())
        return "\n".join(parts)

    def stop(self):
        if self.bridge:
            self.bridge.stop()
        self.sim.stop()


_stacks: list[Stack] = []


_build_error: list[BaseException] = []


@pytest.fixture(scope="session")
def bins():
    # A failed build fails every test at once instead of being retried for each.
    if _build_error:
        raise RuntimeError(f"build failed earlier: {_build_error[0]}")
    try:
        return procs.Binaries()
    except Exception as e:
        _build_error.append(e)
        raise


@pytest.fixture(scope="session")
def tmp_root():
    root = Path(tempfile.mkdtemp(prefix="pawl-e2e-"))
    yield root
    procs.kill_all()
    if os.environ.get("PAWL_E2E_KEEP") != "1":
        shutil.rmtree(root, ignore_errors=True)


def make_stack(bins, tmp_root: Path, name: str, specs: list[KeySpec]) -> tuple[Stack, dict]:
    stack = Stack(bins, tmp_root / name, name)
    _stacks.append(stack)
    keys: dict[str, Key] = {}
    try:
        # Keys imported before serve starts (the CLI opens the device itself) …
        for spec in specs:
            if spec.secret:
                pkh = provision(bins, stack.bridge_home, stack.device, spec)
                keys[spec.name] = Key(spec.name, CURVE_TAG[spec.curve], pkh,
                                      tezos.public_key_of(spec.secret), spec.secret)
        stack.start_bridge()
        # … and keys generated while it runs (through serve's control socket).
        for spec in specs:
            if not spec.secret:
                pkh = provision(bins, stack.bridge_home, stack.device, spec)
                status, body = stack.bridge.public_key(pkh)
                assert status == 200, f"GET /keys/{pkh} after generate: {status} {body!r}"
                keys[spec.name] = Key(spec.name, CURVE_TAG[spec.curve], pkh,
                                      body["public_key"], None)
    except Exception:
        print(stack.log_tails())
        raise
    return stack, keys


@pytest.fixture(scope="session")
def stack_keys(bins, tmp_root):
    stack, keys = make_stack(bins, tmp_root, "main", KEY_SPECS)
    yield stack, keys
    stack.stop()


@pytest.fixture(scope="session")
def stack(stack_keys):
    return stack_keys[0]


@pytest.fixture(scope="session")
def bridge(stack_keys):
    return stack_keys[0].bridge


@pytest.fixture(scope="session")
def keys(stack_keys):
    return stack_keys[1]


class Levels:
    """Hands out fresh, increasing level ranges so tests sharing a key never collide on its
    watermarks, whatever order they run in."""

    def __init__(self):
        self._next = itertools.count(1000, 1000)

    def take(self) -> int:
        return next(self._next)


@pytest.fixture(scope="session")
def levels():
    return Levels()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and _stacks:
        report.sections.append(("pawl process logs",
                                "\n".join(s.log_tails() for s in _stacks)))
