"""The bring-up script's power-cut probe (tests/hardware/bringup.py, docs/hardware.md) against
the QEMU board, kill -9 of QEMU standing in for unplugging the board (issue 18).

* A storm over four connections, the board killed in the middle of it, booted again on the
  same state: the probe asks every position again (new payload, then the same) and finds zero
  double signatures.
* The probe can fail: the same run on a board whose state directory is written back from an
  earlier copy **and** whose OTP anchor is taken away (the `.otp` file removed: a board
  without the anchor, as every board was before it) — the probe must find double signatures.
* The verdict itself, on fabricated logs (no board): a double signature and a signature below
  the mark are caught, a clean log passes."""

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import procs
import tezos
from conftest import KEY_SPECS, provision
from test_qemu import QemuStack, qemu_elf  # noqa: F401 (qemu_elf is a fixture)

BRINGUP = procs.REPO / "tests" / "hardware" / "bringup.py"
sys.path.insert(0, str(BRINGUP.parent))
import bringup  # noqa: E402

CHAIN = tezos.TEST_CHAIN


def signed_in(log: Path) -> int:
    if not log.exists():
        return 0
    return sum(1 for r in bringup.read_log(str(log)) if r.get("status") == 200)


def storm(stack, pkh: str, log: Path, signatures: int, cut=None) -> subprocess.CompletedProcess:
    """Run the storm until the log holds `signatures` more signatures; then `cut()` (the power
    cut) while it still runs, and stop it (SIGINT, as Ctrl-C)."""
    before = signed_in(log)
    out = open(log.with_suffix(".out"), "a")
    proc = subprocess.Popen([sys.executable, str(BRINGUP), "storm", "--url", stack.bridge.url,
                             "--key", pkh, "--chain", CHAIN.hex(), "--log", str(log),
                             "--connections", "4", "--timeout", "5"],
                            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while signed_in(log) < before + signatures:
            assert proc.poll() is None, log.with_suffix(".out").read_text()
            assert time.monotonic() < deadline, "the storm got too few signatures"
            time.sleep(0.2)
        if cut is not None:
            cut()
            time.sleep(1.0)  # the storm runs on against a board that is gone
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        out.close()
    return proc


def probe(stack, log: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BRINGUP), "probe", "--url", stack.bridge.url,
                           "--log", str(log), "--wait", "60", "--timeout", "5"],
                          capture_output=True, text=True, timeout=600,
                          stdin=subprocess.DEVNULL)


def operational_stack(bins, qemu_elf, root: Path, name: str) -> tuple[QemuStack, str]:
    stack = QemuStack(bins, qemu_elf, root, name)
    stack.boot()
    spec = KEY_SPECS[0]  # tz1, imported: a throw-away key on the test chain
    pkh = provision(bins, stack.bridge_home, stack.device, spec)
    stack.board.stop()
    stack.boot(operational=True)
    stack.start_bridge()
    deadline = time.monotonic() + 30
    while stack.bridge.public_key(pkh)[0] != 200:
        assert time.monotonic() < deadline, "the bridge never listed the key"
        time.sleep(0.25)
    return stack, pkh


def test_power_cut_probe_finds_no_double_signature(bins, qemu_elf, tmp_root):
    root = tmp_root / "bringup-probe"
    stack, pkh = operational_stack(bins, qemu_elf, root, "bringup")
    log = root / "storm.jsonl"
    try:
        storm(stack, pkh, log, 60, cut=stack.board.kill9)
        records = bringup.read_log(str(log))
        assert any(r["status"] is None or r["status"] >= 500 for r in records), \
            "the cut fell after the storm"
        stack.boot(operational=True)
        r = probe(stack, log)
        print(r.stdout, r.stderr)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "double signatures: 0; signed below the mark with other bytes: 0" in r.stdout
        assert "VERDICT: PASS" in r.stdout
        probed = [x for x in bringup.read_log(str(log)) if x["phase"] == "probe"]
        assert any(x["how"] == "different" for x in probed)
    except Exception:
        print(stack.log_tails())
        raise
    finally:
        stack.stop()


def test_probe_finds_double_signatures_on_a_board_rolled_back_without_its_anchor(
        bins, qemu_elf, tmp_root):
    root = tmp_root / "bringup-rolled-back"
    stack, pkh = operational_stack(bins, qemu_elf, root, "rolled")
    log = root / "storm.jsonl"
    try:
        storm(stack, pkh, log, 20)
        stack.board.kill9()
        copy = root / "board-copy"
        shutil.copytree(stack.board_home, copy)
        stack.boot(operational=True)
        storm(stack, pkh, log, 20)
        stack.board.kill9()
        shutil.rmtree(stack.board_home)
        shutil.copytree(copy, stack.board_home)
        Path(str(stack.board_home) + ".otp").unlink()  # the anchor taken away
        stack.boot(operational=True)
        r = probe(stack, log)
        print(r.stdout, r.stderr)
        assert r.returncode == 1, r.stdout + r.stderr
        assert "DOUBLE SIGNATURE" in r.stdout and "VERDICT: FAIL" in r.stdout
    except Exception:
        print(stack.log_tails())
        raise
    finally:
        stack.stop()


def record(phase, level, payload, status, sig=None, kind="attestation", round_=0, how=None):
    r = {"phase": phase, "chain": "5a11e2e2", "key": "tz1x", "kind": kind, "level": level,
         "round": round_, "payload": payload, "status": status, "signature": sig}
    if how:
        r["how"] = how
    return r


def test_the_verdict_catches_what_it_must():
    clean = [record("storm", 10, "aa", 200, "s1"), record("storm", 11, "bb", None),
             record("probe", 11, "cc", 409, how="different"),
             record("probe", 10, "aa", 409, how="same"),
             record("probe", 12, "dd", 200, "s4", how="different")]
    assert bringup.analyse(clean).ok
    # Two payloads signed at one position.
    double = clean + [record("probe", 10, "ee", 200, "s5", how="different")]
    v = bringup.analyse(double)
    assert not v.ok and len(v.doubles) == 1 and "level 10 round 0" in v.doubles[0], v.text()
    # A position under the last released mark, never released, signed after the cut.
    below = [record("storm", 10, "aa", 200, "s1"), record("storm", 12, "bb", 200, "s2"),
             record("probe", 11, "cc", 200, "s3", how="different")]
    v = bringup.analyse(below)
    assert not v.ok and not v.doubles and len(v.below_mark) == 1, v.text()
    # Another kind at the same level is another mark.
    other = [record("storm", 10, "aa", 200, "s1"),
             record("probe", 10, "ff", 200, "s6", kind="block", how="different")]
    assert bringup.analyse(other).ok
    assert "VERDICT: FAIL" in bringup.analyse(double).text()
    assert json.dumps(record("storm", 1, "00", None))  # records are plain JSON


def test_chain_ids_decode():
    assert bringup.chain_id("NetXdQprcVkpaWU") == bytes.fromhex("7a06a770")
    assert bringup.chain_id("5a11e2e2") == bytes.fromhex("5a11e2e2")
