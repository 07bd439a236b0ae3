"""The durable delivery record in PostgreSQL (asyncpg; migrations in ``migrations/``).

A row per (event id, channel, target) is written when the event is consumed, before the
Kafka offset is committed, and updated when the delivery is done (``delivered`` or
``dead``) or parked for a later try. So a replay, a rebalance or a restart plans the same
rows, finds them, and sends nothing twice; and a delivery that is still owed survives any
crash as a ``pending`` row, picked up again by whichever instance owns its partition.

Every statement works on whole batches (``unnest`` of arrays): one round trip per consumed
batch to record, one per claim, one per group of outcomes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg

from common.postgres import migrate
from services.notify.channels.base import Item
from services.notify.plan import Delivery, Notice, ReplyTarget

MIGRATIONS = Path(__file__).parent / "migrations"
SERVICE = "notify"


@dataclass(frozen=True, slots=True)
class Planned:
    """A planned delivery with where its event was read."""

    delivery: Delivery
    source: str
    offset: int
    key: bytes | None
    event: bytes


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one claimed delivery ended this time: ``delivered``, ``dead`` or ``pending``
    (parked until ``next_at``)."""

    id: int
    status: str
    tries: int
    parks: int
    next_at: datetime | None = None
    error: str | None = None
    receipt: str | None = None


@dataclass(frozen=True, slots=True)
class Claimed:
    item: Item
    lane: str
    source: str
    parks: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class SourceOf:
    """What a dead letter needs of the delivery's event."""

    source: str
    offset: int
    key: bytes | None
    event: bytes


class Store:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @classmethod
    async def open(cls, url: str, size: int = 8) -> Store:
        pool = await asyncpg.create_pool(url, min_size=1, max_size=size)
        async with pool.acquire() as conn:
            await migrate(conn, SERVICE, MIGRATIONS)
        return cls(pool)

    async def close(self) -> None:
        await self.pool.close()

    async def record(
        self, planned: Sequence[Planned], routes: Sequence[tuple[str, bytes, datetime]]
    ) -> list[Claimed]:
        """Insert the planned deliveries (repeats ignored; a ``dead`` one is revived, which
        is how replaying its dead letter re-sends it) and remember the batch's route events,
        in one transaction. Returns the rows now pending because of this call, ready to
        hand to their lanes without reading them back."""
        if not planned and not routes:
            return []
        async with self.pool.acquire() as conn, conn.transaction():
            if routes:
                await conn.execute(
                    _UPSERT_ROUTES,
                    [r[0] for r in routes],
                    [r[1] for r in routes],
                    [r[2] for r in routes],
                )
            if not planned:
                return []
            d = [p.delivery for p in planned]
            rows = await conn.fetch(
                _INSERT,
                [x.notice.event_id for x in d],
                [x.channel.type for x in d],
                [x.channel.target for x in d],
                [x.lane for x in d],
                [p.source for p in planned],
                [p.offset for p in planned],
                [p.key for p in planned],
                [p.event for p in planned],
                [x.notice.model_dump_json().encode() for x in d],
                [x.notice.occurred_at for x in d],
            )
        by_key = {p.delivery.key: p for p in planned}
        out: list[Claimed] = []
        for r in rows:
            p = by_key[(r["event_id"], r["channel"], r["target"])]
            n = p.delivery.notice
            item = Item(r["id"], n.event_id, r["channel"], r["target"], n, n.occurred_at)
            out.append(Claimed(item, r["lane"], p.source, 0, r["created_at"]))
        return out

    async def contexts(self, complaint_ids: Iterable[str]) -> dict[str, bytes]:
        ids = sorted(set(complaint_ids))
        if not ids:
            return {}
        rows = await self.pool.fetch(
            "SELECT complaint_id, route FROM notify_complaints "
            "WHERE complaint_id = ANY($1::text[])",
            ids,
        )
        return {r["complaint_id"]: bytes(r["route"]) for r in rows}

    async def claim(
        self, lane: str, sources: Sequence[str], exclude: Sequence[int], limit: int
    ) -> list[Claimed]:
        """Pending rows of ``lane`` from the partitions this instance owns that are due,
        oldest first, leaving out those already in memory."""
        if not sources or limit <= 0:
            return []
        rows = await self.pool.fetch(_CLAIM, lane, list(sources), list(exclude), limit)
        return [_claimed(r) for r in rows]

    async def next_due(self, lane: str, sources: Sequence[str]) -> datetime | None:
        if not sources:
            return None
        due: datetime | None = await self.pool.fetchval(
            "SELECT min(next_attempt_at) FROM notify_deliveries "
            "WHERE status = 'pending' AND lane = $1 AND source = ANY($2::text[])",
            lane,
            list(sources),
        )
        return due

    async def finish(self, outcomes: Sequence[Outcome]) -> None:
        if not outcomes:
            return
        await self.pool.execute(
            _FINISH,
            [o.id for o in outcomes],
            [o.status for o in outcomes],
            [o.tries for o in outcomes],
            [o.parks for o in outcomes],
            [o.next_at for o in outcomes],
            [o.error for o in outcomes],
            [o.receipt for o in outcomes],
        )

    async def source_of(self, row_id: int) -> SourceOf:
        r = await self.pool.fetchrow(
            "SELECT source, source_offset, source_key, event FROM notify_deliveries WHERE id = $1",
            row_id,
        )
        return SourceOf(r["source"], r["source_offset"], r["source_key"], r["event"])

    async def backlog(self, sources: Sequence[str]) -> dict[str, int]:
        """Pending deliveries per lane on the partitions this instance owns."""
        if not sources:
            return {}
        rows = await self.pool.fetch(
            "SELECT lane, count(*) AS n FROM notify_deliveries "
            "WHERE status = 'pending' AND source = ANY($1::text[]) GROUP BY lane",
            list(sources),
        )
        return {r["lane"]: r["n"] for r in rows}

    async def remember_reply_targets(self, rows: Sequence[tuple[str, ReplyTarget, str]]) -> None:
        """(complaint id, target, thread key) of complaints on acknowledging accounts."""
        if not rows:
            return
        await self.pool.execute(
            """INSERT INTO notify_reply_targets
                   (message_id, platform, account_id, kind, platform_message_id, thread_key)
               SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                                    $6::text[])
               ON CONFLICT (message_id) DO NOTHING""",
            [r[0] for r in rows],
            [r[1].platform for r in rows],
            [r[1].account_id for r in rows],
            [r[1].kind for r in rows],
            [r[1].platform_message_id for r in rows],
            [r[2] for r in rows],
        )

    async def reply_targets(self, complaint_ids: Iterable[str]) -> dict[str, ReplyTarget]:
        ids = sorted(set(complaint_ids))
        if not ids:
            return {}
        rows = await self.pool.fetch(
            "SELECT message_id, platform, account_id, kind, platform_message_id "
            "FROM notify_reply_targets WHERE message_id = ANY($1::text[])",
            ids,
        )
        return {
            r["message_id"]: ReplyTarget(
                platform=r["platform"],
                account_id=r["account_id"],
                kind=r["kind"],
                platform_message_id=r["platform_message_id"],
            )
            for r in rows
        }

    async def pending_lanes(self) -> list[str]:
        """Lanes with deliveries still owed (started at boot even if no longer configured)."""
        rows = await self.pool.fetch(
            "SELECT DISTINCT lane FROM notify_deliveries WHERE status = 'pending'"
        )
        return [r["lane"] for r in rows]

    async def purge(self, older_than_s: float) -> int:
        """Forget finished deliveries older than the topics' retention (a replay can no
        longer bring their events back) and complaints not updated for as long."""
        done: str = await self.pool.execute(
            "DELETE FROM notify_deliveries WHERE status <> 'pending' "
            "AND finished_at < now() - make_interval(secs => $1)",
            older_than_s,
        )
        await self.pool.execute(
            "DELETE FROM notify_complaints WHERE updated_at < now() - make_interval(secs => $1)",
            older_than_s,
        )
        # a complaint is routed seconds after it arrives: a week is plenty to acknowledge it
        await self.pool.execute(
            "DELETE FROM notify_reply_targets WHERE created_at < now() - interval '7 days'"
        )
        return int(done.rsplit(" ", 1)[-1])

    async def rows(self) -> list[dict[str, Any]]:
        """Every row (tests and the operator's ``--status``)."""
        return [
            dict(r) for r in await self.pool.fetch("SELECT * FROM notify_deliveries ORDER BY id")
        ]


def _claimed(r: asyncpg.Record) -> Claimed:
    notice = Notice.model_validate_json(r["notice"])
    item = Item(
        id=r["id"],
        event_id=r["event_id"],
        channel=r["channel"],
        target=r["target"],
        notice=notice,
        event_time=r["event_time"],
        attempts=r["attempts"],
    )
    return Claimed(item, r["lane"], r["source"], r["parks"], r["created_at"])


_UPSERT_ROUTES = """
INSERT INTO notify_complaints (complaint_id, route, routed_at)
SELECT * FROM unnest($1::text[], $2::bytea[], $3::timestamptz[])
ON CONFLICT (complaint_id) DO UPDATE
    SET route = excluded.route, routed_at = excluded.routed_at, updated_at = now()
    WHERE notify_complaints.routed_at <= excluded.routed_at
"""

_INSERT = """
INSERT INTO notify_deliveries
    (event_id, channel, target, lane, source, source_offset, source_key, event, notice, event_time)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[],
                     $7::bytea[], $8::bytea[], $9::bytea[], $10::timestamptz[])
ON CONFLICT (event_id, channel, target) DO UPDATE
    SET status = 'pending', attempts = 0, parks = 0, next_attempt_at = now(),
        finished_at = NULL, last_error = NULL
    WHERE notify_deliveries.status = 'dead'
RETURNING id, event_id, channel, target, lane, created_at
"""

_CLAIM = """
SELECT id, event_id, channel, target, lane, source, notice, event_time,
       attempts, parks, created_at
FROM notify_deliveries
WHERE status = 'pending' AND lane = $1 AND source = ANY($2::text[])
  AND next_attempt_at <= now() AND NOT (id = ANY($3::bigint[]))
ORDER BY next_attempt_at, id
LIMIT $4
"""

_FINISH = """
UPDATE notify_deliveries AS d
SET status = u.status,
    attempts = d.attempts + u.tries,
    parks = u.parks,
    next_attempt_at = coalesce(u.next_at, d.next_attempt_at),
    finished_at = CASE WHEN u.status = 'pending' THEN NULL ELSE now() END,
    last_error = u.error,
    receipt = u.receipt
FROM unnest($1::bigint[], $2::text[], $3::int[], $4::int[], $5::timestamptz[], $6::text[],
            $7::text[]) AS u(id, status, tries, parks, next_at, error, receipt)
WHERE d.id = u.id
"""
