"""Metrics tell the truth from the first scrape: a real Prometheus scrapes freshly started
ingest, classify and route, and every recording rule, alert expression, dashboard query and
dashboard variable is evaluated against what it collected.

Before any traffic each one must be a number (a share of 0, a count of 0), never NaN, and
never empty, except where emptiness is the designed answer: a percentile of a histogram
with no observation (recording rules leave it out, panels say "no observations") and a
"worst agencies" table with nobody to list (its panel's ``noValue`` says so). Every rule must
evaluate without error and no alert may be pending. Then one signed and one forged webhook
go through, and the first event of each series counts: ``increase()`` sees it, and every
percentile whose histogram observed something becomes a number.

Prometheus is Debian's ``prometheus`` package (``deploy/scripts/ensure-tools.sh promtool``
installs it for ``make test``); the services run as real subprocesses on the broker fixture,
each with its own registry, as in a deployment."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from common.topics import CLASSIFIED, COMMANDS, MESSAGES, ROUTES, SLA
from services.demo.generator import instagram_comment
from services.ingest.signatures import meta_signature
from tests.ops.metric_names import DEPLOY, REPO, RULES_DIR

pytestmark = pytest.mark.kafka

SECRET = "fresh-start-app-secret"
JOBS = ("ingest", "classify", "route", "desk", "notify")
PERCENTILE = re.compile(r"histogram_quantile|:p\d+_")
THRESHOLD = re.compile(r"\s*(?:==|!=|>=|<=|>|<)\s*(?:bool\s+)?-?\d+(?:\.\d+)?(?:e[+-]?\d+)?")
VARIABLES = {"$platform": ".*", "$agency": ".*", "$processor": ".*", "$clock": ".*"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str, timeout: float = 3.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


def wait_for(what: str, condition: Callable[[], bool], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f}s")
        time.sleep(0.2)


@dataclass
class Service:
    name: str
    process: subprocess.Popen[bytes]
    ports: tuple[int, ...]  # where /metrics may be served, tried in order
    log: Path
    metrics_port: int = 0
    terminated: bool = False

    def find_metrics(self) -> bool:
        for port in self.ports:
            status, body = _get(f"http://127.0.0.1:{port}/metrics")
            if status == 200 and b"aduan_" in body:
                self.metrics_port = port
                return True
        if self.process.poll() is not None:
            raise AssertionError(f"{self.name} exited: {self.log.read_text()[-2000:]}")
        return False

    def ready(self) -> bool:
        return _get(f"http://127.0.0.1:{self.metrics_port}/readyz")[0] == 200

    def terminate(self) -> None:
        """Ask it to stop, once (a second SIGTERM may cut a graceful shutdown short)."""
        if self.process.poll() is None and not self.terminated:
            self.process.send_signal(signal.SIGTERM)
            self.terminated = True

    def stop(self) -> None:
        self.terminate()
        if self.process.poll() is None:
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


class Prometheus:
    def __init__(self, binary: str, workdir: Path, targets: dict[str, int]) -> None:
        self.port = _free_port()
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(p) for p in sorted(RULES_DIR.glob("*.yml"))],
            "scrape_configs": [
                {"job_name": f"aduan-{name}", "static_configs": [{"targets": [f"127.0.0.1:{p}"]}]}
                for name, p in targets.items()
            ],
        }
        path = workdir / "prometheus.yml"
        path.write_text(yaml.safe_dump(config))
        self.log = workdir / "prometheus.log"
        self.process = subprocess.Popen(
            [
                binary,
                f"--config.file={path}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
        )

    def api(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        status, body = _get(f"http://127.0.0.1:{self.port}/api/v1/{path}?{query}", timeout=10)
        payload = json.loads(body or b"{}")
        if status != 200 or payload.get("status") != "success":
            raise AssertionError(f"{path} {params}: {status} {payload.get('error', body[:300])}")
        return payload["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.api("query", query=expr)
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        return list(data["result"])

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()


@dataclass
class Stack:
    prometheus: Prometheus
    services: dict[str, Service]
    http_port: int


@pytest.fixture(scope="module")
def stack(
    kafka_bootstrap: str, postgres_server: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip(
            "prometheus not found: run deploy/scripts/ensure-tools.sh promtool (Debian's "
            "'prometheus' package) to evaluate the rules against freshly started services"
        )
    work = tmp_path_factory.mktemp("fresh-start")
    prefix = f"fresh{os.getpid()}{int(time.time()) % 100000}."
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "ADUAN_TOPIC_PREFIX": prefix,
        "ADUAN_CONSUMER_GROUP_PREFIX": prefix.rstrip("."),
        "ADUAN_HTTP_HOST": "127.0.0.1",
        "ADUAN_PSEUDONYM_KEY": "fresh-start-pseudonym-key",
        "ADUAN_META_APP_SECRET": SECRET,
        "ADUAN_META_VERIFY_TOKEN": "fresh-start-verify",
        "ADUAN_ROUTE_DATA_DIR": str(work / "route-data"),
        "PYTHONUNBUFFERED": "1",
    }
    services: dict[str, Service] = {}
    http_port = _free_port()
    try:
        for name in JOBS:
            metrics_port = _free_port()
            own = {"ADUAN_METRICS_PORT": str(metrics_port)}
            ports: tuple[int, ...] = (metrics_port,)
            if name == "ingest":  # webhooks on the HTTP port; /metrics there or on its own
                own["ADUAN_HTTP_PORT"] = str(http_port)
                ports = (metrics_port, http_port)
            if name == "desk":  # its API on a port of its own, its rows in a fresh database
                own["ADUAN_HTTP_PORT"] = str(_free_port())
                own["ADUAN_DESK_DATABASE_URL"] = _fresh_database(postgres_server)
            if name == "notify":  # the secrets the demo registry's channels name
                own["ADUAN_NOTIFY_DATABASE_URL"] = _fresh_database(postgres_server)
                own["ADUAN_TELEGRAM_BOT_TOKEN"] = "fresh-start-bot-token"
                own["ADUAN_WEBHOOK_LAPOR_SECRET"] = "fresh-start-webhook-secret"
            log = work / f"{name}.log"
            process = subprocess.Popen(
                [sys.executable, "-m", f"services.{name}"],
                cwd=REPO,
                env={**env, **own},
                stdout=log.open("wb"),
                stderr=subprocess.STDOUT,
            )
            services[name] = Service(name, process, ports, log)
        for service in services.values():
            wait_for(f"{service.name} serving /metrics", service.find_metrics)
        for service in services.values():
            wait_for(f"{service.name} ready", service.ready)
        prometheus = Prometheus(binary, work, {n: s.metrics_port for n, s in services.items()})
        try:
            wait_for(
                "prometheus ready",
                lambda: _get(f"http://127.0.0.1:{prometheus.port}/-/ready")[0] == 200,
                timeout=30,
            )
            yield Stack(prometheus, services, http_port)
        finally:
            prometheus.stop()
    finally:
        for service in services.values():  # all shut down at once, then each is awaited
            service.terminate()
        for service in services.values():
            service.stop()


def _fresh_database(server: str) -> str:
    import asyncio

    import asyncpg

    name = f"fresh_{os.getpid()}_{int(time.time() * 1000) % 10**8}"

    async def create() -> None:
        conn = await asyncpg.connect(server)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())
    return f"{server.rpartition('/')[0]}/{name}"


# --- what is evaluated ---------------------------------------------------------------------
def _rules() -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    for path in sorted(RULES_DIR.glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            rules.extend(group["rules"])
    return rules


def quantity(alert_expr: str) -> str:
    """What an alert compares with its thresholds: the expression without them (and with
    ``absent(x)`` read as ``x``), so it can be checked to be a number in a healthy state."""
    return THRESHOLD.sub("", alert_expr.replace("absent(", "("))


def _dashboard_queries() -> list[tuple[str, str, bool]]:
    """(where, expression, may be empty) for every panel target and query variable."""
    out: list[tuple[str, str, bool]] = []
    for path in sorted((DEPLOY / "grafana" / "dashboards").glob("*.json")):
        dash = json.loads(path.read_text())
        for p in dash["panels"]:
            hides = bool(p.get("fieldConfig", {}).get("defaults", {}).get("noValue"))
            for t in p.get("targets", []):
                expr = t["expr"].replace("$__range", "1h")
                for var, value in VARIABLES.items():
                    expr = expr.replace(var, value)
                out.append((f"{path.name}: {p['title']}", expr, hides))
        for v in dash["templating"]["list"]:
            if v["type"] == "query":
                m = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", v["definition"])
                assert m, v["definition"]
                out.append((f"{path.name}: ${v['name']}", f"count by ({m[2]}) ({m[1]})", False))
    return out


def _problem(result: list[dict[str, Any]], may_be_empty: bool) -> str | None:
    nan = [s["metric"] for s in result if math.isnan(float(s["value"][1]))]
    if nan:
        return f"NaN in {len(nan)} of {len(result)} series, e.g. {nan[0]}"
    values = [s["value"][1] for s in result]
    if not values and not may_be_empty:
        return "empty"
    return None


def idle_problems(prom: Prometheus) -> list[str]:
    problems: list[str] = []
    for rule in _rules():
        if "record" in rule:
            name = rule["record"]
            found = _problem(prom.query(name), bool(PERCENTILE.search(rule["expr"])))
        else:
            name = rule["alert"]
            expr = quantity(rule["expr"])
            found = _problem(prom.query(expr), bool(PERCENTILE.search(expr)))
        if found:
            problems.append(f"rule {name}: {found}")
    for where, expr, hides in _dashboard_queries():
        found = _problem(prom.query(expr), hides or bool(PERCENTILE.search(expr)))
        if found:
            problems.append(f"{where}: {expr}: {found}")
    for group in prom.api("rules")["groups"]:
        for rule in group["rules"]:
            if rule["health"] != "ok":
                problems.append(f"rule {rule['name']}: {rule['health']} {rule.get('lastError')}")
            if rule["type"] == "alerting" and rule["state"] != "inactive":
                problems.append(f"alert {rule['name']} is {rule['state']} on a healthy start")
    return problems


def _eventually(what: str, problems: Callable[[], list[str]], timeout: float = 60.0) -> None:
    """Until ``problems()`` is empty (scrapes and rule evaluations need a few seconds to
    have two samples of everything); at the deadline, fail listing what is still wrong."""
    deadline = time.monotonic() + timeout
    while True:
        found = problems()
        if not found:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}:\n  " + "\n  ".join(found))
        time.sleep(0.5)


# --- the tests -----------------------------------------------------------------------------
def test_every_rule_alert_and_panel_is_a_number_on_a_fresh_start(stack: Stack) -> None:
    prom = stack.prometheus
    wait_for(
        "all three jobs scraped",
        lambda: len(prom.query('up{job=~"aduan-.+"} == 1')) == len(JOBS),
        timeout=30,
    )
    _eventually("not a number on a fresh, idle start", lambda: idle_problems(prom))
    # the numbers are zeros, and the series behind them were created, not invented
    for expr in ("aduan:webhook_5xx:ratio_rate5m", "aduan:dead_letters:ratio_rate5m"):
        assert {float(s["value"][1]) for s in prom.query(expr)} == {0.0}, expr
    platforms = {s["metric"]["platform"] for s in prom.query("aduan:webhook_5xx:ratio_rate5m")}
    assert platforms == {"instagram", "facebook", "whatsapp", "x", "generic"}
    # consumer lag of every owned partition, idle ones included, from both kinds of consumer
    partitions = {
        (s["metric"]["processor"], s["metric"]["topic"]): int(float(s["value"][1]))
        for s in prom.query("count by (processor, topic) (aduan_consumer_lag_messages)")
    }
    assert partitions == {
        ("classify", MESSAGES.name): MESSAGES.partitions,
        ("route", CLASSIFIED.name): CLASSIFIED.partitions,
        ("route", COMMANDS.name): COMMANDS.partitions,
        ("desk", ROUTES.name): ROUTES.partitions,
        ("desk", SLA.name): SLA.partitions,
        ("desk", COMMANDS.name): COMMANDS.partitions,
        ("notify", ROUTES.name): ROUTES.partitions,
        ("notify", SLA.name): SLA.partitions,
    }


def _percentiles_with_observations(prom: Prometheus) -> list[str]:
    """Every percentile rule is a number wherever its histogram observed something."""
    problems: list[str] = []
    for rule in _rules():
        if "record" not in rule or not PERCENTILE.search(rule["expr"]):
            continue
        m = re.search(r"\n\s*and on \(([^)]*)\)\s*\n(.*)$", rule["expr"], re.S)
        assert m, f"{rule['record']}: no observation guard (`and on (...) <count> > 0`)"
        keys = [k.strip() for k in m[1].split(",") if k.strip()]
        observed = {tuple(s["metric"].get(k, "") for k in keys) for s in prom.query(m[2])}
        recorded = {
            tuple(s["metric"].get(k, "") for k in keys): float(s["value"][1])
            for s in prom.query(rule["record"])
        }
        for labels in observed:
            value = recorded.get(labels)
            if value is None or math.isnan(value):
                problems.append(f"{rule['record']}{dict(zip(keys, labels, strict=True))}: {value}")
    return problems


def test_the_first_event_of_every_series_counts(stack: Stack) -> None:
    prom = stack.prometheus
    url = f"http://127.0.0.1:{stack.http_port}/webhooks/instagram"
    for comment_id, secret, status in (
        ("17900000000019001", SECRET, 200),
        ("17900000000019002", "forged", 403),
    ):
        body = instagram_comment(comment_id, "Jalan rusak berlubang di Rungkut", author_id="990003")
        request = urllib.request.Request(
            url,
            data=body,
            headers={
                "Content-Type": "application/json",
                "X-Hub-Signature-256": meta_signature(secret, body),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:
                got = resp.status
        except urllib.error.HTTPError as exc:
            got = exc.code
        assert got == status

    def first_events() -> list[str]:
        problems = []
        for expr in (
            'increase(aduan_webhook_requests_total{platform="instagram",outcome="accepted"}[5m])',
            'increase(aduan_webhook_requests_total{platform="instagram",outcome="forged"}[5m])',
            'sum(increase(aduan_routed_total{agency_id="sby-public-works"}[5m]))',
            'sum(increase(aduan_messages_in_total{processor="classify"}[5m]))',
        ):
            values = [float(s["value"][1]) for s in prom.query(expr)]
            if not values or values[0] < 1:
                problems.append(f"{expr} = {values}: the first event is lost")
        return problems + _percentiles_with_observations(prom)

    _eventually("after one accepted and one forged webhook", first_events)
    share = prom.query('aduan:webhook_5xx:ratio_rate5m{platform="instagram"}')
    assert [float(s["value"][1]) for s in share] == [0.0]
    assert idle_problems(prom) == []  # still numbers with traffic, and no alert
