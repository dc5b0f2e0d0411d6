"""Recoverable board keys (issue: key lifecycle, item 4): `pawl keys generate --backup-to age1…`
on one board, the real `age` binary opens the backup with an identity `age-keygen` made, and
`pawl keys import` restores the key on another board, where it signs (verified by Taquito and
pytezos / py_ecc). Refusals leave no key and no file behind."""

import json
import os
import stat
import subprocess

import pytest

import procs
import tezos
from conftest import CURVE_TAG, Key, make_stack
from helpers import sign_verified

CHAIN = tezos.TEST_CHAIN
CHAIN_B58 = tezos.chain_b58(CHAIN)


def age_identity(path) -> str:
    subprocess.run(["age-keygen", "-o", str(path)], check=True, capture_output=True)
    for line in path.read_text().splitlines():
        if line.startswith("# public key: "):
            return line.removeprefix("# public key: ")
    raise AssertionError("age-keygen printed no public key")


def run_cli(stack, args, stdin_text=None):
    return subprocess.run([stack.bins.pawl, *args, "--home", str(stack.bridge_home),
                           "--device", str(stack.device)],
                          input=(stdin_text or "").encode(), capture_output=True,
                          timeout=procs.CLI_TIMEOUT)


def keys_of(stack) -> list[str]:
    r = run_cli(stack, ["keys", "list", "--json"])
    assert r.returncode == 0, r.stderr
    return [k["pkh"] for k in json.loads(r.stdout)["keys"]]


@pytest.fixture(scope="module")
def boards(bins, tmp_root):
    old, _ = make_stack(bins, tmp_root, "backup-old", [])
    new, _ = make_stack(bins, tmp_root, "backup-new", [])
    yield old, new
    old.stop()
    new.stop()


@pytest.mark.parametrize("curve", ["ed25519", "secp256k1", "p256", "bls"])
def test_backup_restores_the_key_on_another_board(boards, tmp_root, curve):
    old, new = boards
    identity = tmp_root / f"identity-{curve}.txt"
    recipient = age_identity(identity)
    r = run_cli(old, ["keys", "generate", "--curve", curve, "--chain", CHAIN_B58,
                      "--backup-to", recipient, "--json"])
    assert r.returncode == 0, r.stderr.decode()
    made = json.loads(r.stdout)
    pkh, path = made["pkh"], made["backup"]
    assert path == str(old.bridge_home / "backups" / f"{pkh}.age"), made
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600

    opened = subprocess.run(["age", "-d", "-i", str(identity), path], capture_output=True)
    assert opened.returncode == 0, opened.stderr
    secret = opened.stdout.decode()
    assert secret.endswith("\n") and secret[:4] in ("edsk", "spsk", "p2sk", "BLsk"), "not a key"
    # The secret shows up nowhere the host keeps: not in pawl's output, not in its home.
    assert secret.strip() not in (r.stdout + r.stderr).decode()
    for root, _, files in os.walk(old.bridge_home):
        for f in files:
            p = os.path.join(root, f)
            if os.path.isfile(p):
                assert secret.strip().encode() not in open(p, "rb").read(), p

    # Restore: the decrypted file piped into `pawl keys import` on the other board.
    r = run_cli(new, ["keys", "import", "--chain", CHAIN_B58, "--json"], stdin_text=secret)
    assert r.returncode == 0, r.stderr.decode()
    restored = json.loads(r.stdout)
    assert restored["pkh"] == pkh and restored["public_key"] == made["public_key"]
    key = Key("restored", CURVE_TAG[curve], pkh, made["public_key"], None)
    sign_verified(new.bridge, key, [tezos.attestation(key.curve, CHAIN, 10, 0)],
                  version=2 if curve == "bls" else None)


def test_bad_recipients_make_no_key_and_no_file(boards, tmp_root):
    old, _ = boards
    before = keys_of(old)
    backups = old.bridge_home / "backups"
    files_before = sorted(os.listdir(backups)) if backups.exists() else []
    identity = tmp_root / "identity-bad.txt"
    recipient = age_identity(identity)
    secret_id = [l for l in identity.read_text().splitlines()
                 if l.startswith("AGE-SECRET-KEY-")][0]
    cases = [
        (recipient[:-1] + ("q" if recipient[-1] != "q" else "p"), "not an age recipient"),
        (secret_id, "not the identity"),
    ]
    for bad, says in cases:
        r = run_cli(old, ["keys", "generate", "--curve", "ed25519", "--chain", CHAIN_B58,
                          "--backup-to", bad])
        err = r.stderr.decode()
        assert r.returncode != 0 and says in err, err
        assert secret_id not in err, "the identity was echoed"
    # An existing --backup-out is never overwritten, and nothing is generated.
    taken = tmp_root / "taken.age"
    taken.write_bytes(b"the operator's file")
    r = run_cli(old, ["keys", "generate", "--curve", "ed25519", "--chain", CHAIN_B58,
                      "--backup-to", recipient, "--backup-out", str(taken)])
    assert r.returncode != 0 and "--backup-out" in r.stderr.decode(), r.stderr
    assert taken.read_bytes() == b"the operator's file"
    assert keys_of(old) == before
    files_now = sorted(os.listdir(backups)) if backups.exists() else []
    assert files_now == files_before, files_now


def test_an_operational_board_makes_no_key_and_leaves_no_file(boards, tmp_root):
    old, _ = boards
    recipient = age_identity(tmp_root / "identity-op.txt")
    old.sim.stop()
    old.sim = procs.Sim(old.bins, old.board_home, old.logs, old.device, operational=True,
                        name="backup-old-operational")
    try:
        before = keys_of(old)
        out = tmp_root / "operational.age"
        r = run_cli(old, ["keys", "generate", "--curve", "ed25519", "--chain", CHAIN_B58,
                          "--backup-to", recipient, "--backup-out", str(out)])
        assert r.returncode != 0 and "provisioning mode" in r.stderr.decode(), r.stderr
        assert not out.exists()
        assert keys_of(old) == before
    finally:
        old.sim.stop()
        old.restart_sim()
