"""Conventions every event model follows."""

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict


def _require_aware_utc(value: datetime) -> datetime:
    """Refuse naive datetimes: a deadline computed from local wall time is a silent bug."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("datetime must carry a timezone")
    return value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_require_aware_utc)]
"""A timezone-aware instant, normalised to UTC on validation."""


class Event(BaseModel):
    """Base for topic payloads.

    Unknown fields are ignored when a record is read, as the compatibility policy asks of
    every consumer (``docs/consumers.md``): within ``v1`` a producer may add an optional
    field before its consumers know it, and a consumer that refused it would dead-letter every
    record of a rolling upgrade. Producers cannot drift silently all the same: a misspelt
    keyword is a type error (mypy), and the wire test validates what they write against the
    closed form of the published schema."""

    model_config = ConfigDict(extra="ignore", frozen=True, use_enum_values=False)
