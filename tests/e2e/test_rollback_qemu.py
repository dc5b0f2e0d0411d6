"""Whole-flash rollback on the QEMU board (issue 18): the board's state directory is its whole
flash (store and flash-side rollback counter together); its "OTP" epoch is the file
`<state>.otp` beside it (core/src/store/epoch.rs, firmware/qemu/src/otp.rs).

Sign, power off, copy the state directory, power on and sign further, power off, write the copy
back: the board boots refusing, its store health names the restored image, signing is refused.
Re-provisioning (provisioning mode) and importing the marks saved before bring it back."""

import json
import shutil
import time
from pathlib import Path

import procs
import tezos
from conftest import CURVE_TAG, KEY_SPECS, Key, provision
from helpers import sign_verified
from test_qemu import QemuStack, qemu_elf, wait_signs  # noqa: F401 (qemu_elf is a fixture)

CHAIN = tezos.TEST_CHAIN


def cli_json(stack, *args) -> dict:
    out = procs.pawl_cli(stack.bins, [*args, "--home", str(stack.bridge_home), "--device",
                                      str(stack.device), "--json"])
    return json.loads(out)


def info_when_up(stack, timeout: float = 30.0) -> dict:
    """`pawl device info --json` once the (re)started board answers."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return cli_json(stack, "device", "info")
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.25)


def otp_epoch(stack) -> int:
    otp = Path(str(stack.board_home) + ".otp")
    assert otp.is_file(), "pawl-sim qemu keeps the OTP file beside the state directory"
    return int.from_bytes(otp.read_bytes(), "little")


def test_restored_state_directory_is_refused_until_reprovisioned(bins, qemu_elf, tmp_root):
    stack = QemuStack(bins, qemu_elf, tmp_root / "rollback-qemu", "rollback")
    spec = KEY_SPECS[0]  # tz1, imported
    try:
        stack.boot()
        pkh = provision(bins, stack.bridge_home, stack.device, spec)
        key = Key(spec.name, CURVE_TAG[spec.curve], pkh, tezos.public_key_of(spec.secret),
                  spec.secret)
        assert otp_epoch(stack) == 1, "provisioning's first record burned epoch 1"
        stack.board.stop()
        stack.boot(operational=True)
        stack.start_bridge()
        status, body = wait_signs(stack.bridge, key, tezos.attestation("ed", CHAIN, 1000, 0))
        assert status == 200, (status, body)
        assert otp_epoch(stack) == 2, "this boot's first record burned epoch 2"
        anchor = info_when_up(stack)["rollback_anchor"]
        assert anchor["state"] == "burned" and anchor["otp_epoch"] == 2, anchor
        assert anchor["epochs_left"] == 6144 - 2, anchor

        # The copy, with the board off (on a Pico 2: BOOTSEL and `picotool save --all`).
        stack.board.kill9()
        copy = tmp_root / "rollback-qemu" / "board-copy"
        shutil.copytree(stack.board_home, copy)

        stack.boot(operational=True)
        status, body = wait_signs(stack.bridge, key, tezos.attestation("ed", CHAIN, 1100, 0))
        assert status == 200, (status, body)
        assert otp_epoch(stack) == 3
        saved = tmp_root / "rollback-qemu" / "marks-1100"
        cli_json(stack, "watermark", "export", "--format", "signatory", str(saved))

        # Written back whole: store and rollback-counter together.
        stack.board.kill9()
        shutil.rmtree(stack.board_home)
        shutil.copytree(copy, stack.board_home)
        stack.boot(operational=True)
        info = info_when_up(stack)
        assert "whole-flash image" in info["store"], info
        assert "re-provision" in info["store"], info
        anchor = info["rollback_anchor"]
        assert (anchor["flash_epoch"], anchor["otp_epoch"]) == (2, 3), anchor
        # Between the copy's mark (1000) and the real one (1100): a double signature if signed.
        status, body = stack.bridge.sign(key.pkh, tezos.attestation("ed", CHAIN, 1050, 0))
        assert status == 503, f"signing on a restored whole-flash image: {status} {body!r}"
        assert otp_epoch(stack) == 3, "a refusing board burns nothing"

        # Recovery: the operator powers it up in provisioning mode and re-provisions.
        stack.board.stop()
        stack.boot()
        info_when_up(stack)
        done = cli_json(stack, "device", "reprovision")
        assert done == {"reprovisioned": True, "erased": False, "keys": 1}, done
        procs.pawl_cli(bins, ["watermark", "import", "--from", "signatory", str(saved),
                              "--home", str(stack.bridge_home), "--device", str(stack.device)])
        stack.board.stop()
        stack.boot(operational=True)
        info = info_when_up(stack)
        assert info["store"] == "ok", info
        anchor = info["rollback_anchor"]
        assert anchor["flash_epoch"] >= anchor["otp_epoch"], anchor
        status, body = wait_signs(stack.bridge, key,
                                  tezos.attestation("ed", CHAIN, 1100, 0, slot=3))
        assert status == 409, f"level 1100 after importing the saved marks: {status} {body!r}"
        sign_verified(stack.bridge, key, [tezos.attestation("ed", CHAIN, 1200, 0)])
    except Exception:
        print(stack.log_tails())
        raise
    finally:
        stack.stop()
