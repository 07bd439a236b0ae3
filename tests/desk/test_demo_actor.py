"""``make run``'s demo desk: tokens issued, and the bot acting through the real API."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from common.kafka import topic_name
from common.topics import COMMANDS
from services.demo import desk as demo_desk
from services.desk import auth
from tests.desk.conftest import Desk
from tests.desk.factories import Timeline
from tests.support import TopicReader

pytestmark = pytest.mark.kafka


async def test_the_demo_bot_acknowledges_through_the_api(desk: Desk, database_url: str) -> None:
    tokens = await demo_desk.prepare(database_url)
    agency = await auth.principal_for_token(desk.pool, tokens.agency)
    assert agency is not None and agency.agency_id == demo_desk.DEMO_AGENCY
    t = Timeline()
    for i in range(3):
        t.complaint(f"instagram:demo{i}")
    await desk.publish(t.records)
    await desk.wait_events(*(r.event().event_id for r in t.records))
    stop = asyncio.Event()
    actor = asyncio.create_task(demo_desk.run_desk_actor(desk.url, tokens.bot, stop, every_s=0.05))
    try:
        async with TopicReader(desk.settings.bootstrap_servers,
                               topic_name(COMMANDS, desk.settings)) as reader:  # fmt: skip
            records = await reader.wait_for(lambda rs: len(rs) >= 1)
    finally:
        stop.set()
        await actor
    command = orjson.loads(records[0].value)
    assert command["type"] == "acknowledge" and command["actor"].startswith("desk:admin:demo-bot#")
