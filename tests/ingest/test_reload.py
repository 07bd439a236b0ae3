"""Onboarding an account is an edit of the registry file: a running ingest picks it up
between two requests (no restart, no 503 while it reloads); an invalid edit is refused and
the previous registry keeps serving."""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import yaml
from aiohttp.test_utils import TestClient, TestServer

from common.produce import MemorySink
from common.registry import load_registry
from common.reload import Reloadable
from common.settings import Settings
from services.ingest import app as ingest_app
from services.ingest.privacy import Pseudonymizer
from tests.ingest.helpers import IG, ROOT, fixture, meta

SETTINGS = Settings(topic_prefix="t.", pseudonym_key="test-pseudonym-key")


def _write(path: Path, doc: object, bump: int) -> None:
    staged = path.with_suffix(".new")
    staged.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc), encoding="utf-8")
    staged.rename(path)  # as an editor or a ConfigMap update replaces the file
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + bump * 10**9))


async def test_an_account_added_to_the_registry_is_served_without_a_restart(
    secrets: None, tmp_path: Path
) -> None:
    full = yaml.safe_load((ROOT / "deploy" / "config" / "registry.yaml").read_text())
    without = {**full, "accounts": [a for a in full["accounts"] if a["platform_id"] != IG]}
    path = tmp_path / "registry.yaml"
    _write(path, without, 0)
    registry = Reloadable("registry", path, load_registry)
    sink = MemorySink()
    service = ingest_app.IngestService(
        SETTINGS, registry.current, sink, Pseudonymizer(b"test-pseudonym-key")
    )
    registry.on_change(service.use_registry)
    service.ready = True
    body = fixture("instagram_comments.json")
    async with TestClient(TestServer(ingest_app.build_app(service))) as client:

        async def post() -> dict[str, int]:
            resp = await client.post(
                "/webhooks/instagram",
                data=body,
                headers={"Content-Type": "application/json", **meta(body)},
            )
            assert resp.status == 200
            answer: dict[str, int] = orjson.loads(await resp.read())
            return answer

        assert (await post())["messages"] == 0  # not yet an account: dead-lettered
        _write(path, "agencies: [broken", 1)  # an operator's typo
        assert registry.poll() is False
        assert (await post())["messages"] == 0  # still served, by the previous registry
        _write(path, full, 2)
        assert registry.poll() is True
        assert (await post())["messages"] > 0
    reasons = {orjson.loads(r.value or b"")["reason"] for r in sink.on("t.aduan.deadletter.v1")}
    assert reasons == {"unknown_account"}
