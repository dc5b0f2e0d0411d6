"""Azure Key Vault tier end to end: `pawl-sim azure` (HTTPS, generated certificate, managed
identity in its App Service form) + `pawl-sim board --pty` + `pawl serve`, each its own
process. tz2 and tz3 keys live in the simulated vault; every signature is verified with
pytezos (tz2 must be low-S, although the simulator answers high-S every other time)."""

import json
import os
import ssl
import statistics
import time
import urllib.request
from pathlib import Path

import pytest

import procs
import tezos

CHAIN = bytes.fromhex("7a06a770")
IDENTITY_HEADER = "e2e-identity-header"


class Vault(procs.Proc):
    def __init__(self, bins, root: Path, log_dir: Path):
        argv = [bins.sim, "azure", "--cert-dir", str(root / "vault"),
                "--identity-header", IDENTITY_HEADER, "--key", "baker2:P-256K",
                "--key", "baker3:P-256"]
        super().__init__("azure-sim", argv, log_dir)
        self.url = self.wait_line("url: ")
        self.cert = self.wait_line("cert: ")
        self.identity = self.wait_line("identity: ")
        self.ctx = ssl.create_default_context(cafile=self.cert)

    def admin(self, path: str, body: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path.lstrip("/"), data=data,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, context=self.ctx, timeout=10) as r:
            raw = r.read()
            return json.loads(raw) if raw else {}

    def sign_requests(self) -> int:
        return self.admin("admin/stats")["sign_requests"]


@pytest.fixture(scope="module")
def azure(bins, tmp_root):
    root = tmp_root / "azure"
    logs = root / "logs"
    logs.mkdir(parents=True)
    vault = Vault(bins, root, logs)
    old = {k: os.environ.get(k) for k in ("IDENTITY_ENDPOINT", "IDENTITY_HEADER")}
    os.environ["IDENTITY_ENDPOINT"] = vault.identity
    os.environ["IDENTITY_HEADER"] = IDENTITY_HEADER
    board = procs.Sim(bins, root / "board", logs, root / "device", name="azure-board")
    home = root / "bridge"
    home.mkdir()
    (home / "pawl.toml").write_text(
        "[azure]\n"
        f'vault_url = "{vault.url}"\n'
        'credential = "managed-identity"\n'
        f'ca_file = "{vault.cert}"\n'
        "verify_challenge_resource = false\n"
        "sign_deadline_ms = 3000\n")
    keys = {}

    def import_key(name):
        out = procs.pawl_cli(bins, ["keys", "import", "--home", str(home), "--device",
                                    str(board.device), "--backend", "azure", "--key", name,
                                    "--allow", "block,preattestation,attestation"])
        keys[name] = out.split()[0]

    # One key imported before `pawl serve` starts, one while it runs (through its control
    # socket): serve finds the second in azure_keys.json without a restart.
    import_key("baker2")
    bridge = procs.Bridge(bins, home, board.device, logs, name="azure-serve")
    time.sleep(1.1)  # serve re-reads the key file at most once a second
    import_key("baker3")
    for name, pkh in keys.items():
        status, body = bridge.public_key(pkh)
        assert status == 200, body
        keys[name] = (pkh, body["public_key"])
    yield vault, bridge, keys
    bridge.stop()
    board.stop()
    vault.stop()
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


def test_tz2_and_tz3_sign_consensus_and_high_s_comes_out_low_s(azure):
    vault, bridge, keys = azure
    vault.admin("admin/faults", {"high_s": "alternate"})
    for name, curve in (("baker2", "sp"), ("baker3", "p2")):
        pkh, pk = keys[name]
        assert pkh.startswith("tz2" if curve == "sp" else "tz3")
        for level in range(10, 14):
            signed(bridge, pkh, pk, tezos.preattestation(curve, CHAIN, level, 0))
            signed(bridge, pkh, pk, tezos.attestation(curve, CHAIN, level, 0))


def test_watermark_refusals_and_retries_never_reach_the_vault(azure):
    vault, bridge, keys = azure
    pkh, pk = keys["baker2"]
    payload = tezos.attestation("sp", CHAIN, 100, 0)
    first = signed(bridge, pkh, pk, payload)
    before = vault.sign_requests()
    # Identical retry: the recorded signature, from the board's table.
    assert signed(bridge, pkh, pk, payload) == first
    # Same level, other bytes; lower level: refused by the board.
    status, _ = bridge.sign(pkh, tezos.attestation("sp", CHAIN, 100, 0, slot=3))
    assert status == 409
    status, _ = bridge.sign(pkh, tezos.attestation("sp", CHAIN, 99, 0))
    assert status == 409
    assert vault.sign_requests() == before


def test_wrong_signature_is_refused_and_nothing_released(azure):
    vault, bridge, keys = azure
    pkh, pk = keys["baker2"]
    payload = tezos.attestation("sp", CHAIN, 200, 0)
    vault.admin("admin/faults", {"wrong_signatures": 1})
    status, body = bridge.sign(pkh, payload)
    assert status == 502, body
    assert "does not verify" in body[0]["msg"]
    assert "signature" not in body
    # The approval is durable: a lower level stays refused (no watermark regression)...
    status, _ = bridge.sign(pkh, tezos.attestation("sp", CHAIN, 199, 0))
    assert status == 409
    # ...and the identical request, retried, gets a good signature.
    signed(bridge, pkh, pk, payload)


def test_throttling_with_retry_after_is_honoured_within_the_deadline(azure):
    vault, bridge, keys = azure
    pkh, pk = keys["baker3"]
    vault.admin("admin/faults", {"throttle": 1, "retry_after": 1})
    before = vault.sign_requests()
    started = time.monotonic()
    signed(bridge, pkh, pk, tezos.attestation("p2", CHAIN, 300, 0))
    took = time.monotonic() - started
    assert 1.0 <= took < 3.0, took
    assert vault.sign_requests() - before == 2
    # Throttled past the deadline: 503, no signature.
    vault.admin("admin/faults", {"throttle": 5, "retry_after": 2})
    payload = tezos.attestation("p2", CHAIN, 301, 0)
    status, body = bridge.sign(pkh, payload)
    assert status == 503, body
    assert "429" in body[0]["msg"]
    # The approved digest stays approved: the identical request is signed once throttling ends.
    vault.admin("admin/faults", {})
    signed(bridge, pkh, pk, payload)


def test_latency_per_signature(azure):
    vault, bridge, keys = azure
    vault.admin("admin/faults", {})
    out = {}
    for name, curve in (("baker2", "sp"), ("baker3", "p2")):
        pkh, pk = keys[name]
        times = []
        for level in range(1000, 1200):
            payload = tezos.attestation(curve, CHAIN, level, 0)
            t = time.perf_counter()
            status, body = bridge.sign(pkh, payload)
            times.append(time.perf_counter() - t)
            assert status == 200, body
        times.sort()
        out[name] = (statistics.median(times) * 1e3, times[int(len(times) * 0.99) - 1] * 1e3)
    print("\nazure latency ms (p50, p99):", {k: f"{a:.2f}, {b:.2f}" for k, (a, b) in out.items()})
