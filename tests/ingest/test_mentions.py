"""The mention fetcher (``services.ingest.mentions``): an Instagram mention's placeholder is
completed with the text the Graph API gives, as an edit of the same message; retried,
refused and failing fetches end as the documented dead letters. The Graph API is a real
local aiohttp server; Kafka is the real broker."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiokafka import AIOKafkaProducer

from common.kafka import topic_name
from common.settings import Settings
from common.topics import DEADLETTER, MESSAGES, RAW
from schemas import raw as raw_record
from schemas.deadletter import DeadLetter
from schemas.messages import Action, EventKind, Message, Platform
from services.ingest import mentions
from services.ingest.dedup import HEADER, dedup_key
from services.ingest.platforms import parse_delivery
from tests.ingest.helpers import IG, ctx, fixture
from tests.support import TopicReader

TOKEN = "graph-token-for-tests"
COMMENT, CAPTION_MEDIA = "17894227972186120", "17918195224117852"
GONE, BROKEN = "17894227972186404", "17894227972186503"


def test_completed_mention_is_an_edit_of_the_placeholder() -> None:
    body = fixture("instagram_mentions.json")
    placeholders = parse_delivery(Platform.instagram, body, ctx()).messages
    jobs = mentions.mention_jobs(body, ctx())
    assert [(j.node_id, j.field) for j in jobs] == [(COMMENT, "text"), (CAPTION_MEDIA, "caption")]
    done = mentions.completed(jobs[0], "Lampu mati di Jl. Darmo, hubungi 0812-3456-7890")
    assert done.message_id == placeholders[0].message_id
    assert done.thread_key == placeholders[0].thread_key
    assert (done.kind, done.action, done.text_fetched) == (EventKind.mention, Action.edit, True)
    assert done.text == "Lampu mati di Jl. Darmo, hubungi [PHONE]"
    assert dedup_key(done) != dedup_key(placeholders[0])


class Graph:
    """A stand-in for the Graph API: ``GET /{id}?fields=…&access_token=…``."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        node, field = request.match_info["node"], request.query.get("fields", "")
        self.calls.append((node, field))
        if request.query.get("access_token") != TOKEN:
            return web.json_response({"error": {"code": 190}}, status=401)
        if node == COMMENT:
            if self.calls.count((node, field)) == 1:
                return web.json_response({"error": {"code": 2}}, status=500)  # retried
            return web.json_response(
                {"text": "Sampah menumpuk, WA saya 0812-3456-7890", "id": node}
            )
        if node == CAPTION_MEDIA:
            return web.json_response({"caption": "Banjir lagi di Ngagel @pemkot", "id": node})
        if node == GONE:
            return web.json_response({"error": {"code": 100}}, status=404)
        return web.json_response({"error": {"code": 1}}, status=503)

    async def __aenter__(self) -> Graph:
        app = web.Application()
        app.router.add_get("/v21.0/{node}", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # noqa: SLF001
        self.url = f"http://127.0.0.1:{port}/v21.0"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.runner is not None
        await self.runner.cleanup()


def _delivery(*values: dict[str, Any]) -> bytes:
    changes = [{"field": "mentions", "value": v} for v in values]
    return orjson.dumps(
        {"object": "instagram", "entry": [{"id": IG, "time": 1795309300, "changes": changes}]}
    )


@pytest.fixture
async def graph() -> AsyncIterator[Graph]:
    async with Graph() as g:
        yield g


async def test_fetcher_completes_mentions_and_dead_letters_failures(
    kafka_bootstrap: str, topic_prefix: str, graph: Graph, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADUAN_INSTAGRAM_ACCESS_TOKEN", TOKEN)
    settings = Settings(
        bootstrap_servers=kafka_bootstrap,
        topic_prefix=topic_prefix,
        consumer_group_prefix=f"g-{uuid.uuid4().hex[:8]}",
        pseudonym_key="test-pseudonym-key",  # type: ignore[arg-type]
    )
    conf = mentions.MentionSettings(
        graph_base_url=graph.url, attempts=3, backoff_s=0.01, backoff_max_s=0.05, timeout_s=5
    )
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(mentions.run(settings, conf, stop, ready))
    try:
        await asyncio.wait_for(ready.wait(), 60)
        deliveries = [
            fixture("instagram_mentions.json"),  # a comment mention and a caption mention
            _delivery({"media_id": "18000000000000001", "comment_id": GONE}),
            _delivery({"media_id": "18000000000000002", "comment_id": BROKEN}),
            fixture("instagram_comments.json"),  # no mentions: ignored
        ]
        ids = [str(uuid.uuid4()) for _ in deliveries]
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await producer.start()
        try:
            for delivery_id, body in zip(ids, deliveries, strict=True):
                headers = raw_record.to_headers(
                    Platform.instagram, datetime.now(UTC), "application/json"
                )
                await producer.send_and_wait(
                    topic_name(RAW, settings), body, key=delivery_id.encode(), headers=list(headers)
                )
        finally:
            await producer.stop()
        messages_topic = topic_name(MESSAGES, settings)
        dlq_topic = topic_name(DEADLETTER, settings)
        async with TopicReader(kafka_bootstrap, messages_topic, dlq_topic) as reader:
            await reader.wait_for(
                lambda recs: (
                    sum(r.topic == messages_topic for r in recs) >= 2
                    and sum(r.topic == dlq_topic for r in recs) >= 2
                ),
                timeout=60,
            )
            written = [
                Message.model_validate_json(r.value or b"") for r in reader.on(messages_topic)
            ]
            headers = [dict(r.headers)[HEADER].decode() for r in reader.on(messages_topic)]
            letters = [DeadLetter.model_validate_json(r.value or b"") for r in reader.on(dlq_topic)]
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 30)

    placeholders = parse_delivery(Platform.instagram, deliveries[0], ctx(ids[0])).messages
    assert sorted(m.message_id for m in written) == sorted(p.message_id for p in placeholders)
    by_id = {m.message_id: m for m in written}
    comment = by_id[placeholders[0].message_id]
    assert comment.text == "Sampah menumpuk, WA saya [PHONE]" and comment.action is Action.edit
    assert comment.thread_key == placeholders[0].thread_key and comment.delivery_id == ids[0]
    caption = by_id[placeholders[1].message_id]
    assert caption.text == "Banjir lagi di Ngagel @pemkot" and caption.text_fetched
    assert sorted(headers) == sorted(dedup_key(m) for m in written)
    assert sorted((d.stage, d.reason) for d in letters) == [
        ("mentions", "fetch_failed"),
        ("mentions", "fetch_refused"),
    ]
    for letter in letters:
        assert letter.source_topic == topic_name(RAW, settings) and letter.payload_b64 is None
        assert GONE not in letter.detail and BROKEN not in letter.detail  # ids never written
    # the 500 was retried once; the 503s were tried ``attempts`` times; 404 once
    assert graph.calls.count((COMMENT, "text")) == 2
    assert graph.calls.count((BROKEN, "text")) == 3
    assert graph.calls.count((GONE, "text")) == 1
    assert (CAPTION_MEDIA, "caption") in graph.calls
