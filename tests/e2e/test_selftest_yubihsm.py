"""`pawl device selftest --yubihsm` against `pawl-sim yubihsm` (the yubihsm crate's MockHsm
behind the yubihsm-connector API) with the virtual board (`pawl-sim board --pty`): the board
opens its own SCP03 session, reads each HSM key's public key and compares it with its
record, and in provisioning mode makes, uses and deletes one throw-away key per curve; this
process only relays. Checked from outside: every report field is there and plausible, a key
the HSM now holds differently (the simulator replaced it under the same object id) is a
mismatch, the throw-away objects are gone from the HSM (List Objects through the simulator's
own client), no throw-away key became a board key, and an operational board runs no
throw-away round."""

import json
import subprocess

import pytest

import procs
from test_qemu import QemuStack, qemu_elf  # noqa: F401 (fixture)
from test_yubihsm import KEYS, YubiSim, board_and_home, yubihsm_setup

THROW_AWAY_LABEL = "pawl selftest throw-away"


def selftest(bins, home, board) -> tuple[int, dict, str]:
    """Run the self-test; (exit status, JSON report, stderr)."""
    r = subprocess.run([bins.pawl, "device", "selftest", "--yubihsm", "--json", "--home",
                        str(home), "--device", str(board.device)],
                       capture_output=True, timeout=procs.CLI_TIMEOUT)
    return r.returncode, json.loads(r.stdout), r.stderr.decode(errors="replace")


def board_keys(bins, home, board) -> list[dict]:
    out = procs.pawl_cli(bins, ["keys", "list", "--json", "--home", str(home), "--device",
                                str(board.device)])
    return json.loads(out)["keys"]


@pytest.fixture(scope="module")
def setup(bins, tmp_root):
    root = tmp_root / "selftest-yubihsm"
    logs = root / "logs"
    logs.mkdir(parents=True)
    sim = YubiSim(bins, logs)
    board, home = board_and_home(bins, root, logs, "selftest-yubihsm", sim.url, 2000)
    yubihsm_setup(bins, home, board)
    pkhs = {}
    for tz, (key_id, _curve) in KEYS.items():
        out = procs.pawl_cli(bins, ["keys", "import", "--home", str(home), "--device",
                                    str(board.device), "--backend", "yubihsm", "--key-id",
                                    str(key_id), "--allow", "attestation"])
        pkhs[key_id] = out.split()[0]
    yield sim, board, home, pkhs, root, logs
    board.stop()
    sim.stop()


def objects(sim) -> list[dict]:
    return sim.admin("/admin/objects")["objects"]


def test_session_keys_and_throw_away_keys_in_provisioning_mode(bins, setup):
    sim, board, home, pkhs = setup[:4]
    before_keys = board_keys(bins, home, board)
    before_objects = objects(sim)
    code, report, err = selftest(bins, home, board)
    assert code == 0, (report, err)
    assert report["ok"] is True and report["mode"] == "provisioning"
    assert report["throw_away"] == "run"
    checks = {c["check"]: c for c in report["checks"]}
    session = checks["session"]
    assert session["ok"] and session["auth_key_id"] == 2
    for key_id, pkh in pkhs.items():
        c = checks[f"key {pkh}"]
        assert c["ok"] and c["matches"] is True and c["key_id"] == key_id and c["pkh"] == pkh
    for tz in ("tz1", "tz2", "tz3"):
        c = checks[f"throw-away {tz}"]
        assert c["ok"] and c["verified"] is True and c["deleted"] is True, c
        assert c["curve"] == tz
        # The mock gives the object the id asked for (0); a real HSM picks one.
        assert isinstance(c["key_id"], int)
    for c in report["checks"]:
        assert 0 < c["ms"] < 30_000, c
    # Gone from the HSM: the objects are what they were, no throw-away label left.
    after_objects = objects(sim)
    assert after_objects == before_objects
    assert not any(o["label"] == THROW_AWAY_LABEL for o in after_objects)
    # Never a board key.
    assert board_keys(bins, home, board) == before_keys
    # The HSM saw the deletes (Delete Object 0x58 inside session messages is sealed, so
    # count session messages instead: at least create/auth + echo + 3 reads + 3 x 4).
    assert sim.admin("/admin/stats")["session_message"] >= 1 + 3 + 12


def test_text_report_names_every_check(bins, setup):
    sim, board, home, pkhs = setup[:4]
    r = subprocess.run([bins.pawl, "device", "selftest", "--yubihsm", "--home", str(home),
                        "--device", str(board.device)], capture_output=True,
                       timeout=procs.CLI_TIMEOUT)
    text = r.stdout.decode()
    assert r.returncode == 0, (text, r.stderr)
    assert "session" in text and "echo came back" in text
    for pkh in pkhs.values():
        assert pkh in text
    for tz in ("tz1", "tz2", "tz3"):
        assert f"throw-away {tz}" in text
    assert "FAILED" not in text


def test_a_key_the_hsm_holds_differently_is_a_mismatch(bins, setup):
    sim, board, home, pkhs = setup[:4]
    key_id = KEYS["tz2"][0]
    status, body = sim.http("POST", "/admin/replace", json.dumps({"key_id": key_id}).encode())
    assert status == 200, body
    code, report, err = selftest(bins, home, board)
    assert code != 0, report
    assert "check(s) failed" in err
    checks = {c["check"]: c for c in report["checks"]}
    bad = checks[f"key {pkhs[key_id]}"]
    assert bad["ok"] is False and bad["matches"] is False and bad["key_id"] == key_id
    for other_id, pkh in pkhs.items():
        if other_id != key_id:
            assert checks[f"key {pkh}"]["matches"] is True
    assert report["ok"] is False


def test_operational_mode_runs_session_and_key_checks_only(bins, setup):
    sim, board, home, pkhs, root, logs = setup
    board.stop()
    oper = procs.Sim(bins, root / "board", logs, root / "device", operational=True,
                     name="selftest-yubihsm-operational")
    try:
        before = sim.admin("/admin/stats")["messages"]
        code, report, err = selftest(bins, home, oper)
        assert report["mode"] == "operational"
        assert report["throw_away"].startswith("skipped")
        names = [c["check"] for c in report["checks"]]
        assert names[0] == "session"
        assert not any(n.startswith("throw-away") for n in names)
        assert len(names) == 1 + len(pkhs)
        # Session (create, authenticate, echo) and one read per key, nothing more.
        assert sim.admin("/admin/stats")["messages"] - before <= 3 + len(pkhs) + 2
    finally:
        oper.stop()


def test_the_qemu_firmware_runs_the_same_checks(bins, qemu_elf, tmp_root):  # noqa: F811
    """The same self-test on the QEMU board image: the firmware holds the session."""
    root = tmp_root / "selftest-yubihsm-qemu"
    stack = QemuStack(bins, qemu_elf, root, "selftest-hsm-qemu")
    sim = YubiSim(bins, stack.logs)
    try:
        (stack.bridge_home / "pawl.toml").write_text(
            f'[yubihsm]\nconnector = "{sim.url}"\nmessage_timeout_ms = 2000\n')
        stack.boot()
        yubihsm_setup(bins, stack.bridge_home, stack)
        for key_id, _curve in KEYS.values():
            procs.pawl_cli(bins, ["keys", "import", "--home", str(stack.bridge_home),
                                  "--device", str(stack.device), "--backend", "yubihsm",
                                  "--key-id", str(key_id), "--allow", "attestation"])
        before = objects(sim)
        code, report, err = selftest(bins, stack.bridge_home, stack)
        assert code == 0, (report, err)
        names = [c["check"] for c in report["checks"]]
        assert names[0] == "session" and len(names) == 1 + len(KEYS) + 3, names
        assert all(c["ok"] for c in report["checks"]), report
        assert objects(sim) == before
    except Exception:
        print(stack.log_tails())
        raise
    finally:
        stack.stop()
        sim.stop()
