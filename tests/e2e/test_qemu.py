"""End to end on the real firmware: `pawl-sim qemu` (firmware/qemu on QEMU mps2-an505) +
`pawl serve --device <pty>`, driven by Taquito and pytezos (issue 5, QEMU part).

The board's flash, rollback counter, board key and button are files in its state directory;
killing QEMU with SIGKILL and booting it again on the same directory is a power cut."""

import hashlib
import os
import signal
import subprocess
import threading
import time
import zlib
from pathlib import Path

import pytest
from pytezos.crypto.encoding import base58_decode

import procs
import tezos
from conftest import KEY_SPECS, Key, CURVE_TAG, provision
from helpers import forge, sign_verified, transfer

CHAIN = tezos.TEST_CHAIN
FIRMWARE = procs.REPO / "firmware" / "qemu"
# The firmware workspace (firmware/Cargo.toml) has one target directory for both boards.
ELF = FIRMWARE.parent / "target" / "thumbv8m.main-none-eabihf" / "release" / "pawl-qemu"
# The store reserves this many levels ahead of a signature (NorStoreConfig::DEFAULT_CEILING_AHEAD):
# after a power cut the board refuses up to that far above its last signature.
CEILING_AHEAD = 16
BUTTON_MS = 3000


@pytest.fixture(scope="session")
def qemu_elf():
    """The board image, built here unless PAWL_E2E_NO_BUILD=1 (tests/run builds it first)."""
    if os.environ.get("PAWL_E2E_NO_BUILD") != "1":
        subprocess.run(["cargo", "build", "--release", "--bin", "pawl-qemu"], cwd=FIRMWARE,
                       check=True, stdin=subprocess.DEVNULL, timeout=1800)
    assert ELF.is_file(), f"no firmware image at {ELF}"
    return ELF


class QemuBoard(procs.Proc):
    """`pawl-sim qemu`; the pty is published through a stable symlink, as procs.Sim does."""

    def __init__(self, bins, elf: Path, home: Path, log_dir: Path, link: Path, name: str,
                 operational: bool = False):
        argv = [bins.sim, "qemu", "--home", str(home), "--elf", str(elf),
                "--button-ms", str(BUTTON_MS)]
        if operational:
            argv.append("--operational")
        super().__init__(name, argv, log_dir)
        self.home = home
        self.pty = self.wait_line("pty: ")
        procs.publish_pty(self.pty, link)

    def kill9(self):
        """Power cut: SIGKILL to the launcher and QEMU (its own process group)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.stop()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


class QemuStack:
    def __init__(self, bins, elf: Path, root: Path, name: str):
        self.bins, self.elf, self.name = bins, elf, name
        self.logs = root / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.board_home = root / "board"
        self.bridge_home = root / "bridge"
        self.bridge_home.mkdir(parents=True, exist_ok=True)
        self.device = root / "device"
        self.boots = 0
        self.board: QemuBoard | None = None
        self.bridge: procs.Bridge | None = None

    def boot(self, operational: bool = False) -> QemuBoard:
        self.boots += 1
        self.board = QemuBoard(self.bins, self.elf, self.board_home, self.logs, self.device,
                               f"{self.name}-qemu{self.boots}", operational)
        return self.board

    def start_bridge(self) -> procs.Bridge:
        self.bridge = procs.Bridge(self.bins, self.bridge_home, self.device, self.logs,
                                   name=f"{self.name}-serve")
        return self.bridge

    def log_tails(self) -> str:
        return "\n".join(p.log_tail() for p in (self.board, self.bridge) if p)

    def stop(self):
        for p in (self.bridge, self.board):
            if p:
                p.stop()


@pytest.fixture(scope="module")
def qemu_stack(bins, qemu_elf, tmp_root):
    stack = QemuStack(bins, qemu_elf, tmp_root / "qemu", "qemu")
    keys = {}
    try:
        stack.boot()
        for spec in KEY_SPECS:  # tz3 is generated on the board (host /dev/urandom)
            pkh = provision(bins, stack.bridge_home, stack.device, spec)
            keys[spec.name] = Key(spec.name, CURVE_TAG[spec.curve], pkh,
                                  tezos.public_key_of(spec.secret) if spec.secret else None,
                                  spec.secret)
        stack.start_bridge()
        status, body = stack.bridge.public_key(keys["tz3"].pkh)
        assert status == 200, (status, body)
        keys["tz3"].pk = body["public_key"]
    except Exception:
        print(stack.log_tails())
        stack.stop()
        raise
    yield stack, keys
    stack.stop()


def wait_signs(bridge, key, payload, timeout=30.0):
    """Sign `payload` once the bridge reaches the (re)started board; the status and body."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            status, body = bridge.sign(key.pkh, payload, timeout=10)
        except OSError as e:
            status, body = None, repr(e)
        if status not in (None, 502, 503, 504) or time.monotonic() > deadline:
            return status, body
        time.sleep(0.25)


def test_qemu_signs_every_curve_and_keeps_marks_across_a_power_cut(qemu_stack, levels):
    """tz1-tz4 sign blocks and attestations on the firmware (verified by Taquito and pytezos);
    QEMU is then killed with SIGKILL and booted again on the same flash file: a lower level and
    the same level with another payload are refused (409); a level above the reservation signs."""
    stack, keys = qemu_stack
    bridge, base = stack.bridge, levels.take()
    signed = {}
    for name in ("tz1", "tz2", "tz3", "tz4"):
        key = keys[name]
        block = tezos.block(CHAIN, base, 0)
        att = tezos.attestation(key.curve, CHAIN, base, 0, slot=3)
        sign_verified(bridge, key, [block, att])
        signed[name] = (block, att)
    # Deterministic schemes reproduce the reference vector byte for byte on the firmware.
    c3 = bytes.fromhex("13b3d79f993222f293d2f293230ec36b0bef1caead619f1a7206ff54a0c198f07ae25bb1"
                       "51150015000000220000000458335430566f4b95401c110f33e74d3a324f83ad6003ed9d"
                       "5e93ce617fa11e44")
    [s_c3] = sign_verified(bridge, keys["tz1"], [c3])
    assert s_c3.startswith("edsigtia28aoA2ey7TrYKTyKmyppzwnq6VNrwZSwofgMTvFog")

    stack.board.kill9()
    flash = (stack.board_home / "flash.bin").read_bytes()
    assert len(flash) == 256 * 1024 and flash != b"\xff" * len(flash)
    stack.boot()

    for name in ("tz1", "tz2", "tz3", "tz4"):
        key = keys[name]
        block, att = signed[name]
        refused = [
            tezos.block(CHAIN, base - 1, 0),                      # lower level
            tezos.block(CHAIN, base, 0),                          # same level, other payload
            tezos.attestation(key.curve, CHAIN, base - 1, 5, slot=3),
            tezos.attestation(key.curve, CHAIN, base, 0, slot=4),
        ]
        assert refused[1] != block and refused[3] != att
        for i, p in enumerate(refused):
            status, body = (wait_signs(bridge, key, p) if i == 0
                            else bridge.sign(key.pkh, p))
            assert status == 409, f"{name} after restart, {p.hex()}: {status} {body!r}"
        higher = base + CEILING_AHEAD + 1
        sign_verified(bridge, key, [tezos.block(CHAIN, higher, 0),
                                    tezos.attestation(key.curve, CHAIN, higher, 0, slot=3)])


# --- Operational mode and confirm-on-device --------------------------------------------------
# Raw frames, so that every provisioning request is tried, including those the CLI does not send.
# Postcard: enum variants and u16/u32 are varints; u8, bool and arrays are raw bytes.

def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def cobs_encode(data: bytes) -> bytes:
    out, block = bytearray(), bytearray()
    for b in data:
        if b == 0:
            out += bytes([len(block) + 1]) + block
            block = bytearray()
        else:
            block.append(b)
            if len(block) == 254:
                out += bytes([255]) + block
                block = bytearray()
    return bytes(out + bytes([len(block) + 1]) + block)


def cobs_decode(data: bytes) -> bytes:
    out, i = bytearray(), 0
    while i < len(data):
        code = data[i]
        out += data[i + 1:i + code]
        i += code
        if code < 255 and i < len(data):
            out.append(0)
    return bytes(out)


def frame(request_id: int, body: bytes) -> bytes:
    raw = varint(request_id) + body
    return cobs_encode(raw + zlib.crc32(raw).to_bytes(4, "little")) + b"\x00"


def pkh_bytes(pkh: str) -> bytes:
    curve = {"tz1": 0, "tz2": 1, "tz3": 2, "tz4": 3}[pkh[:3]]
    return varint(curve) + base58_decode(pkh.encode())


# Policy: kinds (u8), ops (u32), chains (Vec<[u8; 4]>), ballots (u8), confirm (u8).
POLICY = bytes([0x07]) + varint(0) + varint(0) + bytes([0, 0])


def provisioning_requests(pkh: str) -> dict[str, bytes]:
    """Request enum bodies (variant index first) for every provisioning request."""
    return {
        "GenerateKey": varint(7) + varint(0) + POLICY,
        "ImportKey": varint(8) + varint(0) + bytes([7] * 32) + POLICY,
        "SetPolicy": varint(9) + pkh_bytes(pkh) + bytes([0x1F]) + varint(0) + varint(0)
        + bytes([0, 0]),
        "ImportWatermark": varint(10) + CHAIN + pkh_bytes(pkh) + varint(2) + varint(10**7)
        + varint(0),
        "Reprovision(erase)": varint(13) + b"\x01",
        "Reprovision(adopt)": varint(13) + b"\x00",
    }


RESPONSE_STATUS, RESPONSE_REFUSED, REFUSAL_PROVISIONING_ONLY = 4, 8, 7


def exchange(device: Path, request_id: int, body: bytes, timeout: float = 10) -> bytes:
    """Send one frame on the board's pty and return the answer's body (id and CRC checked)."""
    import termios
    import tty
    fd = os.open(device, os.O_RDWR | os.O_NOCTTY)
    try:
        tty.setraw(fd)
        termios.tcflush(fd, termios.TCIOFLUSH)
        os.write(fd, frame(request_id, body))
        buf, deadline = bytearray(), time.monotonic() + timeout
        while b"\x00" not in buf:
            assert time.monotonic() < deadline, f"no answer from the board: {bytes(buf)!r}"
            import select
            if select.select([fd], [], [], 0.2)[0]:
                buf += os.read(fd, 4096)
    finally:
        os.close(fd)
    raw = cobs_decode(bytes(buf[:buf.index(0)]))
    body, crc = raw[:-4], raw[-4:]
    assert zlib.crc32(body).to_bytes(4, "little") == crc, raw.hex()
    assert body[:len(varint(request_id))] == varint(request_id), raw.hex()
    return body[len(varint(request_id)):]


def state_digest(home: Path) -> str:
    h = hashlib.sha256()
    for name in ("flash.bin", "rollback-counter", "board.key"):
        h.update((home / name).read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def confirm_stack(bins, qemu_elf, tmp_root):
    """A board provisioned with one tz1 key that signs transfers only with the button, then
    powered up again in operational mode."""
    stack = QemuStack(bins, qemu_elf, tmp_root / "qemu-confirm", "confirm")
    # The board waits up to BUTTON_MS (3 s) for the button, longer than the bridge's default
    # 2 s silence timeout: the bridge must know from the key's policy that this request waits
    # for the button ([device] confirm_timeout_ms, default 35 s) — no pawl.toml here.
    spec = KEY_SPECS[0]
    try:
        stack.boot()
        out = procs.pawl_cli(bins, ["keys", "import", "--home", str(stack.bridge_home),
                                    "--device", str(stack.device), "--allow-ops", "transaction",
                                    "--confirm", "generic", "--chain",
                                    tezos.chain_b58(CHAIN)], stdin_text=spec.secret + "\n")
        assert "confirm generic" in out, out
        key = Key("tz1", "ed", out.split()[0], tezos.public_key_of(spec.secret), spec.secret)
        stack.board.stop()
        stack.boot(operational=True)
    except Exception:
        print(stack.log_tails())
        stack.stop()
        raise
    yield stack, key
    stack.stop()


def test_operational_board_refuses_every_provisioning_request(bins, confirm_stack):
    """Powered up operational, the firmware refuses every provisioning request that comes over
    the serial link (ProvisioningOnly), through the CLI and as raw frames, and its state files
    are unchanged afterwards."""
    stack, key = confirm_stack
    assert stack.bridge is None, "the raw frames need the pty to themselves"
    before = state_digest(stack.board_home)
    # The link and the encoding work: Status is answered.
    assert exchange(stack.device, 1, varint(5))[:1] == varint(RESPONSE_STATUS)
    for i, (name, body) in enumerate(provisioning_requests(key.pkh).items(), start=2):
        answer = exchange(stack.device, i, body)
        assert answer[:2] == varint(RESPONSE_REFUSED) + varint(REFUSAL_PROVISIONING_ONLY), \
            f"{name} in operational mode: answer {answer.hex()}"
    for args, stdin in ((["keys", "generate", "--curve", "p256"], None),
                        (["keys", "import"], KEY_SPECS[1].secret + "\n")):
        with pytest.raises(RuntimeError, match="provisioning mode"):
            procs.pawl_cli(bins, args + ["--home", str(stack.bridge_home),
                                         "--device", str(stack.device)], stdin_text=stdin)
    assert state_digest(stack.board_home) == before, "a refused request changed the board state"


def test_confirm_needs_the_button(confirm_stack, levels):
    """A transfer whose kind the key's policy marks "confirm" is not signed without a press of
    the simulated button (a file only the host's operator can create, never the serial link),
    not with a press made before the request, and is signed when the press comes in time."""
    stack, key = confirm_stack
    bridge = stack.bridge or stack.start_bridge()
    button = stack.board_home / "button"
    # Consensus is not confirm-required: signed at once.
    sign_verified(bridge, key, [tezos.attestation("ed", CHAIN, levels.take(), 0)])
    payload = forge([transfer(key.pkh)])

    t0 = time.monotonic()
    status, body = bridge.sign(key.pkh, payload, timeout=30)
    assert status == 403 and "not confirmed" in str(body), (status, body)
    assert time.monotonic() - t0 >= BUTTON_MS / 1000 - 0.5, "the board did not wait"

    button.touch()  # a press before the request does not count
    status, body = bridge.sign(key.pkh, payload, timeout=30)
    assert status == 403 and "not confirmed" in str(body), (status, body)
    assert not button.exists(), "the stale press was not cleared"

    result = {}
    waits = stack.board.log_text().count("waiting")
    worker = threading.Thread(
        target=lambda: result.update(r=bridge.sign(key.pkh, payload, timeout=30)), daemon=True)
    worker.start()
    deadline = time.monotonic() + 10
    while stack.board.log_text().count("waiting") == waits:
        assert time.monotonic() < deadline, "the board never asked for the button"
        time.sleep(0.05)
    button.touch()
    worker.join(timeout=30)
    status, body = result["r"]
    assert status == 200, (status, body)
    tezos.verify(key.pk, body["signature"], payload)
    assert not button.exists(), "the press was not consumed"


def children_of(pid: int) -> list[int]:
    """The pids whose parent is `pid` (from /proc, no psutil)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid …": comm may hold spaces, so split after its closing paren.
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def running(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2:].split()[0] != "Z"


def test_qemu_dies_with_its_launcher(bins, qemu_elf, tmp_root):
    """SIGKILL to `pawl-sim qemu` alone (not its process group) leaves no QEMU running: the
    board loses power with its launcher instead of living on as an orphan."""
    stack = QemuStack(bins, qemu_elf, tmp_root / "qemu-orphan", "orphan")
    board = stack.boot()
    qemu = [pid for pid in children_of(board.proc.pid)
            if Path(f"/proc/{pid}/exe").resolve().name.startswith("qemu-system")]
    try:
        assert len(qemu) == 1, f"expected one QEMU child of the launcher, found {qemu}"
        board.proc.send_signal(signal.SIGKILL)
        board.proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while running(qemu[0]) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not running(qemu[0]), f"QEMU (pid {qemu[0]}) outlived its killed launcher"
    finally:
        # Whatever happened above, nothing of this test outlives it.
        try:
            os.killpg(board.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        board.stop()
