"""Route recovery at scale: restart-to-ready time, catch-up and memory with N open complaints.

``python -m bench.route_recovery --n 100000 --n 1000000 --runs 3`` (``run()`` for
``python -m bench``). One embedded broker; per size and run, a fresh set of topics whose
table changelog is preloaded with N open complaints (real route states built by the router
under test, so the same script measures any commit), their warnings spread over the next
``--window-h`` hours so that deadlines keep coming due while workers are down. The route
workers are the real entry point (``python -m services.route``) as child processes.

Scenarios (each a separate child process; times from spawn, or from the kill, to the
worker's log line saying its due index was built for all the partitions it owns, which is
when timers run):

* ``memory``: start on the memory store, reads the whole changelog (every start, before
  issue 17 the only store);
* ``rocksdb_cold``: start on RocksDB with an empty data directory, i.e. a worker that never
  held these partitions (first start, or a rebalance to a worker without a standby copy);
* ``rocksdb_restart``: SIGKILL that worker, wait ``--down-s``, start it again on the same
  directory: reads only the changelog tail;
* ``rebalance_join``: a second worker (own empty directory, standby replicas 1) joins the
  running one: time until it has indexed the partitions it was given;
* ``rebalance_failover``: SIGKILL the first worker: time until the second owns all six
  partitions and has indexed them (the broker notices the death after the session timeout).

Memory: the child's peak (VmHWM) and current (VmRSS) resident set once ready, from /proc;
per open complaint as (RSS with N − RSS with an empty table) / N. Catch-up: after the
restart, every complaint whose warning came due up to then must have exactly one warning
event on ``aduan.sla.v1`` (checked by event id over the whole topic)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench.route_timers import _router, _template
from common.broker import broker_from_env, die_with_parent
from common.kafka import ensure_topics, topic_name
from common.settings import Settings
from common.topics import SLA

PARTITIONS = 6
RESULTS = Path(__file__).parent / "results"
READY = re.compile(r"indexed (.+?) scheduled complaints on partitions \[([\d, ]*)\]")


def log(msg: str) -> None:
    print(f"[recovery {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


@dataclass
class Worker:
    proc: subprocess.Popen[bytes]
    log_path: Path
    spawned: float

    def rss(self) -> dict[str, float]:
        """Peak and current resident memory (MiB) of the child, from /proc."""
        out: dict[str, float] = {}
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith(("VmHWM:", "VmRSS:")):
                    name, value = line.split(":")
                    out[name] = int(value.split()[0]) / 1024
        return {"peak_mib": out.get("VmHWM", 0.0), "rss_mib": out.get("VmRSS", 0.0)}

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    async def ready(self, partitions: int, after: int = 0, timeout: float = 900) -> float:
        """Seconds from spawn until the worker logged a built index for ``partitions``
        partitions (its ``after``-th such line or later)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"route exited with {self.proc.returncode}: {self.log_path}")
            text = self.log_path.read_text(errors="replace")
            found = [m for m in READY.finditer(text) if len(m.group(2).split(",")) == partitions]
            if len(found) > after:
                return time.monotonic() - self.spawned
            await asyncio.sleep(0.05)
        raise RuntimeError(f"route not ready after {timeout}s: {self.log_path}")


def spawn(env: dict[str, str], log_path: Path) -> Worker:
    out = open(log_path, "ab")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.route"],
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        preexec_fn=die_with_parent,
    )
    return Worker(proc, log_path, time.monotonic())


def child_env(bootstrap: str, prefix: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        KAFKA_BOOTSTRAP_SERVERS=bootstrap,
        ADUAN_TOPIC_PREFIX=prefix,
        ADUAN_CONSUMER_GROUP_PREFIX=prefix.rstrip("."),
        ADUAN_REBALANCE_TIMEOUT_S="4",
        ADUAN_SESSION_TIMEOUT_S="4",
    )
    env.update(extra)
    return env


async def preload_changelog(
    bootstrap: str, prefix: str, n: int, window_s: float, records: list[Any] | None = None
) -> dict[bytes, float]:
    """Write ``n`` open complaints to route's table changelog; returns key → warning time.
    With ``records``, also collects (partition, offset, key, value) of everything written."""
    changelog = f"{prefix.rstrip('.')}-route-route-complaints-changelog"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(changelog, PARTITIONS, 1, topic_configs={"cleanup.policy": "compact"})]
        )
    finally:
        await admin.close()
    router = _router()
    tpl = _template(router)
    first = tpl.clocks["first_response"]
    rng = random.Random(11)
    now = time.time()
    warnings: dict[bytes, float] = {}
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_batch_size=512 * 1024
    )
    await producer.start()
    try:
        pending = []
        for i in range(n):
            shift = now + 60 + rng.uniform(0, window_s) - first.warning_at
            clocks = {
                k: replace(
                    c,
                    started_at=c.started_at + shift,
                    warning_at=c.warning_at + shift,
                    due_at=c.due_at + shift,
                    escalations=[(lvl, at + shift, to) for lvl, at, to in c.escalations],
                )
                for k, c in tpl.clocks.items()
            }
            cid = f"instagram:r{i:09d}"
            state = replace(
                tpl,
                complaint_id=cid,
                thread_key=f"instagram:m:r{i:09d}",
                opened_at=tpl.opened_at + shift,
                partition=i % PARTITIONS,
                clocks=clocks,
                seqs=dict(tpl.seqs),
                seen=[cid],
            )
            key = state.thread_key.encode()
            warnings[key] = clocks["first_response"].warning_at
            value = state.to_bytes()
            pending.append(
                (key, value, await producer.send(changelog, value, key=key, partition=i % 6))
            )
            if len(pending) >= 20_000:
                await _settle(pending, records)
        await _settle(pending, records)
        # One-record batch closing each partition (route's marker; see RouteWorker.flush).
        for p in range(PARTITIONS):
            meta = await producer.send_and_wait(
                changelog, None, key=b"\x00route:end-of-batch", partition=p
            )
            if records is not None:
                records.append((p, meta.offset, b"\x00route:end-of-batch", None))
    finally:
        await producer.stop()
    return warnings


async def _settle(pending: list[Any], records: list[Any] | None) -> None:
    metas = await asyncio.gather(*(f for _, _, f in pending))
    if records is not None:
        records.extend(
            (m.partition, m.offset, k, v) for (k, v, _), m in zip(pending, metas, strict=True)
        )
    pending.clear()


def prebuild(bootstrap: str, prefix: str, data_dir: str, records: list[Any]) -> None:
    """Write the changelog's content into a worker's RocksDB directory, as a worker that had
    processed it (or a standby that had caught up) leaves it: states, derived index and
    counts, and the changelog offsets, through route's own ``RocksState`` and faust's paths.
    Saves the cold recovery (faust reads ~1-5k changelog records/s here) for large N."""
    from services.route.app import create_app
    from services.route.rocks import RocksState
    from services.route.settings import RouteSettings

    settings = Settings(
        bootstrap_servers=bootstrap, topic_prefix=prefix, consumer_group_prefix=prefix.rstrip(".")
    )
    route = create_app(settings, route_settings=RouteSettings(data_dir=Path(data_dir)))
    store = next(iter(route.app.tables.values())).data
    dbs: dict[int, Any] = {}

    def db_for(p: int) -> Any:
        if p not in dbs:
            path = store.partition_path(p)
            path.parent.mkdir(parents=True, exist_ok=True)
            dbs[p] = store.rocksdb_options.open(path)
        return dbs[p]

    state = RocksState(db_for, store.offset_key)
    for i in range(0, len(records), 50_000):
        state.apply_changelog(records[i : i + 50_000])
    for db in dbs.values():
        db.close()


async def sla_warning_ids(
    bootstrap: str, topic: str, quiet_s: float = 3.0, at_most_s: float = 30.0
) -> Counter[str]:
    """Every warning event id on ``topic``: read until nothing new for ``quiet_s``, or for
    ``at_most_s`` (the worker keeps firing deadlines that come due while we read)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"rc-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=200,
    )
    await consumer.start()
    ids: Counter[str] = Counter()
    last = begun = time.monotonic()
    try:
        while time.monotonic() - last < quiet_s and time.monotonic() - begun < at_most_s:
            batches = await consumer.getmany(timeout_ms=500, max_records=50_000)
            for recs in batches.values():
                for r in recs:
                    if b'"warning"' in r.value:
                        ids[orjson.loads(r.value)["event_id"]] += 1
                last = time.monotonic()
    finally:
        await consumer.stop()
    return ids


async def one_size(
    bootstrap: str,
    n: int,
    window_s: float,
    down_s: float,
    log_dir: Path,
    memory_only: bool,
    prebuilt: bool = False,
) -> dict:
    out: dict[str, dict[str, float]] = {}
    records: list[Any] | None = [] if prebuilt else None

    async def fresh() -> tuple[str, dict[bytes, float]]:
        prefix = f"r{uuid.uuid4().hex[:8]}."
        settings = Settings(bootstrap_servers=bootstrap, topic_prefix=prefix)
        await ensure_topics(settings)
        started = time.monotonic()
        warnings = await preload_changelog(bootstrap, prefix, n, window_s, records)
        log(f"n={n:,}: changelog preloaded in {time.monotonic() - started:.1f}s")
        return prefix, warnings

    if prebuilt:
        return await prebuilt_size(bootstrap, n, down_s, log_dir, fresh, lambda: records or [])

    def logfile(name: str) -> Path:
        return log_dir / f"recovery-{n}-{name}-{uuid.uuid4().hex[:6]}.log"

    # memory store: every start reads the whole changelog
    prefix, _ = await fresh()
    with tempfile.TemporaryDirectory() as d:
        env = child_env(bootstrap, prefix, ADUAN_ROUTE_STORE="memory", ADUAN_ROUTE_DATA_DIR=d)
        w = spawn(env, logfile("memory"))
        try:
            out["memory"] = {"ready_s": await w.ready(PARTITIONS), **w.rss()}
        finally:
            w.kill()
    log(f"n={n:,} memory: {out['memory']}")
    if memory_only:  # a commit without the RocksDB store (the baseline before issue 17)
        return out

    # RocksDB: cold start, SIGKILL, warm restart; then a second worker joins and takes over
    prefix, warnings = await fresh()
    sla = topic_name(SLA, Settings(bootstrap_servers=bootstrap, topic_prefix=prefix))
    with tempfile.TemporaryDirectory() as d1, tempfile.TemporaryDirectory() as d2:
        env = child_env(bootstrap, prefix, ADUAN_ROUTE_STORE="rocksdb", ADUAN_ROUTE_DATA_DIR=d1)
        w = spawn(env, logfile("cold"))
        try:
            out["rocksdb_cold"] = {"ready_s": await w.ready(PARTITIONS), **w.rss()}
            await asyncio.sleep(2.0)  # a few batches and ticks land after recovery
        finally:
            w.kill()
        killed = time.time()
        await asyncio.sleep(down_s)  # deadlines keep coming due while nobody runs
        w = spawn(env, logfile("restart"))
        try:
            ready = await w.ready(PARTITIONS)
            due_by = time.time()
            out["rocksdb_restart"] = {"ready_s": ready, **w.rss()}
            await asyncio.sleep(2.0)
            out["rocksdb_restart"].update(await catch_up(bootstrap, sla, warnings, killed, due_by))
            log(f"n={n:,} rocksdb: {out['rocksdb_cold']} / {out['rocksdb_restart']}")
            env2 = child_env(
                bootstrap, prefix, ADUAN_ROUTE_STORE="rocksdb", ADUAN_ROUTE_DATA_DIR=d2
            )
            b = spawn(env2, logfile("second"))
            try:
                # Joined: the first worker re-indexes its smaller share, the second its own.
                joined = await b.ready(PARTITIONS // 2)
                out["rebalance_join"] = {"ready_s": joined, **b.rss()}
                await asyncio.sleep(3.0)  # standbys catch up
                w.kill()
                killed_at = time.monotonic()
                b.spawned = killed_at
                out["rebalance_failover"] = {"ready_s": await b.ready(PARTITIONS), **b.rss()}
            finally:
                b.kill()
        finally:
            w.kill()
    log(f"n={n:,} rebalance: {out['rebalance_join']} / {out['rebalance_failover']}")
    return out


async def prebuilt_size(
    bootstrap: str,
    n: int,
    down_s: float,
    log_dir: Path,
    fresh: Callable[[], Awaitable[tuple[str, dict[bytes, float]]]],
    records: Callable[[], list[Any]],
) -> dict:
    """Large N: both workers' directories are prebuilt (``prebuild``), so every start reads
    only the changelog's tail: restart, restart after downtime (catch-up), a second worker
    with a caught-up standby copy joins, then takes over when the first is killed."""
    out: dict[str, dict[str, float]] = {}
    prefix, warnings = await fresh()
    sla = topic_name(SLA, Settings(bootstrap_servers=bootstrap, topic_prefix=prefix))
    with tempfile.TemporaryDirectory() as d1, tempfile.TemporaryDirectory() as d2:
        started = time.monotonic()
        for d in (d1, d2):
            prebuild(bootstrap, prefix, d, records())
        log(f"n={n:,}: two worker directories prebuilt in {time.monotonic() - started:.1f}s")
        env = child_env(bootstrap, prefix, ADUAN_ROUTE_STORE="rocksdb", ADUAN_ROUTE_DATA_DIR=d1)
        tag = uuid.uuid4().hex[:6]
        w = spawn(env, log_dir / f"recovery-{n}-warm-{tag}.log")
        try:
            out["rocksdb_warm_start"] = {"ready_s": await w.ready(PARTITIONS), **w.rss()}
            await asyncio.sleep(2.0)
        finally:
            w.kill()
        killed = time.time()
        await asyncio.sleep(down_s)
        w = spawn(env, log_dir / f"recovery-{n}-restart-{tag}.log")
        try:
            ready = await w.ready(PARTITIONS)
            due_by = time.time()
            out["rocksdb_restart"] = {"ready_s": ready, **w.rss()}
            await asyncio.sleep(2.0)
            out["rocksdb_restart"].update(await catch_up(bootstrap, sla, warnings, killed, due_by))
            log(f"n={n:,} rocksdb: {out['rocksdb_warm_start']} / {out['rocksdb_restart']}")
            env2 = child_env(
                bootstrap, prefix, ADUAN_ROUTE_STORE="rocksdb", ADUAN_ROUTE_DATA_DIR=d2
            )
            b = spawn(env2, log_dir / f"recovery-{n}-second-{tag}.log")
            try:
                out["rebalance_join"] = {"ready_s": await b.ready(PARTITIONS // 2), **b.rss()}
                await asyncio.sleep(3.0)
                w.kill()
                b.spawned = time.monotonic()
                out["rebalance_failover"] = {"ready_s": await b.ready(PARTITIONS), **b.rss()}
            finally:
                b.kill()
        finally:
            w.kill()
    log(f"n={n:,} rebalance: {out['rebalance_join']} / {out['rebalance_failover']}")
    return out


async def catch_up(
    bootstrap: str, sla: str, warnings: dict[bytes, float], killed: float, due_by: float
) -> dict[str, float]:
    """Of the warnings that came due while no worker ran: how many fired once, more, never."""
    ids = await sla_warning_ids(bootstrap, sla)
    came_due = [k for k, at in warnings.items() if killed < at <= due_by]
    fired = [ids.get(f"instagram:{k.decode().split(':')[-1]}:first_response:1:warning:0", 0)
             for k in came_due]  # fmt: skip
    return {
        "came_due_while_down": len(came_due),
        "fired_once": sum(1 for f in fired if f == 1),
        "fired_twice_or_more": sum(1 for f in ids.values() if f > 1),
        "not_fired": sum(1 for f in fired if f == 0),
    }


async def main(
    sizes: list[int],
    runs: int,
    window_s: float,
    down_s: float,
    memory_only: bool = False,
    prebuilt: bool = False,
) -> dict:
    log_dir = RESULTS / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, object] = {"runs": runs, "window_s": window_s, "down_s": down_s}
    with broker_from_env(log_dir / "broker-recovery.log") as (bootstrap, _broker):
        empty = await one_size(bootstrap, 0, window_s, down_s, log_dir, memory_only, prebuilt)
        per_size: dict[str, object] = {}
        for n in sizes:
            all_runs = [
                await one_size(bootstrap, n, window_s, down_s, log_dir, memory_only, prebuilt)
                for _ in range(runs)
            ]
            summary: dict[str, dict[str, float]] = {}
            for scenario in all_runs[0]:
                keys = all_runs[0][scenario].keys()
                summary[scenario] = {
                    k: statistics.median(r[scenario][k] for r in all_runs) for k in keys
                }
                if empty and n:
                    base = empty[scenario]["rss_mib"]
                    summary[scenario]["bytes_per_open_complaint"] = (
                        (summary[scenario]["rss_mib"] - base) * 2**20 / n
                    )
            per_size[str(n)] = {"median": summary, "all_runs": all_runs}
        results["empty_table"] = empty
        results["sizes"] = per_size
    return results


def run(bootstrap: str | None = None, runs: int = 3, sizes: tuple[int, ...] = (100_000,)) -> dict:
    """For ``python -m bench``: 100,000 complaints by default (1,000,000 takes ~15 minutes
    per run on the 2-core machine; run it with ``python -m bench.route_recovery``)."""
    del bootstrap
    return asyncio.run(main(list(sizes), runs, 6 * 3600.0, 5.0))


if __name__ == "__main__":
    p = argparse.ArgumentParser(prog="python -m bench.route_recovery", description=__doc__)
    p.add_argument("--n", type=int, action="append", help="open complaints (repeatable)")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--window-h", type=float, default=6.0, help="warnings spread over")
    p.add_argument("--down-s", type=float, default=5.0, help="downtime before the restart")
    p.add_argument("--out", type=Path, default=RESULTS / "route_recovery.json")
    p.add_argument("--memory-only", action="store_true", help="for commits without RocksDB")
    p.add_argument(
        "--prebuilt", action="store_true", help="large N: prebuild the RocksDB directories"
    )
    a = p.parse_args()
    result = asyncio.run(
        main(a.n or [100_000], a.runs, a.window_h * 3600.0, a.down_s, a.memory_only, a.prebuilt)
    )
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k != "sizes"}, indent=2))
    for n, r in result["sizes"].items():  # type: ignore[union-attr]
        print(n, json.dumps(r["median"], indent=2))
