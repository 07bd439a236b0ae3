"""The label catalogs of ``common.metrics`` cover what the services really emit.

A series created at zero on start is only useful if it is the one the code later
increments: a dead-letter reason or a webhook outcome missing from the catalog is a series
whose first event ``increase()`` loses again. These tests compare the catalogs with the code
(reasons and outcomes written as literals) and with the router's behaviour (which clock
each SLA event carries)."""

from __future__ import annotations

import ast
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from prometheus_client import generate_latest

from common import metrics
from schemas.commands import CommandType
from schemas.messages import Action, Platform
from schemas.sla import SlaEvent
from services.classify.config import AGENCY_KINDS, load_config
from services.classify.processor import classify_series
from services.route.clocks import ComplaintState, Router
from services.route.observe import route_series, running_clocks
from tests.ops.metric_names import REPO
from tests.route.factories import CONFIG, REGISTRY, command, message

SERVICES = REPO / "services"
REASON_CALLS = {
    "Refusal", "EntryError", "MalformedDelivery", "RejectedEntry", "_dead", "_decode",
    "dead_letter", "Permanent",
}  # fmt: skip
REASON = re.compile(r"^[a-z]+(?:_[a-z]+)+$")


def _reasons_written(stage: str) -> set[str]:
    """Reason codes passed as literals to the refusal/dead-letter builders in a service."""
    found: set[str] = set()
    for path in (SERVICES / stage).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if name not in REASON_CALLS:
                continue
            for arg in node.args:
                value = arg.value if isinstance(arg, ast.Constant) else None
                if isinstance(value, str) and REASON.match(value):
                    found.add(value)
    return found


def test_every_dead_letter_reason_the_code_writes_is_in_the_catalog() -> None:
    stages = [p.name for p in SERVICES.iterdir() if p.is_dir() and _reasons_written(p.name)]
    assert {"ingest", "classify", "route"} <= set(stages)
    for stage in stages:
        missing = _reasons_written(stage) - set(metrics.DEAD_LETTER_REASONS.get(stage, ()))
        assert not missing, f"add to DEAD_LETTER_REASONS[{stage!r}]: {sorted(missing)}"


def test_webhook_outcomes_are_exactly_the_ones_ingest_counts() -> None:
    source = "\n".join(p.read_text() for p in (SERVICES / "ingest").rglob("*.py"))
    counted = set(re.findall(r'_(?:requests|refuse)\(\s*platform,\s*"([a-z_]+)"', source))
    counted |= set(re.findall(r'"([a-z_]+)" if unknown else "([a-z_]+)"', source)[0])
    counted |= {"forged", "replayed"}  # returned by signatures.refusal() and passed along
    assert counted == set(metrics.WEBHOOK_OUTCOMES)
    assert set(metrics.PLATFORMS) == {p.value for p in Platform}


def test_zero_creates_the_series_at_zero_and_keeps_existing_values() -> None:
    metrics.WEBHOOK_REQUESTS.labels("x", "replayed").inc(3)
    before = metrics.WEBHOOK_REQUESTS.labels("x", "replayed")._value.get()  # noqa: SLF001
    assert metrics.zero(metrics.ingest_series()) > 5 * len(metrics.WEBHOOK_OUTCOMES)
    text = generate_latest().decode()
    assert 'aduan_webhook_requests_total{outcome="in_flight",platform="generic"} 0.0' in text
    assert 'aduan_webhook_request_duration_seconds_count{platform="whatsapp"}' in text
    assert 'aduan_dead_letters_total{processor="ingest",reason="malformed_json"}' in text
    after = metrics.WEBHOOK_REQUESTS.labels("x", "replayed")._value.get()  # noqa: SLF001
    assert after == before


def _catalog(metric: object, series: list[metrics.Series]) -> set[tuple[str, ...]]:
    return {labels for m, labels in series if m is metric}


WIB = ZoneInfo("Asia/Jakarta")
MON_9 = datetime(2026, 11, 23, 9, 0, tzinfo=WIB)


def _drive(router: Router) -> list[SlaEvent]:
    """One complaint through every kind of SLA event: all timed stages of every clock,
    responses, acknowledgement, resolve, reopen, re-resolve; then a second complaint that
    its citizen withdraws (removes)."""
    events: list[SlaEvent] = []
    state: ComplaintState | None = None

    def keep(result: tuple[ComplaintState | None, list[object]]) -> None:
        nonlocal state
        state = result[0]
        events.extend(e for e in result[1] if isinstance(e, SlaEvent))

    t = MON_9
    keep(router.on_message(None, message("m1", "t1", t)))
    for days in range(1, 40):  # every stage of first response and resolution fires
        keep(router.on_tick(state, (t + timedelta(days=days)).timestamp()))
    t += timedelta(days=40)
    keep(router.on_message(state, message("m2", "t1", t, agency_reply=True)))
    keep(router.on_message(state, message("m3", "t1", t + timedelta(minutes=1))))
    for days in range(1, 20):  # next response: warning, overdue, escalations
        keep(router.on_tick(state, (t + timedelta(days=days)).timestamp()))
    t += timedelta(days=20)
    keep(router.on_message(state, message("m4", "t1", t, agency_reply=True)))
    for i, ctype in enumerate(
        [CommandType.acknowledge, CommandType.resolve, CommandType.reopen, CommandType.resolve]
    ):
        keep(router.on_command(state, command(f"k{i}", ctype, "instagram:m1", "t1", t)))
        t += timedelta(minutes=5)
    keep(router.on_message(None, message("w1", "t2", t)))
    keep(router.on_message(state, message("w1", "t2", t, text=None, action=Action.remove)))
    return events


def test_route_catalog_holds_every_sla_event_and_clock_the_router_emits() -> None:
    series = list(route_series(CONFIG, REGISTRY))
    sla = _catalog(metrics.SLA_EVENTS, series)
    events = _drive(Router(CONFIG, REGISTRY))
    emitted = {(e.agency_id, e.event_type.value, e.clock.value if e.clock else "") for e in events}
    assert {e for _, e, _ in emitted} == {t.value for t in type(events[0].event_type)}
    assert emitted <= sla, emitted - sla
    responses = {(e.agency_id, e.clock.value) for e in events if e.business_seconds is not None}
    assert responses and responses <= _catalog(metrics.RESPONSE_BUSINESS_TIME, series)
    agencies = {a.id for a in REGISTRY.agencies}
    assert {a for (a,) in _catalog(metrics.OPEN_COMPLAINTS, series)} == agencies
    assert {a for a, _ in _catalog(metrics.ROUTED, series)} == agencies
    assert running_clocks(CONFIG) == ["first_response", "next_response", "resolution"]


def test_classify_catalog_holds_every_category_with_its_agency_kind() -> None:
    config = load_config()
    series = list(classify_series(config))
    classified = _catalog(metrics.CLASSIFIED, series)
    for name, category in config.categories.items():
        assert ("complaint", name, category.agency_kind) in classified
    unmapped = AGENCY_KINDS - {c.agency_kind for c in config.categories.values()}
    for kind in unmapped:  # a model may choose a kind no category maps to
        assert ("complaint", config.fallback_category, kind) in classified
    assert {k for (k,) in _catalog(metrics.LOW_CONFIDENCE, series)} == set(AGENCY_KINDS)


def test_partition_lag_reports_owned_partitions_and_drops_moved_ones() -> None:
    lag = metrics.PartitionLag("catalog-test")

    def shown() -> dict[str, float]:
        return {
            s.labels["partition"]: s.value
            for family in metrics.CONSUMER_LAG.collect()
            for s in family.samples
            if s.labels["processor"] == "catalog-test"
        }

    lag.report({("aduan.messages.v1", 0): 5, ("aduan.messages.v1", 1): -2})
    assert shown() == {"0": 5.0, "1": 0.0}  # never negative
    lag.report({("aduan.messages.v1", 1): 3})  # partition 0 moved to another instance
    assert shown() == {"1": 3.0}
