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
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections import Counter
from collections.abc import Callable, MutableMapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from common import codecs, metrics
from common.deadletters import Source, dead_letter
from common.produce import Output, RecordSink, send_all_or_raise
from common.refusal import Refusal
from common.topics import CLASSIFIED, COMMANDS, ROUTES, SLA
from schemas.classified import ClassifiedMessage
from schemas.commands import Command
from schemas.routes import RouteEvent, RouteEventType
from schemas.sla import SlaEvent, SlaEventType
from services.route.clocks import ComplaintState, Event, Router, peek_schedule
from services.route.settings import RouteSettings
from services.route.timers import DueIndex

log = logging.getLogger("aduan.route")
M = TypeVar("M", bound=BaseModel)
NAME = "route"
MARKER_KEY = b"\x00route:end-of-batch"
"""Key of the tombstone that closes every changelog partition a batch wrote (see flush)."""

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


class RouteWorker:
    """Route's handlers and in-memory side (due indexes per partition, tick bookkeeping,
    open complaints per agency) around a table ``thread key → ComplaintState bytes``."""

    def __init__(
        self,
        router: Router,
        table: MutableMapping[bytes, bytes],
        topics: RouteTopics,
        settings: RouteSettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.router = router
        self.table = table
        self.topics = topics
        self.settings = settings
        self.clock = clock
        self.indexes: dict[int, DueIndex[bytes]] = {}
        self.pending: dict[int, float] = {}
        self.owned: frozenset[int] = frozenset()
        self.needs_reindex = True
        self.open_by_agency: Counter[str] = Counter()
        self.learned: dict[bytes, tuple[float, str]] = {}
        """Complaints whose next deadline had already passed when route learned of it: when
        (worker clock) and why (late_input, recovery). Firing those is catch-up, not timer
        lag; sparse (only past-due complaints), emptied as ticks fire them."""
        self.lock = asyncio.Lock()

    def index(self, partition: int) -> DueIndex[bytes]:
        idx = self.indexes.get(partition)
        if idx is None:
            idx = self.indexes[partition] = DueIndex[bytes]()
        return idx

    # --- batches --------------------------------------------------------------------------
    async def handle_batch(
        self, handler: Handler, records: Sequence[Incoming], sink: RecordSink
    ) -> None:
        """Run ``handler`` on every record under the processing lock, then write the batch's
        outputs; returns once everything is acknowledged (the caller may then commit)."""
        started = time.perf_counter()
        out: list[Output] = []
        async with self.lock:
            for record in records:
                handler(record, out)
            await self.flush(out, sink)
        metrics.BATCH_DURATION.labels(NAME).observe(time.perf_counter() - started)

    async def flush(self, out: list[Output], sink: RecordSink) -> None:
        """Write a batch's outputs: events and dead letters first, then the state.

        Each phase waits for the broker's acks, so a crash can lose a state write (and the
        inputs are replayed: the same events again, same ids) but never an event whose
        state already says it was sent."""
        if not out:
            return
        changelog = self.topics.changelog()
        state = [o for o in out if o.topic == changelog]
        await send_all_or_raise(sink, [o for o in out if o.topic != changelog])
        await send_all_or_raise(sink, state)
        # Close every changelog partition written with a one-record batch (a tombstone of a
        # key no state uses). Faust's recovery reads up to ListOffsets' end offset, which
        # Tansu reports as the *first* offset of the last batch + 1: without this record a
        # recovering worker would miss the rest of our last batch and fire stages again.
        # On Kafka it is a harmless tombstone.
        touched = sorted({o.partition for o in state if o.partition is not None})
        await send_all_or_raise(
            sink, [Output(changelog, MARKER_KEY, None, partition=p) for p in touched]
        )

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
        for key in index.pop_due(now, limit=self.settings.tick_batch):
            lags: list[float] = []
            fired: list[Event] = []

            def step(
                s: ComplaintState | None, lags: list[float] = lags, fired: list[Event] = fired
            ) -> tuple[ComplaintState | None, list[Event]]:
                new, events = self.router.on_tick(s, now, lags)
                fired.extend(events)
                return new, events

            if self._apply(record, key, step, out, arrival=False):
                self._observe_timers(key, now, fired_at, lags, fired)
            else:
                index.set(key, now + 60.0)  # keep it scheduled; retried a minute later

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
        learned: dict[bytes, tuple[float, str]] = {}
        async with self.lock:
            now = self.clock()
            for n, (key, data) in enumerate(list(self.table.items()), 1):
                try:
                    sched = peek_schedule(data)
                except (ValueError, TypeError, struct.error):
                    if key != MARKER_KEY:
                        log.warning("table value for %r is not a route state; ignored", key)
                    continue
                if sched.partition in owned:
                    if sched.due is not None:
                        items[sched.partition].append((key, sched.due))
                    if sched.is_open:
                        open_by_agency[sched.agency_id] += 1
                        if sched.due is not None and sched.due < now:  # came due unowned
                            learned[key] = self.learned.get(key) or (now, "recovery")
                if n % 20_000 == 0:
                    await asyncio.sleep(0)
            self.indexes = {}
            for p, entries in items.items():
                self.index(p).rebuild(entries)
            for agency_id in set(self.open_by_agency) | set(open_by_agency):
                metrics.OPEN_COMPLAINTS.labels(agency_id).set(open_by_agency[agency_id])
            self.open_by_agency = open_by_agency
            self.learned = learned
            self.owned, self.pending, self.needs_reindex = owned, {}, False
        log.info(
            "indexed %d scheduled complaints on partitions %s in %.3fs",
            sum(len(v) for v in items.values()),
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
            old = self.table.get(key)
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
        self._store(key, record.partition, old, new, out)
        self._track_open(was, new)
        if arrival and new is not None:
            self._note_past_due(key, old, new)
        return True

    def _store(
        self,
        key: bytes,
        partition: int,
        old: bytes | None,
        state: ComplaintState | None,
        out: list[Output],
    ) -> None:
        changelog = self.topics.changelog()
        if state is None:
            if old is not None:
                del self.table[key]
                out.append(Output(changelog, key, None, partition=partition))  # tombstone
            self.index(partition).set(key, None)
            return
        data = state.to_bytes()
        if data != old:
            self.table[key] = data
            out.append(Output(changelog, key, data, partition=partition))
        self.index(partition).set(key, state.next_due())

    def _publish(self, key: bytes, events: list[Event], out: list[Output]) -> None:
        for e in events:
            if isinstance(e, RouteEvent):
                out.append(Output(self.topics.routes, key, codecs.dumps(e)))
                metrics.MESSAGES_OUT.labels(NAME, ROUTES.name).inc()
                if e.event_type is not RouteEventType.updated:  # an edit routes nothing anew
                    metrics.ROUTED.labels(e.agency_id, e.agency_kind).inc()
                continue
            assert isinstance(e, SlaEvent)
            out.append(Output(self.topics.sla, key, codecs.dumps(e)))
            metrics.MESSAGES_OUT.labels(NAME, SLA.name).inc()
            clock_label = e.clock.value if e.clock else ""
            metrics.SLA_EVENTS.labels(e.agency_id, e.event_type.value, clock_label).inc()
            if e.business_seconds is not None and e.clock is not None:
                metrics.RESPONSE_BUSINESS_TIME.labels(e.agency_id, e.clock.value).observe(
                    e.business_seconds
                )

    # --- timer metrics --------------------------------------------------------------------
    def _note_past_due(self, key: bytes, old: bytes | None, new: ComplaintState) -> None:
        """Remember when route learned of a deadline that had already passed (a late webhook,
        a platform retry, a replay: clocks start at the platform's time): firing it is
        catch-up, and the timer is late only from now on."""
        due = new.next_due()
        if due is None or not new.is_open:
            return
        now = self.clock()
        if due >= now:
            return
        before = peek_schedule(old).due if old else None
        if before is None or due < before:  # this input brought the past deadline
            self.learned.setdefault(key, (now, "late_input"))

    def _observe_timers(
        self, key: bytes, now: float, fired_at: float, lags: list[float], fired: list[Event]
    ) -> None:
        """Timer lag of each stage a tick fired, measured when the worker fired it: from the
        moment it could first have fired, max(due, when route learned of it); the part before
        that is catch-up. ``lags`` are the router's ``now - due`` per fired event (``now``:
        the tick's time)."""
        learned = self.learned.pop(key, None)
        for lag, event in zip(lags, fired, strict=False):
            due = now - lag
            start = due
            if learned is not None and due < learned[0]:
                start, cause = learned
                metrics.TIMER_CATCH_UP.labels(cause).observe(start - due)
                overdue = isinstance(event, SlaEvent) and event.event_type is SlaEventType.overdue
                if overdue and cause == "late_input":
                    metrics.SLA_OVERDUE_ON_ARRIVAL.labels(event.agency_id).inc()
            metrics.TIMER_LAG.observe(max(0.0, fired_at - start))

    def _track_open(self, before: tuple[str, bool] | None, after: ComplaintState | None) -> None:
        counts = self.open_by_agency
        if before and before[1]:
            counts[before[0]] -= 1
            metrics.OPEN_COMPLAINTS.labels(before[0]).set(counts[before[0]])
        if after is not None and after.is_open:
            counts[after.agency_id] += 1
            metrics.OPEN_COMPLAINTS.labels(after.agency_id).set(counts[after.agency_id])

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
        now = datetime.fromtimestamp(self.clock(), UTC)
        message = cm.message
        metrics.PROCESSING_LATENCY.labels(NAME, "platform").observe(
            (now - message.platform_time).total_seconds()
        )
        metrics.PROCESSING_LATENCY.labels(NAME, "received").observe(
            (now - message.received_at).total_seconds()
        )


SOURCES = {"classified": CLASSIFIED.name, "commands": COMMANDS.name}
"""Catalog names of route's inputs, for the records-in metric (ticks are not counted)."""
