"""YubiHSM2 tier end to end: `pawl-sim yubihsm` (the yubihsm crate's MockHsm behind the
yubihsm-connector HTTP API) + `pawl-sim board --pty` + `pawl serve`, each its own process.
tz1, tz2 and tz3 keys live inside the mock; the board runs the SCP03 session itself and the
bridge only relays sealed messages — for signatures, and for `pawl keys import|generate
--backend yubihsm`, where the board reads the public key through its own session. Every
signature is verified with pytezos against the public key the simulator reads from the mock."""

import concurrent.futures
import json
import socket
import statistics
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import procs
import tezos

CHAIN = bytes.fromhex("7a06a770")
AUTH_ID = 2
PASSWORD = "e2e yubihsm password"
# K-ENC ‖ K-MAC of PASSWORD (PBKDF2-HMAC-SHA256, salt "Yubico", 10 000 iterations).
DERIVED = __import__("hashlib").pbkdf2_hmac("sha256", PASSWORD.encode(), b"Yubico", 10000, 32)
KEYS = {"tz1": (16, "ed25519"), "tz2": (17, "secp256k1"), "tz3": (18, "p256")}
CURVE = {"tz1": "ed", "tz2": "sp", "tz3": "p2"}


class YubiSim(procs.Proc):
    def __init__(self, bins, log_dir: Path, keys: dict = KEYS):
        argv = [bins.sim, "yubihsm", "--auth-key-id", str(AUTH_ID),
                "--auth-password", PASSWORD]
        for key_id, curve in keys.values():
            argv += ["--key", f"{key_id}:{curve}"]
        super().__init__("yubihsm-sim", argv, log_dir)
        self.url = self.wait_line("url: ")
        self.public_keys = {}
        for _ in keys:
            key_id, _curve, pk = self.wait_line("key: ").split()
            self.public_keys[int(key_id)] = pk

    def http(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        req = urllib.request.Request(self.url + path, data=body, method=method)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def admin(self, path: str) -> dict:
        status, body = self.http("GET", path)
        assert status == 200, body
        return json.loads(body)

    def messages(self) -> int:
        return self.admin("/admin/stats")["messages"]


def board_and_home(bins, root: Path, logs: Path, name: str, connector: str,
                   timeout_ms: int | None = None):
    """A `pawl-sim board` and a bridge home whose pawl.toml points `[yubihsm]` at
    `connector`."""
    board = procs.Sim(bins, root / "board", logs, root / "device", name=f"{name}-board")
    home = root / "bridge"
    home.mkdir()
    timeout = f"message_timeout_ms = {timeout_ms}\n" if timeout_ms else ""
    (home / "pawl.toml").write_text(f'[yubihsm]\nconnector = "{connector}"\n{timeout}')
    return board, home


def yubihsm_setup(bins, home: Path, board) -> None:
    """`pawl device yubihsm-setup` with the test password on stdin."""
    procs.pawl_cli(bins, ["device", "yubihsm-setup", "--home", str(home), "--device",
                          str(board.device), "--auth-key-id", str(AUTH_ID)],
                   stdin_text=PASSWORD + "\n")


@pytest.fixture(scope="module")
def hsm(bins, tmp_root):
    root = tmp_root / "yubihsm"
    logs = root / "logs"
    logs.mkdir(parents=True)
    sim = YubiSim(bins, logs)
    board, home = board_and_home(bins, root, logs, "yubihsm", sim.url, 2000)
    yubihsm_setup(bins, home, board)
    keys = {}
    for tz, (key_id, _curve) in KEYS.items():
        # The board reads each public key from the HSM through its own session; tz1 also
        # names the key it expects (double-checked by the board).
        expect = ["--public-key", sim.public_keys[key_id]] if tz == "tz1" else []
        out = procs.pawl_cli(bins, ["keys", "import", "--home", str(home), "--device",
                                    str(board.device), "--backend", "yubihsm", "--key-id",
                                    str(key_id), *expect,
                                    "--allow", "block,preattestation,attestation"])
        pkh, pk = out.split()[:2]
        assert pkh.startswith(tz), out
        assert pk == sim.public_keys[key_id], (tz, out)
        keys[tz] = (pkh, pk)
    assert sim.messages() >= 3 + 2, "registration reads the public keys through a session"
    bridge = procs.Bridge(bins, home, board.device, logs, name="yubihsm-serve")
    for tz, (pkh, pk) in keys.items():
        status, body = bridge.public_key(pkh)
        assert status == 200 and body["public_key"] == pk, body
    yield sim, bridge, keys, root
    bridge.stop()
    board.stop()
    sim.stop()


def signed(bridge, pkh, pk, payload):
    status, body = bridge.sign(pkh, payload)
    assert status == 200, body
    tezos.verify(pk, body["signature"], payload)  # tz2: also asserts low-S
    return body["signature"]


def test_tz1_tz2_tz3_sign_blocks_preattestations_and_attestations(hsm):
    sim, bridge, keys = hsm[:3]
    for tz, (pkh, pk) in keys.items():
        curve = CURVE[tz]
        for level in range(10, 13):
            signed(bridge, pkh, pk, tezos.preattestation(curve, CHAIN, level, 0))
            signed(bridge, pkh, pk, tezos.attestation(curve, CHAIN, level, 0))
            signed(bridge, pkh, pk, tezos.block(CHAIN, level, 1))
    stats = sim.admin("/admin/stats")
    # Sessions were opened and used: each signature is one session message.
    assert stats["session_message"] >= 27 and stats["create_session"] >= 1, stats
    assert stats["refused"] == 0, stats


def test_watermark_refusals_and_retries_never_reach_the_hsm(hsm):
    sim, bridge, keys = hsm[:3]
    for tz, (pkh, pk) in keys.items():
        curve = CURVE[tz]
        payload = tezos.attestation(curve, CHAIN, 100, 0)
        first = signed(bridge, pkh, pk, payload)
        before = sim.messages()
        assert signed(bridge, pkh, pk, payload) == first  # identical retry: recorded signature
        status, _ = bridge.sign(pkh, tezos.attestation(curve, CHAIN, 100, 0, slot=3))
        assert status == 409
        status, _ = bridge.sign(pkh, tezos.attestation(curve, CHAIN, 99, 0))
        assert status == 409
        status, _ = bridge.sign(pkh, tezos.block(CHAIN, 5, 0))
        assert status == 409
        assert sim.messages() == before, tz


def test_what_the_host_saw_cannot_open_a_session(hsm):
    """Everything the host holds — pawl.toml, the logs, every relayed message and answer —
    does not let it authenticate to the HSM: neither the password nor the derived keys are in
    it, and replaying a captured session opening is refused."""
    sim, bridge, keys, root = hsm
    pkh, pk = keys["tz1"]
    signed(bridge, pkh, pk, tezos.attestation("ed", CHAIN, 140, 0))  # a session, relayed
    # The host's files: not the board's own store, not the HSM simulator's log (its command
    # line carries the password, as an HSM's own provisioning would).
    seen = b"".join(p.read_bytes() for p in root.rglob("*") if p.is_file()
                    and "board" not in p.parts and p.name != "yubihsm-sim.log")
    assert b"[yubihsm]" in seen and b"listening on" in seen  # pawl.toml and the bridge log
    log = sim.admin("/admin/messages")["messages"]
    relayed = "".join(m["request"] + (m["response"] or "") for m in log)
    for secret in (PASSWORD.encode(), DERIVED, DERIVED[:16], DERIVED[16:]):
        assert secret not in seen
        assert secret.hex() not in relayed
    create = next(m for m in log if m["request"].startswith("03"))
    auth = next(m for m in log if m["request"].startswith("04"))
    sign = next(m for m in log if m["request"].startswith("05"))
    before = sim.admin("/admin/stats")["refused"]
    # A replayed Create Session gets a fresh card challenge; the captured host cryptogram
    # does not match it, so Authenticate Session is refused (AUTHENTICATION_FAILED).
    status, fresh = sim.http("POST", "/connector/api", bytes.fromhex(create["request"]))
    assert status == 200 and fresh[0] == 0x83 and fresh.hex() != create["response"]
    status, body = sim.http("POST", "/connector/api", bytes.fromhex(auth["request"]))
    assert (status, body) == (200, bytes.fromhex("7f000104"))
    # A captured session message replayed gets no signature back, only a device error.
    status, body = sim.http("POST", "/connector/api", bytes.fromhex(sign["request"]))
    assert status == 200 and body[0] == 0x7f, body.hex()
    assert sim.admin("/admin/stats")["refused"] > before
    # The board recovers in the same request: its session died with the mock's (the sim
    # rebuilds it), the HSM answers INVALID_SESSION, the board opens a fresh session once.
    pkh, pk = keys["tz2"]
    payload = tezos.attestation("sp", CHAIN, 150, 0)
    status, body = bridge.sign(pkh, payload)
    assert status == 200, body
    tezos.verify(pk, body["signature"], payload)


def test_concurrent_clients_on_three_hsm_keys_all_sign(hsm):
    """The board holds one pending HSM operation: the bridge serialises HSM signs, so 9
    concurrent clients (3 keys × block, preattestation, attestation — separate marks) all get
    verified signatures."""
    sim, bridge, keys = hsm[:3]
    payloads = []
    for tz, (pkh, pk) in keys.items():
        c = CURVE[tz]
        for payload in (tezos.block(CHAIN, 170, 0), tezos.preattestation(c, CHAIN, 170, 0),
                        tezos.attestation(c, CHAIN, 170, 0)):
            payloads.append((pkh, pk, payload))
    with concurrent.futures.ThreadPoolExecutor(len(payloads)) as pool:
        results = list(pool.map(lambda j: bridge.sign(j[0], j[2]), payloads))
    for (pkh, pk, payload), (status, body) in zip(payloads, results):
        assert status == 200, (pkh, body)
        tezos.verify(pk, body["signature"], payload)


def test_malformed_messages_get_device_errors_and_the_sim_keeps_serving(hsm):
    sim, bridge, keys = hsm[:3]
    before = sim.admin("/admin/stats")
    for junk in (b"", b"\x05", b"\x03\x00\x0a\x00\x63" + bytes(8), b"\x04\x00\x01\x00",
                 b"\x05\x00\x03\x07\x00\x00", bytes(range(256)) * 8):
        status, body = sim.http("POST", "/connector/api", junk)
        assert status == 200 and body[:3] == b"\x7f\x00\x01", (junk[:8], status, body)
    after = sim.admin("/admin/stats")
    assert after["messages"] - before["messages"] == 6
    pkh, pk = keys["tz3"]
    signed(bridge, pkh, pk, tezos.attestation("p2", CHAIN, 180, 0))


def test_silent_or_missing_connector_is_504_or_502_and_the_mark_holds(hsm, bins, tmp_root):
    """A connector that never answers gives 504 within the relay timeout; one that is gone
    gives 502; nothing is signed and the durable mark still refuses lower levels."""
    sim = hsm[0]
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # connections complete in the kernel; nothing ever answers
    port = silent.getsockname()[1]
    root = tmp_root / "yubihsm-silent"
    logs = root / "logs"
    logs.mkdir(parents=True)
    board, home = board_and_home(bins, root, logs, "silent", sim.url, 500)
    yubihsm_setup(bins, home, board)
    out = procs.pawl_cli(bins, ["keys", "import", "--home", str(home), "--device",
                                str(board.device), "--backend", "yubihsm", "--key-id", "17"])
    pkh = out.split()[0]
    (home / "pawl.toml").write_text(
        f'[yubihsm]\nconnector = "http://127.0.0.1:{port}"\nmessage_timeout_ms = 500\n')
    bridge = procs.Bridge(bins, home, board.device, logs, name="silent-serve")
    try:
        payload = tezos.attestation("sp", CHAIN, 20, 0)
        started = time.monotonic()
        status, body = bridge.sign(pkh, payload)
        assert status == 504, body
        assert time.monotonic() - started < 2.0
        assert "signature" not in body
        silent.close()
        status, body = bridge.sign(pkh, payload)
        assert status == 502, body
        assert "unreachable" in body[0]["msg"]
        status, _ = bridge.sign(pkh, tezos.attestation("sp", CHAIN, 19, 0))
        assert status == 409
    finally:
        bridge.stop()
        board.stop()
        silent.close()


def test_latency_per_signature(hsm):
    sim, bridge, keys = hsm[:3]
    out = {}
    for tz, (pkh, _pk) in keys.items():
        times = []
        before = sim.messages()
        for level in range(1000, 1200):
            payload = tezos.attestation(CURVE[tz], CHAIN, level, 0)
            t = time.perf_counter()
            status, body = bridge.sign(pkh, payload)
            times.append(time.perf_counter() - t)
            assert status == 200, body
        sent = sim.messages() - before
        assert 200 <= sent <= 200 * 3 // 2, sent  # one sign command each, sessions reopened
        times.sort()
        out[tz] = (statistics.median(times) * 1e3, times[int(len(times) * 0.99) - 1] * 1e3,
                   sent / 200)
    assert bridge.metrics_url
    with urllib.request.urlopen(bridge.metrics_url, timeout=10) as r:
        text = r.read().decode()
    count = next(line for line in text.splitlines()
                 if line.startswith("pawl_hsm_hop_duration_seconds_count"))
    assert int(count.split()[-1]) >= 600, count  # every relayed message timed
    print("\nyubihsm (mock) latency ms (p50, p99, HSM messages per signature):",
          {k: f"{a:.2f}, {b:.2f}, {c:.2f}" for k, (a, b, c) in out.items()})


def test_cli_registration_while_serving_waits_its_turn(hsm, bins):
    """`pawl keys generate --backend yubihsm` while `pawl serve` signs with HSM keys: the CLI's
    exchange goes through the control socket and holds the bridge's HSM turn, so neither
    replaces the other's pending operation on the board — every sign and the generation
    succeed, and the new key signs."""
    sim, bridge, keys, root = hsm
    home = root / "bridge"
    # One thread per key, each signing its levels in order (a key's attestations at two levels
    # in flight at once could reach the board out of order: the lower one is then refused, as
    # it must be); the keys and the CLI run side by side.
    per_key = {pkh: [(pkh, pk, tezos.attestation(CURVE[tz], CHAIN, level, 0))
                     for level in range(2000, 2030)]
               for tz, (pkh, pk) in keys.items()}

    def sign_in_order(jobs):
        return [(job, bridge.sign(job[0], job[2])) for job in jobs]

    with concurrent.futures.ThreadPoolExecutor(len(per_key)) as pool:
        signs = [pool.submit(sign_in_order, jobs) for jobs in per_key.values()]
        out = procs.pawl_cli(bins, ["keys", "generate", "--home", str(home), "--json",
                                    "--backend", "yubihsm", "--curve", "p256",
                                    "--key-id", "72"])
        results = [r for f in signs for r in f.result()]
    assert len(results) == 30 * len(per_key)
    for (pkh, pk, payload), (status, body) in results:
        assert status == 200, (pkh, body)
        tezos.verify(pk, body["signature"], payload)
    info = json.loads(out)
    assert sim.admin("/admin/key/72")["public_key"] == info["public_key"]
    signed(bridge, info["pkh"], info["public_key"], tezos.attestation("p2", CHAIN, 5, 0))


def test_keys_generated_inside_the_hsm_sign(bins, tmp_root):
    """`pawl keys generate --backend yubihsm`: the HSM makes tz1/tz2/tz3 keys (sign-only, not
    exportable), the board registers the public keys it read back through its session, and
    they sign through `pawl serve` — verified by pytezos against what the simulator reads
    from the mock itself. Own simulator: the mock forgets session-generated keys when another
    test makes it panic."""
    root = tmp_root / "yubihsm-generate"
    logs = root / "logs"
    logs.mkdir(parents=True)
    sim = YubiSim(bins, logs, keys={})
    board, home = board_and_home(bins, root, logs, "generate", sim.url)
    bridge = None
    try:
        cli = ["--home", str(home), "--device", str(board.device)]
        # Before the setup the board has no credential: a clear error, nothing in the HSM.
        with pytest.raises(RuntimeError, match="yubihsm-setup"):
            procs.pawl_cli(bins, ["keys", "generate", *cli, "--backend", "yubihsm",
                                  "--curve", "p256", "--key-id", "40"])
        assert sim.messages() == 0
        yubihsm_setup(bins, home, board)
        keys = {}
        for tz, curve, key_id in (("tz1", "ed25519", 48), ("tz2", "secp256k1", 49),
                                  ("tz3", "p256", 50)):
            out = procs.pawl_cli(bins, ["keys", "generate", *cli, "--json", "--backend",
                                        "yubihsm", "--curve", curve, "--key-id", str(key_id),
                                        "--label", f"e2e {tz}"])
            info = json.loads(out)
            assert info["pkh"].startswith(tz) and info["backend"] == "yubihsm", info
            held = sim.admin(f"/admin/key/{key_id}")
            assert held["public_key"] == info["public_key"], (held, info)
            assert held["origin"] == "generated" and not held["exportable"], held
            assert held["capabilities"] == (0x100 if tz == "tz1" else 0x80), held
            assert held["label"] == f"e2e {tz}", held
            keys[tz] = (info["pkh"], held["public_key"])
        # A key already registered, imported again by id: the board refuses.
        with pytest.raises(RuntimeError, match="refused"):
            procs.pawl_cli(bins, ["keys", "import", *cli, "--backend", "yubihsm",
                                  "--key-id", "48"])
        # Import by id of a key made outside pawl, with a wrong expected key: refused.
        made = json.loads(sim.http("POST", "/admin/generate",
                                   b'{"curve": "secp256k1", "key_id": 51}')[1])
        with pytest.raises(RuntimeError, match="another key"):
            procs.pawl_cli(bins, ["keys", "import", *cli, "--backend", "yubihsm",
                                  "--key-id", "51", "--public-key", keys["tz2"][1]])
        listed = procs.pawl_cli(bins, ["keys", "list", *cli, "--json"])
        assert made["pkh"] not in listed and len(json.loads(listed)["keys"]) == 3, listed
        bridge = procs.Bridge(bins, home, board.device, logs, name="generate-serve")
        for tz, (pkh, pk) in keys.items():
            c = CURVE[tz]
            for level in (7, 8):
                signed(bridge, pkh, pk, tezos.block(CHAIN, level, 0))
                signed(bridge, pkh, pk, tezos.preattestation(c, CHAIN, level, 0))
                signed(bridge, pkh, pk, tezos.attestation(c, CHAIN, level, 0))
        assert sim.admin("/admin/stats")["rebuilds"] == 0
    finally:
        if bridge:
            bridge.stop()
        board.stop()
        sim.stop()
