"""Citizen acknowledgements: who gets one, what it says, the documented send calls against
local Graph API and X API servers, and the marker that lets route ignore the echo."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp

from common.produce import MemorySink
from common.registry import Registry
from schemas.commands import Command, CommandType, ack_text_digest
from services.ingest.privacy import mask_text
from services.notify.channels.reply import ReplyChannel
from services.notify.plan import ReplyTarget, plan_ack
from services.notify.render import Renderer, tracking_number
from services.notify.settings import NotifySettings
from services.notify.store import Store
from tests.notify.conftest import Harness, Planned, registry_yaml, routed, write_registry
from tests.notify.servers import GraphStub, XStub
from tests.notify.test_delivery import _statuses_settle

DESK = "https://desk.example.go.id/desk"
IG, FB, X = "17841400000000001", "100000000000001", "1500000000000000001"


def ack_registry(tmp_path: Path) -> Registry:
    data = registry_yaml()
    data["accounts"] = [
        {"platform": "instagram", "platform_id": IG, "agency_id": "pu", "app_secret_env": "S",
         "acknowledge": True, "reply_token_env": "TEST_IG_TOKEN"},
        {"platform": "facebook", "platform_id": FB, "agency_id": "pu", "app_secret_env": "S"},
        {"platform": "x", "platform_id": X, "agency_id": "pu", "app_secret_env": "S",
         "acknowledge": True, "reply_token_env": "TEST_X_TOKEN"},
    ]  # fmt: skip
    return write_registry(tmp_path / "r.yaml", data)


def target(platform: str = "instagram", account: str = IG, kind: str = "comment") -> ReplyTarget:
    return ReplyTarget(platform=platform, account_id=account, kind=kind,
                       platform_message_id="17900000000000042")  # fmt: skip


def test_only_routed_complaints_on_acknowledging_accounts_get_one(tmp_path: Path) -> None:
    reg = ack_registry(tmp_path)
    (d,) = plan_ack(routed(1), target(), reg)
    assert (
        str(d.channel) == "reply:instagram:instagram:179000000001" and d.lane == "reply:instagram"
    )
    assert d.notice.role == "citizen" and d.notice.reply == target()
    assert plan_ack(routed(1), target("facebook", FB), reg) == []  # acknowledge off (default)
    assert plan_ack(routed(1), None, reg) == []  # nothing known about where it was written
    assert plan_ack(routed(1), target(kind="dm"), reg) == []  # DMs need the citizen's own id
    rerouted = routed(1, event_type="rerouted", event_id="x:rerouted:1")
    assert plan_ack(rerouted, target(), reg) == []  # the citizen was told at first routing


def test_acknowledgement_text_survives_ingest_masking_unchanged(tmp_path: Path) -> None:
    """The echo comes back through ingest's masker; the digest must still match."""
    reg = ack_registry(tmp_path)
    renderer = Renderer(reg, DESK)
    for n in range(1, 200):
        (d,) = plan_ack(routed(n, agency="mks-pu" if n % 2 else "pu"), target(), reg)
        text = renderer.acknowledgement(d.notice)
        assert mask_text(text) == text
        assert ack_text_digest(mask_text(text)) == ack_text_digest(text)


def test_acknowledgement_says_tracking_number_and_deadline_in_indonesian(tmp_path: Path) -> None:
    reg = ack_registry(tmp_path)
    (d,) = plan_ack(routed(1, agency="mks-pu"), target(), reg)
    text = Renderer(reg, DESK).acknowledgement(d.notice)
    assert text.startswith("Terima kasih, aduan Anda sudah kami terima")
    assert tracking_number("instagram:179000000001") in text
    assert "Dinas PU Makassar" in text and "Senin, 23 November 2026 14.00 WITA" in text


def _channel(
    platform: str, reg: Registry, stub: Any, sink: MemorySink, http: aiohttp.ClientSession
) -> ReplyChannel:
    ns = NotifySettings(graph_base_url=stub.base, x_base_url=stub.base)
    secrets = {"TEST_IG_TOKEN": "page-token", "TEST_X_TOKEN": "x-user-token"}
    return ReplyChannel(
        platform, ns, reg, secrets.get, Renderer(reg, DESK), http, sink, "t.commands"
    )


def _rows(event: Any, reg: Registry, t: ReplyTarget) -> list[Planned]:
    return [Planned(d, "t.routes:0", 0, b"k", b"{}") for d in plan_ack(event, t, reg)]


async def test_instagram_comment_reply_and_the_marker_written_before_it(
    store: Store, tmp_path: Path
) -> None:
    reg = ack_registry(tmp_path)
    graph = await GraphStub().start_api()
    commands_before: list[int] = []
    try:
        async with aiohttp.ClientSession() as http:
            h = Harness(store, {})
            ch = _channel("instagram", reg, graph, h.sink, http)
            graph.before_answer = lambda: commands_before.append(len(h.sink.on("t.commands")))
            h.dispatcher.channels["reply:instagram"] = ch
            async with h:
                await h.submit(_rows(routed(1), reg, target()))
                await _statuses_settle(h, ["delivered"])
                (rec,) = h.sink.on("t.commands")
        assert commands_before == [1]  # the marker was durable before the reply was posted
        assert graph.paths == ["/v21.0/17900000000000042/replies"]
        (got,) = graph.requests
        cmd = Command.model_validate_json(rec.value or b"")
        assert cmd.type is CommandType.auto_acknowledged and cmd.actor == "notify"
        assert cmd.complaint_id == "instagram:179000000001" and rec.key == b"instagram:18000:1"
        assert cmd.text_sha256 == ack_text_digest(got.json["message"])
        (row,) = await store.rows()
        assert row["receipt"] == "179009900000001"  # the reply's own comment id
    finally:
        await graph.stop()


async def test_x_reply_shape(store: Store, tmp_path: Path) -> None:
    reg = ack_registry(tmp_path)
    api = await XStub().start_api()
    try:
        async with aiohttp.ClientSession() as http:
            h = Harness(store, {})
            h.dispatcher.channels["reply:x"] = _channel("x", reg, api, h.sink, http)
            async with h:
                t = ReplyTarget(platform="x", account_id=X, kind="tweet",
                                platform_message_id="1860000000000000001")  # fmt: skip
                await h.submit(_rows(routed(1, complaint_id="x:1860000000000000001"), reg, t))
                await _statuses_settle(h, ["delivered"])
        (got,) = api.requests
        assert got.json["reply"] == {"in_reply_to_tweet_id": "1860000000000000001"}
        assert "Nomor aduan: ADU-" in got.json["text"]
    finally:
        await api.stop()


async def test_a_missing_token_is_dead_lettered(store: Store, tmp_path: Path) -> None:
    reg = ack_registry(tmp_path)
    graph = await GraphStub().start_api()
    try:
        async with aiohttp.ClientSession() as http:
            h = Harness(store, {})
            ns = NotifySettings(graph_base_url=graph.base)
            ch = ReplyChannel("instagram", ns, reg, lambda _: None, Renderer(reg, DESK), http,
                              h.sink, "t.commands")  # fmt: skip
            h.dispatcher.channels["reply:instagram"] = ch
            async with h:
                await h.submit(_rows(routed(1), reg, target()))
                await _statuses_settle(h, ["dead"])
                assert not h.sink.on("t.commands") and not graph.seen
    finally:
        await graph.stop()
