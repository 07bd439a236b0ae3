"""Ingest's memory under the largest accepted deliveries, measured on a real ingest process
(``python -m services.ingest``, the way it runs in production) on the real broker.

Before the caps, one 10,000-entry POST took ingest from 57 to 129 MB resident for good, and
concurrent large deliveries added up without bound. Now: rounds of the largest accepted
delivery (1,000 comments, about 2.3 MB) leave the resident size flat, and 10,000 entries are
refused with 413 without growing it."""

from __future__ import annotations

import asyncio
import gzip
import os
import secrets
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import orjson
import pytest

from common.broker import free_port
from common.runtime import stop_processes
from services.ingest.signatures import meta_signature
from tests.ingest.helpers import IG, ROOT

pytestmark = pytest.mark.kafka


def largest(tag: str, entries: int = 1_000, text_chars: int = 2_200) -> bytes:
    """A delivery at the caps: ``entries`` Instagram comments of the longest text Instagram
    allows (2,200 characters)."""
    text = ("Jalan berlubang di Rungkut Madya, tolong segera diperbaiki. " * 40)[:text_chars]
    changes = [
        {
            "field": "comments",
            "value": {
                "id": f"{tag}{i:08d}",
                "text": text,
                "media": {"id": "18000000000000001"},
                "from": {"id": f"99{i:05d}", "username": "warga"},
            },
        }
        for i in range(entries)
    ]
    entry = {"id": IG, "time": int(time.time()), "changes": changes}
    return orjson.dumps({"object": "instagram", "entry": [entry]})


def resident_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@dataclass
class Process:
    pid: int
    url: str
    secret: str


@pytest.fixture
async def ingest_process(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> AsyncIterator[Process]:
    if not Path("/proc/self/status").exists():
        pytest.skip("resident memory is read from Linux /proc")
    secret = secrets.token_hex(8)
    port, ops = free_port(), free_port()
    env = dict(
        os.environ,
        KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap,
        ADUAN_TOPIC_PREFIX=topic_prefix,
        ADUAN_META_APP_SECRET=secret,
        ADUAN_META_VERIFY_TOKEN="v",
        ADUAN_PSEUDONYM_KEY=secrets.token_hex(8),
        ADUAN_HTTP_PORT=str(port),
        ADUAN_METRICS_PORT=str(ops),
    )
    with open(tmp_path / "ingest.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "services.ingest"], cwd=ROOT, env=env, stdout=log, stderr=log
        )
    try:
        deadline = time.monotonic() + 60
        async with aiohttp.ClientSession() as session:
            while True:
                assert proc.poll() is None, (tmp_path / "ingest.log").read_text()
                try:
                    async with session.get(f"http://127.0.0.1:{ops}/readyz") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                assert time.monotonic() < deadline, "ingest not ready"
                await asyncio.sleep(0.1)
        yield Process(proc.pid, f"http://127.0.0.1:{port}/webhooks/instagram", secret)
    finally:
        stop_processes([proc])


async def _post(session: aiohttp.ClientSession, p: Process, body: bytes) -> tuple[int, bytes]:
    headers = {"Content-Type": "application/json"}
    headers["X-Hub-Signature-256"] = meta_signature(p.secret, body)
    async with session.post(p.url, data=body, headers=headers) as resp:
        return resp.status, await resp.read()


async def test_memory_stays_flat_under_the_largest_accepted_deliveries(
    ingest_process: Process,
) -> None:
    p = ingest_process
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        status, _ = await _post(session, p, largest("warm"))
        assert status == 200
        warm = resident_mb(p.pid)
        rounds = []
        for r in range(3):
            bodies = [largest(f"r{r}x{i}x") for i in range(3)]
            answers = await asyncio.gather(*(_post(session, p, b) for b in bodies))
            assert [s for s, _ in answers] == [200] * 3, answers
            rounds.append(resident_mb(p.pid))
        status, answer = await _post(session, p, largest("huge", entries=10_000, text_chars=100))
        after_huge = resident_mb(p.pid)
    print(
        f"\nresident MB: warm {warm:.0f}, rounds {[round(r) for r in rounds]}, "
        f"after 10,000 entries {after_huge:.0f}"
    )
    assert (status, orjson.loads(answer)["error"]) == (413, "too_many_entries")
    assert rounds[-1] <= rounds[0] + 20, rounds  # flat: no growth round after round
    assert max(rounds) <= warm + 120, (warm, rounds)  # bounded by the in-flight budget
    assert after_huge <= rounds[-1] + 10, (rounds, after_huge)


async def test_a_compressed_bomb_is_refused_without_inflating(ingest_process: Process) -> None:
    """The body is read before its signature can be checked, so anyone can send one: 200 MB
    of gzip-compressed JSON (200 kB on the wire) is refused at the body limit while
    decompressing, signed or not, and ingest's resident size does not follow it."""
    p = ingest_process
    inflated = b'{"object":"instagram","entry":[' + b" " * 200_000_000 + b"]}"
    bomb = gzip.compress(inflated, compresslevel=9)
    assert len(bomb) < 300_000
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        # A small over-limit body first: the decompression path's one-off buffers and the
        # allocator's arenas are then in place, so what follows measures only whether the
        # resident size tracks the inflated size (it flaked at +32 MB in a cold process).
        small = gzip.compress(b'{"object":"instagram","entry":[' + b" " * 20_000_000 + b"]}")
        async with session.post(p.url, data=small, headers=headers) as resp:
            assert resp.status == 413
        before = resident_mb(p.pid)
        for signed in (False, True):
            sent = dict(headers)
            if signed:
                sent["X-Hub-Signature-256"] = meta_signature(p.secret, inflated)
            async with session.post(p.url, data=bomb, headers=sent) as resp:
                assert resp.status == 413, (signed, resp.status, await resp.read())
    assert resident_mb(p.pid) <= before + 30, (before, resident_mb(p.pid))
