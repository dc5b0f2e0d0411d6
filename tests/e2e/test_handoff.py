"""Moving a key from one board to another without overlap (issue: key lifecycle, item 2), as
docs/lifecycle.md tells a baker to: board A is a `pawl-sim board --pty`, board B the QEMU
firmware, each behind its own `pawl serve`. A retires the key above L, B holds it on standby
and is activated from L + 1 with A's exported marks. Then a hostile host sends both boards
conflicting requests at every level around L: no level is signed by both."""

import json
import subprocess

import pytest

import procs
import tezos
from conftest import Key, make_stack
from helpers import sign_verified
from test_qemu import QemuStack, qemu_elf  # noqa: F401 (the fixture)

CHAIN = tezos.TEST_CHAIN
CHAIN_B58 = tezos.chain_b58(CHAIN)
SECRET = "edsk4FTF78Qf1m2rykGpHqostAiq5gYW4YZEoGUSWBTJr2njsDHSnd"  # docs/protocol.md §8.4
L = 5000


def cli(bins, home, device, *args, stdin_text=None, ok=True):
    r = subprocess.run([bins.pawl, *args, "--home", str(home), "--device", str(device)],
                       input=(stdin_text or "").encode(), capture_output=True,
                       timeout=procs.CLI_TIMEOUT)
    if ok:
        assert r.returncode == 0, f"pawl {' '.join(args)}: {r.stderr.decode()[-2000:]}"
    return r


def payloads(level: int, round_: int, filler: int) -> list[bytes]:
    # Blocks carry random hashes: every call is different bytes.
    return [tezos.block(CHAIN, level, round_),
            tezos.preattestation("ed", CHAIN, level, round_, slot=filler),
            tezos.attestation("ed", CHAIN, level, round_, slot=filler)]


@pytest.fixture(scope="module")
def boards(bins, qemu_elf, tmp_root):  # noqa: F811
    a, _ = make_stack(bins, tmp_root, "handoff-a", [])
    b = QemuStack(bins, qemu_elf, tmp_root / "handoff-b", "handoff-b")
    try:
        b.boot()
        yield a, b
    finally:
        print(a.log_tails())
        print(b.log_tails())
        a.stop()
        b.stop()


def test_a_key_moves_between_boards_without_overlap(bins, boards, tmp_root):
    a, b = boards
    pk = tezos.public_key_of(SECRET)
    key = Key("moved", "ed", tezos.pkh_of(pk), pk, SECRET)

    # Board A: the key, active; the baker has signed up to L - 3.
    r = cli(bins, a.bridge_home, a.device, "keys", "import", "--chain", CHAIN_B58, "--json",
            stdin_text=SECRET + "\n")
    assert json.loads(r.stdout)["pkh"] == key.pkh
    sign_verified(a.bridge, key, [tezos.attestation("ed", CHAIN, L - 3, 0)])

    # Board B: the same key on standby, from the first moment.
    r = cli(bins, b.bridge_home, b.device, "keys", "import", "--chain", CHAIN_B58, "--standby",
            "--json", stdin_text=SECRET + "\n")
    assert json.loads(r.stdout)["duty"]["standby"] is True
    b.start_bridge()
    status, body = _sign_when_up(b.bridge, key.pkh, tezos.attestation("ed", CHAIN, L + 100, 0))
    assert status == 403 and "standby" in _msg(body), f"standby key on B: {status} {body!r}"

    # The move: retire A above L; export A's marks; activate B from L + 1 with them.
    r = cli(bins, a.bridge_home, a.device, "keys", "retire", key.pkh, "--above", str(L))
    assert f"--from-level {L + 1}" in r.stdout.decode(), r.stdout
    marks = tmp_root / "handoff-marks"
    cli(bins, a.bridge_home, a.device, "watermark", "export", "--format", "signatory",
        str(marks))
    r = cli(bins, b.bridge_home, b.device, "keys", "activate", key.pkh, "--from-level",
            str(L + 1), "--marks", str(marks), "--json")
    activated = json.loads(r.stdout.decode().strip().splitlines()[-1])
    assert activated["duty"] == {"role": "consensus", "standby": False,
                                 "from_level": L + 1, "until_level": None}, activated

    # Both boards go operational (the operator's switch), then the hostile host.
    a.sim.stop()
    a.sim = procs.Sim(bins, a.board_home, a.logs, a.device, operational=True,
                      name="handoff-a-operational")
    b.board.stop()
    b.boot(operational=True)

    signed: dict[str, set[int]] = {"A": set(), "B": set()}
    for round_ in range(2):
        for level in range(L - 3, L + 4):
            for side, stack, filler in (("A", a, 1), ("B", b, 2)):
                for p in payloads(level, round_, filler):
                    status, body = _sign_when_up(stack.bridge, key.pkh, p)
                    if status == 200:
                        tezos.verify(key.pk, body["signature"], p)
                        signed[side].add(level)
                    else:
                        assert status in (403, 409), f"{side} level {level}: {status} {body!r}"
                        if status == 403:
                            assert "another board signs it" in _msg(body), body
    assert signed["A"] and signed["B"], signed
    assert max(signed["A"]) <= L and min(signed["B"]) > L, signed
    assert not signed["A"] & signed["B"], f"levels signed by both boards: {signed}"

    # Nothing on the link can undo it in operational mode.
    r = cli(bins, a.bridge_home, a.device, "keys", "activate", key.pkh, "--from-level", "1",
            ok=False)
    assert r.returncode != 0 and "provisioning mode" in r.stderr.decode(), r.stderr


def _msg(body) -> str:
    return " ".join(e.get("msg", "") for e in body) if isinstance(body, list) else str(body)


def _sign_when_up(bridge, pkh, payload, tries=120):
    """The bridge reconnects to a rebooted board within a few seconds: retry 503s."""
    import time
    for _ in range(tries):
        try:
            status, body = bridge.sign(pkh, payload, timeout=10)
        except OSError:
            status, body = None, None
        if status not in (None, 502, 503, 504):
            return status, body
        time.sleep(0.25)
    return status, body
