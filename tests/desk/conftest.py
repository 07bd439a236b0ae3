"""Desk fixtures: a migrated database on the real PostgreSQL of ``tests/conftest.py``, and a
whole desk (consumer, API, web page) on the real broker with its own topics."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from common.kafka import ensure_topics, topic_name
from common.settings import Settings
from common.topics import COMMANDS, ROUTES, SLA
from services.desk import auth, service, store
from services.desk.api import CONTEXT
from services.desk.events import Source
from services.desk.settings import DeskSettings
from tests.desk.factories import Record

TOPICS = {Source.routes: ROUTES, Source.sla: SLA, Source.commands: COMMANDS}


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await store.create_pool(database_url, min_size=1, max_size=4)
    await store.migrate_database(p)
    try:
        yield p
    finally:
        await p.close()


async def publish(
    producer: AIOKafkaProducer, settings: Settings, records: Iterable[Record]
) -> None:
    """Write timeline records to their topics, keyed by thread, with their timestamps."""
    futures = [
        await producer.send(
            topic_name(TOPICS[r.source], settings), r.value, key=r.key, timestamp_ms=r.ts_ms
        )
        for r in records
    ]
    for f in futures:
        await f


JOIN_DEADLINE_S = 90.0
"""Deadline for anything that waits on the desk's consumer: it must (re)join its group
first, and a JoinGroup the broker leaves unanswered (seen under load on the embedded broker:
``Error sending JoinGroupRequest ... RequestTimedOutError -- marking coordinator dead``) is
only given up and retried after aiokafka's 40 s request timeout. A 30 s deadline failed the
test while the consumer was still recovering by itself; 90 s covers two such retries. A test
that passes returns as soon as its condition holds, so this costs nothing."""


async def wait_for(condition: Any, timeout: float = JOIN_DEADLINE_S) -> None:
    """Poll an async condition until it holds (a deadline, never a fixed sleep)."""
    import asyncio

    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.05)


@dataclass
class Desk:
    settings: Settings
    service: service.DeskService
    producer: AIOKafkaProducer

    @property
    def pool(self) -> asyncpg.Pool:
        return self.service.pool

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.service.port}"

    def set_now(self, at: datetime) -> None:
        """Fix the desk's clock (what 'overdue' and 'time left' are measured against)."""
        self.service.runner.app[CONTEXT].clock = lambda: at

    async def publish(self, records: Iterable[Record]) -> None:
        await publish(self.producer, self.settings, records)

    async def token(self, agency_id: str | None = None, label: str = "petugas") -> str:
        scope = "agency" if agency_id else "admin"
        _, token = await auth.issue_token(self.pool, scope, agency_id, label)
        return token

    async def has_events(self, *event_ids: str) -> bool:
        n = await self.pool.fetchval(
            "SELECT count(*) FROM desk_history WHERE event_id = ANY($1::text[])", list(event_ids)
        )
        return bool(n == len(set(event_ids)))

    async def wait_events(self, *event_ids: str, timeout: float = JOIN_DEADLINE_S) -> None:
        await wait_for(lambda: self.has_events(*event_ids), timeout)

    async def request(
        self, method: str, path: str, token: str | None = None, **kw: Any
    ) -> tuple[int, Any, dict[str, str]]:
        headers = dict(kw.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        async with (
            aiohttp.ClientSession() as session,
            session.request(method, self.url + path, headers=headers, **kw) as r,
        ):
            body = await r.json() if r.content_type == "application/json" else await r.text()
            return r.status, body, dict(r.headers)


def desk_settings(kafka_bootstrap: str, topic_prefix: str) -> Settings:
    return Settings(
        bootstrap_servers=kafka_bootstrap,
        topic_prefix=topic_prefix,
        consumer_group_prefix=topic_prefix.rstrip("."),
        http_port=0,
    )


@pytest.fixture
async def desk(kafka_bootstrap: str, topic_prefix: str, database_url: str) -> AsyncIterator[Desk]:
    settings = desk_settings(kafka_bootstrap, topic_prefix)
    await ensure_topics(settings)
    svc = await service.start(settings, DeskSettings(database_url=database_url))
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", linger_ms=1)
    await producer.start()
    try:
        yield Desk(settings, svc, producer)
    finally:
        await producer.stop()
        await svc.stop()
