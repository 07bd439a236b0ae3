"""The JSON API on a running desk (real broker, real PostgreSQL): who sees what, the queue,
a complaint's history, actions written to Kafka, and the figures."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import orjson
import pytest

from common.kafka import topic_name
from common.partitioning import murmur2
from common.topics import COMMANDS
from schemas.commands import CommandType
from services.desk import auth
from tests.desk.conftest import Desk
from tests.desk.factories import MON_9, Timeline, full_story
from tests.support import TopicReader

pytestmark = pytest.mark.kafka

ACTIONS: dict[str, dict[str, Any]] = {
    "acknowledge": {},
    "resolve": {"reason": "lubang sudah ditambal"},
    "reopen": {"reason": "warga bilang belum beres"},
    "reroute": {"agency_id": "sby-health", "reason": "bukan wewenang kami"},
}


async def loaded(desk: Desk, t: Timeline) -> None:
    await desk.publish(t.records)
    await desk.wait_events(*(r.event().event_id for r in t.records))


def endpoints(cid: str) -> list[tuple[str, str, dict[str, Any] | None]]:
    return [
        ("GET", f"/api/v1/complaints/{cid}", None),
        *(("POST", f"/api/v1/complaints/{cid}/{a}", body) for a, body in ACTIONS.items()),
    ]


async def test_no_token_a_bad_token_or_a_revoked_token_gets_401_everywhere(desk: Desk) -> None:
    revoked = await desk.token("sby-public-works")
    token_id = await desk.pool.fetchval("SELECT max(token_id) FROM desk_tokens")
    assert await auth.revoke_token(desk.pool, token_id)
    paths = [("GET", "/api/v1/me", None), ("GET", "/api/v1/complaints", None),
             ("GET", "/api/v1/stats", None), *endpoints("instagram:m1")]  # fmt: skip
    for token in (None, "adn_" + "x" * 43, "not-a-token", revoked):
        for method, path, body in paths:
            status, answer, headers = await desk.request(method, path, token, json=body)
            assert status == 401, (token, method, path)
            assert answer["error"] == "unauthorized"
            assert headers["WWW-Authenticate"].startswith("Bearer")


async def test_agency_a_gets_404_on_every_endpoint_for_agency_bs_complaint(desk: Desk) -> None:
    t = Timeline()
    theirs = t.complaint("instagram:b1", agency_id="sby-health", agency_kind="health")
    mine = t.complaint("instagram:a1")  # sby-public-works
    await loaded(desk, t)
    a = await desk.token("sby-public-works")
    b = await desk.token("sby-health")
    for method, path, body in endpoints(theirs):
        status, answer, _ = await desk.request(method, path, a, json=body)
        assert status == 404, (method, path, answer)
        nothing = path.replace(theirs, "instagram:does-not-exist")
        assert (status, answer) == (await desk.request(method, nothing, a, json=body))[:2]
    # Lists and filters never reveal it either.
    for query in ("", "?status=all", "?agency=sby-health", "?q=berlubang", "?category=roads"):
        status, page, _ = await desk.request("GET", f"/api/v1/complaints{query}", a)
        assert status == 200 and theirs not in {c["complaint_id"] for c in page["items"]}
    status, page, _ = await desk.request("GET", "/api/v1/complaints", a)
    assert [c["complaint_id"] for c in page["items"]] == [mine]
    status, _, _ = await desk.request("GET", "/api/v1/stats?agency=sby-health", a)
    assert status == 403
    # And B sees its own.
    status, detail, _ = await desk.request("GET", f"/api/v1/complaints/{theirs}", b)
    assert status == 200 and detail["agency_id"] == "sby-health" and detail["role"] == "assigned"
    # Nothing was written for A's attempts.
    async with TopicReader(desk.settings.bootstrap_servers,
                           topic_name(COMMANDS, desk.settings)) as reader:  # fmt: skip
        assert await reader.drain(quiet_s=0.5) == []


async def test_rerouted_away_agency_reads_but_cannot_act_and_escalation_targets_see_it(
    desk: Desk,
) -> None:
    t = Timeline()
    cid = full_story(t)  # public-works -> escalated to secretariat/inspectorate -> environment
    await loaded(desk, t)
    former = await desk.token("sby-public-works")
    status, detail, _ = await desk.request("GET", f"/api/v1/complaints/{cid}", former)
    assert status == 200 and detail["role"] == "former"
    status, answer, _ = await desk.request("POST", f"/api/v1/complaints/{cid}/resolve", former)
    assert status == 409 and answer["error"] == "not_your_complaint"
    queue = (await desk.request("GET", "/api/v1/complaints", former))[1]
    assert queue["items"] == []  # no longer in its open queue
    inspectorate = await desk.token("sby-inspectorate")
    queue = (await desk.request("GET", "/api/v1/complaints", inspectorate))[1]
    assert [(c["complaint_id"], c["role"]) for c in queue["items"]] == [(cid, "escalation")]
    unrelated = await desk.token("sby-education")
    assert (await desk.request("GET", f"/api/v1/complaints/{cid}", unrelated))[0] == 404


async def test_detail_has_clocks_and_the_whole_history_with_actors(desk: Desk) -> None:
    t = Timeline()
    cid = full_story(t)
    await loaded(desk, t)
    status, d, _ = await desk.request("GET", f"/api/v1/complaints/{cid}", await desk.token())
    assert status == 200
    assert [h["event_type"] for h in d["history"]] == [
        "routed", "acknowledge", "acknowledged", "warning", "overdue", "escalated", "escalated",
        "escalated", "reroute", "rerouted", "responded", "resolve", "resolved", "reopen",
        "reopened",
    ]  # fmt: skip
    reroute = next(h for h in d["history"] if h["event_type"] == "rerouted")
    assert reroute["previous_agency_id"] == "sby-public-works"
    assert reroute["reason"] == "bukan wewenang: saluran air"
    assert next(h for h in d["history"] if h["event_type"] == "acknowledge")["actor"] == "budi"
    assert [c["clock"] for c in d["clocks"]] == ["resolution"]
    assert d["escalation_level"] == 3 and d["reroutes"] == 1 and d["first_response_met"] is True


async def test_queue_is_ordered_by_nearest_due_time_and_pages_without_gaps(desk: Desk) -> None:
    t = Timeline()
    ids = [
        t.complaint(f"instagram:q{i}", MON_9 + timedelta(minutes=37 * ((i * 7) % 13)),
                    category="roads" if i % 2 else "waste")
        for i in range(13)
    ]  # fmt: skip
    t.command("instagram:q0", CommandType.resolve, MON_9 + timedelta(hours=1))
    await loaded(desk, t)
    token = await desk.token("sby-public-works")
    seen: list[dict[str, Any]] = []
    cursor = ""
    while True:
        status, page, _ = await desk.request("GET", f"/api/v1/complaints?limit=5{cursor}", token)
        assert status == 200
        seen += page["items"]
        if page["next_cursor"] is None:
            break
        cursor = f"&cursor={page['next_cursor']}"
    assert {c["complaint_id"] for c in seen} == set(ids) - {ids[0]}  # resolved one not open
    dues = [c["due_at"] for c in seen]
    assert dues == sorted(dues) and len(seen) == len(set(c["complaint_id"] for c in seen))
    status, page, _ = await desk.request("GET", "/api/v1/complaints?status=resolved", token)
    assert [c["complaint_id"] for c in page["items"]] == [ids[0]]
    status, page, _ = await desk.request(
        "GET", "/api/v1/complaints?category=waste&limit=500", token
    )
    assert page["items"] and all(c["category"] == "waste" for c in page["items"])
    status, page, _ = await desk.request(
        "GET", "/api/v1/complaints?q=BERLUBANG&platform=instagram&region=35&urgency=normal", token
    )
    assert len(page["items"]) == 12
    # Overdue: past the nearest due time now (the desk's clock), whether or not route's
    # overdue event has arrived yet.
    desk.set_now(MON_9 + timedelta(hours=1))
    assert (await desk.request("GET", "/api/v1/complaints?status=overdue", token))[1]["items"] == []
    now = MON_9 + timedelta(hours=8)
    desk.set_now(now)
    status, page, _ = await desk.request("GET", "/api/v1/complaints?status=overdue", token)
    late = [c for c in seen if datetime.fromisoformat(c["due_at"]) < now]
    assert 0 < len(late) < len(seen)
    assert [c["complaint_id"] for c in page["items"]] == [c["complaint_id"] for c in late]
    assert all(c["overdue"] for c in page["items"])


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("?status=late", "invalid_query"),
        ("?limit=0", "invalid_query"),
        ("?nonsense=1", "invalid_query"),
        ("?cursor=abc", "invalid_cursor"),
        ("?due_before=yesterday", "invalid_query"),
        ("?limit=5&limit=6", "invalid_query"),
    ],
)
async def test_a_malformed_query_is_a_400_naming_the_field(
    desk: Desk, query: str, error: str
) -> None:
    status, answer, _ = await desk.request("GET", f"/api/v1/complaints{query}", await desk.token())
    assert status == 400 and answer["error"] == error


async def test_an_action_lands_on_the_commands_topic_keyed_and_partitioned_by_thread(
    desk: Desk,
) -> None:
    t = Timeline()
    cid = t.complaint("instagram:act1")
    await loaded(desk, t)
    token = await desk.token("sby-public-works", label="Siti")
    status, accepted, _ = await desk.request(
        "POST", f"/api/v1/complaints/{cid}/reroute", token,
        json={"agency_id": "sby-health", "reason": "bukan wewenang"},
    )  # fmt: skip
    assert status == 202, accepted
    topic = topic_name(COMMANDS, desk.settings)
    async with TopicReader(desk.settings.bootstrap_servers, topic) as reader:
        (record,) = await reader.wait_for(lambda rs: len(rs) >= 1)
        assert await reader.drain(quiet_s=0.3) == [record]
    assert record.key == b"instagram:act1"
    assert record.partition == (murmur2(record.key) & 0x7FFFFFFF) % 6 == accepted["partition"]
    assert record.offset == accepted["offset"]
    command = orjson.loads(record.value)
    assert command["type"] == "reroute" and command["agency_id"] == "sby-health"
    assert command["complaint_id"] == cid and command["command_id"] == accepted["command_id"]
    assert command["actor"].startswith("desk:sby-public-works:Siti#")
    # The desk records its own command in the history, actor included.
    await desk.wait_events(f"command:{accepted['command_id']}")
    d = (await desk.request("GET", f"/api/v1/complaints/{cid}", token))[1]
    assert d["history"][-1]["actor"] == command["actor"]


async def test_idempotency_key_makes_a_retry_a_no_op(desk: Desk) -> None:
    t = Timeline()
    cid = t.complaint("instagram:idem")
    await loaded(desk, t)
    token = await desk.token("sby-public-works")
    path = f"/api/v1/complaints/{cid}/resolve"
    headers = {"Idempotency-Key": "retry-1"}
    first = await desk.request("POST", path, token, json={"reason": "x"}, headers=headers)
    second = await desk.request("POST", path, token, json={"reason": "x"}, headers=headers)
    assert first[0] == second[0] == 202 and first[1] == second[1]
    assert second[2].get("Idempotency-Replayed") == "true"
    other = await desk.request("POST", path, token, json={"reason": "y"}, headers=headers)
    assert other[0] == 422 and other[1]["error"] == "idempotency_key_reused"
    async with TopicReader(desk.settings.bootstrap_servers,
                           topic_name(COMMANDS, desk.settings)) as reader:  # fmt: skip
        await reader.wait_for(lambda rs: len(rs) >= 1)
        assert len(await reader.drain(quiet_s=0.5)) == 1


@pytest.mark.parametrize(
    ("action", "body", "status", "error"),
    [
        ("reroute", {"agency_id": "sby-nowhere", "reason": "bukan"}, 422, "unknown_agency"),
        ("reroute", {"agency_id": "sby-public-works", "reason": "x y"}, 422, "same_agency"),
        ("reroute", {"agency_id": "sby-health"}, 400, "invalid_body"),
        ("reopen", {"reason": "masih"}, 409, "invalid_state"),
        ("resolve", {"reason": "x", "extra": 1}, 400, "invalid_body"),
        ("resolve", "not json", 400, "invalid_json"),
    ],
)
async def test_actions_are_validated_before_anything_is_sent(
    desk: Desk, action: str, body: Any, status: int, error: str
) -> None:
    t = Timeline()
    cid = t.complaint("instagram:val")
    await loaded(desk, t)
    token = await desk.token("sby-public-works")
    kw: dict[str, Any] = {"json": body} if not isinstance(body, str) else {
        "data": body, "headers": {"Content-Type": "application/json"}}  # fmt: skip
    got, answer, _ = await desk.request("POST", f"/api/v1/complaints/{cid}/{action}", token, **kw)
    assert (got, answer["error"]) == (status, error)
    got, answer, _ = await desk.request(
        "POST", f"/api/v1/complaints/{cid}/resolve", token, data=b"x=1",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )  # fmt: skip
    assert got == 415


async def test_stats_per_agency_and_period(desk: Desk) -> None:
    t = Timeline()
    full_story(t)  # public-works: received, first response missed; environment: answered in time
    t.complaint("instagram:s2", MON_9 + timedelta(days=1))
    t.reply("instagram:s2", MON_9 + timedelta(days=1, hours=1))  # public-works answers in time
    await loaded(desk, t)
    admin = await desk.token()
    status, s, _ = await desk.request(
        "GET", "/api/v1/stats?from=2026-11-01&to=2026-12-01&tz=Asia/Jakarta", admin
    )
    assert status == 200
    rows = {r["agency_id"]: r for r in s["rows"]}
    pw, env = rows["sby-public-works"], rows["sby-environment"]
    assert (pw["received"], pw["answered"], pw["open"]) == (2, 1, 1)
    assert pw["share_met"] == 0.5  # one missed (overdue), one met
    assert pw["first_response_business_seconds_median"] == 3600.0
    assert (env["received"], env["answered"], env["open"], env["share_met"]) == (1, 1, 1, 1.0)
    own = await desk.token("sby-environment")
    status, s, _ = await desk.request("GET", "/api/v1/stats?from=2026-11-01&to=2026-12-01", own)
    assert {r["agency_id"] for r in s["rows"]} == {"sby-environment"}
    status, s, _ = await desk.request(
        "GET", "/api/v1/stats?from=2026-11-01&to=2026-12-01&bucket=day", admin
    )
    assert {r["period_start"][:10] for r in s["rows"] if r["agency_id"] == "sby-public-works"} == {
        "2026-11-22", "2026-11-23", "2026-11-29"}  # fmt: skip
    # WIB days start at 17:00 UTC the day before; the last day carries the open snapshot.


async def test_me_and_the_openapi_document(desk: Desk) -> None:
    token = await desk.token("sby-health", label="Rina")
    status, me, _ = await desk.request("GET", "/api/v1/me", token)
    assert me == {"scope": "agency", "agency_id": "sby-health", "label": "Rina"}
    status, doc, _ = await desk.request("GET", "/api/v1/openapi.json")
    assert status == 200 and doc["openapi"] == "3.1.0"


async def test_with_an_ops_port_metrics_and_readiness_are_served_there_only(
    kafka_bootstrap: str, topic_prefix: str, database_url: str
) -> None:
    import aiohttp

    from common.broker import free_port
    from services.desk import service
    from services.desk.settings import DeskSettings
    from tests.desk.conftest import desk_settings

    ops = free_port()
    settings = desk_settings(kafka_bootstrap, topic_prefix).model_copy(update={"metrics_port": ops})
    svc = await service.start(settings, DeskSettings(database_url=database_url))
    try:
        async with aiohttp.ClientSession() as s:
            public = f"http://127.0.0.1:{svc.port}"
            async with s.get(f"{public}/metrics") as r:
                assert r.status == 404
            async with s.get(f"{public}/healthz") as r:
                assert r.status == 200
            async with s.get(f"http://127.0.0.1:{ops}/metrics") as r:
                assert r.status == 200 and "aduan_desk_api_requests_total" in await r.text()
    finally:
        await svc.stop()
