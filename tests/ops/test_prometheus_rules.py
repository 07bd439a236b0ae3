"""Prometheus rules and scrape config: valid for promtool, unit-tested with series, and
written against the metric catalog rather than against names someone remembered."""

from __future__ import annotations

import re
import shutil
import subprocess

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


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_promtool(), *args], cwd=PROM_DIR, capture_output=True, text=True, timeout=120
    )


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
