"""The YubiHSM2 tier on the real firmware: `pawl-sim yubihsm` (MockHsm behind the connector API)
+ the QEMU board image (`pawl-sim qemu`) + `pawl serve`. The firmware runs the SCP03 session
itself; the bridge only relays. Every signature is verified with pytezos."""

import pytest

import procs
import tezos
from test_qemu import QemuStack, qemu_elf  # noqa: F401 (fixture)
from test_yubihsm import CHAIN, CURVE, KEYS, YubiSim, signed, yubihsm_setup


@pytest.fixture(scope="module")
def qemu_hsm(bins, qemu_elf, tmp_root):  # noqa: F811
    root = tmp_root / "yubihsm-qemu"
    stack = QemuStack(bins, qemu_elf, root, "hsm-qemu")
    sim = YubiSim(bins, stack.logs)
    try:
        (stack.bridge_home / "pawl.toml").write_text(
            f'[yubihsm]\nconnector = "{sim.url}"\nmessage_timeout_ms = 2000\n')
        stack.boot()
        yubihsm_setup(bins, stack.bridge_home, stack)  # the stack's device is the board's
        keys = {}
        for tz, (key_id, _curve) in KEYS.items():
            # The firmware reads the public key from the HSM through its own session.
            out = procs.pawl_cli(bins, ["keys", "import", "--home", str(stack.bridge_home),
                                        "--device", str(stack.device), "--backend", "yubihsm",
                                        "--key-id", str(key_id),
                                        "--allow", "block,preattestation,attestation"])
            pkh, pk = out.split()[:2]
            assert pk == sim.public_keys[key_id], out
            keys[tz] = (pkh, pk)
        # A tz2 key generated inside the HSM by the firmware's request.
        out = procs.pawl_cli(bins, ["keys", "generate", "--home", str(stack.bridge_home),
                                    "--device", str(stack.device), "--backend", "yubihsm",
                                    "--curve", "secp256k1", "--key-id", "60"])
        pkh, pk = out.split()[:2]
        assert sim.admin("/admin/key/60")["public_key"] == pk, out
        keys["tz2-generated"] = (pkh, pk)
        stack.start_bridge()
    except Exception:
        print(stack.log_tails())
        stack.stop()
        sim.stop()
        raise
    yield sim, stack, keys
    stack.stop()
    sim.stop()


def test_firmware_signs_through_its_own_hsm_session(qemu_hsm):
    sim, stack, keys = qemu_hsm
    for tz, (pkh, pk) in keys.items():
        assert pkh.startswith(tz[:3]), pkh
        curve = CURVE[tz[:3]]
        for level in (20, 21):
            signed(stack.bridge, pkh, pk, tezos.preattestation(curve, CHAIN, level, 0))
            signed(stack.bridge, pkh, pk, tezos.attestation(curve, CHAIN, level, 0))
            signed(stack.bridge, pkh, pk, tezos.block(CHAIN, level, 1))
    stats = sim.admin("/admin/stats")
    assert stats["create_session"] >= 1 and stats["session_message"] >= 18, stats
    assert stats["refused"] == 0, stats


def test_firmware_refuses_before_any_hsm_traffic(qemu_hsm):
    sim, stack, keys = qemu_hsm
    for tz, (pkh, pk) in keys.items():
        curve = CURVE[tz[:3]]
        payload = tezos.attestation(curve, CHAIN, 50, 0)
        first = signed(stack.bridge, pkh, pk, payload)
        before = sim.messages()
        assert signed(stack.bridge, pkh, pk, payload) == first
        for refused in (tezos.attestation(curve, CHAIN, 50, 0, slot=5),
                        tezos.attestation(curve, CHAIN, 49, 0)):
            status, body = stack.bridge.sign(pkh, refused)
            assert status == 409, (tz, status, body)
        assert sim.messages() == before, tz
