"""`pawl device selftest` (issue 18, board part) against the virtual board (in process and
`pawl-sim board --pty`) and the QEMU board (`pawl-sim qemu`): the real CLI with `--json`, every
field of the report checked for presence and plausibility; the throw-away signatures verified
here by pytezos / py_ecc (tezos.verify), not by pawl; operational mode signs and writes nothing;
a check that fails (no button press) makes the command exit non-zero."""

import json
import subprocess
import threading
import time
import tomllib
from pathlib import Path

import pytest

import procs
import tezos
from test_qemu import QemuBoard, qemu_elf  # noqa: F401  (qemu_elf is a fixture)

CLI_TIMEOUT = 120
# The fixed message the board's throw-away keys sign (pawl_core::board::TEST_MESSAGE), written
# out here rather than taken from the report.
TEST_MESSAGE = b"PAWL SELF-TEST: a throw-away key, made in RAM and dropped"
CURVES = {"tz1": "edsig", "tz2": "spsig1", "tz3": "p2sig", "tz4": "BLsig"}
PK_PREFIX = {"tz1": "edpk", "tz2": "sppk", "tz3": "p2pk", "tz4": "BLpk"}
# Generous ceilings for one signature on the board's clock, in microseconds: the virtual
# board signs in well under a millisecond, the QEMU board in tens of milliseconds.
SIGN_CEILING_US = {"virtual": 2_000_000, "qemu": 10_000_000}


def crate_version(path: str) -> str:
    return tomllib.loads((procs.REPO / path).read_text())["package"]["version"]


def selftest(bins, home: Path, device: Path | None, *extra: str,
             expect_ok: bool = True) -> dict:
    argv = [bins.pawl, "--home", str(home), *(["--device", str(device)] if device else []),
            "--json", "device", "selftest", *extra]
    r = subprocess.run(argv, capture_output=True, timeout=CLI_TIMEOUT, stdin=subprocess.DEVNULL)
    out = r.stdout.decode()
    assert (r.returncode == 0) == expect_ok, (r.returncode, out, r.stderr.decode()[-2000:])
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1, out
    return json.loads(lines[0])


def check_common(report: dict, board_kind: str, firmware_crate: str, mode: str):
    """Every field present and plausible, whatever the mode."""
    assert report["versions"] == {
        "firmware": crate_version(firmware_crate),
        "protocol": 1,
        "bridge": crate_version("host-bridge/Cargo.toml"),
        "bridge_protocol": 1,
        "status": "ok",
    }
    assert report["mode"] == mode
    assert isinstance(report["board"], str) and report["board"]
    assert isinstance(report["via"], str) and report["via"]
    expected_model = {"virtual": "virtual", "qemu": "qemu mps2-an505"}[board_kind]
    assert report["board_model"].startswith(expected_model), report["board_model"]
    store = report["store"]
    assert store["status"] == "ok"
    assert store["mark_capacity"] == 64 and 0 <= store["marks"] <= 64
    assert set(store["wear"]) == {"records", "bytes_written", "pages_erased"}
    assert store["keys"] >= 0 and store["signatures"] >= 0 and store["refusals"] >= 0
    assert report["board_key"] == "simulated-file"
    clock = report["clock"]
    assert clock["instruments"] is True
    assert {"virtual": "Instant", "qemu": "SysTick"}[board_kind] in clock["source"]
    assert report["scratch_flash"]["present"] is True
    assert 0 <= report["scratch_flash"]["tests_left_this_boot"] <= 8

    link = report["link"]
    assert link["status"] == "ok" and link["echo_crc_ok"] is True
    rtt = link["rtt_us"]
    assert link["round_trips"] == 100
    assert 0 < rtt["min"] <= rtt["p50"] <= rtt["p90"] <= rtt["p99"] <= rtt["max"] < 5_000_000
    assert 1 <= link["echo_frames"] <= 64 and link["echo_payload_bytes"] == 16384
    assert link["throughput_mb_s"] > 0
    # Bytes over time, as reported, within rounding.
    mb_s = link["echo_frames"] * 16384 / link["echo_seconds"] / 1e6
    assert abs(mb_s - link["throughput_mb_s"]) <= 0.01 * mb_s

    assert report["button"] == {"status": "skipped: --no-button"}

    e = report["entropy"]
    assert e["status"] == "ok" and e["pass"] is True and e["source_ok"] is True
    assert e["bytes"] == 4096 and e["runs"] in (1, 2)
    # The cutoffs of SP 800-90B for H = 4 bits a byte (1 + 20/4; Table 2, W = 512) and
    # FIPS 140-2's monobit interval, from the standards.
    assert e["run_cutoff"] == 6 and e["apt_cutoff"] == 62
    assert 1 <= e["longest_run"] < 6 and 1 <= e["apt_max"] < 62
    assert 9725 < e["monobit_ones"] < 10275 and e["monobit_bits"] == 20000
    assert report["ok"] is True and report["failures"] == []
    assert isinstance(report["warnings"], list)
    assert bytes.fromhex(report["test_message_hex"]) == TEST_MESSAGE


def check_provisioning(report: dict, board_kind: str):
    signs = report["sign"]
    assert [s["curve"] for s in signs] == list(CURVES)
    keys = set()
    for s in signs:
        assert s["status"] == "ok", s
        assert s["verified_by_board"] and s["verified_by_bridge"], s
        assert s["public_key"].startswith(PK_PREFIX[s["curve"]])
        assert s["signature"].startswith(CURVES[s["curve"]])
        # Checked by pytezos / py_ecc, independently of pawl.
        tezos.verify(s["public_key"], s["signature"], TEST_MESSAGE)
        assert 0 < s["sign_us"] < SIGN_CEILING_US[board_kind], s
        assert 0 < s["verify_us"] < SIGN_CEILING_US[board_kind], s
        # The board's clock cannot see more time than the bridge waited for the answer.
        assert s["sign_us"] + s["verify_us"] <= s["request_us"], s
        keys.add(s["public_key"])
    assert len(keys) == 4
    f = report["flash"]
    assert f["status"] == "ok" and f["erased_ok"] and f["readback_ok"], f
    assert f["program_bytes"] == 256
    assert 0 < f["erase_us"] < 5_000_000 and 0 < f["program_us"] < 5_000_000


def check_operational(report: dict):
    for s in report["sign"]:
        assert s == {"curve": s["curve"], "status": "skipped: operational mode"}
    assert [s["curve"] for s in report["sign"]] == list(CURVES)
    assert report["flash"] == {"status": "skipped: operational mode"}


def state(home: Path) -> dict:
    """The board's store files: nothing a self-test may change."""
    return {name: (home / name).read_bytes() for name in ("flash.bin", "rollback-counter")
            if (home / name).exists()}


def test_selftest_virtual_board_in_process(bins, tmp_root):
    home = tmp_root / "selftest-virtual"
    report = selftest(bins, home, None, "--no-button")
    check_common(report, "virtual", "core/Cargo.toml", "provisioning")
    check_provisioning(report, "virtual")
    assert report["via"].startswith("in-process virtual board")
    # The scratch sector is its own file, left erased; the store is another.
    scratch = (home / "virtual-board" / "selftest-scratch.bin").read_bytes()
    assert scratch == b"\xff" * 4096
    # The store wrote nothing for the self-test, and no key was kept.
    assert report["store"]["wear"] == {"records": 0, "bytes_written": 0, "pages_erased": 0}
    again = selftest(bins, home, None, "--no-button")
    assert again["store"]["keys"] == 0 and again["store"]["signatures"] == 0
    assert again["store"]["wear"] == report["store"]["wear"]


def test_selftest_virtual_board_operational_signs_nothing(bins, tmp_root):
    root = tmp_root / "selftest-virtual-op"
    logs = root / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    board_home = root / "board"
    sim = procs.Sim(bins, board_home, logs, root / "device", operational=True,
                    name="selftest-sim-op")
    try:
        before = state(board_home)
        report = selftest(bins, root / "bridge", sim.device, "--no-button")
        check_common(report, "virtual", "core/Cargo.toml", "operational")
        check_operational(report)
        assert report["store"]["signatures"] == 0
        assert state(board_home) == before
        assert not (board_home / "selftest-scratch.bin").exists()
    finally:
        sim.stop()


@pytest.fixture(scope="module")
def qemu_root(tmp_root):
    root = tmp_root / "selftest-qemu"
    (root / "logs").mkdir(parents=True, exist_ok=True)
    return root


def boot_qemu(bins, elf, root: Path, operational: bool, name: str) -> QemuBoard:
    """Boot QEMU and wait until the firmware has opened its state (files made on first boot)."""
    board = QemuBoard(bins, elf, root / f"board-{name}", root / "logs", root / f"device-{name}",
                      f"selftest-{name}", operational)
    deadline = time.monotonic() + procs.START_TIMEOUT
    while "board up:" not in board.log_text():
        if time.monotonic() > deadline:
            board.stop()
            raise TimeoutError(board.log_text())
        time.sleep(0.05)
    return board


def test_selftest_qemu_board(bins, qemu_elf, qemu_root):  # noqa: F811
    board = boot_qemu(bins, qemu_elf, qemu_root, False, "prov")
    try:
        report = selftest(bins, qemu_root / "bridge-prov", qemu_root / "device-prov",
                          "--no-button")
        check_common(report, "qemu", "firmware/qemu/Cargo.toml", "provisioning")
        check_provisioning(report, "qemu")
        scratch = (board.home / "selftest-scratch.bin").read_bytes()
        assert scratch == b"\xff" * 4096
        assert report["store"]["wear"] == {"records": 0, "bytes_written": 0, "pages_erased": 0}

        # The button: pressed (the state directory's `button` file) 1.5 s after the board
        # says it waits. The board times the press on its own clock (SysTick across a dozen
        # of its 125 ms periods): it must agree with the host's clock.
        waits = board.log_text().count("self-test: waiting")
        seen = {}

        def press():
            deadline = time.monotonic() + CLI_TIMEOUT
            while board.log_text().count("self-test: waiting") == waits:
                assert time.monotonic() < deadline
                time.sleep(0.01)
            seen["wait"] = time.monotonic()
            time.sleep(1.5)
            (board.home / "button").write_bytes(b"")
            seen["press"] = time.monotonic()

        presser = threading.Thread(target=press)
        presser.start()
        pressed = selftest(bins, qemu_root / "bridge-prov", qemu_root / "device-prov")
        done = time.monotonic()
        presser.join()
        assert pressed["button"]["status"] == "ok", pressed["button"]
        after = pressed["button"]["pressed_after_us"] / 1e6
        # At least the host's 1.5 s (less the log's delay), at most until the answer came.
        assert 1.3 < after < done - seen["wait"] + 0.2, (after, seen, done)

        # No press: the check fails and so does the command.
        failed = selftest(bins, qemu_root / "bridge-prov", qemu_root / "device-prov",
                          expect_ok=False)
        assert failed["button"] == {"status": "failed: not pressed"}
        assert failed["ok"] is False and any("button" in f for f in failed["failures"])
    finally:
        board.stop()


def test_selftest_qemu_board_operational_signs_nothing(bins, qemu_elf, qemu_root):  # noqa: F811
    board = boot_qemu(bins, qemu_elf, qemu_root, True, "op")
    try:
        before = state(board.home)
        report = selftest(bins, qemu_root / "bridge-op", qemu_root / "device-op", "--no-button")
        check_common(report, "qemu", "firmware/qemu/Cargo.toml", "operational")
        check_operational(report)
        assert report["store"]["signatures"] == 0
        assert state(board.home) == before
        assert not (board.home / "selftest-scratch.bin").exists()
    finally:
        board.stop()
