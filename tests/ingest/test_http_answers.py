"""Ingest's HTTP answer table, in-process: aiohttp's test server in front of the real
``IngestService``, writing to an in-memory ``RecordSink`` instead of Kafka.

Covers 400/403/404/413/415/500/503, subscription verification and dedup within a process,
and checks what was written (or that nothing was) in the sink. What needs the broker
(acks, a broker going away, dedup rebuilt after a restart) is in ``test_http.py``."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiokafka.errors import KafkaTimeoutError

from common.kafka import topic_name
from common.produce import MemorySink
from common.settings import Settings
from common.topics import DEADLETTER, MESSAGES, RAW
from schemas.messages import Platform
from services.ingest import app as ingest_app
from services.ingest.dedup import DedupStore
from services.ingest.privacy import Pseudonymizer
from services.ingest.settings import IngestSettings
from services.ingest.signatures import x_signature
from tests.ingest.helpers import REGISTRY, X_SECRET, fixture, generic, meta

SETTINGS = Settings(topic_prefix="t.", pseudonym_key="test-pseudonym-key", produce_timeout_s=1.0)
RAW_TOPIC, MESSAGES_TOPIC, DEADLETTER_TOPIC = (
    topic_name(t, SETTINGS) for t in (RAW, MESSAGES, DEADLETTER)
)


class Ingest:
    """An in-process ingest: ``post``/``get`` through aiohttp's test client; its dedup store
    runs on a clock the test moves (``later``)."""

    def __init__(self, client: TestClient[Any, Any], sink: MemorySink, now: list[float]) -> None:
        self.client, self.sink, self._now = client, sink, now

    def later(self, seconds: float) -> None:
        self._now[0] += seconds

    async def post(
        self, path: str, body: bytes, headers: dict[str, str], ctype: str = "application/json"
    ) -> tuple[int, dict[str, Any]]:
        resp = await self.client.post(
            f"/webhooks/{path}", data=body, headers={"Content-Type": ctype, **headers}
        )
        text = await resp.read()
        try:
            return resp.status, orjson.loads(text)
        except orjson.JSONDecodeError:
            return resp.status, {"text": text.decode(errors="replace")}

    def values(self, topic: str) -> list[bytes]:
        return [r.value or b"" for r in self.sink.on(topic)]


@pytest.fixture
async def ingest(secrets: None) -> AsyncIterator[Ingest]:
    sink = MemorySink(partitions=6)
    now = [time.time()]
    ingest_settings = IngestSettings(max_body_bytes=64 * 1024)
    service = ingest_app.IngestService(
        SETTINGS,
        REGISTRY,
        sink,
        Pseudonymizer(b"test-pseudonym-key"),
        ingest_settings,
        dedup=DedupStore(ingest_settings.dedup_window_s, clock=lambda: now[0]),
    )
    service.ready = True
    async with TestClient(TestServer(ingest_app.build_app(service))) as client:
        yield Ingest(client, sink, now)


async def test_forged_and_refused_requests_write_nothing(ingest: Ingest) -> None:
    ig = fixture("instagram_comments.json")
    x = fixture("x_direct_messages.json")
    gen = fixture("generic_reports.json")
    assert (await ingest.post("instagram", ig, meta(ig, "wrong")))[0] == 403
    assert (await ingest.post("instagram", ig, {}))[0] == 403
    assert (await ingest.post("facebook", ig, meta(ig + b" ")))[0] == 403
    bad_x = {"x-twitter-webhooks-signature": x_signature("wrong", x)}
    assert (await ingest.post("x", x, bad_x))[0] == 403
    old = int(time.time()) - 3600
    status, answer = await ingest.post("generic", gen, generic(gen, ts=old))
    assert (status, answer["error"]) == (403, "replayed")
    assert (await ingest.post("generic", gen, generic(gen, secret="wrong")))[0] == 403
    assert (await ingest.post("instagram", ig, meta(ig), "text/plain"))[0] == 415
    big = b'{"object": "instagram", "entry": [], "pad": "' + b"x" * 70_000 + b'"}'
    assert (await ingest.post("instagram", big, meta(big)))[0] == 413
    assert (await ingest.post("tiktok", ig, meta(ig)))[0] == 404
    assert ingest.sink.records == []
    # the positive marker: a malformed but signed body is kept raw and dead-lettered
    broken = b'{"object": "instagram", "entry": [}'
    status, answer = await ingest.post("instagram", broken, meta(broken))
    assert (status, answer["error"]) == (400, "malformed_json")
    wrong_object = b'{"object": "page", "entry": []}'
    assert (await ingest.post("instagram", wrong_object, meta(wrong_object)))[0] == 400

    assert sorted(ingest.values(RAW_TOPIC)) == sorted([broken, wrong_object])
    assert ingest.values(MESSAGES_TOPIC) == []
    reasons = [orjson.loads(v)["reason"] for v in ingest.values(DEADLETTER_TOPIC)]
    assert reasons == ["malformed_json", "unknown_object"]


async def test_subscription_verification(ingest: Ingest) -> None:
    ok = {"hub.mode": "subscribe", "hub.verify_token": "verify-me", "hub.challenge": "1158201444"}
    resp = await ingest.client.get("/webhooks/whatsapp", params=ok)
    assert (resp.status, await resp.text()) == (200, "1158201444")
    resp = await ingest.client.get("/webhooks/instagram", params={**ok, "hub.verify_token": "no"})
    assert resp.status == 403
    token = "Zm9yZ2Vy-bm90LWEtY3JjLXRva2Vu_YWJj"  # base64url, as X sends
    resp = await ingest.client.get("/webhooks/x", params={"crc_token": token})
    assert await resp.json() == {"response_token": x_signature(X_SECRET, token.encode())}
    label = "aduan-x-consumer-secret"  # the X app's label, derived from its secret's name
    resp = await ingest.client.get(f"/webhooks/x/{label}", params={"crc_token": token})
    assert await resp.json() == {"response_token": x_signature(X_SECRET, token.encode())}
    resp = await ingest.client.get("/webhooks/x", params={"crc_token": '{"for_user_id": "1"}'})
    assert (resp.status, (await resp.json())["error"]) == (400, "bad_crc_token")
    assert ingest.sink.records == []


async def test_parser_bug_keeps_raw_and_answers_500(
    ingest: Ingest, monkeypatch: pytest.MonkeyPatch
) -> None:
    from services.ingest import platforms

    def broken(body: bytes, ctx: object) -> object:
        raise RuntimeError("boom")

    monkeypatch.setitem(platforms.PARSERS, Platform.generic, broken)
    gen = fixture("generic_reports.json")
    status, answer = await ingest.post("generic", gen, generic(gen))
    assert (status, answer["error"]) == (500, "parser_error")
    (letter,) = [orjson.loads(v) for v in ingest.values(DEADLETTER_TOPIC)]
    # the exception's type and where it was raised; never its message (it may quote data)
    assert letter["reason"] == "parser_error" and "boom" not in letter["detail"]
    assert letter["detail"].startswith("RuntimeError at test_http_answers.py:")
    assert ingest.values(RAW_TOPIC) == [gen]


async def test_duplicates_within_a_process_are_written_once(ingest: Ingest) -> None:
    body = fixture("facebook_feed.json")
    status, first = await ingest.post("facebook", body, meta(body))
    assert (status, first["messages"], first["duplicates"]) == (200, 4, 0)
    status, again = await ingest.post("facebook", body, meta(body))
    assert (status, again["messages"], again["duplicates"]) == (200, 0, 4)
    assert len(ingest.values(RAW_TOPIC)) == 2  # every delivery is on record
    assert len(ingest.values(MESSAGES_TOPIC)) == 4
    for record in ingest.sink.on(MESSAGES_TOPIC):
        message = orjson.loads(record.value or b"")
        assert record.key == message["thread_key"].encode()
        assert dict(record.headers)["dedup"].startswith(message["message_id"].encode())


async def test_unacknowledged_write_answers_503_and_the_retry_lands_once(ingest: Ingest) -> None:
    """A write the broker did not acknowledge is a 503. Its records may still land (a
    timeout), so the platform's retry is turned away while that is possible, then writes
    every message exactly once."""
    body = fixture("whatsapp_messages.json")
    ingest.sink.fail = KafkaTimeoutError()
    status, answer = await ingest.post("whatsapp", body, meta(body))
    assert (status, answer["error"]) == (503, "broker_unavailable")
    assert ingest.sink.records == []
    ingest.sink.fail = None
    status, answer = await ingest.post("whatsapp", body, meta(body))
    assert (status, answer["error"]) == (503, "in_flight")
    ingest.later(2 * SETTINGS.produce_timeout_s + 1.5)  # the first attempt's fate is known
    status, answer = await ingest.post("whatsapp", body, meta(body))
    assert (status, answer["duplicates"]) == (200, 0)
    status, again = await ingest.post("whatsapp", body, meta(body))
    assert (status, again["messages"], again["duplicates"]) == (200, 0, answer["messages"])
    ids = [orjson.loads(v)["message_id"] for v in ingest.values(MESSAGES_TOPIC)]
    assert len(ids) == len(set(ids)) == answer["messages"] > 0


async def test_refused_messages_topic_keeps_nothing_claimed(ingest: Ingest) -> None:
    """Only the messages topic refuses: a 503, and a retry after it accepts again writes
    the messages once (the raw record of each attempt stays on record)."""
    body = fixture("x_account_activity.json")
    x_headers = {"x-twitter-webhooks-signature": x_signature(X_SECRET, body)}
    ingest.sink.fail, ingest.sink.fail_topics = ValueError("refused"), frozenset({MESSAGES_TOPIC})
    assert (await ingest.post("x", body, x_headers))[0] == 503
    assert ingest.values(MESSAGES_TOPIC) == []
    ingest.sink.fail = None
    ingest.later(2 * SETTINGS.produce_timeout_s + 1.5)
    status, answer = await ingest.post("x", body, x_headers)
    assert status == 200 and answer["messages"] == 2
    assert len(ingest.values(MESSAGES_TOPIC)) == 2
    assert len(ingest.values(RAW_TOPIC)) == 2


async def test_content_less_events_answer_200_and_are_counted_by_reason(ingest: Ingest) -> None:
    """X's ``user_event`` (app access revoked; no ``for_user_id``) and a WhatsApp reaction
    are skipped: 200, the raw delivery kept, no message, no dead letter, the skip counted."""
    from prometheus_client import REGISTRY as PROM

    from tests.ingest.shapes import SHAPES_DIR

    def counted(platform: str, reason: str) -> float:
        labels = {"platform": platform, "reason": reason}
        return PROM.get_sample_value("aduan_webhook_skipped_total", labels) or 0.0

    before = (counted("x", "account_event"), counted("whatsapp", "reaction"))
    revoke = (SHAPES_DIR / "x" / "user_event_revoke.json").read_bytes()
    sig = {"x-twitter-webhooks-signature": x_signature(X_SECRET, revoke)}
    status, answer = await ingest.post("x", revoke, sig)
    assert (status, answer["skipped"], answer["messages"]) == (200, 1, 0)
    reaction = (SHAPES_DIR / "whatsapp" / "reaction.json").read_bytes()
    status, answer = await ingest.post("whatsapp", reaction, meta(reaction))
    assert (status, answer["skipped"], answer["rejected"]) == (200, 1, 0)
    assert (counted("x", "account_event"), counted("whatsapp", "reaction")) == (
        before[0] + 1,
        before[1] + 1,
    )
    assert len(ingest.values(RAW_TOPIC)) == 2
    assert ingest.values(MESSAGES_TOPIC) == [] and ingest.values(DEADLETTER_TOPIC) == []
