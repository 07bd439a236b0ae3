"""``python -m services.demo`` (what ``make run`` starts): the whole pipeline with demo traffic.

Starts the embedded broker unless ``KAFKA_BOOTSTRAP_SERVERS`` is set, the processors (and
the Instagram mention fetcher, on a local Graph API stand-in) as child processes, a
generator posting signed webhooks, and a live tail of routed and SLA events.
The desk runs too, on an embedded PostgreSQL unless ``ADUAN_DESK_DATABASE_URL`` is set; its URL
and a demo agency token are printed, and a bot acts on complaints through its API.
Ctrl-C stops everything; children are also bound to die with this process (PR_SET_PDEATHSIG),
so no orphan survives even a hard kill of the parent."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import MutableMapping
from pathlib import Path

import aiohttp

from common.broker import broker_from_env, die_with_parent, free_port
from common.kafka import ensure_topics, topic_name
from common.postgres import PostgresError, postgres_from_env
from common.registry import load_registry
from common.runtime import configure_logging, stop_processes
from common.settings import Settings
from common.topics import ROUTES, SLA
from services.demo import desk as demo_desk
from services.demo.generator import run_generator
from services.demo.sinks import DemoSinks
from services.demo.tail import run_tail

log = logging.getLogger("aduan.demo")
SERVICES = ("ingest", "classify", "route", "notify", "ingest.mentions")
DEMO_SECRETS = (
    "ADUAN_META_APP_SECRET",
    "ADUAN_META_VERIFY_TOKEN",
    "ADUAN_X_CONSUMER_SECRET",
    "ADUAN_PSEUDONYM_KEY",
    # notify's channels in the demo registry (its receivers are local sinks: sinks.py)
    "ADUAN_WEBHOOK_LAPOR_SECRET",
    "ADUAN_TELEGRAM_BOT_TOKEN",
)


def start_service(name: str, env: dict[str, str], log_dir: Path) -> subprocess.Popen[bytes]:
    log_file = open(log_dir / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child
    return subprocess.Popen(
        [sys.executable, "-m", f"services.{name}"],
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        preexec_fn=die_with_parent,
    )


async def wait_ready(url: str, procs: dict[str, subprocess.Popen[bytes]], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            for name, p in procs.items():
                if p.poll() is not None:
                    raise SystemExit(f"{name} exited with status {p.returncode}; see its log")
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(url) as r:
                    if r.status == 200:
                        return
            await asyncio.sleep(0.2)
    raise SystemExit(f"{url} not ready within {timeout:.0f}s")


async def main(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    log_dir = Path(args.log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    with broker_from_env(log_dir / "broker.log") as (bootstrap, broker):
        if broker is not None:
            print(f"embedded Tansu broker on {bootstrap} (memory only: gone when it stops)")
        else:
            print(f"using Kafka cluster at {bootstrap}")
        with contextlib.ExitStack() as database:
            fresh_route_state(database, os.environ, embedded_broker=broker is not None)
            database_url = None
            try:
                database_url, db = database.enter_context(
                    postgres_from_env("ADUAN_DESK_DATABASE_URL")
                )
                if db is not None:
                    print(f"embedded PostgreSQL for the desk on port {db.port} (thrown away)")
            except PostgresError as exc:
                print(f"no desk: {exc}")
            await run_stack(bootstrap, args, stop, log_dir, database_url)
    print("stopped.")


def fresh_route_state(
    stack: contextlib.ExitStack, env: MutableMapping[str, str], *, embedded_broker: bool
) -> Path | None:
    """Route's RocksDB table belongs with the broker it mirrors: the embedded broker keeps
    nothing past its run, so route gets a directory of its own for the run (removed with
    ``stack``). Sharing the default one, the second ``make run`` found a table ahead of the
    new, empty changelog and faust refused to start route (``ConsistencyError``). Kept as it
    is when ``ADUAN_ROUTE_DATA_DIR`` is set or the cluster is a real one."""
    if not embedded_broker or env.get("ADUAN_ROUTE_DATA_DIR"):
        return None
    path = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="aduan-route-")))
    env["ADUAN_ROUTE_DATA_DIR"] = str(path)
    return path


async def run_stack(
    bootstrap: str,
    args: argparse.Namespace,
    stop: asyncio.Event,
    log_dir: Path,
    database_url: str | None = None,
) -> None:
    """The processors as children, then demo traffic and the tail until ``stop``."""
    env = dict(os.environ)
    env["KAFKA_BOOTSTRAP_SERVERS"] = bootstrap
    for name in DEMO_SECRETS:  # demo-only secrets, random per run, never stored in the repo
        env.setdefault(name, secrets.token_hex(16))
    ingest_port = args.port or free_port()
    env["ADUAN_HTTP_PORT"] = str(ingest_port)
    settings = Settings(bootstrap_servers=bootstrap, topic_prefix=env.get("ADUAN_TOPIC_PREFIX", ""))
    await ensure_topics(settings)
    sinks = DemoSinks()  # notify tells a local SMTP sink and HTTP sink; lines show in the tail
    env.update(await sinks.start(settings.registry_file, log_dir))

    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        ops_ports: dict[str, int] = {}
        for i, name in enumerate(SERVICES):
            child_env = dict(env)
            # ops endpoints (/metrics, /readyz) on their own port, as in compose (9100-9102)
            ops_ports[name] = 9100 + i if args.port else free_port()
            child_env["ADUAN_METRICS_PORT"] = str(ops_ports[name])
            procs[name] = start_service(name, child_env, log_dir)
        desk_tokens, desk_url = None, ""
        if database_url is not None:
            desk_tokens = await demo_desk.prepare(database_url)
            desk_port = free_port()
            desk_env = {**env, "ADUAN_DESK_DATABASE_URL": database_url,
                        "ADUAN_HTTP_PORT": str(desk_port)}  # fmt: skip
            procs["desk"] = start_service("desk", desk_env, log_dir)
            desk_url = f"http://127.0.0.1:{desk_port}"
        base = f"http://127.0.0.1:{ingest_port}"
        await wait_ready(f"http://127.0.0.1:{ops_ports['ingest']}/readyz", procs, timeout=60)
        print(f"ingest on {base}/webhooks/{{platform}}; logs in {log_dir}/")
        if desk_tokens is not None:
            await wait_ready(f"{desk_url}/readyz", procs, timeout=60)
            print(f"desk on {desk_url}/desk  (API {desk_url}/api/v1, OpenAPI "
                  f"{desk_url}/api/v1/openapi.json)")  # fmt: skip
            print(f"  sign in as {demo_desk.DEMO_AGENCY} with token: {desk_tokens.agency}")
        print(f"posting {args.rate:g} signed demo webhooks/s; routed and SLA events below,")
        print("and NOTIFIED lines for what notify delivered (local e-mail and webhook sinks).")
        print("Ctrl-C stops everything.")
        registry = load_registry(settings.registry_file)
        topics = [topic_name(ROUTES, settings), topic_name(SLA, settings)]
        tail = asyncio.create_task(run_tail(bootstrap, topics, stop, registry))
        gen = asyncio.create_task(
            run_generator(base, env["ADUAN_META_APP_SECRET"], args.rate, stop)
        )
        actor = None
        if desk_tokens is not None:
            actor = asyncio.create_task(demo_desk.run_desk_actor(desk_url, desk_tokens.bot, stop))
        while not stop.is_set():
            for name, p in procs.items():
                if p.poll() is not None:
                    print(f"{name} exited with status {p.returncode}; see {log_dir}/{name}.log")
                    stop.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=0.5)
        await asyncio.gather(tail, gen, *([actor] if actor else []), return_exceptions=True)
    finally:
        print("stopping…")
        stop_processes(procs.values())
        await sinks.stop()


def cli() -> None:
    parser = argparse.ArgumentParser(prog="python -m services.demo", description=__doc__)
    parser.add_argument(
        "--rate",
        type=float,
        default=float(os.environ.get("ADUAN_DEMO_RATE", "2")),
        help="demo webhooks per second (default 2, or ADUAN_DEMO_RATE)",
    )
    parser.add_argument("--port", type=int, default=0, help="ingest port (default: a free one)")
    parser.add_argument("--log-dir", default="var/log", help="where service logs go")
    args = parser.parse_args()
    if args.rate <= 0:
        parser.error("--rate must be positive")
    configure_logging("demo")
    asyncio.run(main(args))


if __name__ == "__main__":
    cli()
