"""``python -m services.classify``: the classify processor."""

import asyncio

from common.http import start_ops_server
from common.runtime import configure_logging, run_until_signalled
from common.settings import get_settings
from services.classify import processor


async def main(stop: asyncio.Event) -> None:
    settings = get_settings()
    ready = asyncio.Event()
    if settings.metrics_port is not None:
        await start_ops_server(
            settings.http_host,
            settings.metrics_port,
            lambda: (ready.is_set(), "consuming" if ready.is_set() else "starting"),
        )
    await processor.run(settings, stop, ready)


if __name__ == "__main__":
    configure_logging("classify")
    run_until_signalled(main)
