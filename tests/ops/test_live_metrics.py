"""The label values that alerts and dashboards filter on are the ones the running services
really emit. Rules are text: ``processor="classify"`` or ``since="received"`` spelled
differently from the code would give an alert that never fires and a panel that stays empty,
and promtool cannot know. So: start ingest, classify and route on the real broker, drive a
signed and a forged webhook through, scrape ``/metrics`` with prometheus-client's parser, and
check the series the rules select moved."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from common.settings import Settings
from schemas.sla import SlaEventType
from services.classify import processor as classify_processor
from services.demo.generator import instagram_comment as build_comment
from services.ingest import app as ingest_app
from services.ingest.signatures import meta_signature
from services.route.app import create_app
from tests.ops.metric_names import DEPLOY, REPO, RULES_DIR

pytestmark = pytest.mark.kafka

SECRET = "ops-test-app-secret"
IG_ACCOUNT = "17841400000000001"  # in deploy/config/registry.yaml
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def instagram_comment(comment_id: str, text: str) -> bytes:
    return build_comment(comment_id, text, author_id="990002", media_id="18000000000000009")


@pytest.fixture
async def services(
    kafka_bootstrap: str, topic_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Settings]:
    monkeypatch.setenv("ADUAN_META_APP_SECRET", SECRET)
    monkeypatch.setenv("ADUAN_META_VERIFY_TOKEN", "ops-verify")
    settings = Settings().model_copy(
        update={
            "bootstrap_servers": kafka_bootstrap,
            "topic_prefix": topic_prefix,
            "consumer_group_prefix": topic_prefix.rstrip("."),
            "http_port": 0,
            "metrics_port": 0,
            "pseudonym_key": SecretStr("ops-pseudonym-key"),
            "rebalance_timeout_s": 4.0,
        }
    )
    runner, service = await ingest_app.start(settings)
    stop = asyncio.Event()
    classify = asyncio.create_task(classify_processor.run(settings, stop))
    route = create_app(settings).app
    await route.start()
    assert service.ops_port is not None
    try:
        yield settings.model_copy(
            update={"http_port": service.port, "metrics_port": service.ops_port}
        )
    finally:
        stop.set()
        await route.stop()
        await classify
        await ingest_app.stop(runner, service)


async def scrape(session: aiohttp.ClientSession, port: int) -> Samples:
    async with session.get(f"http://127.0.0.1:{port}/metrics") as resp:
        assert resp.status == 200
        text = await resp.text()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    """Increase, summed over every series of ``name`` whose labels include ``labels``."""
    want = set(labels.items())
    total = 0.0
    for (n, lbls), value in after.items():
        if n == name and want <= lbls:
            total += value - before.get((n, lbls), 0.0)
    return total


async def test_series_selected_by_rules_and_dashboards_move(services: Settings) -> None:
    port = services.metrics_port
    assert port is not None
    async with aiohttp.ClientSession() as session:
        # the webhook port (the public one) serves no metrics and no readiness
        for path in ("/metrics", "/readyz"):
            async with session.get(f"http://127.0.0.1:{services.http_port}{path}") as resp:
                assert resp.status == 404
        before = await scrape(session, port)
        url = f"http://127.0.0.1:{services.http_port}/webhooks/instagram"
        good = instagram_comment("17900000000009001", "Jalan rusak berlubang di Rungkut")
        forged = instagram_comment("17900000000009002", "Lampu jalan mati")
        for body, secret, status in ((good, SECRET, 200), (forged, "wrong", 403)):
            headers = {
                "Content-Type": "application/json",
                "X-Hub-Signature-256": meta_signature(secret, body),
            }
            async with session.post(url, data=body, headers=headers) as resp:
                assert resp.status == status

        deadline = time.monotonic() + 60
        while True:
            after = await scrape(session, port)
            if moved(before, after, "aduan_routed_total") >= 1:
                break
            assert time.monotonic() < deadline, "route never counted the complaint"
            await asyncio.sleep(0.1)

    # ingest: outcomes the 5xx / forged alerts and the ingest dashboard select on
    webhook = "aduan_webhook_requests_total"
    assert moved(before, after, webhook, platform="instagram", outcome="accepted") == 1
    assert moved(before, after, webhook, platform="instagram", outcome="forged") == 1
    assert moved(before, after, "aduan_produce_duration_seconds_count", topic="aduan.raw.v1") >= 1
    assert moved(before, after, "aduan_webhook_entries_total", outcome="message") >= 1
    # processors: the `processor` values of the pipeline dashboard and dead-letter alert
    assert moved(before, after, "aduan_messages_in_total", processor="classify") >= 1
    assert moved(before, after, "aduan_messages_in_total", processor="route") >= 1
    assert moved(before, after, "aduan_messages_out_total", processor="classify") >= 1
    latency = "aduan_pipeline_latency_seconds_count"
    assert moved(before, after, latency, processor="classify", since="received") >= 1
    assert moved(before, after, latency, processor="classify", since="platform") >= 1
    assert moved(before, after, latency, processor="route", since="received") >= 1
    # SLA dashboard: agency ids from the registry
    assert moved(before, after, "aduan_routed_total", agency_id="sby-public-works") >= 1
    open_now = [
        v
        for (n, lbls), v in after.items()
        if n == "aduan_open_complaints" and ("agency_id", "sby-public-works") in lbls
    ]
    assert open_now and open_now[0] >= 1


def _rule_and_dashboard_text() -> str:
    parts = [p.read_text() for p in RULES_DIR.glob("*.yml")]
    parts += [p.read_text() for p in (DEPLOY / "grafana" / "dashboards").glob("*.json")]
    return "\n".join(parts).replace('\\"', '"')


def _literal_values(label: str, text: str) -> set[str]:
    values: set[str] = set()
    for op, raw in re.findall(rf'\b{label}\s*(=~|!~|=|!=)\s*"([^"$]*)"', text):
        values.update(raw.split("|") if "~" in op else [raw])
    return {v for v in values if v and v != ".*" and v != ".+"}


def test_literal_label_values_in_rules_exist_in_the_code() -> None:
    """Static counterpart for values one short test run cannot produce (overdue, 503s)."""
    text = _rule_and_dashboard_text()
    ingest_src = (REPO / "services" / "ingest" / "app.py").read_text()
    ingest_src += (REPO / "services" / "desk" / "actions.py").read_text()  # desk actions
    for outcome in _literal_values("outcome", text):
        assert f'"{outcome}"' in ingest_src, f"no service counts outcome {outcome!r}"
    event_types = {e.value for e in SlaEventType}
    assert _literal_values("event_type", text) <= event_types
    assert _literal_values("processor", text) <= {"ingest", "classify", "route", "desk"}
    assert _literal_values("since", text) <= {"platform", "received"}
    jobs = {j["job_name"] for j in _scrape_jobs()}
    assert set(re.findall(r'\bjob="([^"]+)"', text)) <= jobs


def _scrape_jobs() -> list[dict[str, object]]:
    config = yaml.safe_load(Path(DEPLOY / "prometheus" / "prometheus.yml").read_text())
    return list(config["scrape_configs"])
