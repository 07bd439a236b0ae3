"""``python -m services.classify``: the classify processor."""

import asyncio

from common.cli import run_service
from common.http import serve_ops_on_event
from common.settings import Settings, get_settings
from services.classify.settings import ClassifySettings


async def main(stop: asyncio.Event) -> None:
    # imported here: the processor pulls in scikit-learn (about 3 s), which `--help` and
    # `--version` need not wait for
    from services.classify import processor

    settings = get_settings()
    ready = asyncio.Event()
    await serve_ops_on_event(
        settings.http_host, settings.metrics_port, ready, "starting", "consuming"
    )
    await processor.run(settings, stop, ready)


if __name__ == "__main__":
    run_service(
        "classify",
        "Enriches each message of aduan.messages.v1 with its kind, category, agency, region "
        "and urgency, and writes aduan.classified.v1.",
        [Settings, ClassifySettings],
        main,
    )
