"""``aduan.raw.v1``: every webhook delivery, bytes exactly as received.

The record value is the raw body (not JSON-wrapped: signatures are over those bytes and
replays must reproduce them). The record key is the delivery id. This model describes the
record *headers*; they carry what is needed to re-parse the delivery later. ``to_headers``
and ``from_headers`` are the one definition of that header contract: ingest writes with the
first, replay and tests read with the second."""

from collections.abc import Iterable
from datetime import datetime
from functools import lru_cache

from pydantic import Field

from schemas.base import Event, UtcDatetime
from schemas.messages import Platform

PLATFORM = "platform"
RECEIVED_AT = "received_at"
CONTENT_TYPE = "content_type"
SIGNATURE_VERIFIED = "signature_verified"
HEADER_NAMES = (PLATFORM, RECEIVED_AT, CONTENT_TYPE, SIGNATURE_VERIFIED)
"""Header names of a raw record, in the order ingest writes them."""


class RawDelivery(Event):
    delivery_id: str = Field(description="uuid4 assigned on receipt; also the record key")
    platform: Platform
    received_at: UtcDatetime
    content_type: str
    signature_verified: bool


@lru_cache(maxsize=64)
def _encoded(text: str) -> bytes:
    """Header values that repeat on every request (platform, content type), encoded once."""
    return text.encode()


def to_headers(
    platform: Platform, received_at: datetime, content_type: str, signature_verified: bool = True
) -> tuple[tuple[str, bytes], ...]:
    """The headers of a raw record (on ingest's request path: no model is built)."""
    return (
        (PLATFORM, _encoded(platform.value)),
        (RECEIVED_AT, received_at.isoformat().encode()),
        (CONTENT_TYPE, _encoded(content_type)),
        (SIGNATURE_VERIFIED, b"true" if signature_verified else b"false"),
    )


def from_headers(key: bytes | None, headers: Iterable[tuple[str, bytes]]) -> RawDelivery:
    """The delivery a raw record describes; the key is the delivery id.

    Raises pydantic.ValidationError (a ValueError) when a header is missing or malformed.
    Header names written by older releases with an ``aduan-`` prefix or dashes are read too."""
    fields: dict[str, object] = {}
    for name, value in headers:
        norm = name.lower().removeprefix("aduan-").replace("-", "_")
        if norm in HEADER_NAMES:
            fields[norm] = value.decode("utf-8", "replace")
    if key is not None:
        fields["delivery_id"] = key.decode("utf-8", "replace")
    verified = fields.get(SIGNATURE_VERIFIED)
    if isinstance(verified, str):
        fields[SIGNATURE_VERIFIED] = verified.lower() in {"true", "1"}
    return RawDelivery.model_validate(fields)
