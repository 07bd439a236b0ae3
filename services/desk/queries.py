"""The read model's reads: the queue, one complaint with its history, and the figures.

Visibility is part of every query, not a check after it: an agency's queries start from its
rows in ``desk_access``, so a complaint it may not see is never read at all, and answering
404 for it is indistinguishable from a complaint that does not exist.

The queue is keyset-paginated on (closed, nearest due time, complaint id), the order of the
index it scans (``desk_access_queue`` for an agency, ``desk_complaints_queue`` for an
admin), so every page costs the same whatever its depth (no OFFSET)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import orjson

from services.desk.auth import Principal
from services.desk.models import (
    ClockOut,
    ComplaintDetail,
    ComplaintList,
    ComplaintQuery,
    ComplaintSummary,
    HistoryEntry,
    Stats,
    StatsQuery,
    StatsRow,
)

SUMMARY_COLUMNS = (
    "c.complaint_id, c.agency_id, c.agency_kind, c.kind, c.category, c.subcategory, "
    "c.region_code, c.urgency, c.platform, c.excerpt, c.status, c.is_open, c.escalation_level, "
    "c.acknowledged_at, c.due_sort, c.routed_at, c.resolved_at, c.clocks"
)


class BadCursor(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Cursor:
    closed: bool
    due_sort: datetime
    complaint_id: str

    def encode(self) -> str:
        raw = orjson.dumps([self.closed, self.due_sort.isoformat(), self.complaint_id])
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """A cursor is opaque to clients but not secret: a forged one only moves the start
        of the caller's own queue, so it is validated, not signed."""
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            closed, due, cid = orjson.loads(raw)
            due_sort = datetime.fromisoformat(due)
        except (binascii.Error, ValueError, TypeError) as exc:
            raise BadCursor("cursor: not a cursor this API issued") from exc
        if not isinstance(closed, bool) or not isinstance(cid, str) or due_sort.tzinfo is None:
            raise BadCursor("cursor: not a cursor this API issued")
        return cls(closed, due_sort, cid)


class _Sql:
    """A WHERE clause under construction, with numbered parameters."""

    def __init__(self) -> None:
        self.where: list[str] = []
        self.args: list[Any] = []

    def arg(self, value: Any) -> str:
        self.args.append(value)
        return f"${len(self.args)}"

    def add(self, clause: str) -> None:
        self.where.append(clause)


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def list_complaints(
    pool: asyncpg.Pool, who: Principal, query: ComplaintQuery, now: datetime
) -> ComplaintList:
    sql = _Sql()
    if who.is_admin:
        closed, due, table = "(NOT c.is_open)", "c.due_sort", "desk_complaints c"
        ident, role = "c.complaint_id", "NULL::text AS role"
    else:
        # The whole sort key from desk_access, so the keyset condition is a range of its index.
        closed, due, ident = "a.closed_here", "a.due_sort", "a.complaint_id"
        table = "desk_access a JOIN desk_complaints c USING (complaint_id)"
        role = "a.role"
        sql.add(f"a.agency_id = {sql.arg(who.agency_id)}")
    if query.status == "open":
        sql.add(f"{closed} = false")
    elif query.status == "overdue":
        sql.add(f"{closed} = false AND {due} < {sql.arg(now)}")
    elif query.status == "resolved":
        sql.add(f"{closed} = true AND c.status = 'resolved'")
    for column, value in (
        ("c.agency_id", query.agency),
        ("c.category", query.category),
        ("c.platform", query.platform),
        ("c.urgency", query.urgency),
        ("c.kind", query.kind),
    ):
        if value is not None:
            sql.add(f"{column} = {sql.arg(value)}")
    if query.region is not None:
        sql.add(
            f"(c.region_code = {sql.arg(query.region)} OR c.region_code LIKE "
            f"{sql.arg(query.region + '.%')})"
        )
    if query.q is not None:
        sql.add(f"c.excerpt ILIKE {sql.arg(_like(query.q))}")
    if query.due_before is not None:
        sql.add(f"{due} < {sql.arg(query.due_before)}")
    if query.due_after is not None:
        sql.add(f"{due} >= {sql.arg(query.due_after)}")
    if query.cursor is not None:
        cur = Cursor.decode(query.cursor)
        sql.add(
            f"({closed}, {due}, {ident}) > "
            f"({sql.arg(cur.closed)}, {sql.arg(cur.due_sort)}, {sql.arg(cur.complaint_id)})"
        )
    where = " AND ".join(sql.where) or "true"
    limit = sql.arg(query.limit + 1)
    rows = await pool.fetch(
        f"SELECT {SUMMARY_COLUMNS}, {role}, {closed} AS sort_closed, {due} AS sort_due "
        f"FROM {table} WHERE {where} "
        f"ORDER BY {closed}, {due}, {ident} LIMIT {limit}",
        *sql.args,
    )
    items = [summary(r, now) for r in rows[: query.limit]]
    next_cursor = None
    if len(rows) > query.limit:
        last = rows[query.limit - 1]
        next_cursor = Cursor(last["sort_closed"], last["sort_due"], last["complaint_id"]).encode()
    return ComplaintList(items=items, next_cursor=next_cursor)


def summary(r: asyncpg.Record, now: datetime) -> ComplaintSummary:
    has_clock = bool(r["clocks"])
    return ComplaintSummary(
        complaint_id=r["complaint_id"],
        agency_id=r["agency_id"],
        agency_kind=r["agency_kind"],
        kind=r["kind"],
        category=r["category"],
        subcategory=r["subcategory"],
        region_code=r["region_code"],
        urgency=r["urgency"],
        platform=r["platform"],
        excerpt=r["excerpt"],
        status=r["status"],
        overdue=bool(r["is_open"] and has_clock and r["due_sort"] < now),
        escalation_level=r["escalation_level"],
        acknowledged=r["acknowledged_at"] is not None,
        due_at=r["due_sort"] if r["is_open"] and has_clock else None,
        routed_at=r["routed_at"],
        resolved_at=r["resolved_at"],
        role=r["role"],
    )


async def visible_complaint(
    conn: asyncpg.Pool | asyncpg.Connection, who: Principal, complaint_id: str
) -> asyncpg.Record | None:
    """The complaint row (with the caller's role) if the caller may see it, else None."""
    if who.is_admin:
        return await conn.fetchrow(
            "SELECT c.*, NULL::text AS role FROM desk_complaints c WHERE complaint_id = $1",
            complaint_id,
        )
    return await conn.fetchrow(
        "SELECT c.*, a.role FROM desk_access a JOIN desk_complaints c USING (complaint_id) "
        "WHERE a.agency_id = $1 AND a.complaint_id = $2",
        who.agency_id,
        complaint_id,
    )


async def complaint_detail(
    pool: asyncpg.Pool, who: Principal, complaint_id: str, now: datetime
) -> ComplaintDetail | None:
    async with pool.acquire() as conn:
        row = await visible_complaint(conn, who, complaint_id)
        if row is None:
            return None
        history = await conn.fetch(
            "SELECT * FROM desk_history WHERE complaint_id = $1 ORDER BY ts_ms, rank, kafka_offset",
            complaint_id,
        )
    clocks = [
        ClockOut(
            clock=name,
            due_at=(due := datetime.fromisoformat(c["due_at"])),
            seconds_left=(due - now).total_seconds(),
            overdue=due < now,
            warned=bool(c.get("warned")),
            escalation_level=int(c.get("level") or 0),
        )
        for name, c in sorted(row["clocks"].items(), key=lambda kv: kv[1]["due_at"])
    ]
    base = summary(row, now).model_dump()
    return ComplaintDetail(
        **base,
        policy=row["policy"],
        reroutes=row["reroutes"],
        acknowledged_at=row["acknowledged_at"],
        first_response_at=row["first_response_at"],
        first_response_business_seconds=row["first_response_business_s"],
        first_response_met=row["first_response_met"],
        clocks=clocks,
        history=[history_entry(h) for h in history],
    )


def history_entry(h: asyncpg.Record) -> HistoryEntry:
    payload = h["payload"]
    previous = payload.get("previous_agency_id") if isinstance(payload, dict) else None
    return HistoryEntry(
        event_id=h["event_id"],
        source=h["source"],
        event_type=h["event_type"],
        known=h["known"],
        occurred_at=h["occurred_at"],
        agency_id=h["agency_id"],
        clock=h["clock"],
        actor=h["actor"],
        reason=h["reason"],
        target_agency_id=h["target_agency_id"],
        previous_agency_id=previous if isinstance(previous, str) else None,
        escalation_level=h["escalation_level"],
        escalate_to=h["escalate_to"],
        met=h["met"],
        business_seconds=h["business_s"],
        response_seconds=h["response_s"],
    )


# --- stats ---------------------------------------------------------------------------------
def period(query: StatsQuery, now: datetime) -> tuple[datetime, datetime]:
    tz = ZoneInfo(query.tz)

    def instant(value: date | datetime | None, default: datetime) -> datetime:
        if value is None:
            return default
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=tz)
        return datetime(value.year, value.month, value.day, tzinfo=tz)

    end = instant(query.to, now)
    start = instant(query.from_, end - timedelta(days=30))
    return start.astimezone(UTC), end.astimezone(UTC)


STATS_SQL = """
WITH buckets AS (
    SELECT CASE WHEN $4 = 'none' THEN $1::timestamptz
                ELSE date_trunc($4, $1::timestamptz, $5) END AS b
),
series AS (
    SELECT s AS bucket_start,
           CASE WHEN $4 = 'none' THEN $2::timestamptz
                ELSE s + ('1 ' || $4)::interval END AS bucket_end
    FROM buckets,
         generate_series(
             b, $2::timestamptz - interval '1 microsecond',
             CASE WHEN $4 = 'none' THEN $2::timestamptz - $1::timestamptz + interval '1 day'
                  ELSE ('1 ' || $4)::interval END) AS s
),
ev AS (
    SELECT h.*, s.bucket_start FROM desk_history h
    JOIN series s ON h.occurred_at >= greatest(s.bucket_start, $1)
                 AND h.occurred_at < least(s.bucket_end, $2)
    WHERE h.occurred_at >= $1 AND h.occurred_at < $2
      AND h.source IN ('routes', 'sla') AND h.agency_id IS NOT NULL
      AND ($3::text[] IS NULL OR h.agency_id = ANY($3::text[]))
),
received AS (
    SELECT agency_id, bucket_start, count(DISTINCT complaint_id) AS n FROM ev
    WHERE source = 'routes' AND event_type IN ('routed', 'rerouted') GROUP BY 1, 2
),
answered AS (
    SELECT agency_id, bucket_start, count(DISTINCT complaint_id) AS n,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY business_s) AS p50,
           percentile_cont(0.9) WITHIN GROUP (ORDER BY business_s) AS p90
    FROM ev WHERE source = 'sla' AND event_type = 'responded' AND clock = 'first_response'
    GROUP BY 1, 2
),
outcomes AS (
    SELECT agency_id, bucket_start,
           count(DISTINCT (complaint_id, coalesce(clock_seq, 0))) AS decided,
           count(DISTINCT (complaint_id, coalesce(clock_seq, 0)))
               FILTER (WHERE event_type = 'responded' AND met) AS met
    FROM ev WHERE source = 'sla' AND clock = 'first_response'
      AND event_type IN ('responded', 'overdue')
    GROUP BY 1, 2
),
now_open AS (
    SELECT agency_id, count(*) AS open,
           count(*) FILTER (WHERE clocks <> '{}'::jsonb AND due_sort < $6) AS overdue
    FROM desk_complaints WHERE is_open
      AND ($3::text[] IS NULL OR agency_id = ANY($3::text[]))
    GROUP BY 1
),
keys AS (
    SELECT agency_id, bucket_start FROM received
    UNION SELECT agency_id, bucket_start FROM answered
    UNION SELECT agency_id, bucket_start FROM outcomes
    UNION SELECT agency_id, (SELECT max(bucket_start) FROM series) FROM now_open
)
SELECT k.agency_id, k.bucket_start,
       least(s.bucket_end, $2) AS bucket_end,
       coalesce(r.n, 0) AS received, coalesce(a.n, 0) AS answered,
       coalesce(o.open, 0) AS open, coalesce(o.overdue, 0) AS overdue,
       a.p50, a.p90, oc.decided, oc.met
FROM keys k
JOIN series s ON s.bucket_start = k.bucket_start
LEFT JOIN received r ON r.agency_id = k.agency_id AND r.bucket_start = k.bucket_start
LEFT JOIN answered a ON a.agency_id = k.agency_id AND a.bucket_start = k.bucket_start
LEFT JOIN outcomes oc ON oc.agency_id = k.agency_id AND oc.bucket_start = k.bucket_start
LEFT JOIN now_open o ON o.agency_id = k.agency_id
ORDER BY k.agency_id, k.bucket_start
"""


async def stats(pool: asyncpg.Pool, who: Principal, query: StatsQuery, now: datetime) -> Stats:
    """Per agency and period: a row for every bucket with activity, and for an agency with
    open complaints at least the last bucket. ``open`` and ``overdue`` are now (a snapshot,
    the same in every row); the rest counts events inside each bucket."""
    start, end = period(query, now)
    own = [who.agency_id]
    agencies = ([query.agency] if query.agency else None) if who.is_admin else own
    rows = await pool.fetch(STATS_SQL, start, end, agencies, query.bucket, query.tz, now)
    out = [
        StatsRow(
            agency_id=r["agency_id"],
            period_start=max(r["bucket_start"], start),
            period_end=r["bucket_end"],
            received=r["received"],
            answered=r["answered"],
            open=r["open"],
            overdue=r["overdue"],
            first_response_business_seconds_median=r["p50"],
            first_response_business_seconds_p90=r["p90"],
            share_met=(r["met"] / r["decided"]) if r["decided"] else None,
        )
        for r in rows
    ]
    return Stats(period_start=start, period_end=end, bucket=query.bucket, tz=query.tz, rows=out)
