"""Operational HTTP endpoints every service serves: ``/metrics``, ``/healthz``, ``/readyz``.

They go on their own port (``ADUAN_METRICS_PORT``, ``start_ops_server``), never on a port
the internet reaches: metrics name accounts, rates and error reasons. A public application
(ingest's webhooks) adds only the liveness probe (``add_liveness_route``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

Readiness = Callable[[], tuple[bool, str]]


async def _healthz(_: web.Request) -> web.Response:
    return web.json_response({"status": "alive"})


def add_liveness_route(app: web.Application) -> None:
    """``GET /healthz`` alone: the process answers (for a public port's load balancer)."""
    app.router.add_get("/healthz", _healthz)


def add_ops_routes(app: web.Application, readiness: Readiness) -> None:
    async def metrics_view(_: web.Request) -> web.Response:
        body = generate_latest(REGISTRY)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def readyz(_: web.Request) -> web.Response:
        ready, detail = readiness()
        return web.json_response(
            {"status": "ready" if ready else "not_ready", "detail": detail},
            status=200 if ready else 503,
        )

    app.router.add_get("/metrics", metrics_view)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", readyz)


async def start_ops_server(host: str, port: int, readiness: Readiness) -> web.AppRunner:
    """Serve the ops endpoints alone (for processors that have no HTTP API of their own)."""
    app = web.Application()
    add_ops_routes(app, readiness)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


async def serve_ops_on_event(
    host: str, port: int | None, ready: asyncio.Event, waiting: str, done: str
) -> web.AppRunner | None:
    """The ops port (when ``port`` is set) for a processor whose readiness is one event:
    ``/readyz`` answers 503 with ``waiting`` until ``ready`` is set, then 200 with ``done``."""
    if port is None:
        return None
    return await start_ops_server(
        host, port, lambda: (ready.is_set(), done if ready.is_set() else waiting)
    )
