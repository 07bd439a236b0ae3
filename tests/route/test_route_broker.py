"""The route processor through the real broker, with deadlines driven in simulated time.

The app runs in-process with an injected clock; advancing the clock makes its timer send
tick records through Kafka, and the assertions read what landed on the output topics."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import faust
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from common import codecs, metrics
from common.kafka import ensure_topics, topic_name
from common.produce import Output, RecordSink
from common.settings import Settings
from common.topics import CLASSIFIED, COMMANDS, DEADLETTER, ROUTES, SLA
from schemas.commands import CommandType
from services.route.app import RouteApp, create_app
from services.route.settings import RouteSettings
from tests.support import TopicReader, wait_until

from .factories import command, message

pytestmark = pytest.mark.kafka

REPO = Path(__file__).resolve().parents[2]
WIB = ZoneInfo("Asia/Jakarta")
WITA = ZoneInfo("Asia/Makassar")
MON_9 = datetime(2026, 11, 23, 9, 0, tzinfo=WIB)  # first response due 14:00 WIB, warning 12:00


class SimClock:
    def __init__(self, at: datetime) -> None:
        self.t = at.timestamp()

    def __call__(self) -> float:
        return self.t

    def set(self, at: datetime) -> None:
        self.t = at.timestamp()


class Harness:
    def __init__(self, settings: Settings, producer: AIOKafkaProducer, clock: SimClock) -> None:
        self.settings, self.producer, self.clock = settings, producer, clock
        self.apps: list[faust.App] = []

    async def start_app(self, clock: Any = None, **route: Any) -> RouteApp:
        route.setdefault("tick_interval_s", 0.05)
        route.setdefault("store", "memory")
        started = create_app(
            self.settings, clock=clock or self.clock, route_settings=RouteSettings(**route)
        )
        await started.app.start()
        self.apps.append(started.app)
        return started

    async def send(self, spec: Any, key: str, value: Any) -> None:
        await self.producer.send_and_wait(
            topic_name(spec, self.settings), codecs.dumps(value), key=key.encode()
        )

    def reader(self) -> TopicReader:
        names = [topic_name(t, self.settings) for t in (ROUTES, SLA, DEADLETTER)]
        return TopicReader(self.settings.bootstrap_servers, *names)


@pytest.fixture
async def harness(kafka_bootstrap: str, topic_prefix: str) -> AsyncIterator[Harness]:
    settings = Settings(
        bootstrap_servers=kafka_bootstrap,
        topic_prefix=topic_prefix,
        consumer_group_prefix=topic_prefix.rstrip("."),
        rebalance_timeout_s=4.0,
    )
    await ensure_topics(settings)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=False)
    await producer.start()
    h = Harness(settings, producer, SimClock(MON_9))
    try:
        yield h
    finally:
        for app in h.apps:
            if app.started:
                await app.stop()
        await producer.stop()


def values(reader: TopicReader, settings: Settings, spec: Any) -> list[dict[str, Any]]:
    return [orjson.loads(r.value) for r in reader.on(topic_name(spec, settings))]


def sla_ids(reader: TopicReader, settings: Settings, complaint: str) -> list[str]:
    return [e["event_id"] for e in values(reader, settings, SLA) if e["complaint_id"] == complaint]


def has(ids_of: Any, *wanted: str) -> Any:
    return lambda _recs: all(w in ids_of() for w in wanted)


async def test_lifecycle_reply_holidays_wita_reroute_and_dead_letters(harness: Harness) -> None:
    h, s = harness, harness.settings
    await h.start_app()
    # t1: no reply at all. t2: agency replies in time. t3: received in the Eid cuti bersama.
    # t4: a WITA agency. t5: rerouted after its warning.
    await h.send(CLASSIFIED, "t1", message("c1", "t1", MON_9))
    await h.send(CLASSIFIED, "t2", message("c2", "t2", MON_9))
    await h.send(
        CLASSIFIED, "t2", message("r2", "t2", MON_9 + timedelta(minutes=40), agency_reply=True)
    )
    await h.send(CLASSIFIED, "t3", message("c3", "t3", datetime(2026, 3, 18, 10, 0, tzinfo=WIB)))
    await h.send(
        CLASSIFIED, "t4", message("c4", "t4", MON_9, agency_id="mks-public-works", region="73.71")
    )
    await h.send(CLASSIFIED, "t5", message("c5", "t5", MON_9))
    await h.send(CLASSIFIED, "t1", message("c1", "t1", MON_9))  # redelivered duplicate

    async with h.reader() as reader:
        routed = lambda: [  # noqa: E731
            e["complaint_id"] for e in values(reader, s, ROUTES) if e["event_type"] == "routed"
        ]
        await reader.wait_for(lambda _r: len(set(routed())) == 5, timeout=60)
        by_id = {e["complaint_id"]: e for e in values(reader, s, ROUTES)}
        # Eid al-Fitr 2026: cuti bersama 18, 20, 23, 24 Mar; Nyepi 19; Eid 21-22; weekend.
        assert by_id["instagram:c3"]["due"]["first_response"] == "2026-03-25T04:30:00Z" or (
            datetime.fromisoformat(by_id["instagram:c3"]["due"]["first_response"])
            == datetime(2026, 3, 25, 11, 30, tzinfo=WIB)
        )
        # WITA: 09:00 WIB = 10:00 WITA; 2 h to lunch + 2 h after = 15:00 WITA.
        assert datetime.fromisoformat(by_id["instagram:c4"]["due"]["first_response"]) == (
            datetime(2026, 11, 23, 15, 0, tzinfo=WITA)
        )
        assert by_id["instagram:c4"]["channels"] == ["email:pu@example.makassarkota.go.id"]

        # The agency answered t2 after 40 minutes: responded, met.
        await reader.wait_for(
            has(
                lambda: sla_ids(reader, s, "instagram:c2"),
                "instagram:c2:first_response:1:responded:0",
            )
        )
        [resp] = [e for e in values(reader, s, SLA) if e["event_type"] == "responded"]
        assert resp["met"] is True and resp["response_seconds"] == 2400

        # Simulated time: past the warning (12:00 WIB).
        h.clock.set(MON_9 + timedelta(hours=3, minutes=1))
        await reader.wait_for(
            has(
                lambda: sla_ids(reader, s, "instagram:c1"),
                "instagram:c1:first_response:1:warning:0",
            )
        )
        # Reroute t5 (bukan wewenang) to the Makassar agency: its first-response clock restarts.
        reroute_at = MON_9 + timedelta(hours=3, minutes=2)
        await h.send(
            COMMANDS,
            "t5",
            command(
                "k5",
                CommandType.reroute,
                "instagram:c5",
                "t5",
                reroute_at,
                "mks-public-works",
                "bukan wewenang",
            ),
        )
        await h.send(
            COMMANDS, "t9", command("k9", CommandType.resolve, "instagram:zz", "t9", reroute_at)
        )
        await reader.wait_for(
            lambda _r: any(e["event_type"] == "rerouted" for e in values(reader, s, ROUTES))
        )
        # Garbage and a command on the wrong key (it would sit on the wrong partition).
        await h.producer.send_and_wait(topic_name(CLASSIFIED, s), b"{not json", key=b"t7")
        await h.send(
            COMMANDS, "t1", command("k8", CommandType.resolve, "instagram:c5", "t5", reroute_at)
        )
        await reader.wait_for(lambda _r: len(values(reader, s, DEADLETTER)) >= 3)
        reasons = {
            (d["reason"], d["stage"], d["source_key"]) for d in values(reader, s, DEADLETTER)
        }
        assert reasons == {
            ("unknown_complaint", "route", "t9"),
            ("invalid_classified", "route", "t7"),
            ("key_mismatch", "route", "t1"),
        }

        # Past the deadline, then far past every escalation level.
        h.clock.set(MON_9 + timedelta(hours=5, minutes=1))
        await reader.wait_for(
            has(
                lambda: sla_ids(reader, s, "instagram:c1"),
                "instagram:c1:first_response:1:overdue:0",
            )
        )
        h.clock.set(MON_9 + timedelta(days=40))
        esc = [f"instagram:c1:first_response:1:escalated:{n}" for n in (1, 2, 3)]
        await reader.wait_for(has(lambda: sla_ids(reader, s, "instagram:c1"), *esc), timeout=60)
        await reader.wait_for(
            has(
                lambda: sla_ids(reader, s, "instagram:c5"),
                "instagram:c5:first_response:2:overdue:0",
            )
        )
        await reader.drain(quiet_s=1.5)

        ids = [e["event_id"] for e in values(reader, s, SLA)]
        dupes = {i: n for i, n in Counter(ids).items() if n > 1}
        assert not dupes, dupes
        assert sorted(routed()) == sorted(set(routed()))  # each routed once
        c1 = [i for i in ids if i.startswith("instagram:c1:first_response")]
        assert c1 == [
            "instagram:c1:first_response:1:warning:0",
            "instagram:c1:first_response:1:overdue:0",
            *esc,
        ]
        # t2 was answered: no first-response warning for it.
        assert not [i for i in ids if i.startswith("instagram:c2:first_response:1:warning")]
        # t5: the old run warned before the reroute and never went overdue; the new run
        # belongs to the new agency.
        c5 = {
            e["event_id"]: e for e in values(reader, s, SLA) if e["complaint_id"] == "instagram:c5"
        }
        assert "instagram:c5:first_response:1:warning:0" in c5
        assert "instagram:c5:first_response:1:overdue:0" not in c5
        assert c5["instagram:c5:first_response:2:overdue:0"]["agency_id"] == "mks-public-works"
        escalated = [e for e in values(reader, s, SLA) if e["event_id"] == esc[1]]
        assert escalated[0]["escalate_to"] == "sby-secretariat"


@pytest.mark.parametrize("store", ["memory", "rocksdb"])
async def test_restart_between_warning_and_deadline_catches_up_once(
    harness: Harness, store: str, tmp_path: Any
) -> None:
    """Both stores: memory recovers the whole changelog, RocksDB keeps the state on disk
    and resumes after the offset it stored with it (the marker closing the last batch)."""
    h, s = harness, harness.settings
    first = await h.start_app(store=store, data_dir=tmp_path)
    await h.send(CLASSIFIED, "t1", message("c1", "t1", MON_9))
    async with h.reader() as reader:
        ids = lambda: sla_ids(reader, s, "instagram:c1")  # noqa: E731
        await reader.wait_for(lambda _r: len(values(reader, s, ROUTES)) == 1, timeout=60)
        h.clock.set(MON_9 + timedelta(hours=3, minutes=30))
        await reader.wait_for(has(ids, "instagram:c1:first_response:1:warning:0"))
        if store == "rocksdb":  # the warning's state and its offset are on disk
            persisted = first.worker.table.persisted_offset  # type: ignore[attr-defined]
            assert any(persisted(p) is not None for p in range(6))
        await first.app.stop()

        # While no worker runs, the deadline and the first escalation pass.
        h.clock.set(MON_9 + timedelta(hours=7, minutes=30))
        second = await h.start_app(store=store, data_dir=tmp_path)
        await reader.wait_for(
            has(
                ids,
                "instagram:c1:first_response:1:overdue:0",
                "instagram:c1:first_response:1:escalated:1",
            ),
            timeout=60,
        )
        await reader.drain(quiet_s=1.5)
        counts = Counter(ids())
        assert counts["instagram:c1:first_response:1:warning:0"] == 1
        assert counts["instagram:c1:first_response:1:overdue:0"] == 1
        assert counts["instagram:c1:first_response:1:escalated:1"] == 1
        assert "instagram:c1:first_response:1:escalated:2" not in counts
        overdue = next(e for e in values(reader, s, SLA) if e["event_type"] == "overdue")
        assert datetime.fromisoformat(overdue["due_at"]) == datetime(
            2026, 11, 23, 14, 0, tzinfo=WIB
        )
        # Caught up late: it happened at the restart's clock, after the due time.
        assert datetime.fromisoformat(overdue["occurred_at"]) > datetime.fromisoformat(
            overdue["due_at"]
        )
        assert len(values(reader, s, ROUTES)) == 1  # the restart did not route again
        await second.app.stop()


FAST_SLA = """
calendars:
  24x7: {always_open: true}
defaults: {calendar: 24x7}
escalation:
  - {level: 1, multiple: 1.5, escalate_to: head}
policies:
  - id: fast
    targets: {first_response: 4s, resolution: 1h}
"""


async def test_timers_fire_within_a_second_in_real_time(harness: Harness, tmp_path: Any) -> None:
    """Wall clock, real broker, the production tick interval: each stage lands < 1 s late."""
    import time

    sla_file = tmp_path / "sla.yaml"
    sla_file.write_text(FAST_SLA)
    h, s = harness, harness.settings
    await h.start_app(clock=time.time, sla_file=sla_file, tick_interval_s=0.25)
    async with h.reader() as reader:
        ids = lambda: sla_ids(reader, s, "instagram:c1")  # noqa: E731
        # Wait for the group to be up: a first complaint is routed.
        await h.send(CLASSIFIED, "t0", message("c0", "t0", datetime.now(WIB)))
        await reader.wait_for(lambda _r: len(values(reader, s, ROUTES)) == 1, timeout=60)
        start = datetime.now(WIB)
        await h.send(CLASSIFIED, "t1", message("c1", "t1", start))
        await reader.wait_for(
            has(ids, "instagram:c1:first_response:1:overdue:0",
                "instagram:c1:first_response:1:escalated:1"),
            timeout=30,
        )  # fmt: skip
        # When each event reached the broker (producer timestamp), not when the tick decided.
        landed = {
            orjson.loads(r.value)["event_id"]: datetime.fromtimestamp(r.timestamp / 1000, WIB)
            for r in reader.on(topic_name(SLA, s))
        }
        stage_at = {
            "warning": start + timedelta(seconds=3),  # 0.75 x 4 s
            "overdue": start + timedelta(seconds=4),
            "escalated": start + timedelta(seconds=6),  # 1.5 x 4 s
        }
        for etype, due in stage_at.items():
            level = 1 if etype == "escalated" else 0
            lag = (landed[f"instagram:c1:first_response:1:{etype}:{level}"] - due).total_seconds()
            assert 0 <= lag < 1.0, (etype, lag)


async def test_rebalance_to_two_workers_fires_each_stage_once(
    harness: Harness, tmp_path: Any
) -> None:
    """A second worker joins: partitions (and their complaints) move; nothing fires twice
    and nothing is lost, whichever worker owns a thread when its deadline passes. The
    second worker's due index comes from faust's recovery of the changelog (and its standby
    copies), through ``RocksState.apply_changelog``: RocksDB only (the default store), as
    the memory store's changelog recovery is covered by the restart test above and this
    one takes 16 s per store."""
    h, s, store = harness, harness.settings, "rocksdb"
    first = await h.start_app(store=store, data_dir=tmp_path / "a")
    threads = [f"t{i}" for i in range(12)]  # spread over the 6 partitions
    for i, t in enumerate(threads):
        await h.send(CLASSIFIED, t, message(f"c{i}", t, MON_9))
    async with h.reader() as reader:
        await reader.wait_for(lambda _r: len(values(reader, s, ROUTES)) == 12, timeout=60)
        h.clock.set(MON_9 + timedelta(hours=3, minutes=30))  # every warning is due
        warnings = [f"instagram:c{i}:first_response:1:warning:0" for i in range(12)]
        all_ids = lambda: [e["event_id"] for e in values(reader, s, SLA)]  # noqa: E731
        await reader.wait_for(has(all_ids, *warnings), timeout=30)

        second = await h.start_app(store=store, data_dir=tmp_path / "b")
        mem_a, mem_b = first.worker, second.worker
        await reader.wait_for(
            lambda _r: bool(mem_a.owned) and bool(mem_b.owned)
            and not (mem_a.owned & mem_b.owned)
            and len(mem_a.owned | mem_b.owned) == 6,
            timeout=60,
        )  # fmt: skip
        h.clock.set(MON_9 + timedelta(hours=5, minutes=30))  # overdue for all
        overdue = [f"instagram:c{i}:first_response:1:overdue:0" for i in range(12)]
        await reader.wait_for(has(all_ids, *overdue), timeout=60)
        await reader.drain(quiet_s=1.5)
        counts = Counter(all_ids())
        assert all(counts[i] == 1 for i in warnings + overdue), counts
        assert len(values(reader, s, ROUTES)) == 12


async def test_registry_edits_apply_without_a_restart_and_bad_edits_are_refused(
    harness: Harness, tmp_path: Path
) -> None:
    """Onboarding an agency is an edit of the registry file: the running route picks it up;
    an invalid edit is refused and the previous registry keeps routing."""
    h = harness
    registry = tmp_path / "registry.yaml"
    original = (REPO / "deploy" / "config" / "registry.yaml").read_text(encoding="utf-8")
    registry.write_text(original, encoding="utf-8")
    h.settings = h.settings.model_copy(update={"registry_file": registry})
    await h.start_app(config_poll_s=0.1)
    s = h.settings
    new_agency = "sby-new-agency"
    await h.send(CLASSIFIED, "n1", message("n1", "n1", MON_9, agency_id=new_agency))
    async with h.reader() as reader:
        reasons = lambda: [d["reason"] for d in values(reader, s, DEADLETTER)]  # noqa: E731
        await reader.wait_for(lambda _r: "unknown_agency" in reasons(), timeout=60)

        added = original.replace(
            "agencies:\n",
            "agencies:\n  - id: sby-new-agency\n    name: Dinas Baru Kota Surabaya\n"
            "    kind: public_works\n    region_code: '35.78'\n",
            1,
        )
        refused, applied = reloads("refused"), reloads("applied")
        registry.write_text("agencies: [this is: not valid", encoding="utf-8")  # a typo first
        await wait_until(lambda: reloads("refused") > refused)
        await h.send(CLASSIFIED, "t1", message("c1", "t1", MON_9))  # still routed
        await reader.wait_for(lambda _r: len(values(reader, s, ROUTES)) == 1, timeout=60)
        staged = tmp_path / "registry.new"
        staged.write_text(added, encoding="utf-8")
        staged.rename(registry)  # how an editor or a ConfigMap replaces the file
        await wait_until(lambda: reloads("applied") > applied)
        await h.send(CLASSIFIED, "n2", message("n2", "n2", MON_9, agency_id=new_agency))
        await reader.wait_for(
            lambda _r: any(e["agency_id"] == new_agency for e in values(reader, s, ROUTES)),
            timeout=60,
        )


def reloads(outcome: str) -> float:
    child = metrics.CONFIG_RELOADS.labels("registry", outcome)
    return float(child._value.get())  # noqa: SLF001  # prometheus-client keeps it private


async def committed(settings: Settings, app: faust.App) -> dict[int, int]:
    """The route group's committed offsets on the classified topic (partitions with one)."""
    topic = topic_name(CLASSIFIED, settings)
    check = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers, group_id=app.conf.id)
    await check.start()
    try:
        offsets = {
            p: await check.committed(TopicPartition(topic, p)) for p in range(CLASSIFIED.partitions)
        }
    finally:
        await check.stop()
    return {p: o for p, o in offsets.items() if o}


async def test_offsets_are_committed_only_once_the_batch_outputs_are_acknowledged(
    harness: Harness,
) -> None:
    """A batch held before its writes: faust's commit (forced) commits nothing of it; once
    its outputs are acknowledged its offset is committed."""
    h, s = harness, harness.settings
    started = await h.start_app()
    worker = started.worker
    entered, release = asyncio.Event(), asyncio.Event()
    real_flush = worker.flush

    async def held_flush(out: list[Output], sink: RecordSink, writes: Any) -> None:
        entered.set()
        await release.wait()
        await real_flush(out, sink, writes)

    worker.flush = held_flush  # type: ignore[method-assign]
    await h.send(CLASSIFIED, "t1", message("c1", "t1", MON_9))
    await asyncio.wait_for(entered.wait(), 60)
    await started.app.consumer.commit()
    assert await committed(s, started.app) == {}
    async with h.reader() as reader:
        await reader.poll()
        assert values(reader, s, ROUTES) == []
        release.set()
        await reader.wait_for(lambda _r: len(values(reader, s, ROUTES)) == 1, timeout=30)
    # The event is visible before the batch's state write is acknowledged and its offset
    # acked, so the commit is retried until it carries the offset (or the deadline passes).
    deadline = asyncio.get_running_loop().time() + 30
    while True:
        await started.app.consumer.commit()
        offsets = list((await committed(s, started.app)).values())
        if offsets or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.05)
    assert offsets == [1]


async def test_a_worker_gone_before_its_commit_is_replayed_without_new_events(
    harness: Harness, tmp_path: Path
) -> None:
    """Outputs and states written, offsets never committed (a worker killed between its
    writes and faust's commit): the next worker reads the same inputs again, recovers the
    states from the changelog, and writes no event twice."""
    h, s = harness, harness.settings
    first = await h.start_app(store="rocksdb", data_dir=tmp_path / "a")

    async def never(offsets: Any) -> bool:
        return False

    first.app.consumer._commit = never  # type: ignore[attr-defined]  # noqa: SLF001
    threads = [f"t{i}" for i in range(12)]  # over the 6 partitions
    for i, t in enumerate(threads):
        await h.send(CLASSIFIED, t, message(f"c{i}", t, MON_9))
    async with h.reader() as reader:
        await reader.wait_for(lambda _r: len(values(reader, s, ROUTES)) == 12, timeout=60)
        await first.app.stop()
        assert await committed(s, first.app) == {}

        second = await h.start_app(store="rocksdb", data_dir=tmp_path / "b")
        # It read all twelve again: then it commits them (after its own writes, if any).
        seen: dict[int, int] = {}

        async def replayed() -> bool:
            seen.update(await committed(s, second.app))
            return sum(seen.values()) == 12

        deadline = asyncio.get_running_loop().time() + 60
        while not await replayed():
            assert asyncio.get_running_loop().time() < deadline, seen
            await reader.poll(timeout_ms=200)
        await reader.drain(quiet_s=1.5)
        routes = Counter(e["event_id"] for e in values(reader, s, ROUTES))
        assert len(routes) == 12 and set(routes.values()) == {1}, routes
        sla = Counter(e["event_id"] for e in values(reader, s, SLA))
        assert set(sla.values()) <= {1}, sla


async def test_a_batch_whose_write_failed_is_decided_again_and_written_once(
    harness: Harness,
) -> None:
    """The broker refuses a batch's write once: route decides the batch again (from the
    table, which holds none of its states) and writes it; every complaint is routed once
    and the offsets are committed after."""
    h, s = harness, harness.settings
    started = await h.start_app()
    worker = started.worker
    real_flush = worker.flush
    refused: list[int] = []

    async def refuse_once(out: list[Output], sink: RecordSink, writes: Any) -> None:
        if not refused:
            refused.append(len(out))
            raise RuntimeError("broker refused the batch")
        await real_flush(out, sink, writes)

    worker.flush = refuse_once  # type: ignore[method-assign]
    for i in range(3):
        await h.send(CLASSIFIED, f"t{i}", message(f"c{i}", f"t{i}", MON_9))
    async with h.reader() as reader:
        await reader.wait_for(lambda _r: len(values(reader, s, ROUTES)) == 3, timeout=60)
        deadline = asyncio.get_running_loop().time() + 30
        while sum((await committed(s, started.app)).values()) != 3:
            assert asyncio.get_running_loop().time() < deadline
            await reader.poll(timeout_ms=200)
        await reader.drain(quiet_s=1.0)
        routes = Counter(e["event_id"] for e in values(reader, s, ROUTES))
        assert len(routes) == 3 and set(routes.values()) == {1}, routes
    assert refused
