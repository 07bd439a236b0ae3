"""``aduan.commands.v1``: operator and agency commands on a complaint."""

import hashlib
from enum import StrEnum

from pydantic import Field

from schemas.base import Event, UtcDatetime


class CommandType(StrEnum):
    reroute = "reroute"  # "bukan wewenang": not our authority, forward to another agency
    resolve = "resolve"
    reopen = "reopen"
    acknowledge = "acknowledge"
    # notify replied to the citizen automatically (tracking number, expected response time);
    # that reply's echo must not count as the agency's response
    auto_acknowledged = "auto_acknowledged"


class Command(Event):
    command_id: str = Field(description="unique id chosen by the issuer; replays are dropped")
    type: CommandType
    complaint_id: str
    thread_key: str = Field(description="the complaint's thread key; also the record key")
    issued_at: UtcDatetime
    actor: str = Field(description="who issued it (operator or agency user id)")
    agency_id: str | None = Field(default=None, description="target agency for reroute")
    reason: str | None = None
    text_sha256: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{64}$",
        description="auto_acknowledged: ack_text_digest of the reply notify sent; an agency "
        "reply on the thread with this digest is its echo, not a response",
    )


def ack_text_digest(text: str | None) -> str:
    """SHA-256 (hex) of a reply text with whitespace collapsed and case folded: what notify
    records before it sends an acknowledgement and what route compares an agency reply's
    text with. The text, not the platform's message id, because the id is known only after
    sending (the echo could race it) and ingest may replace ids by keyed pseudonyms."""
    return hashlib.sha256(" ".join((text or "").split()).casefold().encode()).hexdigest()
