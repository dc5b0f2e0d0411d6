"""AWS KMS tier end to end: LocalStack's KMS (run on the host, tests/setup installs it) behind
a counting, fault-injecting proxy (localstack_kms.py) + `pawl-sim board --pty` + `pawl serve`,
each its own process. tz2 (ECC_SECG_P256K1) and tz3 (ECC_NIST_P256) keys are created in
LocalStack and registered on the board with `pawl keys import --backend aws`; every signature
is verified with pytezos (tz2 must be low-S although KMS hands out high-S about half the
time). The AWS credentials are the standard environment variables, with a secret made for
this run, which must appear in no log and no file."""

import os
import secrets
import statistics
import time

import pytest

import localstack_kms as kms
import procs
import tezos

CHAIN = bytes.fromhex("7a06a770")  # the chain `pawl keys` pins by default
ACCESS_KEY_ID = "AKIAPAWLE2E" + secrets.token_hex(5).upper()
SECRET_KEY = "pawl-e2e-" + secrets.token_urlsafe(24)


def config(endpoint: str, deadline_ms: int = 3000) -> str:
    return ("[aws]\n"
            f'region = "{kms.REGION}"\n'
            f'endpoint = "{endpoint}"\n'
            f"sign_deadline_ms = {deadline_ms}\n")


class Env:
    def __init__(self, bins, root):
        self.bins = bins
        self.root = root
        self.logs = root / "logs"
        self.logs.mkdir(parents=True)
        self.cli_output: list[str] = []
        self.localstack = kms.LocalStack(root / "localstack", self.logs)
        self.proxy = kms.Proxy(self.localstack.port)
        self.arns = {
            "tz2": kms.create_key(self.localstack.url, "ECC_SECG_P256K1"),
            "tz3": kms.create_key(self.localstack.url, "ECC_NIST_P256"),
            # Never registered: the wrong signer of test_wrong_signature….
            "other_tz2": kms.create_key(self.localstack.url, "ECC_SECG_P256K1"),
        }
        self.board = procs.Sim(bins, root / "board", self.logs, root / "device",
                               name="aws-board")
        self.home = root / "bridge"
        self.home.mkdir()
        (self.home / "pawl.toml").write_text(config(self.proxy.url))
        self.bridge: procs.Bridge | None = None
        self.keys: dict[str, tuple[str, str]] = {}

    def cli(self, args: list[str]) -> str:
        out = procs.pawl_cli(self.bins, ["--home", str(self.home), "--device",
                                         str(self.board.device), *args])
        self.cli_output.append(out)
        return out

    def import_key(self, name: str) -> str:
        out = self.cli(["keys", "import", "--backend", "aws", "--key-id", self.arns[name],
                        "--allow", "block,preattestation,attestation"])
        return out.split()[0]

    def start_bridge(self, name: str = "aws-serve"):
        self.bridge = procs.Bridge(self.bins, self.home, self.board.device, self.logs, name=name)
        return self.bridge


@pytest.fixture(scope="module")
def aws(bins, tmp_root):
    old = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                          "AWS_PROFILE", "AWS_CONFIG_FILE",
                                          "AWS_SHARED_CREDENTIALS_FILE")}
    os.environ["AWS_ACCESS_KEY_ID"] = ACCESS_KEY_ID
    os.environ["AWS_SECRET_ACCESS_KEY"] = SECRET_KEY
    # No profile files of this machine's user: the environment is the credential.
    os.environ.pop("AWS_PROFILE", None)
    os.environ["AWS_CONFIG_FILE"] = str(tmp_root / "no-aws-config")
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = str(tmp_root / "no-aws-credentials")
    env = Env(bins, tmp_root / "aws")
    try:
        # One key imported before `pawl serve` starts, one while it runs (through its control
        # socket): serve finds the second in aws_keys.json without a restart.
        tz2 = env.import_key("tz2")
        bridge = env.start_bridge()
        time.sleep(1.1)  # serve re-reads a key file at most once a second
        tz3 = env.import_key("tz3")
        for name, pkh in (("tz2", tz2), ("tz3", tz3)):
            assert pkh.startswith(name), pkh
            status, body = bridge.public_key(pkh)
            assert status == 200, body
            env.keys[name] = (pkh, body["public_key"])
        yield env
    finally:
        if env.bridge:
            env.bridge.stop()
        env.board.stop()
        env.proxy.stop()
        env.localstack.stop()
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


def test_tz2_and_tz3_sign_many_times_verified_and_tz2_always_low_s(aws):
    for name, curve in (("tz2", "sp"), ("tz3", "p2")):
        pkh, pk = aws.keys[name]
        for level in range(10, 40):
            signed(aws.bridge, pkh, pk, tezos.preattestation(curve, CHAIN, level, 0))
            signed(aws.bridge, pkh, pk, tezos.attestation(curve, CHAIN, level, 0))
    # KMS did hand out high-S secp256k1 signatures (each with probability 1/2), and every one
    # came out of the bridge low-S (tezos.verify above).
    tz2_arn = aws.arns["tz2"]
    assert aws.proxy.signatures[tz2_arn] >= 60
    assert aws.proxy.high_s.get(tz2_arn, 0) > 0, aws.proxy.high_s


def test_watermark_refusals_and_identical_retries_never_reach_kms(aws):
    pkh, pk = aws.keys["tz2"]
    payload = tezos.attestation("sp", CHAIN, 100, 0)
    first = signed(aws.bridge, pkh, pk, payload)
    before = aws.proxy.count("Sign")
    # Identical retry: the recorded signature, from the board's table.
    assert signed(aws.bridge, pkh, pk, payload) == first
    # Same level, other bytes; lower level; a block with a lower level: refused by the board.
    status, _ = aws.bridge.sign(pkh, tezos.attestation("sp", CHAIN, 100, 0, slot=3))
    assert status == 409
    status, _ = aws.bridge.sign(pkh, tezos.attestation("sp", CHAIN, 99, 0))
    assert status == 409
    assert aws.proxy.count("Sign") == before


def test_wrong_signature_is_refused_and_nothing_released(aws):
    """The proxy forwards one Sign with another tz2 key's id: KMS answers a well-formed
    signature, by the wrong key. The board must not release it."""
    pkh, pk = aws.keys["tz2"]
    payload = tezos.attestation("sp", CHAIN, 200, 0)
    aws.proxy.swap_key = aws.arns["other_tz2"]
    before = aws.proxy.signatures.get(aws.arns["tz2"], 0)
    status, body = aws.bridge.sign(pkh, payload)
    assert status == 502, body
    assert "does not verify" in body[0]["msg"], body
    assert "signature" not in body
    assert aws.proxy.swap_key is None  # the swap was used: KMS did answer
    assert aws.proxy.signatures[aws.arns["tz2"]] == before + 1
    # The approval is durable: a lower level stays refused (no watermark regression)...
    status, _ = aws.bridge.sign(pkh, tezos.attestation("sp", CHAIN, 199, 0))
    assert status == 409
    # ...and the identical request, retried, gets a good signature.
    signed(aws.bridge, pkh, pk, payload)


def test_throttling_and_5xx_are_retried_within_the_deadline(aws):
    pkh, pk = aws.keys["tz3"]
    aws.proxy.throttle = 2
    before = aws.proxy.count("Sign")
    signed(aws.bridge, pkh, pk, tezos.attestation("p2", CHAIN, 300, 0))
    assert aws.proxy.count("Sign") - before == 3
    aws.proxy.server_errors = 2
    before = aws.proxy.count("Sign")
    signed(aws.bridge, pkh, pk, tezos.attestation("p2", CHAIN, 301, 0))
    assert aws.proxy.count("Sign") - before == 3
    # Throttled past the deadline (3 s): 503, no signature, and no later than the deadline.
    aws.proxy.throttle = 10_000
    payload = tezos.attestation("p2", CHAIN, 302, 0)
    started = time.monotonic()
    status, body = aws.bridge.sign(pkh, payload)
    took = time.monotonic() - started
    assert status == 503, body
    assert "throttled" in body[0]["msg"], body
    assert took < 3.5, took
    # The approved digest stays approved: the identical request is signed once throttling ends.
    aws.proxy.reset_faults()
    signed(aws.bridge, pkh, pk, payload)
    # KMS failing (HTTP 500) until the deadline: 504.
    aws.proxy.server_errors = 10_000
    payload = tezos.attestation("p2", CHAIN, 303, 0)
    status, body = aws.bridge.sign(pkh, payload)
    assert status == 504, body
    assert "no signature within 3000 ms" in body[0]["msg"], body
    aws.proxy.reset_faults()
    signed(aws.bridge, pkh, pk, payload)


def test_a_refusal_is_not_retried_and_is_502(aws):
    """A disabled key: KMS answers DisabledException (HTTP 400), which no retry can fix."""
    pkh, pk = aws.keys["tz3"]
    aws.proxy.reset_faults()
    kms.kms(aws.localstack.url, "DisableKey", {"KeyId": aws.arns["tz3"]})
    payload = tezos.attestation("p2", CHAIN, 400, 0)
    before = aws.proxy.count("Sign")
    try:
        status, body = aws.bridge.sign(pkh, payload)
    finally:
        kms.kms(aws.localstack.url, "EnableKey", {"KeyId": aws.arns["tz3"]})
    assert status == 502, body
    assert "AWS KMS refused" in body[0]["msg"] and "Disabled" in body[0]["msg"], body
    assert aws.proxy.count("Sign") - before == 1
    signed(aws.bridge, pkh, pk, payload)


def test_import_refuses_unusable_keys_with_the_reason(aws):
    p384 = kms.create_key(aws.localstack.url, "ECC_NIST_P384")
    for key_id, reason in (
        (p384, "ECC_SECG_P256K1"),
        (aws.arns["tz2"].replace(kms.REGION, "eu-west-1"), "aws.region"),
        (aws.arns["tz2"].rsplit("/", 1)[0] + "/00000000-0000-0000-0000-000000000000",
         "NotFoundException"),
    ):
        with pytest.raises(RuntimeError) as e:
            aws.cli(["keys", "import", "--backend", "aws", "--key-id", key_id,
                     "--allow", "attestation"])
        assert reason in str(e.value), str(e.value)


def test_credentials_absent_from_logs_and_files(aws):
    # The bridge did run with them (so the search below can find them if they leak)...
    environ = open(f"/proc/{aws.bridge.proc.pid}/environ", "rb").read()
    had_it = SECRET_KEY.encode() in environ
    assert had_it, "the bridge runs without the test's AWS_SECRET_ACCESS_KEY"
    cmdline = open(f"/proc/{aws.bridge.proc.pid}/cmdline", "rb").read()
    leaked = SECRET_KEY.encode() in cmdline
    assert not leaked, "the AWS secret key is on the bridge's command line"
    # ...and they are in no log, no file of the bridge's home, no CLI output.
    for base in (aws.logs, aws.home):
        for path in base.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                for name, secret in (("secret key", SECRET_KEY), ("key id", ACCESS_KEY_ID)):
                    leaked = secret.encode() in data  # (not in the assert: pytest would print it)
                    assert not leaked, f"the AWS {name} is in {path}"
    for out in aws.cli_output:
        leaked = SECRET_KEY in out or ACCESS_KEY_ID in out
        assert not leaked, "an AWS credential is in the output of `pawl keys import`"


def test_latency_per_signature(aws, capsys):
    """p50/p99 straight to LocalStack (pawl.toml's endpoint without the proxy), and an on-board
    key through the same bridge in the same run."""
    aws.bridge.stop()
    (aws.home / "pawl.toml").write_text(config(aws.localstack.url))
    board_key = aws.cli(["keys", "generate", "--curve", "p256",
                         "--allow", "block,preattestation,attestation"]).split()[0]
    bridge = aws.start_bridge(name="aws-serve-latency")
    status, body = bridge.public_key(board_key)
    assert status == 200, body
    keys = {**aws.keys, "board tz3": (board_key, body["public_key"])}
    out = {}
    for name, (pkh, pk) in keys.items():
        curve = "sp" if pkh.startswith("tz2") else "p2"
        times = []
        for level in range(1000, 1200):
            payload = tezos.attestation(curve, CHAIN, level, 0)
            t = time.perf_counter()
            status, body = bridge.sign(pkh, payload)
            times.append(time.perf_counter() - t)
            assert status == 200, body
            if level % 50 == 0:
                tezos.verify(pk, body["signature"], payload)
        times.sort()
        out[name] = (statistics.median(times) * 1e3, times[int(len(times) * 0.99) - 1] * 1e3)
    with capsys.disabled():
        print("\naws latency ms (p50, p99), 200 attestations each:",
              {k: f"{a:.2f}, {b:.2f}" for k, (a, b) in out.items()})
