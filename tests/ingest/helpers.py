"""Shared helpers for the ingest tests: the demo registry, a fixed context, fixture bodies."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from common.registry import Registry, load_registry
from schemas.messages import Message, Platform
from services.ingest.parsing import DeliveryContext, ParseResult, parse_delivery
from services.ingest.privacy import Pseudonymizer

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


def ctx(delivery_id: str = "d-1") -> DeliveryContext:
    return DeliveryContext(delivery_id, RECEIVED, REGISTRY, PSEUDO)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def parse(platform: Platform | str, name_or_body: str | bytes) -> ParseResult:
    body = fixture(name_or_body) if isinstance(name_or_body, str) else name_or_body
    return parse_delivery(Platform(platform), body, ctx())


def by_id(messages: list[Message]) -> dict[str, Message]:
    return {m.message_id: m for m in messages}
