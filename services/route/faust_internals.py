"""Every use of faust's private API in aduan, in one module, each with its reason.

**No per-event monitor.** faust adds its ``Monitor`` sensor to every app when it starts
(``App.on_init_dependencies``); the monitor records per message and per stream event
timings and counters that only faust's web views read (route runs with the web server off,
and its metrics are its own). ``drop_event_monitor`` removes it from the sensors right
after faust added it, which takes its four calls out of every event's path (commit and
end-offset tracking call the monitor directly and keep working).

**Route's RocksDB table, partition by partition.** faust's RocksDB store keeps one database
per changelog partition but picks it from "the current event" (``Store._set`` asserts one),
which is wrong inside route's batches, and it learns the changelog offset it may resume
from only through faust's own per-record changelog sends, which route bypasses (see
``aiokafka_producer``). ``rocks_state`` therefore gives ``services.route.rocks.RocksState``
the store's per-partition databases (``_db_for_partition``), which writes a batch's
acknowledged states with the offset key faust's recovery reads (``persisted_offset``) in
one atomic ``WriteBatch``; and it replaces the store's ``apply_changelog_batch`` (what
recovery and standbys call) so the due index kept beside the states follows those writes.

faust-streaming is pinned to ``>=0.15.2,<0.16`` (pyproject); a minor upgrade must re-check
this module and nothing else.

**A bound on faust's fetch wait.** faust 0.15 creates its consumer with
``fetch_max_wait_ms=1500`` hard-coded. Kafka answers a fetch as soon as data arrives, so there
the value only matters when idle; Tansu answers only when the wait expires, so every record
entering route waited ~0.4 s on average (up to 1.5 s), which also delayed timer ticks. The
consumer reads the value at ``start()``, so setting it on the freshly created consumer is
enough.

**Route's inputs in whole batches.** faust hands every fetched record to
``Conductor.on_message`` one at a time: it awaits flow control and the producer buffer,
decodes an ``Event``, queues it for the agent's stream, which acks it once the agent asked
for the next; route's agent then rebuilt batches with ``take_events``. Measured, that
per-event path cost route half its throughput (docs/performance.md, "route without faust").
``batch_inputs`` replaces the consumer's fetch loop (``Consumer._drain_messages``; faust
has no hook for it) with a copy that gives route's input topic-partitions to route whole:
every fetch's records of those topics go, in chunks of at most ``batch_max``, to one
callback, which decides the chunk and returns its write (a future). Only once that write is
done (route's outputs and changelog records acknowledged) do the chunk's offsets join
faust's ack bookkeeping (``_acked``, ``_acked_index``, ``_n_acked``; ``Consumer.ack`` does
the same one message at a time), so faust's own commit timer, its ``commit_every`` and its
commit on rebalance and stop commit them: never before the outputs are durable. Two chunks
are in flight at most: the next is decided while the previous one's writes travel. Every
other topic (the table's changelog during recovery and for standbys, route's ticks) still
takes faust's per-message path unchanged. faust waits for in-flight events before a
rebalance or a stop commits (``Consumer.wait_empty``); that wait now also waits for the
chunks being decided or written (their writes are tasks of their own, so the fetch loop's
cancellation on stop does not cut them). A chunk whose write failed (the broker refused an
output), and the chunks after it, which read its states, are decided and written again, in
order, every ``retry_s``, until written or until the flow stops (rebalance, stop; faust
then seeks back to the committed offsets): never skipped."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import faust
from aiokafka import AIOKafkaProducer, ConsumerRecord
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as driver
from faust.types import TP

from services.route.rocks import RocksState

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


def rocks_state(table: Any) -> RocksState:
    """Route's ``RocksState`` over a faust table on the ``rocksdb://`` store: its databases
    come from the store, and faust's changelog recovery and standby replication are routed
    through ``RocksState.apply_changelog`` so the due index and counts stay derived from
    every state written (see module docstring)."""
    store = table.data
    state = RocksState(store._db_for_partition, store.offset_key)  # noqa: SLF001

    def apply_changelog_batch(
        batch: Iterable[Any], to_key: Callable[[Any], Any], to_value: Callable[[Any], Any]
    ) -> None:
        del to_key, to_value  # raw bytes on both sides (key_type/value_type bytes)
        state.apply_changelog(
            (e.message.partition, e.message.offset, e.message.key, e.message.value) for e in batch
        )

    store.apply_changelog_batch = apply_changelog_batch
    return state


def drop_event_monitor(app: faust.App) -> None:
    """Take faust's ``Monitor`` out of ``app``'s per-event sensors (see module docstring)."""
    original = app.on_init_dependencies

    def on_init_dependencies() -> Any:
        deps = original()
        app.sensors.remove(app.monitor)
        return deps

    app.on_init_dependencies = on_init_dependencies  # type: ignore[method-assign]


def crashable_services(app: faust.App) -> tuple[Any, ...]:
    """The faust services whose crash leaves route unable to work while the app runs on:
    the app and its table recovery (``TableManager.recovery``: not on ``TableManagerT``)."""
    return (app, app.tables.recovery)  # type: ignore[attr-defined]


log = logging.getLogger("aduan.route")
Spans = dict[Any, tuple[int, int]]
"""Per topic-partition, the first and last offset a chunk covers."""


@dataclass(frozen=True, slots=True)
class Chunk:
    """Records of one input topic given to route at once, fetched in ``generation``."""

    topic: str
    records: list[ConsumerRecord]
    spans: Spans
    generation: int


@dataclass(frozen=True, slots=True)
class Pending:
    chunk: Chunk
    written: asyncio.Future[None]


def _failure(written: asyncio.Future[None]) -> BaseException | None:
    if written.cancelled():
        return asyncio.CancelledError()
    return written.exception()


BatchCallback = Callable[[str, Sequence[ConsumerRecord]], Awaitable[asyncio.Future[None]]]
"""``(topic, records)``: decide one chunk of one input topic (records of any of its
partitions, in offset order per partition) and return its write: a future done once its
outputs are durable, after the writes of the chunks given before it (it fails if any of
them failed)."""


def batch_inputs(
    app: faust.App,
    topics: Collection[str],
    process: BatchCallback,
    batch_max: int,
    retry_s: float = 1.0,
) -> InputBatches:
    """Give ``app``'s records of ``topics`` to ``process`` in whole batches, past faust's
    per-event path (see module docstring). The caller subscribes the topics (``app.topics``
    ``.add``: no agent is needed for them)."""
    batches = InputBatches(app, frozenset(topics), process, batch_max, retry_s)
    original = app._new_consumer  # noqa: SLF001

    def new_consumer() -> Any:
        consumer = original()
        batches.install(consumer)
        return consumer

    app._new_consumer = new_consumer  # type: ignore[method-assign]  # noqa: SLF001
    return batches


class InputBatches:
    """The fetch loop that hands route its input batches, and the ack bookkeeping after.

    Up to ``depth`` chunks are in flight: the next chunk is decided while the previous
    one's outputs travel to the broker (their writes are ordered by the callback)."""

    def __init__(
        self,
        app: faust.App,
        topics: frozenset[str],
        process: BatchCallback,
        batch_max: int,
        retry_s: float,
        depth: int = 2,
    ) -> None:
        self.app, self.topics, self.process = app, topics, process
        self.batch_max, self.retry_s, self.depth = batch_max, retry_s, depth
        self.pending: deque[Pending] = deque()
        self.inflight: set[asyncio.Future[None]] = set()
        """Chunks being decided or written: a rebalance or stop commits after them."""
        self.chunks = 0
        """Chunks written and acked (tests and diagnostics)."""

    def install(self, consumer: Any) -> None:
        original_wait_empty = consumer.wait_empty

        async def drain_messages(fetcher: Any) -> None:
            await self.drain(consumer, fetcher)

        async def wait_empty() -> None:
            await self.idle()  # the chunks in flight ack first: faust's commit then takes them
            await original_wait_empty()

        consumer._drain_messages = drain_messages  # noqa: SLF001
        consumer.wait_empty = wait_empty

    async def idle(self) -> None:
        """Return once no chunk is being decided or written."""
        while self.inflight:
            await asyncio.wait(list(self.inflight))

    async def drain(self, consumer: Any, fetcher: Any) -> None:
        """faust's ``Consumer._drain_messages`` (0.15), with route's topics batched."""
        consumer_stopped = consumer._stopped.is_set  # noqa: SLF001
        fetcher_stopped = fetcher._stopped.is_set  # noqa: SLF001
        try:
            while not (consumer_stopped() or fetcher_stopped()):
                consumer.diag.set_flag(CONSUMER_FETCHING)
                records, active = await consumer._wait_next_records(1.0)  # noqa: SLF001
                await consumer.sleep(0)
                if records is None or consumer.should_stop:
                    continue
                if not consumer.flow_active:  # as faust's getmany: back to the commits
                    self.pending.clear()  # not acked unless written: read again
                    try:
                        await consumer.perform_seek()
                    except Exception as exc:  # faust only warns too
                        log.warning("exception performing seek when flow not active %s", exc)
                    continue
                await self._dispatch(consumer, records, active)
                while self.pending and self.pending[0].written.done():  # a failure: retry now
                    await self._settle_oldest(consumer)
                consumer.diag.unset_flag(CONSUMER_FETCHING)
        except consumer.consumer_stopped_errors:
            if consumer.transport.app.should_stop:
                return
            raise
        except asyncio.CancelledError:
            if consumer.transport.app.should_stop:
                return
            raise
        finally:
            consumer.diag.unset_flag(CONSUMER_FETCHING)

    async def _dispatch(self, consumer: Any, records: Any, active: Any) -> None:
        generation = self.app.consumer_generation_id
        read_offset = consumer._read_offset  # noqa: SLF001
        buffered = consumer._buffered_partitions  # noqa: SLF001
        batched: dict[str, list[ConsumerRecord]] = {}
        for tp, recs in records.items():
            if not recs or (active is not None and tp not in active and tp not in buffered):
                continue
            self.app.monitor.track_tp_end_offset(tp, consumer.highwater(tp))
            if tp.topic in self.topics:
                r = read_offset[tp]
                if r is not None and recs[0].offset < r:  # faust drops what it already read
                    recs = [rec for rec in recs if rec.offset >= r]
                batched.setdefault(tp.topic, []).extend(recs)
            else:
                await self._per_message(consumer, tp, recs, generation)
        for topic, recs in batched.items():
            for i in range(0, len(recs), self.batch_max):
                while len(self.pending) >= self.depth:
                    await self._settle_oldest(consumer)
                if not self._current(consumer, generation):
                    return  # the rest is fetched again from the committed offsets
                chunk = recs[i : i + self.batch_max]
                await self._start(
                    consumer, Chunk(topic, chunk, self._spans(consumer, chunk), generation)
                )
                await self._commit_if_due(consumer)

    @staticmethod
    async def _commit_if_due(consumer: Any) -> None:
        """faust's ``commit_every``: commit once that many offsets were acked since the last."""
        every = consumer._commit_every  # noqa: SLF001
        if every is not None and consumer._n_acked >= every:  # noqa: SLF001
            consumer._n_acked = 0  # noqa: SLF001
            await consumer.commit()

    def _current(self, consumer: Any, generation: int) -> bool:
        return bool(consumer.flow_active) and self.app.consumer_generation_id == generation

    async def _start(self, consumer: Any, chunk: Chunk) -> asyncio.Future[None]:
        """Decide a chunk; its offsets are acked when its write is done."""
        deciding: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.inflight.add(deciding)
        try:
            written = await self.process(chunk.topic, chunk.records)
            self.inflight.add(written)
            written.add_done_callback(lambda f: self._written(consumer, chunk.spans, f))
            self.pending.append(Pending(chunk, written))
            return written
        finally:
            self.inflight.discard(deciding)
            deciding.set_result(None)

    def _written(self, consumer: Any, spans: Spans, written: asyncio.Future[None]) -> None:
        self.inflight.discard(written)
        if _failure(written) is None:
            self._ack(consumer, spans)
            self.chunks += 1

    async def _settle_oldest(self, consumer: Any) -> None:
        """Wait for the oldest chunk's write. If it failed, so do the ones after it (they
        read its states): decide and write them again, in order, one at a time, until each
        is written or the flow stops (then nothing of them is acked: read again)."""
        written = self.pending[0].written
        await asyncio.wait([written])
        if _failure(written) is None:
            self.pending.popleft()
            return
        failed = list(self.pending)
        self.pending.clear()
        await asyncio.wait([p.written for p in failed])
        for pending in failed:
            chunk, error = pending.chunk, _failure(pending.written)
            while error is not None:
                log.error(
                    "route batch of %d records on %s not written (%s); retrying",
                    len(chunk.records), chunk.topic, error,
                )  # fmt: skip
                await asyncio.sleep(self.retry_s)
                if not self._current(consumer, chunk.generation):
                    return
                try:
                    again = await self._start(consumer, chunk)
                    self.pending.clear()
                    await asyncio.wait([again])
                    error = _failure(again)
                except Exception as exc:  # deciding failed: same treatment
                    error = exc

    def _spans(self, consumer: Any, chunk: list[ConsumerRecord]) -> Spans:
        """The offsets a chunk covers per partition, to ack once it is written: from just
        after the last offset read before it (offsets in between hold no record, as faust's
        ``_add_gap`` assumes) to its last record. Marks them read."""
        spans: dict[Any, tuple[int, int]] = {}
        for rec in chunk:
            tp = TP(rec.topic, rec.partition)
            first_last = spans.get(tp)
            spans[tp] = (first_last[0] if first_last else rec.offset, rec.offset)
        read_offset = consumer._read_offset  # noqa: SLF001
        for tp, (first, last) in spans.items():
            r = read_offset[tp]
            spans[tp] = (first if r is None else min(first, r + 1), last)
            read_offset[tp] = last
        return spans

    def _ack(self, consumer: Any, spans: Spans) -> None:
        """``Consumer.ack`` for every offset of ``spans`` (not below the committed one)."""
        for tp, (low, last) in spans.items():
            committed = consumer._committed_offset[tp]  # noqa: SLF001
            if committed is not None:
                low = max(low, committed)
            if low > last:
                continue
            offsets = range(low, last + 1)
            index = consumer._acked_index[tp]  # noqa: SLF001
            new = [o for o in offsets if o not in index] if index else list(offsets)
            index.update(new)
            consumer._acked[tp].extend(new)  # noqa: SLF001
            consumer._n_acked += len(new)  # noqa: SLF001

    async def _per_message(self, consumer: Any, tp: Any, recs: Any, generation: int) -> None:
        """faust's own path for one partition's records (changelog, ticks)."""
        read_offset = consumer._read_offset  # noqa: SLF001
        to_message = consumer._to_message  # noqa: SLF001
        acks_enabled = self.app.topics.acks_enabled_for(tp.topic)
        for n, record in enumerate(recs, 1):
            if not self._current(consumer, generation):
                return
            if n % 100 == 0:
                await asyncio.sleep(0)
            offset = record.offset
            r = read_offset[tp]
            if r is not None and offset < r:
                continue
            if r and offset - r > 1 and acks_enabled:
                await consumer._add_gap(tp, r + 1, offset)  # noqa: SLF001
            await self._commit_if_due(consumer)
            await consumer.wait_first(
                consumer.callback(to_message(tp, record)), consumer.suspend_flow.wait()
            )
            read_offset[tp] = offset
