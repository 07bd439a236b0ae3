"""Generate the provisioned Grafana dashboards (``deploy/grafana/dashboards/*.json``).

Dashboards are written as code because hand-edited Grafana JSON drifts: a renamed metric
leaves an empty panel nobody notices until the night it matters. ``tests/ops`` regenerates
them, fails when the committed JSON differs, and checks every query against the metric
catalog and the recording rules. Run ``python deploy/grafana/build_dashboards.py`` after
editing. Panels read recording rules (``aduan:*``) where one exists, so a refresh is cheap.

Every query goes to the dashboard's ``datasource`` variable (type datasource, Prometheus), not
to a fixed uid: the same JSON works with the provisioned datasource (compose, the default) and
when imported into a Grafana whose Prometheus has another uid. tests/ops/test_fresh_start.py
runs every panel's query against a real Prometheus scraping freshly started services: it must
give a number (0 when idle, never NaN), or the panel says why it may be empty
(``no_value``: a percentile with no observation, a "worst" table with nobody to list)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
"""Every panel, target and query variable uses the ``datasource`` variable (see above)."""
NO_OBSERVATIONS = "no observations"
"""``no_value`` of percentile panels: a histogram with no observation in the window has no
percentile (the recording rules leave it out rather than record NaN)."""

Panel = dict[str, Any]


def _target(expr: str, legend: str, ref: str, fmt: str | None = None) -> dict[str, Any]:
    t: dict[str, Any] = {
        "datasource": DATASOURCE,
        "expr": expr,
        "legendFormat": legend,
        "refId": ref,
    }
    if fmt:
        t["format"] = fmt
    return t


def panel(
    title: str,
    queries: list[tuple[str, str]],
    *,
    kind: str = "timeseries",
    unit: str = "short",
    width: int = 12,
    height: int = 8,
    description: str = "",
    stack: bool = False,
    fmt: str | None = None,
    thresholds: list[tuple[float, str]] | None = None,
    no_value: str | None = None,
) -> Panel:
    """A panel of ``queries`` (expression, legend). ``no_value``: the text shown when the
    queries return nothing, for panels that are empty by design in a healthy idle system
    (a percentile without observations, a table of offenders); every other panel's query
    must return a number there (tests/ops/test_fresh_start.py)."""
    if no_value is None and any(_is_percentile(expr) for expr, _ in queries):
        no_value = NO_OBSERVATIONS
    steps = [{"color": "green", "value": None}] + [
        {"color": color, "value": value} for value, color in (thresholds or [])
    ]
    custom: dict[str, Any] = {}
    if kind == "timeseries":
        custom = {
            "drawStyle": "line",
            "fillOpacity": 20 if stack else 5,
            "stacking": {"mode": "normal" if stack else "none", "group": "A"},
            "showPoints": "never",
        }
    p: Panel = {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "gridPos": {"h": height, "w": width, "x": 0, "y": 0},
        "targets": [
            _target(expr, legend, chr(ord("A") + i), fmt)
            for i, (expr, legend) in enumerate(queries)
        ],
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "custom": custom,
                "thresholds": {"mode": "absolute", "steps": steps},
                **({"noValue": no_value} if no_value else {}),
            },
            "overrides": [],
        },
        "options": {},
    }
    if kind == "timeseries":
        p["options"] = {
            "legend": {
                "displayMode": "table",
                "placement": "bottom",
                "calcs": ["lastNotNull", "max"],
            },
            "tooltip": {"mode": "multi", "sort": "desc"},
        }
    elif kind == "stat":
        p["options"] = {"reduceOptions": {"calcs": ["lastNotNull"]}, "colorMode": "background"}
    elif kind == "table":
        p["options"] = {"showHeader": True, "sortBy": [{"displayName": "Value", "desc": True}]}
        for t in p["targets"]:
            t["instant"] = True
            t["format"] = "table"
    elif kind == "bargauge":
        p["options"] = {"orientation": "horizontal", "displayMode": "gradient"}
        for t in p["targets"]:
            t["instant"] = True
    return p


def _is_percentile(expr: str) -> bool:
    return "histogram_quantile" in expr or re.search(r":p\d+_", expr) is not None


def row(title: str) -> Panel:
    return {
        "type": "row",
        "title": title,
        "collapsed": False,
        "gridPos": {"h": 1, "w": 24, "x": 0, "y": 0},
        "panels": [],
    }


def variable(name: str, label: str, query: str, *, multi: bool = True) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "query": {"query": query, "refId": f"var-{name}"},
        "definition": query,
        "refresh": 2,
        "includeAll": True,
        "allValue": ".*",
        "multi": multi,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "sort": 1,
    }


DATASOURCE_VARIABLE: dict[str, Any] = {
    "name": "datasource",
    "label": "Data source",
    "type": "datasource",
    "query": "prometheus",
    "refresh": 1,
    "regex": "",
    "hide": 0,
    "includeAll": False,
    "multi": False,
    "current": {},
}
"""First variable of every dashboard; empty ``current`` = Grafana's default Prometheus."""

PLATFORM = variable("platform", "Platform", "label_values(aduan_webhook_requests_total, platform)")
AGENCY = variable("agency", "Agency", "label_values(aduan_routed_total, agency_id)")
PROCESSOR = variable("processor", "Processor", "label_values(aduan_messages_in_total, processor)")
CLOCK = variable("clock", "Clock", "label_values(aduan_sla_events_total, clock)")


def layout(panels: list[Panel]) -> list[Panel]:
    """Flow panels left to right, top to bottom, on Grafana's 24-column grid."""
    x = y = row_h = 0
    for i, p in enumerate(panels, start=1):
        pos = p["gridPos"]
        if p["type"] == "row" or x + pos["w"] > 24:
            x, y = 0, y + row_h
            row_h = 0
        pos["x"], pos["y"] = x, y
        p["id"] = i
        if p["type"] == "row":
            y += 1
            continue
        x += pos["w"]
        row_h = max(row_h, pos["h"])
    return panels


def dashboard(
    uid: str,
    title: str,
    description: str,
    variables: list[dict[str, Any]],
    panels: list[Panel],
    tags: list[str],
) -> dict[str, Any]:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["aduan", *tags],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": [DATASOURCE_VARIABLE, *variables]},
        "annotations": {"list": []},
        "links": [
            {
                "title": "aduan dashboards",
                "type": "dashboards",
                "tags": ["aduan"],
                "asDropdown": True,
            }
        ],
        "panels": layout(panels),
    }


def pipeline() -> dict[str, Any]:
    proc = 'processor=~"$processor"'
    return dashboard(
        "aduan-pipeline",
        "aduan / Pipeline overview",
        "Rate per stage, consumer lag, dead letters and latency from webhook to routing.",
        [PROCESSOR, PLATFORM, AGENCY],
        [
            row("Throughput"),
            panel(
                "Webhooks accepted",
                [
                    (
                        (
                            'sum(aduan:webhook_requests:rate5m{outcome="accepted", '
                            'platform=~"$platform"})'
                        ),
                        "accepted",
                    )
                ],
                kind="stat",
                unit="reqps",
                width=6,
                height=4,
            ),
            panel(
                "Records out",
                [(f"sum(aduan:messages_out:rate5m{{{proc}}})", "out")],
                kind="stat",
                unit="ops",
                width=6,
                height=4,
            ),
            panel(
                "Dead letters",
                [(f"sum(aduan:dead_letters:rate5m{{{proc}}})", "dead letters")],
                kind="stat",
                unit="ops",
                width=6,
                height=4,
                thresholds=[(0.01, "orange"), (1, "red")],
            ),
            panel(
                "Consumer lag (records)",
                [(f"sum(aduan:consumer_lag_messages:sum{{{proc}}})", "lag")],
                kind="stat",
                width=6,
                height=4,
                thresholds=[(1000, "orange"), (10000, "red")],
            ),
            panel(
                "Records in per processor",
                [(f"sum by (processor) (aduan:messages_in:rate5m{{{proc}}})", "{{processor}}")],
                unit="ops",
            ),
            panel(
                "Records out per processor and topic",
                [(f"aduan:messages_out:rate5m{{{proc}}}", "{{processor}} → {{topic}}")],
                unit="ops",
            ),
            panel(
                "Webhook entries by outcome",
                [
                    (
                        'sum by (outcome) (aduan:webhook_entries:rate5m{platform=~"$platform"})',
                        "{{outcome}}",
                    )
                ],
                unit="ops",
                stack=True,
                description=(
                    "Entries inside accepted deliveries: message, duplicate (dropped), skipped, "
                    "rejected (dead-lettered)."
                ),
            ),
            panel(
                "Processes up",
                [('up{job=~"aduan-.+"}', "{{job}} {{instance}}")],
                kind="stat",
                width=12,
                thresholds=[(0, "red"), (1, "green")],
            ),
            row("Errors"),
            panel(
                "Dead letters by processor and reason",
                [(f"aduan:dead_letters:rate5m{{{proc}}}", "{{processor}}: {{reason}}")],
                unit="ops",
                stack=True,
            ),
            panel(
                "Dead-letter share of input",
                [(f"aduan:dead_letters:ratio_rate5m{{{proc}}}", "{{processor}}")],
                unit="percentunit",
                thresholds=[(0.05, "red")],
                description="Alert AduanDeadLetterRate fires above 5% for 10 minutes.",
            ),
            row("Lag"),
            panel(
                "Consumer lag by processor and topic",
                [(f"aduan:consumer_lag_messages:sum{{{proc}}}", "{{processor}} ← {{topic}}")],
                thresholds=[(1000, "orange")],
            ),
            panel(
                "Consumer lag per partition",
                [
                    (
                        f"aduan_consumer_lag_messages{{{proc}}}",
                        "{{processor}} {{topic}}[{{partition}}]",
                    )
                ],
                description=(
                    "A single partition lagging while others do not: a hot key or a stuck consumer."
                ),
            ),
            row("Latency"),
            panel(
                "Age at output since ingest received it",
                [
                    (
                        f'aduan:pipeline_latency_seconds:p50_5m{{since="received", {proc}}}',
                        "p50 {{processor}}",
                    ),
                    (
                        f'aduan:pipeline_latency_seconds:p99_5m{{since="received", {proc}}}',
                        "p99 {{processor}}",
                    ),
                ],
                unit="s",
            ),
            panel(
                "Age at output since the platform's time",
                [
                    (
                        f'aduan:pipeline_latency_seconds:p50_5m{{since="platform", {proc}}}',
                        "p50 {{processor}}",
                    ),
                    (
                        f'aduan:pipeline_latency_seconds:p99_5m{{since="platform", {proc}}}',
                        "p99 {{processor}}",
                    ),
                ],
                unit="s",
                description="Includes the platform's own delivery delay and retries.",
            ),
            panel(
                "Batch duration p99",
                [(f"aduan:batch_duration_seconds:p99_5m{{{proc}}}", "{{processor}}")],
                unit="s",
            ),
            panel(
                "Kafka produce latency p99",
                [("aduan:produce_duration_seconds:p99_5m", "{{topic}}")],
                unit="s",
            ),
            row("Classification and routing"),
            panel(
                "Classified by kind",
                [("sum by (kind) (aduan:classified:rate5m)", "{{kind}}")],
                unit="ops",
                stack=True,
            ),
            panel(
                "Classified by agency kind",
                [("sum by (agency_kind) (aduan:classified:rate5m)", "{{agency_kind}}")],
                unit="ops",
                stack=True,
            ),
            panel(
                "Low-confidence share (1 h)",
                [("aduan:classified_low_confidence:ratio_rate1h", "low confidence")],
                unit="percentunit",
                description=(
                    "Messages below the review threshold; rising means the taxonomy no longer fits."
                ),
            ),
            panel(
                "Routed per hour by agency",
                [
                    (
                        '3600 * sum by (agency_id) (aduan:routed:rate1h{agency_id=~"$agency"})',
                        "{{agency_id}}",
                    )
                ],
                stack=True,
            ),
            *desk_row(),
            *notify_panels(),
        ],
        ["pipeline"],
    )


def desk_row() -> list[Panel]:
    """The desk: is it keeping up with route, how its API answers, what agencies do with it."""
    return [
        row("Desk"),
        panel(
            "Desk lag (records unread)",
            [("aduan:desk_lag_messages:sum", "lag")],
            kind="stat",
            width=6,
            height=4,
            thresholds=[(100, "orange"), (500, "red")],
            description="Alert AduanDeskBehind fires above 500 for 10 minutes.",
        ),
        panel(
            "Event age at commit p99",
            [("aduan:desk_event_delay_seconds:p99_5m", "p99")],
            kind="stat",
            unit="s",
            width=6,
            height=4,
            thresholds=[(10, "orange"), (120, "red")],
        ),
        panel(
            "Desk API 5xx share",
            [
                (
                    '(sum(aduan:desk_api_requests:rate5m{status=~"5.."}) or vector(0)) '
                    "/ (sum(aduan:desk_api_requests:rate5m) > 0) or vector(0)",
                    "5xx",
                )
            ],
            kind="stat",
            unit="percentunit",
            width=6,
            height=4,
            thresholds=[(0.001, "orange"), (0.01, "red")],
        ),
        panel(
            "Actions accepted (24 h)",
            [('sum(increase(aduan_desk_actions_total{outcome="accepted"}[24h]))', "accepted")],
            kind="stat",
            width=6,
            height=4,
        ),
        panel(
            "Desk API requests by route and status",
            [("sum by (route, status) (aduan:desk_api_requests:rate5m)", "{{route}} {{status}}")],
            unit="reqps",
            stack=True,
            description="401/404 are expected in small numbers; a surge of 401 is a token "
            "being guessed or a revoked token still in use.",
        ),
        panel(
            "Desk API latency p99 by route",
            [("aduan:desk_api_request_duration_seconds:p99_5m", "{{route}}")],
            unit="s",
            thresholds=[(0.05, "orange"), (0.5, "red")],
        ),
        panel(
            "Actions by type and outcome",
            [("aduan:desk_actions:rate5m", "{{type}}: {{outcome}}")],
            unit="ops",
            stack=True,
            description="acknowledge, resolve, reopen, reroute: accepted (written to "
            "aduan.commands.v1), replayed (Idempotency-Key), refused, broker_unavailable.",
        ),
        panel(
            "Events into the desk by topic and outcome",
            [("aduan:desk_events:rate5m", "{{topic}}: {{outcome}}")],
            unit="ops",
            stack=True,
            description="applied, duplicate (redelivered, dropped by event id), unknown_type "
            "(kept as history), refused (dead-lettered).",
        ),
    ]


def notify_panels() -> list[Panel]:
    """The notify row: are agencies, heads and systems being told, and how fast."""
    return [
        row("Notifications (notify)"),
        panel(
            "Deliveries by channel and outcome",
            [("sum by (channel, outcome) (rate(aduan_notify_deliveries_total[5m]))",
              "{{channel}} {{outcome}}")],
            unit="ops",
            stack=True,
            description="delivered; parked (failing, tried again later); dead (dead-lettered).",
        ),
        panel(
            "Failed attempts by channel and reason",
            [('sum by (channel, result) (rate(aduan_notify_attempts_total{result!="ok"}[5m]))',
              "{{channel}} {{result}}")],
            unit="ops",
            stack=True,
            no_value="no failed attempt",
        ),
        panel(
            "Delivery latency from the event (p50 / p99)",
            [
                ("aduan:notify_delivery_latency_seconds:p50_5m", "p50 {{channel}}"),
                ("aduan:notify_delivery_latency_seconds:p99_5m", "p99 {{channel}}"),
            ],
            unit="s",
        ),
        panel(
            "Owed per channel (backlog) and held in memory (queue)",
            [
                ("sum by (channel) (aduan_notify_backlog)", "backlog {{channel}}"),
                ("sum by (channel) (aduan_notify_queue_depth)", "queue {{channel}}"),
            ],
            thresholds=[(100, "orange")],
        ),
    ]  # fmt: skip


def sla() -> dict[str, Any]:
    ag = 'agency_id=~"$agency"'
    return dashboard(
        "aduan-sla",
        "aduan / SLA",
        "Open, overdue and escalated complaints per agency; response time in business hours.",
        [AGENCY, CLOCK],
        [
            row("Now"),
            panel(
                "Open complaints",
                [(f"sum(aduan:open_complaints:sum{{{ag}}})", "open")],
                kind="stat",
                width=5,
                height=4,
            ),
            panel(
                "Overdue (6 h)",
                [(f"sum(aduan:sla_overdue:increase6h{{{ag}}})", "overdue")],
                kind="stat",
                width=5,
                height=4,
                thresholds=[(1, "orange"), (5, "red")],
            ),
            panel(
                "of which overdue on arrival",
                [(f"sum(aduan:sla_overdue_on_arrival:increase6h{{{ag}}})", "on arrival")],
                kind="stat",
                width=4,
                height=4,
                description=(
                    "Complaints already past their deadline when route received them (a late "
                    "webhook, a platform retry, a replay): not the agency's doing; "
                    "AduanOverduePilingUp does not count them."
                ),
            ),
            panel(
                "Escalated (24 h)",
                [
                    (
                        (
                            f'sum(increase(aduan_sla_events_total{{event_type="escalated", '
                            f"{ag}}}[24h]))"
                        ),
                        "escalated",
                    )
                ],
                kind="stat",
                width=5,
                height=4,
                thresholds=[(1, "red")],
            ),
            panel(
                "Responded (24 h)",
                [
                    (
                        (
                            f'sum(increase(aduan_sla_events_total{{event_type="responded", '
                            f"{ag}}}[24h]))"
                        ),
                        "responded",
                    )
                ],
                kind="stat",
                width=5,
                height=4,
            ),
            panel(
                "Open complaints per agency",
                [(f"aduan:open_complaints:sum{{{ag}}}", "{{agency_id}}")],
                stack=True,
            ),
            panel(
                "SLA events per hour by type",
                [(f"sum by (event_type) (aduan:sla_events:increase1h{{{ag}}})", "{{event_type}}")],
            ),
            panel(
                "Overdue in the last 6 h per agency",
                [(f"aduan:sla_overdue:increase6h{{{ag}}}", "{{agency_id}}")],
                thresholds=[(5, "red")],
                description="Alert AduanOverduePilingUp fires at 5 or more for 30 minutes.",
            ),
            panel(
                "Escalations per hour per agency",
                [
                    (
                        (
                            f"sum by (agency_id) "
                            f'(aduan:sla_events:increase1h{{event_type="escalated", {ag}}})'
                        ),
                        "{{agency_id}}",
                    )
                ],
            ),
            row("Response time (business hours of each agency's calendar)"),
            panel(
                "Response-time distribution",
                [
                    (
                        (
                            f"sum by (le) "
                            f"(increase(aduan_response_business_time_seconds_bucket{{{ag}, "
                            f'clock=~"$clock"}}[$__range]))'
                        ),
                        "{{le}}",
                    )
                ],
                kind="bargauge",
                fmt="heatmap",
                description=(
                    "Responses in the selected range by business-time bucket (upper bound, "
                    "seconds)."
                ),
            ),
            panel(
                "Median and p90 response per agency (1 d)",
                [
                    (
                        f'aduan:response_business_time_seconds:p50_1d{{{ag}, clock=~"$clock"}}',
                        "p50 {{agency_id}} {{clock}}",
                    ),
                    (
                        f'aduan:response_business_time_seconds:p90_1d{{{ag}, clock=~"$clock"}}',
                        "p90 {{agency_id}} {{clock}}",
                    ),
                ],
                unit="s",
            ),
            row("Worst agencies"),
            panel(
                "Most overdue (6 h)",
                [(f"topk(10, aduan:sla_overdue:increase6h{{{ag}}} > 0)", "{{agency_id}}")],
                kind="table",
                width=8,
                no_value="no agency overdue",
            ),
            panel(
                "Slowest p90 response (1 d)",
                [
                    (
                        (
                            f"topk(10, aduan:response_business_time_seconds:p90_1d{{{ag}, "
                            f'clock=~"$clock"}})'
                        ),
                        "{{agency_id}}",
                    )
                ],
                kind="table",
                unit="s",
                width=8,
            ),
            panel(
                "Most open complaints",
                [(f"topk(10, aduan:open_complaints:sum{{{ag}}} > 0)", "{{agency_id}}")],
                kind="table",
                width=8,
                no_value="no open complaints",
            ),
            row("Timers"),
            panel(
                "Timer lag p99",
                [("aduan:timer_lag_seconds:p99_5m", "p99")],
                unit="s",
                thresholds=[(1, "orange"), (5, "red")],
                description=(
                    "How late route's timer fires deadline events, from the moment each could "
                    "first fire (its due time, or the arrival of a complaint that came in "
                    "late). Target: within 1 s. Alert AduanTimerLag above 5 s."
                ),
            ),
            panel(
                "Deadlines already past on arrival (per hour)",
                [("aduan:timer_catch_up:increase1h", "{{cause}}")],
                stack=True,
                description=(
                    "Catch-up, not lag: late_input = the message or command reached route "
                    "after the deadline (late webhook, platform retry, replay); recovery = it "
                    "came due while route was down or rebalancing."
                ),
            ),
            panel(
                "Routed per hour by agency",
                [(f"3600 * aduan:routed:rate1h{{{ag}}}", "{{agency_id}}")],
                stack=True,
            ),
        ],
        ["sla"],
    )


def ingest() -> dict[str, Any]:
    pf = 'platform=~"$platform"'
    return dashboard(
        "aduan-ingest",
        "aduan / Ingest health",
        "Webhook outcomes per platform, forged signatures, 5xx and latency.",
        [PLATFORM],
        [
            row("Requests"),
            panel(
                "Accepted (24 h)",
                [
                    (
                        (
                            f'sum(increase(aduan_webhook_requests_total{{outcome="accepted", '
                            f"{pf}}}[24h]))"
                        ),
                        "accepted",
                    )
                ],
                kind="stat",
                width=6,
                height=4,
            ),
            panel(
                "5xx share",
                [(f"max(aduan:webhook_5xx:ratio_rate5m{{{pf}}})", "5xx")],
                kind="stat",
                unit="percentunit",
                width=6,
                height=4,
                thresholds=[(0.001, "orange"), (0.01, "red")],
            ),
            panel(
                "Forged signatures",
                [(f"sum(aduan:webhook_forged:rate5m{{{pf}}})", "forged")],
                kind="stat",
                unit="reqps",
                width=6,
                height=4,
                thresholds=[(0.1, "red")],
            ),
            panel(
                "Ingest up",
                [('sum(up{job="aduan-ingest"})', "instances up")],
                kind="stat",
                width=6,
                height=4,
                thresholds=[(0, "red"), (1, "green")],
            ),
            panel(
                "Requests by outcome",
                [(f"sum by (outcome) (aduan:webhook_requests:rate5m{{{pf}}})", "{{outcome}}")],
                unit="reqps",
                stack=True,
            ),
            panel(
                "Requests by platform",
                [(f"sum by (platform) (aduan:webhook_requests:rate5m{{{pf}}})", "{{platform}}")],
                unit="reqps",
                stack=True,
            ),
            row("Failures"),
            panel(
                "5xx share (broker unavailable)",
                [(f"aduan:webhook_5xx:ratio_rate5m{{{pf}}}", "{{platform}}")],
                unit="percentunit",
                thresholds=[(0.01, "red")],
                description=(
                    "503 = Kafka did not acknowledge; the platform must retry. Alert "
                    "AduanIngestServerErrors."
                ),
            ),
            panel(
                "Forged signatures per platform",
                [(f"aduan:webhook_forged:rate5m{{{pf}}}", "{{platform}}")],
                unit="reqps",
                description="Alerts AduanForgedSignatureSpike and AduanWebhookSecretMismatch.",
            ),
            panel(
                "Refused requests by outcome",
                [
                    (
                        (
                            f'aduan:webhook_requests:rate5m{{outcome!~"accepted|verified|forged", '
                            f"{pf}}}"
                        ),
                        "{{platform}}: {{outcome}}",
                    )
                ],
                unit="reqps",
                stack=True,
                description=(
                    "too_large, malformed, unsupported_media_type, unknown_account, replayed, "
                    "bad_verify_token, broker_unavailable."
                ),
            ),
            panel(
                "Entries by outcome",
                [(f"aduan:webhook_entries:rate5m{{{pf}}}", "{{platform}}: {{outcome}}")],
                unit="ops",
                stack=True,
            ),
            row("Latency"),
            panel(
                "Request duration p99",
                [(f"aduan:webhook_request_duration_seconds:p99_5m{{{pf}}}", "{{platform}}")],
                unit="s",
                thresholds=[(1, "orange"), (3, "red")],
                description="X drops CRC answers slower than 3 s.",
            ),
            panel(
                "Raw produce latency p99 (acks=all)",
                [('aduan:produce_duration_seconds:p99_5m{topic="aduan.raw.v1"}', "raw")],
                unit="s",
            ),
        ],
        ["ingest"],
    )


DASHBOARDS = {"pipeline.json": pipeline, "sla.json": sla, "ingest.json": ingest}


def render() -> dict[str, str]:
    return {
        name: json.dumps(build(), indent=2, ensure_ascii=False) + "\n"
        for name, build in DASHBOARDS.items()
    }


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    for name, text in render().items():
        (OUT / name).write_text(text, encoding="utf-8")
        print(f"wrote {OUT / name}")
