"""The PKCS#11 tier on the real firmware: a SoftHSM2 token + the QEMU board image
(`pawl-sim qemu`) + `pawl serve`. The firmware approves digests, normalises tz2 to low-S and
verifies what the token signed (tz1 with plain Ed25519 over the digest) before releasing.
Every signature is verified with pytezos."""

import os

import pytest

import procs
import tezos
from test_pkcs11 import (CHAIN, CURVE, KEYS, PIN, PIN_ENV, SoftHsm, import_key, signed,
                         token_calls, write_config)
from test_qemu import QemuStack, qemu_elf  # noqa: F401 (fixture)


@pytest.fixture(scope="module")
def qemu_pkcs11(bins, qemu_elf, tmp_root):  # noqa: F811
    root = tmp_root / "pkcs11-qemu"
    stack = QemuStack(bins, qemu_elf, root, "pkcs11-qemu")
    token = SoftHsm(root / "token")
    for label in ("baker1", "baker2", "baker3"):
        token.keypair(label, KEYS[label])
    old = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(token.conf)
    pin_file = root / "pin"
    pin_file.write_text(PIN + "\n")
    pin_file.chmod(0o600)
    write_config(stack.bridge_home, f'pin_file = "{pin_file}"')
    try:
        stack.boot()
        keys = {label: import_key(bins, stack.bridge_home, stack.device, label)
                for label in ("baker1", "baker2", "baker3")}
        stack.start_bridge()
    except Exception:
        print(stack.log_tails())
        stack.stop()
        raise
    yield stack, keys
    stack.stop()
    if old is None:
        os.environ.pop("SOFTHSM2_CONF", None)
    else:
        os.environ["SOFTHSM2_CONF"] = old
    assert PIN_ENV not in os.environ


def test_firmware_verifies_and_releases_token_signatures(qemu_pkcs11):
    stack, keys = qemu_pkcs11
    before = token_calls(stack.bridge)
    for label, (pkh, pk) in keys.items():
        curve = CURVE[pkh[:3]]
        for level in (20, 21, 22):
            signed(stack.bridge, pkh, pk, tezos.preattestation(curve, CHAIN, level, 0))
            signed(stack.bridge, pkh, pk, tezos.attestation(curve, CHAIN, level, 0))
            signed(stack.bridge, pkh, pk, tezos.block(CHAIN, level, 1))
    assert token_calls(stack.bridge) - before == 27


def test_firmware_refuses_before_any_token_call(qemu_pkcs11):
    stack, keys = qemu_pkcs11
    for label, (pkh, pk) in keys.items():
        curve = CURVE[pkh[:3]]
        payload = tezos.attestation(curve, CHAIN, 50, 0)
        first = signed(stack.bridge, pkh, pk, payload)
        before = token_calls(stack.bridge)
        assert signed(stack.bridge, pkh, pk, payload) == first
        for refused in (tezos.attestation(curve, CHAIN, 50, 0, slot=5),
                        tezos.attestation(curve, CHAIN, 49, 0)):
            status, body = stack.bridge.sign(pkh, refused)
            assert status == 409, (label, status, body)
        assert token_calls(stack.bridge) == before, label
