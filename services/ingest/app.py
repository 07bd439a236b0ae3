"""Ingest HTTP service: verifies webhooks, stores every delivery in Kafka, then normalizes.

The order is the product's promise: a delivery is answered 200 only after its raw bytes are
acknowledged by Kafka (acks=all); if Kafka does not acknowledge in time the platform gets a
503 and retries, and the retry is deduplicated downstream by message id."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiohttp import web
from aiokafka import AIOKafkaProducer

from common import codecs, metrics
from common.http import add_ops_routes
from common.kafka import ensure_topics, make_producer, produce_all, Output, topic_name
from common.registry import Registry, load_registry, secret_from_env
from common.settings import Settings
from common.topics import DEADLETTER, MESSAGES, RAW
from schemas.deadletter import DeadLetter
from schemas.messages import Platform
from services.ingest.parsing import DeliveryContext, MalformedDelivery, parse_delivery
from services.ingest.privacy import Pseudonymizer
from services.ingest.signatures import meta_signature, verify_any

log = logging.getLogger("aduan.ingest")

META_PLATFORMS = {Platform.instagram, Platform.facebook, Platform.whatsapp}


@dataclass
class IngestService:
    settings: Settings
    registry: Registry
    producer: AIOKafkaProducer
    pseudonymize: Pseudonymizer
    app_secrets: dict[Platform, list[str]] = field(default_factory=dict)
    verify_tokens: dict[Platform, list[str]] = field(default_factory=dict)
    ready: bool = False
    port: int = 0

    def __post_init__(self) -> None:
        s = self.settings
        for platform in Platform:
            accounts = self.registry.accounts_for(platform)
            self.app_secrets[platform] = _resolve({a.app_secret_env for a in accounts}, s)
            self.verify_tokens[platform] = _resolve(
                {a.verify_token_env for a in accounts if a.verify_token_env}, s
            )
        self.raw_topic = topic_name(RAW, s)
        self.messages_topic = topic_name(MESSAGES, s)
        self.deadletter_topic = topic_name(DEADLETTER, s)

    # -- GET: subscription verification ---------------------------------------------------
    async def verify(self, request: web.Request) -> web.Response:
        platform = _platform(request)
        q = request.query
        if platform in META_PLATFORMS and q.get("hub.mode") == "subscribe":
            token = q.get("hub.verify_token", "")
            if any(_same(token, t) for t in self.verify_tokens[platform]):
                metrics.WEBHOOK_REQUESTS.labels(platform, "verified").inc()
                return web.Response(text=q.get("hub.challenge", ""))
        metrics.WEBHOOK_REQUESTS.labels(platform, "bad_verify_token").inc()
        raise web.HTTPForbidden(text="verification failed")

    # -- POST: deliveries -----------------------------------------------------------------
    async def receive(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        platform = _platform(request)
        try:
            return await self._receive(platform, request)
        finally:
            metrics.WEBHOOK_LATENCY.labels(platform).observe(time.perf_counter() - started)

    async def _receive(self, platform: Platform, request: web.Request) -> web.Response:
        if request.content_type != "application/json":
            metrics.WEBHOOK_REQUESTS.labels(platform, "unsupported_media_type").inc()
            raise web.HTTPUnsupportedMediaType(text="expected application/json")
        if (request.content_length or 0) > self.settings.max_body_bytes:
            metrics.WEBHOOK_REQUESTS.labels(platform, "too_large").inc()
            raise web.HTTPRequestEntityTooLarge(
                max_size=self.settings.max_body_bytes, actual_size=request.content_length or 0
            )
        body = await request.read()
        if not verify_any(
            request.headers.get("X-Hub-Signature-256"),
            body,
            self.app_secrets[platform],
            meta_signature,
        ):
            metrics.WEBHOOK_REQUESTS.labels(platform, "forged").inc()
            raise web.HTTPForbidden(text="bad signature")

        received_at = datetime.now(UTC)
        delivery_id = str(uuid.uuid4())
        try:
            raw_meta = await self._store_raw(platform, body, delivery_id, received_at, request)
        except (asyncio.TimeoutError, Exception) as exc:  # noqa: BLE001 - any failure means "not stored"
            log.warning("raw delivery not acknowledged: %r", exc)
            metrics.WEBHOOK_REQUESTS.labels(platform, "broker_unavailable").inc()
            raise web.HTTPServiceUnavailable(text="storage unavailable, retry") from exc

        ctx = DeliveryContext(delivery_id, received_at, self.registry, self.pseudonymize)
        outputs: list[Output] = []
        try:
            result = parse_delivery(platform, body, ctx)
        except MalformedDelivery as exc:
            outputs.append(self._dead_letter(exc.reason, exc.detail, raw_meta, None))
            await self._produce(outputs)
            metrics.WEBHOOK_REQUESTS.labels(platform, "malformed").inc()
            raise web.HTTPBadRequest(text=f"{exc.reason}: {exc.detail}") from exc

        for message in result.messages:
            outputs.append(
                Output(self.messages_topic, message.thread_key.encode(), codecs.dumps(message))
            )
        for rejected in result.rejected:
            outputs.append(
                self._dead_letter(rejected.reason, rejected.detail, raw_meta, rejected.entry_index)
            )
        metrics.WEBHOOK_ENTRIES.labels(platform, "message").inc(len(result.messages))
        metrics.WEBHOOK_ENTRIES.labels(platform, "rejected").inc(len(result.rejected))
        metrics.WEBHOOK_ENTRIES.labels(platform, "skipped").inc(result.skipped)
        try:
            await self._produce(outputs)
        except Exception as exc:  # noqa: BLE001
            metrics.WEBHOOK_REQUESTS.labels(platform, "broker_unavailable").inc()
            raise web.HTTPServiceUnavailable(text="storage unavailable, retry") from exc
        metrics.WEBHOOK_REQUESTS.labels(platform, "accepted").inc()
        return web.json_response({"status": "ok", "messages": len(result.messages)})

    async def _store_raw(
        self,
        platform: Platform,
        body: bytes,
        delivery_id: str,
        received_at: datetime,
        request: web.Request,
    ) -> tuple[int, int, str]:
        headers = [
            ("platform", platform.value.encode()),
            ("received_at", received_at.isoformat().encode()),
            ("content_type", request.content_type.encode()),
            ("signature_verified", b"true"),
        ]
        started = time.perf_counter()
        fut = await self.producer.send(
            self.raw_topic, body, key=delivery_id.encode(), headers=headers
        )
        meta = await asyncio.wait_for(fut, timeout=self.settings.produce_timeout_s)
        metrics.PRODUCE_LATENCY.labels(RAW.name).observe(time.perf_counter() - started)
        return meta.partition, meta.offset, delivery_id

    async def _produce(self, outputs: list[Output]) -> None:
        await asyncio.wait_for(produce_all(self.producer, outputs), self.settings.produce_timeout_s)

    def _dead_letter(
        self, reason: str, detail: str, raw: tuple[int, int, str], entry_index: int | None
    ) -> Output:
        partition, offset, delivery_id = raw
        metrics.DEAD_LETTERS.labels("ingest", reason).inc()
        record = DeadLetter(
            stage="ingest",
            reason=reason,
            detail=detail[:2000],
            source_topic=self.raw_topic,
            source_partition=partition,
            source_offset=offset,
            source_key=delivery_id,
            entry_index=entry_index,
            payload_b64=None,  # raw data stays in the raw topic; referenced by position
            failed_at=datetime.now(UTC),
        )
        return Output(self.deadletter_topic, delivery_id.encode(), codecs.dumps(record))


def _platform(request: web.Request) -> Platform:
    try:
        return Platform(request.match_info["platform"])
    except ValueError:
        raise web.HTTPNotFound(text="unknown platform") from None


def _same(a: str, b: str) -> bool:
    import hmac

    return hmac.compare_digest(a.encode(), b.encode())


def _resolve(env_names: set[str], settings: Settings) -> list[str]:
    values = []
    for name in sorted(env_names):
        value = secret_from_env(name, settings.secrets_file)
        if value:
            values.append(value)
        else:
            log.warning("secret %s is not set: deliveries signed with it will be refused", name)
    return values


def build_app(service: IngestService) -> web.Application:
    app = web.Application(client_max_size=service.settings.max_body_bytes)
    app.router.add_get("/webhooks/{platform}", service.verify)
    app.router.add_post("/webhooks/{platform}", service.receive)
    add_ops_routes(
        app, lambda: (service.ready, "producer connected" if service.ready else "starting")
    )
    return app


async def start(settings: Settings) -> tuple[web.AppRunner, IngestService]:
    """Create topics, connect the producer, and start serving; returns what stop() needs."""
    registry = load_registry(settings.registry_file)
    key = settings.pseudonym_key.get_secret_value() or (
        secret_from_env("ADUAN_PSEUDONYM_KEY", settings.secrets_file) or ""
    )
    await ensure_topics(settings)
    producer = make_producer(settings)
    await producer.start()
    service = IngestService(settings, registry, producer, Pseudonymizer(key.encode()))
    runner = web.AppRunner(build_app(service), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.http_host, settings.http_port)
    await site.start()
    service.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # noqa: SLF001
    service.ready = True
    return runner, service


async def stop(runner: web.AppRunner, service: IngestService) -> None:
    service.ready = False
    await runner.cleanup()
    await service.producer.stop()
