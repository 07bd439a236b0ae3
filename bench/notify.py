"""Notify: delivery latency at a fixed rate, and throughput against a bare aiohttp loop.

``run(runs=N) -> dict`` (called by ``python -m bench``; ``python -m bench.notify`` alone).
One embedded broker, one embedded PostgreSQL, a local webhook receiver (aiohttp, verifies
nothing but counts and timestamps), ``python -m services.notify`` as a child process with a
registry whose one agency has one webhook channel pointing at the receiver.

* latency: ``routed`` events produced at ``rate``/s for ``seconds``, each with its
  ``routed_at`` = the moment it is produced; latency = the receiver's arrival time − that
  timestamp (the figure the metric ``aduan_notify_delivery_latency_seconds`` reports), p50/p99;
* throughput: ``n`` events preloaded, notify started, deliveries per second from the first to
  the last arrival at the receiver; the baseline is a bare aiohttp loop posting the same
  signed bodies to the same receiver with the same concurrency (16), measured in the same run.
  Ratio = notify / baseline, median of the runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import yaml
from aiohttp import web
from aiokafka import AIOKafkaProducer

from common.broker import broker_from_env, die_with_parent, free_port
from common.kafka import ensure_topics, topic_name
from common.postgres import EmbeddedPostgres
from common.registry import load_registry
from common.runtime import stop_processes
from common.settings import Settings
from common.topics import ROUTES
from schemas.routes import RouteEvent, RouteEventType
from schemas.sla import Clock
from services.notify.channels.base import Item
from services.notify.channels.webhook import WebhookChannel
from services.notify.plan import plan
from services.notify.render import Renderer

RESULTS = Path(__file__).parent / "results"
CONCURRENCY = 16


def log(msg: str) -> None:
    print(f"[bench notify {datetime.now():%H:%M:%S}] {msg}", file=sys.stderr, flush=True)


class Receiver:
    """Counts POSTs and when each arrived (wall clock, to compare with event timestamps)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.arrivals: list[tuple[float, bytes]] = []
        self.runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def start(self) -> None:
        async def hook(request: web.Request) -> web.Response:
            body = await request.read()
            self.arrivals.append((time.time(), body))
            return web.Response(status=204)

        app = web.Application()
        app.router.add_post("/hook", hook)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


def event(i: int, at: datetime) -> RouteEvent:
    cid = f"instagram:bench{i:09d}"
    return RouteEvent(
        event_id=f"{cid}:routed", event_type=RouteEventType.routed, complaint_id=cid,
        thread_key=f"instagram:bench:{i}", agency_id="bench-agency", agency_kind="public_works",
        region_code="35.78", category="roads", urgency="normal",
        text_excerpt="Jalan berlubang di depan pasar, mohon segera diperbaiki",
        due={Clock.first_response: at + timedelta(hours=4)}, policy="default",
        channels=["webhook:bench"], routed_at=at,
    )  # fmt: skip


def write_registry(path: Path, url: str) -> None:
    path.write_text(
        yaml.safe_dump(
            {
                "agencies": [
                    {
                        "id": "bench-agency",
                        "name": "Dinas Bench",
                        "kind": "public_works",
                        "region_code": "35.78",
                        "channels": ["webhook:bench"],
                    }
                ],
                "accounts": [],
                "webhooks": [{"id": "bench", "url": url, "secret_env": "BENCH_HOOK_SECRET"}],
            }
        )
    )


class Stage:
    """A fresh topic prefix, database and notify process per measurement."""

    def __init__(
        self, bootstrap: str, pg: EmbeddedPostgres, work: Path, receiver: Receiver
    ) -> None:
        self.bootstrap, self.pg, self.work, self.receiver = bootstrap, pg, work, receiver
        self.prefix = f"n{uuid.uuid4().hex[:8]}."
        self.settings = Settings(bootstrap_servers=bootstrap, topic_prefix=self.prefix)
        self.registry = work / f"{self.prefix}registry.yaml"
        self.proc: subprocess.Popen[bytes] | None = None

    async def prepare(self) -> None:
        await ensure_topics(self.settings, [ROUTES])
        import asyncpg

        conn = await asyncpg.connect(self.pg.url)
        try:
            await conn.execute(f'CREATE DATABASE "{self.prefix.rstrip(".")}"')
        finally:
            await conn.close()
        write_registry(self.registry, self.receiver.url)

    def start(self) -> None:
        env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "ADUAN_TOPIC_PREFIX": self.prefix,
            "ADUAN_CONSUMER_GROUP_PREFIX": self.prefix.rstrip("."),
            "ADUAN_REGISTRY_FILE": str(self.registry),
            "ADUAN_NOTIFY_DATABASE_URL": self.pg.url_for(self.prefix.rstrip(".")),
            "BENCH_HOOK_SECRET": "bench-secret",
            "ADUAN_NOTIFY_CONCURRENCY": str(CONCURRENCY),
        }
        out = open(self.work / "notify.log", "ab")  # noqa: SIM115 - owned by the child
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "services.notify"], env=env, stdout=out,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, preexec_fn=die_with_parent,
        )  # fmt: skip

    def stop(self) -> None:
        if self.proc is not None:
            stop_processes([self.proc])

    async def wait_arrivals(self, n: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.receiver.arrivals) < n:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"notify exited with {self.proc.returncode}; see notify.log")
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {len(self.receiver.arrivals)}/{n} deliveries")
            await asyncio.sleep(0.05)


async def _producer(bootstrap: str) -> AIOKafkaProducer:
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=2)
    await p.start()
    return p


async def latency(stage: Stage, rate: float, seconds: float) -> dict[str, float]:
    topic = topic_name(ROUTES, stage.settings)
    producer = await _producer(stage.bootstrap)
    try:
        stage.start()
        # warm-up: one event through (group join, migrations, first connection)
        await producer.send_and_wait(
            topic, orjson.dumps(event(0, datetime.now(UTC)).model_dump(mode="json")), key=b"w"
        )
        await stage.wait_arrivals(1, 120)
        stage.receiver.arrivals.clear()
        n = int(rate * seconds)
        start = time.monotonic()
        for i in range(1, n + 1):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            e = event(i, datetime.now(UTC))
            await producer.send(
                topic, orjson.dumps(e.model_dump(mode="json")), key=e.thread_key.encode()
            )
        await producer.flush()
        await stage.wait_arrivals(n, 120)
    finally:
        await producer.stop()
        stage.stop()
    lat = sorted(
        at - datetime.fromisoformat(orjson.loads(body)["notice"]["occurred_at"]).timestamp()
        for at, body in stage.receiver.arrivals
    )
    q = statistics.quantiles(lat, n=100, method="inclusive")
    return {"events": float(n), "p50_s": q[49], "p99_s": q[98], "max_s": lat[-1]}


async def notify_throughput(stage: Stage, n: int) -> float:
    topic = topic_name(ROUTES, stage.settings)
    producer = await _producer(stage.bootstrap)
    try:
        at = datetime.now(UTC)
        futures = []
        for i in range(n):
            e = event(i, at)
            futures.append(
                await producer.send(
                    topic, orjson.dumps(e.model_dump(mode="json")), key=e.thread_key.encode()
                )
            )
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    stage.start()
    try:
        await stage.wait_arrivals(n, 600)
    finally:
        stage.stop()
    stamps = [a for a, _ in stage.receiver.arrivals]
    return (len(stamps) - 1) / (max(stamps) - min(stamps))


async def bare_throughput(receiver: Receiver, registry_file: Path, n: int) -> float:
    """The baseline, in its own process like notify (sender and receiver never share an
    event loop in either measurement): ``bare_client`` posting the same signed bodies."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.notify", "--bare-client", receiver.url, str(registry_file),
        str(n), stdin=subprocess.DEVNULL,
    )  # fmt: skip
    if await proc.wait() != 0:
        raise RuntimeError("bare client failed")
    stamps = [a for a, _ in receiver.arrivals]
    return (len(stamps) - 1) / (max(stamps) - min(stamps))


async def bare_client(url: str, registry_file: Path, n: int) -> None:
    """A bare aiohttp loop: the same requests as notify's webhook channel (bodies built and
    signed by the same code), ``CONCURRENCY`` in flight, nothing else."""
    registry = load_registry(registry_file)
    at = datetime.now(UTC)
    async with aiohttp.ClientSession() as http:
        channel = WebhookChannel(url, "bench-secret", Renderer(registry, "http://desk"), http, 10)
        queue: asyncio.Queue[Item] = asyncio.Queue()
        for i in range(n):
            notice = plan(event(i, at), registry)[0].notice
            queue.put_nowait(Item(i, notice.event_id, "webhook", "bench", notice, at))

        async def worker() -> None:
            while not queue.empty():
                await channel.send(queue.get_nowait())

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))


async def main(runs: int, n: int, rate: float, seconds: float) -> dict[str, Any]:
    work = RESULTS / "notify"
    work.mkdir(parents=True, exist_ok=True)
    lat_runs: list[dict[str, float]] = []
    tp_runs: list[tuple[float, float]] = []
    with broker_from_env(work / "broker.log") as (bootstrap, _), EmbeddedPostgres() as pg:
        receiver = Receiver()
        await receiver.start()
        try:
            for run in range(runs):
                log(f"run {run + 1}/{runs}: latency at {rate:g}/s for {seconds:g}s")
                stage = Stage(bootstrap, pg, work, receiver)
                await stage.prepare()
                receiver.arrivals.clear()
                lat_runs.append(await latency(stage, rate, seconds))
                last = lat_runs[-1]
                log(f"  p50 {last['p50_s'] * 1000:.0f} ms, p99 {last['p99_s'] * 1000:.0f} ms")
                stage = Stage(bootstrap, pg, work, receiver)
                await stage.prepare()
                receiver.arrivals.clear()
                ours = await notify_throughput(stage, n)
                receiver.arrivals.clear()
                bare = await bare_throughput(receiver, stage.registry, n)
                receiver.arrivals.clear()
                tp_runs.append((ours, bare))
                log(f"  throughput notify {ours:,.0f}/s, bare {bare:,.0f}/s → {ours / bare:.2f}×")
        finally:
            await receiver.stop()
    return {
        "rate_per_s": rate,
        "seconds": seconds,
        "latency_p50_s": statistics.median(r["p50_s"] for r in lat_runs),
        "latency_p99_s": statistics.median(r["p99_s"] for r in lat_runs),
        "latency_goal_p99_s": 0.5,
        "throughput_events": n,
        "throughput_per_s": statistics.median(t[0] for t in tp_runs),
        "bare_aiohttp_per_s": statistics.median(t[1] for t in tp_runs),
        "ratio_to_bare": statistics.median(t[0] / t[1] for t in tp_runs),
        "ratio_goal": 0.5,
        "concurrency": CONCURRENCY,
        "runs": {"latency": lat_runs, "throughput": tp_runs},
    }


def run(runs: int = 3, n: int = 5000, rate: float = 200.0, seconds: float = 20.0) -> dict[str, Any]:
    return asyncio.run(main(runs, n, rate, seconds))


def cli() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.notify", description=__doc__)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--n", type=int, default=5000, help="events for the throughput runs")
    p.add_argument("--rate", type=float, default=200.0)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument(
        "--bare-client", nargs=3, metavar=("URL", "REGISTRY", "N"), help=argparse.SUPPRESS
    )
    a = p.parse_args()
    if a.bare_client:
        url, registry, n = a.bare_client
        asyncio.run(bare_client(url, Path(registry), int(n)))
        return
    result = run(a.runs, a.n, a.rate, a.seconds)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "notify.json").write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=2))


if __name__ == "__main__":
    cli()
