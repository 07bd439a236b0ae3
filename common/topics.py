"""The topic catalog: every topic aduan reads or writes, in one place.

Processors, start-up topic creation, and ``docs/topics.md`` are all derived from this list,
so a topic cannot exist in one and not the others."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from schemas import (
    ClassifiedMessage,
    Command,
    DeadLetter,
    Message,
    RawDelivery,
    RouteEvent,
    SlaEvent,
)
from schemas.routes import RouteTick

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    key: str
    value_model: type[BaseModel]
    partitions: int
    cleanup_policy: str
    retention_ms: int | None
    description: str
    value_is_raw_bytes: bool = False

    def full_name(self, prefix: str = "") -> str:
        return f"{prefix}{self.name}"

    @property
    def config(self) -> dict[str, str]:
        cfg = {"cleanup.policy": self.cleanup_policy}
        if self.retention_ms is not None:
            cfg["retention.ms"] = str(self.retention_ms)
        return cfg


RAW = TopicSpec(
    name="aduan.raw.v1",
    key="delivery_id",
    value_model=RawDelivery,
    partitions=6,
    cleanup_policy="delete",
    retention_ms=30 * DAY_MS,
    description="Every webhook delivery, body bytes exactly as received; metadata in headers. "
    "The system of record (platforms cannot resend). The only topic holding personal data.",
    value_is_raw_bytes=True,
)
MESSAGES = TopicSpec(
    name="aduan.messages.v1",
    key="thread_key",
    value_model=Message,
    partitions=6,
    cleanup_policy="delete",
    retention_ms=30 * DAY_MS,
    description="Normalized, masked, pseudonymised messages; keyed by conversation so a "
    "complaint and the agency's reply share a partition.",
)
CLASSIFIED = TopicSpec(
    name="aduan.classified.v1",
    key="thread_key",
    value_model=ClassifiedMessage,
    partitions=6,
    cleanup_policy="delete",
    retention_ms=30 * DAY_MS,
    description="Messages with kind, category, agency, region, urgency, confidence, evidence.",
)
ROUTES = TopicSpec(
    name="aduan.routes.v1",
    key="thread_key",
    value_model=RouteEvent,
    partitions=6,
    cleanup_policy="delete",
    retention_ms=90 * DAY_MS,
    description="routed / rerouted events: a complaint handed to its agency with its due times.",
)
SLA = TopicSpec(
    name="aduan.sla.v1",
    key="thread_key",
    value_model=SlaEvent,
    partitions=6,
    cleanup_policy="delete",
    retention_ms=90 * DAY_MS,
    description="Deadline events: warning, overdue, escalated, responded, resolved, reopened.",
)
COMMANDS = TopicSpec(
    name="aduan.commands.v1",
    key="thread_key",
    value_model=Command,
    partitions=6,
    cleanup_policy="delete",
    retention_ms=90 * DAY_MS,
    description="Operator commands: reroute (bukan wewenang), resolve, reopen, acknowledge.",
)
DEADLETTER = TopicSpec(
    name="aduan.deadletter.v1",
    key="source_key",
    value_model=DeadLetter,
    partitions=1,
    cleanup_policy="delete",
    retention_ms=30 * DAY_MS,
    description="Input that could not be processed, with stage and reason; replayable.",
)

ROUTE_TICKS = TopicSpec(
    name="aduan.route-ticks.v1",
    key="none (sent to a partition)",
    value_model=RouteTick,
    partitions=6,  # must equal aduan.classified.v1's: a tick addresses one table partition
    cleanup_policy="delete",
    retention_ms=3600 * 1000,
    description="Internal to route: 'process what is due on this partition' (a faust timer "
    "may not modify a table, the agent receiving the tick does). Worthless once consumed.",
)

CATALOG: tuple[TopicSpec, ...] = (
    RAW,
    MESSAGES,
    CLASSIFIED,
    ROUTES,
    SLA,
    COMMANDS,
    DEADLETTER,
    ROUTE_TICKS,
)
BY_NAME: dict[str, TopicSpec] = {t.name: t for t in CATALOG}


def render_markdown() -> str:
    """The operator-facing topic table (``docs/topics.md``); a test keeps the file in sync."""
    lines = [
        "# Topics",
        "",
        "Generated from `common/topics.py` by `python -m common.topics > docs/topics.md`; "
        "a test fails when this file drifts from the catalog.",
        "",
        "| topic | key | value | partitions | cleanup | retention (days) | what it holds |",
        "|---|---|---|---|---|---|---|",
    ]
    for t in CATALOG:
        days = "∞" if t.retention_ms is None else f"{t.retention_ms / DAY_MS:g}"
        value = (
            "raw body bytes (headers: `RawDelivery`)"
            if t.value_is_raw_bytes
            else (f"`{t.value_model.__name__}` (`schemas/json/{schema_file(t)}`)")
        )
        lines.append(
            f"| `{t.name}` | `{t.key}` | {value} | {t.partitions} | {t.cleanup_policy} | {days} "
            f"| {t.description} |"
        )
    return "\n".join(lines) + "\n"


def schema_file(t: TopicSpec) -> str:
    """``aduan.routes.v1`` → ``routes.v1.json``."""
    return t.name.removeprefix("aduan.") + ".json"


if __name__ == "__main__":
    print(render_markdown(), end="")
