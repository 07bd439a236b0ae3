"""``python -m services.route``: the route processor."""

import asyncio

from common.cli import run_service
from common.http import start_ops_server
from common.kafka import ensure_topics
from common.settings import Settings, get_settings
from services.route.app import create_app
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
    await stop.wait()
    await app.stop()


if __name__ == "__main__":
    run_service(
        "route",
        "Routes classified complaints to the responsible agency and runs their response "
        "deadlines (SLA): writes aduan.routes.v1 and aduan.sla.v1.",
        [Settings, RouteSettings],
        main,
    )
