"""Benchmark inputs built from the demo's hand-written messages (never the evaluation data)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from common import codecs
from schemas.classified import ClassifiedMessage, MessageKind, RegionSource, Urgency
from schemas.messages import EventKind, Message, Platform
from services.demo.complaints import COMPLAINTS, KELURAHAN


def messages(n: int, seed: int = 1) -> list[tuple[bytes, bytes]]:
    """``n`` (key, value) records for ``aduan.messages.v1``, about 300-400 bytes each."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    out = []
    for i in range(n):
        text = rng.choice(COMPLAINTS).format(kel=rng.choice(KELURAHAN))
        m = Message(
            message_id=f"instagram:b{i}",
            platform=Platform.instagram,
            kind=EventKind.comment,
            platform_message_id=f"b{i}",
            thread_key=f"instagram:18000000000{i % 997}:b{i}",
            account_id="17841400000000001",
            agency_id="sby-communication",
            region_code="35.78",
            author_pseudonym=f"u_{i:024x}",
            text=text,
            platform_time=now - timedelta(seconds=1),
            received_at=now,
            delivery_id=f"d{i}",
        )
        out.append((m.thread_key.encode(), codecs.dumps(m)))
    return out


def classified(n: int, seed: int = 2) -> list[tuple[bytes, bytes]]:
    """``n`` complaint records for ``aduan.classified.v1``."""
    out = []
    for key, value in messages(n, seed):
        m = Message.model_validate_json(value)
        c = ClassifiedMessage(
            message=m,
            kind=MessageKind.complaint,
            category="roads",
            agency_kind="public_works",
            agency_id="sby-public-works",
            region_code="35.78",
            region_source=RegionSource.account,
            urgency=Urgency.normal,
            confidence=0.9,
            evidence=["bench"],
            classifier_version="bench",
        )
        out.append((key, codecs.dumps(c)))
    return out
