"""The desk API's request and response models: validation and the OpenAPI document both
come from these (``services/desk/openapi.py``), so the document cannot drift from the code."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

AGENCY_ID = r"^[a-z0-9][a-z0-9_.-]*$"
StatusFilter = Literal["open", "overdue", "resolved", "all"]
Role = Literal["assigned", "escalation", "former"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- queries -------------------------------------------------------------------------------
class ComplaintQuery(Strict):
    """Filters of ``GET /complaints``; results are ordered open first, then by nearest due
    time (resolved ones by resolution time), then by id, and paged with ``cursor``."""

    status: StatusFilter = Field(
        default="open",
        description="open (in the caller's queue), overdue (open and past a due time), "
        "resolved, or all",
    )
    agency: str | None = Field(
        default=None, pattern=AGENCY_ID, max_length=100, description="agency responsible now"
    )
    category: str | None = Field(default=None, max_length=100)
    region: str | None = Field(
        default=None,
        pattern=r"^\d{2}(\.\d{2}(\.\d{2}(\.\d{4})?)?)?$",
        description="Kemendagri region code; includes the regions below it",
    )
    platform: str | None = Field(default=None, max_length=20)
    urgency: Literal["emergency", "high", "normal", "low"] | None = None
    kind: str | None = Field(default=None, max_length=30, description="message kind")
    q: str | None = Field(
        default=None, min_length=2, max_length=100, description="text in the masked excerpt"
    )
    due_before: datetime | None = Field(default=None, description="nearest due time before")
    due_after: datetime | None = Field(default=None, description="nearest due time at or after")
    limit: int = Field(default=50, ge=1, le=500)
    cursor: str | None = Field(
        default=None, max_length=400, description="next_cursor of the previous page"
    )


class StatsQuery(Strict):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: date | datetime | None = Field(
        default=None,
        alias="from",
        description="period start (a date is midnight in tz); default 30 days ago",
    )
    to: date | datetime | None = Field(default=None, description="period end (exclusive)")
    agency: str | None = Field(default=None, pattern=AGENCY_ID, max_length=100)
    bucket: Literal["none", "day", "week", "month"] = Field(
        default="none", description="split the period into calendar buckets in tz"
    )
    tz: Literal["Asia/Jakarta", "Asia/Makassar", "Asia/Jayapura"] = "Asia/Jakarta"


# --- bodies --------------------------------------------------------------------------------
class AcknowledgeBody(Strict):
    note: str | None = Field(default=None, max_length=500)


class ResolveBody(Strict):
    reason: str | None = Field(default=None, max_length=500, description="what was done")


class ReopenBody(Strict):
    reason: str = Field(min_length=3, max_length=500)


class RerouteBody(Strict):
    """*Bukan wewenang*: not our authority; hand the complaint to ``agency_id``."""

    agency_id: str = Field(pattern=AGENCY_ID, max_length=100)
    reason: str = Field(min_length=3, max_length=500)


# --- responses -----------------------------------------------------------------------------
class Error(BaseModel):
    error: str = Field(description="machine-readable reason")
    detail: str = Field(description="what was wrong, for a person")


class ClockOut(BaseModel):
    clock: str
    due_at: datetime
    seconds_left: float = Field(description="negative when overdue")
    overdue: bool
    warned: bool
    escalation_level: int


class ComplaintSummary(BaseModel):
    complaint_id: str
    agency_id: str = Field(description="agency responsible now")
    agency_kind: str | None
    kind: str = Field(description="message kind: complaint, question, ...")
    category: str | None
    subcategory: str | None
    region_code: str | None
    urgency: str | None
    platform: str
    excerpt: str = Field(description="masked text, truncated")
    status: Literal["open", "resolved"] | str
    overdue: bool
    escalation_level: int
    acknowledged: bool
    due_at: datetime | None = Field(description="nearest due time of a running clock")
    routed_at: datetime | None
    resolved_at: datetime | None
    role: Role | None = Field(description="the caller agency's relation (None for admin)")


class ComplaintList(BaseModel):
    items: list[ComplaintSummary]
    next_cursor: str | None


class HistoryEntry(BaseModel):
    event_id: str
    source: Literal["routes", "sla", "commands"]
    event_type: str
    known: bool = Field(description="false: an event type this release does not know")
    occurred_at: datetime
    agency_id: str | None
    clock: str | None
    actor: str | None
    reason: str | None
    target_agency_id: str | None
    previous_agency_id: str | None
    escalation_level: int | None
    escalate_to: str | None
    met: bool | None
    business_seconds: float | None
    response_seconds: float | None


class ComplaintDetail(ComplaintSummary):
    policy: str | None
    reroutes: int
    acknowledged_at: datetime | None
    first_response_at: datetime | None
    first_response_business_seconds: float | None
    first_response_met: bool | None
    clocks: list[ClockOut]
    history: list[HistoryEntry]


class ActionAccepted(BaseModel):
    command_id: str
    complaint_id: str
    type: Literal["acknowledge", "resolve", "reopen", "reroute"]
    status: Literal["accepted"] = "accepted"
    topic: str
    partition: int
    offset: int


class StatsRow(BaseModel):
    agency_id: str
    period_start: datetime
    period_end: datetime
    received: int = Field(description="complaints routed or rerouted to the agency")
    answered: int = Field(description="complaints whose first response the agency gave")
    open: int = Field(description="open and assigned to the agency now")
    overdue: int = Field(description="of those, past a due time now")
    first_response_business_seconds_median: float | None
    first_response_business_seconds_p90: float | None
    share_met: float | None = Field(
        description="first-response clocks met / first-response clocks answered or overdue"
    )


class Stats(BaseModel):
    period_start: datetime
    period_end: datetime
    bucket: str
    tz: str
    rows: list[StatsRow]


class Me(BaseModel):
    scope: Literal["agency", "admin"]
    agency_id: str | None
    label: str
