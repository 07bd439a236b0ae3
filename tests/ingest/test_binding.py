"""A secret authenticates accounts, not a platform; ops endpoints stay off the public port;
limits per delivery. In-process (aiohttp's test server in front of the real
``IngestService``, writing to a ``MemorySink``), with a registry of two Meta apps, two X apps
and two generic senders."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from common.produce import MemorySink
from common.registry import Registry
from services.ingest import app as ingest_app
from services.ingest.app import ByteBudget
from services.ingest.dedup import DedupStore
from services.ingest.privacy import Pseudonymizer
from services.ingest.settings import IngestSettings
from services.ingest.signatures import x_signature
from tests.ingest.helpers import (
    FB,
    FB_B,
    IG,
    IG_B,
    META_B_SECRET,
    META_SECRET,
    X2_SECRET,
    X_B,
    X_SECRET,
    fixture,
    generic,
    meta,
    two_app_registry,
)
from tests.ingest.test_http_answers import (
    DEADLETTER_TOPIC,
    MESSAGES_TOPIC,
    RAW_TOPIC,
    SETTINGS,
    Ingest,
)


async def _service(registry: Registry, ingest_settings: IngestSettings) -> AsyncIterator[Ingest]:
    sink = MemorySink(partitions=6)
    now = [time.time()]
    service = ingest_app.IngestService(
        SETTINGS,
        registry,
        sink,
        Pseudonymizer(b"test-pseudonym-key"),
        ingest_settings,
        dedup=DedupStore(ingest_settings.dedup_window_s, clock=lambda: now[0]),
    )
    service.ready = True
    async with TestClient(TestServer(ingest_app.build_app(service))) as client:
        yield Ingest(client, sink, now)


@pytest.fixture
async def ingest(secrets: None) -> AsyncIterator[Ingest]:
    async for i in _service(two_app_registry(), IngestSettings(max_entries=5)):
        yield i


def _ig(*accounts: str, text: str = "Jalan rusak di Rungkut") -> bytes:
    entries = [
        {"id": acc, "time": 1795309200, "changes": [{"field": "comments", "value": {
            "id": f"1786{acc[-3:]}{i:09d}", "text": text, "media": {"id": "18068000000000001"},
            "from": {"id": "232323232", "username": "warga"}}}]}
        for i, acc in enumerate(accounts)
    ]  # fmt: skip
    return orjson.dumps({"object": "instagram", "entry": entries})


def _x(for_user: str) -> bytes:
    body = orjson.loads(fixture("x_direct_messages.json"))
    body["for_user_id"] = for_user
    return orjson.dumps(body)


async def test_meta_secret_authenticates_only_its_own_apps_accounts(ingest: Ingest) -> None:
    both = _ig(IG, IG_B)
    for secret in (META_SECRET, META_B_SECRET):
        status, answer = await ingest.post("instagram", both, meta(both, secret))
        assert (status, answer["error"]) == (403, "foreign_account")
    assert ingest.sink.records == []
    a, b = _ig(IG), _ig(IG_B)
    assert (await ingest.post("instagram", b, meta(b, META_SECRET)))[0] == 403
    assert (await ingest.post("instagram", a, meta(a, META_B_SECRET)))[0] == 403
    assert ingest.sink.records == []
    assert (await ingest.post("instagram", a, meta(a, META_SECRET)))[0] == 200
    assert (await ingest.post("instagram", b, meta(b, META_B_SECRET)))[0] == 200
    agencies = {orjson.loads(v)["agency_id"] for v in ingest.values(MESSAGES_TOPIC)}
    assert agencies == {"sby-communication", "mks-public-works"}


async def test_the_url_names_the_app_before_anything_is_read(ingest: Ingest) -> None:
    b = _ig(IG_B)
    assert (await ingest.post("instagram/kominfo-b", b, meta(b, META_B_SECRET)))[0] == 200
    a = _ig(IG)
    # app A's genuine delivery, posted to app B's URL: B's secret does not verify it
    status, answer = await ingest.post("instagram/kominfo-b", a, meta(a, META_SECRET))
    assert (status, answer["error"]) == (403, "forged")
    assert (await ingest.post("instagram/no-such-app", a, meta(a, META_SECRET)))[0] == 403
    assert len(ingest.values(RAW_TOPIC)) == 1


async def test_facebook_page_of_another_app_is_refused(ingest: Ingest) -> None:
    body = orjson.loads(fixture("facebook_feed.json"))
    body["entry"][0]["id"] = FB_B
    forged = orjson.dumps(body)
    status, answer = await ingest.post("facebook", forged, meta(forged, META_SECRET))
    assert (status, answer["error"]) == (403, "foreign_account")
    genuine = fixture("facebook_feed.json")
    assert FB in genuine.decode()
    assert (await ingest.post("facebook", genuine, meta(genuine, META_SECRET)))[0] == 200


async def test_x_consumer_secret_authenticates_only_its_apps_accounts(ingest: Ingest) -> None:
    for body, secret in ((_x(X_B), X_SECRET), (_x("1500000000000000001"), X2_SECRET)):
        headers = {"x-twitter-webhooks-signature": x_signature(secret, body)}
        status, answer = await ingest.post("x", body, headers)
        assert (status, answer["error"]) == (403, "foreign_account")
    assert ingest.sink.records == []
    body = _x(X_B)
    headers = {"x-twitter-webhooks-signature": x_signature(X2_SECRET, body)}
    assert (await ingest.post("x/x-kedua", body, headers))[0] == 200


async def test_x_crc_answers_per_app(ingest: Ingest) -> None:
    token = "c2VjcmV0LWNyYy10b2tlbi1mcm9tLXg="
    resp = await ingest.client.get("/webhooks/x", params={"crc_token": token})
    assert (resp.status, (await resp.json())["error"]) == (400, "name_the_app")
    for label, secret in (("x-kedua", X2_SECRET), ("aduan-x-consumer-secret", X_SECRET)):
        resp = await ingest.client.get(f"/webhooks/x/{label}", params={"crc_token": token})
        assert await resp.json() == {"response_token": x_signature(secret, token.encode())}


async def test_generic_sender_is_named_first_and_must_match_the_body(ingest: Ingest) -> None:
    body = fixture("generic_reports.json")  # account_id web-sby
    lapor = generic(body, secret="lapor-secret", account="lapor-sby")
    status, answer = await ingest.post("generic", body, lapor)
    assert (status, answer["error"]) == (403, "foreign_account")
    status, answer = await ingest.post("generic/lapor-sby", body, lapor)
    assert (status, answer["error"]) == (403, "foreign_account")
    # another sender's secret under this sender's name; no sender named at all
    status, _ = await ingest.post("generic", body, generic(body, secret="lapor-secret"))
    assert status == 403
    assert (await ingest.post("generic", body, generic(body, account=None)))[0] == 403
    assert ingest.sink.records == []
    status, answer = await ingest.post("generic/web-sby", body, generic(body, account=None))
    assert (status, answer["messages"]) == (200, 2)


async def test_previous_secret_is_accepted_during_a_rotation(
    ingest: Ingest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADUAN_META_APP_SECRET_PREVIOUS", "the-old-secret")
    async for rotated in _service(two_app_registry(), IngestSettings()):
        body = _ig(IG)
        assert (await rotated.post("instagram", body, meta(body, "the-old-secret")))[0] == 200
        other = _ig(IG_B)  # the old value of app A's secret does not open app B's accounts
        status, answer = await rotated.post("instagram", other, meta(other, "the-old-secret"))
        assert (status, answer["error"]) == (403, "foreign_account")


async def test_public_port_serves_webhooks_and_liveness_only(ingest: Ingest) -> None:
    for path in ("/metrics", "/readyz"):
        assert (await ingest.client.get(path)).status == 404
    resp = await ingest.client.get("/healthz")
    assert (resp.status, await resp.json()) == (200, {"status": "alive"})


# --- limits ----------------------------------------------------------------------------------


async def test_too_many_entries_is_413_and_writes_nothing(ingest: Ingest) -> None:
    body = _ig(*([IG] * 6))  # the fixture's limit is 5
    status, answer = await ingest.post("instagram", body, meta(body))
    assert (status, answer) == (413, {"error": "too_many_entries", "limit": 5})
    wa = orjson.loads(fixture("whatsapp_messages.json"))  # 8 messages in one change
    wa_body = orjson.dumps(wa)
    status, answer = await ingest.post("whatsapp", wa_body, meta(wa_body))
    assert (status, answer["error"]) == (413, "too_many_entries")
    gen = orjson.loads(fixture("generic_reports.json"))
    gen["reports"] = gen["reports"] * 3
    gen_body = orjson.dumps(gen)
    assert (await ingest.post("generic", gen_body, generic(gen_body)))[0] == 413
    x = orjson.loads(fixture("x_account_activity.json"))
    x["tweet_create_events"] = x["tweet_create_events"] * 3
    x_body = orjson.dumps(x)
    headers = {"x-twitter-webhooks-signature": x_signature(X_SECRET, x_body)}
    assert (await ingest.post("x", x_body, headers))[0] == 413
    assert ingest.sink.records == []
    at_the_limit = _ig(*([IG] * 5))
    assert (await ingest.post("instagram", at_the_limit, meta(at_the_limit)))[0] == 200


async def test_over_long_text_and_fields_are_dead_lettered_alone(secrets: None) -> None:
    settings = IngestSettings(max_text_chars=100)
    async for ingest in _service(two_app_registry(), settings):
        long_text = _ig(IG, IG, text="x" * 101)
        status, answer = await ingest.post("instagram", long_text, meta(long_text))
        assert (status, answer["rejected"], answer["messages"]) == (200, 2, 0)
        wa = orjson.loads(fixture("whatsapp_messages.json"))
        loc = wa["entry"][0]["changes"][0]["value"]["messages"][2]["location"]
        loc["address"] = "Jl. " + "panjang " * 200
        body = orjson.dumps(wa)
        status, answer = await ingest.post("whatsapp", body, meta(body))
        assert (status, answer["rejected"]) == (200, 1)
        letters = [orjson.loads(v) for v in ingest.values(DEADLETTER_TOPIC)]
        assert sorted(d["reason"] for d in letters) == [
            "field_too_long",
            "text_too_long",
            "text_too_long",
        ]
        assert all("panjang" not in d["detail"] and "xxx" not in d["detail"] for d in letters)


async def test_byte_budget_queues_then_gives_up() -> None:
    budget = ByteBudget(100)
    assert await budget.take(60, 1.0)
    waiter = asyncio.create_task(budget.take(60, 5.0))
    await asyncio.sleep(0)  # queued behind the first
    assert not waiter.done()
    assert not await budget.take(10, 0.05)  # first come, first served: no overtaking
    budget.give(60)
    assert await waiter and budget.used == 60
    assert not await budget.take(50, 0.05)
    budget.give(60)
    assert budget.used == 0 and await budget.take(1000, 0.05)  # capped at the whole budget


def _values(ingest: Ingest, topic: str) -> list[Any]:
    return [orjson.loads(v) for v in ingest.values(topic)]
