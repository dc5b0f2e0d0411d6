"""Processes under test: `pawl-sim board --pty` and `pawl serve`, each a separate OS process on
127.0.0.1 with ports chosen by the OS, plus the `pawl` CLI and the Taquito driver. Every call
has a timeout; every process is killed at teardown; nothing reads this process's stdin."""

import http.client
import json
import os
import queue
import signal
import subprocess
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent

START_TIMEOUT = float(os.environ.get("PAWL_E2E_START_TIMEOUT", "30"))
CLI_TIMEOUT = 60
HTTP_TIMEOUT = 15

_live: list["Proc"] = []


class Proc:
    """A child process whose stdout is drained into a log by a thread (first lines are also
    handed to a queue so the harness can wait for the announcement line)."""

    def __init__(self, name: str, argv: list[str], log_dir: Path):
        self.name = name
        self.argv = argv
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "ab", buffering=0)
        self._log.write(f"$ {' '.join(argv)}\n".encode())
        self.lines: queue.Queue[str] = queue.Queue()
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._log,
            start_new_session=True,
        )
        _live.append(self)
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self._log.write(b"[stdout] " + raw)
            self.lines.put(raw.decode(errors="replace").rstrip("\n"))

    def wait_line(self, prefix: str, timeout: float = START_TIMEOUT) -> str:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{self.name}: no line starting with {prefix!r} within "
                                   f"{timeout}s\n{self.log_tail()}")
            try:
                line = self.lines.get(timeout=min(left, 0.2))
            except queue.Empty:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.name} exited with {self.proc.returncode} before "
                                       f"printing {prefix!r}\n{self.log_tail()}")
                continue
            if line.startswith(prefix):
                return line[len(prefix):].strip()

    def log_tail(self, n: int = 40) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return f"--- last lines of {self.log_path} ---\n" + "\n".join(lines[-n:])

    def kill9(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self in _live:
            _live.remove(self)
        self._log.close()


def kill_all():
    for p in list(_live):
        try:
            p.stop()
        except Exception:  # teardown must go on
            pass


class Binaries:
    def __init__(self):
        profile = os.environ.get("PAWL_E2E_PROFILE", "debug")
        if os.environ.get("PAWL_E2E_NO_BUILD") != "1":
            # The same selection as `cargo test --workspace` (tests/run builds that first): with
            # the tests' dev-dependencies in the feature resolution, every unit is the one the
            # test build made and nothing is compiled again. `-p pawl-bridge -p pawl-hsm-sim`
            # alone resolves other features and rebuilds the HTTP and TLS stacks (~40 s).
            argv = ["cargo", "build", "--workspace", "--bins", "--tests", "--locked"]
            if profile == "release":
                argv.append("--release")
            subprocess.run(argv, cwd=REPO, check=True, stdin=subprocess.DEVNULL, timeout=1800)
        meta = subprocess.run(["cargo", "metadata", "--format-version", "1", "--no-deps"],
                              cwd=REPO, check=True, capture_output=True, timeout=120,
                              stdin=subprocess.DEVNULL)
        target = Path(json.loads(meta.stdout)["target_directory"]) / profile
        self.sim = str(target / "pawl-sim")
        # PAWL_E2E_PAWL points the suite at another `pawl` binary (an installed one, say).
        self.pawl = os.environ.get("PAWL_E2E_PAWL") or str(target / "pawl")


def publish_pty(pty: str, link: Path) -> None:
    """Point the stable device path `link` at `pty` (atomically: a bridge reconnecting by path
    never sees it missing)."""
    tmp = link.with_suffix(".tmp")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(pty)
    os.replace(tmp, link)


class Sim(Proc):
    """`pawl-sim board --pty`; the pty path is also published through a stable symlink so a
    restarted board (new /dev/pts/N) is found again at the same device path."""

    def __init__(self, bins: Binaries, home: Path, log_dir: Path, link: Path,
                 operational: bool = False, name: str = "pawl-sim"):
        argv = [bins.sim, "board", "--pty", "--home", str(home)]
        if operational:
            argv.append("--operational")
        super().__init__(name, argv, log_dir)
        self.home = home
        self.pty = self.wait_line("pty: ")
        publish_pty(self.pty, link)
        self.device = link


class Bridge(Proc):
    """`pawl serve` on 127.0.0.1:0 with its metrics on 127.0.0.1:0."""

    def __init__(self, bins: Binaries, home: Path, device: Path | None, log_dir: Path,
                 name: str = "pawl-serve"):
        # device None: the boards of <home>/pawl.toml.
        argv = [bins.pawl, "serve", "--home", str(home),
                *(["--device", str(device)] if device is not None else []),
                "--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:0"]
        super().__init__(name, argv, log_dir)
        self.home = home
        self.url = self.wait_line("listening on ")
        assert self.url.startswith("http://127.0.0.1:"), self.url
        u = urllib.parse.urlsplit(self.url)
        self.host, self.port = u.hostname, u.port
        self.metrics_url = None
        try:
            self.metrics_url = self.wait_line("metrics on ", timeout=5)
        except (TimeoutError, RuntimeError):
            pass

    # -- HTTP, with plain http.client so that status codes and bodies are seen as sent --------
    def request(self, method: str, path: str, body: bytes | None = None,
                timeout: float = HTTP_TIMEOUT) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            headers = {"Content-Type": "application/json"} if body is not None else {}
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def public_key(self, pkh: str) -> tuple[int, dict | bytes]:
        status, body = self.request("GET", f"/keys/{pkh}")
        return status, _json(body)

    def sign(self, pkh: str, payload: bytes, version: int | None = None,
             timeout: float = HTTP_TIMEOUT) -> tuple[int, dict | bytes]:
        path = f"/keys/{pkh}" + (f"?version={version}" if version is not None else "")
        status, body = self.request("POST", path, json.dumps(payload.hex()).encode(),
                                    timeout=timeout)
        return status, _json(body)


def _json(body: bytes):
    try:
        return json.loads(body)
    except ValueError:
        return body


def pawl_cli(bins: Binaries, args: list[str], stdin_text: str | None = None) -> str:
    """Run the `pawl` CLI; the secret (if any) goes through a pipe, never argv or logs."""
    r = subprocess.run([bins.pawl, *args], input=(stdin_text or "").encode(),
                       capture_output=True, timeout=CLI_TIMEOUT)
    if r.returncode != 0:
        raise RuntimeError(f"pawl {args[0]} {args[1] if len(args) > 1 else ''} failed "
                           f"({r.returncode}): {r.stderr.decode(errors='replace')[-2000:]}")
    return r.stdout.decode()


def taquito(commands: list[dict], timeout: float = 120,
            env: dict[str, str] | None = None) -> list[dict]:
    """Run a batch of Taquito commands (see taquito.mjs) in one node process; `env` adds
    environment variables (NODE_EXTRA_CA_CERTS for HTTPS)."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(commands, f)
        path = f.name
    try:
        r = subprocess.run(["node", str(HERE / "taquito.mjs"), path], cwd=HERE,
                           capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL,
                           env={**os.environ, **(env or {})})
    finally:
        os.unlink(path)
    if r.returncode != 0:
        raise RuntimeError(f"taquito driver failed: {r.stderr.decode(errors='replace')[-3000:]}")
    results = json.loads(r.stdout)
    assert len(results) == len(commands)
    return results
