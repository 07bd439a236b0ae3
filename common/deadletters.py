"""Refusals and the dead letters they become: one type, one builder, one metric.

Every stage refuses bad input the same way: it raises (or returns) a ``Refusal`` with a
short machine ``reason`` and a human ``detail``, and the stage's transport turns it into one
``aduan.deadletter.v1`` record with ``dead_letter``. Building the record in one place keeps
the detail cap, the metric and the record's shape the same for ingest, classify and route,
and lets ``python -m services.replay`` treat all of them alike.

Privacy: a detail names where and which rule failed (a JSON path, a field, a limit), never
the offending value, because dead letters leave the raw topic."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from common import codecs, metrics
from common.produce import Output, Written
from common.refusal import DETAIL_MAX, Refusal
from schemas.deadletter import DeadLetter


class ConsumedRecord(Written, Protocol):
    """What a consumed record offers (aiokafka's ``ConsumerRecord``, route's ``Incoming``):
    where it is, as for a written one, plus its key and value."""

    @property
    def key(self) -> bytes | None: ...

    @property
    def value(self) -> bytes | None: ...


@dataclass(frozen=True, slots=True)
class Source:
    """The record a dead letter is about: where it was read (or written, for ingest's raw
    deliveries), its key, and its bytes when they may travel (never raw bytes)."""

    topic: str
    partition: int | None
    offset: int | None
    key: bytes | None
    payload: bytes | None = None

    @classmethod
    def of(cls, record: ConsumedRecord) -> Source:
        """A consumed record downstream of ingest: already masked, so its bytes travel
        with the dead letter and a replay can re-produce them unchanged."""
        return cls(record.topic, record.partition, record.offset, record.key, record.value or b"")


def dead_letter(
    deadletter_topic: str,
    stage: str,
    reason: str,
    detail: str,
    source: Source,
    entry_index: int | None = None,
) -> Output:
    """The dead-letter record for one refused input, keyed like the input; counts it."""
    metrics.DEAD_LETTERS.labels(stage, reason).inc()
    letter = DeadLetter(
        stage=stage,
        reason=reason,
        detail=detail[:DETAIL_MAX],
        source_topic=source.topic,
        source_partition=source.partition,
        source_offset=source.offset,
        source_key=source.key.decode("utf-8", "replace") if source.key is not None else None,
        entry_index=entry_index,
        payload_b64=base64.b64encode(source.payload).decode()
        if source.payload is not None
        else None,
        failed_at=datetime.now(UTC),
    )
    return Output(deadletter_topic, source.key, codecs.dumps(letter))


def refused(deadletter_topic: str, stage: str, refusal: Refusal, source: Source) -> Output:
    return dead_letter(deadletter_topic, stage, refusal.reason, refusal.detail, source)
