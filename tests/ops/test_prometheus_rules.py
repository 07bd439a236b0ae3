"""Prometheus rules and scrape config: valid for promtool, unit-tested with series, and
written against the metric catalog rather than against names someone remembered."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from tests.ops.metric_names import DEPLOY, REPO, RULES_DIR, exposed_series, recorded_in, series_in

PROM_DIR = DEPLOY / "prometheus"
RULE_FILES = sorted(RULES_DIR.glob("*.yml"))
TEST_FILES = sorted((PROM_DIR / "tests").glob("*.test.yml"))
RUNBOOK = REPO / "docs" / "operations.md"


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip(
            "promtool not found: run deploy/scripts/ensure-tools.sh promtool (installs Debian's "
            "'prometheus' package) to check and unit-test the Prometheus rules"
        )
    return found


def _run(*args: str, cwd: Path = PROM_DIR) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def _renderer() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "render_prometheusrule", DEPLOY / "scripts" / "render_prometheusrule.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rules() -> list[dict]:
    out: list[dict] = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            out.extend(group["rules"])
    return out


def _alerts() -> list[dict]:
    return [r for r in _rules() if "alert" in r]


def test_rule_files_exist() -> None:
    assert RULE_FILES and TEST_FILES


def test_promtool_check_rules() -> None:
    result = _run("check", "rules", *(str(p) for p in RULE_FILES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_check_config() -> None:
    result = _run("check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests() -> None:
    result = _run("test", "rules", *(str(p) for p in TEST_FILES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_rules_use_only_catalog_metrics() -> None:
    exposed = exposed_series()
    recorded = {r["record"] for r in _rules() if "record" in r}
    for rule in _rules():
        unknown = series_in(rule["expr"]) - exposed
        assert not unknown, f"{rule.get('alert') or rule.get('record')}: unknown {unknown}"
        undefined = recorded_in(rule["expr"]) - recorded
        assert not undefined, f"{rule.get('alert') or rule.get('record')}: {undefined}"


def test_recording_rule_names_follow_convention() -> None:
    for rule in _rules():
        if "record" in rule:
            assert re.fullmatch(r"aduan:[a-z0-9_]+:[a-z0-9_]+", rule["record"]), rule["record"]


def test_every_alert_is_documented_and_classified() -> None:
    runbook = RUNBOOK.read_text(encoding="utf-8")
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in runbook.splitlines()
        if line.startswith("#")
    }
    for alert in _alerts():
        name = alert["alert"]
        assert alert["labels"]["severity"] in {"critical", "warning", "info"}, name
        for key in ("summary", "description", "runbook_url"):
            assert alert["annotations"].get(key), f"{name}: no {key}"
        anchor = alert["annotations"]["runbook_url"].partition("#")[2]
        assert anchor == name.lower(), name
        assert anchor in anchors, f"{name}: docs/operations.md has no heading '### {name}'"


def test_every_alert_has_a_unit_test_that_fires_it() -> None:
    fired: set[str] = set()
    for path in TEST_FILES:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                if check.get("exp_alerts"):
                    fired.add(check["alertname"])
    missing = {a["alert"] for a in _alerts()} - fired
    assert not missing, f"alerts never shown to fire in a promtool test: {sorted(missing)}"


def test_scrape_jobs_match_alert_job_names() -> None:
    config = yaml.safe_load((PROM_DIR / "prometheus.yml").read_text())
    jobs = {j["job_name"] for j in config["scrape_configs"]}
    assert {"aduan-ingest", "aduan-classify", "aduan-route"} <= jobs
    absent_rule = next(a for a in _alerts() if a["alert"] == "AduanProcessorAbsent")
    for job in ("aduan-ingest", "aduan-classify", "aduan-route"):
        assert f'job="{job}"' in absent_rule["expr"]


def test_runbook_urls_are_absolute_under_the_one_configured_base() -> None:
    base = _renderer().runbook_base()
    assert base.startswith("https://")
    for alert in _alerts():
        assert alert["annotations"]["runbook_url"] == f"{base}#{alert['alert'].lower()}"
    for path in TEST_FILES:  # the promtool tests assert the same URLs
        for url in re.findall(r'runbook_url: "([^"]+)"', path.read_text()):
            assert url.startswith(base + "#"), url


def test_a_new_runbook_base_rewrites_rules_tests_and_the_prometheusrule(tmp_path: Path) -> None:
    renderer = _renderer()
    deploy = tmp_path / "deploy"
    shutil.copytree(PROM_DIR, deploy / "prometheus")
    (deploy / "kubernetes").mkdir()
    base = "https://wiki.surabaya.example.go.id/aduan/runbook"
    assert renderer.main(["--runbook-base", base], deploy=deploy) == 0
    texts = [p.read_text() for p in renderer.rule_and_test_files(deploy)]
    texts.append((deploy / "kubernetes" / "prometheusrule.yaml").read_text())
    urls = [u for text in texts for u in re.findall(r'runbook_url: "?([^"\s]+)', text)]
    assert len(urls) >= 3 * len(_alerts())  # rules, promtool tests, PrometheusRule
    assert all(u.startswith(base + "#aduan") for u in urls), urls
    assert (
        _run(
            "check", "rules", *map(str, (deploy / "prometheus" / "rules").glob("*.yml"))
        ).returncode
        == 0
    )
    tested = _run("test", "rules", "tests/alerts.test.yml", cwd=deploy / "prometheus")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert renderer.main(["--runbook-base", "docs/operations.md"], deploy=deploy) == 2


_SHARE_OR_PERCENTILE = re.compile(r"ratio|histogram_quantile|:p\d+_")
_MIN_COUNT = re.compile(r"increase\([^)]*\[\w+\]\)\)\s*>=\s*\d+")


def test_shares_and_percentiles_alert_only_above_a_minimum_count() -> None:
    """One forged probe or one slow message on a quiet night is a 100% share or an
    hour-long p99; an alert on a share or a percentile also needs enough events."""
    checked = 0
    for alert in _alerts():
        expr = alert["expr"]
        if _SHARE_OR_PERCENTILE.search(expr):
            checked += 1
            assert _MIN_COUNT.search(expr), f"{alert['alert']}: no minimum count"
    assert checked >= 4


def test_alerts_on_process_health_are_disjoint() -> None:
    """One outage pages once: ``up`` alerts split into no target / no instance up / one of
    several down, and no two of them can hold for the same job at once."""
    by_name = {a["alert"]: a["expr"] for a in _alerts()}
    assert "max by (job)" in by_name["AduanProcessorDown"]
    assert "== 0" in by_name["AduanProcessorDown"]
    assert "absent(" in by_name["AduanProcessorAbsent"]
    assert "max by (job)" not in by_name["AduanProcessorAbsent"]
    assert "== 1" in by_name["AduanInstanceDown"]  # only while the job still runs
    up_alerts = [n for n, e in by_name.items() if re.search(r"\bup\{", e)]
    assert sorted(up_alerts) == ["AduanInstanceDown", "AduanProcessorAbsent", "AduanProcessorDown"]
