"""The independent CometBFT test node (tests/cometbft-node: Informal's tendermint-rs, not the
cometbft-rs crates pawl's bridge uses) as a child process: it listens like a CometBFT node on
priv_validator_laddr, pawl dials in, and each request the test writes on the node's stdin comes
back as one JSON line (see tests/cometbft-node/src/main.rs): what the signer answered, whether
the signature verifies over tendermint's own sign bytes, the returned timestamp, and whether it
conflicts with an earlier signature."""

import json
import os
import queue
import subprocess
import threading
import time
from pathlib import Path

import procs

NODE_DIR = procs.REPO / "tests" / "cometbft-node"
NODE_BIN = NODE_DIR / "target" / "debug" / "pawl-cometbft-node"


def build() -> Path:
    """The node binary, built here unless PAWL_E2E_NO_BUILD=1 (its own workspace and lock)."""
    if os.environ.get("PAWL_E2E_NO_BUILD") != "1":
        subprocess.run(["cargo", "build", "--locked", "--bin", "pawl-cometbft-node"],
                       cwd=NODE_DIR, check=True, stdin=subprocess.DEVNULL, timeout=1800)
    assert NODE_BIN.is_file(), f"no node binary at {NODE_BIN}"
    return NODE_BIN


class Node:
    """One node process; `ask` sends one request and returns the node's JSON answer."""

    def __init__(self, binary: Path, listen: str, chain_id: str, log_dir: Path, name: str,
                 timeout_ms: int = 15000):
        self.name = name
        self.chain_id = chain_id
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "ab", buffering=0)
        argv = [str(binary), "--listen", listen, "--chain-id", chain_id,
                "--timeout-ms", str(timeout_ms), "--accept-timeout-ms", str(timeout_ms)]
        self._log.write(f"$ {' '.join(argv)}\n".encode())
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._log, start_new_session=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.answers: list[dict] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._drain, daemon=True).start()
        procs._live.append(self)  # killed with everything else at teardown
        first = self._next_line(10)
        assert first.startswith("listening on "), first
        self.address = first[len("listening on "):]

    def _drain(self):
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self._log.write(b"[stdout] " + raw)
            self.lines.put(raw.decode(errors="replace").rstrip("\n"))

    def _next_line(self, timeout: float) -> str:
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"{self.name}: no answer within {timeout}s\n{self.log_tail()}")

    def ask(self, op: str, timeout: float = 60, **fields) -> dict:
        with self._lock:
            assert self.proc.stdin is not None
            self.proc.stdin.write((json.dumps({"op": op, **fields}) + "\n").encode())
            self.proc.stdin.flush()
            answer = json.loads(self._next_line(timeout))
            self.answers.append(answer)
            return answer

    def ask_until(self, op: str, done, timeout: float = 60, **fields) -> dict:
        """Ask again until `done(answer)` (the signer may still be dialling in, or its board
        restarting); the last answer."""
        deadline = time.monotonic() + timeout
        while True:
            a = self.ask(op, **fields)
            if done(a) or time.monotonic() > deadline:
                return a
            time.sleep(0.2)

    def log_tail(self, n: int = 30) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return f"--- last lines of {self.log_path} ---\n" + "\n".join(lines[-n:])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)
        if self in procs._live:
            procs._live.remove(self)
        self._log.close()
