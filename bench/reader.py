"""The end-to-end bench's reader of ``routed`` events, in a process of its own.

In the bench's own process the reader shared its event loop with the client posting 500
webhooks/s: its "read" stage (routed record written → seen) measured p50 13 / p99 42-72 ms
on records the broker already held, time spent waiting for the poster's callbacks rather
than in the pipeline. Here it notes the moment it reads each record on the system-wide
monotonic clock (``CLOCK_MONOTONIC``, the same in every process of the machine, so it
compares with the poster's ``time.monotonic()``) and prints one line per record,
``<complaint_id> <seconds>``, for the bench to collect.

``python -m bench.reader BOOTSTRAP TOPIC GROUP``: reads from the earliest offset until killed.
"""

from __future__ import annotations

import asyncio
import sys
import time

import orjson
from aiokafka import AIOKafkaConsumer


async def read(bootstrap: str, topic: str, group: str) -> None:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=20,  # Tansu holds a fetch up to about half this (docs/performance.md)
    )
    await consumer.start()
    out = sys.stdout.buffer
    try:
        while True:
            for records in (await consumer.getmany(timeout_ms=100)).values():
                now = b"%.6f\n" % time.monotonic()
                out.write(b"".join(_id(r.value) + b" " + now for r in records))
            out.flush()
    finally:
        await consumer.stop()


def _id(value: bytes | None) -> bytes:
    return str(orjson.loads(value or b"{}").get("complaint_id", "")).encode()


if __name__ == "__main__":
    asyncio.run(read(*sys.argv[1:4]))
