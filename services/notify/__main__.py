"""``python -m services.notify``: tell every agency, head and citizen what they must know."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import aiohttp

from common import metrics
from common.cli import OperatorError, run_service
from common.connection import make_producer
from common.http import serve_ops_on_event
from common.kafka import consume_batches, ensure_topics, topic_name
from common.postgres import postgres_from_env
from common.produce import KafkaSink
from common.registry import Registry, load_registry
from common.reload import Reloadable
from common.sealing import Sealer
from common.settings import Settings, get_settings
from common.topics import COMMANDS, DEADLETTER, MESSAGES, ROUTES, SLA
from services.notify.dispatcher import Dispatcher, Policy
from services.notify.render import Renderer
from services.notify.service import (
    NotifyListener,
    NotifyService,
    Topics,
    acknowledging_accounts,
    build_channels,
    missing_secrets,
)
from services.notify.settings import NotifySettings
from services.notify.store import Store

log = logging.getLogger("aduan.notify")
NAME = "notify"
BACKLOG_EVERY_S = 10.0
PURGE_EVERY_S = 3600.0


async def run(
    settings: Settings, ns: NotifySettings, database_url: str, stop: asyncio.Event
) -> None:
    reloadable = Reloadable("registry", settings.registry_file, load_registry)
    registry = reloadable.current
    missing = missing_secrets(registry, ns, settings)
    if missing:
        raise OperatorError(f"secrets not set (environment or secrets file): {', '.join(missing)}")
    await ensure_topics(settings)
    store = await Store.open(database_url)
    producer = make_producer(
        settings.kafka, request_timeout_ms=int(settings.produce_timeout_s * 1000)
    )
    await producer.start()
    sink = KafkaSink(producer)
    topics = Topics(topic_name(ROUTES, settings), topic_name(SLA, settings),
                    topic_name(DEADLETTER, settings), topic_name(MESSAGES, settings),
                    topic_name(COMMANDS, settings))  # fmt: skip
    inputs = [topics.routes, topics.sla]
    if acknowledging_accounts(registry):  # the messages topic only when someone acknowledges
        inputs.append(topics.messages)
    renderer = Renderer(registry, ns.desk_url)
    async with aiohttp.ClientSession() as http:
        channels = build_channels(registry, ns, settings, renderer, http, sink, topics.commands)
        metrics.zero(metrics.notify_series(channels, [ROUTES.name, SLA.name]))
        dispatcher = Dispatcher(store, sink, topics.deadletter, Policy.of(ns), channels)
        await dispatcher.start()
        dispatcher.wake(await store.pending_lanes())
        listener = NotifyListener(dispatcher)
        key = settings.secret("ADUAN_REPLY_KEY")
        service = NotifyService(
            registry, store, dispatcher, sink, topics, Sealer(key) if key else None
        )
        ready = asyncio.Event()
        ops = await serve_ops_on_event(
            settings.http_host, settings.metrics_port, ready, "joining", "assigned"
        )

        def use(new: Registry) -> None:
            """Who is told what, names and contacts from the next batch; a channel lane the
            new registry adds (a new webhook endpoint) gets its adapter. An edit that names
            a secret that is not set is refused (the previous registry stays). Changing an
            existing endpoint's URL or secret needs a restart: running lanes keep theirs."""
            absent = missing_secrets(new, ns, settings)
            if absent:
                raise ValueError(f"secrets not set: {', '.join(absent)}")
            added = build_channels(new, ns, settings, renderer, http, sink, topics.commands)
            for name, channel in added.items():
                dispatcher.channels.setdefault(name, channel)
            metrics.zero(metrics.notify_series(added, [ROUTES.name, SLA.name]))
            renderer.registry = service.registry = new
            service.ack_accounts = acknowledging_accounts(new)

        reloadable.on_change(use)
        chores = asyncio.create_task(housekeeping(store, dispatcher, ns))
        watcher = asyncio.create_task(reloadable.watch(stop), name="notify-registry-reload")
        try:
            await consume_batches(
                name=NAME,
                settings=settings,
                input_topics=inputs,
                group_id=f"{settings.consumer_group_prefix}-notify",
                process=service.process,
                stop=stop,
                max_records=ns.batch_max,
                on_ready=ready.set,
                listener=listener,
            )
        finally:
            watcher.cancel()
            chores.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await chores
            await dispatcher.stop()
            await producer.stop()
            await store.close()
            if ops is not None:
                await ops.cleanup()


async def housekeeping(store: Store, dispatcher: Dispatcher, ns: NotifySettings) -> None:
    """The backlog gauge, and forgetting deliveries older than the topics' retention."""
    last_purge = 0.0
    loop = asyncio.get_running_loop()
    while True:
        try:
            counts = await store.backlog(sorted(dispatcher.owned))
            for lane in set(counts) | set(dispatcher.lanes):
                metrics.NOTIFY_BACKLOG.labels(lane).set(counts.get(lane, 0))
            if loop.time() - last_purge > PURGE_EVERY_S:
                last_purge = loop.time()
                gone = await store.purge(ns.keep_s)
                if gone:
                    log.info(
                        "forgot %d finished deliveries older than %.0f days",
                        gone,
                        ns.keep_s / 86400,
                    )
        except Exception as exc:
            log.warning("housekeeping: %s", exc)
        await asyncio.sleep(BACKLOG_EVERY_S)


async def main(stop: asyncio.Event) -> None:
    settings = get_settings()
    ns = NotifySettings()
    if ns.database_url:
        await run(settings, ns, ns.database_url, stop)
        return
    with postgres_from_env("ADUAN_NOTIFY_DATABASE_URL") as (url, server):
        if server is not None:
            log.info("embedded PostgreSQL on port %d (thrown away at exit)", server.port)
        await run(settings, ns, url, stop)


if __name__ == "__main__":
    run_service(
        NAME,
        "Tells the right person about every routing and deadline event (aduan.routes.v1, "
        "aduan.sla.v1): e-mail, signed webhooks, Telegram, WhatsApp; once each.",
        [Settings, NotifySettings],
        main,
    )
