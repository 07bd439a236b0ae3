"""``aduan.raw.v1``: every webhook delivery, bytes exactly as received.

The record value is the raw body (not JSON-wrapped: signatures are over those bytes and
replays must reproduce them). This model describes the record *headers*; they carry what is
needed to re-parse the delivery later."""

from pydantic import Field

from schemas.base import Event, UtcDatetime
from schemas.messages import Platform


class RawDelivery(Event):
    delivery_id: str = Field(description="uuid4 assigned on receipt; also the record key")
    platform: Platform
    received_at: UtcDatetime
    content_type: str
    signature_verified: bool
