"""Where the end-to-end time goes: per-stage latency from the records' own timestamps.

Each record carries its producer's timestamp (milliseconds, the writer's wall clock; all
processes run on the bench machine, one clock). For every complaint the bench posted, the
stages are: ``ingest`` POST → its ``aduan.messages.v1`` record, ``classify`` → its
``aduan.classified.v1`` record, ``route`` → its ``aduan.routes.v1`` record, ``read`` → the
bench's reader (``bench.reader``, a process of its own) saw the routed event: the broker's
acknowledgement and that consumer's own fetch wait."""

from __future__ import annotations

import statistics
import time
import uuid

import orjson
from aiokafka import AIOKafkaConsumer

from common.kafka import topic_name
from common.settings import Settings
from common.topics import CLASSIFIED, MESSAGES, ROUTES, TopicSpec


async def timestamps(bootstrap: str, topic: str, id_of: str, quiet_s: float = 2.0) -> dict:
    """id → producer timestamp (s) of every record on ``topic`` (read until quiet)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"stages-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=100,
    )
    await consumer.start()
    out: dict[str, float] = {}
    last = time.monotonic()
    try:
        while time.monotonic() - last < quiet_s:
            for recs in (await consumer.getmany(timeout_ms=300, max_records=10_000)).values():
                for r in recs:
                    doc = orjson.loads(r.value)
                    key = doc["message"]["message_id"] if id_of == "classified" else doc[id_of]
                    out.setdefault(key, r.timestamp / 1000)
                last = time.monotonic()
    finally:
        await consumer.stop()
    return out


async def breakdown(
    bootstrap: str, settings: Settings, sent: dict[str, float], seen: dict[str, float]
) -> dict[str, float]:
    """p50/p99 milliseconds per stage for the complaints in both ``sent`` and ``seen``
    (wall-clock seconds of the POST and of the bench reading the routed event)."""
    specs: list[tuple[str, TopicSpec, str]] = [
        ("messages", MESSAGES, "message_id"),
        ("classified", CLASSIFIED, "classified"),
        ("routes", ROUTES, "complaint_id"),
    ]
    at = {name: await timestamps(bootstrap, topic_name(spec, settings), field)
          for name, spec, field in specs}  # fmt: skip
    stages: dict[str, list[float]] = {"ingest": [], "classify": [], "route": [], "read": []}
    for cid, posted in sent.items():
        times = [posted, *(at[n].get(cid) for n, _, _ in specs), seen.get(cid)]
        if any(t is None for t in times):
            continue
        for name, a, b in zip(stages, times, times[1:], strict=False):
            stages[name].append(max(0.0, (b - a) * 1000))  # type: ignore[operator]
    out: dict[str, float] = {}
    for name, values in stages.items():
        if len(values) >= 100:
            q = statistics.quantiles(values, n=100, method="inclusive")
            out[f"stage_{name}_p50_ms"], out[f"stage_{name}_p99_ms"] = q[49], q[98]
    return out
