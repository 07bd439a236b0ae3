"""Every Prometheus metric aduan exports, declared once.

Base units (seconds, bytes), ``aduan_`` prefix, ``_total`` counters. Labels are bounded:
platform, outcome, processor, reason, topic, partition, kind, category, agency_kind and agency
ids from the registry; never a message, complaint or user id. ``docs/metrics.md`` is generated
from this module (``python -m common.metrics``) and a test keeps it in sync."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
PIPELINE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600)
HOUR = 3600.0
BUSINESS_TIME_BUCKETS = tuple(h * HOUR for h in (0.25, 0.5, 1, 2, 4, 8, 16, 24, 40, 80, 120))

# --- ingest -------------------------------------------------------------------------------
WEBHOOK_REQUESTS = Counter(
    "aduan_webhook_requests_total",
    "Webhook HTTP requests by platform and outcome (accepted, verified, forged, too_large, "
    "malformed, unsupported_media_type, unknown_account, broker_unavailable, replayed, "
    "bad_verify_token, not_ready, in_flight).",
    ["platform", "outcome"],
)
WEBHOOK_ENTRIES = Counter(
    "aduan_webhook_entries_total",
    "Entries inside accepted deliveries by platform and outcome (message, duplicate, skipped, "
    "rejected).",
    ["platform", "outcome"],
)
WEBHOOK_LATENCY = Histogram(
    "aduan_webhook_request_duration_seconds",
    "Time from request received to response sent.",
    ["platform"],
    buckets=LATENCY_BUCKETS,
)
PRODUCE_LATENCY = Histogram(
    "aduan_produce_duration_seconds",
    "Time for Kafka to acknowledge a produced record (acks=all).",
    ["topic"],
    buckets=LATENCY_BUCKETS,
)

# --- every processor ----------------------------------------------------------------------
MESSAGES_IN = Counter(
    "aduan_messages_in_total", "Records consumed by a processor.", ["processor", "topic"]
)
MESSAGES_OUT = Counter(
    "aduan_messages_out_total", "Records produced by a processor.", ["processor", "topic"]
)
DEAD_LETTERS = Counter(
    "aduan_dead_letters_total",
    "Records sent to aduan.deadletter.v1, by stage and reason.",
    ["processor", "reason"],
)
PROCESSING_LATENCY = Histogram(
    "aduan_pipeline_latency_seconds",
    "Age of a message when a processor wrote its output, measured from the platform's time "
    "(since='platform') and from ingest's receipt (since='received').",
    ["processor", "since"],
    buckets=PIPELINE_BUCKETS,
)
BATCH_DURATION = Histogram(
    "aduan_batch_duration_seconds",
    "Time to process and durably write one consumed batch.",
    ["processor"],
    buckets=LATENCY_BUCKETS,
)
CONSUMER_LAG = Gauge(
    "aduan_consumer_lag_messages",
    "High watermark minus committed position, per input topic and partition.",
    ["processor", "topic", "partition"],
)

# --- classify -----------------------------------------------------------------------------
CLASSIFIED = Counter(
    "aduan_classified_total",
    "Classified messages by kind, category and agency kind.",
    ["kind", "category", "agency_kind"],
)
LOW_CONFIDENCE = Counter(
    "aduan_classified_low_confidence_total",
    "Classified messages whose confidence was below the review threshold.",
    ["agency_kind"],
)

# --- route --------------------------------------------------------------------------------
ROUTED = Counter(
    "aduan_routed_total", "Complaints routed, by agency.", ["agency_id", "agency_kind"]
)
OPEN_COMPLAINTS = Gauge(
    "aduan_open_complaints", "Complaints with a running clock, by agency.", ["agency_id"]
)
SLA_EVENTS = Counter(
    "aduan_sla_events_total",
    "SLA events emitted (warning, overdue, escalated, responded, ...), by agency and clock.",
    ["agency_id", "event_type", "clock"],
)
RESPONSE_BUSINESS_TIME = Histogram(
    "aduan_response_business_time_seconds",
    "Agency response time counted in its business calendar's open hours (seconds).",
    ["agency_id", "clock"],
    buckets=BUSINESS_TIME_BUCKETS,
)
TIMER_LAG = Histogram(
    "aduan_timer_lag_seconds",
    "How late a deadline event fired after its due time.",
    buckets=LATENCY_BUCKETS,
)
UNRESOLVED_DROPPED = Counter(
    "aduan_route_unresolved_dropped_total",
    "Never-resolved complaints dropped from route's state after their last escalation plus "
    "the retention (ADUAN_ROUTE_RETAIN_UNRESOLVED_DAYS), by agency.",
    ["agency_id"],
)

ALL = (
    WEBHOOK_REQUESTS,
    WEBHOOK_ENTRIES,
    WEBHOOK_LATENCY,
    PRODUCE_LATENCY,
    MESSAGES_IN,
    MESSAGES_OUT,
    DEAD_LETTERS,
    PROCESSING_LATENCY,
    BATCH_DURATION,
    CONSUMER_LAG,
    CLASSIFIED,
    LOW_CONFIDENCE,
    ROUTED,
    OPEN_COMPLAINTS,
    SLA_EVENTS,
    RESPONSE_BUSINESS_TIME,
    TIMER_LAG,
    UNRESOLVED_DROPPED,
)


@dataclass(frozen=True, slots=True)
class MetricInfo:
    """What the docs and tests need to know of a metric (its exposed base name, type,
    label names and help text)."""

    name: str
    type: str
    labelnames: tuple[str, ...]
    documentation: str


def info(metric: MetricWrapperBase) -> MetricInfo:
    """prometheus-client keeps these in private attributes and has no public accessor for
    a metric's label names; this is the one place that reads them."""
    return MetricInfo(
        metric._name,  # noqa: SLF001
        metric._type or "untyped",  # noqa: SLF001
        tuple(metric._labelnames),  # noqa: SLF001
        metric._documentation,  # noqa: SLF001
    )


def render_markdown() -> str:
    lines = [
        "# Metrics",
        "",
        "Generated from `common/metrics.py` by `python -m common.metrics > docs/metrics.md`; "
        "a test fails when this file drifts. Every service serves them on `/metrics`.",
        "",
        "| metric | type | labels | meaning |",
        "|---|---|---|---|",
    ]
    for m in map(info, ALL):
        name = m.name + ("_total" if m.type == "counter" else "")
        labels = ", ".join(f"`{label}`" for label in m.labelnames) or "–"
        lines.append(f"| `{name}` | {m.type} | {labels} | {m.documentation} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render_markdown(), end="")
