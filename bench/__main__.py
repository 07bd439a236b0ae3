"""``python -m bench`` (``make bench``): one broker, several runs, medians, one table.

(a) ceiling: bare aiokafka consume → orjson → produce loop; (b) each processor on a preloaded
topic, as a ratio to the ceiling measured in the same run; (c) end-to-end latency from POST to
``routed`` at a fixed rate. Throughput is taken from the output records' own timestamps
(first to last), so process start-up and group joins are not counted for anyone."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import secrets
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench import corpus, stages
from common.broker import broker_from_env, die_with_parent, free_port
from common.kafka import ensure_topics, topic_name
from common.runtime import stop_processes
from common.settings import Settings
from common.topics import CLASSIFIED, MESSAGES, ROUTES, TopicSpec
from services.demo.complaints import COMPLAINTS, KELURAHAN
from services.demo.generator import instagram_comment
from services.ingest.privacy import Pseudonymizer
from services.ingest.signatures import meta_signature

RESULTS = Path(__file__).parent / "results"


def log(msg: str) -> None:
    print(f"[bench {datetime.now():%H:%M:%S}] {msg}", file=sys.stderr, flush=True)


def child_env(bootstrap: str, prefix: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        KAFKA_BOOTSTRAP_SERVERS=bootstrap,
        ADUAN_TOPIC_PREFIX=prefix,
        ADUAN_CONSUMER_GROUP_PREFIX=prefix.rstrip("."),
        ADUAN_REBALANCE_TIMEOUT_S="4",
        ADUAN_META_APP_SECRET=env.get("ADUAN_META_APP_SECRET", secrets.token_hex(8)),
        ADUAN_META_VERIFY_TOKEN=secrets.token_hex(8),
        ADUAN_X_CONSUMER_SECRET=secrets.token_hex(8),
        ADUAN_PSEUDONYM_KEY=secrets.token_hex(8),
    )
    env.update(extra)
    return env


def spawn(module: str, env: dict[str, str], log_dir: Path) -> subprocess.Popen[bytes]:
    out = open(log_dir / f"{module.replace('.', '_')}.log", "ab")  # noqa: SIM115
    return subprocess.Popen(
        [sys.executable, "-m", module],
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        preexec_fn=die_with_parent,
    )


async def preload(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_batch_size=512 * 1024
    )
    await producer.start()
    try:
        futures = [await producer.send(topic, v, key=k) for k, v in records]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def output_timestamps(
    bootstrap: str, topic: str, n: int, timeout: float, proc: subprocess.Popen[bytes]
) -> list[int]:
    """Read ``topic`` until ``n`` records arrived; return their producer timestamps (ms)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"bench-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=200,
    )
    await consumer.start()
    stamps: list[int] = []
    deadline = time.monotonic() + timeout
    try:
        while len(stamps) < n:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {len(stamps)}/{n} records on {topic} after {timeout}s")
            if proc.poll() is not None:
                raise RuntimeError(
                    f"stage exited with {proc.returncode} after {len(stamps)} records"
                )
            for recs in (await consumer.getmany(timeout_ms=500, max_records=20000)).values():
                stamps.extend(r.timestamp for r in recs)
    finally:
        await consumer.stop()
    return stamps


async def throughput(
    name: str,
    module: str,
    in_spec: TopicSpec,
    out_spec: TopicSpec,
    records: list[tuple[bytes, bytes]],
    bootstrap: str,
    log_dir: Path,
    **env: str,
) -> float:
    prefix = f"b{uuid.uuid4().hex[:8]}."
    settings = Settings(bootstrap_servers=bootstrap, topic_prefix=prefix)
    await ensure_topics(settings)
    await preload(bootstrap, topic_name(in_spec, settings), records)
    proc = spawn(module, child_env(bootstrap, prefix, **env), log_dir)
    try:
        stamps = await output_timestamps(
            bootstrap, topic_name(out_spec, settings), len(records), 600, proc
        )
    finally:
        stop_processes([proc])
    span = (max(stamps) - min(stamps)) / 1000
    rate = (len(stamps) - 1) / span if span > 0 else float("inf")
    log(f"{name}: {len(stamps)} records in {span:.2f}s → {rate:,.0f} msg/s")
    return rate


async def e2e_latency(
    bootstrap: str, rate: float, seconds: float, log_dir: Path
) -> dict[str, float]:
    """POST signed complaints at ``rate``/s for ``seconds``; latency until each ``routed``."""
    prefix = f"e{uuid.uuid4().hex[:8]}."
    settings = Settings(bootstrap_servers=bootstrap, topic_prefix=prefix)
    await ensure_topics(settings)
    port, ops_port = free_port(), free_port()
    env = child_env(bootstrap, prefix, ADUAN_HTTP_PORT=str(port))
    # Ingest answers readiness on its ops port only (never on the public webhook port).
    ingest_env = {**env, "ADUAN_METRICS_PORT": str(ops_port)}
    procs = [spawn("services.ingest", ingest_env, log_dir)]
    procs += [spawn(f"services.{s}", env, log_dir) for s in ("classify", "route")]
    complaint_id = Pseudonymizer(env["ADUAN_PSEUDONYM_KEY"].encode()).message_id
    sent: dict[str, float] = {}
    seen: dict[str, float] = {}
    reader = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.reader", bootstrap, topic_name(ROUTES, settings),
        f"lat-{prefix}", stdout=asyncio.subprocess.PIPE, preexec_fn=die_with_parent,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as session:
            deadline = time.monotonic() + 60
            while True:  # wait for ingest
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(f"http://127.0.0.1:{ops_port}/readyz") as r:
                        if r.status == 200:
                            break
                if time.monotonic() > deadline:
                    raise RuntimeError("ingest not ready")
                await asyncio.sleep(0.2)
            assert reader.stdout is not None
            reading = asyncio.create_task(_read_routes(reader.stdout, seen))
            # Warm-up: one complaint through the whole pipeline (group joins happen here).
            post = Poster(session, base, env["ADUAN_META_APP_SECRET"], complaint_id, sent)
            await post("warmup", 0)
            await _until(lambda: complaint_id("instagram:warmup") in seen, 120)
            sent.clear()
            seen.clear()
            n = int(rate * seconds)
            start = time.monotonic()
            tasks = []
            for i in range(n):
                delay = start + i / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(post(f"L{i}", i)))
            await asyncio.gather(*tasks)
            # Not every demo message is a complaint, so not every POST yields a `routed`:
            # wait until all have arrived or none has for 3 s (bounded).
            expected = {complaint_id(f"instagram:L{i}") for i in range(n)}
            deadline = time.monotonic() + 60
            last_count, quiet_since = -1, time.monotonic()
            while not expected <= seen.keys() and time.monotonic() < deadline:
                if len(seen) != last_count:
                    last_count, quiet_since = len(seen), time.monotonic()
                elif time.monotonic() - quiet_since > 3:
                    break
                await asyncio.sleep(0.1)
            reading.cancel()
    finally:
        with contextlib.suppress(ProcessLookupError):
            reader.kill()
        await reader.wait()
        stop_processes(procs)
    lat = sorted(seen[k] - sent[k] for k in seen if k in sent)
    if not lat:
        raise RuntimeError("no routed events observed")
    q = statistics.quantiles(lat, n=100, method="inclusive")
    wall = time.time() - time.monotonic()  # stage timestamps are the writers' wall clocks
    per_stage = await stages.breakdown(
        bootstrap, settings, {k: t + wall for k, t in sent.items()},
        {k: t + wall for k, t in seen.items()},
    )  # fmt: skip
    return {
        "sent": len(sent), "routed": len(lat), "p50_s": q[49], "p95_s": q[94], "p99_s": q[98],
        **per_stage,
    }  # fmt: skip


@dataclass
class Poster:
    """Posts signed Instagram comments and notes when each was sent, under the complaint id
    route will give it (a keyed pseudonym of the comment id, as ingest makes it)."""

    session: aiohttp.ClientSession
    base: str
    secret: str
    complaint_id: Callable[[str], str]
    sent: dict[str, float]

    async def __call__(self, cid: str, i: int) -> None:
        text = COMPLAINTS[i % len(COMPLAINTS)].format(kel=KELURAHAN[i % len(KELURAHAN)])
        body = instagram_comment(cid, text, author_id=f"77{i}", media_id=f"1801{i % 50}")
        headers = {
            "Content-Type": "application/json",
            "X-Hub-Signature-256": meta_signature(self.secret, body),
        }
        key = self.complaint_id(f"instagram:{cid}")
        self.sent[key] = time.monotonic()
        url = f"{self.base}/webhooks/instagram"
        async with self.session.post(url, data=body, headers=headers) as r:
            if r.status != 200:
                self.sent.pop(key, None)


async def _read_routes(lines: asyncio.StreamReader, seen: dict[str, float]) -> None:
    """Collect ``bench.reader``'s lines: when (monotonic) each complaint's event was read."""
    while line := await lines.readline():
        complaint_id, _, at = line.decode().rpartition(" ")
        seen.setdefault(complaint_id, float(at))


async def _until(cond: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("timeout")
        await asyncio.sleep(0.05)


def _optional_bench(module: str) -> Callable[..., dict[str, object]] | None:
    """Room-owned benches (ingest HTTP, route timers) expose ``run(bootstrap, runs) -> dict``."""
    try:
        mod = __import__(f"bench.{module}", fromlist=["run"])
    except ImportError:
        return None
    return getattr(mod, "run", None)


async def main(args: argparse.Namespace) -> dict[str, object]:
    log_dir = RESULTS / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    with broker_from_env(log_dir / "broker.log") as (bootstrap, broker):
        msgs = corpus.messages(args.n)
        classified = corpus.classified(args.n)
        # (name, module, input, output, records, extra env)
        stages = [
            ("ceiling", "bench.ceiling", MESSAGES, CLASSIFIED, msgs, {}),
            ("ceiling+classify", "bench.ceiling", MESSAGES, CLASSIFIED, msgs,
             {"ADUAN_BENCH_WORK": "classify"}),
            ("classify", "services.classify", MESSAGES, CLASSIFIED, msgs, {}),
            ("route", "services.route", CLASSIFIED, ROUTES, classified, {}),
        ]  # fmt: skip
        runs: dict[str, list[float]] = {name: [] for name, *_ in stages}
        for run in range(args.runs):
            log(f"run {run + 1}/{args.runs}")
            for name, module, src, dst, records, env in stages:
                runs[name].append(
                    await throughput(name, module, src, dst, records, bootstrap, log_dir, **env)
                )
        latencies = []
        for run in range(args.runs):
            log(f"latency run {run + 1}/{args.runs}: {args.rate:g}/s for {args.seconds:g}s")
            latencies.append(await e2e_latency(bootstrap, args.rate, args.seconds, log_dir))
    ceiling = statistics.median(runs["ceiling"])
    result: dict[str, object] = {
        "when": datetime.now(UTC).isoformat(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "broker": "embedded tansu" if broker else bootstrap,
        "records_per_run": args.n,
        "runs": args.runs,
        "throughput_msgs_per_s": {k: statistics.median(v) for k, v in runs.items()},
        "throughput_all_runs": runs,
        "ratio_to_ceiling": {k: statistics.median(v) / ceiling for k, v in runs.items()},
        # classify's own goal: against a bare loop running the same classification function
        "classify_ratio_to_ceiling_with_same_work": statistics.median(runs["classify"])
        / statistics.median(runs["ceiling+classify"]),
        "e2e_latency": {
            "rate_per_s": args.rate,
            "seconds": args.seconds,
            **{k: statistics.median([lat[k] for lat in latencies]) for k in latencies[0]},
        },
    }
    return result


def run_extras(result: dict[str, object], runs: int) -> None:
    """The rooms' own benches manage their event loops and brokers: run them outside ours."""
    for name in ("ingest_http", "route_timers", "route_core", "desk", "notify"):
        extra = _optional_bench(name)
        if extra is not None:
            log(f"{name} bench")
            result[name] = extra(runs=runs)


def print_table(r: dict[str, object]) -> None:
    tp = r["throughput_msgs_per_s"]
    ratio = r["ratio_to_ceiling"]
    assert isinstance(tp, dict) and isinstance(ratio, dict)
    print(f"\naduan bench — median of {r['runs']} runs, {r['records_per_run']:,} records each")
    print(f"{'stage':<18}{'msgs/s':>10}{'× ceiling':>11}")
    for k, v in tp.items():
        print(f"{k:<18}{v:>10,.0f}{ratio.get(k, 1.0):>11.2f}")
    same = r["classify_ratio_to_ceiling_with_same_work"]
    print(f"classify against a bare loop running the same classification: {same:.2f}×")
    lat = r["e2e_latency"]
    assert isinstance(lat, dict)
    print(
        f"\nend-to-end POST → routed at {lat['rate_per_s']:g}/s for {lat['seconds']:g}s: "
        f"p50 {lat['p50_s'] * 1000:.0f} ms, p95 {lat['p95_s'] * 1000:.0f} ms, "
        f"p99 {lat['p99_s'] * 1000:.0f} ms ({lat['routed']:.0f}/{lat['sent']:.0f} routed)"
    )
    for stage in ("ingest", "classify", "route", "read"):
        if f"stage_{stage}_p50_ms" in lat:
            print(
                f"  {stage:<9} p50 {lat[f'stage_{stage}_p50_ms']:.0f} ms, "
                f"p99 {lat[f'stage_{stage}_p99_ms']:.0f} ms"
            )
    for name in ("ingest_http", "route_timers", "route_core", "notify"):
        if name in r:
            print(f"\n{name}: {json.dumps(r[name], indent=None, default=str)}")
    if "desk" in r:
        print_desk(r["desk"])


def print_desk(d: object) -> None:
    """The desk's figures against their goals (bench/desk.py says how each is measured)."""
    assert isinstance(d, dict)
    rates, q, k = d["ingestion_events_per_s"], d["queries"], d["restart"]
    print(
        f"\ndesk ingestion: {rates['desk']:,.0f} events/s vs bare insert loop "
        f"{rates['bare_insert_loop']:,.0f}/s = {d['ingestion_ratio']:.2f}x (goal >= 0.5x)"
    )
    print(
        f"desk queries with {d['complaints_in_db']:,} complaints: queue p99 "
        f"{q['queue_p99_ms']:.1f} ms (goal <= 50), overdue p99 {q['overdue_p99_ms']:.1f} ms, "
        f"detail p99 {q['detail_p99_ms']:.1f} ms"
    )
    print(
        f"desk SIGKILL after {k['applied_at_kill']:,}/{k['events_on_topics']:,} events, "
        f"restart: lost {k['lost']}, doubled {k['doubled']}, "
        f"complaints mismatched {k['complaints_mismatched']}"
    )


def cli() -> None:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--n", type=int, default=20000, help="records per throughput run")
    p.add_argument("--runs", type=int, default=3, help="runs per measurement (median)")
    p.add_argument("--rate", type=float, default=500.0, help="e2e POSTs per second")
    p.add_argument("--seconds", type=float, default=20.0, help="e2e duration")
    p.add_argument("--skip-extra", action="store_true", help="skip the room-owned benches")
    args = p.parse_args()
    if args.n < 10_000:
        log(
            "warning: throughput comes from the spread of output timestamps; with fewer than "
            "10,000 records a stage writes only a few batches and the figures are not meaningful"
        )
    result = asyncio.run(main(args))
    if not args.skip_extra:
        run_extras(result, args.runs)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "latest.json"
    out.write_text(json.dumps(result, indent=2, default=str))
    print_table(result)
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    cli()
