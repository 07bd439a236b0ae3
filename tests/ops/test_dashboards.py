"""Grafana dashboards: generated JSON in sync with its generator, every query written against
real metric names or recording rules, the variables ops asked for, one provisioned
datasource uid."""

from __future__ import annotations

import importlib.util
import json
import re
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.ops.metric_names import DEPLOY, RULES_DIR, exposed_series, recorded_in, series_in

GRAFANA = DEPLOY / "grafana"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "build_dashboards", GRAFANA / "build_dashboards.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _dashboards() -> dict[str, dict[str, Any]]:
    return {
        p.name: json.loads(p.read_text(encoding="utf-8"))
        for p in sorted((GRAFANA / "dashboards").glob("*.json"))
    }


def _targets(dash: dict[str, Any]) -> list[dict[str, Any]]:
    return [t for p in dash["panels"] for t in p.get("targets", [])]


def _recorded_names() -> set[str]:
    names: set[str] = set()
    for path in RULES_DIR.glob("*.yml"):
        for group in yaml.safe_load(path.read_text())["groups"]:
            names.update(r["record"] for r in group["rules"] if "record" in r)
    return names


def test_committed_json_matches_generator() -> None:
    rendered = _generator().render()
    on_disk = {
        p.name: p.read_text(encoding="utf-8") for p in (GRAFANA / "dashboards").glob("*.json")
    }
    assert rendered == on_disk, "run: python deploy/grafana/build_dashboards.py"


def test_the_three_dashboards_exist_with_unique_uids() -> None:
    dashes = _dashboards()
    assert set(dashes) == {"pipeline.json", "sla.json", "ingest.json"}
    uids = [d["uid"] for d in dashes.values()]
    assert len(set(uids)) == len(uids)


@pytest.mark.parametrize("name", ["pipeline.json", "sla.json", "ingest.json"])
def test_queries_use_only_catalog_metrics_and_defined_recording_rules(name: str) -> None:
    dash = _dashboards()[name]
    exposed, recorded = exposed_series(), _recorded_names()
    queries = [t["expr"] for t in _targets(dash)]
    queries += [v["definition"] for v in dash["templating"]["list"] if v["type"] == "query"]
    assert queries
    for expr in queries:
        assert not series_in(expr) - exposed, f"{name}: {expr}"
        assert not recorded_in(expr) - recorded, f"{name}: {expr}"


def test_variables_for_agency_and_platform() -> None:
    dashes = _dashboards()
    names = {n: {v["name"] for v in d["templating"]["list"]} for n, d in dashes.items()}
    assert "agency" in names["sla.json"] and "platform" in names["ingest.json"]
    assert {"agency", "platform", "processor"} <= names["pipeline.json"]
    for n, dash in dashes.items():
        text = json.dumps(dash["panels"])
        for var in names[n]:
            used = f"${var}" in text or f"${{{var}}}" in text
            assert used, f"{n}: variable ${var} is never used"


def test_panels_query_the_datasource_variable_and_fit_the_grid() -> None:
    ds = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())
    provisioned_uid = ds["datasources"][0]["uid"]
    for name, dash in _dashboards().items():
        variables = dash["templating"]["list"]
        first = variables[0]
        assert (first["name"], first["type"], first["query"]) == (
            "datasource",
            "datasource",
            "prometheus",
        )
        assert provisioned_uid not in json.dumps(dash), f"{name}: a hard-coded datasource uid"
        for v in variables[1:]:
            assert v["datasource"]["uid"] == "${datasource}", (name, v["name"])
        ids = [p["id"] for p in dash["panels"]]
        assert len(set(ids)) == len(ids), name
        for p in dash["panels"]:
            pos = p["gridPos"]
            assert pos["x"] + pos["w"] <= 24, (name, p["title"])
            if p["type"] != "row":
                assert p["datasource"]["uid"] == "${datasource}", (name, p["title"])
                assert p["targets"], (name, p["title"])
                for t in p["targets"]:
                    assert t["datasource"]["uid"] == "${datasource}", (name, p["title"])


def test_percentile_panels_say_why_they_may_be_empty() -> None:
    for name, dash in _dashboards().items():
        for p in dash["panels"]:
            exprs = " ".join(t["expr"] for t in p.get("targets", []))
            if "histogram_quantile" in exprs or re.search(r":p\d+_", exprs):
                assert p["fieldConfig"]["defaults"].get("noValue"), (name, p["title"])


def test_sla_dashboard_shows_open_overdue_escalated_and_response_distribution() -> None:
    exprs = " ".join(t["expr"] for t in _targets(_dashboards()["sla.json"]))
    for needle in ("open_complaints", "overdue", "escalated", "response_business_time_seconds"):
        assert needle in exprs
    assert re.search(r"topk\(10, aduan:sla_overdue", exprs)


def test_ingest_dashboard_shows_forged_and_5xx() -> None:
    exprs = " ".join(t["expr"] for t in _targets(_dashboards()["ingest.json"]))
    assert "aduan:webhook_forged:rate5m" in exprs and "aduan:webhook_5xx:ratio_rate5m" in exprs
