"""``python -m services.ingest``: the webhook receiver."""

import asyncio
import logging

from common.registry import RegistryError
from common.runtime import configure_logging, run_until_signalled
from common.settings import get_settings
from services.ingest import app


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
    configure_logging("ingest")
    try:
        run_until_signalled(main)
    except RegistryError as exc:
        raise SystemExit(f"ingest: {exc}") from None
