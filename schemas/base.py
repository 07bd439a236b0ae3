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
    """Base for topic payloads: unknown fields are refused so producers cannot drift silently."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False)
