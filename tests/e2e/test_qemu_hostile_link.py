"""A hostile host on the QEMU board's link (issue 18, "no USB path to the bootloader"): every
request kind of the device protocol (each variant index, and indices past the last) with
random bodies, frames with bad CRCs, bare garbage and an oversized frame are thrown at the
firmware over its serial link, in operational and in provisioning mode. Afterwards:

* the board still answers (Status, and its key list is as it was in operational mode);
* the firmware image file is byte for byte what it was;
* the board's non-store state is unchanged: its board key file and the set of files in its
  state directory (no file created or removed);
* in operational mode the store (flash.bin, rollback-counter) and the "OTP" file are unchanged
  too. In provisioning mode the hostile frames do write the store (random ImportKey bodies
  are valid keys, Reprovision erases), and the first store write of a boot burns one epoch of
  the "OTP" rollback anchor, as designed (core/src/store/epoch.rs): both are allowed to
  change there.

What this proves, honestly: the firmware's request handling reaches no host file but the
store's (QEMU gives the guest the host's files through semihosting, so a stray open/write
would show here), and survives every request kind without crashing or wedging. It does not
prove anything about USB, BOOTSEL or the RP2350's boot ROM — QEMU's mps2-an505 has neither;
firmware/rp2350/tools/no_usb_bootloader.py checks the Pico 2 image for those."""

import hashlib
import os
import random
import select
import termios
import time
import tty
import zlib
from pathlib import Path

import pytest

import procs
import tezos
from conftest import KEY_SPECS, provision
from test_qemu import QemuBoard, cobs_decode, frame, qemu_elf, varint  # noqa: F401

# Request variants of pawl_core::protocol::Request (Hello = 0 … CometBft = 30), and a few
# indices no board knows.
VARIANTS = range(0, 40)
RESPONSE_KEYS, RESPONSE_STATUS = 1, 4
MAX_FRAME = 16_900


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Link:
    """The board's pty, raw, kept open for the whole barrage."""

    def __init__(self, device: Path):
        self.fd = os.open(device, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(self.fd)
        termios.tcflush(self.fd, termios.TCIOFLUSH)
        self.buf = bytearray()

    def close(self):
        os.close(self.fd)

    def write(self, data: bytes):
        view = memoryview(data)
        while view:
            n = os.write(self.fd, view[:4096])
            view = view[n:]
            self.drain(0)

    def drain(self, timeout: float):
        """Read what is there (the board's answers must not back up)."""
        while select.select([self.fd], [], [], timeout)[0]:
            self.buf += os.read(self.fd, 65536)
            timeout = 0

    def answer_to(self, request_id: int, body: bytes, timeout: float = 20) -> bytes:
        """Send a request and read frames until the answer with `request_id` comes."""
        self.write(frame(request_id, body))
        deadline = time.monotonic() + timeout
        want = varint(request_id)
        while True:
            while b"\x00" in self.buf:
                i = self.buf.index(0)
                raw, self.buf = bytes(self.buf[:i]), self.buf[i + 1:]
                if not raw:
                    continue
                decoded = cobs_decode(raw)
                body_, crc = decoded[:-4], decoded[-4:]
                if zlib.crc32(body_).to_bytes(4, "little") != crc:
                    continue
                if body_.startswith(want):
                    return body_[len(want):]
            assert time.monotonic() < deadline, f"no answer to request {request_id}"
            self.drain(0.2)


def barrage(link: Link, rng: random.Random, pkh: bytes) -> int:
    """Throw everything; returns how many frames were sent."""
    sent = 0
    next_id = 1000
    for variant in VARIANTS:
        for length in (0, 1, 2, 8, 21, 33, 64, 200, 2100):
            body = varint(variant) + bytes(rng.getrandbits(8) for _ in range(length))
            link.write(frame(next_id, body))
            next_id += 1
            sent += 1
        # With a real key hash after the variant: gets past the pkh of the requests naming one.
        for length in (0, 4, 40, 300):
            body = varint(variant) + pkh + bytes(rng.getrandbits(8) for _ in range(length))
            link.write(frame(next_id, body))
            next_id += 1
            sent += 1
        # The board is still there after each request kind.
        assert link.answer_to(next_id, varint(5))[:1] == varint(RESPONSE_STATUS), variant
        next_id += 1
    for _ in range(50):
        good = frame(next_id, varint(rng.randrange(0, 40)) + rng.randbytes(rng.randrange(80)))
        bad = bytearray(good)
        bad[rng.randrange(len(bad) - 1)] ^= 1 << rng.randrange(8)
        link.write(bytes(bad))
        link.write(bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 300))))
        next_id += 1
        sent += 2
    link.write(bytes([0x41]) * (MAX_FRAME + 100) + b"\x00")
    sent += 1
    return sent


def state(home: Path, otp: Path) -> dict:
    return {
        "files": sorted(p.name for p in home.iterdir()),
        "board.key": sha(home / "board.key"),
        "store": sha(home / "flash.bin") + sha(home / "rollback-counter")
        + (sha(otp) if otp.exists() else ""),
    }


@pytest.mark.parametrize("operational", [True, False], ids=["operational", "provisioning"])
def test_a_hostile_link_changes_nothing_but_the_store(bins, qemu_elf, tmp_root,  # noqa: F811
                                                      operational):
    root = tmp_root / f"qemu-hostile-{'op' if operational else 'prov'}"
    logs = root / "logs"
    logs.mkdir(parents=True)
    home, device, bridge_home = root / "board", root / "device", root / "bridge"
    bridge_home.mkdir()
    board = QemuBoard(bins, qemu_elf, home, logs, device, "hostile-setup")
    try:
        pkh_text = provision(bins, bridge_home, device, KEY_SPECS[0])
    finally:
        board.stop()
    pkh = varint(0) + __import__("pytezos").crypto.encoding.base58_decode(pkh_text.encode())
    otp = Path(str(home) + ".otp")
    image = sha(qemu_elf)
    board = QemuBoard(bins, qemu_elf, home, logs, device, "hostile", operational=operational)
    try:
        link = Link(device)
        try:
            keys_before = link.answer_to(1, varint(1))
            assert keys_before[:1] == varint(RESPONSE_KEYS)
            time.sleep(0.5)
            before = state(home, otp)
            sent = barrage(link, random.Random(18 + operational), pkh)
            assert sent > 400
            assert link.answer_to(2, varint(5))[:1] == varint(RESPONSE_STATUS)
            if operational:
                assert link.answer_to(3, varint(1)) == keys_before, "the key list changed"
            time.sleep(0.5)
            after = state(home, otp)
        finally:
            link.close()
        assert sha(qemu_elf) == image, "the firmware image file changed"
        assert after["files"] == before["files"], (before["files"], after["files"])
        assert after["board.key"] == before["board.key"]
        if operational:
            assert after["store"] == before["store"], "an operational board's store changed"
        assert board.proc.poll() is None, "QEMU exited"
    finally:
        board.stop()
