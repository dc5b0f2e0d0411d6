"""Several boards behind one bridge (issue 16): one `pawl serve` over four boards of every kind —
the in-process virtual board, two `pawl-sim board --pty` and the QEMU firmware — configured as
`[[device]]` tables in pawl.toml. Keys are provisioned through serve's control socket with
`--board`, spread over the boards and routed by pkh; every signature is verified by Taquito and
pytezos. One board killed fails only its own keys (503 naming it) and signs again once it is
back; a key imported on two boards is refused on both (503 naming them, an alert metric) until
one copy is put on standby; then a hand-off between the two (retired at L, active from L + 1)
routes each level to the board whose window holds it."""

import json
import subprocess
import time
import urllib.error
import urllib.request

import pytest

import procs
import tezos
from conftest import KEY_SPECS, CURVE_TAG, Key
from helpers import sign_verified
from test_qemu import QemuBoard, qemu_elf  # noqa: F401 (the fixture)

CHAIN = tezos.TEST_CHAIN
CHAIN_B58 = tezos.chain_b58(CHAIN)
SPECS = {s.name: s for s in KEY_SPECS}
# Which board holds which key.
PLACES = {"tz1": "virt", "tz2": "sim1", "tz3": "sim2", "tz4": "qemu"}


class Boards:
    def __init__(self, bins, elf, root):
        self.bins, self.elf, self.root = bins, elf, root
        self.home = root / "bridge"
        self.home.mkdir(parents=True)
        self.logs = root / "logs"
        self.logs.mkdir()
        self.sims = {}
        for name in ("sim1", "sim2"):
            self.start_sim(name)
        self.qemu = QemuBoard(bins, elf, root / "qemu-board", self.logs, root / "qemu",
                              "boards-qemu")
        (self.home / "pawl.toml").write_text(f"""
[server]
allow_list_known_keys = true

[[device]]
name = "virt"
path = "virtual"

[[device]]
name = "sim1"
path = "{root / 'sim1'}"
request_timeout_ms = 2000

[[device]]
name = "sim2"
path = "{root / 'sim2'}"
request_timeout_ms = 2000

[[device]]
name = "qemu"
path = "{root / 'qemu'}"
""")
        self.bridge = procs.Bridge(bins, self.home, None, self.logs, name="boards-serve")

    def start_sim(self, name):
        self.sims[name] = procs.Sim(self.bins, self.root / f"{name}-board", self.logs,
                                    self.root / name, name=f"boards-{name}")

    def cli(self, *args, stdin_text=None, ok=True):
        r = subprocess.run([self.bins.pawl, "--home", str(self.home), *args],
                           input=(stdin_text or "").encode(), capture_output=True,
                           timeout=procs.CLI_TIMEOUT)
        if ok:
            assert r.returncode == 0, f"pawl {' '.join(args)}: {r.stderr.decode()[-2000:]}"
        return r

    def metrics(self) -> str:
        with urllib.request.urlopen(self.bridge.metrics_url, timeout=5) as r:
            return r.read().decode()

    def log_tails(self):
        procs_ = [self.bridge, self.qemu, *self.sims.values()]
        return "\n".join(p.log_tail() for p in procs_)

    def stop(self):
        for p in [self.bridge, self.qemu, *self.sims.values()]:
            p.stop()


@pytest.fixture(scope="module")
def boards(bins, qemu_elf, tmp_root):  # noqa: F811
    b = Boards(bins, qemu_elf, tmp_root / "boards")
    try:
        yield b
    finally:
        print(b.log_tails())
        b.stop()


def _msg(body) -> str:
    return " ".join(e.get("msg", "") for e in body) if isinstance(body, list) else str(body)


def _provision(boards, spec, board) -> Key:
    args = ["keys", "import" if spec.secret else "generate", "--board", board,
            "--allow", spec.allow, "--chain", CHAIN_B58, "--json"]
    if not spec.secret:
        args += ["--curve", spec.curve]
    r = boards.cli(*args, stdin_text=(spec.secret + "\n") if spec.secret else None)
    info = json.loads(r.stdout.decode().strip().splitlines()[-1])
    return Key(spec.name, CURVE_TAG[spec.curve], info["pkh"], info["public_key"], spec.secret)


def _attest(key, level):
    return tezos.attestation(key.curve, CHAIN, level, 0)


def _sign_until(bridge, key, payload, want, tries=80):
    for _ in range(tries):
        status, body = bridge.sign(key.pkh, payload, timeout=10)
        if status == want:
            return status, body
        time.sleep(0.25)
    return status, body


def test_keys_spread_over_four_boards_are_routed_by_pkh(boards):
    # Without --board a provisioning command names the boards.
    r = boards.cli("keys", "generate", "--curve", "ed25519", ok=False)
    assert r.returncode != 0
    err = r.stderr.decode()
    assert "--board" in err and "virt, sim1, sim2, qemu" in err, err
    r = boards.cli("keys", "list", "--board", "nope", ok=False)
    assert "no board named `nope'" in r.stderr.decode(), r.stderr

    keys = {name: _provision(boards, SPECS[name], board) for name, board in PLACES.items()}
    boards.keys = keys
    # `keys list` shows every board, each under its name; each key on its own board only.
    listed = boards.cli("keys", "list", "--json").stdout.decode().strip().splitlines()
    by_board = {json.loads(line)["name"]: json.loads(line)["keys"] for line in listed}
    for name, board in PLACES.items():
        held = [k["pkh"] for k in by_board[board]]
        assert held == [keys[name].pkh], (board, by_board)

    for key in keys.values():
        status, body = boards.bridge.public_key(key.pkh)
        assert status == 200 and body["public_key"] == key.pk, (key.name, status, body)
        sign_verified(boards.bridge, key, [_attest(key, 100), _attest(key, 101)])
    # An unknown key is still 404.
    status, body = boards.bridge.sign(tezos.random_tz1(), _attest(keys["tz1"], 100))
    assert status == 404, (status, body)

    # `watermark show` and `device info` per board too; --board picks one.
    shown = boards.cli("watermark", "show", "--json").stdout.decode().strip().splitlines()
    marks = {json.loads(line)["name"]: json.loads(line)["watermarks"] for line in shown}
    for name, board in PLACES.items():
        assert {m["pkh"] for m in marks[board]} == {keys[name].pkh}, (board, marks)
        assert max(m["level"] for m in marks[board]) == 101, marks[board]
    infos = boards.cli("device", "info", "--json").stdout.decode().strip().splitlines()
    assert [json.loads(line)["name"] for line in infos] == ["virt", "sim1", "sim2", "qemu"]
    one = boards.cli("device", "info", "--json", "--board", "sim2").stdout.decode()
    assert len(one.strip().splitlines()) == 1 and json.loads(one)["keys"] == 1, one

    text = boards.metrics()
    for board in PLACES.values():
        assert f'pawl_board_connected{{board="{board}"}} 1' in text, text
    assert "pawl_duplicate_keys 0" in text, text


def test_a_dead_board_fails_only_its_own_keys(boards):
    keys = boards.keys
    dead = keys["tz3"]  # on sim2
    boards.sims["sim2"].kill9()
    # Unplugged: its device node goes (else another test's new pty could take the number).
    (boards.root / "sim2").unlink()
    status, body = boards.bridge.sign(dead.pkh, _attest(dead, 200), timeout=15)
    assert status == 503, (status, body)
    assert "sim2" in _msg(body), body
    for name in ("tz1", "tz2", "tz4"):
        sign_verified(boards.bridge, keys[name], [_attest(keys[name], 200)])
    # /known_keys still lists every key: the dead board's from its last list.
    status, body = boards.bridge.request("GET", "/known_keys", timeout=15)
    assert status == 200, (status, body)
    assert sorted(json.loads(body)["known_keys"]) == sorted(k.pkh for k in keys.values())
    # /readyz on the metrics listener names the dead board.
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(boards.bridge.metrics_url.replace("/metrics", "/readyz"),
                               timeout=5)
    assert e.value.code == 503 and "board `sim2'" in e.value.read().decode()

    # It comes back (same device path, new pty): its key signs again.
    boards.start_sim("sim2")
    payload = _attest(dead, 201)
    status, body = _sign_until(boards.bridge, dead, payload, 200)
    assert status == 200, (status, body)
    tezos.verify(dead.pk, body["signature"], payload)
    sign_verified(boards.bridge, dead, [_attest(dead, 202)])


def test_a_key_on_two_boards_is_refused_until_one_copy_stands_by(boards):
    keys = boards.keys
    twice = keys["tz1"]  # on virt; now imported on sim1 too
    boards.cli("keys", "import", "--board", "sim1", "--allow", SPECS["tz1"].allow,
               "--chain", CHAIN_B58, stdin_text=twice.secret + "\n")
    status, body = boards.bridge.sign(twice.pkh, _attest(twice, 300))
    assert status == 503, (status, body)
    msg = _msg(body)
    assert "`virt'" in msg and "`sim1'" in msg and "two live copies" in msg, msg
    text = boards.metrics()
    assert "pawl_duplicate_keys 1" in text, text
    for board in ("virt", "sim1"):
        assert f'pawl_key_live_copy{{pkh="{twice.pkh}",board="{board}"}} 1' in text, text
    # The other keys on those boards are not affected.
    sign_verified(boards.bridge, keys["tz2"], [_attest(keys["tz2"], 300)])

    # The copy on sim1 goes on standby: virt's copy signs again, and nothing is flagged.
    boards.cli("keys", "standby", twice.pkh, "--board", "sim1")
    sign_verified(boards.bridge, twice, [_attest(twice, 301)])
    assert "pawl_duplicate_keys 0" in boards.metrics()

    # Then the hand-off of docs/lifecycle.md across the two boards of this one bridge: virt
    # retired above 400, sim1 active from 401. Each level goes to the board whose window holds
    # it; both sign, none twice.
    boards.cli("keys", "retire", twice.pkh, "--above", "400", "--board", "virt")
    sign_verified(boards.bridge, twice, [_attest(twice, 350)])
    boards.cli("keys", "activate", twice.pkh, "--from-level", "401", "--board", "sim1")
    sign_verified(boards.bridge, twice, [_attest(twice, 400), _attest(twice, 401),
                                         _attest(twice, 402)])
    shown = boards.cli("watermark", "show", "--json").stdout.decode().strip().splitlines()
    marks = {json.loads(line)["name"]: json.loads(line)["watermarks"] for line in shown}
    top = {b: max(m["level"] for m in marks[b] if m["pkh"] == twice.pkh) for b in ("virt", "sim1")}
    assert top == {"virt": 400, "sim1": 402}, top
    assert "pawl_duplicate_keys 0" in boards.metrics()
