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
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

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
from services.desk.reorder import Held, Reorder

log = logging.getLogger("aduan.desk")
STAGE = "desk"
RETRIES = 5
"""Attempts at a batch's transaction before the process gives up (and restarts from the
stored offsets): a database fail-over takes seconds, a broken schema never heals."""


CATALOG_NAMES = {Source.routes: ROUTES.name, Source.sla: SLA.name, Source.commands: COMMANDS.name}


class DatabaseOffsets(StoredOffsetsListener):
    def __init__(self, pool: asyncpg.Pool, consumer_name: str, reorder: Reorder) -> None:
        self.pool = pool
        self.consumer_name = consumer_name
        self.reorder = reorder

    async def stored_offsets(
        self, partitions: Sequence[TopicPartition]
    ) -> dict[TopicPartition, int]:
        found = await store.stored_offsets(
            self.pool, self.consumer_name, [(tp.topic, tp.partition) for tp in partitions]
        )
        log.info("assigned %d partitions; %d with stored offsets", len(partitions), len(found))
        return {TopicPartition(t, p): o for (t, p), o in found.items()}

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        """After the batch in flight: drop what is held for the revoked partitions (their
        offsets were not stored; the new owner reads them again)."""
        await super().on_partitions_revoked(revoked)
        self.reorder.forget((tp.topic, tp.partition) for tp in revoked)


class DeskIngestor:
    """Turns consumed records into ``apply_batch`` calls (and dead letters), in order-key
    order across the three topics (``reorder.Reorder``)."""

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
        self.reorder = Reorder()
        self.listener = DatabaseOffsets(pool, self.group_id, self.reorder)

    @property
    def topics(self) -> list[str]:
        return list(self.sources)

    def parse_batch(self, records: Sequence[ConsumerRecord]) -> tuple[list[Held], list[Output]]:
        held: list[Held] = []
        letters: list[Output] = []
        now = time.monotonic()
        for r in records:
            source = self.sources[r.topic]
            event: DeskEvent | None = None
            try:
                event = parse(source, r.value, r.timestamp, r.partition, r.offset)
            except Refusal as refusal:
                letters.append(refused(self.deadletter_topic, STAGE, refusal, DeadSource.of(r)))
                metrics.DESK_EVENTS.labels(self._catalog(r.topic), "refused").inc()
            held.append(Held((r.topic, r.partition), r.offset, r.timestamp, event, now))
        return held, letters

    async def process(self, records: list[ConsumerRecord]) -> None:
        held, letters = self.parse_batch(records)
        if letters:  # durable before their offsets can be stored
            await send_all_or_raise(self.sink, letters, timeout=self.settings.produce_timeout_s)
        for h in held:
            self.reorder.add(h)
        await self.flush()

    async def flush(self) -> None:
        """Apply what may be applied now (see ``reorder``) in one transaction."""
        consumer = self.listener.consumer
        if consumer is None or not self.reorder.count:
            return
        assigned = list(consumer.assignment())
        caught = {(tp.topic, tp.partition): await _caught_up(consumer, tp) for tp in assigned}
        released = self.reorder.release(caught, caught.__getitem__, time.monotonic())
        if not released:
            return
        result = await self._apply(released.events, released.positions)
        now = time.time()
        for e in released.events:
            metrics.DESK_EVENT_DELAY.observe(max(0.0, now - e.ts_ms / 1000))
        self._count(released.events, result)

    async def flush_now_and_then(self, stop: asyncio.Event, every_s: float = 0.2) -> None:
        """Release held events when no new record arrives to trigger it (a quiet topic)."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=every_s)
            if self.reorder.count and not stop.is_set():
                async with self.listener.processing():
                    await self.flush()

    async def _apply(
        self, events: list[DeskEvent], positions: dict[tuple[str, int], int]
    ) -> store.BatchResult:
        for attempt in range(1, RETRIES + 1):
            try:
                async with self.pool.acquire() as conn:
                    return await store.apply_batch(conn, self.group_id, events, positions)
            except (asyncpg.PostgresConnectionError, OSError, asyncpg.DeadlockDetectedError) as exc:
                if attempt == RETRIES:
                    raise
                log.warning("batch transaction failed (attempt %d): %s", attempt, exc)
                await asyncio.sleep(min(8.0, 0.25 * 2**attempt))
        raise AssertionError("unreachable")

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


async def _caught_up(consumer: AIOKafkaConsumer, tp: TopicPartition) -> bool:
    """Nothing more to read on ``tp`` right now: its position is at the high watermark."""
    highwater = consumer.highwater(tp)
    if highwater is None:
        return False
    try:
        position = await asyncio.wait_for(consumer.position(tp), timeout=1.0)
    except (TimeoutError, KafkaError):
        return False
    return bool(position >= highwater)


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
    halt = asyncio.Event()
    flusher = asyncio.create_task(ingestor.flush_now_and_then(halt))
    try:
        await _consume(settings, ingestor, stop, batch_max, on_ready)
    finally:
        halt.set()
        await flusher


async def _consume(
    settings: Settings,
    ingestor: DeskIngestor,
    stop: asyncio.Event,
    batch_max: int,
    on_ready: Callable[[], Awaitable[None] | None] | None,
) -> None:
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
        listener=ingestor.listener,
    )
