"""Re-submitting selected dead letters after the cause is fixed (the generic part).

The command is ``python -m services.replay``, which binds ingest's parser as the re-parser;
this module knows nothing of any service, so it takes the re-parser as a parameter.

Dead letters come in two shapes (``schemas/deadletter.py``):

* records downstream of ingest carry the failed record's bytes (``payload_b64``); they are
  re-produced unchanged, with their original key, to ``source_topic`` — the processor that
  refused them reads them again with its fixed code or configuration;
* records of ingest refer to a raw delivery by position (``source_topic`` = the raw topic,
  partition, offset) because raw bytes may hold personal data. Nothing consumes the raw topic
  (ingest parses inline before answering the platform), so re-producing the raw record would
  only duplicate the system of record. The default ``--raw-mode reparse`` therefore fetches
  the raw record, runs the given re-parser on it (ingest's own pure ``parse_delivery``, with
  this deployment's registry and pseudonym key) and produces the resulting
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

import base64
import binascii
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TextIO

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError

from common import codecs
from common.cli import Unreachable
from common.connection import make_consumer, make_producer
from common.deadletters import Source, dead_letter
from common.produce import KafkaSink, Output, RecordSink, send_all_or_raise
from common.settings import Settings
from common.topics import DEADLETTER, MESSAGES, RAW
from schemas.deadletter import DeadLetter
from schemas.raw import RawDelivery, from_headers

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


# --- re-parsing raw deliveries ----------------------------------------------------------
@dataclass(slots=True)
class Reparsed:
    """What re-parsing one raw delivery produced: message records and entries still refused."""

    # (key, value, headers) of each message record, headers as ingest writes them
    messages: list[tuple[bytes, bytes, tuple[tuple[str, bytes], ...]]] = field(default_factory=list)
    rejected: list[tuple[str, str, int | None]] = field(default_factory=list)


Reparser = Callable[[RawDelivery, bytes], Reparsed]
"""Re-parses one raw delivery (its metadata and body) into message records and refusals."""


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
    reasons_seen: set[str] = field(default_factory=set)  # of every letter scanned

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
    consumer = make_consumer(settings.kafka, group_id=None)
    try:
        await consumer.start()
    except Exception as exc:
        await consumer.stop()
        raise Unreachable(f"Kafka at {settings.bootstrap_servers} unreachable: {exc}") from exc
    out: list[tuple[int, int, bytes]] = []
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            await consumer.topics()  # refreshes the cluster metadata
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
    deadletter_topic: str,
    meta: RawDelivery,
    ref: FetchRaw,
    reason: str,
    detail: str,
    entry_index: int | None,
) -> Output:
    source = Source(ref.topic, ref.partition, ref.offset, meta.delivery_id.encode())
    return dead_letter(
        deadletter_topic, "ingest", reason, f"after replay: {detail}", source, entry_index
    )


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
        summary.reasons_seen.add(letter.reason)
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
        raise ValueError("raw references selected but no re-parser given (raw_mode='reparse')")
    producer = make_producer(
        settings.kafka, linger_ms=0, request_timeout_ms=int(settings.produce_timeout_s * 1000)
    )
    sink = KafkaSink(producer)
    raw_consumer = make_consumer(settings.kafka, group_id=None)
    await producer.start()
    await raw_consumer.start()
    # A delivery referenced by several selected dead letters is re-parsed once, and only
    # the entries that were selected are dead-lettered again if they still fail.
    selected_entries: dict[tuple[str, int, int], set[int | None]] = {}
    for _p, _o, letter, action in chosen:
        if isinstance(action, FetchRaw):
            pos = (action.topic, action.partition, action.offset)
            selected_entries.setdefault(pos, set()).add(letter.entry_index)
    done_raw: set[tuple[str, int, int]] = set()
    try:
        for partition, offset, _letter, action in chosen:
            origin = ((REPLAY_HEADER, f"deadletter:{partition}:{offset}".encode()),)
            try:
                if isinstance(action, Resend):
                    out = Output(action.topic, action.key, action.value, origin)
                    await send_all_or_raise(sink, [out])
                    summary.produced += 1
                elif isinstance(action, FetchRaw):
                    pos = (action.topic, action.partition, action.offset)
                    if pos not in done_raw:
                        done_raw.add(pos)
                        raw = RawTarget(
                            action, selected_entries[pos], messages_topic, deadletter_topic
                        )
                        await _replay_raw(
                            sink, raw_consumer, raw, raw_mode, reparser, origin, summary
                        )
                summary.replayed += 1
            except Exception as exc:  # one bad record must not stop the run
                summary.failed += 1
                summary.problems.append(f"deadletter@{partition}:{offset}: {exc!r}"[:300])
            report(summary)
    finally:
        await raw_consumer.stop()
        await producer.stop()
    report(summary, force=True)
    return summary


@dataclass(frozen=True, slots=True)
class RawTarget:
    """One raw delivery to replay, which of its entries were selected (None: the delivery
    as a whole), and where re-parsed records go."""

    ref: FetchRaw
    entries: set[int | None]
    messages_topic: str
    deadletter_topic: str


async def _replay_raw(
    sink: RecordSink,
    consumer: AIOKafkaConsumer,
    target: RawTarget,
    raw_mode: RawMode,
    reparser: Reparser | None,
    origin: tuple[tuple[str, bytes], ...],
    summary: Summary,
) -> None:
    ref = target.ref
    key, body, headers = await _fetch_raw(consumer, ref, timeout_s=10.0)
    if raw_mode == "republish":
        await send_all_or_raise(sink, [Output(ref.topic, key, body, (*headers, *origin))])
        summary.produced += 1
        return
    assert reparser is not None
    meta = from_headers(key, headers)
    result = reparser(meta, body)
    outputs = [
        Output(target.messages_topic, mkey, mvalue, (*mheaders, *origin))
        for mkey, mvalue, mheaders in result.messages
    ]
    # A delivery that fails as a whole (entry None) is always kept; of its entries only
    # those selected: the others' dead letters are still there, untouched.
    again = [
        r
        for r in result.rejected
        if r[2] is None or None in target.entries or r[2] in target.entries
    ]
    outputs += [
        _redeadletter(target.deadletter_topic, meta, ref, reason, detail, entry_index)
        for reason, detail, entry_index in again
    ]
    await send_all_or_raise(sink, outputs, batched=True)
    summary.produced += len(result.messages)
    summary.dead_lettered_again += len(again)
