"""Signed demo webhooks at a configurable rate, as a platform would send them."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import time
from collections.abc import Iterator

import aiohttp
import orjson

from services.demo.complaints import AGENCY_REPLIES, COMPLAINTS, KELURAHAN, OTHER
from services.ingest.signatures import meta_signature

log = logging.getLogger("aduan.demo")
IG_ACCOUNT = "17841400000000001"  # the demo registry's Instagram account


def instagram_deliveries(seed: int = 7) -> Iterator[tuple[str, bytes]]:
    """Endless Instagram ``comments`` deliveries: mostly complaints, some other kinds, and now
    and then the agency answering an earlier comment (so deadlines get met as well as missed)."""
    rng = random.Random(seed)
    counter = itertools.count(1)
    recent: list[tuple[str, str]] = []
    while True:
        n = next(counter)
        now = int(time.time())
        if recent and rng.random() < 0.2:
            parent, media = recent.pop(rng.randrange(len(recent)))
            value = {
                "id": f"1790{now}{n:06d}",
                "text": rng.choice(AGENCY_REPLIES),
                "from": {"id": IG_ACCOUNT, "username": "pemkot_demo"},
                "media": {"id": media, "media_product_type": "FEED"},
                "parent_id": parent,
            }
        else:
            template = rng.choice(COMPLAINTS if rng.random() < 0.85 else OTHER)
            comment_id = f"1790{now}{n:06d}"
            media = f"1800000000000{rng.randrange(100):04d}"
            value = {
                "id": comment_id,
                "text": template.format(kel=rng.choice(KELURAHAN)),
                "from": {"id": f"99{rng.randrange(10_000):05d}", "username": "warga"},
                "media": {"id": media, "media_product_type": "FEED"},
            }
            recent = [*recent[-50:], (comment_id, media)]
        body = {
            "object": "instagram",
            "entry": [
                {"id": IG_ACCOUNT, "time": now, "changes": [{"field": "comments", "value": value}]}
            ],
        }
        yield "instagram", orjson.dumps(body)


async def run_generator(base_url: str, secret: str, rate: float, stop: asyncio.Event) -> None:
    """POST deliveries at ``rate`` per second until ``stop``; failures are logged, not fatal."""
    interval = 1.0 / rate
    deliveries = instagram_deliveries()
    async with aiohttp.ClientSession() as session:
        next_at = time.monotonic()
        while not stop.is_set():
            platform, body = next(deliveries)
            headers = {
                "Content-Type": "application/json",
                "X-Hub-Signature-256": meta_signature(secret, body),
            }
            try:
                async with session.post(
                    f"{base_url}/webhooks/{platform}", data=body, headers=headers
                ) as r:
                    if r.status != 200:
                        log.warning("demo delivery answered %s: %s", r.status, await r.text())
            except aiohttp.ClientError as exc:
                log.warning("demo delivery failed: %s", exc)
            next_at += interval
            delay = next_at - time.monotonic()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=delay)
            else:
                next_at = time.monotonic()
