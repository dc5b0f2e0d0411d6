"""The `[server]` switches of pawl.toml, each on its own stack (a separate `pawl-sim board --pty`
and `pawl serve`): the Octez endpoints that are off by default, and the client IP allow-list.
Proofs are checked with py_ecc, never with pawl."""

import json

import pytest

import procs
import tezos
from conftest import KEY_SPECS, Key, Stack, _stacks, provision

TZ4 = next(s for s in KEY_SPECS if s.name == "tz4")
TZ1 = next(s for s in KEY_SPECS if s.name == "tz1")


def stack_with_config(bins, tmp_root, name: str, toml: str, spec) -> tuple[Stack, Key]:
    stack = Stack(bins, tmp_root / name, name)
    _stacks.append(stack)
    stack.bridge_home.mkdir(parents=True, exist_ok=True)
    (stack.bridge_home / "pawl.toml").write_text(toml)
    pkh = provision(bins, stack.bridge_home, stack.device, spec)
    stack.start_bridge()
    return stack, Key(spec.name, spec.curve, pkh, tezos.public_key_of(spec.secret), spec.secret)


@pytest.fixture(scope="module")
def open_stack(bins, tmp_root):
    stack, key = stack_with_config(bins, tmp_root, "switches-on", """
[server]
allow_to_prove_possession = true
allow_list_known_keys = true
allowed_ips = ["127.0.0.1"]
""", TZ4)
    yield stack, key
    stack.stop()


@pytest.fixture(scope="module")
def closed_stack(bins, tmp_root):
    # 192.0.2.0/24 is TEST-NET-1: no test client ever has that address.
    stack, key = stack_with_config(bins, tmp_root, "switches-ip", """
[server]
allowed_ips = ["192.0.2.1"]
""", TZ1)
    yield stack, key
    stack.stop()


def test_bls_proof_of_possession_verifies_with_py_ecc(open_stack):
    stack, tz4 = open_stack
    status, body = stack.bridge.request("GET", f"/bls_prove_possession/{tz4.pkh}")
    assert status == 200, body
    proof = json.loads(body)["bls_prove_possession"]
    assert proof.startswith("BLsig"), proof
    assert tezos.verify_pop(tz4.pk, proof), f"{proof} is not a proof of possession of {tz4.pk}"
    # The check can fail: one flipped bit and py_ecc refuses it.
    raw = bytearray(tezos.base58_decode(proof.encode()))
    raw[-1] ^= 1
    assert not tezos.verify_pop(tz4.pk, tezos.base58_encode(bytes(raw), b"BLsig").decode())


def test_known_keys_lists_the_board_keys(open_stack):
    stack, tz4 = open_stack
    status, body = stack.bridge.request("GET", "/known_keys")
    assert status == 200, body
    assert json.loads(body)["known_keys"] == [tz4.pkh]


def test_allowed_client_signs(open_stack):
    stack, tz4 = open_stack
    payload = tezos.attestation("bls", tezos.TEST_CHAIN, 10, 0)
    status, body = stack.bridge.sign(tz4.pkh, payload)
    assert status == 200, body
    tezos.verify(tz4.pk, body["signature"], payload)


def test_client_not_in_allowed_ips_is_refused_before_the_board(closed_stack):
    stack, tz1 = closed_stack
    payload = tezos.attestation("ed", tezos.TEST_CHAIN, 10, 0)
    for method, path, body in [("GET", f"/keys/{tz1.pkh}", None),
                               ("POST", f"/keys/{tz1.pkh}", json.dumps(payload.hex()).encode()),
                               ("GET", "/authorized_keys", None)]:
        status, answer = stack.bridge.request(method, path, body)
        assert status == 403, (method, path, answer)
        assert b"not allowed" in answer, answer
    # The board never saw the sign request: no mark exists for this key.
    marks = procs.pawl_cli(stack.bins, ["watermark", "show", "--home", str(stack.bridge_home),
                                        "--json"])
    assert tz1.pkh not in marks, marks
