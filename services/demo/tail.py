"""A live tail of routing and deadline events, one line each, for the terminal."""

from __future__ import annotations

import asyncio
import sys
import uuid
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from aiokafka import AIOKafkaConsumer

from common.registry import Registry

WIB = ZoneInfo("Asia/Jakarta")


def format_event(topic: str, event: dict[str, Any], registry: Registry | None = None) -> str:
    """``ROUTED sby-public-works  roads  due 23 Nov 09:00 WIB  "Jalan di ..."``"""
    kind = str(event.get("event_type", "?")).upper()
    agency = str(event.get("agency_id", "?"))
    tz = WIB
    if registry is not None and (a := registry.agency(agency)) is not None:
        tz = ZoneInfo(a.timezone)
    if "due" in event:
        due = event["due"].get("first_response") or next(iter(event["due"].values()), None)
        category = event.get("category", "?")
        excerpt = str(event.get("text_excerpt", "")).replace("\n", " ")
        excerpt = excerpt if len(excerpt) <= 70 else excerpt[:69] + "…"
        return f'{kind:<9} {agency:<28} {category:<22} due {_local(due, tz)}  "{excerpt}"'
    clock = event.get("clock") or ""
    when = _local(event.get("occurred_at"), tz)
    due = f" (due {_local(event['due_at'], tz)})" if event.get("due_at") else ""
    return f"{kind:<9} {agency:<28} {clock:<22} at  {when}{due}  {event.get('complaint_id', '')}"


def _local(iso: str | None, tz: ZoneInfo) -> str:
    if not iso:
        return "-"
    t = datetime.fromisoformat(iso).astimezone(tz)
    return f"{t:%d %b %H:%M} {t.tzname()}"


async def run_tail(
    bootstrap: str, topics: list[str], stop: asyncio.Event, registry: Registry | None = None
) -> None:
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=f"tail-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="latest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=250)
            for records in batches.values():
                for r in records:
                    try:
                        line = format_event(r.topic, orjson.loads(r.value), registry)
                    except (ValueError, KeyError, TypeError) as exc:
                        line = f"(unreadable record on {r.topic}: {exc})"
                    print(line, file=sys.stdout, flush=True)
    finally:
        await consumer.stop()
