"""A tz4 baker with a DAL companion key (issue: key lifecycle, item 6): one board holds the tz4
consensus key and a tz4 companion key generated with `--role companion`; the baker sends both
the same attestation bytes, both signatures verify (py_ecc, Taquito), the companion refuses
blocks and preattestations, and each key keeps its own mark."""

import json
import subprocess

import pytest

import procs
import tezos
from conftest import Key, KeySpec, make_stack
from helpers import sign_verified

CHAIN = tezos.TEST_CHAIN
CHAIN_B58 = tezos.chain_b58(CHAIN)
TZ4 = "BLsk1hKAHyGqY9qRbgoSVnjiSmDWpKGjFF3WNQ7BaiaMUA6RMA6Pfq"  # docs/protocol.md §8.4


def cli(stack, *args, ok=True):
    r = subprocess.run([stack.bins.pawl, *args, "--home", str(stack.bridge_home), "--device",
                        str(stack.device)], capture_output=True, timeout=procs.CLI_TIMEOUT)
    if ok:
        assert r.returncode == 0, f"pawl {' '.join(args)}: {r.stderr.decode()[-2000:]}"
    return r


def msg(body) -> str:
    return " ".join(e.get("msg", "") for e in body) if isinstance(body, list) else str(body)


@pytest.fixture(scope="module")
def baker(bins, tmp_root):
    spec = KeySpec("tz4", "bls", TZ4, "block,preattestation,attestation", chain=CHAIN)
    stack, keys = make_stack(bins, tmp_root, "companion", [spec])
    # The companion key is made on the board while serve runs (through its control socket).
    made = json.loads(cli(stack, "keys", "generate", "--curve", "bls", "--role", "companion",
                          "--chain", CHAIN_B58, "--json").stdout)
    assert made["duty"]["role"] == "companion", made
    companion = Key("companion", "bls", made["pkh"], made["public_key"], None)
    yield stack, keys["tz4"], companion
    stack.stop()


def test_both_keys_sign_the_same_attestations(baker):
    stack, consensus, companion = baker
    same = [tezos.attestation("bls", CHAIN, level, 0) for level in (300, 301, 302)]
    for p in same:
        sigs = [sign_verified(stack.bridge, k, [p], version=2)[0] for k in (consensus, companion)]
        assert sigs[0] != sigs[1], "two keys, one signature"


def test_the_companion_refuses_blocks_and_preattestations(baker):
    stack, consensus, companion = baker
    before = cli(stack, "watermark", "show", "--json").stdout
    for p in (tezos.block(CHAIN, 310, 0), tezos.preattestation("bls", CHAIN, 310, 0)):
        status, body = stack.bridge.sign(companion.pkh, p, version=2)
        assert status == 403 and "companion key signs attestations only" in msg(body), body
    assert cli(stack, "watermark", "show", "--json").stdout == before
    # The consensus key signs them.
    sign_verified(stack.bridge, consensus, [tezos.block(CHAIN, 310, 0),
                                            tezos.preattestation("bls", CHAIN, 310, 0)],
                  version=2)


def test_each_key_keeps_its_own_mark(baker):
    stack, consensus, companion = baker
    sign_verified(stack.bridge, consensus, [tezos.attestation("bls", CHAIN, 320, 0)], version=2)
    # The companion has not signed 320 yet: its own mark lets it.
    sign_verified(stack.bridge, companion, [tezos.attestation("bls", CHAIN, 320, 0)], version=2)
    status, _ = stack.bridge.sign(companion.pkh, tezos.attestation("bls", CHAIN, 319, 0),
                                  version=2)
    assert status == 409
    marks = json.loads(cli(stack, "watermark", "show", "--json").stdout)["watermarks"]
    att = {m["pkh"]: m["level"] for m in marks if m["kind"] == "attestation"}
    assert att[consensus.pkh] == 320 and att[companion.pkh] == 320, marks


def test_a_companion_must_be_tz4(baker):
    stack, _, _ = baker
    before = cli(stack, "keys", "list", "--json").stdout
    r = cli(stack, "keys", "generate", "--curve", "ed25519", "--role", "companion", ok=False)
    assert r.returncode != 0 and "tz4" in r.stderr.decode(), r.stderr
    r = subprocess.run([stack.bins.pawl, "keys", "import", "--role", "companion", "--chain",
                        CHAIN_B58, "--home", str(stack.bridge_home), "--device",
                        str(stack.device)],
                       input=b"edsk4FTF78Qf1m2rykGpHqostAiq5gYW4YZEoGUSWBTJr2njsDHSnd\n",
                       capture_output=True, timeout=procs.CLI_TIMEOUT)
    assert r.returncode != 0 and "companion key must be tz4" in r.stderr.decode(), r.stderr
    assert cli(stack, "keys", "list", "--json").stdout == before
