"""PKCS#11 tier end to end: a SoftHSM2 token (made here in a temporary directory by
softhsm2-util, its key pairs generated inside it by OpenSC's pkcs11-tool) + `pawl-sim board
--pty` + `pawl serve`, each its own process. tz1 (CKM_EDDSA), tz2 and tz3 (CKM_ECDSA) keys live
in the token; every signature is verified with pytezos (tz2 must be low-S: SoftHSM2 returns
high-S about half the time, the board normalises).

The token cannot count its own calls, so "no token traffic" is read from pawl's per-backend
counter (`pawl_keyring_requests_total{backend="pkcs11"}`), which counts every call the bridge
makes to a keyring, whatever its outcome; the board's side is that a refused or repeated
request never produces a `DigestApproved` (the board answers it from its policy, its marks or
its signature table), and without an approval the bridge has nothing to take to the token."""

import os
import re
import statistics
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

import procs
import tezos

CHAIN = bytes.fromhex("7a06a770")
LIBRARY = "/usr/lib/softhsm/libsofthsm2.so"
# The token's user PIN: unique enough to be grepped for in every log and file.
PIN = "pawl-e2e-pin-5174"
SO_PIN = "pawl-e2e-so-8302"
PIN_ENV = "PAWL_E2E_PKCS11_PIN"
CURVE = {"tz1": "ed", "tz2": "sp", "tz3": "p2"}
KEYS = {"baker1": "EC:edwards25519", "baker2": "EC:secp256k1", "baker3": "EC:prime256v1",
        "other2": "EC:secp256k1"}


class SoftHsm:
    """A SoftHSM2 token in `root`: its own config (SOFTHSM2_CONF) and token directory."""

    def __init__(self, root: Path):
        self.root = root
        (root / "tokens").mkdir(parents=True)
        self.conf = root / "softhsm2.conf"
        self.conf.write_text(f"directories.tokendir = {root / 'tokens'}\n"
                             "objectstore.backend = file\nlog.level = ERROR\n")
        self.env = {**os.environ, "SOFTHSM2_CONF": str(self.conf), PIN_ENV: PIN,
                    "PAWL_E2E_SO_PIN": SO_PIN}
        # softhsm2-util takes the PINs on its command line only: a throwaway test token's.
        self.run(["softhsm2-util", "--init-token", "--free", "--label", "pawl",
                  "--so-pin", SO_PIN, "--pin", PIN])

    def run(self, argv: list[str]) -> str:
        r = subprocess.run(argv, env=self.env, capture_output=True, timeout=60,
                           stdin=subprocess.DEVNULL)
        assert r.returncode == 0, f"{argv[0]}: {r.stderr.decode(errors='replace')}"
        return r.stdout.decode()

    def keypair(self, label: str, key_type: str) -> None:
        """A key pair generated inside the token (the PIN from the environment)."""
        self.run(["pkcs11-tool", "--module", LIBRARY, "--token-label", "pawl", "--login",
                  "--pin", f"env:{PIN_ENV}", "--keypairgen", "--key-type", key_type,
                  "--label", label, "--usage-sign"])


def metric(bridge, name: str, **labels) -> float:
    with urllib.request.urlopen(bridge.metrics_url, timeout=10) as r:
        text = r.read().decode()
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    m = re.search(rf"^{name}{{{re.escape(want)}}} (\S+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def token_calls(bridge) -> float:
    with urllib.request.urlopen(bridge.metrics_url, timeout=10) as r:
        text = r.read().decode()
    return sum(float(v) for v in re.findall(
        r'^pawl_keyring_requests_total\{backend="pkcs11",outcome="[^"]+"\} (\S+)$', text, re.M))


def write_config(home: Path, pin_line: str) -> None:
    (home / "pawl.toml").write_text(
        "[pkcs11]\n"
        f'library = "{LIBRARY}"\n'
        'token_label = "pawl"\n'
        f"{pin_line}\n"
        "sign_deadline_ms = 2000\n")


def import_key(bins, home: Path, device: Path, label: str) -> tuple[str, str]:
    out = procs.pawl_cli(bins, ["keys", "import", "--home", str(home), "--device", str(device),
                                "--backend", "pkcs11", "--label", label,
                                "--allow", "block,preattestation,attestation"])
    pkh, pk = out.split()[:2]
    return pkh, pk


@pytest.fixture(scope="module")
def pkcs11(bins, tmp_root):
    root = tmp_root / "pkcs11"
    logs = root / "logs"
    logs.mkdir(parents=True)
    token = SoftHsm(root / "token")
    for label, key_type in KEYS.items():
        token.keypair(label, key_type)
    old = {k: os.environ.get(k) for k in ("SOFTHSM2_CONF", PIN_ENV)}
    os.environ["SOFTHSM2_CONF"] = str(token.conf)
    board = procs.Sim(bins, root / "board", logs, root / "device", name="pkcs11-board")
    home = root / "bridge"
    home.mkdir()
    # The import reads the PIN from the environment; serve (below) from a file.
    os.environ[PIN_ENV] = PIN
    write_config(home, f'pin_env = "{PIN_ENV}"')
    keys = {}
    for label in ("baker1", "baker2", "baker3", "other2"):
        keys[label] = import_key(bins, home, board.device, label)
    del os.environ[PIN_ENV]
    pin_file = root / "pin"
    pin_file.write_text(PIN + "\n")
    pin_file.chmod(0o600)
    write_config(home, f'pin_file = "{pin_file}"')
    # `other2`'s pkh is signed for by `baker2`'s key: a token answering with the wrong key.
    records = (home / "pkcs11_keys.json").read_text()
    (home / "pkcs11_keys.json").write_text(records.replace('"label": "other2"',
                                                           '"label": "baker2"'))
    # An on-board key, for the board-only latency of the same run.
    secret = "edsk3QoqBuvdamxouPhin7swCvkQNgq4jP5KZPbwWNnwdZpSpJiEbq"
    out = procs.pawl_cli(bins, ["keys", "import", "--home", str(home), "--device",
                                str(board.device), "--allow",
                                "block,preattestation,attestation"], stdin_text=secret)
    keys["onboard"] = tuple(out.split()[:2])
    bridge = procs.Bridge(bins, home, board.device, logs, name="pkcs11-serve")
    state = {"bins": bins, "bridge": bridge, "token": token, "home": home, "logs": logs, "board": board,
             "keys": keys, "root": root}
    yield state
    state["bridge"].stop()
    board.stop()
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def signed(bridge, pkh, pk, payload):
    status, body = bridge.sign(pkh, payload)
    assert status == 200, body
    tezos.verify(pk, body["signature"], payload)  # tz2: also asserts low-S
    return body["signature"]


def test_tz1_tz2_tz3_sign_consensus_verified_by_pytezos(pkcs11):
    bridge, keys = pkcs11["bridge"], pkcs11["keys"]
    before = token_calls(bridge)
    n = 0
    for label in ("baker1", "baker2", "baker3"):
        pkh, pk = keys[label]
        curve = CURVE[pkh[:3]]
        status, body = bridge.public_key(pkh)
        assert status == 200 and body["public_key"] == pk, body
        for level in range(10, 20):
            signed(bridge, pkh, pk, tezos.preattestation(curve, CHAIN, level, 0))
            signed(bridge, pkh, pk, tezos.attestation(curve, CHAIN, level, 0))
            signed(bridge, pkh, pk, tezos.block(CHAIN, level, 1))
            n += 3
    # Each signature is exactly one call to the token.
    assert token_calls(bridge) - before == n


def test_watermark_refusals_and_retries_never_reach_the_token(pkcs11):
    bridge, keys = pkcs11["bridge"], pkcs11["keys"]
    for label in ("baker1", "baker2"):
        pkh, pk = keys[label]
        curve = CURVE[pkh[:3]]
        payload = tezos.attestation(curve, CHAIN, 100, 0)
        first = signed(bridge, pkh, pk, payload)
        before = token_calls(bridge)
        # Identical retry: the recorded signature, from the board's table.
        assert signed(bridge, pkh, pk, payload) == first
        # Same level, other bytes; lower level: refused by the board.
        status, _ = bridge.sign(pkh, tezos.attestation(curve, CHAIN, 100, 0, slot=3))
        assert status == 409
        status, _ = bridge.sign(pkh, tezos.attestation(curve, CHAIN, 99, 0))
        assert status == 409
        assert token_calls(bridge) == before, label


def test_wrong_signature_is_refused_and_nothing_released(pkcs11):
    bridge, keys = pkcs11["bridge"], pkcs11["keys"]
    pkh, pk = keys["other2"]
    payload = tezos.attestation("sp", CHAIN, 200, 0)
    bad_before = metric(bridge, "pawl_keyring_bad_signatures_total", backend="pkcs11")
    status, body = bridge.sign(pkh, payload)
    assert status == 502, body
    assert "does not verify" in body[0]["msg"], body
    assert metric(bridge, "pawl_keyring_bad_signatures_total",
                  backend="pkcs11") == bad_before + 1
    # The approval's mark is durable: a lower level stays refused...
    status, _ = bridge.sign(pkh, tezos.attestation("sp", CHAIN, 199, 0))
    assert status == 409
    # ...and nothing was recorded for it: once the key file names the right key pair (and
    # serve is restarted to read it), the identical request is signed, by the right key.
    home = pkcs11["home"]
    records = (home / "pkcs11_keys.json").read_text()
    fixed = re.sub(r'("pkh": "' + pkh + r'",\s*"label": )"baker2"', r'\1"other2"', records)
    assert fixed != records
    (home / "pkcs11_keys.json").write_text(fixed)
    pkcs11["bridge"].stop()
    pkcs11["bridge"] = bridge = procs.Bridge(pkcs11["bins"], home, pkcs11["board"].device,
                                             pkcs11["logs"], name="pkcs11-serve2")
    signed(bridge, pkh, pk, payload)


def test_pin_is_in_no_log_file_or_command_line(pkcs11, bins):
    bridge = pkcs11["bridge"]
    cmdline = Path(f"/proc/{bridge.proc.pid}/cmdline").read_bytes()
    assert PIN.encode() not in cmdline
    assert PIN.encode() not in Path(f"/proc/{bridge.proc.pid}/environ").read_bytes()
    pin_file = pkcs11["root"] / "pin"
    for path in (pkcs11["home"], pkcs11["logs"]):
        for f in path.rglob("*"):
            if f.is_file() and f != pin_file:
                assert PIN.encode() not in f.read_bytes(), f
    # A wrong PIN: refused, named, and not echoed.
    home = pkcs11["root"] / "wrong-pin"
    home.mkdir()
    (home / "pin").write_text("not-the-pin-4242\n")
    write_config(home, f'pin_file = "{home / "pin"}"')
    r = subprocess.run([bins.pawl, "keys", "import", "--home", str(home), "--backend",
                        "pkcs11", "--label", "baker2"], capture_output=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    assert r.returncode != 0
    err = r.stderr.decode()
    assert "PIN" in err and "pkcs11.pin_file" in err, err
    assert "not-the-pin-4242" not in err and PIN not in err


def test_latency_per_signature(pkcs11):
    bridge, keys = pkcs11["bridge"], pkcs11["keys"]
    out = {}
    for label in ("onboard", "baker1", "baker2", "baker3"):
        pkh, pk = keys[label]
        curve = CURVE[pkh[:3]]
        times = []
        for level in range(1000, 1200):
            payload = tezos.attestation(curve, CHAIN, level, 0)
            t = time.perf_counter()
            status, body = bridge.sign(pkh, payload)
            times.append(time.perf_counter() - t)
            assert status == 200, body
        times.sort()
        out[label] = (statistics.median(times) * 1e3, times[int(len(times) * 0.99) - 1] * 1e3)
    print("\npkcs11 latency ms (p50, p99):",
          {k: f"{a:.2f}, {b:.2f}" for k, (a, b) in out.items()})
