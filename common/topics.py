"""The topic catalog: every topic aduan reads or writes, in one place.

Processors, start-up topic creation, the JSON Schemas, the AsyncAPI document
(``schemas/asyncapi.yaml``) and ``docs/topics.md`` are all derived from this list, so a topic
cannot exist in one and not the others, and a topic added here (desk, notify) is documented
by the next ``python -m schemas.generate``.

Besides what Kafka needs (partitions, cleanup, retention) each entry states its contract for
other teams: what the key is, what order and delivery they can rely on, how to drop
duplicates, how a producer must place records, who writes and who reads it."""

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
from schemas.headers import DEDUP, REPLAYED_FROM, Header, headers_from_model
from schemas.routes import RouteTick

DAY_MS = 24 * 3600 * 1000

AT_LEAST_ONCE = (
    "at-least-once: every record written is acknowledged by all in-sync replicas before the "
    "input that caused it is committed, so a crash or retry can write a record twice (never "
    "lose one)"
)
MURMUR2 = (
    "Kafka's default partitioner: murmur2 of the key bytes (positive) modulo the partition "
    "count, as the Java client and aiokafka's default do. Required: route keeps each thread's "
    "state with the partition of aduan.classified.v1 its key hashes to and reads "
    "aduan.commands.v1 co-partitioned with it, so a record placed any other way reaches a "
    "worker that does not hold the thread"
)
PER_THREAD = (
    "per key: all records of one conversation (thread_key) are on one partition, in the order "
    "they were produced; no order across keys"
)


@dataclass(frozen=True, slots=True)
class Component:
    """Something that produces or consumes topics: an aduan service or an outside party."""

    name: str
    description: str
    consumer_group: str | None = None
    """Group id template (``{prefix}`` = ``ADUAN_CONSUMER_GROUP_PREFIX``, default ``aduan``);
    None when it reads without a group (assigned partitions, nothing committed)."""
    external: bool = False


COMPONENTS: dict[str, Component] = {
    c.name: c
    for c in (
        Component(
            "ingest",
            "webhook receiver (`python -m services.ingest`); tails "
            "aduan.messages.v1's `dedup` headers without a group to drop retries",
        ),
        Component("classify", "`python -m services.classify`", "{prefix}-classify"),
        Component(
            "route",
            "`python -m services.route` (a faust app; the group id is its app id)",
            "{prefix}-route",
        ),
        Component(
            "replay",
            "`python -m common.replay`, run by an operator after a fix; reads without a group",
        ),
        Component(
            "operators",
            "operator tools and the desk service (planned): any client "
            "allowed to act on complaints",
            external=True,
        ),
        Component(
            "subscribers",
            "teams building on aduan: notifiers, dashboards, the "
            "SP4N-LAPOR! bridge, desk (planned); see docs/consumers.md",
            external=True,
        ),
    )
}


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
    key_field: str | None = None
    """Dotted path of the value field the key equals (None: see ``key_description``)."""
    key_description: str = ""
    key_format: str | None = None
    headers: tuple[Header, ...] = ()
    ordering: str = PER_THREAD
    delivery: str = AT_LEAST_ONCE
    dedup: str = ""
    """How a consumer recognises a record it already handled."""
    partitioner: str = MURMUR2
    """What a producer must do to place a record (a requirement, not a description)."""
    producers: tuple[str, ...] = ()
    consumers: tuple[str, ...] = ()
    audience: str = "public"
    """public: any team may subscribe; restricted: personal data, aduan only; internal:
    one service's plumbing, no contract beyond this entry; operations: for operators."""
    personal_data: bool = False

    def full_name(self, prefix: str = "") -> str:
        return f"{prefix}{self.name}"

    @property
    def config(self) -> dict[str, str]:
        cfg = {"cleanup.policy": self.cleanup_policy}
        if self.retention_ms is not None:
            cfg["retention.ms"] = str(self.retention_ms)
        return cfg

    @property
    def all_headers(self) -> tuple[Header, ...]:
        """Declared headers plus the replay marker any record of any topic may carry."""
        return (*self.headers, REPLAYED_FROM)


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
    key_field="delivery_id",
    key_description="`delivery_id`: a random UUID (version 4) ingest assigns on receipt; "
    "dead letters and messages refer to the delivery by it (`source_key`, `delivery_id`)",
    key_format="uuid",
    headers=headers_from_model(RawDelivery, exclude=frozenset({"delivery_id"})),
    ordering="none across deliveries: ingest spreads deliveries over the partitions, so two "
    "deliveries of one conversation may be on different partitions; a record is addressed by "
    "partition and offset",
    dedup="`delivery_id` (the key). A platform's retry of the same webhook is a new delivery "
    "with a new id: the raw topic keeps every delivery, duplicates included",
    partitioner="none required: ingest fills partitions in turn, 64 deliveries at a time "
    "(nobody looks a raw record up by its key's hash); a republishing replay uses murmur2",
    producers=("ingest", "replay"),
    consumers=("replay",),
    audience="restricted",
    personal_data=True,
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
    key_field="thread_key",
    key_description="`thread_key` of the value: the conversation a complaint and every reply "
    "to it share",
    headers=(DEDUP,),
    dedup="`message_id` together with `action` (an edit keeps the message id: compare the "
    "text too); ingest already drops platform retries, so duplicates come from produce "
    "retries and replays",
    producers=("ingest", "replay"),
    consumers=("classify", "ingest", "subscribers"),
)
CLASSIFIED = TopicSpec(
    name="aduan.classified.v1",
    key="thread_key",
    value_model=ClassifiedMessage,
    partitions=6,
    cleanup_policy="delete",
    retention_ms=30 * DAY_MS,
    description="Messages with kind, category, agency, region, urgency, confidence, evidence.",
    key_field="message.thread_key",
    key_description="`message.thread_key` of the value (classify keeps its input's key)",
    dedup="`message.message_id` with `message.action`, as on aduan.messages.v1; a replay "
    "after a classifier change may classify a message anew: keep the latest",
    producers=("classify", "replay"),
    consumers=("route", "subscribers"),
)
ROUTES = TopicSpec(
    name="aduan.routes.v1",
    key="thread_key",
    value_model=RouteEvent,
    partitions=6,
    cleanup_policy="delete",
    retention_ms=90 * DAY_MS,
    description="routed / rerouted events: a complaint handed to its agency with its due times.",
    key_field="thread_key",
    key_description="`thread_key` of the value",
    dedup="`event_id`: deterministic, the same on every re-emission",
    producers=("route",),
    consumers=("subscribers",),
)
SLA = TopicSpec(
    name="aduan.sla.v1",
    key="thread_key",
    value_model=SlaEvent,
    partitions=6,
    cleanup_policy="delete",
    retention_ms=90 * DAY_MS,
    description="Deadline events: warning, overdue, escalated, responded, resolved, reopened.",
    key_field="thread_key",
    key_description="`thread_key` of the value",
    dedup="`event_id`: deterministic, the same on every re-emission",
    producers=("route",),
    consumers=("subscribers",),
)
COMMANDS = TopicSpec(
    name="aduan.commands.v1",
    key="thread_key",
    value_model=Command,
    partitions=6,
    cleanup_policy="delete",
    retention_ms=90 * DAY_MS,
    description="Operator commands: reroute (bukan wewenang), resolve, reopen, acknowledge.",
    key_field="thread_key",
    key_description="`thread_key` of the value, the complaint's thread; route dead-letters a "
    "command whose key differs (`key_mismatch`)",
    dedup="`command_id`, chosen by the issuer: route applies a command id once per complaint",
    producers=("operators", "replay"),
    consumers=("route",),
)
DEADLETTER = TopicSpec(
    name="aduan.deadletter.v1",
    key="source_key",
    value_model=DeadLetter,
    partitions=1,
    cleanup_policy="delete",
    retention_ms=30 * DAY_MS,
    description="Input that could not be processed, with stage and reason; replayable.",
    key_field="source_key",
    key_description="`source_key` of the value: the failed record's key (the delivery id for "
    "ingest's); no key when the failed record had none",
    ordering="total: one partition, in the order failures were written",
    dedup="the failed record's position (`source_topic`, `source_partition`, "
    "`source_offset`, `entry_index`) with `reason`; a processor that retries a batch can "
    "dead-letter the same record twice",
    partitioner="any: the topic has one partition",
    producers=("ingest", "classify", "route", "replay"),
    consumers=("replay",),
    audience="operations",
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
    key_description="none: a tick is sent to an explicit partition",
    ordering="per partition",
    dedup="none needed: a tick only says 'look now'; handling one twice fires nothing twice",
    partitioner="explicit partition: the aduan.classified.v1 partition whose due complaints "
    "the tick is for",
    producers=("route",),
    consumers=("route",),
    audience="internal",
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
        "a test fails when this file drifts from the catalog. The full contract (schemas of "
        "key, headers and value, ordering, delivery, partitioner) is `schemas/asyncapi.yaml`; "
        "a guide for teams building on these topics is `docs/consumers.md`.",
        "",
        "| topic | key | value | partitions | cleanup | retention (days) | what it holds |",
        "|---|---|---|---|---|---|---|",
    ]
    for t in CATALOG:
        days = "∞" if t.retention_ms is None else f"{t.retention_ms / DAY_MS:g}"
        value = (
            f"the platform's body bytes (headers: `schemas/json/{headers_file(t)}`)"
            if t.value_is_raw_bytes
            else (f"`{t.value_model.__name__}` (`schemas/json/{schema_file(t)}`)")
        )
        lines.append(
            f"| `{t.name}` | `{t.key}` | {value} | {t.partitions} | {t.cleanup_policy} | {days} "
            f"| {t.description} |"
        )
    lines += [
        "",
        "| topic | audience | producers | consumers | ordering | duplicates: drop by |",
        "|---|---|---|---|---|---|",
    ]
    for t in CATALOG:
        lines.append(
            f"| `{t.name}` | {t.audience}{' (personal data)' if t.personal_data else ''} "
            f"| {', '.join(t.producers)} | {', '.join(t.consumers)} | {t.ordering} | {t.dedup} |"
        )
    return "\n".join(lines) + "\n"


def _stem(t: TopicSpec) -> str:
    return t.name.removeprefix("aduan.")


def schema_file(t: TopicSpec) -> str:
    """``aduan.routes.v1`` → ``routes.v1.json`` (the value's JSON Schema)."""
    return _stem(t) + ".json"


def key_file(t: TopicSpec) -> str:
    """``aduan.routes.v1`` → ``routes.v1.key.json``."""
    return _stem(t) + ".key.json"


def headers_file(t: TopicSpec) -> str:
    """``aduan.routes.v1`` → ``routes.v1.headers.json``."""
    return _stem(t) + ".headers.json"


if __name__ == "__main__":
    print(render_markdown(), end="")
