"""Desk figures: ingestion against a bare insert loop, queue and detail queries with a million
complaints, and a SIGKILL mid-stream.

``run(runs=N) -> dict`` (called by ``python -m bench``; ``python -m bench.desk`` alone). It
starts its own embedded broker (or uses ``KAFKA_BOOTSTRAP_SERVERS``) and its own embedded
PostgreSQL (or ``ADUAN_BENCH_DATABASE_URL``, a server where it may create databases).

Method:

* **events** are made by route's own state machine (``services.route.clocks.Router``, the demo
  registry and SLA policies): complaints routed to many agencies, warnings, overdue and
  escalation events, replies, acknowledgements, reroutes, resolutions and their commands,
  written to the three topics keyed by thread with record timestamps in processing order.
* **ingestion**: the desk's consumer (``services.desk.consumer``, in this process) reads the
  preloaded topics into a fresh database; against it, in the same run, a bare loop reads the
  same topics with aiokafka, decodes each record with orjson and inserts the same rows with
  the same driver (history row per event; complaint and access row per complaint of the
  batch, ``unnest`` inserts, one transaction per batch, offsets committed to Kafka) with
  none of the desk's work (validation, order keys, folding, idempotency, stored offsets).
  Rate = events / (time of the last committed batch − time of the first); medians of runs.
* **queries**: 1,000,000 complaints (one agency holds 10%, 30% open) with their access and
  two history rows each are bulk-loaded with COPY; then the agency's queue (first page, then
  pages further on by cursor, then only overdue) and the detail of random complaints (row,
  clocks, whole history) are timed through ``services.desk.queries`` as the API calls them;
  p50/p99 over several hundred calls; medians of runs.
* **restart**: ``python -m services.desk`` as a child consumes a preloaded stream, is
  SIGKILLed once a share of it is applied, and restarted; when it has caught up, the event
  ids in the database are compared with the ids on the topics (lost, doubled) and every
  complaint with the fold of its events read back from the topics (mismatched)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from common import codecs
from common.broker import broker_from_env, free_port
from common.kafka import ensure_topics, topic_name
from common.postgres import EmbeddedPostgres
from common.produce import MemorySink
from common.registry import load_registry
from common.settings import Settings
from common.topics import COMMANDS, ROUTES, SLA
from schemas.classified import ClassifiedMessage, MessageKind, RegionSource, Urgency
from schemas.commands import Command, CommandType
from schemas.messages import EventKind, Message, Platform
from schemas.routes import RouteEvent
from services.desk import store
from services.desk.auth import Principal
from services.desk.consumer import run_consumer
from services.desk.events import Source, parse
from services.desk.models import ComplaintQuery
from services.desk.projection import fold_all
from services.desk.queries import complaint_detail, list_complaints
from services.route.clocks import Router
from services.route.policy import load_sla_config

ROOT = Path(__file__).resolve().parents[1]
TOPICS = {Source.routes: ROUTES, Source.sla: SLA, Source.commands: COMMANDS}
AGENCIES = (
    ("sby-public-works", "public_works", "roads"),
    ("sby-environment", "environment", "waste"),
    ("sby-transportation", "transportation", "street_lighting"),
    ("sby-health", "health", "health"),
    ("sby-water-utility", "water_utility", "water_utility"),
    ("sby-education", "education", "education"),
)
WIB_9 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def log(msg: str) -> None:
    print(f"[bench desk {datetime.now():%H:%M:%S}] {msg}", file=sys.stderr, flush=True)


# --- events --------------------------------------------------------------------------------
Rec = tuple[Source, bytes, bytes, int]  # source, key, value, timestamp ms


def events(n_complaints: int, seed: int = 7) -> list[Rec]:
    """Route's events for ``n_complaints`` complaint lifecycles, in processing order."""
    rng = random.Random(seed)
    router = Router(
        load_sla_config(ROOT / "deploy/config/sla.yaml"),
        load_registry(ROOT / "deploy/config/registry.yaml"),
    )
    out: list[Rec] = []
    ts = int(time.time() * 1000) - n_complaints * 10
    for i in range(n_complaints):
        agency, kind, category = AGENCIES[i % len(AGENCIES)]
        thread = f"instagram:bench{seed}:{i}"
        at = WIB_9 + timedelta(seconds=rng.randrange(0, 5 * 86400))
        msg = Message(
            message_id=f"instagram:d{seed}x{i}", platform=Platform.instagram,
            kind=EventKind.comment, platform_message_id=f"d{seed}x{i}", thread_key=thread,
            account_id="17841400000000001", agency_id="sby-communication", region_code="35.78",
            author_pseudonym=f"u{i}", text=f"Keluhan nomor {i}: jalan rusak dan lampu mati",
            platform_time=at, received_at=at, delivery_id=f"d{i}",
        )  # fmt: skip
        cm = ClassifiedMessage(
            message=msg, kind=MessageKind.complaint, category=category, agency_kind=kind,
            agency_id=agency, region_code="35.78", region_source=RegionSource.account,
            urgency=Urgency.normal, confidence=0.9, classifier_version="bench",
        )  # fmt: skip
        state, evs = router.on_message(None, cm)
        steps: list[tuple[str, Any]] = [("events", evs)]
        roll = rng.random()
        if roll < 0.3:
            state, evs = router.on_tick(state, (at + timedelta(hours=30)).timestamp())
            steps.append(("events", evs))
        if 0.3 <= roll < 0.5:
            later = at + timedelta(hours=1)
            reply = msg.model_copy(
                update={
                    "message_id": f"{msg.message_id}r",
                    "is_agency_reply": True,
                    "platform_time": later,
                    "received_at": later,
                }
            )
            state, evs = router.on_message(state, cm.model_copy(update={"message": reply}))
            steps.append(("events", evs))
        for ctype, p in ((CommandType.acknowledge, 0.5), (CommandType.reroute, 0.1),
                         (CommandType.resolve, 0.4)):  # fmt: skip
            if rng.random() < p and state is not None and state.is_open:
                target = "sby-housing" if ctype is CommandType.reroute else None
                cmd = Command(
                    command_id=f"b{seed}-{i}-{ctype.value}", type=ctype,
                    complaint_id=msg.message_id, thread_key=thread,
                    issued_at=at + timedelta(hours=2), actor="bench", agency_id=target,
                    reason="bench" if target else None,
                )  # fmt: skip
                steps.append(("command", cmd))
                state, evs = router.on_command(state, cmd)
                steps.append(("events", evs))
        for what, payload in steps:
            items = [payload] if what == "command" else payload
            for e in items:
                ts += 1
                source = Source.sla
                if isinstance(e, Command):
                    source = Source.commands
                elif isinstance(e, RouteEvent):
                    source = Source.routes
                out.append((source, thread.encode(), codecs.dumps(e), ts))
    return out


async def preload(bootstrap: str, settings: Settings, records: list[Rec]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5,
                                max_batch_size=512 * 1024)  # fmt: skip
    await producer.start()
    try:
        futures = [
            await producer.send(topic_name(TOPICS[s], settings), v, key=k, timestamp_ms=ts)
            for s, k, v, ts in records
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


# --- ingestion -----------------------------------------------------------------------------
async def fresh_database(server_url: str) -> str:
    name = f"bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return f"{server_url.rpartition('/')[0]}/{name}"


async def drop_database(server_url: str, url: str) -> None:
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{url.rpartition("/")[2]}" WITH (FORCE)')
    finally:
        await admin.close()


async def timed_until(pool: asyncpg.Pool, total: int, timeout: float = 600) -> float:
    """Seconds from the first committed batch to the last, polling the history count."""
    deadline = time.monotonic() + timeout
    first: tuple[float, int] | None = None
    while True:
        n = await pool.fetchval("SELECT count(*) FROM desk_history")
        now = time.perf_counter()
        if n and first is None:
            first = (now, n)
        if n >= total:
            assert first is not None
            return (total - first[1]) / max(1e-9, now - first[0])
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {n}/{total} events applied in {timeout}s")
        await asyncio.sleep(0.02)


async def desk_rate(bootstrap: str, server_url: str, records: list[Rec]) -> float:
    prefix = f"bd{uuid.uuid4().hex[:8]}."
    settings = Settings(bootstrap_servers=bootstrap, topic_prefix=prefix,
                        consumer_group_prefix=prefix.rstrip("."))  # fmt: skip
    await ensure_topics(settings, [ROUTES, SLA, COMMANDS])
    await preload(bootstrap, settings, records)
    url = await fresh_database(server_url)
    pool = await store.create_pool(url, max_size=4)
    await store.migrate_database(pool)
    stop = asyncio.Event()
    task = asyncio.create_task(run_consumer(settings, pool, MemorySink(), stop))
    try:
        rate = await timed_until(pool, len(records))
    finally:
        stop.set()
        await task
        await pool.close()
        await drop_database(server_url, url)
    return rate


async def bare_rate(bootstrap: str, server_url: str, records: list[Rec]) -> float:
    """The same rows with the same driver and nothing else (see the module docstring)."""
    prefix = f"bb{uuid.uuid4().hex[:8]}."
    settings = Settings(bootstrap_servers=bootstrap, topic_prefix=prefix)
    await ensure_topics(settings, [ROUTES, SLA, COMMANDS])
    await preload(bootstrap, settings, records)
    url = await fresh_database(server_url)
    pool = await store.create_pool(url, max_size=4)
    await store.migrate_database(pool)
    sources = {topic_name(spec, settings): s for s, spec in TOPICS.items()}
    consumer = AIOKafkaConsumer(*sources, bootstrap_servers=bootstrap, group_id=prefix + "bare",
                                enable_auto_commit=False, auto_offset_reset="earliest",
                                fetch_max_wait_ms=100)  # fmt: skip
    await consumer.start()
    stop = asyncio.Event()

    async def loop() -> None:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=200, max_records=2000)
            if not batches:
                continue
            history, complaints = [], {}
            for recs in batches.values():
                for r in recs:
                    d = orjson.loads(r.value)
                    source = sources[r.topic]
                    eid = d.get("event_id") or f"command:{d.get('command_id')}"
                    cid = d["complaint_id"]
                    history.append(_bare_history(eid, cid, source, d, r))
                    complaints[cid] = _bare_complaint(cid, d, r)
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute(store.INSERT_HISTORY, *map(list, zip(*history, strict=True)))
                rows = list(complaints.values())
                await conn.execute(store.UPSERT_COMPLAINTS, *map(list, zip(*rows, strict=True)))
                access = [(r[2], r[0], "assigned", False, r[21]) for r in rows]
                await conn.execute(store.UPSERT_ACCESS, *map(list, zip(*access, strict=True)))
            await consumer.commit({tp: rs[-1].offset + 1 for tp, rs in batches.items()})

    task = asyncio.create_task(loop())
    try:
        rate = await timed_until(pool, len(records))
    finally:
        stop.set()
        await task
        await consumer.stop()
        await pool.close()
        await drop_database(server_url, url)
    return rate


def _bare_history(eid: str, cid: str, source: Source, d: dict[str, Any], r: Any) -> tuple[Any, ...]:
    when = datetime.fromisoformat(d.get("occurred_at") or d.get("routed_at") or d["issued_at"])
    return (
        eid, cid, source.name, d.get("event_type") or d.get("type"), True, d.get("agency_id"),
        d.get("clock"), None, when, d.get("actor"), d.get("reason"), None,
        d.get("escalation_level"), d.get("escalate_to"), d.get("met"), d.get("business_seconds"),
        d.get("response_seconds"), r.timestamp, int(source), r.partition, r.offset, d,
    )  # fmt: skip


def _bare_complaint(cid: str, d: dict[str, Any], r: Any) -> tuple[Any, ...]:
    now = datetime.now(UTC)
    return (
        cid, d["thread_key"], d.get("agency_id") or "unknown", d.get("agency_kind"), "complaint",
        d.get("category"), d.get("subcategory"), d.get("region_code"), d.get("urgency"),
        "instagram", d.get("text_excerpt") or "", d.get("policy"), "open", True, now, None, None,
        0, 0, {}, {}, now, None, None, None, r.timestamp, 0, r.offset,
    )  # fmt: skip


# --- queries on a million complaints -------------------------------------------------------
async def load_million(pool: asyncpg.Pool, n: int, agency: str, share: float) -> None:
    rng = random.Random(3)
    base = datetime(2026, 11, 1, tzinfo=UTC)
    others = [a for a, _, _ in AGENCIES if a != agency] + ["sby-housing", "sby-manpower"]
    batch = 100_000
    for start in range(0, n, batch):
        complaints, access, history = [], [], []
        for i in range(start, min(n, start + batch)):
            cid = f"instagram:m{i}"
            who = agency if rng.random() < share else rng.choice(others)
            is_open = rng.random() < 0.3
            routed = base + timedelta(seconds=rng.randrange(0, 60 * 86400))
            due = routed + timedelta(hours=rng.choice((5, 8, 24, 45)))
            resolved = routed + timedelta(hours=30) if not is_open else None
            due_sort = due if is_open else resolved
            clock = {"due_at": due.isoformat(), "seq": 1, "warned": False, "overdue": False}
            clocks = {"first_response": {**clock, "level": 0}} if is_open else {}
            complaints.append((
                cid, f"instagram:t{i}", who, "public_works", "complaint", "roads", None, "35.78",
                "normal", "instagram", f"Keluhan {i}: jalan berlubang di kelurahan {i % 154}",
                "default", "open" if is_open else "resolved", is_open, routed, None, resolved,
                0, 0, clocks, {who: "assigned"}, due_sort, None, None, None, i, 0, 0,
            ))  # fmt: skip
            access.append((who, cid, "assigned", not is_open, due_sort))
            for k, etype in enumerate(("routed", "warning")):
                payload = {"event_id": f"{cid}:{etype}", "complaint_id": cid}
                history.append((
                    f"{cid}:{etype}", cid, "routes" if k == 0 else "sla", etype, True, who,
                    None if k == 0 else "first_response", None if k == 0 else 1,
                    routed + timedelta(hours=k), None, None, None, None, None, None, None, None,
                    i * 2 + k, k, i % 6, i, payload,
                ))  # fmt: skip
        async with pool.acquire() as conn:
            await conn.copy_records_to_table("desk_complaints", records=complaints,
                                             columns=list(store.COMPLAINT_COLUMNS))  # fmt: skip
            await conn.copy_records_to_table(
                "desk_access", records=access,
                columns=["agency_id", "complaint_id", "role", "closed_here", "due_sort"],
            )  # fmt: skip
            await conn.copy_records_to_table("desk_history", records=history,
                                             columns=list(store.HISTORY_COLUMNS))  # fmt: skip
        log(f"loaded {min(n, start + batch):,} complaints")
    await pool.execute("ANALYZE")


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


async def query_times(pool: asyncpg.Pool, agency: str, n: int, calls: int) -> dict[str, float]:
    who = Principal(1, "agency", agency, "bench")
    now = datetime(2026, 12, 10, tzinfo=UTC)
    rng = random.Random(9)
    queue, overdue, detail = [], [], []
    cursors: list[str | None] = [None]
    for i in range(calls):
        cursor = cursors[i % len(cursors)]
        t0 = time.perf_counter()
        page = await list_complaints(pool, who, ComplaintQuery(limit=50, cursor=cursor), now)
        queue.append(time.perf_counter() - t0)
        if page.next_cursor and len(cursors) < 40:
            cursors.append(page.next_cursor)
        t0 = time.perf_counter()
        await list_complaints(pool, who, ComplaintQuery(status="overdue", limit=50), now)
        overdue.append(time.perf_counter() - t0)
        cid = f"instagram:m{rng.randrange(n)}"
        t0 = time.perf_counter()
        await complaint_detail(pool, Principal(2, "admin", None, "bench"), cid, now)
        detail.append(time.perf_counter() - t0)
    ms = 1000.0
    return {
        "queue_p50_ms": pct(queue, 50) * ms, "queue_p99_ms": pct(queue, 99) * ms,
        "overdue_p99_ms": pct(overdue, 99) * ms,
        "detail_p50_ms": pct(detail, 50) * ms, "detail_p99_ms": pct(detail, 99) * ms,
    }  # fmt: skip


# --- restart -------------------------------------------------------------------------------
async def crash_restart(bootstrap: str, server_url: str, records: list[Rec]) -> dict[str, Any]:
    prefix = f"bk{uuid.uuid4().hex[:8]}."
    settings = Settings(bootstrap_servers=bootstrap, topic_prefix=prefix)
    await ensure_topics(settings, [ROUTES, SLA, COMMANDS])
    await preload(bootstrap, settings, records)
    url = await fresh_database(server_url)
    pool = await store.create_pool(url, max_size=2)
    await store.migrate_database(pool)
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "ADUAN_TOPIC_PREFIX": prefix,
           "ADUAN_CONSUMER_GROUP_PREFIX": prefix.rstrip("."), "ADUAN_DESK_DATABASE_URL": url,
           "ADUAN_DESK_BATCH_MAX": "500"}  # fmt: skip

    def start() -> subprocess.Popen[bytes]:
        env["ADUAN_HTTP_PORT"] = str(free_port())
        return subprocess.Popen([sys.executable, "-m", "services.desk"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip

    async def count() -> int:
        return int(await pool.fetchval("SELECT count(*) FROM desk_history"))

    proc = start()
    try:
        deadline = time.monotonic() + 300
        while await count() < len(records) // 3:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("the desk did not make progress before the kill")
            await asyncio.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        at_kill = await count()
        proc = start()
        while await count() < len(records):
            if time.monotonic() > deadline + 300 or proc.poll() is not None:
                raise RuntimeError("the desk did not catch up after the restart")
            await asyncio.sleep(0.1)
        # Caught up by count; let a few more batches pass to see nothing extra arrives.
        await asyncio.sleep(1.0)
        ids = [r["event_id"] for r in await pool.fetch("SELECT event_id FROM desk_history")]
        on_topics = await read_back(bootstrap, settings)
        expected = {e.event_id for e in on_topics}
        mismatched = await compare_views(pool, on_topics)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
        await pool.close()
        await drop_database(server_url, url)
    return {
        "events_on_topics": len(expected),
        "applied_at_kill": at_kill,
        "lost": len(expected - set(ids)),
        "doubled": len(ids) - len(set(ids)) + len(set(ids) - expected),
        "complaints_mismatched": mismatched,
    }


async def read_back(bootstrap: str, settings: Settings) -> list[Any]:
    sources = {topic_name(spec, settings): s for s, spec in TOPICS.items()}
    consumer = AIOKafkaConsumer(*sources, bootstrap_servers=bootstrap,
                                group_id=f"readback-{uuid.uuid4().hex[:6]}",
                                auto_offset_reset="earliest", enable_auto_commit=False)  # fmt: skip
    await consumer.start()
    out = []
    quiet = 0
    try:
        while quiet < 5:
            batches = await consumer.getmany(timeout_ms=300, max_records=5000)
            quiet = 0 if batches else quiet + 1
            for recs in batches.values():
                out += [parse(sources[r.topic], r.value, r.timestamp, r.partition, r.offset)
                        for r in recs]  # fmt: skip
    finally:
        await consumer.stop()
    return out


async def compare_views(pool: asyncpg.Pool, on_topics: list[Any]) -> int:
    by_complaint: dict[str, list[Any]] = defaultdict(list)
    for e in on_topics:
        by_complaint[e.complaint_id].append(e)
    rows = await pool.fetch(f"SELECT {', '.join(store.COMPLAINT_COLUMNS)} FROM desk_complaints")
    found = {r["complaint_id"]: store.view_from_row(r) for r in rows}
    bad = 0
    for cid, evs in by_complaint.items():
        want = fold_all(evs)
        if want is None:
            continue
        if found.get(cid) != want:
            bad += 1
    return bad + len(set(found) - set(by_complaint))


# --- driver --------------------------------------------------------------------------------
@contextlib.contextmanager
def database_server() -> Any:
    configured = os.environ.get("ADUAN_BENCH_DATABASE_URL")
    if configured:
        yield configured
        return
    with EmbeddedPostgres() as server:
        yield server.url


async def main(runs: int, n_events_complaints: int, million: int) -> dict[str, Any]:
    log(f"building events for {n_events_complaints:,} complaint lifecycles with route's Router")
    records = events(n_events_complaints)
    log(f"{len(records):,} events")
    with broker_from_env(None) as (bootstrap, _), database_server() as server_url:
        desk, bare = [], []
        for i in range(runs):
            bare.append(await bare_rate(bootstrap, server_url, records))
            desk.append(await desk_rate(bootstrap, server_url, records))
            log(f"ingestion run {i + 1}/{runs}: desk {desk[-1]:,.0f}/s, bare {bare[-1]:,.0f}/s")
        url = await fresh_database(server_url)
        pool = await store.create_pool(url, max_size=2)
        try:
            await store.migrate_database(pool)
            agency = "sby-public-works"
            await load_million(pool, million, agency, 0.10)
            per_run = [await query_times(pool, agency, million, 400) for _ in range(runs)]
        finally:
            await pool.close()
            await drop_database(server_url, url)
        log("restart: SIGKILL mid-stream")
        restart = await crash_restart(bootstrap, server_url, records)
    queries = {k: statistics.median(r[k] for r in per_run) for k in per_run[0]}
    return {
        "events": len(records),
        "ingestion_events_per_s": {
            "desk": statistics.median(desk),
            "bare_insert_loop": statistics.median(bare),
        },
        "ingestion_all_runs": {"desk": desk, "bare_insert_loop": bare},
        "ingestion_ratio": statistics.median(desk) / statistics.median(bare),
        "complaints_in_db": million,
        "queries": queries,
        "restart": restart,
    }


def run(runs: int = 3, complaints: int = 6000, million: int = 1_000_000) -> dict[str, Any]:
    return asyncio.run(main(runs, complaints, million))


if __name__ == "__main__":
    p = argparse.ArgumentParser(prog="python -m bench.desk", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--complaints", type=int, default=6000, help="lifecycles in the event stream")
    p.add_argument("--million", type=int, default=1_000_000, help="complaints for the queries")
    a = p.parse_args()
    print(json.dumps(run(a.runs, a.complaints, a.million), indent=2, default=str))
