"""The batch transaction against a real PostgreSQL: idempotent by event id, right whatever
order the two topics arrive in, offsets stored with the rows, safe under concurrent writers."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta

import asyncpg

from schemas.commands import CommandType
from services.desk import store
from services.desk.events import DeskEvent, Source
from services.desk.projection import ComplaintView, fold_all
from tests.desk.factories import MON_9, Timeline, full_story


def busy_timeline(n: int = 6) -> Timeline:
    t = Timeline()
    full_story(t, "instagram:story")
    for i in range(n):
        thread = f"instagram:th{i}"
        t.complaint(thread, MON_9 + timedelta(minutes=i))
        t.tick(thread, MON_9 + timedelta(hours=6))
        if i % 2:
            t.reply(thread, MON_9 + timedelta(hours=7))
        if i % 3 == 0:
            t.command(thread, CommandType.resolve, MON_9 + timedelta(hours=8))
    return t


async def views(pool: asyncpg.Pool) -> dict[str, ComplaintView]:
    rows = await pool.fetch(f"SELECT {', '.join(store.COMPLAINT_COLUMNS)} FROM desk_complaints")
    return {r["complaint_id"]: store.view_from_row(r) for r in rows}


def expected(events: list[DeskEvent]) -> dict[str, ComplaintView]:
    out = {}
    for cid in {e.complaint_id for e in events}:
        v = fold_all([e for e in events if e.complaint_id == cid])
        if v is not None:
            out[cid] = v
    return out


async def apply(
    pool: asyncpg.Pool, events: list[DeskEvent], consumer: str = "g"
) -> store.BatchResult:
    positions = {(e.source.name, e.partition): e.offset + 1 for e in events}
    async with pool.acquire() as conn:
        return await store.apply_batch(conn, consumer, events, positions)


async def test_redelivered_records_are_no_ops_and_the_projection_matches_the_fold(
    pool: asyncpg.Pool,
) -> None:
    events = busy_timeline().events()
    rng = random.Random(3)
    stream = events + rng.sample(events, len(events) // 2)  # at-least-once: some twice
    i = 0
    while i < len(stream):
        n = rng.randint(1, 7)
        await apply(pool, stream[i : i + n])
        i += n
    assert await pool.fetchval("SELECT count(*) FROM desk_history") == len(events)
    assert await views(pool) == expected(events)
    again = await apply(pool, events)  # a whole replay
    assert again.new_ids == frozenset()
    assert await views(pool) == expected(events)


async def test_routes_read_after_the_deadline_topic_still_give_the_right_complaints(
    pool: asyncpg.Pool,
) -> None:
    events = busy_timeline().events()
    late = [e for e in events if e.source is Source.routes]
    early = [e for e in events if e.source is not Source.routes]
    await apply(pool, early)
    result = await apply(pool, late)
    assert result.refolded > 0  # stubs made from deadline events were rebuilt
    assert await views(pool) == expected(events)
    access = await pool.fetch(
        "SELECT agency_id, role, closed_here FROM desk_access WHERE complaint_id = $1",
        "instagram:m1",
    )
    assert {(r["agency_id"], r["role"], r["closed_here"]) for r in access} == {
        ("sby-environment", "assigned", False),
        ("sby-public-works", "former", True),
        ("sby-secretariat", "escalation", False),
        ("sby-inspectorate", "escalation", False),
    }


async def test_offsets_are_stored_with_the_batch_and_never_move_back(pool: asyncpg.Pool) -> None:
    events = busy_timeline(2).events()
    async with pool.acquire() as conn:
        await store.apply_batch(conn, "g", events[:3], {("routes", 0): 10, ("sla", 0): 4})
        await store.apply_batch(conn, "g", [], {("routes", 0): 7, ("sla", 1): 2})
    found = await store.stored_offsets(pool, "g", [("routes", 0), ("sla", 0), ("sla", 1), ("x", 0)])
    assert found == {("routes", 0): 10, ("sla", 0): 4, ("sla", 1): 2}
    assert await store.stored_offsets(pool, "other-group", [("routes", 0)]) == {}


async def test_a_failed_batch_leaves_neither_rows_nor_offsets(pool: asyncpg.Pool) -> None:
    events = busy_timeline(1).events()
    async with pool.acquire() as conn:
        try:
            await store.apply_batch(conn, "g", events, {("routes", 0): 3, ("bad", 0): -(2**70)})
        except (OverflowError, asyncpg.PostgresError, ValueError):
            pass
        else:
            raise AssertionError("expected the out-of-range offset to fail the batch")
    assert await pool.fetchval("SELECT count(*) FROM desk_history") == 0
    assert await pool.fetchval("SELECT count(*) FROM desk_offsets") == 0


async def test_two_writers_of_the_same_partition_never_lose_an_update(pool: asyncpg.Pool) -> None:
    """During a rebalance the old and the new owner may both write a partition's batch."""
    events = busy_timeline(8).events()
    rng = random.Random(5)
    a = sorted(rng.sample(events, len(events) * 2 // 3), key=lambda e: e.order_key)
    b = sorted(rng.sample(events, len(events) * 2 // 3), key=lambda e: e.order_key)
    missing = [e for e in events if e not in a and e not in b]
    await asyncio.gather(apply(pool, a), apply(pool, b))
    await apply(pool, missing)
    assert await pool.fetchval("SELECT count(*) FROM desk_history") == len(events)
    assert await views(pool) == expected(events)
