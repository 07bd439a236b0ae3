"""The route worker: what route does with each record, a table and a sink, without faust.

``RouteWorker`` owns route's side of the processing: decoding and checking records, running
the pure ``Router`` step against the thread's state, queueing the events, dead letters and
the new state, writing them in the safe order, and keeping the due-time indexes the timer
reads. The faust shell (``services.route.app``) only hands it batches of ``Incoming`` records
and the table's mapping, and sends the ticks it asks for; tests drive the worker directly with
a dict as the table and a ``MemorySink``.

Write order (at-least-once without loss): a batch's events and dead letters are acknowledged
by the broker before the state that records them is written, so a crash in between re-emits
them with the same deterministic ``event_id`` rather than losing them; consumers dedup on it.
The local table (memory, or RocksDB that outlives the process) only takes a batch's states
once their changelog records are acknowledged too: until then they wait in an overlay that
the batch itself, and the batches decided while it is written, read through. Otherwise a
worker killed mid-batch would restart with a state that says "message seen, stage fired"
for events that never reached the broker.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from common import metrics
from common.deadletters import Source, dead_letter
from common.produce import Output, RecordSink, send_all_or_raise
from common.refusal import Refusal
from common.topics import CLASSIFIED, COMMANDS, ROUTES, SLA
from schemas.classified import ClassifiedMessage
from schemas.commands import Command
from schemas.routes import RouteEvent, RouteEventType
from schemas.sla import SlaEvent, SlaEventType
from services.route.clocks import ComplaintState, Event, Router, event_json, peek_schedule
from services.route.settings import RouteSettings
from services.route.timers import DueIndex

log = logging.getLogger("aduan.route")
M = TypeVar("M", bound=BaseModel)
NAME = "route"
MARKER_KEY = b"\x00route:end-of-batch"
"""Key of the tombstone that closes every changelog partition a batch wrote (see flush)."""

ADOPTIONS_KEPT = 8
"""Index times remembered per partition for the recovery catch-up (see ``adopted``)."""

Step = Callable[[ComplaintState | None], tuple[ComplaintState | None, list[Event]]]


@dataclass(frozen=True, slots=True)
class Incoming:
    """One consumed record, as the worker sees it (whatever client consumed it)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True, slots=True)
class RouteTopics:
    """Full names (with the deployment's prefix) of the topics route writes."""

    routes: str
    sla: str
    deadletter: str
    changelog: Callable[[], str]
    """The table's changelog topic; a callable because faust names it once the app runs."""


Handler = Callable[[Incoming, list[Output]], None]


class StateTable(Protocol):
    """Route's local table, partition by partition (the changelog's partitions).

    ``MappingTable`` serves a dict (tests, faust's memory store); the RocksDB store's adapter
    lives in ``services.route.faust_internals``."""

    def get(self, key: bytes, partition: int) -> bytes | None: ...

    def apply(self, partition: int, writes: dict[bytes, bytes | None], offset: int) -> None:
        """Store (``None``: delete) acknowledged changelog records, up to ``offset``."""

    def items(self, partitions: Iterable[int]) -> Iterator[tuple[bytes, bytes]]:
        """Every stored (key, value) of these partitions (others may be included)."""


class Due(Protocol):
    """A partition's due index: ``DueIndex`` in memory, or one the table keeps itself."""

    def set(self, key: bytes, due: float | None) -> None: ...

    def peek(self) -> float | None: ...

    def pop_due(self, now: float, limit: int | None = None) -> list[bytes]: ...

    def rebuild(self, items: Iterable[tuple[bytes, float]]) -> None: ...


class IndexedTable(StateTable, Protocol):
    """A table that keeps its own due index and open counts (``services.route.rocks``):
    after a restart or rebalance the worker has nothing to rebuild."""

    def due_index(self, partition: int) -> Due: ...

    def open_counts(self, partitions: Iterable[int]) -> Counter[str]: ...


class MappingTable:
    """A ``StateTable`` over one mapping for all partitions (keys are unique across them)."""

    __slots__ = ("data",)

    def __init__(self, data: MutableMapping[bytes, bytes]) -> None:
        self.data = data

    def get(self, key: bytes, partition: int) -> bytes | None:
        return self.data.get(key)

    def apply(self, partition: int, writes: dict[bytes, bytes | None], offset: int) -> None:
        data = self.data
        for key, value in writes.items():
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value

    def items(self, partitions: Iterable[int]) -> Iterator[tuple[bytes, bytes]]:
        return iter(list(self.data.items()))


class RouteWorker:
    """Route's handlers and in-memory side (due indexes per partition, tick bookkeeping,
    open complaints per agency) around a table ``thread key → ComplaintState bytes``."""

    def __init__(
        self,
        router: Router,
        table: MutableMapping[bytes, bytes] | StateTable,
        topics: RouteTopics,
        settings: RouteSettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.router = router
        self.table: StateTable = MappingTable(table) if isinstance(table, MutableMapping) else table
        self.overlay: dict[bytes, tuple[int, bytes | None]] = {}
        """The newest state (partition, value; None deleted) of each key written by a batch
        not yet acknowledged, so not yet in ``table``: what the next batches read."""
        self._writes: dict[bytes, tuple[int, bytes | None]] = {}
        """The states of the batch being decided (its entries in ``overlay``)."""
        self._tail: asyncio.Future[None] | None = None
        """The write of the batch started last: the next one writes after it."""
        self.topics = topics
        self.settings = settings
        self.clock = clock
        self.indexes: dict[int, Due] = {}
        self.retry_at: dict[bytes, float] = {}
        """Complaints whose tick failed (dead-lettered): not retried before this time."""
        self.pending: dict[int, float] = {}
        self.owned: frozenset[int] = frozenset()
        self.needs_reindex = True
        self.open_by_agency: Counter[str] = Counter()
        self.learned: dict[bytes, tuple[float, int]] = {}
        """Complaints whose next deadline had already passed when an input brought it (a late
        webhook, a platform retry, a replay): when (worker clock) and on which partition.
        Firing those is ``late_input`` catch-up, not timer lag; sparse (only such complaints),
        emptied as ticks fire them."""
        self.adopted: dict[int, list[float]] = {}
        """Per owned partition, when (worker clock) this worker indexed it, oldest first, since
        it took it over: a deadline that came due before such a moment and fires after it had
        no timer running (start, rebalance, outage): ``recovery`` catch-up from that moment.
        Per partition, not per complaint: the persistent index is never scanned."""
        self.lock = asyncio.Lock()
        self.ready_after: float | None = None
        """Seconds from ``started`` to the first completed reindex (None: not ready yet)."""
        self.started = time.monotonic()
        self.tally = metrics.Tally()
        """The metrics of the batch being decided, written when it is (``start_batch``)."""
        self._routes_out = metrics.MESSAGES_OUT.labels(NAME, ROUTES.name)
        self._sla_out = metrics.MESSAGES_OUT.labels(NAME, SLA.name)
        self._latency = (
            metrics.PROCESSING_LATENCY.labels(NAME, "platform"),
            metrics.PROCESSING_LATENCY.labels(NAME, "received"),
        )

    def index(self, partition: int) -> Due:
        idx = self.indexes.get(partition)
        if idx is None:
            indexed = self._indexed()
            idx = indexed.due_index(partition) if indexed else DueIndex[bytes]()
            self.indexes[partition] = idx
        return idx

    def _indexed(self) -> IndexedTable | None:
        table = self.table
        return table if hasattr(table, "due_index") else None  # type: ignore[return-value]

    # --- batches --------------------------------------------------------------------------
    async def handle_batch(
        self, handler: Handler, records: Sequence[Incoming], sink: RecordSink
    ) -> None:
        """Run ``handler`` on every record, then write the batch's outputs; returns once
        everything is acknowledged (the caller may then commit)."""
        await (await self.start_batch(handler, records, sink))

    async def start_batch(
        self, handler: Handler, records: Sequence[Incoming], sink: RecordSink
    ) -> asyncio.Future[None]:
        """Run ``handler`` on every record now, under the processing lock, and return the
        batch's write: a task that writes its outputs (``flush``) once the batches started
        before it are written, so a caller may decide the next batch while this one's
        acknowledgements travel (route waited for the broker ~40 % of a batch).

        A batch reads the states of the batches still being written (``overlay``), so its
        write fails when an earlier one's did: the caller runs the failed batches again, in
        order, from the table (which only ever holds acknowledged states)."""
        started = time.perf_counter()
        out: list[Output] = []
        async with self.lock:
            writes: dict[bytes, tuple[int, bytes | None]] = {}
            self._writes = writes
            try:
                for record in records:
                    handler(record, out)
            except BaseException:
                self._forget(writes)
                raise
            finally:
                self._writes = {}
                self.tally.flush()
            tail = self._tail
            before = tail if tail is not None and not tail.done() else None
            task = asyncio.ensure_future(self._write(before, out, writes, sink, started))
            self._tail = task
        return task

    async def _write(
        self,
        before: asyncio.Future[None] | None,
        out: list[Output],
        writes: dict[bytes, tuple[int, bytes | None]],
        sink: RecordSink,
        started: float,
    ) -> None:
        try:
            if before is not None:
                await before  # its failure is ours: we read its states
            await self.flush(out, sink, writes)
        finally:
            self._forget(writes)  # in the table now, or dropped with the failed batch
        metrics.BATCH_DURATION.labels(NAME).observe(time.perf_counter() - started)

    def _forget(self, writes: dict[bytes, tuple[int, bytes | None]]) -> None:
        """Take a batch's states out of the overlay (unless a later batch replaced them)."""
        overlay = self.overlay
        for key, entry in writes.items():
            if overlay.get(key) is entry:
                del overlay[key]

    async def written(self) -> None:
        """Return once every batch started so far is written (or failed)."""
        tail = self._tail
        if tail is not None and not tail.done():
            await asyncio.wait([tail])

    async def flush(
        self, out: list[Output], sink: RecordSink, writes: dict[bytes, tuple[int, bytes | None]]
    ) -> None:
        """Write a batch's outputs: events and dead letters first, then the state.

        Each phase waits for the broker's acks, so a crash can lose a state write (and the
        inputs are replayed: the same events again, same ids) but never an event whose
        state already says it was sent. Each phase goes out as whole record batches
        (``send_all(batched=True)``: route's CPU per record -10 to -15 %, see common.produce)."""
        if not out:
            return
        changelog = self.topics.changelog()
        state = [o for o in out if o.topic == changelog]
        await send_all_or_raise(sink, [o for o in out if o.topic != changelog], batched=True)
        await send_all_or_raise(sink, state, batched=True)
        # Close every changelog partition written with a one-record batch (a tombstone of a
        # key no state uses). Faust's recovery reads up to ListOffsets' end offset, which
        # Tansu reports as the *first* offset of the last batch + 1: without this record a
        # recovering worker would miss the rest of our last batch and fire stages again.
        # On Kafka it is a harmless tombstone.
        touched = sorted({o.partition for o in state if o.partition is not None})
        markers = await send_all_or_raise(
            sink, [Output(changelog, MARKER_KEY, None, partition=p) for p in touched], batched=True
        )
        # Everything is acknowledged: the local table may now hold the batch's states, with
        # the changelog offset they correspond to (a persistent store resumes after it).
        by_partition: dict[int, dict[bytes, bytes | None]] = {p: {} for p in touched}
        for key, (partition, value) in writes.items():
            by_partition.setdefault(partition, {})[key] = value
        for marker in markers:
            self.table.apply(marker.partition, by_partition.pop(marker.partition), marker.offset)

    # --- handlers -------------------------------------------------------------------------
    def on_classified(self, record: Incoming, out: list[Output]) -> None:
        decoded = self._decode(
            record, ClassifiedMessage, "invalid_classified", lambda c: c.message.thread_key,
            "message", out,
        )  # fmt: skip
        if decoded is None:
            return
        cm, key = decoded
        partition = record.partition
        if self._apply(
            record, key, lambda state: self.router.on_message(state, cm, partition), out
        ):
            self._observe_latency(cm)

    def on_command(self, record: Incoming, out: list[Output]) -> None:
        decoded = self._decode(
            record, Command, "invalid_command", lambda c: c.thread_key, "command", out
        )
        if decoded is not None:
            cmd, key = decoded
            self._apply(record, key, lambda state: self.router.on_command(state, cmd), out)

    def on_tick(self, record: Incoming, out: list[Output]) -> None:
        partition = record.partition
        self.pending.pop(partition, None)
        try:
            now = float(orjson.loads(record.value or b"")["now"])
        except (ValueError, KeyError, TypeError):
            self._dead(record, "invalid_tick", 'tick value must be {"now": seconds}', out)
            return
        if self.needs_reindex or partition not in self.owned:
            return
        fired_at = self.clock()
        index = self.index(partition)
        retry_at = self.retry_at
        for key in index.pop_due(now, limit=self.settings.tick_batch):
            if retry_at and retry_at.get(key, 0.0) > now:
                continue
            lags: list[float] = []
            fired: list[Event] = []

            def step(
                s: ComplaintState | None, lags: list[float] = lags, fired: list[Event] = fired
            ) -> tuple[ComplaintState | None, list[Event]]:
                new, events = self.router.on_tick(s, now, lags)
                fired.extend(events)
                return new, events

            if self._apply(record, key, step, out, arrival=False):
                retry_at.pop(key, None)
                self._observe_timers(key, partition, now, fired_at, lags, fired)
            else:  # dead-lettered: keep it scheduled, retried a minute later
                retry_at[key] = now + 60.0
                index.set(key, now + 60.0)

    # --- timer side -----------------------------------------------------------------------
    def due_partitions(self, now: float, mono: float) -> list[int]:
        """Owned partitions with something due and no tick in flight (or one sent longer
        than ``tick_resend_s`` ago); marks each as having a tick pending."""
        due: list[int] = []
        for p in self.owned:
            at = self.index(p).peek()
            if at is None or at > now:
                continue
            sent = self.pending.get(p)
            if sent is not None and mono - sent < self.settings.tick_resend_s:
                continue
            self.pending[p] = mono
            due.append(p)
        return due

    async def reindex(self, owned: frozenset[int]) -> None:
        """Rebuild the due indexes from the table (after start, rebalance or recovery).

        Reads only each value's header; holds the processing lock (batches wait) but yields
        to the event loop every 20k entries so heartbeats keep the group membership."""
        started = time.perf_counter()
        items: dict[int, list[tuple[bytes, float]]] = {p: [] for p in owned}
        open_by_agency: Counter[str] = Counter()
        indexed = self._indexed()
        async with self.lock:
            await self.written()  # the states of batches in flight are in the table
            if indexed is not None:  # nothing to scan: the table keeps index and counts
                await self._adopt(owned, indexed.open_counts(owned), started)
                return
            for n, (key, data) in enumerate(self.table.items(owned), 1):
                try:
                    sched = peek_schedule(data)
                except (ValueError, TypeError, struct.error):
                    if key != MARKER_KEY:
                        log.warning("table value for %r is not a route state; ignored", key)
                    continue
                if sched.partition in owned:
                    if sched.due is not None:
                        items[sched.partition].append((key, sched.due))
                    elif sched.is_open:  # written before retention existed: look at it now
                        items[sched.partition].append((key, 0.0))
                    if sched.is_open:
                        open_by_agency[sched.agency_id] += 1
                if n % 20_000 == 0:
                    await asyncio.sleep(0)
            self.indexes = {}
            for p, entries in items.items():
                self.index(p).rebuild(entries)
            await self._adopt(owned, open_by_agency, started, sum(len(v) for v in items.values()))

    async def _adopt(
        self, owned: frozenset[int], open_by_agency: Counter[str], started: float, n: int = -1
    ) -> None:
        """Take ``owned`` with its indexes built: timers may fire from now on."""
        self.indexes = {p: i for p, i in self.indexes.items() if p in owned}
        for agency_id in set(self.open_by_agency) | set(open_by_agency):
            _child(metrics.OPEN_COMPLAINTS, agency_id).set(open_by_agency[agency_id])
        self.open_by_agency = open_by_agency
        now = self.clock()
        self.adopted = {  # kept while owned throughout (bounded); a new partition starts anew
            p: [*self.adopted.get(p, [])[1 - ADOPTIONS_KEPT :], now] if p in self.owned else [now]
            for p in owned
        }
        self.learned = {k: v for k, v in self.learned.items() if v[1] in owned}
        self.owned, self.pending, self.needs_reindex = owned, {}, False
        if self.ready_after is None:
            self.ready_after = time.monotonic() - self.started
            log.info("ready %.3fs after start", self.ready_after)
        log.info(
            "indexed %s scheduled complaints on partitions %s in %.3fs",
            n if n >= 0 else "(persistent index)",
            sorted(owned),
            time.perf_counter() - started,
        )

    # --- the step and its outputs ---------------------------------------------------------
    def _apply(
        self, record: Incoming, key: bytes, step: Step, out: list[Output], arrival: bool = True
    ) -> bool:
        """Load the thread's state, run one pure step, queue its events and the new state.

        False when the input was dead-lettered instead. ``arrival``: the step is an input
        (message, command), not a tick: notes a deadline that had already passed."""
        try:
            old = self._get(key, record.partition)
            state = ComplaintState.from_bytes(old) if old else None
            was = (state.agency_id, state.is_open) if state else None
            new, events = step(state)
        except Refusal as exc:
            self._dead(record, exc.reason, exc.detail, out)
            return False
        except Exception as exc:  # a bug or a corrupt state must not stop the partition
            log.exception("route failed on %r", key)
            self._dead(record, "internal_error", f"{key!r}: {exc!r}", out)
            return False
        self._publish(key, events, out)  # events before state: a crash re-emits, never loses
        due = self._store(key, record.partition, old, new, out)
        self._track_open(was, new)
        if new is None and was is not None and was[1]:
            self.tally.inc(_child(metrics.UNRESOLVED_DROPPED, was[0]))
        if arrival:
            self._note_past_due(key, record.partition, old, new, due)
        return True

    def _get(self, key: bytes, partition: int) -> bytes | None:
        pending = self.overlay.get(key)
        if pending is not None:
            return pending[1]
        return self.table.get(key, partition)

    def _store(
        self,
        key: bytes,
        partition: int,
        old: bytes | None,
        state: ComplaintState | None,
        out: list[Output],
    ) -> float | None:
        """Queue the new state (if it changed) and index it; returns its next due time."""
        changelog = self.topics.changelog()
        if state is None:
            if old is not None:
                self.overlay[key] = self._writes[key] = (partition, None)
                out.append(Output(changelog, key, None, partition=partition))  # tombstone
            self.index(partition).set(key, None)
            return None
        retain = self.router.retain_unresolved_s
        data = state.to_bytes(retain)
        if data != old:
            self.overlay[key] = self._writes[key] = (partition, data)
            out.append(Output(changelog, key, data, partition=partition))
        due = state.next_due(retain)
        self.index(partition).set(key, due)
        return due

    def _publish(self, key: bytes, events: list[Event], out: list[Output]) -> None:
        tally = self.tally
        for e in events:
            if isinstance(e, RouteEvent):
                out.append(Output(self.topics.routes, key, event_json(e)))
                tally.inc(self._routes_out)
                if e.event_type is not RouteEventType.updated:  # an edit routes nothing anew
                    tally.inc(_child(metrics.ROUTED, e.agency_id, e.agency_kind))
                continue
            assert isinstance(e, SlaEvent)
            out.append(Output(self.topics.sla, key, event_json(e)))
            tally.inc(self._sla_out)
            clock_label = e.clock.value if e.clock else ""
            tally.inc(_child(metrics.SLA_EVENTS, e.agency_id, e.event_type.value, clock_label))
            if e.business_seconds is not None and e.clock is not None:
                tally.observe(
                    _child(metrics.RESPONSE_BUSINESS_TIME, e.agency_id, e.clock.value),
                    e.business_seconds,
                )

    # --- timer metrics --------------------------------------------------------------------
    def _note_past_due(
        self,
        key: bytes,
        partition: int,
        old: bytes | None,
        new: ComplaintState | None,
        due: float | None,
    ) -> None:
        """Remember when route learned of a deadline that had already passed (a late webhook,
        a platform retry, a replay: clocks start at the platform's time): firing it is
        catch-up, and the timer is late only from now on."""
        if new is None or not new.is_open:
            self.learned.pop(key, None)
            return
        if due is None:  # ``due``: its next due time, as just indexed
            return
        now = self.clock()
        if due >= now:
            return
        before = peek_schedule(old).due if old else None
        if before is None or due < before:  # this input brought the past deadline
            self.learned.setdefault(key, (now, partition))

    def _observe_timers(
        self,
        key: bytes,
        partition: int,
        now: float,
        fired_at: float,
        lags: list[float],
        fired: list[Event],
    ) -> None:
        """Timer lag of each stage a tick fired, measured when the worker fired it: from the
        moment it could first have fired, max(due, when route learned of it); the part before
        that is catch-up. Route learned of it when the late input brought it (``learned``),
        else, if it came due while no timer ran, when this worker indexed the partition after
        that (``adopted``). ``lags`` are the router's ``now - due`` per fired event (``now``:
        the tick's time)."""
        learned = self.learned.pop(key, None)
        if not fired:
            return
        adopted = self.adopted.get(partition, ())
        for lag, event in zip(lags, fired, strict=False):
            due = now - lag
            start = due
            cause = None
            if learned is not None and due < learned[0]:
                start, cause = learned[0], "late_input"
            else:
                start = next((at for at in adopted if at > due), due)
                cause = "recovery" if start > due else None
            if cause is not None:
                _child(metrics.TIMER_CATCH_UP, cause).observe(start - due)
                overdue = isinstance(event, SlaEvent) and event.event_type is SlaEventType.overdue
                if overdue and cause == "late_input":
                    _child(metrics.SLA_OVERDUE_ON_ARRIVAL, event.agency_id).inc()
            metrics.TIMER_LAG.observe(max(0.0, fired_at - start))

    def _track_open(self, before: tuple[str, bool] | None, after: ComplaintState | None) -> None:
        counts = self.open_by_agency
        if before and before[1]:
            counts[before[0]] -= 1
            self.tally.set(_child(metrics.OPEN_COMPLAINTS, before[0]), counts[before[0]])
        if after is not None and after.is_open:
            counts[after.agency_id] += 1
            self.tally.set(
                _child(metrics.OPEN_COMPLAINTS, after.agency_id), counts[after.agency_id]
            )

    def _dead(self, record: Incoming, reason: str, detail: str, out: list[Output]) -> None:
        source = Source(record.topic, record.partition, record.offset, record.key, record.value)
        out.append(dead_letter(self.topics.deadletter, NAME, reason, detail, source))

    def _decode(
        self,
        record: Incoming,
        model: type[M],
        invalid: str,
        thread_key: Callable[[M], str],
        what: str,
        out: list[Output],
    ) -> tuple[M, bytes] | None:
        """Validate an input record and check it is keyed by its thread; else dead-letter."""
        try:
            value = model.model_validate_json(record.value or b"")
        except (ValidationError, ValueError) as exc:
            self._dead(record, invalid, str(exc), out)
            return None
        key = record.key
        if key is None or key != thread_key(value).encode():
            self._dead(record, "key_mismatch", f"record key must be the {what}'s thread_key", out)
            return None
        return value, key

    def _observe_latency(self, cm: ClassifiedMessage) -> None:
        """Age of the message when route decided on it (its outputs follow in the batch)."""
        now = self.clock()
        message = cm.message
        platform, received = self._latency
        self.tally.observe(platform, now - message.platform_time.timestamp())
        self.tally.observe(received, now - message.received_at.timestamp())


_CHILDREN: dict[tuple[object, ...], Any] = {}


def _child(metric: Any, *labels: str) -> Any:
    """``metric.labels(*labels)``, remembered: prometheus_client's ``labels`` validates and
    locks on every call (~2 us, five times per routed complaint); label sets are bounded
    (agencies × event types × clocks)."""
    key = (metric, *labels)
    child = _CHILDREN.get(key)
    if child is None:
        child = _CHILDREN[key] = metric.labels(*labels)
    return child


SOURCES = {"classified": CLASSIFIED.name, "commands": COMMANDS.name}
"""Catalog names of route's inputs, for the records-in metric (ticks are not counted)."""
