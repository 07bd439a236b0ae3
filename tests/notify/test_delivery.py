"""Deliveries against real local servers: retries, parking, dead letters, rate limits, and
the e-mail as an officer receives it. The dispatcher and the store run for real (PostgreSQL);
only the Kafka consumer is left out (tests/notify/test_notify_broker.py covers it)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import orjson
from aiohttp import web

from schemas.deadletter import DeadLetter
from schemas.sla import SlaEventType
from services.notify.channels.email import EmailChannel
from services.notify.channels.telegram import TelegramChannel
from services.notify.channels.webhook import WebhookChannel
from services.notify.channels.whatsapp import WhatsAppChannel
from services.notify.render import Renderer, tracking_number
from services.notify.store import Store
from tests.notify.conftest import Harness, planned, registry_yaml, routed, sla, write_registry
from tests.notify.servers import SmtpSink, TelegramStub, WebhookReceiver, WhatsAppStub

DESK = "https://desk.example.go.id/desk"


def _webhook(receiver: WebhookReceiver, http: aiohttp.ClientSession, tmp_path: Path) -> tuple:
    registry = write_registry(tmp_path / "r.yaml", registry_yaml(receiver.url))
    renderer = Renderer(registry, DESK)
    return registry, {
        "webhook:pu-system": WebhookChannel(receiver.url, receiver.secret, renderer, http, 2.0)
    }


async def _statuses_settle(h: Harness, want: list[str], timeout: float = 20) -> None:
    async def ok() -> bool:
        return sorted(await h.statuses()) == sorted(want)

    deadline = time.monotonic() + timeout
    while not await ok():
        if time.monotonic() > deadline:
            raise AssertionError(f"statuses {await h.statuses()} != {want}")
        await asyncio.sleep(0.05)


async def test_webhook_500_twice_then_200_is_delivered_once(store: Store, tmp_path: Path) -> None:
    receiver = await WebhookReceiver().start_receiver()
    receiver.fault = lambda n: web.Response(status=500) if n <= 2 else None
    try:
        async with aiohttp.ClientSession() as http:
            registry, channels = _webhook(receiver, http, tmp_path)
            async with Harness(store, channels) as h:
                await h.submit(planned(routed(1), registry, only="webhook"))
                await _statuses_settle(h, ["delivered"])
        assert receiver.seen == 3 and receiver.forged == 0
        assert len(receiver.requests) == 1
        (got,) = receiver.requests
        assert got.json["notice"]["event_id"] == "instagram:179000000001:routed"
        assert got.json["tracking_number"] == tracking_number("instagram:179000000001")
        assert got.headers["X-Aduan-Event"] == "routed"
        (row,) = await store.rows()
        assert row["attempts"] == 3 and row["status"] == "delivered"
    finally:
        await receiver.stop()


async def test_receiver_down_for_a_while_gets_it_after_it_returns(
    store: Store, tmp_path: Path
) -> None:
    receiver = WebhookReceiver()  # not started: connection refused
    async with aiohttp.ClientSession() as http:
        registry, channels = _webhook(receiver, http, tmp_path)
        async with Harness(store, channels) as h:
            await h.submit(planned(routed(1), registry, only="webhook")
                           + planned(routed(2), registry, only="webhook"))  # fmt: skip
            # Both tried and parked while the receiver is down, nothing lost.
            deadline = time.monotonic() + 10
            while True:
                rows = await store.rows()
                if all(r["parks"] >= 1 for r in rows):
                    break
                assert time.monotonic() < deadline, rows
                await asyncio.sleep(0.05)
            assert all(r["status"] == "pending" for r in rows)
            assert all("network" in (r["last_error"] or "") for r in rows)
            await receiver.start_receiver()
            try:
                await _statuses_settle(h, ["delivered", "delivered"])
            finally:
                await receiver.stop()
    assert sorted(r.json["notice"]["complaint_id"] for r in receiver.requests) == [
        "instagram:179000000001", "instagram:179000000002"]  # fmt: skip


async def test_400_is_dead_lettered_with_the_reason(store: Store, tmp_path: Path) -> None:
    receiver = await WebhookReceiver().start_receiver()
    receiver.fault = lambda n: web.Response(status=400, text="unknown complaint schema")
    try:
        async with aiohttp.ClientSession() as http:
            registry, channels = _webhook(receiver, http, tmp_path)
            async with Harness(store, channels) as h:
                event = routed(1)
                await h.submit(
                    planned(event, registry, only="webhook", source="t.routes:0", offset=41)
                )
                await _statuses_settle(h, ["dead"])
                assert receiver.seen == 1  # a 400 is not retried
                (rec,) = h.sink.on("t.deadletter")
                letter = DeadLetter.model_validate_json(rec.value or b"")
                assert letter.stage == "notify" and letter.reason == "http_400"
                assert "webhook" in letter.detail and event.event_id in letter.detail
                assert (letter.source_topic, letter.source_partition, letter.source_offset) == (
                    "t.routes", 0, 41)  # fmt: skip
                assert letter.payload_b64 is not None  # replayable: the event travels with it
    finally:
        await receiver.stop()


async def test_forged_signature_is_refused_by_the_receiver(store: Store, tmp_path: Path) -> None:
    """The receiver really verifies: with another secret, notify's POST is refused."""
    receiver = await WebhookReceiver(secret="the-receivers-secret").start_receiver()
    try:
        async with aiohttp.ClientSession() as http:
            registry = write_registry(tmp_path / "r.yaml", registry_yaml(receiver.url))
            ch = WebhookChannel(receiver.url, "another-secret", Renderer(registry, DESK), http, 2.0)
            async with Harness(store, {"webhook:pu-system": ch}) as h:
                await h.submit(planned(routed(1), registry, only="webhook"))
                await _statuses_settle(h, ["dead"])
        assert receiver.forged == 1 and not receiver.requests
    finally:
        await receiver.stop()


async def test_telegram_429_retry_after_is_honoured(store: Store, tmp_path: Path) -> None:
    api = await TelegramStub().start_api()
    api.fault = lambda n: (
        web.json_response(
            {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 1",
             "parameters": {"retry_after": 1}}, status=429)
        if n == 1 else None
    )  # fmt: skip
    try:
        async with aiohttp.ClientSession() as http:
            registry = write_registry(tmp_path / "r.yaml", registry_yaml())
            ch = TelegramChannel(api.base, api.token, Renderer(registry, DESK), http, 2.0, 30, 0.0)
            async with Harness(store, {"telegram": ch}) as h:
                await h.submit(planned(routed(1), registry, only="telegram"))
                await _statuses_settle(h, ["delivered"])
        stamps = api.arrivals
        assert len(stamps) == 2 and stamps[1] - stamps[0] >= 1.0
        (got,) = api.requests
        assert got.json["chat_id"] == "-100200300"
        assert (
            "Aduan baru" in got.json["text"]
            and tracking_number("instagram:179000000001") in got.json["text"]
        )
        (row,) = await store.rows()
        assert row["receipt"] == "1001" and row["attempts"] == 2
    finally:
        await api.stop()


async def test_telegram_spaces_messages_to_one_chat(store: Store, tmp_path: Path) -> None:
    api = await TelegramStub().start_api()
    try:
        async with aiohttp.ClientSession() as http:
            registry = write_registry(tmp_path / "r.yaml", registry_yaml())
            ch = TelegramChannel(api.base, api.token, Renderer(registry, DESK), http, 2.0, 30, 0.3)
            async with Harness(store, {"telegram": ch}) as h:
                rows = [
                    p for n in range(1, 4) for p in planned(routed(n), registry, only="telegram")
                ]
                await h.submit(rows)
                await _statuses_settle(h, ["delivered"] * 3)
        gaps = [b.at - a.at for a, b in zip(api.requests, api.requests[1:], strict=False)]
        assert len(api.requests) == 3 and min(gaps) >= 0.29
    finally:
        await api.stop()


async def test_whatsapp_template_message_shape(store: Store, tmp_path: Path) -> None:
    api = await WhatsAppStub().start_api()
    try:
        async with aiohttp.ClientSession() as http:
            registry = write_registry(tmp_path / "r.yaml", registry_yaml())
            renderer = Renderer(registry, DESK)
            ch = WhatsAppChannel(api.base, "v21.0", api.phone_number_id, api.token,
                                 "aduan_notifikasi", "id", renderer, http, 2.0)  # fmt: skip
            async with Harness(store, {"whatsapp": ch}) as h:
                await h.submit(planned(routed(1), registry, only="whatsapp"))
                await _statuses_settle(h, ["delivered"])
        (got,) = api.requests
        body = got.json
        assert body["to"] == "6281100000001" and body["type"] == "template"
        assert body["template"]["name"] == "aduan_notifikasi"
        assert body["template"]["language"] == {"code": "id"}
        params = [p["text"] for p in body["template"]["components"][0]["parameters"]]
        assert params[1] == "Dinas Pekerjaan Umum"
        assert params[2] == tracking_number("instagram:179000000001")
        assert params[3] == "Senin, 23 November 2026 13.00 WIB"
        (row,) = await store.rows()
        assert row["receipt"] == "wamid.TEST000001"
    finally:
        await api.stop()


async def test_email_in_indonesian_with_due_time_in_the_agency_zone_and_desk_link(
    store: Store, tmp_path: Path, smtp: SmtpSink, tls_authority: tuple
) -> None:
    registry = write_registry(tmp_path / "r.yaml", registry_yaml())
    ch = EmailChannel(Renderer(registry, DESK), "127.0.0.1", smtp.port, "aduan@example.go.id",
                      starttls=True, username=smtp.username, password=smtp.password,
                      timeout=5, batch=50, cafile=tls_authority[1])  # fmt: skip
    async with Harness(store, {"email": ch}) as h:
        await h.submit(planned(routed(1, agency="mks-pu"), registry, only="email"))
        await _statuses_settle(h, ["delivered"])
    (msg,) = smtp.messages
    assert msg["To"] == "desk@mks.example.go.id"
    assert (
        msg["Subject"]
        == "[Aduan] Aduan baru untuk instansi Anda · Jalan rusak dan berlubang · Dinas PU Makassar"
    )
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    # 02:00 UTC + 4 h = 06:00 UTC = 14.00 WITA (Makassar, UTC+8)
    assert "Batas waktu    : Senin, 23 November 2026 14.00 WITA (tanggapan pertama)" in text
    assert "Instansi       : Dinas PU Makassar" in text
    assert "Kategori       : Jalan rusak dan berlubang" in text
    assert "Urgensi        : tinggi" in text
    link = f"{DESK}/complaints/instagram%3A179000000001"
    assert f"Buka aduan di meja layanan: {link}" in text
    assert f'<a href="{link}">' in html and "14.00 WITA" in html
    assert "[PHONE]" in text  # the masked excerpt, as route sent it


async def test_email_batch_reuses_one_connection_and_html_is_escaped(
    store: Store, tmp_path: Path, smtp: SmtpSink, tls_authority: tuple
) -> None:
    registry = write_registry(tmp_path / "r.yaml", registry_yaml())
    ch = EmailChannel(Renderer(registry, DESK), "127.0.0.1", smtp.port, "aduan@example.go.id",
                      starttls=True, username=smtp.username, password=smtp.password,
                      timeout=5, batch=50, cafile=tls_authority[1])  # fmt: skip
    events = [routed(n, text_excerpt="<script>x</script> got") for n in range(1, 6)]
    rows = [p for e in events for p in planned(e, registry, only="email")]
    async with Harness(store, {"email": ch}) as h:
        await h.submit(rows)
        await _statuses_settle(h, ["delivered"] * 5)
    assert len(smtp.messages) == 5 and ch.connections == 1 and smtp.sessions == 1
    html = smtp.messages[0].get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "<script>" not in html and "&lt;script&gt;" in html


async def test_email_to_an_untrusted_server_is_parked_not_sent(
    store: Store, tmp_path: Path, smtp: SmtpSink
) -> None:
    """STARTTLS to a certificate the client does not trust: nothing is sent (no password
    in the clear); the deployment's problem, so parked (and alerted), never dead-lettered."""
    registry = write_registry(tmp_path / "r.yaml", registry_yaml())
    ch = EmailChannel(Renderer(registry, DESK), "127.0.0.1", smtp.port, "aduan@example.go.id",
                      starttls=True, username=smtp.username, password=smtp.password,
                      timeout=5, batch=50, cafile=None)  # fmt: skip
    async with Harness(store, {"email": ch}) as h:
        await h.submit(planned(routed(1), registry, only="email"))
        deadline = time.monotonic() + 10
        while not (rows := await store.rows())[0]["parks"]:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
    assert rows[0]["status"] == "pending" and not smtp.messages
    assert rows[0]["last_error"].startswith("smtp_connect")  # untrusted certificate: refused


async def test_escalation_reaches_the_head_by_email(
    store: Store, tmp_path: Path, smtp: SmtpSink, tls_authority: tuple
) -> None:
    registry = write_registry(tmp_path / "r.yaml", registry_yaml())
    ch = EmailChannel(Renderer(registry, DESK), "127.0.0.1", smtp.port, "aduan@example.go.id",
                      starttls=True, username=smtp.username, password=smtp.password,
                      timeout=5, batch=50, cafile=tls_authority[1])  # fmt: skip
    event = sla(SlaEventType.escalated, escalation_level=1, escalate_to="head:pu")
    async with Harness(store, {"email": ch}) as h:
        await h.submit(planned(event, registry, source="t.sla:0"))
        await _statuses_settle(h, ["delivered"])
    (msg,) = smtp.messages
    assert msg["To"] == "kadis-pu@example.go.id"
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert text.startswith("Yth. Kepala Dinas Pekerjaan Umum,")
    assert "Eskalasi tingkat 1" in text and "Eskalasi       : tingkat 1" in text


def test_body_is_json(tmp_path: Path) -> None:
    registry = write_registry(tmp_path / "r.yaml", registry_yaml())
    ch = WebhookChannel("http://x", "s", Renderer(registry, DESK), None, 1.0)  # type: ignore[arg-type]
    from services.notify.channels.base import Item

    n = __import__("services.notify.plan", fromlist=["plan"]).plan(routed(1), registry)[0].notice
    body = orjson.loads(ch.body(Item(1, n.event_id, "webhook", "pu-system", n, n.occurred_at)))
    assert body["delivery_id"] == f"{n.event_id}|webhook:pu-system"
    assert body["link"].startswith(DESK)


async def test_stopping_lets_a_delivery_in_flight_finish_and_records_it(
    store: Store, tmp_path: Path
) -> None:
    """A rolling restart must not cut a send off mid-way (it would be sent again after the
    restart): stop waits for it and writes its outcome."""
    receiver = WebhookReceiver(hold=asyncio.Event(), hold_after=0)
    await receiver.start_receiver()
    try:
        async with aiohttp.ClientSession() as http:
            registry, channels = _webhook(receiver, http, tmp_path)
            h = Harness(store, channels)
            await h.__aenter__()
            await h.submit(planned(routed(1), registry, only="webhook"))
            deadline = time.monotonic() + 10
            while receiver.held == 0:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.02)
            stopping = asyncio.create_task(h.dispatcher.stop(grace_s=10))
            lane = h.dispatcher.lanes["webhook:pu-system"]
            while not lane.closing:
                await asyncio.sleep(0.01)
            assert not stopping.done()  # waiting for the send in flight
            receiver.hold.set()
            await stopping
        assert [r["status"] for r in await store.rows()] == ["delivered"]
        assert len(receiver.requests) == 1
    finally:
        await receiver.stop()


async def test_unknown_mailbox_is_dead_lettered_and_the_batch_goes_on(
    store: Store, tmp_path: Path, smtp: SmtpSink, tls_authority: tuple
) -> None:
    """A 550 for one recipient is permanent for that e-mail only; the others of the same
    SMTP session are delivered."""
    smtp.unknown.add("kadis-pu@example.go.id")
    registry = write_registry(tmp_path / "r.yaml", registry_yaml())
    ch = EmailChannel(Renderer(registry, DESK), "127.0.0.1", smtp.port, "aduan@example.go.id",
                      starttls=True, username=smtp.username, password=smtp.password,
                      timeout=5, batch=50, cafile=tls_authority[1])  # fmt: skip
    head = sla(SlaEventType.escalated, escalation_level=1, escalate_to="head:pu")
    rows = planned(head, registry, source="t.sla:0") + planned(routed(2), registry, only="email")
    async with Harness(store, {"email": ch}) as h:
        await h.submit(rows)
        await _statuses_settle(h, ["dead", "delivered"])
        (rec,) = h.sink.on("t.deadletter")
    assert DeadLetter.model_validate_json(rec.value or b"").reason == "smtp_recipient_refused"
    assert [m["To"] for m in smtp.messages] == ["desk-pu@example.go.id"]


async def test_whatsapp_rate_limit_code_is_retried_and_bad_number_dead_lettered(
    store: Store, tmp_path: Path
) -> None:
    api = await WhatsAppStub().start_api()
    api.fault = lambda n: (
        web.json_response({"error": {"code": 130429, "message": "Rate limit hit"}}, status=400)
        if n == 1 else
        web.json_response({"error": {"code": 131026, "message": "Message undeliverable"}},
                          status=400)
        if n == 3 else None
    )  # fmt: skip
    try:
        async with aiohttp.ClientSession() as http:
            registry = write_registry(tmp_path / "r.yaml", registry_yaml())
            renderer = Renderer(registry, DESK)
            ch = WhatsAppChannel(api.base, "v21.0", api.phone_number_id, api.token,
                                 "aduan_notifikasi", "id", renderer, http, 2.0)  # fmt: skip
            ch.concurrency = 1
            async with Harness(store, {"whatsapp": ch}) as h:
                await h.submit(planned(routed(1), registry, only="whatsapp"))
                await _statuses_settle(h, ["delivered"])
                await h.submit(planned(routed(2), registry, only="whatsapp"))
                await _statuses_settle(h, ["delivered", "dead"])
                (rec,) = h.sink.on("t.deadletter")
        letter = DeadLetter.model_validate_json(rec.value or b"")
        assert letter.reason == "http_400" and "(131026)" in letter.detail
        assert len(api.requests) == 1 and api.seen == 3
    finally:
        await api.stop()
