"""A real Prometheus (Debian's `prometheus`) scrapes a running `pawl serve` (with its own
`pawl-sim board --pty`) every second; after a few signatures and a refused double signature,
every PromQL expression of packaging/grafana-dashboard.json and packaging/prometheus-alerts.yml
goes through Prometheus's HTTP API and must return series. An alert expression whose condition
is false returns nothing, so it is also asked with `bool` after its comparison (the same
selectors and arithmetic, answered 0 or 1 per series); the watermark alert, whose condition
the test brings about, must fire as written. Prometheus loads the rule file too: every rule
must evaluate without error. Prometheus dies with the test."""

import json
import re
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

import procs
import tezos
from conftest import KEY_SPECS, make_stack

PACKAGING = procs.REPO / "packaging"
DASHBOARD = PACKAGING / "grafana-dashboard.json"
ALERTS = PACKAGING / "prometheus-alerts.yml"
TZ1 = next(s for s in KEY_SPECS if s.name == "tz1")
CHAIN = tezos.TEST_CHAIN

# Grafana's variables, as Grafana would fill them for a short range.
GRAFANA_VARS = {"$__rate_interval": "20s", "$__interval": "5s", "$__range": "1m"}


def dashboard_exprs() -> list[tuple[str, str]]:
    dash = json.loads(DASHBOARD.read_text())
    out = []
    for panel in dash["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for var, value in GRAFANA_VARS.items():
                expr = expr.replace(var, value)
            assert "$" not in expr, f"unsubstituted variable in {target['expr']!r}"
            out.append((f"panel {panel['title']!r} {target['refId']}", expr))
    return out


def alert_exprs() -> list[tuple[str, str]]:
    """(alert name, expr): the rule file keeps each `expr:` on one line after its `- alert:`."""
    rules, name = [], None
    for line in ALERTS.read_text().splitlines():
        m = re.match(r"\s*- alert: (\S+)\s*$", line)
        if m:
            name = m.group(1)
            continue
        m = re.match(r"\s*expr: (.+?)\s*$", line)
        if m:
            assert name, f"expr before any alert: {line!r}"
            rules.append((name, m.group(1)))
            name = None
    assert len(rules) == ALERTS.read_text().count("- alert:"), "an alert without a one-line expr"
    return rules


def with_bool(expr: str) -> str:
    """`expr` with `bool` after its last top-level comparison operator: the comparison then
    answers 0 or 1 for every series instead of filtering them out."""
    depth, quote, at = 0, None, None
    i = 0
    while i < len(expr):
        c = expr[i]
        if quote:
            if c == "\\":
                i += 2
                continue
            if c == quote:
                quote = None
        elif c in "\"'`":
            quote = c
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif depth == 0:
            two = expr[i:i + 2]
            if two in ("==", "!=", ">=", "<="):
                at = (i, 2)
                i += 2
                continue
            if c in "<>":
                at = (i, 1)
        i += 1
    assert at, f"no top-level comparison in {expr!r}"
    pos = at[0] + at[1]
    return f"{expr[:pos]} bool{expr[pos:]}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Prometheus(procs.Proc):
    def __init__(self, root: Path, target: str):
        root.mkdir(parents=True, exist_ok=True)
        config = root / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n"
            f"rule_files:\n  - {ALERTS}\n"
            "scrape_configs:\n  - job_name: pawl\n"
            f"    static_configs:\n      - targets: ['{target}']\n")
        self.port = free_port()
        super().__init__("prometheus", [
            shutil.which("prometheus"), f"--config.file={config}",
            f"--storage.tsdb.path={root / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn",
        ], root)
        deadline = time.monotonic() + 30
        while True:
            try:
                self.api("/-/ready")
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"prometheus did not start\n{self.log_tail()}")
                time.sleep(0.2)

    def api(self, path: str, **params) -> dict:
        url = f"http://127.0.0.1:{self.port}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=10) as r:
            body = r.read()
        return json.loads(body) if path.startswith("/api/") else {}

    def query(self, expr: str) -> list:
        answer = self.api("/api/v1/query", query=expr)
        assert answer["status"] == "success", (expr, answer)
        return answer["data"]["result"]

    def wait_for(self, expr: str, timeout: float = 30) -> list:
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(expr)
            if result or time.monotonic() > deadline:
                return result
            time.sleep(0.5)


@pytest.fixture(scope="module")
def scraped(bins, tmp_root):
    if not shutil.which("prometheus"):
        pytest.fail("prometheus is not installed (tests/setup installs Debian's)")
    stack, keys = make_stack(bins, tmp_root, "prometheus", [TZ1])
    key = keys["tz1"]
    metrics = urllib.parse.urlsplit(stack.bridge.metrics_url)
    prom = Prometheus(tmp_root / "prometheus", metrics.netloc)
    yield stack, key, prom
    prom.stop()
    stack.stop()


def test_every_dashboard_and_alert_expression_returns_series(scraped):
    stack, key, prom = scraped
    started = time.monotonic()
    assert prom.wait_for('up{job="pawl"} == 1'), prom.log_tail()
    # A few signatures, then a double signature (a watermark refusal).
    level = 50
    for i in range(4):
        status, body = stack.bridge.sign(key.pkh, tezos.attestation("ed", CHAIN, level + i, 0))
        assert status == 200, (status, body)
    status, body = stack.bridge.sign(key.pkh, tezos.attestation("ed", CHAIN, level + 3, 0))
    assert status == 409, (status, body)
    # The bridge reads the board every 5 s; then a window of scrapes for rate() and increase().
    labels = f'pkh="{key.pkh}",kind="attestation"'
    assert prom.wait_for(f"pawl_mark_level{{{labels}}} == {level + 3}"), \
        prom.query("pawl_mark_level")
    time.sleep(3)

    empty = []
    for where, expr in dashboard_exprs():
        if not prom.query(expr):
            empty.append(f"{where}: {expr}")
    fired = set()
    for name, expr in alert_exprs():
        if prom.query(expr):
            fired.add(name)
        elif not prom.query(with_bool(expr)):
            empty.append(f"alert {name}: {with_bool(expr)}")
    assert not empty, "expressions without series:\n" + "\n".join(empty)
    # What the test did, the rules saw; a healthy board raises nothing else that is critical.
    assert "PawlWatermarkRefusals" in fired, fired
    assert not fired & {"PawlDown", "PawlBoardDown", "PawlStoreRefusing",
                        "PawlWriteBudgetRefusals"}, fired

    # Prometheus evaluated every rule of the file without error.
    groups = prom.api("/api/v1/rules")["data"]["groups"]
    rules = [r for g in groups for r in g["rules"]]
    assert len(rules) == len(alert_exprs())
    bad = [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"]
    assert not bad, bad
    print(f"prometheus: {len(dashboard_exprs())} dashboard and {len(rules)} alert expressions "
          f"answered; firing: {sorted(fired)}; {time.monotonic() - started:.1f} s")


def test_promtool_accepts_the_rules():
    out = subprocess.run(["promtool", "check", "rules", str(ALERTS)], capture_output=True,
                         text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {len(alert_exprs())} rules found" in out.stdout, out.stdout
