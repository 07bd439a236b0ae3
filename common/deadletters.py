"""Building dead-letter records for processors that consume topic records."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

from aiokafka import ConsumerRecord

from common import codecs, metrics
from common.kafka import Output
from schemas.deadletter import DeadLetter


def dead_letter_for(
    record: ConsumerRecord, *, stage: str, reason: str, detail: str, deadletter_topic: str
) -> Output:
    """A dead-letter output carrying the failed record's bytes so it can be replayed later.

    Only for records downstream of ingest: those are already masked and pseudonymised."""
    metrics.DEAD_LETTERS.labels(stage, reason).inc()
    key = record.key.decode("utf-8", "replace") if record.key is not None else None
    letter = DeadLetter(
        stage=stage,
        reason=reason,
        detail=detail[:2000],
        source_topic=record.topic,
        source_partition=record.partition,
        source_offset=record.offset,
        source_key=key,
        payload_b64=base64.b64encode(record.value or b"").decode(),
        failed_at=datetime.now(UTC),
    )
    return Output(deadletter_topic, record.key, codecs.dumps(letter))
