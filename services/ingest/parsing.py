"""Pure parsing of webhook bodies into normalized messages: no I/O, shared by the HTTP
service and ``python -m services.ingest.parse``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from common.registry import Registry
from schemas.messages import Message, Platform
from services.ingest.privacy import Pseudonymizer


class MalformedDelivery(ValueError):
    """The body as a whole is unusable (not JSON, unknown object type): answer 400."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Rejected:
    """One entry of a batch that could not become a message; it is dead-lettered alone."""

    reason: str
    detail: str
    entry_index: int | None = None


@dataclass(frozen=True, slots=True)
class DeliveryContext:
    delivery_id: str
    received_at: datetime
    registry: Registry
    pseudonymize: Pseudonymizer


@dataclass(slots=True)
class ParseResult:
    messages: list[Message] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    skipped: int = 0  # entries deliberately ignored (reactions, ...), counted not dead-lettered


def parse_delivery(platform: Platform, body: bytes, ctx: DeliveryContext) -> ParseResult:
    """Turn one delivery body into messages and per-entry rejections.

    Raises MalformedDelivery when the body as a whole cannot be parsed."""
    from services.ingest.platforms import PARSERS

    parser = PARSERS.get(platform)
    if parser is None:
        raise MalformedDelivery("unsupported_platform", f"no parser for platform {platform}")
    return parser(body, ctx)
