"""Ingest HTTP service: verifies webhooks, stores every delivery in Kafka, then normalizes.

The order is the product's promise: a delivery is answered 200 only after its raw bytes
*and* the normalized messages parsed from it are acknowledged by Kafka (acks=all). If Kafka
does not acknowledge in time the platform gets a 503 and retries; the retry is dropped by
the dedup store (``dedup.py``), so it lands exactly once.

Answers, per request:

* 415 not ``application/json``; 413 body over ``ADUAN_INGEST_MAX_BODY_BYTES`` (3 MB), or
  more items than ``ADUAN_INGEST_MAX_ENTRIES`` (1,000) (nothing written);
* 403 missing/bad signature, a secret that does not belong to every account the delivery
  names, generic timestamp outside the window (nothing written);
* 503 broker unavailable or slow, ingest still rebuilding its dedup store, or the same
  message being written by a concurrent request;
* 400 body not JSON / unknown ``object`` (raw kept, dead letter written);
* 200 otherwise, also when entries were rejected (unknown account, malformed entry, text over
  the cap): those are dead-lettered one by one, and a 200 stops the platform from retrying
  what can never succeed.

Routes on the public port: ``GET|POST /webhooks/{instagram,facebook,whatsapp,x,generic}``,
the same with ``/<app>`` (Meta, X) or ``/<account>`` (generic) appended to name the secret
(``credentials.py``), and ``GET /healthz`` (liveness). ``/metrics`` and ``/readyz`` are
served on ``ADUAN_METRICS_PORT`` only (``common.http.start_ops_server``): the webhook port is
the one on the internet."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import hmac
import itertools
import logging
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson
from aiohttp import web
from aiokafka import AIOKafkaProducer

from common import metrics
from common.connection import make_producer
from common.deadletters import Source, dead_letter
from common.http import add_liveness_route, start_ops_server
from common.kafka import ensure_topics, topic_name
from common.produce import KafkaSink, Output, RecordSink, SendResult, Written, send_all
from common.registry import Registry, load_registry
from common.reload import Reloadable
from common.sealing import Sealer
from common.settings import Settings
from common.topics import DEADLETTER, MESSAGES, RAW
from schemas import raw as raw_record
from schemas.messages import Message, Platform
from services.ingest.credentials import Credential, Credentials
from services.ingest.dedup import HEADER, DedupStore, InFlight, TopicTail, dedup_key
from services.ingest.platforms import parse_delivery
from services.ingest.platforms.base import (
    AccountIndex,
    DeliveryContext,
    Limits,
    MalformedDelivery,
    RejectedEntry,
    TooManyEntries,
    describe_bug,
)
from services.ingest.privacy import Pseudonymizer
from services.ingest.settings import IngestSettings
from services.ingest.signatures import (
    is_challenge,
    is_crc_token,
    matching,
    meta_signature,
    verify_generic,
    x_crc_response,
    x_signature,
)

log = logging.getLogger("aduan.ingest")

META_PLATFORMS = {Platform.instagram, Platform.facebook, Platform.whatsapp}
JSON_TYPES = {"application/json"}


@dataclass
class IngestService:
    """The webhook endpoints of one ingest process; writes through ``sink`` (Kafka in
    production, ``common.produce.MemorySink`` in tests of the HTTP rules)."""

    settings: Settings
    registry: Registry
    sink: RecordSink
    pseudonymize: Pseudonymizer
    ingest: IngestSettings = field(default_factory=IngestSettings)
    dedup: DedupStore | None = None
    ready: bool = False
    port: int = 0
    tail_stop: asyncio.Event = field(default_factory=asyncio.Event)
    tail_task: asyncio.Task[None] | None = None
    raw_partitions: list[int] = field(default_factory=list)
    producer: AIOKafkaProducer | None = None
    ops_runner: web.AppRunner | None = None
    ops_port: int | None = None
    reload_task: asyncio.Task[None] | None = None

    def __post_init__(self) -> None:
        s = self.settings
        self.accounts = AccountIndex(self.registry)
        self.credentials = Credentials(self.registry, s.secret)
        self.limits = Limits(
            max_entries=self.ingest.max_entries, max_text_chars=self.ingest.max_text_chars
        )
        self.budget = ByteBudget(self.ingest.max_inflight_bytes)
        self.sealer = reply_sealer(self.registry, s)
        if self.dedup is None:
            self.dedup = DedupStore(self.ingest.dedup_window_s)
        self.raw_topic = topic_name(RAW, s)
        self.messages_topic = topic_name(MESSAGES, s)
        self.deadletter_topic = topic_name(DEADLETTER, s)
        self._raw_cycle: itertools.cycle[int] | None = None
        self._raw_partition = 0
        self._raw_left = 0

    def use_registry(self, registry: Registry) -> None:
        """Serve a new registry from the next request on (an operator's edit, picked up by
        ``common.reload``): the lookups and credentials are built first and swapped in one
        step, so a request sees either the old registry or the new one, never a mix, and
        ingest keeps answering throughout."""
        accounts = AccountIndex(registry)
        credentials = Credentials(registry, self.settings.secret)
        sealer = reply_sealer(registry, self.settings)
        self.registry, self.accounts, self.credentials = registry, accounts, credentials
        self.sealer = sealer

    def next_raw_partition(self) -> int | None:
        """The raw topic's partition for the next delivery: sticky for ``RAW_STICKY``
        deliveries, then the next partition in turn.

        The raw record's key is a random delivery id that nobody looks up by hash (dead
        letters and replays address raw records by partition and offset), so it needs no
        murmur2 hash: keeping consecutive deliveries on one partition puts the raw records
        of one produce request into one batch, and the partitions still fill evenly. None
        (the default partitioner) until the partitions are known."""
        if not self.raw_partitions:
            return None
        if self._raw_left <= 0:
            if self._raw_cycle is None:
                self._raw_cycle = itertools.cycle(self.raw_partitions)
            self._raw_partition = next(self._raw_cycle)
            self._raw_left = RAW_STICKY
        self._raw_left -= 1
        return self._raw_partition

    # -- GET: subscription verification ---------------------------------------------------
    async def verify(self, request: web.Request) -> web.Response:
        """Meta's ``hub.challenge`` and X's CRC. Neither signs nor echoes what a caller
        chooses: Meta's challenge is answered only with a matching verify token and only
        when it is a short plain token; X's CRC only for a token of X's shape, with the
        secret of the app the URL names (the only app when there is one)."""
        platform = _platform(request)
        label = request.match_info.get("app")
        q = request.query
        if platform in META_PLATFORMS and q.get("hub.mode") == "subscribe":
            challenge = q.get("hub.challenge", "")
            if not is_challenge(challenge):
                return _refuse(
                    platform, "bad_verify_token", web.HTTPBadRequest, error_code="bad_challenge"
                )
            token = q.get("hub.verify_token", "")
            ok = False
            for cred in self._candidates(platform, label):
                ok |= cred.verify_token is not None and _same(token, cred.verify_token)
            if ok:
                _requests(platform, "verified").inc()
                return web.Response(text=challenge)
        if platform is Platform.x and "crc_token" in q:
            token = q["crc_token"]
            if not is_crc_token(token):
                return _refuse(
                    platform, "bad_verify_token", web.HTTPBadRequest, error_code="bad_crc_token"
                )
            apps = self._candidates(platform, label)
            if len(apps) == 1:
                _requests(platform, "verified").inc()
                return _json(x_crc_response(apps[0].secret, token))
            if len(apps) > 1:  # which app's secret? The URL must say.
                return _refuse(
                    platform, "bad_verify_token", web.HTTPBadRequest, error_code="name_the_app"
                )
        _requests(platform, "bad_verify_token").inc()
        raise web.HTTPForbidden(text="verification failed")

    def _candidates(self, platform: Platform, label: str | None) -> list[Credential]:
        if label is None:
            return self.credentials.of(platform)
        cred = self.credentials.get(platform, label)
        return [cred] if cred is not None else []

    # -- POST: deliveries -----------------------------------------------------------------
    async def receive(self, request: web.Request) -> web.Response:
        """Any ``/webhooks/{platform}[/{app}]``: 404 for an unknown platform (known ones
        without a label are served by ``receiver`` on their own static routes)."""
        return await self.receiver(_platform(request))(request)

    def receiver(self, platform: Platform) -> Callable[[web.Request], Awaitable[web.Response]]:
        """The POST handler of one platform, for its static route (resolved by a dict hit
        instead of a pattern match)."""
        latency = _latency(platform)

        async def receive(request: web.Request) -> web.Response:
            started = time.perf_counter()
            try:
                return await self._receive(platform, request)
            finally:
                latency.observe(time.perf_counter() - started)

        return receive

    async def _receive(self, platform: Platform, request: web.Request) -> web.Response:
        # Fast path for the exact header every platform sends; anything else is parsed.
        content_type = request.headers.get("Content-Type")
        if content_type not in JSON_TYPES:
            content_type = request.content_type
            if content_type not in JSON_TYPES:
                return _refuse(platform, "unsupported_media_type", web.HTTPUnsupportedMediaType)
        limit = self.ingest.max_body_bytes
        if (request.content_length or 0) > limit:
            return _refuse(platform, "too_large", web.HTTPRequestEntityTooLarge, limit)
        # Memory stays bounded: a delivery in progress holds about four times its body
        # (the bytes, the parsed JSON, the messages, their records in the producer's
        # buffer), and at most max_inflight_bytes of that are held at once. A chunked body
        # is counted at the body limit.
        held = (request.content_length or limit) * HELD_PER_BODY_BYTE
        if not await self.budget.take(held, 2 * self.settings.produce_timeout_s):
            return _refuse(platform, "overloaded", web.HTTPServiceUnavailable)
        try:
            return await self._receive_held(platform, request, content_type, limit)
        finally:
            self.budget.give(held)

    async def _receive_held(
        self, platform: Platform, request: web.Request, content_type: str, limit: int
    ) -> web.Response:
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:  # chunked bodies past client_max_size
            return _refuse(platform, "too_large", web.HTTPRequestEntityTooLarge, limit)
        auth = self._authenticate(platform, request, body)
        if isinstance(auth, str):
            return _refuse(platform, auth, web.HTTPForbidden)
        trusted, sender = auth
        if not self.ready:
            return _refuse(platform, "not_ready", web.HTTPServiceUnavailable)

        received_at = datetime.now(UTC)
        delivery_id = new_delivery_id()
        ctx = DeliveryContext(
            delivery_id, received_at, self.accounts, self.pseudonymize, self.limits, trusted, sender
        )
        ctx.seal = self.sealer
        raw = self._raw_output(platform, body, delivery_id, received_at, content_type)
        try:
            result = parse_delivery(platform, body, ctx)
        except TooManyEntries as exc:
            return _refuse(
                platform, "too_large", web.HTTPRequestEntityTooLarge, exc.limit, exc.reason
            )
        except MalformedDelivery as exc:
            return await self._malformed(platform, raw, exc)
        except Exception as exc:  # a parser bug (fuzzing says none): keep raw, answer 500
            log.exception("parser failed on delivery %s", delivery_id)
            bug = MalformedDelivery("parser_error", describe_bug(exc))
            return await self._malformed(platform, raw, bug, status=500)
        if ctx.foreign:
            # Authentic, but signed with a secret that does not serve an account it names:
            # one app (or sender) filing for another agency. Nothing is written.
            log.warning(
                "refused a %s delivery naming %d account(s) of another app or sender",
                platform.value,
                len(ctx.foreign),
            )
            return _refuse(platform, "forged", web.HTTPForbidden, error_code="foreign_account")
        return await self._write(platform, raw, result.messages, result.rejected, result.skips)

    async def _malformed(
        self, platform: Platform, raw: Output, exc: MalformedDelivery, status: int = 400
    ) -> web.Response:
        """Keep the raw bytes, dead-letter the delivery by position, answer 400 (500 for a
        parser bug, so the platform retries once it is fixed)."""
        (stored,) = await self._send([raw])
        if isinstance(stored, BaseException):
            return _refuse(platform, "broker_unavailable", web.HTTPServiceUnavailable)
        letter = self._dead_letter(exc.reason, exc.detail, _ref(raw, stored), None)
        (sent,) = await self._send([letter])
        if isinstance(sent, BaseException):
            return _refuse(platform, "broker_unavailable", web.HTTPServiceUnavailable)
        _requests(platform, "malformed").inc()
        return _json({"error": exc.reason, "detail": exc.detail}, status=status)

    async def _write(
        self,
        platform: Platform,
        raw: Output,
        messages: list[Message],
        rejected: list[RejectedEntry],
        skips: dict[str, int],
    ) -> web.Response:
        """Drop duplicates, write raw, messages and dead letters, remember keys once acked.

        Without rejections the raw record and the messages travel together (one broker
        round trip instead of two); dead letters point at the raw record's offset, so with
        rejections the raw record is written first. 200 means every record was
        acknowledged. A message acknowledged in a request that still fails keeps its key
        (it *is* stored); one whose write failed is held "uncertain" for twice the produce
        timeout (it may still land), so the platform's retry gets 503 until its fate is
        known and never writes it twice."""
        assert self.dedup is not None
        keys = [dedup_key(m) for m in messages]
        try:
            fresh, claimed = self.dedup.claim(keys)
        except InFlight:
            return _refuse(platform, "in_flight", web.HTTPServiceUnavailable)
        outputs = [
            Output(
                self.messages_topic,
                messages[i].thread_key.encode(),
                encode_message(messages[i]),
                ((HEADER, keys[i].encode()),),
            )
            for i in fresh
        ]
        hold = 2 * self.settings.produce_timeout_s + 1.0
        if rejected:
            (stored,) = await self._send([raw])
            if isinstance(stored, BaseException):
                self.dedup.release(claimed)
                return _refuse(platform, "broker_unavailable", web.HTTPServiceUnavailable)
            ref = _ref(raw, stored)
            letters = [self._dead_letter(r.reason, r.detail, ref, r.entry_index) for r in rejected]
            acks = await self._send(outputs + letters)
        else:
            acks = await self._send([raw, *outputs])
            acks = [*acks[1:], acks[0]]  # messages first, to pair with their keys
        stored_keys = [
            k for k, a in zip(claimed, acks, strict=False) if not isinstance(a, BaseException)
        ]
        lost_keys = [k for k, a in zip(claimed, acks, strict=False) if isinstance(a, BaseException)]
        self.dedup.commit(stored_keys)
        self.dedup.release(lost_keys, hold_s=hold)
        if any(isinstance(a, BaseException) for a in acks):
            return _refuse(platform, "broker_unavailable", web.HTTPServiceUnavailable)
        duplicates = len(messages) - len(fresh)
        skipped = sum(skips.values())
        for reason, count in skips.items():
            metrics.WEBHOOK_SKIPPED.labels(platform.value, reason).inc(count)
        for outcome, count in (
            ("message", len(fresh)),
            ("duplicate", duplicates),
            ("rejected", len(rejected)),
            ("skipped", skipped),
        ):
            if count:
                _entries(platform, outcome).inc(count)
        unknown = rejected and not messages and all(r.reason == "unknown_account" for r in rejected)
        _requests(platform, "unknown_account" if unknown else "accepted").inc()
        return _json(
            {
                "status": "ok",
                "messages": len(fresh),
                "duplicates": duplicates,
                "rejected": len(rejected),
                "skipped": skipped,
            }
        )

    def _authenticate(
        self, platform: Platform, request: web.Request, body: bytes
    ) -> str | tuple[frozenset[str], str | None]:
        """The secrets (by variable name) that verified the delivery and, for the generic
        webhook, the sender account; or the refusal: ``forged`` or ``replayed``.

        The URL's label (``/webhooks/<platform>/<label>``) picks one secret before anything
        is read; the generic webhook needs it (or ``X-Aduan-Account``), Meta and X without
        one try every secret of the platform (no early exit)."""
        headers = request.headers
        label = request.match_info.get("app")
        if platform is Platform.generic:
            sender = label or headers.get("X-Aduan-Account")
            cred = self.credentials.get(platform, sender) if sender else None
            if cred is None:
                return "forged"
            refusal = verify_generic(
                headers.get("X-Aduan-Signature"),
                headers.get("X-Aduan-Timestamp"),
                body,
                cred.values(),
                time.time(),
                self.ingest.generic_replay_window_s,
            )
            return refusal if refusal is not None else (frozenset({cred.env}), sender)
        if platform is Platform.x:
            header, sign = headers.get("x-twitter-webhooks-signature"), x_signature
        else:
            header, sign = headers.get("X-Hub-Signature-256"), meta_signature
        candidates = [(c.env, v) for c in self._candidates(platform, label) for v in c.values()]
        trusted = matching(header, body, candidates, sign)
        return (trusted, None) if trusted else "forged"

    def _raw_output(
        self,
        platform: Platform,
        body: bytes,
        delivery_id: str,
        received_at: datetime,
        content_type: str,
    ) -> Output:
        headers = raw_record.to_headers(platform, received_at, content_type)
        partition = self.next_raw_partition()
        return Output(self.raw_topic, delivery_id.encode(), body, headers, partition)

    async def _send(self, outputs: list[Output]) -> list[SendResult]:
        """Send and wait for every acknowledgement (acks=all), bounded by
        ``produce_timeout_s``; one result per output, an exception where it failed. On
        timeout every output counts as failed (some may still land: the dedup tail sees
        them and drops the platform's retry)."""
        if not outputs:
            return []
        started = time.perf_counter()
        results = await send_all(self.sink, outputs, self.settings.produce_timeout_s)
        elapsed = time.perf_counter() - started
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            log.warning(
                "%d of %d records not acknowledged: %r", len(failed), len(results), failed[0]
            )
            return results
        for topic in {o.topic for o in outputs}:
            _produce_latency(topic.removeprefix(self.settings.topic_prefix)).observe(elapsed)
        return results

    def _dead_letter(
        self, reason: str, detail: str, raw: RawRef, entry_index: int | None
    ) -> Output:
        """A dead letter of ingest refers to the raw record by position: raw bytes may hold
        personal data and never travel outside the raw topic."""
        partition, offset, delivery_id = raw
        source = Source(self.raw_topic, partition, offset, delivery_id.encode())
        return dead_letter(self.deadletter_topic, "ingest", reason, detail, source, entry_index)


class ByteBudget:
    """At most ``limit`` bytes held at once by the requests in progress; a request that
    would exceed it waits (first come, first served) or gives up after a timeout.

    Without it, 8 concurrent 2.3 MB deliveries left ingest at 175 MB resident and 24 at
    345-365 MB, growing; with the default budget (32 MB, each delivery counted at four times
    its body) three of the largest run at a time, the rest wait their turn, and 24 at once
    stay at about 190 MB."""

    __slots__ = ("_waiters", "limit", "used")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    async def take(self, n: int, timeout: float) -> bool:
        n = min(n, self.limit)
        if not self._waiters and self.used + n <= self.limit:
            self.used += n
            return True
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (n, waiter)
        self._waiters.append(entry)
        try:
            await asyncio.wait_for(waiter, timeout)
            return True
        except TimeoutError:
            if waiter.done() and not waiter.cancelled():
                return True  # granted just as the timeout fired: it holds the bytes
            with contextlib.suppress(ValueError):
                self._waiters.remove(entry)
            self._wake()
            return False

    def give(self, n: int) -> None:
        self.used -= min(n, self.limit)
        self._wake()

    def _wake(self) -> None:
        while self._waiters:
            n, waiter = self._waiters[0]
            if waiter.done():
                self._waiters.popleft()
                continue
            if self.used + n > self.limit:
                return
            self._waiters.popleft()
            self.used += n
            waiter.set_result(None)


_MESSAGE_JSON = Message.__pydantic_serializer__


def encode_message(message: Message) -> bytes:
    """The record value of a message: the same bytes as ``codecs.dumps(message)`` (tested),
    written by pydantic's serializer straight to JSON instead of through a dict and orjson,
    which halves the cost."""
    return _MESSAGE_JSON.to_json(message)


HELD_PER_BODY_BYTE = 4
"""Memory a delivery holds while in progress, per byte of its body (measured: a 2.3 MB
delivery of 1,000 comments raised resident memory by about 10 MB at its peak)."""

RAW_STICKY = 64
"""Deliveries in a row whose raw records go to the same partition (see next_raw_partition)."""


def new_delivery_id() -> str:
    """A random (version 4) UUID string, as ``str(uuid.uuid4())`` but without building a
    UUID object: this runs once per request."""
    b = bytearray(os.urandom(16))
    b[6] = (b[6] & 0x0F) | 0x40  # version 4
    b[8] = (b[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


# Metric children cached per label set: ``labels()`` costs more than the increment itself
# on the request path.
_requests = functools.lru_cache(maxsize=256)(metrics.WEBHOOK_REQUESTS.labels)
_entries = functools.lru_cache(maxsize=256)(metrics.WEBHOOK_ENTRIES.labels)
_latency = functools.lru_cache(maxsize=64)(metrics.WEBHOOK_LATENCY.labels)
_produce_latency = functools.lru_cache(maxsize=64)(metrics.PRODUCE_LATENCY.labels)


def _json(value: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(value), status=status, content_type="application/json")


RawRef = tuple[int, int, str]


def _ref(raw: Output, meta: Written) -> RawRef:
    return meta.partition, meta.offset, (raw.key or b"").decode()


def _refuse(
    platform: Platform,
    outcome: str,
    error: type[web.HTTPError],
    limit: int = 0,
    reason: str | None = None,
    *,
    error_code: str | None = None,
) -> web.Response:
    """Count the refusal under ``outcome`` and answer ``{"error", "limit"}``; ``error`` in
    the body is ``reason`` or ``error_code`` when more precise than the metric's outcome."""
    _requests(platform, outcome).inc()
    status = error.status_code
    code = reason or error_code or outcome
    return _json({"error": code, "limit": limit or None}, status=status)


def _platform(request: web.Request) -> Platform:
    try:
        return Platform(request.match_info["platform"])
    except ValueError:
        raise web.HTTPNotFound(text="unknown platform") from None


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def build_app(service: IngestService) -> web.Application:
    """The public application: webhooks and a liveness probe, nothing else."""
    # One byte over the limit so an exactly-3 MB body passes and a larger one is refused.
    app = web.Application(client_max_size=service.ingest.max_body_bytes + 1)
    app.router.add_get("/webhooks/{platform}", service.verify)
    app.router.add_get("/webhooks/{platform}/{app}", service.verify)
    for platform in Platform:
        app.router.add_post(f"/webhooks/{platform.value}", service.receiver(platform))
    app.router.add_post("/webhooks/{platform}", service.receive)
    app.router.add_post("/webhooks/{platform}/{app}", service.receive)
    add_liveness_route(app)
    return app


def readiness(service: IngestService) -> tuple[bool, str]:
    return service.ready, "serving" if service.ready else "rebuilding dedup store"


async def start(
    settings: Settings, ingest: IngestSettings | None = None
) -> tuple[web.AppRunner, IngestService]:
    """Create topics, connect the producer, rebuild the dedup store from the messages topic,
    and start serving; returns what stop() needs. POSTs get 503 until the rebuild is done."""
    ingest = ingest or IngestSettings()
    metrics.zero(metrics.ingest_series())  # every series the rules read, from the start
    registry = Reloadable("registry", settings.registry_file, load_registry)
    await ensure_topics(settings)
    # No linger: aiokafka keeps one produce request in flight per broker, so records batch
    # up behind it anyway; a linger only added its wait (bench: 19 -> 13 ms server time).
    producer = make_producer(
        settings.kafka,
        linger_ms=0,
        request_timeout_ms=int(settings.produce_timeout_s * 1000),
    )
    await producer.start()
    raw_partitions = sorted(await producer.partitions_for(topic_name(RAW, settings)))
    pseudonymize = Pseudonymizer(settings.pseudonym_secret().encode())
    service = IngestService(settings, registry.current, KafkaSink(producer), pseudonymize, ingest)
    registry.on_change(service.use_registry)
    service.reload_task = asyncio.create_task(
        registry.watch(service.tail_stop), name="ingest-registry-reload"
    )
    service.producer = producer
    service.raw_partitions = raw_partitions
    assert service.dedup is not None
    tail = TopicTail(service.dedup, settings, service.messages_topic)
    task = asyncio.create_task(tail.run(service.tail_stop), name="ingest-dedup-tail")
    service.tail_task = task
    if settings.metrics_port is not None:
        service.ops_runner = await start_ops_server(
            settings.http_host, settings.metrics_port, lambda: readiness(service)
        )
        service.ops_port = service.ops_runner.addresses[0][1]
    runner = web.AppRunner(build_app(service), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.http_host, settings.http_port)
    await site.start()
    service.port = runner.addresses[0][1]
    caught_up = asyncio.create_task(tail.caught_up.wait())
    done, _ = await asyncio.wait(
        {caught_up, task}, timeout=ingest.dedup_catch_up_timeout_s, return_when="FIRST_COMPLETED"
    )
    if caught_up not in done:
        caught_up.cancel()
        await stop(runner, service)
        raise RuntimeError(f"dedup store not rebuilt from {service.messages_topic} in time")
    log.info("dedup store holds %d keys", len(service.dedup))
    service.ready = True
    return runner, service


def reply_sealer(registry: Registry, settings: Settings) -> Sealer | None:
    """The sealer of reply references when an account acknowledges citizens (notify opens
    them); without ``ADUAN_REPLY_KEY`` those accounts get no reference, said once."""
    if not any(a.acknowledge for a in registry.accounts):
        return None
    key = settings.secret("ADUAN_REPLY_KEY")
    if not key:
        log.warning("accounts acknowledge citizens but ADUAN_REPLY_KEY is not set: no replies")
        return None
    return Sealer(key)


def tune_gc() -> None:
    """Collect young objects less often, and never walk what exists once serving starts.

    Every request allocates hundreds of short-lived objects (parsed JSON, the message model,
    futures, aiohttp's request and response), so with CPython's default gen-0 threshold (700)
    the collector ran every couple of requests and regularly walked the long-lived ones
    (registry, modules, connections). Freezing them and raising the threshold cut ingest's CPU
    per request by about a tenth in the bench; cyclic garbage waits for at most 50,000
    allocations (a few MB). The same settings as classify's. Process-wide, so called by
    ``python -m services.ingest`` once started, not by ``start()`` (tests share a process)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


async def stop(runner: web.AppRunner, service: IngestService) -> None:
    service.ready = False
    await runner.cleanup()
    if service.ops_runner is not None:
        await service.ops_runner.cleanup()
    service.tail_stop.set()
    for task in (service.tail_task, service.reload_task):
        if task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 10)
    if service.producer is not None:
        await service.producer.stop()
