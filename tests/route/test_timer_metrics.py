"""Timer lag measures route's timers, not late input.

Clocks start at the platform's time, so a delivery that reaches route two hours late has
deadlines already behind it. Firing those is catch-up (its own histogram, by cause); timer
lag counts only from the moment a deadline could first have fired: max(due, when route
learned of it). The worker runs on a simulated clock here, so the expected figures are
exact. Every test runs on both tables: a dict (the memory store, whose index a reindex
rebuilds by scanning) and RocksDB (the persistent index, never scanned: a recovery is known
from when the worker took the partition, not from a scan)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from prometheus_client import REGISTRY

from common import codecs
from common.produce import MemorySink
from services.route.clocks import ComplaintState
from services.route.rocks import RocksState
from services.route.settings import RouteSettings
from services.route.worker import Incoming, MappingTable, RouteTopics, RouteWorker, StateTable

from .factories import message, router
from .test_rocks import OFFSET_KEY, close, opener

WIB = ZoneInfo("Asia/Jakarta")
MON_9 = datetime(2026, 11, 23, 9, 0, tzinfo=WIB)
TOPICS = RouteTopics("routes", "sla", "deadletter", changelog=lambda: "changelog")
AGENCY = "sby-public-works"


@pytest.fixture(params=["memory", "rocksdb"])
def table(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateTable]:
    if request.param == "memory":
        yield MappingTable({})
        return
    db_for, dbs = opener(tmp_path)
    yield RocksState(db_for, OFFSET_KEY)
    close(dbs)


class SimClock:
    def __init__(self, at: datetime) -> None:
        self.now = at.timestamp()

    def __call__(self) -> float:
        return self.now


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def snapshot() -> dict[str, float]:
    return {
        "lag_sum": sample("aduan_timer_lag_seconds_sum"),
        "lag_count": sample("aduan_timer_lag_seconds_count"),
        "late_sum": sample("aduan_timer_catch_up_seconds_sum", cause="late_input"),
        "late_count": sample("aduan_timer_catch_up_seconds_count", cause="late_input"),
        "recovery_sum": sample("aduan_timer_catch_up_seconds_sum", cause="recovery"),
        "recovery_count": sample("aduan_timer_catch_up_seconds_count", cause="recovery"),
        "on_arrival": sample("aduan_sla_overdue_on_arrival_total", agency_id=AGENCY),
    }


def moved(before: dict[str, float]) -> dict[str, float]:
    after = snapshot()
    return {k: round(after[k] - before[k], 6) for k in after}


def complaint(mid: str) -> Incoming:
    return Incoming("classified", 0, 0, mid.encode(), codecs.dumps(message(mid, mid, MON_9)))


def tick(now: float) -> Incoming:
    return Incoming("ticks", 0, 0, None, orjson.dumps({"now": now}))


def first_response(table: StateTable, key: str) -> tuple[float, float]:
    stored: Any = table.get(key.encode(), 0)
    c = ComplaintState.from_bytes(stored).clocks["first_response"]
    return c.warning_at, c.due_at


async def test_a_late_tick_is_timer_lag_and_nothing_else(table: StateTable) -> None:
    clock = SimClock(MON_9 + timedelta(seconds=1))
    w, sink = RouteWorker(router(), table, TOPICS, RouteSettings(), clock), MemorySink()
    await w.handle_batch(w.on_classified, [complaint("lag1")], sink)
    await w.reindex(frozenset({0}))
    warning_at, _ = first_response(table, "lag1")
    clock.now = warning_at + 7.0  # the timer fires the warning 7 s after its due time
    before = snapshot()
    await w.handle_batch(w.on_tick, [tick(clock.now)], sink)
    assert moved(before) == {
        "lag_sum": 7.0, "lag_count": 1.0, "late_sum": 0.0, "late_count": 0.0,
        "recovery_sum": 0.0, "recovery_count": 0.0, "on_arrival": 0.0,
    }  # fmt: skip


async def test_a_delivery_arriving_after_its_deadlines_is_catch_up_not_lag(
    table: StateTable,
) -> None:
    learned = MON_9 + timedelta(hours=6)  # a platform retry reaches route 6 h late
    clock = SimClock(learned)
    w, sink = RouteWorker(router(), table, TOPICS, RouteSettings(), clock), MemorySink()
    await w.reindex(frozenset({0}))
    await w.handle_batch(w.on_classified, [complaint("late1")], sink)
    warning_at, due_at = first_response(table, "late1")
    assert warning_at < due_at < clock.now  # both stages were past when route learned
    clock.now += 0.25  # the next tick, a quarter of a second later
    before = snapshot()
    await w.handle_batch(w.on_tick, [tick(clock.now)], sink)
    fired = [orjson.loads(r.value or b"") for r in sink.on("sla")]
    assert [e["event_type"] for e in fired] == ["warning", "overdue"]
    at = learned.timestamp()
    assert moved(before) == {
        "lag_sum": 0.5, "lag_count": 2.0,  # 0.25 s each, not 6 h
        "late_sum": round((at - warning_at) + (at - due_at), 6), "late_count": 2.0,
        "recovery_sum": 0.0, "recovery_count": 0.0,
        "on_arrival": 1.0,  # the agency never had the time to answer this one
    }  # fmt: skip


async def test_deadlines_that_came_due_while_no_worker_owned_them_are_recovery(
    table: StateTable,
) -> None:
    clock = SimClock(MON_9)
    first = RouteWorker(router(), table, TOPICS, RouteSettings(), clock)
    await first.handle_batch(first.on_classified, [complaint("rec1")], MemorySink())
    warning_at, _ = first_response(table, "rec1")
    clock.now = warning_at + 600.0  # route was down for ten minutes past the warning
    second, sink = RouteWorker(router(), table, TOPICS, RouteSettings(), clock), MemorySink()
    await second.reindex(frozenset({0}))
    clock.now += 0.5
    before = snapshot()
    await second.handle_batch(second.on_tick, [tick(clock.now)], sink)
    assert moved(before) == {
        "lag_sum": 0.5, "lag_count": 1.0, "late_sum": 0.0, "late_count": 0.0,
        "recovery_sum": 600.0, "recovery_count": 1.0, "on_arrival": 0.0,
    }  # fmt: skip


async def test_a_later_deadline_of_a_late_delivery_is_timed_normally(table: StateTable) -> None:
    learned = MON_9 + timedelta(hours=3, minutes=30)  # after the warning, before the deadline
    clock = SimClock(learned)
    w, sink = RouteWorker(router(), table, TOPICS, RouteSettings(), clock), MemorySink()
    await w.reindex(frozenset({0}))
    await w.handle_batch(w.on_classified, [complaint("late2")], sink)
    warning_at, due_at = first_response(table, "late2")
    assert warning_at < clock.now < due_at
    clock.now += 0.1
    await w.handle_batch(w.on_tick, [tick(clock.now)], sink)  # catch-up: the warning
    clock.now = due_at + 3.0
    before = snapshot()
    await w.handle_batch(w.on_tick, [tick(clock.now)], sink)  # the deadline, 3 s late
    assert moved(before) == {
        "lag_sum": 3.0, "lag_count": 1.0, "late_sum": 0.0, "late_count": 0.0,
        "recovery_sum": 0.0, "recovery_count": 0.0, "on_arrival": 0.0,
    }  # fmt: skip


async def test_a_deadline_due_during_a_rebalance_is_recovery_from_the_reindex_after_it(
    table: StateTable,
) -> None:
    """The partition stays with the worker, but no timer fires while the group rebalances:
    the time until the worker indexed its partitions again is recovery, not timer lag."""
    clock = SimClock(MON_9)
    w, sink = RouteWorker(router(), table, TOPICS, RouteSettings(), clock), MemorySink()
    await w.reindex(frozenset({0}))
    await w.handle_batch(w.on_classified, [complaint("reb1")], sink)
    warning_at, _ = first_response(table, "reb1")
    clock.now = warning_at + 40.0  # the rebalance ends 40 s after the warning came due
    await w.reindex(frozenset({0}))
    clock.now += 2.0
    before = snapshot()
    await w.handle_batch(w.on_tick, [tick(clock.now)], sink)
    assert moved(before) == {
        "lag_sum": 2.0, "lag_count": 1.0, "late_sum": 0.0, "late_count": 0.0,
        "recovery_sum": 40.0, "recovery_count": 1.0, "on_arrival": 0.0,
    }  # fmt: skip


async def test_a_restart_on_the_persistent_store_is_recovery_without_a_scan(
    tmp_path: Path,
) -> None:
    """RocksDB outlives the worker: the restarted one reads no state to know that what
    fires first came due while it was down."""
    clock = SimClock(MON_9)
    db_for, dbs = opener(tmp_path)
    w = RouteWorker(router(), RocksState(db_for, OFFSET_KEY), TOPICS, RouteSettings(), clock)
    await w.reindex(frozenset({0}))
    await w.handle_batch(w.on_classified, [complaint("down1")], MemorySink())
    warning_at, due_at = first_response(w.table, "down1")
    close(dbs)  # the worker dies; its directory stays
    clock.now = due_at + 300.0  # down for both stages
    db_for, dbs = opener(tmp_path)
    table = RocksState(db_for, OFFSET_KEY)
    w = RouteWorker(router(), table, TOPICS, RouteSettings(), clock)
    table.items = None  # type: ignore[assignment,method-assign]  # a scan would fail
    await w.reindex(frozenset({0}))
    clock.now += 1.0
    before = snapshot()
    await w.handle_batch(w.on_tick, [tick(clock.now)], MemorySink())
    restarted = due_at + 300.0
    assert moved(before) == {
        "lag_sum": 2.0, "lag_count": 2.0, "late_sum": 0.0, "late_count": 0.0,
        "recovery_sum": round((restarted - warning_at) + (restarted - due_at), 6),
        "recovery_count": 2.0, "on_arrival": 0.0,
    }  # fmt: skip
    close(dbs)
