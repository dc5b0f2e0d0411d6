"""A key's life after it is made: policy changes and store recovery, through the real CLI, a
`pawl serve` and a `pawl-sim board --pty` (issue: key lifecycle, item 3). Every refusal is
checked to leave the board as it was."""

import json
import shutil

import pytest

import procs
import tezos
from conftest import KeySpec, make_stack
from helpers import forge, sign_verified, transfer

CHAIN = tezos.TEST_CHAIN
CHAIN_B58 = tezos.chain_b58(CHAIN)
SECRET = "edsk4FTF78Qf1m2rykGpHqostAiq5gYW4YZEoGUSWBTJr2njsDHSnd"  # docs/protocol.md §8.4


def cli_json(stack, *args, stdin_text=None) -> dict:
    out = procs.pawl_cli(stack.bins, [*args, "--home", str(stack.bridge_home), "--device",
                                      str(stack.device), "--json"], stdin_text=stdin_text)
    return json.loads(out)


def cli_fails(stack, *args) -> str:
    with pytest.raises(RuntimeError) as failed:
        procs.pawl_cli(stack.bins, [*args, "--home", str(stack.bridge_home), "--device",
                                    str(stack.device)])
    return str(failed.value)


def board_state(stack) -> tuple[list, list]:
    return (cli_json(stack, "keys", "list")["keys"],
            cli_json(stack, "watermark", "show")["watermarks"])


@pytest.fixture(scope="module")
def life(bins, tmp_root):
    spec = KeySpec("tz1", "ed25519", SECRET, "block,preattestation,attestation", chain=CHAIN)
    stack, keys = make_stack(bins, tmp_root, "lifecycle", [spec])
    yield stack, keys["tz1"]
    stack.stop()


def test_policy_change_takes_effect_and_keeps_marks(life):
    stack, key = life
    bridge = stack.bridge
    sign_verified(bridge, key, [tezos.attestation("ed", CHAIN, 500, 0)])
    payment = forge([transfer(key.pkh)])
    status, body = bridge.sign(key.pkh, payment)
    assert status == 403, f"transfer before the policy allows it: {status} {body!r}"
    _, marks_before = board_state(stack)

    # Through the running serve's control socket, as a baker would.
    changed = cli_json(stack, "keys", "policy", key.pkh, "--allow",
                       "block,preattestation,attestation", "--allow-ops", "transaction",
                       "--chain", CHAIN_B58)
    assert changed["pkh"] == key.pkh and changed["policy"]["ops"] == ["transaction"], changed
    assert "generic" in changed["policy"]["kinds"], changed
    sign_verified(bridge, key, [payment])
    keys_now, marks_now = board_state(stack)
    assert marks_now == marks_before, "a policy change moved the marks"
    assert keys_now[0]["policy"] == changed["policy"], keys_now

    # The attestation mark still holds: the same level with other bytes is a double sign.
    status, body = bridge.sign(key.pkh, tezos.attestation("ed", CHAIN, 500, 0, slot=9))
    assert status == 409, f"attestation at the marked level after a policy change: {status}"

    # And back: the transfer is refused again.
    cli_json(stack, "keys", "policy", key.pkh, "--chain", CHAIN_B58)
    status, body = bridge.sign(key.pkh, forge([transfer(key.pkh, counter=9)]))
    assert status == 403, f"transfer after the policy was narrowed again: {status} {body!r}"


def test_policy_refusals_name_the_problem_and_change_nothing(life):
    stack, key = life
    before = board_state(stack)
    unknown = tezos.random_tz1()
    err = cli_fails(stack, "keys", "policy", unknown, "--chain", CHAIN_B58)
    assert "unknown key" in err and unknown in err, err
    err = cli_fails(stack, "keys", "policy", "tz1notakey", "--chain", CHAIN_B58)
    assert "tz1notakey" in err and "not a key hash" in err, err
    err = cli_fails(stack, "keys", "policy", key.pkh, "--allow", "blocks")
    assert "--allow" in err and "blocks" in err, err
    err = cli_fails(stack, "keys", "policy", key.pkh, "--chain", "NetNotAChain")
    assert "--chain" in err, err
    assert board_state(stack) == before


def test_operational_board_refuses_policy_and_reprovision(life):
    stack, key = life
    stack.sim.stop()
    stack.sim = procs.Sim(stack.bins, stack.board_home, stack.logs, stack.device,
                          operational=True, name="lifecycle-sim-operational")
    try:
        # After a restart a mark reads as its reserved ceiling: compare from here.
        before = board_state(stack)
        err = cli_fails(stack, "keys", "policy", key.pkh, "--any-chain")
        assert "provisioning mode" in err, err
        err = cli_fails(stack, "device", "reprovision", "--erase")
        assert "provisioning mode" in err, err
        assert board_state(stack) == before
    finally:
        stack.sim.stop()
        stack.restart_sim()


def test_rolled_back_store_is_refused_until_reprovisioned(life):
    """Restore an older flash image behind the board's back (what a host with the board's
    flash could do): the board refuses to sign; `pawl device reprovision` adopts the image with
    keys intact; the operator then imports the current marks."""
    stack, key = life
    bridge = stack.bridge
    sign_verified(bridge, key, [tezos.attestation("ed", CHAIN, 1000, 0)])
    stack.sim.stop()
    flash = stack.board_home / "flash.bin"
    old = stack.root / "flash-old.bin"
    shutil.copy(flash, old)
    stack.restart_sim()
    # Far enough above the stored ceiling that the board must write a record.
    sign_verified(bridge, key, [tezos.attestation("ed", CHAIN, 1100, 0)])
    # The operator's copy of the current marks (any signer's records would do).
    saved = stack.root / "marks-1100"
    cli_json(stack, "watermark", "export", "--format", "signatory", str(saved))
    stack.sim.stop()
    shutil.copy(old, flash)
    stack.restart_sim()

    info = cli_json(stack, "device", "info")
    assert "older image" in info["store"], info
    status, body = bridge.sign(key.pkh, tezos.attestation("ed", CHAIN, 1200, 0))
    assert status == 503, f"signing on a rolled-back store: {status} {body!r}"

    done = cli_json(stack, "device", "reprovision")
    assert done == {"reprovisioned": True, "erased": False, "keys": 1}, done
    assert cli_json(stack, "device", "info")["store"] == "ok"
    keys, _ = board_state(stack)
    assert [k["pkh"] for k in keys] == [key.pkh]
    # The image's marks are stale (below 1100): the operator raises them from the saved copy;
    # then the board refuses at 1100 and signs above.
    procs.pawl_cli(stack.bins, ["watermark", "import", "--from", "signatory", str(saved),
                                "--home", str(stack.bridge_home), "--device", str(stack.device)])
    status, body = bridge.sign(key.pkh, tezos.attestation("ed", CHAIN, 1100, 0, slot=3))
    assert status == 409, f"level 1100 after importing the saved marks: {status} {body!r}"
    sign_verified(bridge, key, [tezos.attestation("ed", CHAIN, 1200, 0)])


def test_a_removed_key_keeps_its_marks_and_can_come_back(life):
    stack, key = life
    bridge = stack.bridge
    sign_verified(bridge, key, [tezos.attestation("ed", CHAIN, 3000, 0)])
    _, marks_before = board_state(stack)
    done = cli_json(stack, "keys", "remove", key.pkh)
    assert done["removed"] == key.pkh and done["marks_kept"] >= 1, done
    keys, marks = board_state(stack)
    assert keys == [] and marks == marks_before
    status, _ = bridge.public_key(key.pkh)
    assert status == 404, "serve still lists a removed key"
    status, _ = bridge.sign(key.pkh, tezos.attestation("ed", CHAIN, 3001, 0))
    assert status == 404
    # Back from its secret: its old mark still holds.
    procs.pawl_cli(stack.bins, ["keys", "import", "--chain", CHAIN_B58, "--home",
                                str(stack.bridge_home), "--device", str(stack.device)],
                   stdin_text=SECRET + "\n")
    status, _ = bridge.sign(key.pkh, tezos.attestation("ed", CHAIN, 3000, 0, slot=4))
    assert status == 409, "a removed and re-imported key signed below its old mark"
    sign_verified(bridge, key, [tezos.attestation("ed", CHAIN, 3001, 0)])
    err = cli_fails(stack, "keys", "remove", tezos.random_tz1())
    assert "unknown key" in err, err


def test_erase_leaves_an_empty_board(life):
    stack, key = life
    done = cli_json(stack, "device", "reprovision", "--erase")
    assert done == {"reprovisioned": True, "erased": True, "keys": 0}, done
    keys, marks = board_state(stack)
    assert keys == [] and marks == []
    status, _ = stack.bridge.sign(key.pkh, tezos.attestation("ed", CHAIN, 5000, 0))
    assert status == 404
