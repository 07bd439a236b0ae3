"""The desk in ``make run``: its database, its tokens, and a demo agency acting through it.

``prepare`` migrates the desk's database (embedded PostgreSQL unless
``ADUAN_DESK_DATABASE_URL`` is set) and issues two tokens: one for a demo agency, printed
for the newcomer to sign in with, and an admin token for ``run_desk_actor``, a bot that
acknowledges and resolves some open complaints through the desk's API, the way an agency
desk would, so clocks stop and histories grow while the demo runs."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import uuid
from dataclasses import dataclass

import aiohttp

from services.desk import auth, store

log = logging.getLogger("aduan.demo")
DEMO_AGENCY = "sby-public-works"


@dataclass(frozen=True, slots=True)
class DeskTokens:
    agency: str
    bot: str


async def prepare(database_url: str) -> DeskTokens:
    pool = await store.create_pool(database_url, max_size=2)
    try:
        await store.migrate_database(pool)
        _, agency = await auth.issue_token(pool, "agency", DEMO_AGENCY, "demo")
        _, bot = await auth.issue_token(pool, "admin", None, "demo-bot")
    finally:
        await pool.close()
    return DeskTokens(agency, bot)


async def run_desk_actor(
    base_url: str, token: str, stop: asyncio.Event, every_s: float = 3.0, seed: int = 11
) -> None:
    """Every few seconds: acknowledge an open complaint nobody took on yet, and now and then
    resolve one that was acknowledged. Failures are logged, never fatal."""
    rng = random.Random(seed)
    headers = {"Authorization": f"Bearer {token}"}
    api = f"{base_url}/api/v1"
    async with aiohttp.ClientSession(headers=headers) as session:
        for tick in itertools.count():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=every_s)
            if stop.is_set():
                return
            try:
                await _act(session, api, rng, tick)
            except (aiohttp.ClientError, KeyError, ValueError) as exc:
                log.warning("demo desk actor: %s", exc)


async def _act(session: aiohttp.ClientSession, api: str, rng: random.Random, tick: int) -> None:
    async with session.get(f"{api}/complaints", params={"limit": "100"}) as r:
        if r.status != 200:
            return
        items = (await r.json())["items"]
    fresh = [c for c in items if not c["acknowledged"]]
    taken = [c for c in items if c["acknowledged"]]
    if fresh and rng.random() < 0.7:
        await _post(session, api, rng.choice(fresh)["complaint_id"], "acknowledge",
                    {"note": "sedang kami cek"})  # fmt: skip
    if taken and rng.random() < 0.4:
        await _post(session, api, rng.choice(taken)["complaint_id"], "resolve",
                    {"reason": "sudah ditindaklanjuti petugas lapangan"})  # fmt: skip


async def _post(
    session: aiohttp.ClientSession, api: str, complaint_id: str, action: str, body: object
) -> None:
    key = {"Idempotency-Key": uuid.uuid4().hex}
    url = f"{api}/complaints/{complaint_id}/{action}"
    async with session.post(url, json=body, headers=key) as r:
        if r.status != 202:
            log.info("demo desk actor: %s %s -> %d", action, complaint_id, r.status)
