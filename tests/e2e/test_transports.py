"""The transports beside plain HTTP (issue 15 item 1), each stack its own `pawl-sim board --pty`
and `pawl serve`:

* HTTPS: Taquito's RemoteSigner (the CA through NODE_EXTRA_CA_CERTS) and a pytezos-forged
  operation sent by Python's ssl client, with and without a client certificate; under mutual TLS
  no certificate or one from another CA is refused. Certificates are made here with the openssl
  CLI; no private key is committed.
* The Octez socket signer protocol over TCP and a Unix socket, with octez_socket.py (written
  from the Octez layouts, docs/protocol.md §10): the committed fixtures of
  host-bridge/tests/fixtures/socket replayed byte for byte, tz1 and tz4 (version 3, checked with
  py_ecc) signatures, authentication, and every refusal a baker meets.
"""

import http.client
import json
import os
import ssl
import subprocess
from pathlib import Path

import pytest
from pytezos.crypto.encoding import base58_decode
from pytezos.crypto.key import Key as PyKey
from pytezos.operation.forge import forge_operation_group

import helpers
import procs
import tezos
from conftest import KEY_SPECS, Key, Stack, _stacks, provision
from octez_socket import Client, SignerError

TZ1 = next(s for s in KEY_SPECS if s.name == "tz1")
TZ4 = next(s for s in KEY_SPECS if s.name == "tz4")
# pytezos' test key (docs/protocol.md §8.4): the authorized client key of the auth stack.
AUTH_SK = "edsk3nM41ygNfSxVU4w1uAW3G9EnTQEB5rjojeZedLTGmiGRcierVv"
FIXTURES = Path(__file__).resolve().parents[2] / "host-bridge/tests/fixtures/socket"


def openssl(*args: str, cwd: Path):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def pki(tmp_root) -> Path:
    """A CA; a server certificate for 127.0.0.1 and a client certificate it issued; a client
    certificate issued by another CA."""
    d = tmp_root / "pki"
    d.mkdir(exist_ok=True)
    for ca in ("ca", "other-ca"):
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", f"{ca}.key", "-out", f"{ca}.pem", "-days", "2", "-subj",
                f"/CN=pawl e2e {ca}", cwd=d)
    for name, ca, ext in (("server", "ca", "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                                            "extendedKeyUsage=serverAuth"),
                          ("client", "ca", "extendedKeyUsage=clientAuth"),
                          ("wrong", "other-ca", "extendedKeyUsage=clientAuth")):
        (d / f"{name}.ext").write_text(ext + "\n")
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=d)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
                "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile",
                f"{name}.ext", cwd=d)
    return d


class Transports:
    def __init__(self, stack: Stack, keys: dict[str, Key]):
        self.stack = stack
        self.keys = keys
        bridge = stack.bridge
        self.https = "https://" + bridge.wait_line("listening on https://", timeout=10)
        self.tcp = bridge.wait_line("socket on ", timeout=10)
        self.unix = bridge.wait_line("socket on ", timeout=10)
        assert self.tcp.startswith("tcp://127.0.0.1:"), self.tcp
        assert self.unix.startswith("unix:///"), self.unix


def transports_stack(bins, tmp_root, pki: Path, name: str, extra: str = "") -> Transports:
    stack = Stack(bins, tmp_root / name, name)
    _stacks.append(stack)
    stack.bridge_home.mkdir(parents=True, exist_ok=True)
    sock = tmp_root / name / "signer.sock"
    (stack.bridge_home / "pawl.toml").write_text(f"""
[server]
tls_listen = "127.0.0.1:0"
tls_cert = "{pki / 'server.pem'}"
tls_key = "{pki / 'server.key'}"
socket = ["tcp://127.0.0.1:0", "unix://{sock}"]
{extra}
""")
    keys = {}
    for spec in (TZ1, TZ4):
        pkh = provision(bins, stack.bridge_home, stack.device, spec)
        keys[spec.name] = Key(spec.name, {"ed25519": "ed", "bls": "bls"}[spec.curve], pkh,
                              tezos.public_key_of(spec.secret), spec.secret)
    stack.start_bridge()
    return Transports(stack, keys)


@pytest.fixture(scope="module")
def open_stack(bins, tmp_root, pki):
    t = transports_stack(bins, tmp_root, pki, "transports")
    yield t
    t.stack.stop()


@pytest.fixture(scope="module")
def mtls_stack(bins, tmp_root, pki):
    t = transports_stack(bins, tmp_root, pki, "transports-mtls",
                         f'tls_client_ca = "{pki / "ca.pem"}"')
    yield t
    t.stack.stop()


@pytest.fixture(scope="module")
def auth_stack(bins, tmp_root, pki):
    pk = PyKey.from_encoded_key(AUTH_SK).public_key()
    t = transports_stack(bins, tmp_root, pki, "transports-auth", f'authorized_keys = ["{pk}"]')
    yield t
    t.stack.stop()


def fixtures() -> list[dict]:
    out = []
    for path in sorted(FIXTURES.glob("*.txt")):
        fields = dict(line.split(": ", 1) for line in path.read_text().splitlines()
                      if line and not line.startswith("#"))
        out.append({"name": path.name, "server": fields["server"],
                    "request": bytes.fromhex(fields["request"]), "answer": fields["answer"]})
    assert len(out) >= 19
    return out


def frame_roundtrip(client: Client, frame: bytes) -> bytes:
    """Send a whole committed frame; the whole answer frame back."""
    client.sock.sendall(frame)
    head = client._read(2)
    return head + client._read(int.from_bytes(head, "big"))


def matches(pattern: str, got: bytes) -> bool:
    return len(pattern) == 2 * len(got) and all(
        pattern[2 * i:2 * i + 2] in ("??", f"{b:02x}") for i, b in enumerate(got))


# -- the socket protocol ------------------------------------------------------------------------

def test_socket_fixtures_byte_for_byte_over_tcp_and_unix(open_stack, auth_stack):
    """The committed fixtures on fresh boards holding the same keys: the open ones over TCP,
    then again over the Unix socket (identical signs give the recorded signatures, refusals
    stay refusals), the authenticated ones on the stack that requires authentication."""
    all_fixtures = fixtures()
    for uri in (open_stack.tcp, open_stack.unix):
        with Client(uri) as open_c, Client(auth_stack.tcp) as auth_c:
            for f in all_fixtures:
                if f["server"] == "auth" and uri != open_stack.tcp:
                    continue
                c = open_c if f["server"] == "open" else auth_c
                got = frame_roundtrip(c, f["request"])
                assert matches(f["answer"], got), \
                    f"{uri} {f['name']}: expected {f['answer']}\n got {got.hex()}"


def test_socket_signs_tz1_and_tz4_over_tcp_and_unix(open_stack, levels):
    tz1, tz4 = open_stack.keys["tz1"], open_stack.keys["tz4"]
    for uri in (open_stack.tcp, open_stack.unix):
        with Client(uri) as c:
            assert c.authorized_keys() is None
            assert c.supports_deterministic_nonces(tz1.pkh) is False
            assert c.public_key(tz1.pkh) == tz1.pk
            assert c.public_key(tz4.pkh) == tz4.pk
            level = levels.take()
            for p in (tezos.preattestation("ed", tezos.TEST_CHAIN, level, 0),
                      tezos.attestation("ed", tezos.TEST_CHAIN, level, 0),
                      tezos.block(tezos.TEST_CHAIN, level + 1, 0)):
                tezos.verify(tz1.pk, c.sign(tz1.pkh, p), p)
            for p in (tezos.preattestation("bls", tezos.TEST_CHAIN, level, 0),
                      tezos.attestation("bls", tezos.TEST_CHAIN, level, 0)):
                sig = c.sign(tz4.pkh, p, version=3)
                assert sig.startswith("BLsig")
                tezos.verify(tz4.pk, sig, p)  # py_ecc, POP ciphersuite
            # A pytezos-forged transaction the tz1 policy allows.
            op = forge_operation_group({
                "branch": helpers.branch_b58(),
                "contents": [helpers.transfer(tz1.pkh)]})
            payload = b"\x03" + op
            tezos.verify(tz1.pk, c.sign(tz1.pkh, payload), payload)


def refused(c: Client, *args, **kw) -> str:
    with pytest.raises(SignerError) as e:
        c.sign(*args, **kw)
    [err] = e.value.errors
    assert err["kind"] == "temporary" and err["id"] == "failure", err
    return err["msg"]


def test_socket_refusals_reach_the_client_as_octez_error_traces(open_stack, levels):
    tz1, tz4 = open_stack.keys["tz1"], open_stack.keys["tz4"]
    level = levels.take()
    with Client(open_stack.tcp) as c:
        first = tezos.attestation("ed", tezos.TEST_CHAIN, level, 0)
        sig = c.sign(tz1.pkh, first)
        assert c.sign(tz1.pkh, first) == sig, "identical retry: the recorded signature"
        assert "already signed" in refused(
            c, tz1.pkh, tezos.attestation("ed", tezos.TEST_CHAIN, level, 0))
        assert "below high watermark" in refused(
            c, tz1.pkh, tezos.attestation("ed", tezos.TEST_CHAIN, level - 1, 0))
        # Policy: a delegation is not among the key's operations; a chain it does not allow.
        op = b"\x03" + forge_operation_group({
            "branch": helpers.branch_b58(),
            "contents": [helpers.delegation(tz1.pkh, tz1.pkh)]})
        msg = refused(c, tz1.pkh, op)
        assert "delegation" in msg or "not allowed" in msg, msg
        msg = refused(c, tz1.pkh, tezos.attestation("ed", bytes.fromhex("01020304"), level, 0))
        assert "chain" in msg, msg
        # tz4: signature versions 0 and 1 are not BLS versions; 4 does not decode.
        att = tezos.attestation("bls", tezos.TEST_CHAIN, level, 0)
        for v in (0, 1):
            msg = refused(c, tz4.pkh, att, version=v)
            assert "version" in msg, msg
        assert "Invalid signature version 4" in refused(c, tz4.pkh, att, version=4)
        # Unknown key, unparsable payload, empty payload.
        assert "unknown key" in refused(c, tezos.random_tz1(), first)
        assert refused(c, tz1.pkh, b"\x42" + os.urandom(20))
        assert "empty" in refused(c, tz1.pkh, b"")
        # Switches off (Octez's messages), deterministic nonces not served.
        with pytest.raises(SignerError, match="List known keys request not allowed."):
            c.known_keys()
        with pytest.raises(SignerError, match="prove possession is not allowed"):
            c.prove_possession(tz4.pkh)
        with pytest.raises(SignerError, match="does not compute deterministic nonces"):
            c.call(b"\x03" + bytes([0]) + base58_decode(tz1.pkh.encode()) + b"\0\0\0\1\0")
        # The connection still works after every refusal.
        assert c.public_key(tz1.pkh) == tz1.pk


def test_socket_authentication(auth_stack, levels):
    tz1, tz4 = auth_stack.keys["tz1"], auth_stack.keys["tz4"]
    auth = PyKey.from_encoded_key(AUTH_SK)
    level = levels.take()
    for uri in (auth_stack.tcp, auth_stack.unix):
        with Client(uri) as c:
            assert c.authorized_keys() == [auth.public_key_hash()]
            for key, payload, version in (
                    (tz1, tezos.attestation("ed", tezos.TEST_CHAIN, level, 0), None),
                    (tz4, tezos.attestation("bls", tezos.TEST_CHAIN, level, 0), 3)):
                assert refused(c, key.pkh, payload, version=version) == \
                    "missing authentication signature field"
                # Signed by a key that is not authorized (the signing key itself).
                wrong = PyKey.from_encoded_key(TZ1.secret).sign(
                    b"\x04\x01" + _pkh21(key.pkh) + payload)
                assert refused(c, key.pkh, payload, version=version,
                               auth_sig=base58_decode(wrong.encode())) == \
                    "invalid authentication signature"
                good = auth.sign(b"\x04\x01" + _pkh21(key.pkh) + payload)
                sig = c.sign(key.pkh, payload, version=version,
                             auth_sig=base58_decode(good.encode()))
                tezos.verify(key.pk, sig, payload)
        level = levels.take()


def _pkh21(pkh: str) -> bytes:
    tag = {"tz1": 0, "tz2": 1, "tz3": 2, "tz4": 3}[pkh[:3]]
    return bytes([tag]) + base58_decode(pkh.encode())


def test_unix_socket_file_is_0660_and_removed_when_serve_stops(bins, tmp_root, pki):
    t = transports_stack(bins, tmp_root, pki, "transports-unix")
    path = Path(t.unix[len("unix://"):])
    assert oct(path.stat().st_mode & 0o777) == oct(0o660)
    t.stack.bridge.stop()
    assert not path.exists(), "socket file left after SIGTERM"
    t.stack.stop()


# -- HTTPS --------------------------------------------------------------------------------------

def taquito_https(pki: Path, commands: list[dict]) -> list[dict]:
    return procs.taquito(commands, env={"NODE_EXTRA_CA_CERTS": str(pki / "ca.pem")})


def remote_sign(url: str, key: Key, payload: bytes, cert: str | None = None) -> dict:
    cmd = {"op": "remote_sign", "url": url, "pkh": key.pkh, "hex": payload[1:].hex(),
           "watermark": payload[:1].hex()}
    if cert:
        cmd |= {"tls_cert": cert + ".pem", "tls_key": cert + ".key"}
    return cmd


def https_sign(url: str, pki: Path, key: Key, payload: bytes, cert: str | None = None,
               version: int | None = None) -> tuple[int, dict]:
    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    if cert:
        ctx.load_cert_chain(str(pki / f"{cert}.pem"), str(pki / f"{cert}.key"))
    host, port = url[len("https://"):].rsplit(":", 1)
    conn = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=30)
    try:
        path = f"/keys/{key.pkh}" + (f"?version={version}" if version is not None else "")
        conn.request("POST", path, json.dumps(payload.hex()),
                     {"Content-Type": "application/json"})
        r = conn.getresponse()
        return r.status, json.loads(r.read())
    finally:
        conn.close()


def test_taquito_and_pytezos_sign_over_https(open_stack, pki, levels):
    tz1, tz4 = open_stack.keys["tz1"], open_stack.keys["tz4"]
    level = levels.take()
    payloads = [tezos.preattestation("ed", tezos.TEST_CHAIN, level, 0),
                tezos.attestation("ed", tezos.TEST_CHAIN, level, 0)]
    results = taquito_https(pki, [remote_sign(open_stack.https, tz1, p) for p in payloads])
    for p, r in zip(payloads, results):
        assert r["ok"], f"Taquito RemoteSigner over HTTPS: {r}"
        tezos.verify(tz1.pk, r["prefixSig"], p)
    # pytezos forges, Python's ssl client sends, pytezos / py_ecc verify.
    op = b"\x03" + forge_operation_group({"branch": helpers.branch_b58(),
                                          "contents": [helpers.transfer(tz1.pkh)]})
    status, body = https_sign(open_stack.https, pki, tz1, op)
    assert status == 200, body
    tezos.verify(tz1.pk, body["signature"], op)
    att = tezos.attestation("bls", tezos.TEST_CHAIN, level, 0)
    status, body = https_sign(open_stack.https, pki, tz4, att, version=3)
    assert status == 200, body
    tezos.verify(tz4.pk, body["signature"], att)
    # A refusal keeps its status and Octez body over HTTPS.
    status, body = https_sign(open_stack.https, pki, tz1, payloads[1][:-1] + b"\x00")
    assert status == 409, body
    assert "already signed" in body[0]["msg"], body


def test_mutual_tls_signs_with_the_right_client_certificate_only(mtls_stack, pki, levels):
    tz1 = mtls_stack.keys["tz1"]
    level = levels.take()
    p = tezos.attestation("ed", tezos.TEST_CHAIN, level, 0)
    ok, none, wrong = taquito_https(pki, [
        remote_sign(mtls_stack.https, tz1, p, cert=str(pki / "client")),
        remote_sign(mtls_stack.https, tz1, p),
        remote_sign(mtls_stack.https, tz1, p, cert=str(pki / "wrong")),
    ])
    assert ok["ok"], ok
    tezos.verify(tz1.pk, ok["prefixSig"], p)
    for r in (none, wrong):
        assert not r["ok"] and r["status"] is None, f"served without the right certificate: {r}"

    # Python's ssl client: refused without a certificate or with another CA's, and nothing was
    # signed for them: the right client then signs other bytes at that same level and round.
    tried = tezos.preattestation("ed", tezos.TEST_CHAIN, level, 0)
    for cert in (None, "wrong"):
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            https_sign(mtls_stack.https, pki, tz1, tried, cert=cert)
    p2 = tezos.preattestation("ed", tezos.TEST_CHAIN, level, 0)
    status, body = https_sign(mtls_stack.https, pki, tz1, p2, cert="client")
    assert status == 200, body
    tezos.verify(tz1.pk, body["signature"], p2)
