"""The ingest service through a real broker: signatures, HTTP rules, dedup across restarts,
and the broker going away (503) and coming back (the retry lands exactly once)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import orjson
import pytest

from common.kafka import topic_name
from common.settings import Settings
from common.topics import CATALOG, DEADLETTER, MESSAGES, RAW
from services.ingest import app as ingest_app
from services.ingest.signatures import x_signature
from tests.ingest.helpers import X_SECRET, fixture, generic, meta, mid
from tests.netproxy import ProxiedBroker
from tests.support import TopicReader

pytestmark = pytest.mark.kafka


def make_settings(bootstrap: str, prefix: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "bootstrap_servers": bootstrap,
        "topic_prefix": prefix,
        "http_port": 0,
        "pseudonym_key": "test-pseudonym-key",
        "produce_timeout_s": 1.5,
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[str]:
    runner, service = await ingest_app.start(settings)
    try:
        yield f"http://127.0.0.1:{service.port}/webhooks"
    finally:
        await ingest_app.stop(runner, service)


async def post(
    url: str, body: bytes, headers: dict[str, str], content_type: str = "application/json"
) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers={"Content-Type": content_type, **headers}) as resp,
    ):
        text = await resp.read()
        try:
            return resp.status, orjson.loads(text)
        except orjson.JSONDecodeError:
            return resp.status, {"text": text.decode(errors="replace")}


async def retry_until_ok(url: str, body: bytes, timeout: float = 30) -> tuple[int, dict[str, Any]]:
    deadline = time.monotonic() + timeout
    statuses = []
    while True:
        status, answer = await post(url, body, meta(body))
        statuses.append(status)
        if status == 200:
            return status, answer
        assert status == 503, (status, answer)
        assert time.monotonic() < deadline, statuses
        await asyncio.sleep(0.2)  # a platform's retry back-off, not a wait for a condition


def topics(settings: Settings) -> dict[str, str]:
    return {t.name: topic_name(t, settings) for t in CATALOG}


async def test_signed_mixed_batches(kafka_bootstrap: str, topic_prefix: str, secrets: None) -> None:
    settings = make_settings(kafka_bootstrap, topic_prefix)
    names = topics(settings)
    wa = fixture("whatsapp_messages.json")
    ig = fixture("instagram_batch_with_bad_entries.json")
    x = fixture("x_account_activity.json")
    gen = fixture("generic_reports.json")
    async with running(settings) as base:
        assert (await post(f"{base}/whatsapp", wa, meta(wa)))[0] == 200
        status, answer = await post(f"{base}/instagram", ig, meta(ig))
        assert status == 200
        assert answer == {
            "status": "ok",
            "messages": 3,  # the media-less comment is kept (tests/ingest/test_parsers.py)
            "duplicates": 0,
            "rejected": 2,
            "skipped": 1,
        }
        x_headers = {"x-twitter-webhooks-signature": x_signature(X_SECRET, x)}
        assert (await post(f"{base}/x", x, x_headers))[0] == 200
        assert (await post(f"{base}/generic", gen, generic(gen)))[0] == 200

    async with TopicReader(kafka_bootstrap, *names.values()) as reader:
        await reader.wait_for(
            lambda r: len([x for x in r if x.topic == names[MESSAGES.name]]) >= 14
        )
        await reader.drain(quiet_s=0.5)
    messages = [orjson.loads(r.value) for r in reader.on(names[MESSAGES.name])]
    assert len(messages) == 7 + 3 + 2 + 2
    ids = {m["message_id"] for m in messages}
    assert {
        mid("instagram:17865799348089101"),
        mid("x:1860000000000000002"),
        mid("generic:web-sby:F-2026-000124"),
    } <= ids
    for record in reader.on(names[MESSAGES.name]):
        body = orjson.loads(record.value)
        assert record.key == body["thread_key"].encode()
        assert dict(record.headers)["dedup"] == body["message_id"].encode()
        assert b"6281234567890" not in record.value and b"Siti Aminah" not in record.value
    raw = reader.on(names[RAW.name])
    assert len(raw) == 4 and raw[0].value in {wa, ig, x, gen}
    letters = [orjson.loads(r.value) for r in reader.on(names[DEADLETTER.name])]
    assert sorted(d["reason"] for d in letters) == ["malformed_entry", "unknown_account"]
    assert all(d["source_topic"] == names[RAW.name] and d["payload_b64"] is None for d in letters)


async def test_same_delivery_three_times_with_a_restart_gives_one_message(
    kafka_bootstrap: str, topic_prefix: str, secrets: None
) -> None:
    settings = make_settings(kafka_bootstrap, topic_prefix)
    names = topics(settings)
    body = fixture("facebook_feed.json")
    async with running(settings) as base:
        status, first = await post(f"{base}/facebook", body, meta(body))
        assert (status, first["messages"], first["duplicates"]) == (200, 4, 0)
    async with running(settings) as base:  # a fresh process state: store rebuilt from Kafka
        for _ in range(2):
            status, again = await post(f"{base}/facebook", body, meta(body))
            assert (status, again["messages"], again["duplicates"]) == (200, 0, 4)
    async with TopicReader(kafka_bootstrap, names[MESSAGES.name], names[RAW.name]) as reader:
        await reader.wait_for(lambda r: len(r) >= 7)
        await reader.drain(quiet_s=0.5)
    assert len(reader.on(names[RAW.name])) == 3  # every delivery is on record
    messages = [orjson.loads(r.value) for r in reader.on(names[MESSAGES.name])]
    assert len(messages) == 4
    assert sorted(m["action"] for m in messages) == ["add", "add", "edit", "remove"]


@pytest.mark.parametrize("failure", ["unreachable", "slow"])
async def test_broker_down_gives_503_and_the_retry_lands_once(
    topic_prefix: str, secrets: None, failure: str
) -> None:
    """The platform's retry after a 503 lands exactly once, whether the broker was
    unreachable (nothing stored) or only slow (the first attempt's records may land late,
    while the retry is already knocking)."""
    broker = await ProxiedBroker().start()
    settings = make_settings(broker.bootstrap_servers, topic_prefix, produce_timeout_s=1.0)
    names = topics(settings)
    first = fixture("whatsapp_echoes.json")
    body = fixture("whatsapp_statuses.json")
    try:
        async with running(settings) as base:
            assert (await post(f"{base}/whatsapp", first, meta(first)))[0] == 200
            if failure == "unreachable":
                await broker.proxy.cut()
            else:
                broker.proxy.pause()
            started = time.monotonic()
            status, _ = await post(f"{base}/whatsapp", body, meta(body))
            assert status == 503
            assert time.monotonic() - started < 3  # bounded by produce_timeout_s
            if failure == "unreachable":
                await broker.proxy.start()
            else:
                broker.proxy.resume()
            status, answer = await retry_until_ok(f"{base}/whatsapp", body)
            assert answer["messages"] + answer["duplicates"] == 4, answer
            status, answer = await retry_until_ok(f"{base}/whatsapp", body)
            assert (answer["messages"], answer["duplicates"]) == (0, 4)
        async with TopicReader(broker.bootstrap_servers, names[MESSAGES.name]) as reader:
            await reader.wait_for(lambda r: len(r) >= 5)
            await reader.drain(quiet_s=1.0)
        ids = [orjson.loads(r.value)["message_id"] for r in reader.records]
        assert len(ids) == len(set(ids)) == 5
    finally:
        await broker.stop()
