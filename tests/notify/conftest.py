"""Fixtures for notify: a registry of test agencies, the store on a fresh database, a
dispatcher wired to local receivers, and a TLS authority for the SMTP server."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from common.produce import MemorySink
from common.registry import Registry, load_registry
from schemas.routes import RouteEvent, RouteEventType
from schemas.sla import Clock, SlaEvent, SlaEventType
from services.notify.channels.base import Channel
from services.notify.dispatcher import Dispatcher, Policy
from services.notify.plan import plan
from services.notify.store import Planned, Store
from tests.notify.servers import SmtpSink

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # Monday 09:00 WIB


def registry_yaml(webhook_url: str = "http://127.0.0.1:9/hook", **extra: Any) -> dict[str, Any]:
    return {
        "agencies": [
            {
                "id": "pu", "name": "Dinas Pekerjaan Umum", "kind": "public_works",
                "region_code": "35.78", "timezone": "Asia/Jakarta",
                "channels": ["email:desk-pu@example.go.id", "webhook:pu-system",
                             "telegram:-100200300", "whatsapp:+6281100000001"],
                "contacts": {"head": {"name": "Kepala Dinas PU",
                                      "channels": ["email:kadis-pu@example.go.id"]}},
            },
            {
                "id": "mks-pu", "name": "Dinas PU Makassar", "kind": "public_works",
                "region_code": "73.71", "timezone": "Asia/Makassar",
                "channels": ["email:desk@mks.example.go.id"],
            },
            {
                "id": "setda", "name": "Sekretariat Daerah", "kind": "secretariat",
                "region_code": "35.78", "channels": ["email:setda@example.go.id"],
                "contacts": {"escalation": {"name": "Bagian Organisasi",
                                            "channels": ["email:pengaduan-setda@example.go.id"]}},
            },
            {
                "id": "inspektorat", "name": "Inspektorat", "kind": "inspectorate",
                "region_code": "35.78", "channels": ["email:inspektorat@example.go.id"],
            },
        ],
        "accounts": [],
        "webhooks": [{"id": "pu-system", "url": webhook_url, "secret_env": "TEST_HOOK_SECRET"}],
        **extra,
    }  # fmt: skip


def write_registry(path: Path, data: dict[str, Any]) -> Registry:
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return load_registry(path)


def routed(n: int = 1, agency: str = "pu", at: datetime = T0, **kw: Any) -> RouteEvent:
    cid = kw.pop("complaint_id", f"instagram:1790{n:08d}")
    fields: dict[str, Any] = {
        "event_id": f"{cid}:routed",
        "event_type": RouteEventType.routed,
        "complaint_id": cid,
        "thread_key": f"instagram:18000:{n}",
        "agency_id": agency,
        "agency_kind": "public_works",
        "region_code": "35.78",
        "category": "roads",
        "urgency": "high",
        "text_excerpt": "Jalan di Rungkut berlubang besar, bahaya untuk pengendara [PHONE]",
        "due": {Clock.first_response: at + timedelta(hours=4),
                Clock.resolution: at + timedelta(days=5)},
        "policy": "default",
        "channels": [],
        "routed_at": at,
    }  # fmt: skip
    fields.update(kw)
    return RouteEvent(**fields)


def sla(etype: SlaEventType, n: int = 1, agency: str = "pu", **kw: Any) -> SlaEvent:
    cid = f"instagram:1790{n:08d}"
    level = kw.get("escalation_level") or 0
    fields: dict[str, Any] = {
        "event_id": f"{cid}:first_response:1:{etype.value}:{level}",
        "event_type": etype,
        "complaint_id": cid,
        "thread_key": f"instagram:18000:{n}",
        "agency_id": agency,
        "clock": Clock.first_response,
        "due_at": T0 + timedelta(hours=4),
        "occurred_at": T0 + timedelta(hours=4),
    }
    fields.update(kw)
    return SlaEvent(**fields)


def planned(event: RouteEvent | SlaEvent, registry: Registry, source: str = "t.routes:0",
            offset: int = 0, only: str | None = None) -> list[Planned]:  # fmt: skip
    return [
        Planned(d, source, offset, event.thread_key.encode(), event.model_dump_json().encode())
        for d in plan(event, registry)
        if only is None or d.channel.type == only
    ]


FAST = Policy(attempts=3, backoff_initial_s=0.05, backoff_max_s=0.2, park_s=0.3,
              give_up_after_s=3600, queue_size=100, concurrency=4)  # fmt: skip


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    s = await Store.open(database_url)
    yield s
    await s.close()


class Harness:
    """A dispatcher on the store with a memory sink for dead letters."""

    def __init__(self, store: Store, channels: dict[str, Channel], policy: Policy = FAST) -> None:
        self.sink = MemorySink()
        self.store = store
        self.dispatcher = Dispatcher(store, self.sink, "t.deadletter", policy, channels)

    async def __aenter__(self) -> Harness:
        await self.dispatcher.start()
        self.dispatcher.assign(["t.routes:0", "t.sla:0"])
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.dispatcher.stop()

    async def submit(self, rows: list[Planned]) -> None:
        self.dispatcher.hand_over(await self.store.record(rows, []))

    async def statuses(self) -> list[str]:
        return [r["status"] for r in await self.store.rows()]


@pytest.fixture(scope="session")
def tls_authority(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ssl.SSLContext, str]]:
    """(server context for 127.0.0.1, CA bundle path for the client)."""
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server)
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    yield server, str(path)


@pytest.fixture
def smtp(tls_authority: tuple[ssl.SSLContext, str]) -> Iterator[SmtpSink]:
    sink = SmtpSink(tls_authority[0]).start()
    sink.sessions = 0  # the controller's own start-up probe connection
    yield sink
    sink.stop()
