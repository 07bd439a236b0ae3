"""``docs/consumers.md`` stays true: its aiokafka examples are taken from the page and run
against the broker fixture, and what it promises (dedup by ``event_id``, unknown fields and
event types tolerated, commands co-partitioned with aduan's own records) is checked."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from common.kafka import ensure_topics, topic_name
from common.partitioning import partition as murmur2_partition
from common.settings import Settings
from common.topics import CATALOG, COMMANDS, SLA
from schemas.contract import producer_view, value_schema

pytestmark = pytest.mark.kafka

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "consumers.md"


def examples() -> dict[str, Any]:
    """The page's Python blocks, executed as modules: name → function."""
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(), flags=re.DOTALL)
    namespace: dict[str, Any] = {}
    for block in blocks[:2]:
        exec(compile(block, str(GUIDE), "exec"), namespace)
    return namespace


def test_the_guide_names_every_catalog_topic() -> None:
    text = GUIDE.read_text()
    assert [t.name for t in CATALOG if f"`{t.name}`" not in text] == []


def test_the_guide_states_the_catalog_retention() -> None:
    section = GUIDE.read_text().split("## Retention", 1)[1].split("\n## ", 1)[0]
    stated: dict[str, str] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 2 and "`" in cells[0]:
            for name in re.findall(r"`([^`]+)`", cells[0]):
                stated[name] = cells[1]
    for t in CATALOG:
        hours = (t.retention_ms or 0) / 3_600_000
        expected = f"{hours / 24:g} days" if hours >= 24 else f"{hours:g} hour"
        assert stated.get(t.name) == expected, t.name


@pytest.fixture
async def settings(kafka_bootstrap: str, topic_prefix: str) -> Settings:
    s = Settings(bootstrap_servers=kafka_bootstrap, topic_prefix=topic_prefix)
    await ensure_topics(s, [SLA, COMMANDS])
    return s


def sla_event(event_id: str, event_type: str = "overdue", **extra: Any) -> bytes:
    return orjson.dumps(
        {
            "event_id": event_id, "event_type": event_type, "complaint_id": "instagram:1",
            "thread_key": "instagram:m:1", "agency_id": "sby-public-works",
            "clock": "first_response", "policy": "default",
            "due_at": "2026-11-23T07:00:00Z", "occurred_at": "2026-11-23T07:00:01Z",
            "escalation_level": None, "escalate_to": None, "response_seconds": None,
            "business_seconds": None, "met": None, **extra,
        }
    )  # fmt: skip


async def test_follow_deadlines_notifies_once_and_tolerates_additions(settings: Settings) -> None:
    follow = examples()["follow_deadlines"]
    topic = topic_name(SLA, settings)
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers)
    await producer.start()
    try:
        for value in (
            sla_event("e1"),
            sla_event("e1"),  # at-least-once: the same event again
            sla_event("e2", "escalated", added_later={"x": 1}),  # a field from a later release
            sla_event("e3", "paused"),  # an event type from a later release
            sla_event("e4", "resolved"),
        ):
            await producer.send_and_wait(topic, value, key=b"instagram:m:1")
    finally:
        await producer.stop()
    sent: list[str] = []

    async def notify(event: dict[str, Any]) -> None:
        sent.append(event["event_id"])

    stop = asyncio.Event()
    group = f"notify-email.sla-{uuid.uuid4().hex[:6]}"
    task = asyncio.create_task(
        follow(
            settings.bootstrap_servers, notify, sent.__contains__, stop, topic=topic, group=group
        )
    )
    deadline = time.monotonic() + 30
    while len(sent) < 3 and time.monotonic() < deadline and not task.done():
        await asyncio.sleep(0.05)
    stop.set()
    await task
    assert sent == ["e1", "e2", "e4"]
    # Offsets were committed after the notifications: the group resumes at the end.
    check = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers, group_id=group)
    await check.start()
    try:
        partitions = check.partitions_for_topic(topic) or set()
        committed = [await check.committed(TopicPartition(topic, p)) for p in sorted(partitions)]
        assert sum(c or 0 for c in committed) == 5
    finally:
        await check.stop()


async def test_resolve_complaint_lands_where_aduan_puts_the_thread(settings: Settings) -> None:
    """The example's record is a valid command, keyed by thread, on the partition Kafka's
    murmur2 gives that key — the partition ingest (and classify after it) use for it."""
    resolve = examples()["resolve_complaint"]
    topic = topic_name(COMMANDS, settings)
    thread = "instagram:18000000000000001:17900000000000001"
    meta = await resolve(
        settings.bootstrap_servers, "instagram:17900000000000001", thread, "operator:7", topic=topic
    )
    partitions = list(range(COMMANDS.partitions))
    assert meta.partition == murmur2_partition(thread.encode(), partitions, partitions)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers, group_id=None)
    await consumer.start()
    try:
        tp = TopicPartition(topic, meta.partition)
        consumer.assign([tp])
        consumer.seek(tp, meta.offset)
        record = (await consumer.getmany(tp, timeout_ms=10_000, max_records=1))[tp][0]
    finally:
        await consumer.stop()
    assert record.key == thread.encode()
    schema = value_schema(COMMANDS)
    assert schema is not None
    checker = jsonschema.Draft202012Validator(
        producer_view(schema), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    checker.validate(orjson.loads(record.value))
