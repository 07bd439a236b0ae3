"""route processor: classified messages and commands in; routing and SLA events out.

A faust app because route is stateful: each thread's complaint state (its clocks and which
stages already fired) lives in a changelog-backed table keyed by thread key, the same key as
``aduan.classified.v1`` and ``aduan.commands.v1``, so one partition owner sees a complaint,
its replies and its commands. faust owns the group, assignment, recovery of the table from
its changelog, offsets and timers; what route does with each record is ``RouteWorker``'s
(``services.route.worker``), and the decisions are the pure ``services.route.clocks``'. This
module only wires them together. The inputs (classified messages, commands) reach the worker
a fetched batch at a time, past faust's per-event path (``faust_internals.batch_inputs``:
that path cost route half its throughput); faust still commits their offsets, after the
batch's outputs are acknowledged.

Timers: a faust timer may not modify a table, so it does not fire deadlines itself. It asks
the worker which owned partitions have something due (an in-memory, time-ordered index per
partition) and sends each one *tick* record ``{"now": T}`` on the internal topic
``aduan.route-ticks.v1``. The agent consuming ticks is inside stream iteration, so it may fire
the due stages and update the table; a stage's bit in the state makes it fire once. After a
restart or rebalance the index is rebuilt from the recovered table and the first tick fires
everything that came due meanwhile (catch-up). Time comes from an injectable ``clock`` so
tests drive deadlines in simulated time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import faust
import orjson

from common import metrics
from common.codecs import register_faust_codec
from common.produce import KafkaSink
from common.registry import Registry, load_registry
from common.reload import Reloadable
from common.settings import Settings
from common.topics import CLASSIFIED, COMMANDS, DEADLETTER, ROUTE_TICKS, ROUTES, SLA
from services.route.clocks import Router
from services.route.faust_internals import (
    aiokafka_producer,
    batch_inputs,
    bound_fetch_wait,
    drop_event_monitor,
    rocks_state,
)
from services.route.observe import ConsumerLag, route_series
from services.route.policy import SlaConfig, load_sla_config
from services.route.settings import RouteSettings
from services.route.worker import NAME, Handler, Incoming, MappingTable, RouteTopics, RouteWorker

TABLE = "route-complaints"
log = logging.getLogger("aduan.route")


@dataclass(frozen=True, slots=True)
class RouteApp:
    """The faust app to start and stop, and the worker it drives (for readiness and tests)."""

    app: faust.App
    worker: RouteWorker


def create_app(
    settings: Settings,
    *,
    clock: Callable[[], float] = time.time,
    route_settings: RouteSettings | None = None,
) -> RouteApp:
    register_faust_codec()
    rs = route_settings or RouteSettings()
    rs.data_dir.mkdir(parents=True, exist_ok=True)
    registry = Reloadable("registry", settings.registry_file, load_registry)
    sla = Reloadable("sla", rs.sla_file, load_sla_config)
    router = Router(
        sla.current, registry.current, retain_unresolved_s=rs.retain_unresolved_days * 86400.0
    )
    metrics.zero(route_series(router.config, router.registry))  # every series rules read
    partitions = settings.topic_partitions or CLASSIFIED.partitions
    app = faust.App(
        f"{settings.consumer_group_prefix}-route",
        **settings.kafka.faust_options(),
        store="rocksdb://" if rs.store == "rocksdb" else "memory://",
        table_standby_replicas=rs.standby_replicas,
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
    drop_event_monitor(app)
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
    lag = ConsumerLag({classified_name: CLASSIFIED.name, COMMANDS.full_name(prefix): COMMANDS.name})
    table = app.Table(
        TABLE,
        partitions=partitions,
        key_type=bytes,
        value_type=bytes,
        options={
            "driver": "rocksdict",
            "block_cache_size": rs.rocksdb_block_cache_mib * 2**20,
            "write_buffer_size": rs.rocksdb_write_buffer_mib * 2**20,
            "max_write_buffer_number": 2,
        }
        if rs.store == "rocksdb"
        else None,
    )
    worker = RouteWorker(
        router,
        rocks_state(table) if rs.store == "rocksdb" else MappingTable(table.data),
        RouteTopics(
            routes=ROUTES.full_name(prefix),
            sla=SLA.full_name(prefix),
            deadletter=DEADLETTER.full_name(prefix),
            changelog=lambda: table.changelog_topic.get_topic_name(),
        ),
        rs,
        clock,
    )

    producer_sink: list[KafkaSink] = []

    def sink() -> KafkaSink:
        if not producer_sink:  # faust starts its producer with the app, not before
            producer_sink.append(KafkaSink(aiokafka_producer(app)))
        return producer_sink[0]

    inputs: dict[str, tuple[Handler, str]] = {
        classified_name: (worker.on_classified, CLASSIFIED.name),
        commands.get_topic_name(): (worker.on_command, COMMANDS.name),
    }
    counted: list[object] = [None]

    async def on_input_batch(topic_name: str, batch: Sequence[Any]) -> asyncio.Future[None]:
        """Route's inputs, a fetched batch at a time (``batch_inputs``): decided now, written
        by the returned task; faust acks their offsets once it is done."""
        handle, source = inputs[topic_name]
        if counted[0] is not batch:  # counted on consumption (once, if run again)
            counted[0] = batch
            metrics.MESSAGES_IN.labels(NAME, source).inc(len(batch))
        records = [Incoming(r.topic, r.partition, r.offset, r.key, r.value) for r in batch]
        written = await worker.start_batch(handle, records, sink())

        def processed(done: asyncio.Future[None]) -> None:
            if not done.cancelled() and done.exception() is None:
                lag.processed(records)

        written.add_done_callback(processed)
        return written

    for channel in (classified, commands):
        app.topics.add(channel)  # subscribed without an agent: batch_inputs consumes them
    batch_inputs(app, inputs, on_input_batch, rs.batch_max)

    @app.agent(ticks, name="route.on_tick_event")
    async def route_on_tick_event(stream: faust.StreamT[bytes]) -> None:
        """Ticks stay on faust's per-event path: one per partition with something due."""
        batches = stream.take_events(rs.batch_max, within=rs.batch_within_s)  # type: ignore[attr-defined]
        async for batch in batches:
            records = [
                Incoming(e.message.topic, e.message.partition, e.message.offset, e.key, e.value)
                for e in batch
            ]
            try:
                await worker.handle_batch(worker.on_tick, records, sink())
            except Exception:  # a failed write (or an earlier batch's, whose states it read)
                log.exception("route tick batch not written; reindexing, ticks follow")
                worker.needs_reindex = True  # the stages it took off the due index are due

    def owned_partitions() -> frozenset[int]:
        return frozenset(
            tp.partition for tp in app.assignor.assigned_actives() if tp.topic == classified_name
        )

    @app.on_rebalance_complete.connect  # type: ignore[arg-type]
    async def _rebalanced(sender: Any, **kwargs: Any) -> None:
        worker.needs_reindex = True
        lag.reset()

    @app.timer(rs.tick_interval_s)  # type: ignore[untyped-decorator]  # faust's is untyped
    async def schedule_ticks() -> None:
        if app.rebalancing or getattr(app, "in_recovery", False):
            return
        owned = owned_partitions()
        if worker.needs_reindex or owned != worker.owned:
            await worker.reindex(owned)
        now = clock()
        for p in worker.due_partitions(now, time.monotonic()):
            await ticks.send(value=orjson.dumps({"now": now}), partition=p)

    @app.timer(1.0)  # type: ignore[untyped-decorator]
    async def report_lag() -> None:
        if not app.rebalancing:
            await lag.report(app.consumer)

    def new_router(config: SlaConfig | None = None, reg: Registry | None = None) -> None:
        """A valid edit of the registry or the SLA file takes effect from the next batch:
        the worker's router is replaced between batches (the event loop runs one at a time)."""
        worker.router = Router(
            config or sla.current,
            reg or registry.current,
            retain_unresolved_s=rs.retain_unresolved_days * 86400.0,
        )
        metrics.zero(route_series(worker.router.config, worker.router.registry))

    sla.on_change(lambda config: new_router(config=config))
    registry.on_change(lambda reg: new_router(reg=reg))

    @app.timer(rs.config_poll_s)  # type: ignore[untyped-decorator]
    async def reload_config() -> None:
        registry.poll()
        sla.poll()

    return RouteApp(app, worker)
