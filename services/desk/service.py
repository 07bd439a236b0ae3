"""The desk process: consumer, API, web page and ops endpoints on one port, one pool."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

import asyncpg
from aiohttp import web
from aiokafka import AIOKafkaProducer

from common import metrics
from common.connection import make_producer
from common.http import Readiness, add_ops_routes, start_ops_server
from common.kafka import ensure_topics, topic_name
from common.produce import KafkaSink
from common.registry import Registry, load_registry
from common.reload import Reloadable
from common.settings import Settings
from common.topics import COMMANDS
from services.desk import store
from services.desk.actions import Actions
from services.desk.api import CONTEXT, DeskContext, add_api_routes, observe
from services.desk.consumer import run_consumer
from services.desk.settings import DeskSettings
from services.desk.web import DeskPages, add_web_routes

log = logging.getLogger("aduan.desk")
CLEANUP_EVERY_S = 600.0
MAX_BODY = 64 * 1024


class ConfigurationError(RuntimeError):
    """The desk cannot start with these settings; the message says which and why."""


def database_password(settings: Settings, desk: DeskSettings) -> str | None:
    if desk.database_password is not None:
        return desk.database_password.get_secret_value()
    return settings.secret("ADUAN_DESK_DATABASE_PASSWORD")


@dataclass
class DeskService:
    settings: Settings
    desk: DeskSettings
    pool: asyncpg.Pool
    producer: AIOKafkaProducer
    runner: web.AppRunner
    port: int
    stop_event: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    ready: bool = False
    ops: web.AppRunner | None = None
    consumer: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.settings.http_host}:{self.port}"

    async def stop(self) -> None:
        self.stop_event.set()
        for task in self.tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception as exc:  # already reported by the caller that saw it fail
                log.warning("desk task ended with %r", exc)
        await self.runner.cleanup()
        if self.ops is not None:
            await self.ops.cleanup()
        await self.producer.stop()
        await self.pool.close()


def build_app(
    ctx: DeskContext, registry: Registry, desk: DeskSettings, readiness: Readiness | None
) -> web.Application:
    """The public app: API and web page, plus the ops endpoints only when no separate ops
    port is configured (``make run``, tests); otherwise just ``/healthz`` here."""
    app = web.Application(middlewares=[observe], client_max_size=MAX_BODY)
    app[CONTEXT] = ctx
    add_api_routes(app)
    pages = DeskPages(registry, desk.session_hours, desk.secure_cookies)
    app[PAGES] = pages
    add_web_routes(app, pages)
    if readiness is not None:
        add_ops_routes(app, readiness)
    else:
        app.router.add_get("/healthz", _alive)
    metrics.zero(api_series(app))
    return app


def api_series(app: web.Application) -> Iterator[metrics.Series]:
    """Every route template of the app with its method, at status 200, and its latency: the
    request panels read numbers from the first scrape (see ``common.metrics.zero``)."""
    for route in app.router.routes():
        resource = route.resource
        if resource is None or route.method == "HEAD":
            continue
        yield metrics.DESK_API_REQUESTS, (resource.canonical, route.method, "200")
        yield metrics.DESK_API_LATENCY, (resource.canonical,)


async def _alive(_: web.Request) -> web.Response:
    return web.json_response({"status": "alive"})


PAGES: web.AppKey[DeskPages] = web.AppKey("desk-pages", DeskPages)


async def start(
    settings: Settings, desk: DeskSettings | None = None, registry: Registry | None = None
) -> DeskService:
    """Migrate, connect, start consuming and serving; returns once the port listens."""
    desk = desk or DeskSettings()
    if not desk.database_url:
        raise ConfigurationError(
            "ADUAN_DESK_DATABASE_URL is not set: the desk needs PostgreSQL "
            "(make run starts an embedded one)"
        )
    reloadable = None
    if registry is None:
        reloadable = Reloadable("registry", settings.registry_file, load_registry)
        registry = reloadable.current
    metrics.zero(metrics.desk_series())
    pool = await store.create_pool(
        desk.database_url, max_size=desk.pool_size, password=database_password(settings, desk)
    )
    applied = await store.migrate_database(pool)
    if applied:
        log.info("applied migrations: %s", ", ".join(applied))
    await ensure_topics(settings)
    producer = make_producer(
        settings.kafka, request_timeout_ms=int(settings.produce_timeout_s * 1000)
    )
    await producer.start()
    sink = KafkaSink(producer)
    actions = Actions(
        pool, sink, registry, topic_name(COMMANDS, settings), settings.produce_timeout_s
    )
    ctx = DeskContext(pool=pool, actions=actions, page_size=desk.page_size)
    holder: dict[str, DeskService] = {}

    def readiness() -> tuple[bool, str]:
        service = holder.get("service")
        ready = service is not None and service.ready
        return ready, "partitions assigned" if ready else "waiting for partition assignment"

    separate_ops = settings.metrics_port is not None
    app = build_app(ctx, registry, desk, None if separate_ops else readiness)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.http_host, settings.http_port)
    await site.start()
    port = runner.addresses[0][1] if runner.addresses else settings.http_port
    service = DeskService(settings, desk, pool, producer, runner, port)
    holder["service"] = service
    if settings.metrics_port is not None:
        # /metrics and /readyz on the ops port only: scraped there, never published.
        service.ops = await start_ops_server(settings.http_host, settings.metrics_port, readiness)

    def on_ready() -> None:
        service.ready = True

    service.consumer = asyncio.create_task(
        run_consumer(
            settings, pool, sink, service.stop_event, batch_max=desk.batch_max,
            on_ready=on_ready,
        )
    )  # fmt: skip
    service.tasks.append(service.consumer)
    service.tasks.append(asyncio.create_task(_cleanup(pool, desk, service.stop_event)))
    if reloadable is not None:

        def use(new: Registry) -> None:  # agency names, zones and reroute targets
            actions.registry = new
            app[PAGES].registry = new

        reloadable.on_change(use)
        service.tasks.append(asyncio.create_task(reloadable.watch(service.stop_event)))
    return service


async def _cleanup(pool: asyncpg.Pool, desk: DeskSettings, stop: asyncio.Event) -> None:
    """Forget expired sessions and idempotency keys now and then."""
    while not stop.is_set():
        try:
            await pool.execute("DELETE FROM desk_sessions WHERE expires_at < now()")
            await pool.execute(
                "DELETE FROM desk_idempotency WHERE created_at < now() - $1::float8 * "
                "interval '1 hour'",
                desk.idempotency_retention_hours,
            )
        except (asyncpg.PostgresError, OSError) as exc:
            log.warning("cleanup failed: %s", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=CLEANUP_EVERY_S)
