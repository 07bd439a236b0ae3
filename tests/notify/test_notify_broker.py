"""``python -m services.notify`` as a process on the real broker and a real PostgreSQL, with
local receivers: events in, messages out, once, including across a SIGKILL."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiokafka import AIOKafkaProducer

from common import codecs
from common.kafka import ensure_topics, topic_name
from common.settings import Settings
from common.topics import DEADLETTER, ROUTES, SLA
from schemas.deadletter import DeadLetter
from schemas.sla import SlaEventType
from tests.notify.conftest import registry_yaml, routed, sla, write_registry
from tests.notify.servers import SmtpSink, TelegramStub, WebhookReceiver
from tests.support import TopicReader

pytestmark = pytest.mark.kafka
REPO = Path(__file__).resolve().parents[2]


class Notify:
    """Starts and kills notify processes sharing one database and registry."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, **extra: str) -> subprocess.Popen[bytes]:
        out = open(self.log, "ab")  # noqa: SIM115 - owned by the child
        proc = subprocess.Popen(
            [sys.executable, "-m", "services.notify"],
            env={**self.env, **extra}, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""


@pytest.fixture
async def stack(
    kafka_bootstrap: str, topic_prefix: str, database_url: str, tmp_path: Path, smtp: SmtpSink,
    tls_authority: tuple[Any, str],
) -> AsyncIterator[dict[str, Any]]:  # fmt: skip
    settings = Settings(bootstrap_servers=kafka_bootstrap, topic_prefix=topic_prefix)
    await ensure_topics(settings)
    hook = await WebhookReceiver().start_receiver()
    telegram = await TelegramStub().start_api()
    registry_file = tmp_path / "registry.yaml"
    data = registry_yaml(hook.url)
    data["agencies"][0]["channels"] = ["email:desk-pu@example.go.id", "webhook:pu-system",
                                       "telegram:-100200300"]  # fmt: skip
    write_registry(registry_file, data)
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "ADUAN_TOPIC_PREFIX": topic_prefix,
        "ADUAN_CONSUMER_GROUP_PREFIX": topic_prefix.rstrip("."),
        "ADUAN_REGISTRY_FILE": str(registry_file),
        "ADUAN_NOTIFY_DATABASE_URL": database_url,
        "ADUAN_NOTIFY_DESK_URL": "https://desk.example.go.id/desk",
        "ADUAN_NOTIFY_SMTP_PORT": str(smtp.port),
        "ADUAN_NOTIFY_SMTP_USERNAME": smtp.username,
        "ADUAN_NOTIFY_SMTP_PASSWORD": smtp.password,
        "ADUAN_NOTIFY_SMTP_TLS_CAFILE": tls_authority[1],
        "ADUAN_NOTIFY_SMTP_FROM": "aduan@example.go.id",
        "ADUAN_NOTIFY_TELEGRAM_BASE_URL": telegram.base,
        "ADUAN_TELEGRAM_BOT_TOKEN": telegram.token,
        "ADUAN_NOTIFY_TELEGRAM_CHAT_INTERVAL_S": "0",
        "ADUAN_NOTIFY_TELEGRAM_RATE_PER_S": "200",
        "TEST_HOOK_SECRET": hook.secret,
        "ADUAN_NOTIFY_BACKOFF_INITIAL_S": "0.05",
        "ADUAN_NOTIFY_PARK_S": "0.5",
    }
    notify = Notify(env, tmp_path / "notify.log")
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        yield {"settings": settings, "hook": hook, "telegram": telegram, "smtp": smtp,
               "notify": notify, "producer": producer, "db": database_url}  # fmt: skip
    finally:
        notify.stop()
        await producer.stop()
        await hook.stop()
        await telegram.stop()


async def _send(stack: dict[str, Any], spec: Any, events: list[Any]) -> None:
    topic = topic_name(spec, stack["settings"])
    for e in events:
        await stack["producer"].send_and_wait(topic, codecs.dumps(e), key=e.thread_key.encode())


async def _until(cond: Callable[[], Any], what: str, notify: Notify, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{what} not reached within {timeout}s; notify log:\n{notify.tail()}"
            )
        await asyncio.sleep(0.05)


async def _quiet(state: Callable[[], Any], quiet_s: float = 1.0, timeout: float = 15) -> None:
    """Wait until ``state()`` has not changed for ``quiet_s``."""
    deadline = time.monotonic() + timeout
    last, since = state(), time.monotonic()
    while time.monotonic() - since < quiet_s and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        if (now := state()) != last:
            last, since = now, time.monotonic()


async def _count(db: str, sql: str) -> int:
    conn = await asyncpg.connect(db)
    try:
        return int(await conn.fetchval(sql))
    except asyncpg.UndefinedTableError:  # notify has not migrated yet
        return 0
    finally:
        await conn.close()


async def test_events_reach_desk_head_and_systems_and_bad_ones_are_dead_lettered(
    stack: dict[str, Any],
) -> None:
    notify, hook, smtp, telegram = stack["notify"], stack["hook"], stack["smtp"], stack["telegram"]
    notify.start()
    await _send(stack, ROUTES, [routed(1)])
    await _send(stack, SLA, [
        sla(SlaEventType.escalated, escalation_level=1, escalate_to="head:pu"),
        sla(SlaEventType.escalated, n=2, escalation_level=2, escalate_to="setda"),
        sla(SlaEventType.escalated, n=3, escalation_level=3, escalate_to="kind_x@35.78"),
        sla(SlaEventType.resolved, clock=None),
    ])  # fmt: skip
    topic = topic_name(SLA, stack["settings"])
    await stack["producer"].send_and_wait(topic, b'{"event_type": "warning"}', key=b"k")
    await _until(lambda: len(smtp.messages) == 3 and len(hook.requests) == 2 and
                 len(telegram.requests) == 1, "deliveries", notify)  # fmt: skip
    to = Counter(m["To"] for m in smtp.messages)
    assert to == {"desk-pu@example.go.id": 1, "kadis-pu@example.go.id": 1,
                  "pengaduan-setda@example.go.id": 1}  # fmt: skip
    head = next(m for m in smtp.messages if m["To"] == "kadis-pu@example.go.id")
    # the escalation e-mail knows the complaint's category from the earlier routed event
    assert "Jalan rusak dan berlubang" in head["Subject"]
    assert sorted(r.json["notice"]["event_type"] for r in hook.requests) == ["resolved", "routed"]
    reader = TopicReader(
        stack["settings"].bootstrap_servers, topic_name(DEADLETTER, stack["settings"])
    )
    async with reader:
        await reader.wait_for(lambda rs: len(rs) >= 2)
    reasons = sorted(DeadLetter.model_validate_json(r.value).reason for r in reader.records)
    assert reasons == ["invalid_event", "no_contact"]


async def test_sigkill_mid_batch_and_restart_sends_nothing_twice(stack: dict[str, Any]) -> None:
    """Ten deliveries per receiver go through, then the receivers answer 503 / SMTP 451
    (so the rest are being retried: owed, not ambiguous) and notify is SIGKILLed. The
    restart reads every event again (a new consumer group: as if no offset had been
    committed); the receivers come back; each delivery arrives exactly once."""
    notify, hook, telegram = stack["notify"], stack["hook"], stack["telegram"]
    n = 40
    gate = asyncio.Event()
    for stub in (hook, telegram):
        stub.fault = lambda i, s=stub: (
            web.Response(status=503) if len(s.requests) >= 10 and not gate.is_set() else None
        )
    smtp = stack["smtp"]
    smtp.defer = lambda: len(smtp.messages) >= 10 and not gate.is_set()
    first = notify.start()
    await _send(stack, ROUTES, [routed(i) for i in range(1, n + 1)])

    async def mid_batch() -> bool:
        """Each receiver has taken its ten (a few more may slip through concurrently),
        every answered delivery is recorded, and the rest are owed."""
        got = (len(hook.requests), len(telegram.requests), len(smtp.messages))
        delivered = await _count(
            stack["db"], "SELECT count(*) FROM notify_deliveries WHERE status = 'delivered'"
        )
        owed = await _count(stack["db"], "SELECT count(*) FROM notify_deliveries WHERE parks > 0")
        return min(got) >= 10 and delivered == sum(got) and owed > 0

    await _until(mid_batch, "ten deliveries each, then retries", notify)
    first.send_signal(signal.SIGKILL)
    await _until(lambda: first.poll() is not None, "notify dead", notify, timeout=10)
    # What the dead process had already written to a socket still reaches the receivers:
    # let them take it (and defer it) before they start accepting again.
    await _quiet(lambda: (hook.seen, telegram.seen, smtp.data_commands))
    notify.start(ADUAN_CONSUMER_GROUP_PREFIX="restarted")
    gate.set()
    await _until(lambda: len(hook.requests) >= n and len(telegram.requests) >= n,
                 "every delivery", notify, timeout=90)  # fmt: skip
    await _until(lambda: len(stack["smtp"].messages) >= n, "every e-mail", notify)
    owed = "SELECT count(*) FROM notify_deliveries WHERE status <> 'delivered'"
    reader = TopicReader(stack["settings"].bootstrap_servers, topic_name(ROUTES, stack["settings"]))
    async with reader:  # quiet period: everything was re-read and nothing more is sent
        await reader.drain(quiet_s=2.0)
    assert await _count(stack["db"], owed) == 0
    assert len(set(hook.deliveries())) == n == len(hook.requests)
    tracking = Counter(re.findall(r"ADU-\w+", r.json["text"])[0] for r in telegram.requests)
    assert len(tracking) == n == len(telegram.requests)
    assert len({m["X-Aduan-Delivery"] for m in stack["smtp"].messages}) == n
    assert len(smtp.messages) == n


async def test_a_complaint_on_an_acknowledging_account_gets_a_reply_and_route_a_marker(
    stack: dict[str, Any], tmp_path: Path
) -> None:
    """messages.v1 says where the complaint was written, routes.v1 that it was routed: the
    citizen gets a reply under the comment, and aduan.commands.v1 the marker route needs."""
    from datetime import timedelta

    import yaml

    from common.sealing import Sealer
    from common.topics import COMMANDS, MESSAGES
    from schemas.commands import Command, CommandType, ack_text_digest
    from schemas.messages import EventKind, Message, Platform
    from tests.notify.conftest import T0
    from tests.notify.servers import GraphStub

    notify, settings = stack["notify"], stack["settings"]
    registry_file = Path(notify.env["ADUAN_REGISTRY_FILE"])
    data = yaml.safe_load(registry_file.read_text())
    data["accounts"] = [{"platform": "instagram", "platform_id": "17841400000000001",
                         "agency_id": "pu", "app_secret_env": "TEST_HOOK_SECRET",
                         "acknowledge": True, "reply_token_env": "TEST_IG_TOKEN"}]  # fmt: skip
    registry_file.write_text(yaml.safe_dump(data))
    graph = await GraphStub().start_api()
    try:
        notify.start(
            ADUAN_NOTIFY_GRAPH_BASE_URL=graph.base, TEST_IG_TOKEN=graph.token,
            ADUAN_REPLY_KEY="reply-key",
        )  # fmt: skip
        complaint = routed(1)
        # Ids on the topics are pseudonyms: the comment id travels sealed for notify only.
        sealed = Sealer("reply-key").seal("179000000001", complaint.complaint_id)
        message = Message(
            message_id=complaint.complaint_id, platform=Platform.instagram,
            kind=EventKind.comment, platform_message_id="m_pseudonym",
            thread_key=complaint.thread_key, account_id="17841400000000001", agency_id="pu",
            region_code="35.78", author_pseudonym="u_abc", text="jalan berlubang",
            platform_time=T0 - timedelta(seconds=5), received_at=T0 - timedelta(seconds=4),
            delivery_id="d1", reply_ref=sealed,
        )  # fmt: skip
        await _send(stack, MESSAGES, [message])
        await _send(stack, ROUTES, [complaint])
        await _until(lambda: len(graph.requests) == 1, "the reply", notify)
        assert graph.paths == ["/v21.0/179000000001/replies"]
        reader = TopicReader(settings.bootstrap_servers, topic_name(COMMANDS, settings))
        async with reader:
            (rec,) = await reader.wait_for(lambda rs: len(rs) >= 1)
        cmd = Command.model_validate_json(rec.value)
        assert cmd.type is CommandType.auto_acknowledged and rec.key == b"instagram:18000:1"
        assert cmd.text_sha256 == ack_text_digest(graph.requests[0].json["message"])
    finally:
        await graph.stop()
