"""AWS KMS for the end-to-end tests: LocalStack (its KMS only, run on the host without Docker,
installed by tests/setup in tests/e2e/localstack/.venv) and a counting, fault-injecting proxy
between `pawl` and LocalStack.

LocalStack has no fault switch, so the proxy provides the faults: ThrottlingException (HTTP
400, as KMS sends it), KMSInternalException (HTTP 500), and a Sign forwarded with another
key's id (a well-formed signature by the wrong key). It counts requests by KMS action, so a
test can show that a refusal or a retry reached no KMS, and it reads every DER signature that
passes, so a test can show that KMS did hand out high-S secp256k1 signatures."""

import base64
import http.client
import http.server
import json
import os
import socket
import sys
import threading
import urllib.request
from pathlib import Path

import procs

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
VENV = procs.HERE / "localstack" / ".venv"
REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalStack(procs.Proc):
    """LocalStack's runtime on 127.0.0.1:<free port>, SERVICES=kms, state under `root`. It gets
    SIGTERM if the test process dies (PR_SET_PDEATHSIG), and at teardown like every Proc."""

    def __init__(self, root: Path, log_dir: Path):
        python = VENV / "bin" / "python"
        if not python.exists():
            raise RuntimeError(f"{python} is missing: run tests/setup (it installs LocalStack)")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        (root / "tmp").mkdir(parents=True, exist_ok=True)
        env = {
            "GATEWAY_LISTEN": f"127.0.0.1:{self.port}",
            "GATEWAY_SERVER": "hypercorn",  # the default (twisted) needs service_identity
            "SERVICES": "kms",
            "EAGER_SERVICE_LOADING": "1",
            "DNS_ADDRESS": "0",  # no DNS server of its own
            "DISABLE_EVENTS": "1",  # no analytics
            "SKIP_SSL_CERT_DOWNLOAD": "1",
            "FILESYSTEM_ROOT": str(root / "fs"),
            "TMPDIR": str(root / "tmp"),
        }
        # 1 = PR_SET_PDEATHSIG; it survives exec.
        start = ("import ctypes, os, signal, sys; "
                 "ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM); "
                 "os.execv(sys.executable, [sys.executable, '-m', 'localstack.runtime.main'])")
        old = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            super().__init__("localstack", [str(python), "-c", start], log_dir)
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        self.wait_line("Ready.", timeout=120)


def kms(url: str, action: str, body: dict) -> dict:
    """One KMS JSON call (test set-up: LocalStack checks no SigV4 signature; the region is read
    from the Authorization header's scope)."""
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": f"TrentService.{action}",
        "Authorization": f"AWS4-HMAC-SHA256 Credential=test/20260101/{REGION}/kms/aws4_request, "
                         "SignedHeaders=host, Signature=00",
    })
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def create_key(url: str, spec: str) -> str:
    meta = kms(url, "CreateKey", {"KeySpec": spec, "KeyUsage": "SIGN_VERIFY"})["KeyMetadata"]
    return meta["Arn"]


def der_rs(der: bytes) -> tuple[int, int]:
    """r, s of a DER ECDSA-Sig-Value (short form only: what a 256-bit curve gives)."""
    assert der[0] == 0x30 and der[1] == len(der) - 2, der.hex()
    out, i = [], 2
    for _ in range(2):
        assert der[i] == 0x02, der.hex()
        n = der[i + 1]
        out.append(int.from_bytes(der[i + 2:i + 2 + n], "big"))
        i += 2 + n
    assert i == len(der), der.hex()
    return out[0], out[1]


class Proxy:
    """HTTP proxy on 127.0.0.1:<port 0> in front of LocalStack, in this process's threads."""

    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        self.lock = threading.Lock()
        self.counts: dict[str, int] = {}
        self.throttle = 0  # the next N Signs answer ThrottlingException
        self.server_errors = 0  # the next N Signs answer KMSInternalException (HTTP 500)
        self.swap_key: str | None = None  # the next Sign is forwarded with this KeyId
        self.high_s: dict[str, int] = {}  # KeyId → high-S signatures KMS returned
        self.signatures: dict[str, int] = {}  # KeyId → signatures KMS returned
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                action = self.headers.get("X-Amz-Target", "?").rpartition(".")[2]
                fault = proxy._fault(action)
                if fault is not None:
                    return self._answer(*fault, {"Content-Type": "application/x-amz-json-1.1"})
                request = json.loads(body) if body else {}
                key_id = request.get("KeyId")
                if action == "Sign":
                    with proxy.lock:
                        swap, proxy.swap_key = proxy.swap_key, None
                    if swap:
                        request["KeyId"] = swap
                        body = json.dumps(request).encode()
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "content-length", "connection")}
                conn = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=30)
                try:
                    conn.request("POST", self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    out = {k: v for k, v in resp.getheaders()
                           if k.lower() not in ("content-length", "connection",
                                                "transfer-encoding")}
                    status = resp.status
                finally:
                    conn.close()
                if action == "Sign" and status == 200:
                    proxy._saw_signature(key_id, json.loads(data))
                self._answer(status, data, out)

            def _answer(self, status, data, headers):
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _fault(self, action: str):
        with self.lock:
            self.counts[action] = self.counts.get(action, 0) + 1
            if action != "Sign":
                return None
            if self.throttle > 0:
                self.throttle -= 1
                return 400, json.dumps({"__type": "ThrottlingException",
                                        "message": "Rate exceeded"}).encode()
            if self.server_errors > 0:
                self.server_errors -= 1
                return 500, json.dumps({"__type": "KMSInternalException",
                                        "message": "injected by the test proxy"}).encode()
        return None

    def _saw_signature(self, key_id: str, answer: dict):
        _, s = der_rs(base64.b64decode(answer["Signature"]))
        with self.lock:
            self.signatures[key_id] = self.signatures.get(key_id, 0) + 1
            if s > SECP256K1_N // 2:
                self.high_s[key_id] = self.high_s.get(key_id, 0) + 1

    def count(self, action: str = "Sign") -> int:
        with self.lock:
            return self.counts.get(action, 0)

    def reset_faults(self):
        with self.lock:
            self.throttle = self.server_errors = 0
            self.swap_key = None

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


if __name__ == "__main__":  # a manual look: python localstack_kms.py
    ls = LocalStack(Path(sys.argv[1]), Path(sys.argv[1]))
    print(ls.url, create_key(ls.url, "ECC_SECG_P256K1"))
    ls.stop()
