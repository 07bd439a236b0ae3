"""A complaint as the desk shows it, folded from its events. Pure: no I/O, no clock.

``fold(view, event)`` applies one event; folding a complaint's whole history in order-key
order from ``None`` gives the same view as applying the events one batch at a time, which is
what makes the read model safe to rebuild, replay or repair (the store refolds a complaint
from its history when an event arrives out of order).

Status model. Route is the authority: the desk's status changes only on route's events,
never on a command the desk itself issued (route may refuse it, and then nothing happened).
``open`` until ``resolved``, ``open`` again on ``reopened``; ``withdrawn`` when the citizen
removed the complaint (closed: no clock runs, nothing more will come). ``updated`` (the
citizen edited the text) changes the description only. Whether a complaint is overdue
is not a stored status but a comparison of its nearest running due time with now, so the
queue is right even between two deadline events. An event type this release does not know
is kept in the history and changes nothing here.

Who may see it (``access``): every agency it was routed or rerouted to, and every agency
an escalation named (``head:<agency>`` is that agency's head, so the agency itself).
``assigned`` is the agency responsible now; ``former`` one it was rerouted away from (read
only); ``escalation`` one the ladder reached."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from services.desk.events import DeskEvent, Source, platform_of

FAR_FUTURE = datetime(9999, 12, 31, tzinfo=UTC)
"""Sort key of an open complaint without a running clock (after every due one)."""
RESPONSE_CLOCKS = ("first_response", "next_response")
ROLE_RANK = {"former": 0, "escalation": 1, "assigned": 2}
CLOSED = ("resolved", "withdrawn")
"""Statuses of a complaint nobody has to act on any more."""


@dataclass(slots=True)
class ClockView:
    due_at: datetime
    seq: int | None = None
    warned: bool = False
    overdue: bool = False
    level: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "due_at": self.due_at.isoformat(),
            "seq": self.seq,
            "warned": self.warned,
            "overdue": self.overdue,
            "level": self.level,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ClockView:
        return cls(
            due_at=datetime.fromisoformat(d["due_at"]),
            seq=d.get("seq"),
            warned=bool(d.get("warned")),
            overdue=bool(d.get("overdue")),
            level=int(d.get("level") or 0),
        )


@dataclass(slots=True)
class ComplaintView:
    complaint_id: str
    thread_key: str
    agency_id: str
    agency_kind: str | None = None
    kind: str = "complaint"
    category: str | None = None
    subcategory: str | None = None
    region_code: str | None = None
    urgency: str | None = None
    platform: str = "unknown"
    excerpt: str = ""
    policy: str | None = None
    status: str = "open"
    routed_at: datetime | None = None
    acknowledged_at: datetime | None = None
    resolved_at: datetime | None = None
    escalation_level: int = 0
    reroutes: int = 0
    clocks: dict[str, ClockView] = field(default_factory=dict)
    access: dict[str, str] = field(default_factory=dict)
    first_response_at: datetime | None = None
    first_response_business_s: float | None = None
    first_response_met: bool | None = None
    last_key: tuple[int, int, int] = (-1, -1, -1)

    @property
    def is_open(self) -> bool:
        return self.status not in CLOSED

    @property
    def due_sort(self) -> datetime:
        """Open: the nearest due time of a running clock; resolved: when it was resolved."""
        if not self.is_open:
            return self.resolved_at or FAR_FUTURE
        return min((c.due_at for c in self.clocks.values()), default=FAR_FUTURE)

    def open_for(self, agency_id: str) -> bool:
        """Whether it is in ``agency_id``'s open queue (open and theirs to act on)."""
        return self.is_open and self.access.get(agency_id) in ("assigned", "escalation")

    def grant(self, agency_id: str, role: str) -> None:
        """Access only grows; an agency keeps its strongest role, except that the agency a
        complaint was rerouted away from becomes ``former`` (see ``_reroute``)."""
        if ROLE_RANK[role] > ROLE_RANK.get(self.access.get(agency_id, ""), -1):
            self.access[agency_id] = role


def fold(view: ComplaintView | None, event: DeskEvent) -> ComplaintView | None:
    """The view after ``event``. Commands and unknown types change nothing (history only);
    a deadline event for a complaint whose routing the desk never saw (older than the
    routes topic's retention) starts a minimal view so the agency still sees it."""
    if event.source is Source.commands or not event.known:
        return view
    if view is None:
        view = ComplaintView(
            complaint_id=event.complaint_id,
            thread_key=event.thread_key,
            agency_id=event.agency_id or "unknown",
            platform=platform_of(event.complaint_id),
        )
        if event.agency_id:
            view.grant(event.agency_id, "assigned")
    handler = _HANDLERS.get((event.source, event.event_type))
    if handler is not None:
        handler(view, event)
    view.last_key = max(view.last_key, event.order_key)
    return view


def fold_all(events: list[DeskEvent]) -> ComplaintView | None:
    view: ComplaintView | None = None
    for e in sorted(events, key=lambda e: e.order_key):
        view = fold(view, e)
    return view


# --- routes --------------------------------------------------------------------------------
def _describe(view: ComplaintView, e: DeskEvent) -> None:
    r = e.route
    assert r is not None  # known route events carry their validated model
    view.thread_key = r.thread_key
    view.agency_id, view.agency_kind = r.agency_id, r.agency_kind
    view.category, view.subcategory = r.category, r.subcategory
    view.region_code, view.urgency = r.region_code, r.urgency
    view.excerpt, view.policy = r.text_excerpt, r.policy
    kind = e.payload.get("kind")  # route events gain the message kind (questions get clocks)
    if isinstance(kind, str) and kind:
        view.kind = kind
    platform = e.payload.get("platform")
    view.platform = platform if isinstance(platform, str) else platform_of(view.complaint_id)


def _routed(view: ComplaintView, e: DeskEvent) -> None:
    _describe(view, e)
    view.routed_at = view.routed_at or e.occurred_at
    view.clocks = {
        name: _keep(view.clocks.get(name), due, seq=1 if name not in view.clocks else None)
        for name, due in e.due.items()
    }
    view.grant(view.agency_id, "assigned")


def _reroute(view: ComplaintView, e: DeskEvent) -> None:
    """Response clocks restart for the new agency (next run number); the resolution clock
    keeps running, re-planned on the new agency's calendar (services/route/clocks.py)."""
    previous = e.previous_agency_id or view.agency_id
    _describe(view, e)
    view.reroutes += 1
    clocks: dict[str, ClockView] = {}
    for name, due in e.due.items():
        old = view.clocks.get(name)
        if name in RESPONSE_CLOCKS:
            seq = old.seq + 1 if old is not None and old.seq is not None else None
            clocks[name] = ClockView(due_at=due, seq=seq)
        else:
            clocks[name] = _keep(old, due)
    view.clocks = clocks
    if previous != view.agency_id:
        view.access[previous] = "former"
    view.access[view.agency_id] = "assigned"


def _keep(old: ClockView | None, due: datetime, seq: int | None = None) -> ClockView:
    if old is None:
        return ClockView(due_at=due, seq=seq)
    return dataclasses.replace(old, due_at=due)


# --- deadlines -----------------------------------------------------------------------------
def _clock(view: ComplaintView, e: DeskEvent) -> ClockView | None:
    """The running clock a deadline event is about; None when the event is about an
    earlier run of it (a reroute restarted it) or about a clock no longer running."""
    if e.clock is None:
        return None
    c = view.clocks.get(e.clock)
    if c is None:
        if e.due_at is None or not view.is_open:
            return None
        c = view.clocks[e.clock] = ClockView(due_at=e.due_at, seq=e.clock_seq)
    if c.seq is not None and e.clock_seq is not None and e.clock_seq < c.seq:
        return None
    if c.seq is None:
        c.seq = e.clock_seq
    return c


def _warning(view: ComplaintView, e: DeskEvent) -> None:
    c = _clock(view, e)
    if c is not None:
        c.warned = True


def _overdue(view: ComplaintView, e: DeskEvent) -> None:
    c = _clock(view, e)
    if c is not None:
        c.overdue = True


def _escalated(view: ComplaintView, e: DeskEvent) -> None:
    level = e.escalation_level or 1
    view.escalation_level = max(view.escalation_level, level)
    c = _clock(view, e)
    if c is not None:
        c.level = max(c.level, level)
    target = escalation_agency(e.escalate_to)
    if target is not None:
        view.grant(target, "escalation")


def escalation_agency(escalate_to: str | None) -> str | None:
    """The agency an escalation target names: ``head:<agency>`` is that agency's head; an
    unresolved ``<kind>@<region>`` names no agency (nobody to show it to)."""
    if not escalate_to:
        return None
    if escalate_to.startswith("head:"):
        return escalate_to.removeprefix("head:") or None
    if "@" in escalate_to or ":" in escalate_to:
        return None
    return escalate_to


def _responded(view: ComplaintView, e: DeskEvent) -> None:
    c = _clock(view, e)
    if c is None or e.clock is None:
        return
    del view.clocks[e.clock]
    if e.clock == "first_response" and view.first_response_at is None:
        view.first_response_at = e.occurred_at
        view.first_response_business_s = e.business_s
        view.first_response_met = e.met


def _resolved(view: ComplaintView, e: DeskEvent) -> None:
    view.status = "resolved"
    view.resolved_at = e.occurred_at
    view.clocks = {}


def _withdrawn(view: ComplaintView, e: DeskEvent) -> None:
    """The citizen removed the complaint: closed, every clock stopped (route stops them)."""
    view.status = "withdrawn"
    view.resolved_at = e.occurred_at
    view.clocks = {}


def _reopened(view: ComplaintView, e: DeskEvent) -> None:
    view.status = "open"
    view.resolved_at = None
    if e.clock is not None and e.due_at is not None:
        view.clocks[e.clock] = ClockView(due_at=e.due_at, seq=e.clock_seq)


def _acknowledged(view: ComplaintView, e: DeskEvent) -> None:
    view.acknowledged_at = view.acknowledged_at or e.occurred_at


_HANDLERS = {
    (Source.routes, "routed"): _routed,
    (Source.routes, "rerouted"): _reroute,
    (Source.routes, "updated"): _describe,
    (Source.sla, "warning"): _warning,
    (Source.sla, "overdue"): _overdue,
    (Source.sla, "escalated"): _escalated,
    (Source.sla, "responded"): _responded,
    (Source.sla, "resolved"): _resolved,
    (Source.sla, "reopened"): _reopened,
    (Source.sla, "acknowledged"): _acknowledged,
    (Source.sla, "withdrawn"): _withdrawn,
}
