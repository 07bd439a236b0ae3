"""Shared helpers for the ingest tests: the demo registry, a fixed context, fixture bodies."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from common.registry import Account, Registry, load_registry
from schemas.messages import Message, Platform
from services.ingest.platforms import parse_delivery
from services.ingest.platforms.base import DeliveryContext, ParseResult
from services.ingest.privacy import Pseudonymizer
from services.ingest.signatures import generic_signature, meta_signature

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "webhooks"
REGISTRY: Registry = load_registry(ROOT / "deploy" / "config" / "registry.yaml")
PSEUDO = Pseudonymizer(b"test-pseudonym-key")
RECEIVED = datetime(2026, 11, 22, 2, 0, tzinfo=UTC)

IG = "17841400000000001"
FB = "100000000000001"
WA_PHONE = "106540352242922"
WA_WABA = "102290129340398"
X_ACCOUNT = "1500000000000000001"

# The secrets the demo registry names, as the ``secrets`` fixture (conftest.py) sets them.
META_SECRET = "meta-app-secret"
X_SECRET = "x-consumer-secret"
GENERIC_SECRET = "generic-web-secret"


META_B_SECRET = "meta-app-b-secret"
X2_SECRET = "x-app-2-secret"
IG_B, FB_B, X_B = "17841400000000077", "100000000000077", "1500000000000000077"


def two_app_registry() -> Registry:
    """The demo registry plus a second Meta app ("kominfo-b": an Instagram account and a
    Facebook page) and a second X app ("x-kedua"), each with its own secret."""
    extra = [
        Account(
            platform=Platform.instagram,
            platform_id=IG_B,
            agency_id="mks-public-works",
            app="kominfo-b",
            app_secret_env="ADUAN_META_APP_B_SECRET",
        ),
        Account(
            platform=Platform.facebook,
            platform_id=FB_B,
            agency_id="mks-public-works",
            app="kominfo-b",
            app_secret_env="ADUAN_META_APP_B_SECRET",
        ),
        Account(
            platform=Platform.x,
            platform_id=X_B,
            agency_id="mks-public-works",
            app="x-kedua",
            app_secret_env="ADUAN_X2_CONSUMER_SECRET",
        ),
    ]
    return Registry(
        agencies=REGISTRY.agencies,
        accounts=[*REGISTRY.accounts, *extra],
        webhooks=REGISTRY.webhooks,
    )


def meta(body: bytes, secret: str = META_SECRET) -> dict[str, str]:
    """The signature header Meta sends with ``body``."""
    return {"X-Hub-Signature-256": meta_signature(secret, body)}


def generic(
    body: bytes,
    ts: int | None = None,
    secret: str = GENERIC_SECRET,
    account: str | None = "web-sby",
) -> dict[str, str]:
    """The sender, timestamp and signature headers a generic-webhook sender sends."""
    stamp = str(int(time.time()) if ts is None else ts)
    headers = {
        "X-Aduan-Timestamp": stamp,
        "X-Aduan-Signature": generic_signature(secret, stamp, body),
    }
    if account is not None:
        headers["X-Aduan-Account"] = account
    return headers


def ctx(delivery_id: str = "d-1") -> DeliveryContext:
    return DeliveryContext(delivery_id, RECEIVED, REGISTRY, PSEUDO)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def parse(platform: Platform | str, name_or_body: str | bytes) -> ParseResult:
    body = fixture(name_or_body) if isinstance(name_or_body, str) else name_or_body
    return parse_delivery(Platform(platform), body, ctx())


def mid(raw: str) -> str:
    """The message id (and ``in_reply_to``) ingest writes for a raw ``<platform>:<id>``."""
    return PSEUDO.message_id(raw)


def pmid(platform: str, raw_id: str) -> str:
    """The ``platform_message_id`` ingest writes for a platform's raw message id."""
    return PSEUDO.message_id(f"{platform}:{raw_id}").partition(":")[2]


def thread(raw: str) -> str:
    """The thread key ingest writes for a raw ``<platform>:<parts>`` thread key."""
    return PSEUDO.thread_key(raw)


def att(raw: str) -> str:
    """The attachment reference ingest writes for a raw ``<platform>:<media id or URL>``."""
    return PSEUDO.attachment(raw)


def by_id(messages: list[Message]) -> dict[str, Message]:
    return {m.message_id: m for m in messages}
