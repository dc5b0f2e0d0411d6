"""Board logs end to end: the board keeps its events (boot and mode, store health, refusals
with their reason, erases, button waits) and answers only when asked; `pawl serve` asks each
board every second and logs each event with the board's configured name. Against the virtual
board (`pawl-sim board --pty`) and the QEMU firmware (`pawl-sim qemu`): a double attestation
sent over HTTP is refused, and the bridge's log then names the board, the key and the
refusal's reason; the boot event names the mode; the dropped-events counter is exported; the
imported secret appears nowhere in the log."""

import re
import time
import urllib.request
from pathlib import Path

import pytest

import procs
import tezos
from test_qemu import QemuBoard, qemu_elf  # noqa: F401  (fixture)

CHAIN = tezos.TEST_CHAIN
SECRET = "edsk4FTF78Qf1m2rykGpHqostAiq5gYW4YZEoGUSWBTJr2njsDHSnd"
NAME = "vault-a"


def provision(bins, home: Path, device: Path) -> str:
    out = procs.pawl_cli(bins, ["keys", "import", "--home", str(home), "--device", str(device),
                                "--allow", "block,preattestation,attestation",
                                "--chain", tezos.chain_b58(CHAIN)],
                         stdin_text=SECRET + "\n")
    return out.split()[0]


def wait_for_line(path: Path, pattern: str, timeout: float = 15) -> str:
    deadline = time.monotonic() + timeout
    rx = re.compile(pattern)
    while time.monotonic() < deadline:
        for line in path.read_text(errors="replace").splitlines():
            if rx.search(line):
                return line
        time.sleep(0.2)
    raise AssertionError(f"no log line matching {pattern!r} in {path}:\n"
                         + path.read_text(errors="replace")[-3000:])


def check_refusal_is_logged(bins, home: Path, device: Path, logs: Path, label: str):
    pkh = provision(bins, home, device)
    (home / "pawl.toml").write_text(f'[[device]]\nname = "{NAME}"\npath = "{device}"\n')
    bridge = procs.Bridge(bins, home, None, logs, name=f"{label}-serve")
    try:
        level = 4242
        status, body = bridge.sign(pkh, tezos.attestation("ed", CHAIN, level, 0,
                                                          payload_hash=b"\x01" * 32))
        assert status == 200, body
        # The same level and round with other data: a double attestation, refused.
        status, body = bridge.sign(pkh, tezos.attestation("ed", CHAIN, level, 0,
                                                          payload_hash=b"\x02" * 32))
        assert status == 409 or status >= 400, body
        line = wait_for_line(bridge.log_path, rf"board refused: .*level {level}")
        assert f"board={NAME}" in line or f'board="{NAME}"' in line, line
        assert pkh in line, line
        assert "WARN" in line, line
        assert re.search(r"watermark|different data", line), line
        boot = wait_for_line(bridge.log_path, r"board booted in \w+ mode")
        assert NAME in boot, boot
        store = wait_for_line(bridge.log_path, r"board store loaded: ok")
        assert NAME in store, store
        metrics = urllib.request.urlopen(bridge.metrics_url, timeout=10).read().decode()
        # One board: its figures carry no board label (the board's name is in the logs).
        assert "\npawl_board_events_dropped_total 0\n" in metrics, metrics[-2000:]
        text = bridge.log_path.read_text(errors="replace")
        assert SECRET not in text and SECRET[4:16] not in text
    finally:
        bridge.stop()


def test_the_virtual_board_refusal_is_logged_with_the_board_name(bins, tmp_root):
    root = tmp_root / "board-logs"
    logs = root / "logs"
    logs.mkdir(parents=True)
    home = root / "bridge"
    home.mkdir()
    board = procs.Sim(bins, root / "board", logs, root / "device", name="logs-board")
    try:
        check_refusal_is_logged(bins, home, board.device, logs, "logs")
    finally:
        board.stop()


def test_the_qemu_board_refusal_is_logged_with_the_board_name(bins, tmp_root, qemu_elf):  # noqa: F811
    root = tmp_root / "board-logs-qemu"
    logs = root / "logs"
    logs.mkdir(parents=True)
    home = root / "bridge"
    home.mkdir()
    board = QemuBoard(bins, qemu_elf, root / "board", logs, root / "device",
                      name="logs-qemu")
    try:
        check_refusal_is_logged(bins, home, root / "device", logs, "logs-qemu")
    finally:
        board.stop()
