"""``python -m services.route``: the route processor.

A faust service that crashes (table recovery above all) does not end faust's app: route used
to sit "recovering" until someone looked. It now ends with one line naming the cause, and
for a local table ahead of its changelog (the topics were reset, the RocksDB directory was
kept) the fix: faust refuses to recover from a changelog older than the table."""

import asyncio
import contextlib
from pathlib import Path
from typing import Any

from common.cli import OperatorError, run_service
from common.http import start_ops_server
from common.kafka import ensure_topics
from common.settings import Settings, get_settings
from services.route.app import create_app
from services.route.faust_internals import crashable_services
from services.route.settings import RouteSettings


async def main(stop: asyncio.Event) -> None:
    settings = get_settings()
    await ensure_topics(settings)
    route = create_app(settings)
    app, worker = route.app, route.worker

    def readiness() -> tuple[bool, str]:
        """Ready once the table is recovered and the due indexes are built: from then on
        deadlines fire (the first tick catches up on everything that came due meanwhile)."""
        if app.rebalancing or worker.needs_reindex or worker.ready_after is None:
            return False, "recovering"
        return True, f"ready {worker.ready_after:.1f}s after start"

    if settings.metrics_port is not None:
        await start_ops_server(settings.http_host, settings.metrics_port, readiness)
    await app.start()
    try:
        await until_stopped_or_crashed(stop, crashable_services(app), worker.settings.data_dir)
    finally:
        await app.stop()


async def until_stopped_or_crashed(
    stop: asyncio.Event, services: tuple[Any, ...], data_dir: Path, poll_s: float = 1.0
) -> None:
    """Return when ``stop`` is set; raise ``OperatorError`` (one line) when one of the faust
    services (``mode.Service``: ``crashed``, ``crash_reason``) has crashed."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), poll_s)
        for service in services:
            if service.crashed:
                raise OperatorError(crash_line(service.crash_reason, data_dir))


def crash_line(reason: BaseException | None, data_dir: Path) -> str:
    first = " ".join(str(reason).split()) if reason else "no reason given"
    if type(reason).__name__ == "ConsistencyError":
        return (
            f"the local table in {data_dir} is ahead of its changelog topic ({first}); the "
            f"topics were reset while the table was kept: delete {data_dir} "
            "(ADUAN_ROUTE_DATA_DIR) and start route again, it rebuilds from the changelog"
        )
    return f"faust crashed: {type(reason).__name__}: {first}"


if __name__ == "__main__":
    run_service(
        "route",
        "Routes classified complaints to the responsible agency and runs their response "
        "deadlines (SLA): writes aduan.routes.v1 and aduan.sla.v1.",
        [Settings, RouteSettings],
        main,
    )
