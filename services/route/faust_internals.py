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
enough."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import faust
from aiokafka import AIOKafkaProducer
from faust.transport.drivers import aiokafka as driver

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
