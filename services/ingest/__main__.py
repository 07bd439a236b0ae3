"""``python -m services.ingest``: the webhook receiver."""

import asyncio
import logging

from common.cli import run_service
from common.settings import Settings, get_settings
from services.ingest import app
from services.ingest.settings import IngestSettings


async def main(stop: asyncio.Event) -> None:
    settings = get_settings()
    runner, service = await app.start(settings)
    app.tune_gc()
    log = logging.getLogger("aduan.ingest")
    log.info("listening on http://%s:%d/webhooks/{platform}", settings.http_host, service.port)
    if service.ops_port is None:
        log.warning("ADUAN_METRICS_PORT is not set: no /metrics and no /readyz")
    else:
        log.info("metrics and readiness on http://%s:%d", settings.http_host, service.ops_port)
    await stop.wait()
    await app.stop(runner, service)


if __name__ == "__main__":
    run_service(
        "ingest",
        "Receives the platforms' webhooks, verifies them, stores every delivery in Kafka "
        "(aduan.raw.v1) and writes the masked, normalized messages (aduan.messages.v1).",
        [Settings, IngestSettings],
        main,
    )
