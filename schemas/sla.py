"""``aduan.sla.v1``: response-deadline events for every running clock."""

from enum import StrEnum

from pydantic import Field

from schemas.base import Event, UtcDatetime


class Clock(StrEnum):
    first_response = "first_response"
    next_response = "next_response"
    resolution = "resolution"


class SlaEventType(StrEnum):
    warning = "warning"
    overdue = "overdue"
    escalated = "escalated"
    responded = "responded"
    resolved = "resolved"
    reopened = "reopened"
    acknowledged = "acknowledged"
    withdrawn = "withdrawn"
    """The citizen removed the complaint (deleted the comment, DM or tweet): every clock
    stopped, no further deadline or escalation."""


class SlaEvent(Event):
    event_id: str = Field(
        description="deterministic id of (complaint, clock, event type, level[, sequence])"
    )
    event_type: SlaEventType
    complaint_id: str
    thread_key: str
    agency_id: str
    clock: Clock | None = None
    policy: str | None = Field(
        default=None, description="id of the SLA policy that set the deadline"
    )
    due_at: UtcDatetime | None = None
    occurred_at: UtcDatetime
    escalation_level: int | None = None
    escalate_to: str | None = None
    response_seconds: float | None = None
    business_seconds: float | None = None
    met: bool | None = None
