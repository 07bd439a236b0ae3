"""Helpers for broker tests: read topics until a condition holds, with a deadline."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, ConsumerRecord


class TopicReader:
    """Reads topics from the beginning and accumulates their records.

    Without a consumer group: it owns every partition of its topics at once, so it needs
    no group join (a join took about 5 s on the embedded broker, which completes one after
    half the default 10 s session timeout; it was most of the time of many broker tests)."""

    def __init__(self, bootstrap: str, *topics: str) -> None:
        self.consumer = AIOKafkaConsumer(
            *topics,
            bootstrap_servers=bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            fetch_max_wait_ms=50,
        )
        self.records: list[ConsumerRecord] = []

    async def __aenter__(self) -> TopicReader:
        await self.consumer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.consumer.stop()

    def on(self, topic: str) -> list[ConsumerRecord]:
        return [r for r in self.records if r.topic == topic]

    async def poll(self, timeout_ms: int = 100) -> None:
        batches = await self.consumer.getmany(timeout_ms=timeout_ms)
        for recs in batches.values():
            self.records.extend(recs)

    async def wait_for(
        self, condition: Callable[[list[ConsumerRecord]], bool], timeout: float = 30.0
    ) -> list[ConsumerRecord]:
        """Poll until ``condition(records)`` holds; fail with what was seen at the deadline."""
        deadline = time.monotonic() + timeout
        while not condition(self.records):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"condition not met within {timeout}s; saw {len(self.records)} records: "
                    f"{[(r.topic, r.value[:120]) for r in self.records[-5:]]}"
                )
            await self.poll()
        return self.records

    async def drain(self, quiet_s: float = 1.0, timeout: float = 15.0) -> list[ConsumerRecord]:
        """Read until no new record arrives for ``quiet_s`` — used to assert *absence* after the
        positive path has already been observed, not as a fixed sleep before checking."""
        deadline = time.monotonic() + timeout
        quiet_until = time.monotonic() + quiet_s
        while time.monotonic() < min(deadline, quiet_until):
            before = len(self.records)
            await self.poll()
            if len(self.records) != before:
                quiet_until = time.monotonic() + quiet_s
        return self.records


async def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.02)
