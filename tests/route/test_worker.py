"""``RouteWorker`` without faust or a broker: a dict as the table, a ``MemorySink`` as Kafka.

What the worker promises on its own: events before state, one changelog marker per touched
partition, dead letters for bad input that keep the rest of the batch, due indexes that
ticks drain, and an unchanged input writing nothing new."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from common import codecs
from common.produce import MemorySink, Output, Written
from schemas.commands import CommandType
from services.route.settings import RouteSettings
from services.route.worker import MARKER_KEY, Incoming, RouteTopics, RouteWorker

from .factories import command, message, router

WIB = ZoneInfo("Asia/Jakarta")
MON_9 = datetime(2026, 11, 23, 9, 0, tzinfo=WIB)
TOPICS = RouteTopics("routes", "sla", "deadletter", changelog=lambda: "changelog")


def worker(table: dict[bytes, bytes] | None = None) -> RouteWorker:
    return RouteWorker(router(), {} if table is None else table, TOPICS, RouteSettings())


def record(value: Any, key: str, partition: int = 0, offset: int = 0) -> Incoming:
    data = value if isinstance(value, bytes) else codecs.dumps(value)
    return Incoming("classified", partition, offset, key.encode(), data)


def values(sink: MemorySink, topic: str) -> list[dict[str, Any]]:
    return [orjson.loads(r.value or b"null") for r in sink.on(topic)]


async def test_a_complaint_is_routed_and_its_state_written_after_the_events() -> None:
    table: dict[bytes, bytes] = {}
    w, sink = worker(table), MemorySink()
    await w.handle_batch(w.on_classified, [record(message("c1", "t1", MON_9), "t1", 3)], sink)
    topics = [r.topic for r in sink.records]
    assert topics == ["routes", "changelog", "changelog"]  # event, state, marker
    assert values(sink, "routes")[0]["event_type"] == "routed"
    state, marker = sink.on("changelog")
    assert (state.key, state.partition, state.value) == (b"t1", 3, table[b"t1"])
    assert (marker.key, marker.value, marker.partition) == (MARKER_KEY, None, 3)
    assert w.index(3).peek() is not None  # its first deadline is scheduled


async def test_bad_records_are_dead_lettered_and_the_rest_of_the_batch_goes_through() -> None:
    w, sink = worker(), MemorySink()
    batch = [
        record(b"{not json", "t0", offset=1),
        record(message("c1", "t1", MON_9), "wrong-key", offset=2),
        record(message("c2", "t2", MON_9), "t2", offset=3),
    ]
    await w.handle_batch(w.on_classified, batch, sink)
    letters = values(sink, "deadletter")
    assert [(d["reason"], d["source_offset"]) for d in letters] == [
        ("invalid_classified", 1),
        ("key_mismatch", 2),
    ]
    assert all(d["stage"] == "route" and d["payload_b64"] for d in letters)
    assert [e["complaint_id"] for e in values(sink, "routes")] == ["instagram:c2"]


async def test_a_redelivered_message_writes_no_event_and_no_state() -> None:
    table: dict[bytes, bytes] = {}
    w = worker(table)
    first = MemorySink()
    await w.handle_batch(w.on_classified, [record(message("c1", "t1", MON_9), "t1")], first)
    again = MemorySink()
    await w.handle_batch(w.on_classified, [record(message("c1", "t1", MON_9), "t1")], again)
    assert again.records == []


async def test_ticks_fire_due_stages_once_and_commands_are_applied() -> None:
    w, sink = worker(), MemorySink()
    await w.handle_batch(w.on_classified, [record(message("c1", "t1", MON_9), "t1")], sink)
    await w.reindex(frozenset({0}))
    later = (MON_9 + timedelta(hours=3, minutes=30)).timestamp()
    assert w.due_partitions(later, mono=0.0) == [0]
    assert w.due_partitions(later, mono=1.0) == []  # a tick is already pending
    tick = Incoming("ticks", 0, 0, None, orjson.dumps({"now": later}))
    await w.handle_batch(w.on_tick, [tick, tick], sink)
    warnings = [e for e in values(sink, "sla") if e["event_type"] == "warning"]
    assert len(warnings) == 1
    resolve = command("k1", CommandType.resolve, "instagram:c1", "t1", MON_9 + timedelta(hours=4))
    await w.handle_batch(w.on_command, [record(resolve, "t1")], sink)
    assert values(sink, "sla")[-1]["event_type"] == "resolved"


async def test_a_refused_command_is_a_dead_letter_with_its_reason() -> None:
    w, sink = worker(), MemorySink()
    resolve = command("k9", CommandType.resolve, "instagram:c9", "t9", MON_9)
    await w.handle_batch(w.on_command, [record(resolve, "t9")], sink)
    assert [d["reason"] for d in values(sink, "deadletter")] == ["unknown_complaint"]


async def test_a_failed_write_raises_so_the_batch_is_not_committed() -> None:
    w, sink = worker(), MemorySink(fail=RuntimeError("broker gone"))
    with pytest.raises(RuntimeError, match="broker gone"):
        await w.handle_batch(w.on_classified, [record(message("c1", "t1", MON_9), "t1")], sink)


@pytest.mark.parametrize("failing", ["routes", "changelog"])
async def test_the_table_keeps_no_state_whose_events_or_changelog_were_not_acknowledged(
    failing: str,
) -> None:
    """A persistent table outlives a crash: it must not say "seen, routed" for a message
    whose event never reached the broker, else the replay after restart would drop it."""
    table: dict[bytes, bytes] = {}
    w = worker(table)
    sink = MemorySink(fail=RuntimeError("broker gone"), fail_topics=frozenset({failing}))
    with pytest.raises(RuntimeError):
        await w.handle_batch(w.on_classified, [record(message("c1", "t1", MON_9), "t1")], sink)
    assert table == {} and w.overlay == {}
    retry = MemorySink()  # the uncommitted input is delivered again: routed after all
    await w.handle_batch(w.on_classified, [record(message("c1", "t1", MON_9), "t1")], retry)
    assert [e["event_type"] for e in values(retry, "routes")] == ["routed"]
    assert b"t1" in table


async def test_a_batch_reads_its_own_unwritten_states() -> None:
    table: dict[bytes, bytes] = {}
    w, sink = worker(table), MemorySink()
    reply = message("r1", "t1", MON_9 + timedelta(minutes=30), agency_reply=True)
    batch = [record(message("c1", "t1", MON_9), "t1"), record(reply, "t1")]
    await w.handle_batch(w.on_classified, batch, sink)
    assert [e["event_type"] for e in values(sink, "sla")] == ["responded"]
    assert len(sink.on("changelog")) == 3  # two states, one marker


class HeldSink:
    """A ``RecordSink`` whose acknowledgements wait for ``release`` (then succeed, or fail
    with ``fail``): a broker answering slowly."""

    def __init__(self, fail: BaseException | None = None) -> None:
        self.inner = MemorySink(fail=fail)
        self.release = asyncio.Event()

    async def send(self, output: Output) -> Awaitable[Written]:
        async def acked() -> Written:
            await self.release.wait()
            return await (await self.inner.send(output))

        return asyncio.ensure_future(acked())


async def test_the_next_batch_is_decided_while_one_is_written_and_reads_its_states() -> None:
    """Batches pipeline: the second is decided while the first waits for the broker, reads
    the first's states (a reply to its complaint), and is written after it."""
    table: dict[bytes, bytes] = {}
    w, sink = worker(table), HeldSink()
    first = await w.start_batch(w.on_classified, [record(message("c1", "t1", MON_9), "t1")], sink)
    reply = message("r1", "t1", MON_9 + timedelta(minutes=30), agency_reply=True)
    second = await w.start_batch(w.on_classified, [record(reply, "t1")], sink)
    await asyncio.sleep(0.01)
    assert not first.done() and not second.done()
    assert table == {} and sink.inner.records == []  # nothing acknowledged: nothing stored
    sink.release.set()
    await second
    assert first.done()
    assert [e["event_type"] for e in values(sink.inner, "routes")] == ["routed"]
    assert [e["event_type"] for e in values(sink.inner, "sla")] == ["responded"]
    first_state, second_state = [r for r in sink.inner.on("changelog") if r.key == b"t1"]
    assert table[b"t1"] == second_state.value != first_state.value
    assert w.overlay == {}


async def test_a_batch_decided_on_states_that_were_never_written_is_not_written() -> None:
    """The first batch's write fails: the second, which read its states, fails too (even on
    a healthy broker) and stores nothing; both can be run again from the table."""
    table: dict[bytes, bytes] = {}
    w, failing, healthy = worker(table), HeldSink(fail=RuntimeError("broker gone")), MemorySink()
    c1 = record(message("c1", "t1", MON_9), "t1")
    reply = record(message("r1", "t1", MON_9 + timedelta(minutes=30), agency_reply=True), "t1")
    first = await w.start_batch(w.on_classified, [c1], failing)
    second = await w.start_batch(w.on_classified, [reply], healthy)
    failing.release.set()
    for written in (first, second):
        with pytest.raises(RuntimeError, match="broker gone"):
            await written
    assert healthy.records == [] and table == {} and w.overlay == {}
    again = MemorySink()
    await w.handle_batch(w.on_classified, [c1], again)
    await w.handle_batch(w.on_classified, [reply], again)
    assert [e["event_type"] for e in values(again, "routes")] == ["routed"]
    assert [e["event_type"] for e in values(again, "sla")] == ["responded"]


async def test_a_never_resolved_complaint_is_dropped_and_counted() -> None:
    from common import metrics

    table: dict[bytes, bytes] = {}
    w = RouteWorker(router(), table, TOPICS, RouteSettings())
    sink = MemorySink()
    await w.handle_batch(w.on_classified, [record(message("c1", "t1", MON_9), "t1")], sink)
    await w.reindex(frozenset({0}))
    dropped = metrics.UNRESOLVED_DROPPED.labels("sby-public-works")
    before = dropped._value.get()  # noqa: SLF001  # prometheus_client has no public getter
    far = (MON_9 + timedelta(days=400)).timestamp()
    for _ in range(2):  # catch-up fires every stage, the next tick drops the complaint
        tick = Incoming("ticks", 0, 0, None, orjson.dumps({"now": far}))
        await w.handle_batch(w.on_tick, [tick], sink)
    assert table == {}
    assert sink.on("changelog")[-2].value is None  # the tombstone before the marker
    assert dropped._value.get() == before + 1  # noqa: SLF001
    assert w.open_by_agency["sby-public-works"] == 0


async def test_a_batchs_metrics_are_written_when_it_is_decided() -> None:
    """Counters, gauges and latency histograms go through one ``Tally`` per batch: after
    the batch they read what one write per complaint would have."""
    from prometheus_client import REGISTRY

    def sample(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    routed = {"agency_id": "sby-public-works", "agency_kind": "public_works"}
    latency = {"processor": "route", "since": "received"}
    before = (
        sample("aduan_routed_total", **routed),
        sample("aduan_pipeline_latency_seconds_count", **latency),
    )
    w, sink = worker(), MemorySink()
    batch = [record(message(f"m{i}", f"t{i}", MON_9), f"t{i}", 0, i) for i in range(3)]
    await w.handle_batch(w.on_classified, batch, sink)
    assert sample("aduan_routed_total", **routed) == before[0] + 3
    assert sample("aduan_pipeline_latency_seconds_count", **latency) == before[1] + 3
    assert sample("aduan_open_complaints", agency_id="sby-public-works") == 3
    assert w.tally.counts == {} and w.tally.observed == {}  # flushed, nothing left over
