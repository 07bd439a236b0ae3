"""Dropping duplicate deliveries (platform retries, replays), also across ingest restarts.

Choice: the store is rebuilt from ``aduan.messages.v1`` itself. Every normalized record
carries its dedup key in a ``dedup`` header; at start-up ingest replays the topic (headers
only, records older than the window ignored) before it answers POSTs, then keeps tailing it.
Why this and not a local file or a compacted topic:

* the messages topic *is* the set of messages already produced, so the store cannot drift
  from it (a file can be lost with a pod; a side topic needs a second, non-atomic write);
* tailing makes every ingest replica learn the keys the others wrote (eventually: a retry
  racing between two replicas within the tail lag can still slip through; consumers are
  idempotent on ``message_id`` anyway);
* Tansu's ListOffsets under-reports, so catch-up is judged on fetch high-watermarks.

Cost: start-up reads the topic's retention (30 days) of headers; memory holds one key per
message inside the window (~100 bytes each: 1M messages ≈ 100 MB).

Keys (``dedup_key``): ``message_id`` for new messages; an edit is a new event, so its key
adds ``edit`` and a hash of its (masked) text: a retried edit is dropped, a second edit is
not; a removal adds ``remove``. WhatsApp statuses already carry the status in their id."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Callable, Iterable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from common.connection import make_consumer
from common.settings import Settings
from schemas.messages import Action, Message

log = logging.getLogger("aduan.ingest.dedup")
HEADER = "dedup"
TAIL_PAUSE_S = 0.05
"""Pause of the live tail after a small batch. Without it the tail fetches after every few
records the service itself just wrote (one fetch per produce round trip): a pause makes each
fetch carry ~50 ms of records, which cut ingest's and the broker's CPU per request. It adds at
most this much to the lag with which replicas learn each other's keys."""


def dedup_key(message: Message) -> str:
    if message.action is Action.add:
        return message.message_id
    if message.action is Action.edit:
        digest = hashlib.sha256((message.text or "").encode()).hexdigest()[:16]
        return f"{message.message_id}|edit|{digest}"
    return f"{message.message_id}|{message.action.value}"


class InFlight(Exception):
    """A key of this delivery is being written by a concurrent request: answer 503 so the
    platform retries after the first write has settled (never 200 for data not stored)."""


class DedupStore:
    """Keys seen within the window, in insertion order (so expiry pops from the front)."""

    def __init__(self, window_s: float, clock: Callable[[], float] = time.time) -> None:
        self.window_s = window_s
        self.clock = clock
        self._seen: dict[str, float] = {}
        self._pending: set[str] = set()
        self._uncertain: dict[str, float] = {}  # key -> until when a late ack may still land

    def __len__(self) -> int:
        return len(self._seen)

    def __contains__(self, key: str) -> bool:
        seen_at = self._seen.get(key)
        return seen_at is not None and seen_at >= self.clock() - self.window_s

    def add(self, key: str, seen_at: float | None = None) -> None:
        when = self.clock() if seen_at is None else seen_at
        self._uncertain.pop(key, None)
        if when >= self.clock() - self.window_s:
            self._seen[key] = max(when, self._seen.pop(key, when))

    def claim(self, keys: Iterable[str]) -> tuple[list[int], list[str]]:
        """Decide which of a delivery's keys are new. Returns the indexes of the new ones
        (first occurrence within the delivery) and marks those keys pending.

        Raises InFlight, claiming nothing, when a key is pending in another request or
        uncertain (its write timed out and may still land)."""
        fresh: list[int] = []
        claimed: list[str] = []
        local: set[str] = set()
        now = self.clock()
        for i, key in enumerate(keys):
            if key in local or key in self:
                continue
            if key in self._pending or self._uncertain.get(key, 0.0) > now:
                raise InFlight(key)
            local.add(key)
            fresh.append(i)
            claimed.append(key)
        self._pending.update(claimed)
        return fresh, claimed

    def commit(self, keys: Iterable[str]) -> None:
        """The records are acknowledged by Kafka: remember the keys."""
        for key in keys:
            self._pending.discard(key)
            self.add(key)
        self.expire()

    def release(self, keys: Iterable[str], hold_s: float = 0.0) -> None:
        """The write failed: forget the claim so the platform's retry goes through.

        ``hold_s`` > 0 when the failure was a timeout: the producer may still deliver the
        record within that time, so retries get InFlight (503) until then, unless the tail
        sees the record first (then they are duplicates). This is what keeps a slow broker
        from turning one delivery into two messages."""
        until = self.clock() + hold_s
        for key in keys:
            self._pending.discard(key)
            if hold_s > 0:
                self._uncertain[key] = until

    def expire(self, budget: int = 1000) -> None:
        """Drop up to ``budget`` keys older than the window from the front (amortised)."""
        now = self.clock()
        if len(self._uncertain) > budget:
            self._uncertain = {k: t for k, t in self._uncertain.items() if t > now}
        horizon = now - self.window_s
        for _ in range(budget):
            first = next(iter(self._seen), None)
            if first is None or self._seen[first] >= horizon:
                return
            del self._seen[first]


class TopicTail:
    """Feeds a DedupStore from the messages topic: a catch-up replay, then a live tail.

    ``caught_up`` is set once every partition's position reached the high-watermark seen
    in fetch responses (not ListOffsets, which Tansu under-reports)."""

    def __init__(self, store: DedupStore, settings: Settings, topic: str) -> None:
        self.store = store
        self.topic = topic
        self.settings = settings
        self.caught_up = asyncio.Event()
        self.replayed = 0
        self._consumer: AIOKafkaConsumer | None = None

    async def run(self, stop: asyncio.Event) -> None:
        consumer = make_consumer(
            self.settings.kafka, group_id=None, max_partition_fetch_bytes=4 * 1024 * 1024
        )
        self._consumer = consumer
        await consumer.start()
        try:
            partitions = await self._partitions(consumer)
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=200, max_records=5000)
                for records in batches.values():
                    for record in records:
                        self._absorb(record.headers, record.timestamp)
                if not self.caught_up.is_set():
                    if await self._at_end(consumer, partitions):
                        self.caught_up.set()
                        log.info(
                            "dedup store rebuilt: %d keys from %s", len(self.store), self.topic
                        )
                elif sum(map(len, batches.values())) < 1000:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), TAIL_PAUSE_S)
        finally:
            await consumer.stop()

    async def _partitions(self, consumer: AIOKafkaConsumer) -> list[TopicPartition]:
        deadline = time.monotonic() + 30
        while True:
            parts = consumer.partitions_for_topic(self.topic)
            if parts:
                return [TopicPartition(self.topic, p) for p in sorted(parts)]
            if time.monotonic() > deadline:
                raise KafkaError(f"topic {self.topic} has no partitions")
            await consumer.topics()  # refreshes cluster metadata
            await asyncio.sleep(0.1)

    def _absorb(self, headers: Iterable[tuple[str, bytes]], timestamp_ms: int) -> None:
        for name, value in headers or ():
            if name == HEADER:
                self.store.add(value.decode("utf-8", "replace"), timestamp_ms / 1000)
                self.replayed += 1
                return

    @staticmethod
    async def _at_end(consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> bool:
        for tp in partitions:
            hw = consumer.highwater(tp)
            if hw is None or await consumer.position(tp) < hw:
                return False
        return True
