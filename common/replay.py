"""``python -m common.replay``: re-submit selected dead letters after the cause is fixed.

Dead letters come in two shapes (``schemas/deadletter.py``):

* records downstream of ingest carry the failed record's bytes (``payload_b64``); they are
  re-produced unchanged, with their original key, to ``source_topic`` — the processor that
  refused them reads them again with its fixed code or configuration;
* records of ingest refer to a raw delivery by position (``source_topic`` = the raw topic,
  partition, offset) because raw bytes may hold personal data. Nothing consumes the raw topic
  (ingest parses inline before answering the platform), so re-producing the raw record would
  only duplicate the system of record. The default ``--raw-mode reparse`` therefore fetches
  the raw record, runs ingest's own pure parser on it (the same ``parse_delivery`` the HTTP
  path uses, with this deployment's registry and pseudonym key) and produces the resulting
  messages to the messages topic; entries that still fail are dead-lettered again.
  ``--raw-mode republish`` re-produces the raw record as-is (key, value, headers) for
  deployments that run a consumer on the raw topic.

Re-parsing yields every message of the delivery, including those accepted the first time:
downstream processors are idempotent by ``message_id`` (classify writes the same record
under the same key, route emits each deadline event once), so a replay cannot double a
complaint. A delivery referenced by several dead letters is re-parsed once per run.

The dead-letter topic is read from its start up to the end seen at the first fetch, so
records dead-lettered again during the run are not picked up by the same run (no loop).
Progress goes to stderr; a one-line JSON summary goes to stdout for scripts."""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pydantic import ValidationError

from common import codecs
from common.settings import Settings, get_settings
from common.topics import DEADLETTER, MESSAGES, RAW
from schemas.deadletter import DeadLetter
from schemas.raw import RawDelivery

RawMode = Literal["reparse", "republish"]
REPLAY_HEADER = "aduan-replayed-from"
"""Added to every replayed record: ``deadletter:<partition>:<offset>`` (traceability only)."""


# --- pure selection and planning ----------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Selection:
    """Which dead letters to replay; an empty set means "any"."""

    reasons: frozenset[str] = frozenset()
    stages: frozenset[str] = frozenset()
    source_topics: frozenset[str] = frozenset()
    since: datetime | None = None
    until: datetime | None = None

    def matches(self, letter: DeadLetter) -> bool:
        if self.reasons and letter.reason not in self.reasons:
            return False
        if self.stages and letter.stage not in self.stages:
            return False
        if self.source_topics and not any(
            letter.source_topic == t or letter.source_topic.endswith(t) for t in self.source_topics
        ):
            return False
        if self.since is not None and letter.failed_at < self.since:
            return False
        return self.until is None or letter.failed_at < self.until


@dataclass(frozen=True, slots=True)
class Resend:
    """Re-produce these exact bytes to ``topic``."""

    topic: str
    key: bytes | None
    value: bytes


@dataclass(frozen=True, slots=True)
class FetchRaw:
    """Fetch the raw delivery at this position, then re-parse or republish it."""

    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class Unreplayable:
    why: str


Plan = Resend | FetchRaw | Unreplayable


def plan(letter: DeadLetter) -> Plan:
    """Decide how one dead letter can be replayed, from its fields alone."""
    if letter.payload_b64 is not None:
        try:
            value = base64.b64decode(letter.payload_b64, validate=True)
        except (binascii.Error, ValueError):
            return Unreplayable("payload_b64 is not valid base64")
        key = letter.source_key.encode() if letter.source_key is not None else None
        return Resend(letter.source_topic, key, value)
    if letter.source_topic.endswith(RAW.name):
        if letter.source_partition is None or letter.source_offset is None:
            return Unreplayable("raw reference without partition/offset")
        return FetchRaw(letter.source_topic, letter.source_partition, letter.source_offset)
    return Unreplayable(f"no payload and {letter.source_topic!r} is not the raw topic")


def raw_delivery_from(key: bytes | None, headers: Iterable[tuple[str, bytes]]) -> RawDelivery:
    """Rebuild the ``RawDelivery`` metadata ingest wrote as record headers (key = delivery id).

    Raises ValueError (pydantic.ValidationError) when a header is missing or malformed."""
    fields: dict[str, Any] = {}
    for name, value in headers:
        norm = name.lower().removeprefix("aduan-").replace("-", "_")
        if norm in RawDelivery.model_fields:
            fields[norm] = value.decode("utf-8", "replace")
    if key is not None:
        fields.setdefault("delivery_id", key.decode("utf-8", "replace"))
    if "signature_verified" in fields:
        fields["signature_verified"] = fields["signature_verified"].lower() in {"true", "1"}
    return RawDelivery.model_validate(fields)


# --- re-parsing raw deliveries ----------------------------------------------------------
@dataclass(slots=True)
class Reparsed:
    """What re-parsing one raw delivery produced: message records and entries still refused."""

    # (key, value, headers) of each message record, headers as ingest writes them
    messages: list[tuple[bytes, bytes, tuple[tuple[str, bytes], ...]]] = field(default_factory=list)
    rejected: list[tuple[str, str, int | None]] = field(default_factory=list)


Reparser = Callable[[RawDelivery, bytes], Reparsed]


def ingest_reparser(settings: Settings) -> Reparser:
    """Bind ingest's pure parser to this deployment's registry and pseudonym key, so a
    re-parsed message is byte-for-byte what ingest would have produced."""
    from common.registry import load_registry, secret_from_env
    from services.ingest.dedup import HEADER, dedup_key
    from services.ingest.parsing import DeliveryContext, MalformedDelivery, parse_delivery
    from services.ingest.privacy import Pseudonymizer

    registry = load_registry(settings.registry_file)
    key = settings.pseudonym_key.get_secret_value() or (
        secret_from_env("ADUAN_PSEUDONYM_KEY", settings.secrets_file) or ""
    )
    pseudonymize = Pseudonymizer(key.encode())

    def reparse(meta: RawDelivery, body: bytes) -> Reparsed:
        ctx = DeliveryContext(meta.delivery_id, meta.received_at, registry, pseudonymize)
        out = Reparsed()
        try:
            result = parse_delivery(meta.platform, body, ctx)
        except MalformedDelivery as exc:
            out.rejected.append((exc.reason, exc.detail, None))
            return out
        # The dedup header lets running ingest instances, which tail the messages topic,
        # learn these keys: a later platform retry of the same entry is then dropped.
        out.messages = [
            (m.thread_key.encode(), codecs.dumps(m), ((HEADER, dedup_key(m).encode()),))
            for m in result.messages
        ]
        out.rejected = [(r.reason, r.detail, r.entry_index) for r in result.rejected]
        return out

    return reparse


# --- transport -----------------------------------------------------------------------------
@dataclass(slots=True)
class Summary:
    scanned: int = 0
    selected: int = 0
    replayed: int = 0  # dead letters handled (resent, re-parsed or republished)
    produced: int = 0  # records written to source topics
    dead_lettered_again: int = 0
    unreplayable: int = 0
    failed: int = 0
    by_reason: Counter[str] = field(default_factory=Counter)
    by_target: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "scanned": self.scanned,
            "selected": self.selected,
            "replayed": self.replayed,
            "produced": self.produced,
            "dead_lettered_again": self.dead_lettered_again,
            "unreplayable": self.unreplayable,
            "failed": self.failed,
            "by_reason": dict(self.by_reason),
            "by_target": dict(self.by_target),
            "problems": self.problems[:20],
        }


class Progress:
    """Rate-limited progress lines on stderr, so a long replay shows it is moving."""

    def __init__(self, out: TextIO, every_s: float = 1.0) -> None:
        self.out = out
        self.every_s = every_s
        self._last = 0.0

    def __call__(self, s: Summary, *, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last >= self.every_s:
            self._last = now
            print(
                f"replay: scanned={s.scanned} selected={s.selected} replayed={s.replayed} "
                f"produced={s.produced} unreplayable={s.unreplayable} failed={s.failed}",
                file=self.out,
                flush=True,
            )


async def _read_deadletters(
    settings: Settings, idle_timeout_s: float
) -> list[tuple[int, int, bytes]]:
    """Every dead-letter record up to the end seen at the first fetch: (partition, offset, value).

    The end comes from fetch high-watermarks, not ListOffsets (which Tansu under-reports);
    an empty topic is recognised by ``idle_timeout_s`` without any record."""
    topic = f"{settings.topic_prefix}{DEADLETTER.name}"
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=100,
    )
    await consumer.start()
    out: list[tuple[int, int, bytes]] = []
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        if not partitions:
            return out
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        stop_at: dict[TopicPartition, int] = {}
        last_progress = time.monotonic()
        while True:
            batches = await consumer.getmany(timeout_ms=200, max_records=1000)
            for tp, recs in batches.items():
                end = stop_at.get(tp)
                for r in recs:
                    if end is not None and r.offset >= end:
                        break
                    out.append((r.partition, r.offset, r.value or b""))
            if batches:
                last_progress = time.monotonic()
            for tp in tps:
                hw = consumer.highwater(tp)
                if hw is not None and tp not in stop_at:
                    stop_at[tp] = hw
            done = True
            for tp in tps:
                if tp not in stop_at or await consumer.position(tp) < stop_at[tp]:
                    done = False
            if done or time.monotonic() - last_progress > idle_timeout_s:
                return out
    finally:
        await consumer.stop()


async def _fetch_raw(
    consumer: AIOKafkaConsumer, ref: FetchRaw, timeout_s: float
) -> tuple[bytes | None, bytes, list[tuple[str, bytes]]]:
    """The raw record at exactly ``ref``'s position; LookupError if it is gone (retention)."""
    tp = TopicPartition(ref.topic, ref.partition)
    consumer.assign([tp])
    consumer.seek(tp, ref.offset)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        batches = await consumer.getmany(tp, timeout_ms=200, max_records=1)
        for rec in batches.get(tp, []):
            if rec.offset == ref.offset:
                return rec.key, rec.value or b"", list(rec.headers or ())
            raise LookupError(f"offset {ref.offset} no longer exists (next is {rec.offset})")
    raise LookupError(f"raw record {ref.topic}[{ref.partition}]@{ref.offset} not fetched in time")


def _redeadletter(
    meta: RawDelivery, ref: FetchRaw, reason: str, detail: str, entry_index: int | None
) -> bytes:
    letter = DeadLetter(
        stage="ingest",
        reason=reason,
        detail=f"after replay: {detail}"[:2000],
        source_topic=ref.topic,
        source_partition=ref.partition,
        source_offset=ref.offset,
        source_key=meta.delivery_id,
        entry_index=entry_index,
        payload_b64=None,
        failed_at=datetime.now(UTC),
    )
    return codecs.dumps(letter)


async def replay(
    settings: Settings,
    selection: Selection,
    *,
    dry_run: bool = False,
    raw_mode: RawMode = "reparse",
    limit: int | None = None,
    reparser: Reparser | None = None,
    progress: Callable[..., None] | None = None,
    listing: TextIO | None = None,
    idle_timeout_s: float = 3.0,
) -> Summary:
    """Select dead letters and re-submit them; returns counts (also in dry-run mode)."""
    summary = Summary()
    report = progress or (lambda *_a, **_k: None)
    records = await _read_deadletters(settings, idle_timeout_s)
    messages_topic = f"{settings.topic_prefix}{MESSAGES.name}"
    deadletter_topic = f"{settings.topic_prefix}{DEADLETTER.name}"

    chosen: list[tuple[int, int, DeadLetter, Plan]] = []
    for partition, offset, value in records:
        summary.scanned += 1
        try:
            letter = codecs.decode_model(DeadLetter, value)
        except (ValidationError, ValueError) as exc:
            summary.unreplayable += 1
            summary.problems.append(f"deadletter@{partition}:{offset}: unreadable: {exc}"[:300])
            continue
        if not selection.matches(letter):
            continue
        if limit is not None and summary.selected >= limit:
            break
        summary.selected += 1
        summary.by_reason[letter.reason] += 1
        action = plan(letter)
        if isinstance(action, Unreplayable):
            summary.unreplayable += 1
            summary.problems.append(f"deadletter@{partition}:{offset}: {action.why}")
            continue
        target = (
            action.topic
            if isinstance(action, Resend)
            else (action.topic if raw_mode == "republish" else messages_topic)
        )
        summary.by_target[target] += 1
        if listing is not None:
            listing.write(
                f"{partition}:{offset}\t{letter.failed_at.isoformat()}\t{letter.stage}\t"
                f"{letter.reason}\t{letter.source_topic}\t-> {target}\n"
            )
        chosen.append((partition, offset, letter, action))
    report(summary, force=True)
    if dry_run or not chosen:
        return summary

    if (
        raw_mode == "reparse"
        and reparser is None
        and any(isinstance(a, FetchRaw) for *_, a in chosen)
    ):
        reparser = ingest_reparser(settings)
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        acks="all",
        enable_idempotence=False,  # Tansu refuses InitProducerId; consumers are idempotent
        max_request_size=8 * 1024 * 1024,
        request_timeout_ms=int(settings.produce_timeout_s * 1000),
    )
    raw_consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        fetch_max_wait_ms=100,
    )
    await producer.start()
    await raw_consumer.start()
    done_raw: set[tuple[str, int, int]] = set()
    try:
        for partition, offset, _letter, action in chosen:
            origin = [(REPLAY_HEADER, f"deadletter:{partition}:{offset}".encode())]
            try:
                if isinstance(action, Resend):
                    await _send(producer, action.topic, action.key, action.value, origin)
                    summary.produced += 1
                elif isinstance(action, FetchRaw):
                    pos = (action.topic, action.partition, action.offset)
                    if pos not in done_raw:
                        done_raw.add(pos)
                        await _replay_raw(
                            producer,
                            raw_consumer,
                            action,
                            raw_mode,
                            reparser,
                            messages_topic,
                            deadletter_topic,
                            origin,
                            summary,
                        )
                summary.replayed += 1
            except Exception as exc:  # one bad record must not stop the run
                summary.failed += 1
                summary.problems.append(f"deadletter@{partition}:{offset}: {exc!r}"[:300])
            report(summary)
        await producer.flush()
    finally:
        await raw_consumer.stop()
        await producer.stop()
    report(summary, force=True)
    return summary


async def _send(
    producer: AIOKafkaProducer,
    topic: str,
    key: bytes | None,
    value: bytes,
    headers: list[tuple[str, bytes]],
) -> None:
    fut = await producer.send(topic, value, key=key, headers=headers)
    await fut


async def _replay_raw(
    producer: AIOKafkaProducer,
    consumer: AIOKafkaConsumer,
    ref: FetchRaw,
    raw_mode: RawMode,
    reparser: Reparser | None,
    messages_topic: str,
    deadletter_topic: str,
    origin: list[tuple[str, bytes]],
    summary: Summary,
) -> None:
    key, body, headers = await _fetch_raw(consumer, ref, timeout_s=10.0)
    if raw_mode == "republish":
        await _send(producer, ref.topic, key, body, [*headers, *origin])
        summary.produced += 1
        return
    assert reparser is not None
    meta = raw_delivery_from(key, headers)
    result = reparser(meta, body)
    sends: list[Awaitable[Any]] = []
    for mkey, mvalue, mheaders in result.messages:
        headers = [*mheaders, *origin]
        sends.append(await producer.send(messages_topic, mvalue, key=mkey, headers=headers))
    for reason, detail, entry_index in result.rejected:
        value = _redeadletter(meta, ref, reason, detail, entry_index)
        sends.append(await producer.send(deadletter_topic, value, key=meta.delivery_id.encode()))
    await asyncio.gather(*sends)
    summary.produced += len(result.messages)
    summary.dead_lettered_again += len(result.rejected)


# --- command line ----------------------------------------------------------------------------
def _utc(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r}: give a time zone, e.g. 2026-01-31T08:00+07:00")
    return value.astimezone(UTC)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m common.replay",
        description="Re-submit selected records of aduan.deadletter.v1 to their source topic.",
    )
    p.add_argument("--reason", action="append", default=[], help="dead-letter reason (repeat)")
    p.add_argument("--stage", action="append", default=[], help="ingest, classify, route (repeat)")
    p.add_argument(
        "--source-topic", action="append", default=[], help="e.g. aduan.messages.v1 (repeat)"
    )
    p.add_argument("--since", type=_utc, help="failed_at >= this instant (ISO 8601 with zone)")
    p.add_argument("--until", type=_utc, help="failed_at < this instant (ISO 8601 with zone)")
    p.add_argument("--limit", type=int, help="replay at most this many selected records")
    p.add_argument(
        "--raw-mode",
        choices=("reparse", "republish"),
        default="reparse",
        help="how to replay raw references (default reparse: run ingest's parser again)",
    )
    p.add_argument("--dry-run", action="store_true", help="select and count, write nothing")
    p.add_argument("--list", action="store_true", help="print each selected record on stdout")
    p.add_argument("--bootstrap-servers", help="override KAFKA_BOOTSTRAP_SERVERS")
    p.add_argument("--topic-prefix", help="override ADUAN_TOPIC_PREFIX")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    overrides: dict[str, Any] = {}
    if args.bootstrap_servers:
        overrides["bootstrap_servers"] = args.bootstrap_servers
    if args.topic_prefix is not None:
        overrides["topic_prefix"] = args.topic_prefix
    settings = get_settings().model_copy(update=overrides)
    selection = Selection(
        reasons=frozenset(args.reason),
        stages=frozenset(args.stage),
        source_topics=frozenset(args.source_topic),
        since=args.since,
        until=args.until,
    )
    summary = asyncio.run(
        replay(
            settings,
            selection,
            dry_run=args.dry_run,
            raw_mode=args.raw_mode,
            limit=args.limit,
            progress=Progress(sys.stderr),
            listing=sys.stdout if args.list else None,
        )
    )
    result = {"dry_run": args.dry_run, **summary.as_dict()}
    sys.stdout.write(orjson.dumps(result).decode() + "\n")
    return 1 if summary.failed else 0


if __name__ == "__main__":
    sys.exit(main())
