"""The desk's consumer through the real broker: dead letters, unknown event types, restarts
that resume from the offsets stored with the rows, rebalances, and a SIGKILL mid-stream."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from common import metrics
from common.broker import free_port
from common.kafka import ensure_topics, topic_name
from common.produce import KafkaSink
from common.settings import Settings
from common.topics import DEADLETTER, ROUTES, SLA
from schemas.commands import CommandType
from services.desk.consumer import run_consumer
from services.desk.projection import ComplaintView
from tests.desk.conftest import JOIN_DEADLINE_S, desk_settings, publish, wait_for
from tests.desk.factories import MON_9, Timeline, full_story
from tests.desk.test_store import expected, views
from tests.support import TopicReader

pytestmark = pytest.mark.kafka


def stream(n: int, seed: int = 0) -> Timeline:
    t = Timeline()
    full_story(t, f"instagram:story{seed}")
    for i in range(n):
        thread = f"instagram:s{seed}-{i}"
        t.complaint(thread, MON_9 + timedelta(seconds=i))
        if i % 4 == 0:
            t.tick(thread, MON_9 + timedelta(hours=5))
        if i % 3 == 0:
            t.reply(thread, MON_9 + timedelta(hours=1))
        if i % 5 == 0:
            t.command(thread, CommandType.resolve, MON_9 + timedelta(hours=2))
    return t


class Running:
    """A desk consumer running as a task of this test."""

    def __init__(self, settings: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer):
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(
            run_consumer(settings, pool, KafkaSink(producer), self.stop, batch_max=200)
        )

    async def close(self) -> None:
        self.stop.set()
        await self.task


@pytest.fixture
async def env(
    kafka_bootstrap: str, topic_prefix: str, pool: asyncpg.Pool
) -> AsyncIterator[tuple[Settings, AIOKafkaProducer]]:
    settings = desk_settings(kafka_bootstrap, topic_prefix)
    await ensure_topics(settings)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", linger_ms=2)
    await producer.start()
    try:
        yield settings, producer
    finally:
        await producer.stop()


def comparable(found: dict[str, ComplaintView]) -> dict[str, ComplaintView]:
    """Views without their order key's offsets (the timeline numbers records per topic,
    Kafka per partition; the order is the same)."""
    return {k: dataclasses.replace(v, last_key=(*v.last_key[:2], 0)) for k, v in found.items()}


async def history_count(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM desk_history"))


def duplicates() -> float:
    return sum(
        s.value
        for m in metrics.DESK_EVENTS.collect()
        for s in m.samples
        if s.name.endswith("_total") and s.labels["outcome"] == "duplicate"
    )


async def test_bad_records_are_dead_lettered_and_unknown_types_kept(
    env: tuple[Settings, AIOKafkaProducer], pool: asyncpg.Pool
) -> None:
    settings, producer = env
    t = Timeline()
    cid = t.complaint("instagram:dl")
    unknown = {"event_id": f"{cid}:paused:1", "event_type": "paused", "complaint_id": cid,
                 "thread_key": "instagram:dl", "agency_id": "sby-public-works",
                 "occurred_at": "2026-11-23T03:00:00+00:00"}  # fmt: skip
    await publish(producer, settings, t.records)
    sla = topic_name(SLA, settings)
    routes = topic_name(ROUTES, settings)
    await producer.send_and_wait(sla, orjson.dumps(unknown), key=b"instagram:dl")
    await producer.send_and_wait(sla, b"{broken", key=b"instagram:dl")
    await producer.send_and_wait(routes, b'{"event_type": "routed"}', key=b"instagram:dl")
    running = Running(settings, pool, producer)
    try:
        async with TopicReader(settings.bootstrap_servers, topic_name(DEADLETTER, settings)) as r:
            letters = await r.wait_for(lambda rs: len(rs) >= 2)
        await wait_for(lambda: _has(pool, f"{cid}:paused:1"))
        # The offsets move past the refused records too: nothing is retried forever.
        await wait_for(lambda: _stored_total(pool, 4))
    finally:
        await running.close()
    reasons = sorted((orjson.loads(x.value)["stage"], orjson.loads(x.value)["reason"])
                     for x in letters)  # fmt: skip
    assert reasons == [("desk", "invalid_event"), ("desk", "invalid_json")]
    row = await pool.fetchrow("SELECT known, event_type FROM desk_history WHERE event_id = $1",
                              f"{cid}:paused:1")  # fmt: skip
    assert row is not None and (row["known"], row["event_type"]) == (False, "paused")
    assert await pool.fetchval("SELECT status FROM desk_complaints") == "open"


async def _stored_total(pool: asyncpg.Pool, n: int) -> bool:
    return await pool.fetchval("SELECT coalesce(sum(next_offset), 0) FROM desk_offsets") == n


async def _has(pool: asyncpg.Pool, event_id: str) -> bool:
    return bool(await pool.fetchval("SELECT count(*) FROM desk_history WHERE event_id = $1",
                                    event_id))  # fmt: skip


async def test_a_restart_resumes_after_the_stored_offsets_reading_nothing_twice(
    env: tuple[Settings, AIOKafkaProducer], pool: asyncpg.Pool
) -> None:
    settings, producer = env
    t = stream(60)
    half = len(t.records) // 2
    await publish(producer, settings, t.records[:half])
    first = Running(settings, pool, producer)
    await wait_for(lambda: _count_is(pool, half))
    await first.close()
    before = duplicates()
    await publish(producer, settings, t.records[half:])
    second = Running(settings, pool, producer)
    try:
        await wait_for(lambda: _count_is(pool, len(t.records)))
    finally:
        await second.close()
    assert duplicates() == before  # it sought to the stored offsets, not to the beginning
    events = t.events()
    assert comparable(await views(pool)) == comparable(expected(events))


async def _count_is(pool: asyncpg.Pool, n: int) -> bool:
    return await history_count(pool) == n


async def test_two_replicas_share_the_partitions_and_apply_each_event_once(
    env: tuple[Settings, AIOKafkaProducer], pool: asyncpg.Pool
) -> None:
    settings, producer = env
    t = stream(150, seed=1)
    third = len(t.records) // 3
    a = Running(settings, pool, producer)
    await publish(producer, settings, t.records[:third])
    b = Running(settings, pool, producer)  # joins: partitions move (rebalance)
    await publish(producer, settings, t.records[third : 2 * third])
    await wait_for(lambda: _at_least(pool, third + 1))
    await a.close()  # leaves: its partitions move to b
    await publish(producer, settings, t.records[2 * third :])
    try:
        # b rejoins after a leaves, then reads a's partitions from the stored offsets.
        await wait_for(lambda: _count_is(pool, len(t.records)), timeout=JOIN_DEADLINE_S + 30)
    finally:
        await b.close()
    assert comparable(await views(pool)) == comparable(expected(t.events()))


async def _at_least(pool: asyncpg.Pool, n: int) -> bool:
    return await history_count(pool) >= n


async def test_sigkill_mid_stream_then_restart_loses_and_doubles_nothing(
    env: tuple[Settings, AIOKafkaProducer], pool: asyncpg.Pool, database_url: str
) -> None:
    settings, producer = env
    t = stream(1500, seed=2)
    await publish(producer, settings, t.records)
    child_env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "ADUAN_TOPIC_PREFIX": settings.topic_prefix,
        "ADUAN_CONSUMER_GROUP_PREFIX": settings.consumer_group_prefix,
        "ADUAN_DESK_DATABASE_URL": database_url,
        "ADUAN_DESK_BATCH_MAX": "100",
    }

    def start() -> subprocess.Popen[bytes]:
        child_env["ADUAN_HTTP_PORT"] = str(free_port())
        return subprocess.Popen([sys.executable, "-m", "services.desk"], env=child_env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip

    proc = start()
    try:
        await wait_for(lambda: _at_least(pool, 200), timeout=60)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        partial = await history_count(pool)
        assert partial < len(t.records), "killed too late to prove anything"
        proc = start()
        await wait_for(lambda: _count_is(pool, len(t.records)), timeout=120)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    events = t.events()
    ids = await pool.fetch("SELECT event_id FROM desk_history")
    assert sorted(r["event_id"] for r in ids) == sorted(e.event_id for e in events)
    assert comparable(await views(pool)) == comparable(expected(events))
    # The stored offsets point at the end of every partition: nothing left behind.
    group = f"{settings.consumer_group_prefix}-desk"
    total = await pool.fetchval("SELECT sum(next_offset) FROM desk_offsets WHERE consumer = $1",
                                group)  # fmt: skip
    assert total == len(t.records)
