"""End to end through the real broker: signed webhook → ingest → classify → route."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import orjson
import pytest

from common.kafka import topic_name
from common.settings import Settings
from common.topics import CATALOG, ROUTES
from services.classify import processor as classify_processor
from services.demo.generator import instagram_comment
from services.ingest import app as ingest_app
from services.ingest.privacy import Pseudonymizer
from services.ingest.signatures import meta_signature
from services.route.app import create_app
from tests.support import TopicReader

pytestmark = pytest.mark.kafka

SECRET = "test-app-secret"
IG_ACCOUNT = "17841400000000001"  # in deploy/config/registry.yaml


@pytest.fixture
async def pipeline(
    kafka_bootstrap: str, topic_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Settings]:
    monkeypatch.setenv("ADUAN_META_APP_SECRET", SECRET)
    monkeypatch.setenv("ADUAN_META_VERIFY_TOKEN", "verify-me")
    settings = Settings(
        bootstrap_servers=kafka_bootstrap,
        topic_prefix=topic_prefix,
        consumer_group_prefix=topic_prefix.rstrip("."),
        http_port=0,
        pseudonym_key="test-pseudonym-key",
    )
    runner, service = await ingest_app.start(settings)
    stop = asyncio.Event()
    classify = asyncio.create_task(classify_processor.run(settings, stop))
    route = create_app(settings).app
    await route.start()
    settings_with_port = settings.model_copy(update={"http_port": service.port})
    try:
        yield settings_with_port
    finally:
        stop.set()
        await route.stop()
        await classify
        await ingest_app.stop(runner, service)


async def post(settings: Settings, body: bytes, signature: str) -> int:
    url = f"http://127.0.0.1:{settings.http_port}/webhooks/instagram"
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            url,
            data=body,
            headers={"Content-Type": "application/json", "X-Hub-Signature-256": signature},
        ) as resp,
    ):
        return resp.status


async def test_signed_comment_is_routed_and_forged_one_writes_nothing(pipeline: Settings) -> None:
    settings = pipeline
    body = instagram_comment(
        "17900000000000001", "Jalan rusak berlubang di Rungkut, tolong diperbaiki"
    )
    assert await post(settings, body, meta_signature(SECRET, body)) == 200

    forged = instagram_comment("17900000000000002", "Sampah menumpuk di TPS dekat pasar")
    assert await post(settings, forged, meta_signature("wrong-secret", forged)) == 403

    topics = [topic_name(t, settings) for t in CATALOG]
    async with TopicReader(settings.bootstrap_servers, *topics) as reader:
        routes_topic = topic_name(ROUTES, settings)
        await reader.wait_for(lambda recs: any(r.topic == routes_topic for r in recs), timeout=60)
        routed = [orjson.loads(r.value) for r in reader.on(routes_topic)]
        assert len(routed) == 1
        event = routed[0]
        assert event["event_type"] == "routed"
        # the complaint id is the message id: a keyed pseudonym of the platform's comment id
        complaint = Pseudonymizer(b"test-pseudonym-key").message_id("instagram:17900000000000001")
        assert event["complaint_id"] == complaint
        assert event["category"] == "roads"
        assert event["agency_kind"] == "public_works"
        assert event["agency_id"] == "sby-public-works"
        assert "first_response" in event["due"]
        await reader.drain(quiet_s=1.0)
        # The forged delivery left no trace on any topic (raw included).
        assert not any(b"17900000000000002" in (r.value or b"") for r in reader.records)
        assert not any(b"Sampah menumpuk" in (r.value or b"") for r in reader.records)
