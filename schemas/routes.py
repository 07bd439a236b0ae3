"""``aduan.routes.v1``: a complaint handed to the agency responsible for it."""

from enum import StrEnum

from pydantic import Field

from schemas.base import Event, UtcDatetime
from schemas.sla import Clock


class RouteEventType(StrEnum):
    routed = "routed"
    rerouted = "rerouted"
    updated = "updated"
    """The citizen edited the complaint: new text (``text_excerpt``), same agency and
    category (a changed category or agency is a ``rerouted`` with reason ``edited``)."""


class RouteEvent(Event):
    event_id: str = Field(description="deterministic id; consumers may dedup on it")
    event_type: RouteEventType
    complaint_id: str = Field(description="message_id of the complaint")
    thread_key: str
    agency_id: str
    agency_kind: str
    region_code: str
    category: str
    subcategory: str | None = None
    urgency: str
    kind: str = Field(
        default="complaint", description="message kind: complaint, question or aspiration"
    )
    text_excerpt: str = Field(description="masked text, truncated")
    due: dict[Clock, UtcDatetime] = Field(description="due time of every running clock")
    policy: str
    channels: list[str] = Field(default_factory=list, description="agency notification channels")
    routed_at: UtcDatetime
    previous_agency_id: str | None = None
    reason: str | None = None


class RouteTick(Event):
    """Internal to route (``aduan.route-ticks.v1``): "process what is due on this partition".

    A faust timer may not modify a table, so it sends this record to the partition that owns
    the due complaints and the agent consuming it fires their deadline events."""

    now: float = Field(description="POSIX seconds the tick was issued for")
