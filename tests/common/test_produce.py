"""``send_all`` without a broker: the whole-batch path gives every record the result the
one-by-one path gives it (``MemorySink`` implements both)."""

from __future__ import annotations

import random
from collections.abc import Awaitable

import pytest
from aiokafka.errors import MessageSizeTooLargeError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.partitioning import murmur2
from common.produce import (
    MemorySink,
    Output,
    SendResult,
    Written,
    send_all,
    send_all_or_raise,
)


def keyed(n: int, topic: str = "a", size: int = 10) -> list[Output]:
    return [Output(topic, f"k{i}".encode(), bytes([i % 256]) * size) for i in range(n)]


def where(results: list[SendResult]) -> list[tuple[str, int, int] | tuple[str, str]]:
    """Results in a comparable form: where each landed, or its exception's type and words."""
    return [
        (type(r).__name__, str(r))
        if isinstance(r, BaseException)
        else (r.topic, r.partition, r.offset)
        for r in results
    ]


async def test_batched_writes_one_batch_per_topic_partition_where_the_key_hashes() -> None:
    sink = MemorySink(partitions=4)
    outputs = keyed(40, "a") + keyed(40, "b")
    results = await send_all(sink, outputs, batched=True)
    tps = {(o.topic, (murmur2(o.key or b"") & 0x7FFFFFFF) % 4) for o in outputs}
    assert sink.batches == len(tps)
    for o, r in zip(outputs, results, strict=True):
        assert not isinstance(r, BaseException)
        assert (r.topic, r.partition) == (o.topic, (murmur2(o.key or b"") & 0x7FFFFFFF) % 4)
        (landed,) = [x for x in sink.records if (x.topic, x.partition, x.offset) == where([r])[0]]
        assert (landed.key, landed.value) == (o.key, o.value)


async def test_a_full_batch_is_sent_and_the_next_one_continues_its_offsets() -> None:
    sink = MemorySink(batch_bytes=50)  # one partition, five 10-byte records per batch
    outputs = [Output("a", None, bytes([i]) * 10) for i in range(23)]
    results = await send_all_or_raise(sink, outputs, batched=True)
    assert sink.batches == 5
    assert [r.offset for r in results] == list(range(23))
    assert [r.value for r in sink.records] == [o.value for o in outputs]


async def test_an_oversized_record_fails_alone_in_both_paths() -> None:
    for batched in (False, True):
        sink = MemorySink(partitions=3, max_request_size=500)
        outputs = keyed(5)
        outputs.insert(2, Output("a", b"big", b"x" * 1000))
        results = await send_all(sink, outputs, batched=batched)
        assert isinstance(results[2], MessageSizeTooLargeError)
        assert "max_request_size" in str(results[2]) and "500 bytes" in str(results[2])
        assert all(not isinstance(r, BaseException) for i, r in enumerate(results) if i != 2)
        assert len(sink.records) == 5
        with pytest.raises(MessageSizeTooLargeError):
            await send_all_or_raise(sink, outputs, batched=batched)


async def test_a_failing_topic_fails_its_records_and_only_them() -> None:
    boom = RuntimeError("broker gone")
    sink = MemorySink(partitions=2, fail=boom, fail_topics=frozenset({"b"}))
    outputs = keyed(6, "a") + keyed(6, "b")
    results = await send_all(sink, outputs, batched=True)
    assert results[6:] == [boom] * 6
    assert all(not isinstance(r, BaseException) for r in results[:6])
    with pytest.raises(RuntimeError, match="broker gone"):
        await send_all_or_raise(sink, outputs, batched=True)


class OneByOne:
    """A sink without batches: ``batched=True`` falls back to its ``send``."""

    def __init__(self) -> None:
        self.inner = MemorySink(partitions=2)
        self.sent = 0

    async def send(self, output: Output) -> Awaitable[Written]:
        self.sent += 1
        return await self.inner.send(output)


async def test_a_sink_without_batches_is_written_record_by_record() -> None:
    sink = OneByOne()
    results = await send_all_or_raise(sink, keyed(7), batched=True)
    assert sink.sent == 7 and len(results) == 7 and sink.inner.batches == 0


outputs_strategy = st.lists(
    st.builds(
        Output,
        topic=st.sampled_from(["a", "b", "c"]),
        key=st.none() | st.binary(min_size=0, max_size=12),
        value=st.binary(min_size=1, max_size=300),
        headers=st.lists(
            st.tuples(st.sampled_from(["h", "origin"]), st.binary(max_size=8)), max_size=2
        ).map(tuple),
        partition=st.none() | st.integers(0, 2),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    outputs=outputs_strategy,
    fail_topics=st.sets(st.sampled_from(["a", "b", "c"]), max_size=2),
    batch_bytes=st.integers(1, 2000),
    seed=st.integers(0, 2**32 - 1),
)
async def test_batched_results_equal_record_by_record_results(
    outputs: list[Output], fail_topics: set[str], batch_bytes: int, seed: int
) -> None:
    """Whatever the outputs (keyed or not, explicit partitions, some too large for the
    255-byte limit, some topics failing): the same result for each record, in the same
    place, and the same records written to each partition in the same order."""
    fail = RuntimeError("refused") if fail_topics else None

    def sink() -> MemorySink:
        return MemorySink(
            partitions=3, fail=fail, fail_topics=frozenset(fail_topics),
            max_request_size=255, batch_bytes=batch_bytes,
        )  # fmt: skip

    one, whole = sink(), sink()
    random.seed(seed)  # records without key nor partition: the same random choices
    expected = await send_all(one, outputs)
    random.seed(seed)
    got = await send_all(whole, outputs, batched=True)
    assert where(got) == where(expected)

    def log(s: MemorySink) -> list[tuple[str, int, int, bytes | None, bytes | None]]:
        return sorted((r.topic, r.partition, r.offset, r.key, r.value) for r in s.records)

    assert log(whole) == log(one)
