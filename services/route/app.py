"""route processor: ``aduan.classified.v1`` → ``aduan.routes.v1`` (walking-skeleton cut).

A faust app because route is stateful: which complaints were already routed lives in a
changelog-backed table, so a restarted or rebalanced worker does not route twice."""

from __future__ import annotations

import logging
from datetime import timedelta

import faust
from pydantic import ValidationError

from common import codecs, metrics
from common.codecs import register_faust_codec
from common.registry import Registry, load_registry
from common.settings import Settings
from common.topics import CLASSIFIED, DEADLETTER, ROUTES
from schemas.classified import ClassifiedMessage, MessageKind, Urgency
from schemas.routes import RouteEvent, RouteEventType
from schemas.sla import Clock

log = logging.getLogger("aduan.route")
NAME = "route"
EXCERPT_CHARS = 160

# Skeleton policy: first-response targets in wall-clock hours by urgency.
FIRST_RESPONSE = {
    Urgency.emergency: timedelta(hours=1),
    Urgency.high: timedelta(hours=4),
    Urgency.normal: timedelta(hours=24),
    Urgency.low: timedelta(hours=72),
}


def route_event(c: ClassifiedMessage, registry: Registry) -> RouteEvent:
    """The ``routed`` event for a complaint; deterministic so a replay produces the same id."""
    message = c.message
    agency = registry.agency(c.agency_id)
    due = message.received_at + FIRST_RESPONSE[c.urgency]
    return RouteEvent(
        event_id=f"{message.message_id}:routed",
        event_type=RouteEventType.routed,
        complaint_id=message.message_id,
        thread_key=message.thread_key,
        agency_id=c.agency_id,
        agency_kind=c.agency_kind,
        region_code=c.region_code,
        category=c.category,
        subcategory=c.subcategory,
        urgency=c.urgency.value,
        text_excerpt=(message.text or "")[:EXCERPT_CHARS],
        due={Clock.first_response: due},
        policy=f"skeleton-{c.urgency.value}",
        channels=list(agency.channels) if agency else [],
        routed_at=message.received_at,
    )


def create_app(settings: Settings) -> faust.App:
    register_faust_codec()
    registry = load_registry(settings.registry_file)
    app = faust.App(
        f"{settings.consumer_group_prefix}-route",
        broker=[f"kafka://{h}" for h in settings.bootstrap_servers.split(",")],
        store="memory://",
        value_serializer="raw",
        key_serializer="raw",
        topic_partitions=settings.topic_partitions or CLASSIFIED.partitions,
        topic_replication_factor=settings.replication_factor,
        producer_acks=-1,
        broker_rebalance_timeout=settings.rebalance_timeout_s,
        broker_session_timeout=settings.rebalance_timeout_s,
        broker_heartbeat_interval=1.0,
        web_enabled=False,
        processing_guarantee="at_least_once",
        consumer_auto_offset_reset="earliest",
    )
    prefix = settings.topic_prefix
    classified = app.topic(CLASSIFIED.full_name(prefix), key_type=bytes, value_type=bytes)
    routes = app.topic(ROUTES.full_name(prefix), key_type=bytes, value_type=bytes)
    deadletters = app.topic(DEADLETTER.full_name(prefix), key_type=bytes, value_type=bytes)
    routed = app.Table("routed-complaints", default=bool, partitions=app.conf.topic_partitions)

    @app.agent(classified)
    async def route(stream: faust.Stream) -> None:
        async for event in stream.events():
            metrics.MESSAGES_IN.labels(NAME, CLASSIFIED.name).inc()
            try:
                c = ClassifiedMessage.model_validate_json(event.value)
            except (ValidationError, ValueError) as exc:
                metrics.DEAD_LETTERS.labels(NAME, "invalid_classified").inc()
                await deadletters.send(key=event.key, value=codecs.dumps(_dead(event, str(exc))))
                continue
            if c.kind is not MessageKind.complaint or c.message.is_agency_reply:
                continue
            complaint_id = c.message.message_id
            if routed[complaint_id]:
                continue  # replay or duplicate delivery: routed once already
            out = route_event(c, registry)
            await routes.send(key=event.key, value=codecs.dumps(out))
            routed[complaint_id] = True
            metrics.MESSAGES_OUT.labels(NAME, ROUTES.name).inc()
            metrics.ROUTED.labels(out.agency_id, out.agency_kind).inc()

    def _dead(event: faust.EventT, detail: str) -> object:
        from datetime import UTC, datetime

        from schemas.deadletter import DeadLetter

        return DeadLetter(
            stage=NAME,
            reason="invalid_classified",
            detail=detail[:2000],
            source_topic=event.message.topic,
            source_partition=event.message.partition,
            source_offset=event.message.offset,
            source_key=event.key.decode("utf-8", "replace") if event.key else None,
            payload_b64=__import__("base64").b64encode(event.value).decode(),
            failed_at=datetime.now(UTC),
        )

    return app
