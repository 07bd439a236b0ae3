"""Kafka plumbing against the real broker: topic creation and commit-after-produce."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaProducer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient

from common.kafka import Output, ensure_topics, run_batch_processor, topic_name
from common.settings import Settings
from common.topics import CATALOG, CLASSIFIED, MESSAGES
from tests.support import TopicReader

pytestmark = pytest.mark.kafka


def _settings(bootstrap: str, prefix: str) -> Settings:
    return Settings(
        bootstrap_servers=bootstrap, topic_prefix=prefix, consumer_group_prefix=prefix.rstrip(".")
    )


async def test_topics_are_created_idempotently_with_catalog_partitions(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    settings = _settings(kafka_bootstrap, topic_prefix)
    await ensure_topics(settings)
    await ensure_topics(settings)  # second start-up: no error, nothing recreated
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        names = [topic_name(t, settings) for t in CATALOG]
        described = await admin.describe_topics(names)
    finally:
        await admin.close()
    partitions = {d["topic"]: len(d["partitions"]) for d in described}
    assert partitions == {topic_name(t, settings): t.partitions for t in CATALOG}


async def test_offsets_are_committed_only_after_output_is_written(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    """A handler that fails mid-stream commits nothing of its batch: a restarted processor
    sees the same records again (at-least-once), and nothing was lost."""
    settings = _settings(kafka_bootstrap, topic_prefix)
    await ensure_topics(settings, [MESSAGES, CLASSIFIED])
    src, dst = topic_name(MESSAGES, settings), topic_name(CLASSIFIED, settings)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    for i in range(20):
        await producer.send_and_wait(src, f"m{i}".encode(), key=b"k", partition=0)
    await producer.stop()

    seen: list[bytes] = []

    def failing(records: list[ConsumerRecord]) -> list[Output]:
        seen.extend(r.value for r in records)
        raise RuntimeError("bug in handler")

    stop = asyncio.Event()
    with pytest.raises(RuntimeError, match="bug in handler"):
        await run_batch_processor(
            name="t",
            settings=settings,
            input_topics=[src],
            group_id="g-commit",
            handle=failing,
            stop=stop,
        )
    assert seen, "the handler saw the batch"

    written: list[int] = []

    def passing(records: list[ConsumerRecord]) -> list[Output]:
        written.append(len(records))
        if sum(written) >= 20:
            stop.set()
        return [Output(dst, r.key, r.value + b"!") for r in records]

    await asyncio.wait_for(
        run_batch_processor(
            name="t",
            settings=settings,
            input_topics=[src],
            group_id="g-commit",
            handle=passing,
            stop=stop,
        ),
        timeout=60,
    )
    async with TopicReader(kafka_bootstrap, dst) as reader:
        await reader.wait_for(lambda recs: len(recs) >= 20)
        await reader.drain(quiet_s=0.5)
    assert sorted(r.value for r in reader.records) == sorted(f"m{i}!".encode() for i in range(20))
