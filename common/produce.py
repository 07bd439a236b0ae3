"""The one way aduan writes records: ``Output`` values, a ``RecordSink``, ``send_all``.

Every processor turns its input into ``Output`` records with a pure function and hands them
to ``send_all``, which enqueues them all and then waits for each acknowledgement, returning
one result per record (the metadata, or the exception that record failed with). Callers
decide what a failure means: ingest answers 503 and releases its dedup claims, the batch
loop and route stop before committing offsets, replay counts it.

``RecordSink`` is a one-method interface (in the manner of httpx's transports) with two
implementations: ``KafkaSink`` over an aiokafka producer, and ``MemorySink``, an in-memory
double that records what was written and can be told to fail, so a service's request and
batch logic is tested without a broker and only the tests about the broker need one."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from aiokafka import AIOKafkaProducer


@dataclass(frozen=True, slots=True)
class Output:
    """A record a processor wants written. ``partition`` None lets the producer's
    partitioner choose (murmur2 of the key, as every Kafka client does)."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()
    partition: int | None = None


class Written(Protocol):
    """Where a record landed (aiokafka's ``RecordMetadata`` has these attributes)."""

    @property
    def topic(self) -> str: ...

    @property
    def partition(self) -> int: ...

    @property
    def offset(self) -> int: ...


class RecordSink(Protocol):
    """Enqueue one record; the returned awaitable resolves when the broker acknowledged it
    (or raises why it did not). Enqueueing itself may wait for buffer space."""

    async def send(self, output: Output) -> Awaitable[Written]: ...


class KafkaSink:
    """A ``RecordSink`` over an aiokafka producer (acks as the producer is configured)."""

    __slots__ = ("producer",)

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer

    async def send(self, output: Output) -> Awaitable[Written]:
        future: Awaitable[Written] = await self.producer.send(
            output.topic,
            output.value,
            key=output.key,
            partition=output.partition,
            headers=list(output.headers) if output.headers else None,
        )
        return future


@dataclass(frozen=True, slots=True)
class MemoryRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]


@dataclass
class MemorySink:
    """An in-memory ``RecordSink`` for tests: records land in ``records`` with per-topic
    partitions and offsets; ``fail`` (an exception) makes every send fail with it, and
    ``fail_topics`` only the sends to those topics."""

    partitions: int = 1
    records: list[MemoryRecord] = field(default_factory=list)
    fail: BaseException | None = None
    fail_topics: frozenset[str] = frozenset()
    _offsets: dict[tuple[str, int], itertools.count[int]] = field(default_factory=dict)

    async def send(self, output: Output) -> Awaitable[Written]:
        future: asyncio.Future[Written] = asyncio.get_running_loop().create_future()
        if self.fail is not None and (not self.fail_topics or output.topic in self.fail_topics):
            future.set_exception(self.fail)
            return future
        partition = output.partition if output.partition is not None else 0
        counter = self._offsets.setdefault((output.topic, partition), itertools.count())
        record = MemoryRecord(
            output.topic, partition, next(counter), output.key, output.value, output.headers
        )
        self.records.append(record)
        future.set_result(record)
        return future

    def on(self, topic: str) -> list[MemoryRecord]:
        return [r for r in self.records if r.topic == topic]


SendResult = Written | BaseException


async def send_all(
    sink: RecordSink, outputs: Sequence[Output] | Iterable[Output], timeout: float | None = None
) -> list[SendResult]:
    """Send every output, then wait for each acknowledgement; one result per output, in
    order: where it landed, or the exception it failed with.

    Awaited one by one rather than gathered: the same outcome (every record is waited for)
    at a lower cost per record. With ``timeout`` the whole call is bounded; on expiry every
    output counts as failed, because which of them will still land is unknown."""
    outputs = list(outputs)
    if not outputs:
        return []
    try:
        async with asyncio.timeout(timeout):
            pending = [await sink.send(o) for o in outputs]
            results: list[SendResult] = []
            for future in pending:
                try:
                    results.append(await future)
                except Exception as exc:  # this record refused: the others still count
                    results.append(exc)
            return results
    except Exception as exc:  # timeout, producer closed: nothing certain
        return [exc] * len(outputs)


def first_failure(results: Iterable[SendResult]) -> BaseException | None:
    return next((r for r in results if isinstance(r, BaseException)), None)


async def send_all_or_raise(
    sink: RecordSink, outputs: Sequence[Output] | Iterable[Output], timeout: float | None = None
) -> list[Written]:
    """``send_all`` for callers that cannot go on with a partial write (a batch that must
    not be committed): raises the first failure, else returns every record's position."""
    results = await send_all(sink, outputs, timeout)
    failure = first_failure(results)
    if failure is not None:
        raise failure
    return [r for r in results if not isinstance(r, BaseException)]
