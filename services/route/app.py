"""route processor: classified messages and commands in; routing and SLA events out.

A faust app because route is stateful: each thread's complaint state (its clocks and which
stages already fired) lives in a changelog-backed table keyed by thread key, the same key as
``aduan.classified.v1`` and ``aduan.commands.v1``, so one partition owner sees a complaint,
its replies and its commands. The decisions are made by the pure ``services.route.clocks``;
this module only moves bytes.

Timers: a faust timer may not modify a table, so it does not fire deadlines itself. It looks
at an in-memory, time-ordered index per owned partition (``DueIndex``) and, when something
is due, sends one *tick* record ``{"now": T}`` to that partition of the internal topic
``aduan.route-ticks.v1``. The agent consuming ticks is inside stream iteration, so it may fire
the due stages and update the table; a stage's bit in the state makes it fire once. After a
restart or rebalance the index is rebuilt from the recovered table and the first tick fires
everything that came due meanwhile (catch-up). Time comes from an injectable ``clock`` so
tests drive deadlines in simulated time.

Delivery is at-least-once: a batch's events are acknowledged by the broker before the
state that records them is written, so a crash in between re-emits them with the same
deterministic ``event_id`` rather than losing them; consumers dedup on it.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import struct
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import faust
import orjson
from pydantic import BaseModel, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from common import codecs, metrics
from common.codecs import register_faust_codec
from common.registry import load_registry
from common.settings import Settings
from common.topics import CLASSIFIED, COMMANDS, DEADLETTER, ROUTE_TICKS, ROUTES, SLA
from schemas.classified import ClassifiedMessage
from schemas.commands import Command
from schemas.deadletter import DeadLetter
from schemas.routes import RouteEvent
from schemas.sla import SlaEvent
from services.route.clocks import ComplaintState, Event, Rejected, Router, peek_schedule
from services.route.faust_tuning import bound_fetch_wait
from services.route.policy import DEFAULT_SLA_FILE, load_sla_config
from services.route.timers import DueIndex

log = logging.getLogger("aduan.route")
M = TypeVar("M", bound=BaseModel)
NAME = "route"
TABLE = "route-complaints"
MARKER_KEY = b"\x00route:end-of-batch"


class RouteSettings(BaseSettings):
    """Route-only settings (``ADUAN_ROUTE_*``), kept here so the shared settings stay small."""

    model_config = SettingsConfigDict(env_prefix="ADUAN_ROUTE_", extra="ignore")

    sla_file: Path = Field(default=DEFAULT_SLA_FILE, description="SLA policies (YAML)")
    tick_interval_s: float = Field(
        default=0.25, gt=0, le=1.0, description="how often due stages are looked for"
    )
    tick_batch: int = Field(default=20_000, ge=1, description="max complaints handled per tick")
    tick_resend_s: float = Field(
        default=5.0, gt=0, description="re-send a tick that was not consumed within this time"
    )
    data_dir: Path = Field(
        default=Path(tempfile.gettempdir()) / "aduan-faust",
        description="faust's data directory; the memory store keeps nothing there that matters",
    )
    batch_max: int = Field(default=1000, ge=1, description="records per processing batch")
    batch_within_s: float = Field(
        default=0.01, gt=0, description="max wait to fill a batch (adds to latency)"
    )


class RouteState:
    """The worker's in-memory side: due indexes per partition and tick bookkeeping."""

    def __init__(self) -> None:
        self.indexes: dict[int, DueIndex[bytes]] = {}
        self.pending: dict[int, float] = {}
        self.owned: frozenset[int] = frozenset()
        self.needs_reindex = True
        self.open_by_agency: Counter[str] = Counter()
        self.lock = asyncio.Lock()

    def index(self, partition: int) -> DueIndex[bytes]:
        idx = self.indexes.get(partition)
        if idx is None:
            idx = self.indexes[partition] = DueIndex[bytes]()
        return idx


def create_app(
    settings: Settings,
    *,
    clock: Callable[[], float] = time.time,
    route_settings: RouteSettings | None = None,
) -> faust.App:
    register_faust_codec()
    rs = route_settings or RouteSettings()
    rs.data_dir.mkdir(parents=True, exist_ok=True)
    registry = load_registry(settings.registry_file)
    router = Router(load_sla_config(rs.sla_file), registry)
    partitions = settings.topic_partitions or CLASSIFIED.partitions
    app = faust.App(
        f"{settings.consumer_group_prefix}-route",
        broker=[f"kafka://{h}" for h in settings.bootstrap_servers.split(",")],
        store="memory://",
        value_serializer="raw",
        key_serializer="raw",
        topic_partitions=partitions,
        topic_replication_factor=settings.replication_factor,
        producer_acks=-1,
        broker_rebalance_timeout=settings.rebalance_timeout_s,
        broker_session_timeout=settings.rebalance_timeout_s,
        broker_heartbeat_interval=1.0,
        web_enabled=False,
        # Not the working directory: every app id (one per test prefix) would leave a folder.
        datadir=str(rs.data_dir / "{conf.name}-data"),
        processing_guarantee="at_least_once",
        consumer_auto_offset_reset="earliest",
    )
    bound_fetch_wait(app, settings.fetch_max_wait_ms)
    prefix = settings.topic_prefix
    classified_name = CLASSIFIED.full_name(prefix)

    def topic(name: str, **kw: Any) -> faust.TopicT:
        return app.topic(name, key_type=bytes, value_type=bytes, **kw)

    classified = topic(classified_name)
    commands = topic(COMMANDS.full_name(prefix))
    # Ticks are worthless once consumed: keep an hour (debugging), then let them go.
    ticks = topic(
        ROUTE_TICKS.full_name(prefix), partitions=partitions, internal=True, retention=3600.0
    )
    table = app.Table(TABLE, partitions=partitions, key_type=bytes, value_type=bytes)
    mem = RouteState()
    app.route_state = mem  # type: ignore[attr-defined]  # for tests and the bench

    # --- helpers ----------------------------------------------------------------------
    # Writes go through an outbox per batch: table values are set in the memory store and
    # their changelog records, the events and the dead letters are produced directly with
    # the app's aiokafka producer, and the batch is acknowledged only after every record is
    # acked by the broker. Faust's per-record send path (and Table.__setitem__, which also
    # takes the changelog partition from "the current event", wrong inside a batch) cost
    # 5x the throughput on this machine; faust still owns the group, assignment, recovery
    # from the changelog, offsets and timers.
    Outbox = list[tuple[str, bytes | None, bytes | None, int | None]]
    names = {"routes": ROUTES.full_name(prefix), "sla": SLA.full_name(prefix)}
    deadletter_name = DEADLETTER.full_name(prefix)

    def changelog_name() -> str:
        return table.changelog_topic.get_topic_name()

    async def flush(out: Outbox) -> None:
        """Write a batch's outbox: events and dead letters first, then the state.

        Each phase waits for the broker's acks, so a crash can lose a state write (and the
        inputs are replayed: the same events again, same ids) but never an event whose
        state already says it was sent."""
        if not out:
            return
        producer = app.producer._ensure_producer()  # type: ignore[attr-defined]  # aiokafka
        cl = changelog_name()
        for phase in (
            [r for r in out if r[0] != cl],
            [r for r in out if r[0] == cl],
        ):
            futures = [
                await producer.send(topic, value, key=key, partition=partition)
                for topic, key, value, partition in phase
            ]
            await asyncio.gather(*futures)
        # Close every changelog partition written with a one-record batch (a tombstone of a
        # key no state uses). Faust's recovery reads up to ListOffsets' end offset, which
        # Tansu reports as the *first* offset of the last batch + 1: without this record a
        # recovering worker would miss the rest of our last batch and fire stages again.
        # On Kafka it is a harmless tombstone.
        touched = {partition for topic, _, _, partition in out if topic == cl}
        markers = [await producer.send(cl, None, key=MARKER_KEY, partition=p) for p in touched]
        await asyncio.gather(*markers)

    def load(key: bytes) -> tuple[bytes | None, ComplaintState | None]:
        old = table.data.get(key)
        return old, ComplaintState.from_bytes(old) if old else None

    def track_open(before: tuple[str, bool] | None, after: ComplaintState | None) -> None:
        if before and before[1]:
            mem.open_by_agency[before[0]] -= 1
            metrics.OPEN_COMPLAINTS.labels(before[0]).set(mem.open_by_agency[before[0]])
        if after is not None and after.is_open:
            mem.open_by_agency[after.agency_id] += 1
            metrics.OPEN_COMPLAINTS.labels(after.agency_id).set(mem.open_by_agency[after.agency_id])

    def store(
        key: bytes, partition: int, old: bytes | None, state: ComplaintState | None, out: Outbox
    ) -> None:
        if state is None:
            if old is not None:
                del table.data[key]
                out.append((changelog_name(), key, None, partition))  # tombstone
            mem.index(partition).set(key, None)
            return
        data = state.to_bytes()
        if data != old:
            table.data[key] = data
            out.append((changelog_name(), key, data, partition))
        mem.index(partition).set(key, state.next_due())

    def publish(key: bytes, events: list[Event], out: Outbox) -> None:
        for e in events:
            if isinstance(e, RouteEvent):
                out.append((names["routes"], key, codecs.dumps(e), None))
                metrics.MESSAGES_OUT.labels(NAME, ROUTES.name).inc()
                metrics.ROUTED.labels(e.agency_id, e.agency_kind).inc()
            else:
                assert isinstance(e, SlaEvent)
                out.append((names["sla"], key, codecs.dumps(e), None))
                metrics.MESSAGES_OUT.labels(NAME, SLA.name).inc()
                clock_label = e.clock.value if e.clock else ""
                metrics.SLA_EVENTS.labels(e.agency_id, e.event_type.value, clock_label).inc()
                if e.business_seconds is not None and e.clock is not None:
                    metrics.RESPONSE_BUSINESS_TIME.labels(e.agency_id, e.clock.value).observe(
                        e.business_seconds
                    )

    def dead(event: faust.EventT, reason: str, detail: str, out: Outbox) -> None:
        metrics.DEAD_LETTERS.labels(NAME, reason).inc()
        record = DeadLetter(
            stage=NAME,
            reason=reason,
            detail=detail[:2000],
            source_topic=event.message.topic,
            source_partition=event.message.partition,
            source_offset=event.message.offset,
            source_key=event.key.decode("utf-8", "replace") if event.key else None,
            payload_b64=base64.b64encode(event.value).decode() if event.value else None,
            failed_at=datetime.now(UTC),
        )
        out.append((deadletter_name, event.key, codecs.dumps(record), None))

    def apply(
        event: faust.EventT,
        key: bytes,
        step: Callable[[ComplaintState | None], tuple[ComplaintState | None, list[Event]]],
        out: Outbox,
    ) -> bool:
        """Load the thread's state, run one pure step, queue its events and the new state.

        False when the input was dead-lettered instead."""
        partition = event.message.partition
        try:
            old, state = load(key)
            was = (state.agency_id, state.is_open) if state else None
            new, events = step(state)
        except Rejected as exc:
            dead(event, exc.reason, exc.detail, out)
            return False
        except Exception as exc:  # a bug or a corrupt state must not stop the partition
            log.exception("route failed on %r", key)
            dead(event, "internal_error", f"{key!r}: {exc!r}", out)
            return False
        publish(key, events, out)  # events before state: a crash re-emits, never loses
        store(key, partition, old, new, out)
        track_open(was, new)
        return True

    def observe_latency(cm: ClassifiedMessage) -> None:
        """Age of the message when route decided on it (its outputs follow in the batch)."""
        now = datetime.fromtimestamp(clock(), UTC)
        message = cm.message
        metrics.PROCESSING_LATENCY.labels(NAME, "platform").observe(
            (now - message.platform_time).total_seconds()
        )
        metrics.PROCESSING_LATENCY.labels(NAME, "received").observe(
            (now - message.received_at).total_seconds()
        )

    def decode(
        event: faust.EventT,
        model: type[M],
        invalid: str,
        thread_key: Callable[[M], str],
        what: str,
        out: Outbox,
    ) -> tuple[M, bytes] | None:
        """Validate an input record and check it is keyed by its thread; else dead-letter."""
        try:
            value = model.model_validate_json(event.value)
        except (ValidationError, ValueError) as exc:
            dead(event, invalid, str(exc), out)
            return None
        key = event.key
        if not isinstance(key, bytes) or key != thread_key(value).encode():
            dead(event, "key_mismatch", f"record key must be the {what}'s thread_key", out)
            return None
        return value, key

    def on_classified_event(event: faust.EventT, out: Outbox) -> None:
        decoded = decode(
            event, ClassifiedMessage, "invalid_classified", lambda c: c.message.thread_key,
            "message", out,
        )  # fmt: skip
        if decoded is None:
            return
        cm, key = decoded
        partition = event.message.partition
        if apply(event, key, lambda state: router.on_message(state, cm, partition), out):
            observe_latency(cm)

    def on_command_event(event: faust.EventT, out: Outbox) -> None:
        decoded = decode(event, Command, "invalid_command", lambda c: c.thread_key, "command", out)
        if decoded is not None:
            cmd, key = decoded
            apply(event, key, lambda state: router.on_command(state, cmd), out)

    def on_tick_event(event: faust.EventT, out: Outbox) -> None:
        partition = event.message.partition
        mem.pending.pop(partition, None)
        try:
            now = float(orjson.loads(event.value)["now"])
        except (ValueError, KeyError, TypeError):
            dead(event, "invalid_tick", 'tick value must be {"now": seconds}', out)
            return
        if mem.needs_reindex or partition not in mem.owned:
            return
        lags: list[float] = []
        index = mem.index(partition)
        for key in index.pop_due(now, limit=rs.tick_batch):
            if not apply(event, key, lambda state: router.on_tick(state, now, lags), out):
                index.set(key, now + 60.0)  # keep it scheduled; retried a minute later
        for lag in lags:
            metrics.TIMER_LAG.observe(max(0.0, lag))

    # --- agents: batches of events, one outbox each ------------------------------------
    def batch_agent(
        channel: faust.TopicT, handle: Callable[[faust.EventT, Outbox], None], source: str
    ) -> None:
        async def agent(stream: faust.StreamT[bytes]) -> None:
            batches = stream.take_events(rs.batch_max, within=rs.batch_within_s)  # type: ignore[attr-defined]
            async for batch in batches:
                if source:  # counted on consumption, before any output they cause
                    metrics.MESSAGES_IN.labels(NAME, source).inc(len(batch))
                started = time.perf_counter()
                out: Outbox = []
                async with mem.lock:
                    for event in batch:
                        handle(event, out)
                    await flush(out)
                metrics.BATCH_DURATION.labels(NAME).observe(time.perf_counter() - started)

        agent.__name__ = agent.__qualname__ = f"route_{handle.__name__}"
        app.agent(channel, name=f"route.{handle.__name__}")(agent)

    batch_agent(classified, on_classified_event, CLASSIFIED.name)
    batch_agent(commands, on_command_event, COMMANDS.name)
    batch_agent(ticks, on_tick_event, "")

    # --- timer: find due partitions, send them a tick ---------------------------------
    def owned_partitions() -> frozenset[int]:
        return frozenset(
            tp.partition for tp in app.assignor.assigned_actives() if tp.topic == classified_name
        )

    async def reindex(owned: frozenset[int]) -> None:
        """Rebuild the due indexes from the table (after start, rebalance or recovery).

        Reads only each value's header; holds the processing lock (agents wait) but yields
        to the event loop every 20k entries so heartbeats keep the group membership."""
        started = time.perf_counter()
        items: dict[int, list[tuple[bytes, float]]] = {p: [] for p in owned}
        open_by_agency: Counter[str] = Counter()
        async with mem.lock:
            for n, (key, data) in enumerate(list(table.data.items()), 1):
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
                if n % 20_000 == 0:
                    await asyncio.sleep(0)
            mem.indexes = {}
            for p, entries in items.items():
                mem.index(p).rebuild(entries)
            for agency_id in set(mem.open_by_agency) | set(open_by_agency):
                metrics.OPEN_COMPLAINTS.labels(agency_id).set(open_by_agency[agency_id])
            mem.open_by_agency = open_by_agency
            mem.owned, mem.pending, mem.needs_reindex = owned, {}, False
        log.info(
            "indexed %d scheduled complaints on partitions %s in %.3fs",
            sum(len(v) for v in items.values()),
            sorted(owned),
            time.perf_counter() - started,
        )

    @app.on_rebalance_complete.connect  # type: ignore[arg-type]
    async def _rebalanced(sender: Any, **kwargs: Any) -> None:
        mem.needs_reindex = True

    @app.timer(rs.tick_interval_s)
    async def schedule_ticks() -> None:
        if app.rebalancing or getattr(app, "in_recovery", False):
            return
        owned = owned_partitions()
        if mem.needs_reindex or owned != mem.owned:
            await reindex(owned)
        now = clock()
        mono = time.monotonic()
        for p in mem.owned:
            due = mem.index(p).peek()
            if due is None or due > now:
                continue
            sent = mem.pending.get(p)
            if sent is not None and mono - sent < rs.tick_resend_s:
                continue
            mem.pending[p] = mono
            await ticks.send(value=orjson.dumps({"now": now}), partition=p)

    return app
