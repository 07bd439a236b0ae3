"""The dead-letter replay command: selection and planning (pure), then against the real
broker — payload records re-produced as-is, raw references re-parsed with ingest's parser,
dry runs that write nothing, and no loop on records dead-lettered again during the run."""

from __future__ import annotations

import asyncio
import base64
import json
import sys
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from pydantic import SecretStr

from common import codecs
from common.kafka import ensure_topics
from common.replay import (
    REPLAY_HEADER,
    FetchRaw,
    Reparsed,
    Resend,
    Selection,
    Unreplayable,
    plan,
    replay,
)
from common.settings import Settings
from common.topics import DEADLETTER, MESSAGES, RAW
from schemas.deadletter import DeadLetter
from schemas.messages import Platform
from schemas.raw import RawDelivery, from_headers, to_headers
from services.demo.generator import instagram_comment as build_comment
from services.ingest.privacy import Pseudonymizer
from services.replay import ingest_reparser
from tests.ops.metric_names import REPO
from tests.support import TopicReader

T0 = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)
IG_ACCOUNT = "17841400000000001"  # in deploy/config/registry.yaml


def letter(**overrides: object) -> DeadLetter:
    fields: dict[str, object] = {
        "stage": "classify",
        "reason": "invalid_record",
        "detail": "text missing",
        "source_topic": "aduan.messages.v1",
        "source_partition": 2,
        "source_offset": 40,
        "source_key": "instagram:thread-1",
        "payload_b64": base64.b64encode(b'{"x": 1}').decode(),
        "failed_at": T0,
    }
    fields.update(overrides)
    return DeadLetter.model_validate(fields)


# --- pure ----------------------------------------------------------------------------------
def test_selection_filters_by_reason_stage_topic_and_half_open_time_range() -> None:
    sel = Selection(
        reasons=frozenset({"invalid_record"}),
        stages=frozenset({"classify"}),
        since=T0,
        until=T0 + timedelta(hours=1),
    )
    assert sel.matches(letter())
    assert not sel.matches(letter(reason="unknown_agency"))
    assert not sel.matches(letter(stage="route"))
    assert not sel.matches(letter(failed_at=T0 - timedelta(seconds=1)))
    assert not sel.matches(letter(failed_at=T0 + timedelta(hours=1)))
    assert Selection().matches(letter(reason="anything", stage="route"))
    prefixed = letter(source_topic="t1.aduan.messages.v1")
    assert Selection(source_topics=frozenset({"aduan.messages.v1"})).matches(prefixed)
    assert not Selection(source_topics=frozenset({"aduan.classified.v1"})).matches(prefixed)


def test_plan_resends_payload_bytes_with_original_key() -> None:
    action = plan(letter())
    assert action == Resend("aduan.messages.v1", b"instagram:thread-1", b'{"x": 1}')


def test_plan_fetches_raw_references_and_refuses_what_cannot_be_replayed() -> None:
    raw = letter(stage="ingest", source_topic="p.aduan.raw.v1", payload_b64=None)
    assert plan(raw) == FetchRaw("p.aduan.raw.v1", 2, 40)
    no_pos = letter(source_topic="aduan.raw.v1", payload_b64=None, source_offset=None)
    assert isinstance(plan(no_pos), Unreplayable)
    assert isinstance(plan(letter(payload_b64=None)), Unreplayable)
    assert isinstance(plan(letter(payload_b64="%%%not-base64")), Unreplayable)


def test_raw_metadata_rebuilt_from_ingest_headers() -> None:
    headers = list(to_headers(Platform.instagram, T0, "application/json"))
    assert [name for name, _ in headers] == [
        "platform",
        "received_at",
        "content_type",
        "signature_verified",
    ]
    meta = from_headers(b"d-1", headers)
    assert meta == RawDelivery(
        delivery_id="d-1",
        platform=Platform.instagram,
        received_at=T0,
        content_type="application/json",
        signature_verified=True,
    )
    with pytest.raises(ValueError):
        from_headers(b"d-1", headers[1:])  # platform missing


# --- against the broker --------------------------------------------------------------------
def instagram_comment(comment_id: str, text: str) -> bytes:
    return build_comment(comment_id, text, account_id=IG_ACCOUNT, time_s=int(T0.timestamp()))


@pytest.fixture
async def settings(kafka_bootstrap: str, topic_prefix: str) -> Settings:
    s = Settings().model_copy(
        update={
            "bootstrap_servers": kafka_bootstrap,
            "topic_prefix": topic_prefix,
            "pseudonym_key": SecretStr("test-pseudonym-key"),
        }
    )
    await ensure_topics(s, (RAW, MESSAGES, DEADLETTER))
    return s


def topics(s: Settings) -> tuple[str, str, str]:
    p = s.topic_prefix
    return f"{p}{RAW.name}", f"{p}{MESSAGES.name}", f"{p}{DEADLETTER.name}"


async def seed(s: Settings) -> dict[str, object]:
    """Write a raw delivery and four dead letters (two payload, one raw ref, one garbage)."""
    raw_topic, messages_topic, dl_topic = topics(s)
    producer = AIOKafkaProducer(bootstrap_servers=s.bootstrap_servers, enable_idempotence=False)
    await producer.start()
    try:
        body = instagram_comment("c-replay-1", "Lampu jalan di Rungkut mati sejak kemarin")
        raw_headers = list(to_headers(Platform.instagram, T0, "application/json"))
        meta = await (await producer.send(raw_topic, body, key=b"delivery-1", headers=raw_headers))
        letters = [
            letter(source_topic=messages_topic, source_key="k1", payload_b64=_b64(b"m1")),
            letter(
                source_topic=messages_topic,
                reason="unknown_agency",
                stage="route",
                source_key="k2",
                payload_b64=_b64(b"m2"),
                failed_at=T0 + timedelta(hours=2),
            ),
            letter(
                stage="ingest",
                reason="unsupported_field",
                source_topic=raw_topic,
                source_partition=meta.partition,
                source_offset=meta.offset,
                source_key="delivery-1",
                payload_b64=None,
            ),
        ]
        for dl in letters:
            await (await producer.send(dl_topic, codecs.dumps(dl), key=b"k"))
        await (await producer.send(dl_topic, b"{not a dead letter", key=b"k"))
    finally:
        await producer.stop()
    return {"raw_offset": meta.offset, "raw_partition": meta.partition}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.mark.kafka
async def test_dry_run_counts_and_writes_nothing_then_real_run_resends(settings: Settings) -> None:
    await seed(settings)
    _, messages_topic, _ = topics(settings)
    sel = Selection(stages=frozenset({"classify", "route"}))

    dry = await replay(settings, sel, dry_run=True)
    assert (dry.scanned, dry.selected, dry.replayed, dry.produced) == (4, 2, 0, 0)
    assert dry.unreplayable == 1  # the unreadable record, reported not fatal
    assert dry.by_reason == {"invalid_record": 1, "unknown_agency": 1}

    real = await replay(settings, sel)
    assert (real.selected, real.replayed, real.produced, real.failed) == (2, 2, 2, 0)

    async with TopicReader(settings.bootstrap_servers, messages_topic) as reader:
        await reader.wait_for(lambda recs: len(recs) >= 2)
        records = await reader.drain(quiet_s=1.0)
    # Exactly two: the dry run wrote nothing.
    assert sorted((r.key, r.value) for r in records) == [(b"k1", b"m1"), (b"k2", b"m2")]
    for r in records:
        assert dict(r.headers)[REPLAY_HEADER].startswith(b"deadletter:0:")


@pytest.mark.kafka
async def test_time_range_and_reason_select_a_subset(settings: Settings) -> None:
    await seed(settings)
    only_late = await replay(settings, Selection(since=T0 + timedelta(hours=1)), dry_run=True)
    assert only_late.by_reason == {"unknown_agency": 1}
    by_reason = await replay(
        settings, Selection(reasons=frozenset({"unsupported_field"})), dry_run=True
    )
    assert by_reason.selected == 1
    assert by_reason.by_target == {topics(settings)[1]: 1}  # raw refs re-parse into messages


@pytest.mark.kafka
async def test_raw_reference_reparsed_with_ingest_parser(settings: Settings) -> None:
    await seed(settings)
    _, messages_topic, _ = topics(settings)
    summary = await replay(
        settings, Selection(stages=frozenset({"ingest"})), reparser=ingest_reparser(settings)
    )
    assert (summary.replayed, summary.failed) == (1, 0), summary.problems
    assert summary.produced == 1
    async with TopicReader(settings.bootstrap_servers, messages_topic) as reader:
        records = await reader.wait_for(lambda recs: len(recs) >= 1)
    message = orjson.loads(records[0].value)
    expected_id = Pseudonymizer(b"test-pseudonym-key").message_id("instagram:c-replay-1")
    assert message["message_id"] == expected_id  # ingest's pseudonym of the comment id
    assert message["delivery_id"] == "delivery-1"
    assert message["received_at"].startswith("2026-03-02T03:00:00")
    assert records[0].key == message["thread_key"].encode()
    assert "990001" not in records[0].value.decode()  # author pseudonymised, as in ingest
    headers = dict(records[0].headers)
    assert headers["dedup"] == expected_id.encode()  # running ingests learn the key
    assert REPLAY_HEADER in headers


@pytest.mark.kafka
async def test_still_failing_entries_are_dead_lettered_again_without_looping(
    settings: Settings,
) -> None:
    await seed(settings)
    _, _, dl_topic = topics(settings)
    calls: list[RawDelivery] = []

    def still_broken(meta: RawDelivery, body: bytes) -> Reparsed:
        calls.append(meta)
        return Reparsed(rejected=[("unsupported_field", "still unsupported", 0)])

    summary = await replay(settings, Selection(stages=frozenset({"ingest"})), reparser=still_broken)
    assert len(calls) == 1 and calls[0].delivery_id == "delivery-1"
    assert (summary.replayed, summary.dead_lettered_again, summary.produced) == (1, 1, 0)
    async with TopicReader(settings.bootstrap_servers, dl_topic) as reader:
        records = await reader.wait_for(lambda recs: len(recs) >= 5)
    again = DeadLetter.model_validate_json(records[-1].value)
    assert again.detail == "after replay: still unsupported"
    assert again.entry_index == 0 and again.payload_b64 is None
    # A second run sees the new letter (written before it started) but the first did not.
    second = await replay(settings, Selection(stages=frozenset({"ingest"})), dry_run=True)
    assert second.selected == 2


@pytest.mark.kafka
async def test_only_the_selected_entries_of_a_delivery_are_dead_lettered_again(
    settings: Settings,
) -> None:
    """Entries 0 and 1 of one delivery failed; replaying entry 1's letter re-parses the
    delivery once and dead-letters only entry 1 again if it still fails: entry 0's letter
    is still there and must not be doubled."""
    raw_topic, _, dl_topic = topics(settings)
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers)
    await producer.start()
    try:
        body = instagram_comment("c-2", "dua entri")
        headers = list(to_headers(Platform.instagram, T0, "application/json"))
        meta = await (await producer.send(raw_topic, body, key=b"delivery-2", headers=headers))
        for index, reason in ((0, "malformed_entry"), (1, "unknown_account")):
            dl = letter(
                stage="ingest", reason=reason, source_topic=raw_topic,
                source_partition=meta.partition, source_offset=meta.offset,
                source_key="delivery-2", payload_b64=None, entry_index=index,
            )  # fmt: skip
            await (await producer.send(dl_topic, codecs.dumps(dl), key=b"delivery-2"))
    finally:
        await producer.stop()

    def both_fail(meta: RawDelivery, body: bytes) -> Reparsed:
        return Reparsed(rejected=[("malformed_entry", "a", 0), ("unknown_account", "b", 1)])

    summary = await replay(
        settings, Selection(reasons=frozenset({"unknown_account"})), reparser=both_fail
    )
    assert (summary.selected, summary.dead_lettered_again) == (1, 1)
    async with TopicReader(settings.bootstrap_servers, dl_topic) as reader:
        records = await reader.wait_for(lambda recs: len(recs) >= 3)
        records = await reader.drain(quiet_s=0.5)
    again = [DeadLetter.model_validate_json(r.value) for r in records[2:]]
    assert [(d.entry_index, d.reason) for d in again] == [(1, "unknown_account")]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "yesterday"], "is not an ISO 8601 instant"),
        (["--stage", "foo"], "invalid choice: 'foo'"),
        (["--limit", "-1"], "must be at least 1"),
        (["--reason", "No Such"], "is not a reason code"),
    ],
)
def test_command_line_mistakes_are_one_line(args: list[str], message: str) -> None:
    import subprocess

    done = subprocess.run(
        [sys.executable, "-m", "services.replay", "--dry-run", *args],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr


def test_command_line_without_a_broker_is_one_line() -> None:
    import subprocess

    from common.broker import free_port

    done = subprocess.run(
        [sys.executable, "-m", "services.replay", "--dry-run",
         "--bootstrap-servers", f"127.0.0.1:{free_port()}"],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 3, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("replay: Kafka at 127.0.0.1:"), lines


@pytest.mark.kafka
async def test_a_reason_that_matches_nothing_is_reported(settings: Settings) -> None:
    await seed(settings)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.replay", "--dry-run", "--reason", "no_such",
        "--bootstrap-servers", settings.bootstrap_servers,
        "--topic-prefix", settings.topic_prefix,
        cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 2
    assert "no dead letter has reason no_such (seen: " in err.decode()


@pytest.mark.kafka
async def test_republish_mode_copies_the_raw_record_verbatim(settings: Settings) -> None:
    await seed(settings)
    raw_topic, _, _ = topics(settings)
    summary = await replay(settings, Selection(stages=frozenset({"ingest"})), raw_mode="republish")
    assert (summary.replayed, summary.produced) == (1, 1)
    async with TopicReader(settings.bootstrap_servers, raw_topic) as reader:
        records = await reader.wait_for(lambda recs: len(recs) >= 2)
    original, copy = records[0], records[1]
    assert (copy.key, copy.value) == (original.key, original.value)
    assert dict(copy.headers)["platform"] == b"instagram"
    assert REPLAY_HEADER in dict(copy.headers)


@pytest.mark.kafka
async def test_command_line_dry_run_reports_progress_and_json(settings: Settings) -> None:
    await seed(settings)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.replay",
        "--dry-run",
        "--list",
        "--reason",
        "invalid_record",
        "--since",
        "2026-03-02T09:00+07:00",
        "--bootstrap-servers",
        settings.bootstrap_servers,
        "--topic-prefix",
        settings.topic_prefix,
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, err.decode()
    assert "replay: scanned=4 selected=1" in err.decode()
    lines = out.decode().strip().splitlines()
    summary = json.loads(lines[-1])
    assert summary["dry_run"] is True and summary["selected"] == 1
    assert "\tinvalid_record\t" in lines[0]
