"""Every use of faust's private API in aduan, in one module, each with its reason.

**Route's RocksDB table, partition by partition.** faust's RocksDB store keeps one database
per changelog partition but picks it from "the current event" (``Store._set`` asserts one),
which is wrong inside route's batches, and it learns the changelog offset it may resume
from only through faust's own per-record changelog sends, which route bypasses (see
``aiokafka_producer``). ``RocksTable`` therefore opens the partition's database through the
store (``_db_for_partition``) and writes a batch's acknowledged states together with the
offset key faust's recovery reads (``persisted_offset``) in one atomic ``WriteBatch``.

faust-streaming is pinned to ``>=0.15.2,<0.16`` (pyproject); a minor upgrade must re-check
this module and nothing else.

**A bound on faust's fetch wait.** faust 0.15 creates its consumer with
``fetch_max_wait_ms=1500`` hard-coded. Kafka answers a fetch as soon as data arrives, so there
the value only matters when idle; Tansu answers only when the wait expires, so every record
entering route waited ~0.4 s on average (up to 1.5 s), which also delayed timer ticks. The
consumer reads the value at ``start()``, so setting it on the freshly created consumer is
enough."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import faust
import rocksdict
from aiokafka import AIOKafkaProducer
from faust.transport.drivers import aiokafka as driver
from faust.types import TP

_ATTR = "_aduan_fetch_max_wait_ms"


def bound_fetch_wait(app: faust.App, ms: int) -> None:
    """Make ``app``'s worker consumer wait at most ``ms`` for a fetch."""
    setattr(app, _ATTR, ms)
    thread_cls = driver.AIOKafkaConsumerThread
    # faust has no setting for it: wrap its private consumer factory (see module docstring).
    if getattr(thread_cls._create_worker_consumer, "_aduan_patched", False):  # noqa: SLF001
        return
    original = thread_cls._create_worker_consumer  # noqa: SLF001

    def create_worker_consumer(self: Any, transport: Any) -> Any:
        consumer = original(self, transport)
        wait = getattr(self.app, _ATTR, None)
        if wait is not None:
            consumer._fetch_max_wait_ms = wait  # noqa: SLF001  # read once at start()
        return consumer

    create_worker_consumer._aduan_patched = True  # type: ignore[attr-defined]  # noqa: SLF001
    thread_cls._create_worker_consumer = create_worker_consumer  # type: ignore[method-assign]  # noqa: SLF001


def aiokafka_producer(app: faust.App) -> AIOKafkaProducer:
    """The aiokafka producer under faust's, started with the app.

    Route writes its batches (events, dead letters, changelog records with explicit
    partitions) through ``common.produce.KafkaSink`` over this producer instead of faust's
    per-record ``send`` and ``Table.__setitem__``: those cost 5x the throughput on this
    machine, and ``__setitem__`` takes the changelog partition from "the current event",
    which is wrong inside a batch. faust exposes no public accessor for it."""
    producer: AIOKafkaProducer = app.producer._ensure_producer()  # type: ignore[attr-defined]  # noqa: SLF001
    return producer


class RocksTable:
    """``services.route.worker.StateTable`` over a faust table on the RocksDB store."""

    __slots__ = ("store", "table")

    def __init__(self, table: Any) -> None:  # a faust table on the rocksdb:// store
        self.table = table
        self.store: Any = table.data

    def _db(self, partition: int) -> Any:
        return self.store._db_for_partition(partition)  # noqa: SLF001  # see module docstring

    def get(self, key: bytes, partition: int) -> bytes | None:
        value: bytes | None = self._db(partition).get(key)
        return value

    def apply(self, partition: int, writes: dict[bytes, bytes | None], offset: int) -> None:
        batch = rocksdict.WriteBatch(raw_mode=True)
        for key, value in writes.items():
            if value is None:
                batch.delete(key)
            else:
                batch.put(key, value)
        batch.put(self.store.offset_key, str(offset).encode())  # as set_persisted_offset
        self._db(partition).write(batch)

    def items(self, partitions: Iterable[int]) -> Iterator[tuple[bytes, bytes]]:
        offset_key = self.store.offset_key
        for p in sorted(partitions):
            for key, value in self._db(p).items():
                if key != offset_key:
                    yield key, value

    def persisted_offset(self, partition: int) -> int | None:
        """The changelog offset this worker's copy of ``partition`` is complete up to."""
        tp = TP(self.table.changelog_topic.get_topic_name(), partition)
        offset: int | None = self.store.persisted_offset(tp)
        return offset
