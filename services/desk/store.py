"""The read model's writes: one transaction per consumed batch, offsets included.

``apply_batch`` does, in one transaction:

1. lock the batch's partitions (a transaction-scoped advisory lock per partition number;
   a complaint's records share the partition number on all three topics, so two replicas
   that briefly both own a partition during a rebalance serialise instead of racing);
2. insert the history rows, ``ON CONFLICT (event_id) DO NOTHING RETURNING event_id``: only
   the rows that are new go on, so a redelivered record is a no-op;
3. fold the new events into the affected complaints (loaded ``FOR UPDATE``); a complaint
   that receives an event older than the last one it applied (the two topics are read
   independently) is refolded from its whole history instead;
4. upsert the complaints and their access rows;
5. store the next offset of every partition of the batch.

Bulk statements take arrays (``unnest``), so a batch costs a handful of round trips
whatever its size. A crash anywhere before the commit leaves nothing; after it, the stored
offsets point past exactly the rows that exist."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import orjson

from common.postgres import migrate
from services.desk.events import DeskEvent, Source, parse, platform_of
from services.desk.projection import ClockView, ComplaintView, fold

MIGRATIONS = Path(__file__).parent / "migrations"
LOCK_SPACE = 0x0DE5
"""First key of the desk's advisory locks (the second is the partition number)."""


async def init_connection(conn: asyncpg.Connection) -> None:
    """jsonb as Python values through orjson, in PostgreSQL's binary jsonb format (a version
    byte, then the JSON text), so bulk COPY works too (asyncpg copies in binary)."""
    await conn.set_type_codec(
        "jsonb",
        encoder=lambda v: b"\x01" + orjson.dumps(v),
        decoder=lambda b: orjson.loads(b[1:]),
        schema="pg_catalog",
        format="binary",
    )


async def create_pool(
    url: str, min_size: int = 1, max_size: int = 10, password: str | None = None
) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        url,
        min_size=min_size,
        max_size=max_size,
        init=init_connection,
        command_timeout=60,
        password=password,
    )
    assert pool is not None
    return pool


async def migrate_database(pool: asyncpg.Pool) -> list[str]:
    async with pool.acquire() as conn:
        return await migrate(conn, "desk", MIGRATIONS)


# --- offsets -------------------------------------------------------------------------------
async def stored_offsets(
    conn: asyncpg.Connection | asyncpg.Pool, consumer: str, partitions: Iterable[tuple[str, int]]
) -> dict[tuple[str, int], int]:
    wanted = list(partitions)
    rows = await conn.fetch(
        """SELECT topic, kafka_partition, next_offset FROM desk_offsets
           WHERE consumer = $1 AND (topic, kafka_partition) IN
                 (SELECT * FROM unnest($2::text[], $3::int[]))""",
        consumer,
        [t for t, _ in wanted],
        [p for _, p in wanted],
    )
    return {(r["topic"], r["kafka_partition"]): r["next_offset"] for r in rows}


# --- the batch -----------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, slots=True)
class BatchResult:
    new_ids: frozenset[str]
    refolded: int


async def apply_batch(
    conn: asyncpg.Connection,
    consumer: str,
    events: Sequence[DeskEvent],
    positions: dict[tuple[str, int], int],
) -> BatchResult:
    """Apply ``events`` and store ``positions`` ((topic, partition) → next offset) at once."""
    async with conn.transaction():
        partitions = sorted({p for _, p in positions})
        await conn.execute(
            "SELECT pg_advisory_xact_lock($1, p) FROM unnest($2::int[]) AS p ORDER BY p",
            LOCK_SPACE,
            partitions,
        )
        new = await _insert_history(conn, events) if events else []
        refolded = await _project(conn, new) if new else 0
        await conn.execute(
            """INSERT INTO desk_offsets (consumer, topic, kafka_partition, next_offset)
               SELECT $1, t, p, o FROM unnest($2::text[], $3::int[], $4::bigint[]) AS x(t, p, o)
               ON CONFLICT (consumer, topic, kafka_partition) DO UPDATE
               SET next_offset = GREATEST(desk_offsets.next_offset, EXCLUDED.next_offset),
                   updated_at = now()""",
            consumer,
            [t for t, _ in positions],
            [p for _, p in positions],
            list(positions.values()),
        )
    return BatchResult(frozenset(e.event_id for e in new), refolded)


HISTORY_COLUMNS = (
    "event_id", "complaint_id", "source", "event_type", "known", "agency_id", "clock",
    "clock_seq", "occurred_at", "actor", "reason", "target_agency_id", "escalation_level",
    "escalate_to", "met", "business_s", "response_s", "ts_ms", "rank", "kafka_partition",
    "kafka_offset", "payload",
)  # fmt: skip
HISTORY_TYPES = (
    "text", "text", "text", "text", "bool", "text", "text", "int", "timestamptz", "text",
    "text", "text", "int", "text", "bool", "float8", "float8", "bigint", "smallint", "int",
    "bigint", "jsonb",
)  # fmt: skip
INSERT_HISTORY = (
    f"INSERT INTO desk_history ({', '.join(HISTORY_COLUMNS)}) "
    f"SELECT * FROM unnest({', '.join(f'${i + 1}::{t}[]' for i, t in enumerate(HISTORY_TYPES))}) "
    "ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
)


def history_columns(events: Sequence[DeskEvent]) -> list[list[Any]]:
    """The history rows of ``events`` as one list per column (for ``unnest``)."""
    return [
        [e.event_id for e in events],
        [e.complaint_id for e in events],
        [e.source.name for e in events],
        [e.event_type for e in events],
        [e.known for e in events],
        [e.agency_id for e in events],
        [e.clock for e in events],
        [e.clock_seq for e in events],
        [e.occurred_at for e in events],
        [e.actor for e in events],
        [e.reason for e in events],
        [e.target_agency_id for e in events],
        [e.escalation_level for e in events],
        [e.escalate_to for e in events],
        [e.met for e in events],
        [e.business_s for e in events],
        [e.response_s for e in events],
        [e.ts_ms for e in events],
        [int(e.source) for e in events],
        [e.partition for e in events],
        [e.offset for e in events],
        [e.payload for e in events],
    ]


async def _insert_history(conn: asyncpg.Connection, events: Sequence[DeskEvent]) -> list[DeskEvent]:
    unique = list({e.event_id: e for e in events}.values())  # one batch may repeat a record
    rows = await conn.fetch(INSERT_HISTORY, *history_columns(unique))
    inserted = {r["event_id"] for r in rows}
    return [e for e in unique if e.event_id in inserted]


async def _project(conn: asyncpg.Connection, new: Sequence[DeskEvent]) -> int:
    """Fold the new events into their complaints; returns how many were refolded."""
    by_complaint: dict[str, list[DeskEvent]] = defaultdict(list)
    for e in new:
        if e.source is not Source.commands and e.known:
            by_complaint[e.complaint_id].append(e)
    if not by_complaint:
        return 0
    ids = sorted(by_complaint)
    rows = await conn.fetch(
        f"SELECT {', '.join(COMPLAINT_COLUMNS)} FROM desk_complaints "
        "WHERE complaint_id = ANY($1::text[]) ORDER BY complaint_id FOR UPDATE",
        ids,
    )
    current = {r["complaint_id"]: view_from_row(r) for r in rows}
    views: list[ComplaintView] = []
    stale: list[str] = []
    for cid in ids:
        events = sorted(by_complaint[cid], key=lambda e: e.order_key)
        view = current.get(cid)
        if view is not None and events[0].order_key < view.last_key:
            stale.append(cid)
            continue
        for e in events:
            view = fold(view, e)
        if view is not None:
            views.append(view)
    if stale:
        views.extend(await refold(conn, stale))
    await save_views(conn, views)
    return len(stale)


async def refold(conn: asyncpg.Connection, complaint_ids: Sequence[str]) -> list[ComplaintView]:
    """Rebuild complaints from their whole history (their events in order-key order)."""
    rows = await conn.fetch(
        """SELECT source, kafka_partition, kafka_offset, ts_ms, payload FROM desk_history
           WHERE complaint_id = ANY($1::text[]) AND source <> 'commands' AND known
           ORDER BY complaint_id, ts_ms, rank, kafka_offset""",
        list(complaint_ids),
    )
    views: dict[str, ComplaintView] = {}
    for r in rows:
        e = parse(
            Source[r["source"]],
            orjson.dumps(r["payload"]),
            r["ts_ms"],
            r["kafka_partition"],
            r["kafka_offset"],
        )
        view = fold(views.get(e.complaint_id), e)
        if view is not None:
            views[e.complaint_id] = view
    return list(views.values())


COMPLAINT_COLUMNS = (
    "complaint_id", "thread_key", "agency_id", "agency_kind", "kind", "category", "subcategory",
    "region_code", "urgency", "platform", "excerpt", "policy", "status", "is_open", "routed_at",
    "acknowledged_at", "resolved_at", "escalation_level", "reroutes", "clocks", "access",
    "due_sort", "first_response_at", "first_response_business_s", "first_response_met",
    "last_ts", "last_rank", "last_offset",
)  # fmt: skip
COMPLAINT_TYPES = (
    "text", "text", "text", "text", "text", "text", "text", "text", "text", "text", "text",
    "text", "text", "bool", "timestamptz", "timestamptz", "timestamptz", "int", "int", "jsonb",
    "jsonb", "timestamptz", "timestamptz", "float8", "bool", "bigint", "smallint", "bigint",
)  # fmt: skip
UPSERT_COMPLAINTS = (
    f"INSERT INTO desk_complaints ({', '.join(COMPLAINT_COLUMNS)}) "
    f"SELECT * FROM unnest({', '.join(f'${i + 1}::{t}[]' for i, t in enumerate(COMPLAINT_TYPES))}) "
    "ON CONFLICT (complaint_id) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in COMPLAINT_COLUMNS[1:])
    + ", updated_at = now()"
)
UPSERT_ACCESS = """
    INSERT INTO desk_access (agency_id, complaint_id, role, closed_here, due_sort)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bool[], $5::timestamptz[])
    ON CONFLICT (agency_id, complaint_id) DO UPDATE
    SET role = EXCLUDED.role, closed_here = EXCLUDED.closed_here, due_sort = EXCLUDED.due_sort"""


def view_row(v: ComplaintView) -> tuple[Any, ...]:
    return (
        v.complaint_id, v.thread_key, v.agency_id, v.agency_kind, v.kind, v.category,
        v.subcategory, v.region_code, v.urgency, v.platform, v.excerpt, v.policy, v.status,
        v.is_open, v.routed_at, v.acknowledged_at, v.resolved_at, v.escalation_level,
        v.reroutes, {k: c.to_json() for k, c in v.clocks.items()}, v.access, v.due_sort,
        v.first_response_at, v.first_response_business_s, v.first_response_met,
        v.last_key[0], v.last_key[1], v.last_key[2],
    )  # fmt: skip


def view_from_row(r: asyncpg.Record) -> ComplaintView:
    return ComplaintView(
        complaint_id=r["complaint_id"],
        thread_key=r["thread_key"],
        agency_id=r["agency_id"],
        agency_kind=r["agency_kind"],
        kind=r["kind"],
        category=r["category"],
        subcategory=r["subcategory"],
        region_code=r["region_code"],
        urgency=r["urgency"],
        platform=r["platform"] or platform_of(r["complaint_id"]),
        excerpt=r["excerpt"],
        policy=r["policy"],
        status=r["status"],
        routed_at=r["routed_at"],
        acknowledged_at=r["acknowledged_at"],
        resolved_at=r["resolved_at"],
        escalation_level=r["escalation_level"],
        reroutes=r["reroutes"],
        clocks={k: ClockView.from_json(c) for k, c in r["clocks"].items()},
        access=dict(r["access"]),
        first_response_at=r["first_response_at"],
        first_response_business_s=r["first_response_business_s"],
        first_response_met=r["first_response_met"],
        last_key=(r["last_ts"], r["last_rank"], r["last_offset"]),
    )


async def save_views(conn: asyncpg.Connection, views: Sequence[ComplaintView]) -> None:
    if not views:
        return
    rows = [view_row(v) for v in views]
    await conn.execute(UPSERT_COMPLAINTS, *(list(col) for col in zip(*rows, strict=True)))
    access = [
        (agency, v.complaint_id, role, not v.open_for(agency), v.due_sort)
        for v in views
        for agency, role in v.access.items()
    ]
    if access:
        await conn.execute(UPSERT_ACCESS, *(list(col) for col in zip(*access, strict=True)))


def utc_iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
