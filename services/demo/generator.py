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


def instagram_comment(
    comment_id: str,
    text: str,
    *,
    author_id: str = "990001",
    media_id: str = "18000000000000001",
    parent_id: str | None = None,
    account_id: str = IG_ACCOUNT,
    time_s: int | None = None,
) -> bytes:
    """One Instagram ``comments`` webhook body, shaped as Meta documents it. ``author_id``
    equal to ``account_id`` makes it the agency's own reply."""
    username = "pemkot_demo" if author_id == account_id else "warga"
    value: dict[str, object] = {
        "id": comment_id,
        "text": text,
        "from": {"id": author_id, "username": username},
        "media": {"id": media_id, "media_product_type": "FEED"},
    }
    if parent_id is not None:
        value["parent_id"] = parent_id
    entry = {
        "id": account_id,
        "time": int(time.time()) if time_s is None else time_s,
        "changes": [{"field": "comments", "value": value}],
    }
    return orjson.dumps({"object": "instagram", "entry": [entry]})


def instagram_deliveries(seed: int = 7) -> Iterator[tuple[str, bytes]]:
    """Endless Instagram ``comments`` deliveries: mostly complaints, some other kinds, and now
    and then the agency answering an earlier comment (so deadlines get met as well as missed)."""
    rng = random.Random(seed)
    counter = itertools.count(1)
    recent: list[tuple[str, str]] = []
    while True:
        comment_id = f"1790{int(time.time())}{next(counter):06d}"
        if recent and rng.random() < 0.2:
            parent, media = recent.pop(rng.randrange(len(recent)))
            text = rng.choice(AGENCY_REPLIES)
            body = instagram_comment(
                comment_id, text, author_id=IG_ACCOUNT, media_id=media, parent_id=parent
            )
        else:
            template = rng.choice(COMPLAINTS if rng.random() < 0.85 else OTHER)
            media = f"1800000000000{rng.randrange(100):04d}"
            text = template.format(kel=rng.choice(KELURAHAN))
            author = f"99{rng.randrange(10_000):05d}"
            body = instagram_comment(comment_id, text, author_id=author, media_id=media)
            recent = [*recent[-50:], (comment_id, media)]
        yield "instagram", body


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
