"""The desk's consumer: routes, deadline and command topics into PostgreSQL.

Offsets live in the database, written in the same transaction as the rows a batch produced
(``store.apply_batch``), so Kafka's committed offsets are never used (``commit=False``) and
the rebalance listener seeks every assigned partition to the stored position. A crash before
the commit leaves neither rows nor offsets; after it, both. Replays and rebalances re-read at
most the batch in flight, and its history rows already exist (event ids), so nothing is
lost and nothing applied twice.

A record the desk cannot keep (not JSON, no ids, a known type that fails its schema) goes to
the dead-letter topic first (acknowledged), and then its offset moves on with the batch."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence

import asyncpg
from aiokafka import ConsumerRecord, TopicPartition

from common import metrics
from common.deadletters import Source as DeadSource
from common.deadletters import refused
from common.kafka import StoredOffsetsListener, consume_batches, topic_name
from common.produce import Output, RecordSink, send_all_or_raise
from common.refusal import Refusal
from common.settings import Settings
from common.topics import COMMANDS, DEADLETTER, ROUTES, SLA
from services.desk import store
from services.desk.events import DeskEvent, Source, parse

log = logging.getLogger("aduan.desk")
STAGE = "desk"
RETRIES = 5
"""Attempts at a batch's transaction before the process gives up (and restarts from the
stored offsets): a database fail-over takes seconds, a broken schema never heals."""


CATALOG_NAMES = {Source.routes: ROUTES.name, Source.sla: SLA.name, Source.commands: COMMANDS.name}


class DatabaseOffsets(StoredOffsetsListener):
    def __init__(self, pool: asyncpg.Pool, consumer_name: str) -> None:
        self.pool = pool
        self.consumer_name = consumer_name

    async def stored_offsets(
        self, partitions: Sequence[TopicPartition]
    ) -> dict[TopicPartition, int]:
        found = await store.stored_offsets(
            self.pool, self.consumer_name, [(tp.topic, tp.partition) for tp in partitions]
        )
        log.info("assigned %d partitions; %d with stored offsets", len(partitions), len(found))
        return {TopicPartition(t, p): o for (t, p), o in found.items()}


class DeskIngestor:
    """Turns consumed batches into ``apply_batch`` calls (and dead letters)."""

    def __init__(self, settings: Settings, pool: asyncpg.Pool, sink: RecordSink) -> None:
        self.settings = settings
        self.pool = pool
        self.sink = sink
        self.group_id = f"{settings.consumer_group_prefix}-desk"
        self.sources = {
            topic_name(ROUTES, settings): Source.routes,
            topic_name(SLA, settings): Source.sla,
            topic_name(COMMANDS, settings): Source.commands,
        }
        self.deadletter_topic = topic_name(DEADLETTER, settings)

    @property
    def topics(self) -> list[str]:
        return list(self.sources)

    def parse_batch(
        self, records: Sequence[ConsumerRecord]
    ) -> tuple[list[DeskEvent], list[Output]]:
        events: list[DeskEvent] = []
        letters: list[Output] = []
        for r in records:
            source = self.sources[r.topic]
            try:
                events.append(parse(source, r.value, r.timestamp, r.partition, r.offset))
            except Refusal as refusal:
                letters.append(refused(self.deadletter_topic, STAGE, refusal, DeadSource.of(r)))
                metrics.DESK_EVENTS.labels(self._catalog(r.topic), "refused").inc()
        return events, letters

    async def process(self, records: list[ConsumerRecord]) -> None:
        events, letters = self.parse_batch(records)
        if letters:
            await send_all_or_raise(self.sink, letters, timeout=self.settings.produce_timeout_s)
        positions: dict[tuple[str, int], int] = {}
        for r in records:
            key = (r.topic, r.partition)
            positions[key] = max(positions.get(key, 0), r.offset + 1)
        for attempt in range(1, RETRIES + 1):
            try:
                async with self.pool.acquire() as conn:
                    result = await store.apply_batch(conn, self.group_id, events, positions)
                break
            except (asyncpg.PostgresConnectionError, OSError, asyncpg.DeadlockDetectedError) as exc:
                if attempt == RETRIES:
                    raise
                log.warning("batch transaction failed (attempt %d): %s", attempt, exc)
                await asyncio.sleep(min(8.0, 0.25 * 2**attempt))
        now = time.time()
        for e in events:
            metrics.DESK_EVENT_DELAY.observe(max(0.0, now - e.ts_ms / 1000))
        self._count(events, result)

    def _count(self, events: Sequence[DeskEvent], result: store.BatchResult) -> None:
        outcomes: Counter[tuple[str, str]] = Counter()
        for e in events:
            if e.event_id not in result.new_ids:
                outcome = "duplicate"
            else:
                outcome = "applied" if e.known else "unknown_type"
            outcomes[(CATALOG_NAMES[e.source], outcome)] += 1
        for (topic, outcome), n in outcomes.items():
            metrics.DESK_EVENTS.labels(topic, outcome).inc(n)

    def _catalog(self, topic: str) -> str:
        return topic.removeprefix(self.settings.topic_prefix)


async def run_consumer(
    settings: Settings,
    pool: asyncpg.Pool,
    sink: RecordSink,
    stop: asyncio.Event,
    *,
    batch_max: int = 2000,
    on_ready: Callable[[], Awaitable[None] | None] | None = None,
) -> None:
    ingestor = DeskIngestor(settings, pool, sink)
    await consume_batches(
        name=STAGE,
        settings=settings,
        input_topics=ingestor.topics,
        group_id=ingestor.group_id,
        process=ingestor.process,
        stop=stop,
        max_records=batch_max,
        on_ready=on_ready,
        commit=False,
        listener=DatabaseOffsets(pool, ingestor.group_id),
    )
