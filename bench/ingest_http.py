"""Ingest HTTP bench: requests/s and latency of single-entry signed POSTs, against a bare
aiohttp handler that only answers 200, measured in the same run on the same machine.

``run(runs=N) -> dict`` (called by ``python -m bench``); ``python -m bench.ingest_http`` alone.

Method: one broker (embedded Tansu unless ``KAFKA_BOOTSTRAP_SERVERS``); the servers run as
their own processes (``python -m services.ingest`` and the bare handler below); the load
comes from this process over loopback: ``requests`` POSTs (bounded count), ``concurrency``
in flight, every body a distinct Instagram comment signed with the app secret, bodies and
signatures prepared before the clock starts. Ingest answers 200 only after the raw delivery
and the normalized message are acknowledged by the broker (acks=all), so its figure
includes two Kafka round trips; the bare handler's is the HTTP ceiling of this machine.
Reported: medians over ``runs`` of requests/s and p50/p99 latency, and the ratio."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import orjson

from common.broker import broker_from_env, free_port
from common.runtime import stop_processes
from services.ingest.signatures import meta_signature

ROOT = Path(__file__).resolve().parents[1]
ROUNDS = 4


def _median_dict(results: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(r[k] for r in results) for k in results[0]}


IG_ACCOUNT = "17841400000000001"  # in the demo registry


def bare_server(port: int) -> None:
    """The ceiling: an aiohttp handler that reads the body and answers 200."""
    from aiohttp import web

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"status": "ok"})

    async def ready(_: web.Request) -> web.Response:
        return web.json_response({"status": "ready"})

    app = web.Application()
    app.router.add_post("/webhooks/{platform}", handle)
    app.router.add_get("/readyz", ready)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


TEXT = "Jalan berlubang di Rungkut Madya, hubungi 0812-3456-7890"


def bodies(n: int, secret: str, tag: str) -> list[tuple[bytes, str]]:
    now = int(time.time())
    out = []
    for i in range(n):
        body = orjson.dumps(
            {
                "object": "instagram",
                "entry": [
                    {
                        "id": IG_ACCOUNT,
                        "time": now,
                        "changes": [
                            {
                                "field": "comments",
                                "value": {
                                    "id": f"{tag}{i:08d}",
                                    "text": TEXT,
                                    "from": {"id": f"99{i % 5000:05d}", "username": "warga"},
                                    "media": {"id": "18000000000000001"},
                                },
                            }
                        ],
                    }
                ],
            }
        )
        out.append((body, meta_signature(secret, body)))
    return out


async def load(url: str, payloads: list[tuple[bytes, str]], concurrency: int) -> dict[str, float]:
    """POST every payload with ``concurrency`` in flight; latency per request."""
    latencies: list[float] = []
    failures = 0
    queue = iter(payloads)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal failures
            for body, sig in queue:
                headers = {"Content-Type": "application/json", "X-Hub-Signature-256": sig}
                started = time.perf_counter()
                async with session.post(url, data=body, headers=headers) as resp:
                    await resp.read()
                    if resp.status != 200:
                        failures += 1
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "failures": failures,
        "requests_per_s": len(latencies) / elapsed,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
    }


async def wait_ready(port: int, timeout: float = 60.0) -> None:
    """Until 20 fresh connections in a row find a ready server (with several workers on
    one port, each connection may land on a different one)."""
    deadline = time.monotonic() + timeout
    streak = 0
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        while True:
            try:
                async with session.get(f"http://127.0.0.1:{port}/readyz") as resp:
                    streak = streak + 1 if resp.status == 200 else 0
                    if streak >= 20:
                        return
                    if streak:
                        continue
            except aiohttp.ClientError:
                streak = 0
            if time.monotonic() > deadline:
                raise RuntimeError(f"server on port {port} not ready within {timeout:.0f}s")
            await asyncio.sleep(0.1)


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    out = open(log, "ab")  # noqa: SIM115
    return subprocess.Popen(
        [sys.executable, *args], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
    )


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process and its direct children, from Linux
    ``/proc``; 0 where unavailable."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if stat.parent.name == str(pid) or fields[1] == str(pid):
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


async def _one_run(
    bootstrap: str,
    run: int,
    requests: int,
    concurrency: int,
    log_dir: Path,
    broker_pid: int | None = None,
) -> dict[str, dict[str, float]]:
    secret = secrets.token_hex(8)
    prefix = f"bench{run}{secrets.token_hex(3)}."
    env = dict(os.environ)
    env.update(
        KAFKA_BOOTSTRAP_SERVERS=bootstrap,
        ADUAN_TOPIC_PREFIX=prefix,
        ADUAN_META_APP_SECRET=secret,
        ADUAN_META_VERIFY_TOKEN=secrets.token_hex(8),
        ADUAN_PSEUDONYM_KEY=secrets.token_hex(8),
    )
    ingest_port, ingest_ops_port, bare_port = free_port(), free_port(), free_port()
    env["ADUAN_HTTP_PORT"] = str(ingest_port)
    env["ADUAN_METRICS_PORT"] = str(ingest_ops_port)  # /readyz is off the webhook port
    ingest = _spawn(["-m", "services.ingest"], env, log_dir / "bench_ingest.log")
    bare = _spawn(["-m", "bench.ingest_http", "--bare", str(bare_port)], env, log_dir / "bare.log")
    try:
        await wait_ready(ingest_ops_port)
        await wait_ready(bare_port)
        warm = bodies(200, secret, f"w{run}")
        await load(f"http://127.0.0.1:{ingest_port}/webhooks/instagram", warm, concurrency)
        await load(f"http://127.0.0.1:{bare_port}/webhooks/instagram", warm, concurrency)
        # Alternate bare and ingest in short rounds so a change in the machine's other load
        # hits both sides alike; figures are medians over the rounds.
        rounds: dict[str, list[dict[str, float]]] = {"bare": [], "ingest": []}
        per_round = max(requests // ROUNDS, 1)
        for r in range(ROUNDS):
            payloads = bodies(per_round, secret, f"r{run}x{r}x")
            for side, port, proc in (("bare", bare_port, bare), ("ingest", ingest_port, ingest)):
                cpu = _cpu_s(proc.pid)
                broker_cpu = _cpu_s(broker_pid) if broker_pid else 0.0
                client_cpu = time.process_time()
                url = f"http://127.0.0.1:{port}/webhooks/instagram"
                result = await load(url, payloads, concurrency)
                result["server_cpu_ms_per_request"] = (_cpu_s(proc.pid) - cpu) * 1000 / per_round
                result["client_cpu_ms_per_request"] = (
                    (time.process_time() - client_cpu) * 1000 / per_round
                )
                if broker_pid:
                    broker_cpu = _cpu_s(broker_pid) - broker_cpu
                    result["broker_cpu_ms_per_request"] = broker_cpu * 1000 / per_round
                rounds[side].append(result)
        ratios = [
            i["requests_per_s"] / b["requests_per_s"]
            for i, b in zip(rounds["ingest"], rounds["bare"], strict=True)
        ]
        out = {side: _median_dict(results) for side, results in rounds.items()}
        out["ingest"]["ratio_to_bare"] = statistics.median(ratios)
        return out
    finally:
        stop_processes([ingest, bare])


def run(runs: int = 3, requests: int = 4000, concurrency: int = 32) -> dict[str, object]:
    log_dir = ROOT / "bench" / "results" / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    with broker_from_env(log_dir / "ingest_broker.log") as (bootstrap, broker):
        # only the embedded broker's CPU can be measured
        broker_pid = broker.proc.pid if broker and broker.proc else None
        results = [
            asyncio.run(_one_run(bootstrap, i, requests, concurrency, log_dir, broker_pid))
            for i in range(runs)
        ]

    def median(side: str, key: str) -> float:
        return statistics.median(r[side][key] for r in results)

    summary: dict[str, object] = {
        "requests_per_run": requests,
        "concurrency": concurrency,
        "runs": runs,
        "ingest_requests_per_s": median("ingest", "requests_per_s"),
        "ingest_p50_ms": median("ingest", "p50_ms"),
        "ingest_p99_ms": median("ingest", "p99_ms"),
        "bare_requests_per_s": median("bare", "requests_per_s"),
        "bare_p50_ms": median("bare", "p50_ms"),
        "bare_p99_ms": median("bare", "p99_ms"),
        "ingest_cpu_ms_per_request": median("ingest", "server_cpu_ms_per_request"),
        "bare_cpu_ms_per_request": median("bare", "server_cpu_ms_per_request"),
        "client_cpu_ms_per_request_ingest": median("ingest", "client_cpu_ms_per_request"),
        "client_cpu_ms_per_request_bare": median("bare", "client_cpu_ms_per_request"),
        "failures": sum(int(r["ingest"]["failures"] + r["bare"]["failures"]) for r in results),
        "method": f"{ROUNDS} alternating bare/ingest rounds per run; medians",
    }
    if broker_pid:
        summary["broker_cpu_ms_per_request"] = median("ingest", "broker_cpu_ms_per_request")
    summary["ratio_to_bare"] = median("ingest", "ratio_to_bare")
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest_http", description=__doc__)
    parser.add_argument("--bare", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    if args.bare:
        bare_server(args.bare)
        return
    print(json.dumps(run(args.runs, args.requests, args.concurrency), indent=2))


if __name__ == "__main__":
    main()
