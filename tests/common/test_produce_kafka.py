"""``send_all(..., batched=True)`` against the real broker: records land where aiokafka's own
partitioner puts them, the offsets it answers are where a consumer finds them, and a record
too large fails alone."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import MessageSizeTooLargeError
from aiokafka.partitioner import DefaultPartitioner

from common.produce import KafkaSink, Output, RecordBatch, Written, send_all
from tests.support import TopicReader

pytestmark = pytest.mark.kafka

PARTITIONS = 4
MAX_REQUEST = 20_000


async def create(bootstrap: str, *topics: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(t, PARTITIONS, 1) for t in topics])
    finally:
        await admin.close()


class CountingSink(KafkaSink):
    __slots__ = ("batches",)

    def __init__(self, producer: AIOKafkaProducer) -> None:
        super().__init__(producer)
        self.batches = 0

    async def send_batch(
        self, batch: RecordBatch, topic: str, partition: int
    ) -> Awaitable[Written]:
        self.batches += 1
        return await super().send_batch(batch, topic, partition)


@pytest.fixture
async def producer(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    """aiokafka's defaults (its ``DefaultPartitioner``), small batches so each partition
    takes several, and a small request limit so a too-large record is cheap."""
    p = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap,
        acks="all",
        max_batch_size=2048,
        max_request_size=MAX_REQUEST,
    )
    await p.start()
    yield p
    await p.stop()


async def test_batched_records_land_where_aiokafka_puts_them_at_the_offsets_answered(
    kafka_bootstrap: str, topic_prefix: str, producer: AIOKafkaProducer
) -> None:
    batched, single = f"{topic_prefix}batched", f"{topic_prefix}single"
    await create(kafka_bootstrap, batched, single)
    records = [
        (f"thread-{i % 37}".encode(), f"value {i} ".encode() * (1 + i % 9)) for i in range(300)
    ]
    explicit = [(b"pinned", b"to partition 3")]
    oversized = (b"huge", b"x" * MAX_REQUEST)

    def outputs(topic: str) -> list[Output]:
        out = [Output(topic, k, v, (("origin", b"test"),)) for k, v in records]
        out.insert(150, Output(topic, *oversized))
        out += [Output(topic, k, v, partition=3) for k, v in explicit]
        out.append(Output(topic, None, b"no key"))  # a random available partition
        return out

    sink = CountingSink(producer)
    got = await send_all(sink, outputs(batched), batched=True)
    assert sink.batches > PARTITIONS + 1  # 2 kB batches: several per partition
    one_by_one = await send_all(sink, outputs(single))

    for results in (got, one_by_one):
        assert isinstance(results[150], MessageSizeTooLargeError), results[150]
        assert "max_request_size" in str(results[150])
    del got[150], one_by_one[150]
    assert all(not isinstance(r, BaseException) for r in got), got
    partitioner = DefaultPartitioner()
    every = list(range(PARTITIONS))
    expected = [partitioner(k, every, every) for k, _ in records] + [3]
    assert [r.partition for r in got[:-1]] == expected
    assert [r.partition for r in one_by_one[:-1]] == expected
    assert len({(r.partition, r.offset) for r in got}) == len(got)  # no two in one place

    async with TopicReader(kafka_bootstrap, batched) as reader:
        await reader.wait_for(lambda recs: len(recs) >= len(got))
        await reader.drain(quiet_s=0.5)
    assert len(reader.records) == len(got)  # the oversized one was not written
    found = {(r.partition, r.offset): (r.key, r.value, list(r.headers)) for r in reader.records}
    sent = [(k, v, [("origin", b"test")]) for k, v in records] + [(*explicit[0], [])]
    for result, record in zip(got, [*sent, (None, b"no key", [])], strict=True):
        assert found[(result.partition, result.offset)] == record
