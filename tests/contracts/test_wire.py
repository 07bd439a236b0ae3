"""What the real pipeline writes matches the published contract, topic by topic.

ingest, classify and route run against the broker fixture (route on a simulated clock, so
deadlines fire within the test). Traffic: every webhook fixture of every platform, signed;
complaints with an agency reply; a body that is not JSON; a forged delivery; a junk record on
the messages topic; operator commands (one carrying a field the schema does not know, one
with a wrong key); then the clock jumps 60 days so warnings, overdue and escalation events
fire. Every record that lands on a catalog topic is then checked against its schemas with
the ``jsonschema`` package: key, headers and value against the *producer* view (closed: a
producer writes no undeclared field), the key against the value field it must equal, and the
raw topic's value against the bytes that were posted.

The route app's faust topics (its table's changelog, the assignor's leader topic) are not
contracts: they hold route's private state in its own binary layout, are named after the app
id, not ``aduan.*``, and no one else may read them. The test asserts that they are the only
topics besides the catalog's, so a new topic cannot appear without a catalog entry."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import jsonschema
import orjson
import pytest
from aiokafka import AIOKafkaProducer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import SecretStr

from common.kafka import topic_name
from common.replay import Selection, replay
from common.settings import Settings
from common.topics import (
    CATALOG,
    COMMANDS,
    COMPONENTS,
    DEADLETTER,
    MESSAGES,
    RAW,
    ROUTES,
    SLA,
    TopicSpec,
)
from schemas.contract import key_schema, producer_view, record_headers_schema, value_schema
from schemas.raw import from_headers
from services.classify import processor as classify_processor
from services.demo.generator import instagram_comment
from services.ingest import app as ingest_app
from services.ingest.privacy import Pseudonymizer
from services.ingest.signatures import generic_signature, meta_signature, x_signature
from services.route.app import create_app
from services.route.settings import RouteSettings
from tests.ingest.helpers import FIXTURES
from tests.support import TopicReader

pytestmark = pytest.mark.kafka

META, X, GENERIC = "meta-app-secret", "x-consumer-secret", "generic-web-secret"
SECRETS = {
    "ADUAN_META_APP_SECRET": META,
    "ADUAN_META_VERIFY_TOKEN": "verify-me",
    "ADUAN_X_CONSUMER_SECRET": X,
    "ADUAN_GENERIC_WEB_SECRET": GENERIC,
    "ADUAN_GENERIC_LAPOR_SECRET": "lapor-secret",
}
IG = "17841400000000001"
DAY = 86400.0


class SimClock:
    def __init__(self) -> None:
        self.t = time.time()

    def __call__(self) -> float:
        return self.t


@dataclass
class Wire:
    """What the pipeline wrote, by catalog topic, and what the test itself injected."""

    settings: Settings
    records: dict[str, list[ConsumerRecord]]
    posted: list[bytes]
    injected: set[tuple[str, bytes | None, bytes]] = field(default_factory=set)
    topics: set[str] = field(default_factory=set)
    groups: list[str] | None = None
    route_app_id: str = ""

    def produced(self, spec: TopicSpec) -> list[ConsumerRecord]:
        """Records aduan's producers wrote (the test's own inputs left out)."""
        return [r for r in self.records[spec.name] if not self.is_injected(spec, r)]

    def is_injected(self, spec: TopicSpec, r: ConsumerRecord) -> bool:
        return not r.headers and (spec.name, r.key, r.value) in self.injected


def signed(platform: str, body: bytes) -> dict[str, str]:
    if platform == "x":
        return {"x-twitter-webhooks-signature": x_signature(X, body)}
    if platform == "generic":
        stamp = str(int(time.time()))
        return {
            "X-Aduan-Account": orjson.loads(body)["account_id"],  # the sender's own account
            "X-Aduan-Timestamp": stamp,
            "X-Aduan-Signature": generic_signature(GENERIC, stamp, body),
        }
    return {"X-Hub-Signature-256": meta_signature(META, body)}


async def post(base: str, platform: str, body: bytes, headers: dict[str, str]) -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{base}/{platform}",
            data=body,
            headers={"Content-Type": "application/json", **headers},
        ) as resp,
    ):
        return resp.status


class Traffic:
    """Drives the running pipeline as platforms, operators and an outside producer would."""

    def __init__(self, wire: Wire, reader: TopicReader, producer: AIOKafkaProducer, base: str):
        self.wire, self.reader, self.producer, self.base = wire, reader, producer, base
        self.name = {t.name: topic_name(t, wire.settings) for t in CATALOG}

    def values(self, spec: TopicSpec) -> list[dict[str, Any]]:
        return [orjson.loads(r.value) for r in self.reader.on(self.name[spec.name])]

    async def until(self, what: Callable[[], bool], timeout: float = 60) -> None:
        await self.reader.wait_for(lambda _records: what(), timeout=timeout)

    async def deliver(self, platform: str, body: bytes, status: int = 200) -> None:
        assert await post(self.base, platform, body, signed(platform, body)) == status
        self.wire.posted.append(body)

    async def inject(self, spec: TopicSpec, key: bytes | None, value: bytes) -> None:
        """Write a record as a producer outside aduan (left out of the producer checks)."""
        self.wire.injected.add((spec.name, key, value))
        await self.producer.send_and_wait(self.name[spec.name], value, key=key)

    async def command(
        self, key: str, thread: str, complaint: str, ctype: str, **extra: Any
    ) -> None:
        cmd = {
            "command_id": f"cmd-{uuid.uuid4().hex[:8]}",
            "type": ctype,
            "complaint_id": complaint,
            "thread_key": thread,
            "issued_at": datetime.now(UTC).isoformat(),
            "actor": "operator:contract-test",
            **extra,
        }
        await self.inject(COMMANDS, key.encode(), orjson.dumps(cmd))

    def sla_kinds(self, complaint: str) -> set[str]:
        return {e["event_type"] for e in self.values(SLA) if e["complaint_id"] == complaint}

    async def run(self, clock: SimClock) -> None:
        for path in sorted(FIXTURES.glob("*.json")):  # every platform's shapes, signed
            await self.deliver(path.name.split("_", 1)[0], path.read_bytes())
        ids = [f"1799{uuid.uuid4().int % 10**12:012d}" for _ in range(3)]
        await self.deliver("instagram", instagram_comment(ids[0], "Jalan rusak di Rungkut"))
        await self.deliver("instagram", instagram_comment(ids[1], "Sampah menumpuk di TPS"))
        reply = instagram_comment(ids[2], "Petugas meluncur", author_id=IG, parent_id=ids[1])
        await self.deliver("instagram", reply)
        await self.deliver("instagram", b"{this is not json", status=400)
        forged = instagram_comment("1799000000000", "forged")
        assert (
            await post(self.base, "instagram", forged, {"X-Hub-Signature-256": "sha256=0"}) == 403
        )
        await self.inject(MESSAGES, b"junk", b'{"not": "a message"}')

        # Complaint ids are keyed pseudonyms of the platform ids (issue 10), as ingest makes them.
        pseudonyms = Pseudonymizer(b"test-pseudonym-key")
        a, b = (pseudonyms.message_id(f"instagram:{i}") for i in ids[:2])
        routed = lambda: {e["complaint_id"]: e["thread_key"] for e in self.values(ROUTES)}  # noqa: E731
        await self.until(lambda: {a, b} <= set(routed()))
        ta, tb = routed()[a], routed()[b]
        # Keyed by thread with Kafka's default partitioner, as an outside producer must. The
        # first carries a field v1 does not declare: consumers must ignore it.
        await self.command(ta, ta, a, "acknowledge", note="on it")
        await self.command(ta, ta, a, "reroute", agency_id="sby-environment", reason="x")
        await self.command(tb, tb, b, "resolve")
        await self.command(tb, tb, b, "reopen")
        await self.command("wrong-key", tb, b, "resolve")
        await self.until(lambda: "acknowledged" in self.sla_kinds(a))
        await self.until(lambda: {"responded", "resolved", "reopened"} <= self.sla_kinds(b))
        clock.t += 60 * DAY  # every deadline of the open complaints passes
        await self.until(lambda: {"warning", "overdue", "escalated"} <= self.sla_kinds(a))
        stages = {"ingest", "classify", "route"}
        await self.until(lambda: stages <= {d["stage"] for d in self.values(DEADLETTER)})
        # An operator republishes the raw deliveries ingest dead-lettered: replay as a
        # producer, its records marked with the aduan-replayed-from header.
        selection = Selection(stages=frozenset({"ingest"}))
        summary = await replay(self.wire.settings, selection, raw_mode="republish")
        assert summary.produced > 0, summary
        await self.reader.drain(quiet_s=1.5)
        by_topic = {full: spec for spec, full in self.name.items()}
        self.wire.records = {spec: [] for spec in self.name}
        for r in self.reader.records:
            self.wire.records[by_topic[r.topic]].append(r)


async def survey(wire: Wire) -> None:
    """Which topics and consumer groups of this run exist on the broker."""
    settings = wire.settings
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        mine = (settings.topic_prefix, settings.consumer_group_prefix)
        wire.topics = {t for t in await admin.list_topics() if t.startswith(mine)}
        with contextlib.suppress(Exception):  # a broker without ListGroups: not checked
            groups = await admin.list_consumer_groups()
            wire.groups = sorted(g[0] for g in groups if g[0].startswith(mine[1]))
    finally:
        await admin.close()


@pytest.fixture(scope="module")
async def wire(kafka_bootstrap: str) -> AsyncIterator[Wire]:
    prefix = f"t{uuid.uuid4().hex[:10]}."
    settings = Settings(
        bootstrap_servers=kafka_bootstrap,
        topic_prefix=prefix,
        consumer_group_prefix=prefix.rstrip("."),
        http_port=0,
        pseudonym_key=SecretStr("test-pseudonym-key"),
    )
    clock = SimClock()
    with pytest.MonkeyPatch.context() as mp:
        for var, value in SECRETS.items():
            mp.setenv(var, value)
        runner, service = await ingest_app.start(settings)
    stop = asyncio.Event()
    classify = asyncio.create_task(classify_processor.run(settings, stop))
    route = create_app(
        settings, clock=clock, route_settings=RouteSettings(tick_interval_s=0.05)
    ).app
    await route.start()
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=False)
    await producer.start()
    result = Wire(settings, {}, [], route_app_id=route.conf.id)
    try:
        topics = [topic_name(t, settings) for t in CATALOG]
        async with TopicReader(kafka_bootstrap, *topics) as reader:
            base = f"http://127.0.0.1:{service.port}/webhooks"
            await Traffic(result, reader, producer, base).run(clock)
        await survey(result)
        yield result
    finally:
        await producer.stop()
        stop.set()
        await route.stop()
        await classify
        await ingest_app.stop(runner, service)


def validator(schema: dict[str, Any], closed: bool) -> jsonschema.protocols.Validator:
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    view = producer_view(schema) if closed else schema
    return cls(view, format_checker=cls.FORMAT_CHECKER)


def header_dict(record: ConsumerRecord) -> dict[str, str]:
    names = [h[0] for h in record.headers]
    assert len(names) == len(set(names)), f"repeated header in {names}"
    return {k: v.decode("utf-8") for k, v in record.headers}


def at(value: Any, path: str) -> Any:
    for part in path.split("."):
        value = value[part]
    return value


RUNNING = {"ingest", "classify", "route"}
"""The services this test runs (replay, the other aduan producer, is run once for raw)."""
WRITTEN_BY_ADUAN = [t for t in CATALOG if RUNNING & set(t.producers)]


def test_every_topic_is_covered() -> None:
    """Topics written only from outside (commands) are checked from the consumer side in
    ``test_commands_valid_under_the_schema_are_applied``; every other one here."""
    outside = {t.name for t in CATALOG} - {t.name for t in WRITTEN_BY_ADUAN}
    assert outside == {COMMANDS.name}


@pytest.mark.parametrize("spec", WRITTEN_BY_ADUAN, ids=lambda s: s.name)
def test_every_record_matches_its_schemas(wire: Wire, spec: TopicSpec) -> None:
    records = wire.produced(spec)
    assert records, f"the pipeline wrote nothing to {spec.name}: the test covers every topic"
    check(spec, records, closed=True)


def check(spec: TopicSpec, records: list[ConsumerRecord], closed: bool) -> None:
    """Key, headers and value of each record against the topic's schemas (``closed``: the
    producer view, which refuses undeclared fields)."""
    keys = validator(key_schema(spec), closed)
    headers = validator(record_headers_schema(spec), closed)
    schema = value_schema(spec)
    values_ = validator(schema, closed) if schema is not None else None
    for r in records:
        where = f"{spec.name}@{r.partition}:{r.offset}"
        key = None if r.key is None else r.key.decode("utf-8")
        keys.validate(key)
        headers.validate(header_dict(r))
        if values_ is None:
            continue
        value = orjson.loads(r.value)
        values_.validate(value)
        if spec.key_field is not None:
            assert key == at(value, spec.key_field), f"{where}: key is not {spec.key_field}"


def test_raw_values_are_the_posted_bytes(wire: Wire) -> None:
    """The raw value is the body as the platform sent it (signatures cover those bytes): one
    record per accepted delivery, byte for byte, the unparseable one included; a republished
    one is the same bytes again, marked by the replay header."""
    first = sorted(r.value for r in wire.produced(RAW) if not _replayed(r))
    assert first == sorted(wire.posted)
    assert b"{this is not json" in first
    again = [r for r in wire.produced(RAW) if _replayed(r)]
    assert again and all(r.value in wire.posted for r in again)


def _replayed(r: ConsumerRecord) -> bool:
    return any(name == "aduan-replayed-from" for name, _ in r.headers)


def test_commands_valid_under_the_schema_are_applied(wire: Wire) -> None:
    """aduan writes no commands (operators and desk do), so this topic's contract is checked
    from route's side: what the test wrote as an outside producer is valid under the published
    (consumer) schemas, and route applied each correctly keyed command, including one with a
    field v1 does not declare, which only the closed producer view refuses."""
    commands = [r for r in wire.records[COMMANDS.name] if wire.is_injected(COMMANDS, r)]
    assert len(commands) == 5
    keyed = [r for r in commands if r.key != b"wrong-key"]
    check(COMMANDS, keyed, closed=False)
    schema = value_schema(COMMANDS)
    assert schema is not None
    closed = validator(schema, closed=True)
    extra = [r for r in keyed if b'"note"' in r.value]
    assert len(extra) == 1 and not closed.is_valid(orjson.loads(extra[0].value))
    events = [orjson.loads(r.value) for r in wire.produced(SLA) + wire.produced(ROUTES)]
    assert {"acknowledged", "resolved", "reopened", "rerouted"} <= {e["event_type"] for e in events}
    refused = [orjson.loads(r.value) for r in wire.produced(DEADLETTER)]
    assert {d["reason"] for d in refused if d["stage"] == "route"} == {"key_mismatch"}


def test_raw_headers_rebuild_the_raw_delivery(wire: Wire) -> None:
    """The headers and the key carry every field of ``RawDelivery`` (its decoded view)."""
    for r in wire.produced(RAW):
        meta = from_headers(r.key, r.headers)
        assert meta.delivery_id == r.key.decode()
        assert meta.signature_verified is True


def test_only_catalog_topics_and_route_internals_exist(wire: Wire) -> None:
    prefix = wire.settings.topic_prefix
    catalog = {t.full_name(prefix) for t in CATALOG}
    app_id = f"{wire.settings.consumer_group_prefix}-route"
    others = wire.topics - catalog
    assert catalog <= wire.topics
    assert others, "route's changelog should exist"
    assert all(t.startswith(app_id + "-") for t in others), others


def test_consumer_groups_are_the_declared_ones(wire: Wire) -> None:
    """The groups aduan's services join are those the catalog (and the AsyncAPI document)
    declare. Faust's group id is its app id; Tansu's ListGroups does not show faust's group,
    so route's is taken from the app."""
    group_prefix = wire.settings.consumer_group_prefix
    declared = {
        name: c.consumer_group.format(prefix=group_prefix)
        for name, c in COMPONENTS.items()
        if c.consumer_group is not None
    }
    assert declared.pop("route") == wire.route_app_id
    if wire.groups is None:
        pytest.skip("the broker does not answer ListGroups")
    assert set(wire.groups) - {wire.route_app_id} == set(declared.values())
