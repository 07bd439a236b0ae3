"""Who is told what: a routing or deadline event becomes deliveries, as a pure function.

* ``routed`` / ``rerouted`` → the agency's desk channels (``Agency.channels``);
* ``warning`` / ``overdue`` / ``withdrawn`` (the citizen removed the complaint: nothing
  more to do) → the same desk channels;
* ``updated`` (the citizen edited the text; same agency) → nobody: the desk shows it;
* ``escalated`` level n → the contact the ladder names: route resolves ``head`` to
  ``head:<agency>`` (that agency's ``contacts.head``) and ``kind:secretariat`` /
  ``kind:inspectorate`` to the regional agency's id (its ``contacts.escalation``, else its
  ``contacts.head``, else its desk channels);
* ``responded`` / ``resolved`` / ``reopened`` → only channels that want the loop closed
  (webhook endpoints with ``close_loop``: agency systems, the SP4N-LAPOR! bridge).

A delivery is identified by (event id, channel type, target): the durable record's key, so a
replayed or redelivered event plans the same deliveries and the store drops the repeats.
An event that names nobody reachable is refused (``Refusal``) and dead-lettered with the
reason, never silently dropped: an escalation that reaches no one is a broken promise."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict

from common.refusal import Refusal
from common.registry import Agency, ChannelRef, Registry, parse_channel
from schemas.messages import Platform
from schemas.routes import RouteEvent
from schemas.sla import SlaEvent, SlaEventType

Role = Literal["desk", "head", "escalation", "citizen"]
DESK_EVENTS = frozenset({"routed", "rerouted", "warning", "overdue", "withdrawn"})
CLOSE_LOOP_EVENTS = frozenset({"responded", "resolved", "reopened"})


class ReplyTarget(BaseModel):
    """Where the citizen wrote: the public comment or tweet an acknowledgement answers."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    platform: str
    account_id: str
    kind: str
    platform_message_id: str


ACK_KINDS = {("instagram", "comment"), ("instagram", "reply"), ("facebook", "comment"),
             ("facebook", "reply"), ("x", "tweet")}  # fmt: skip
"""Where a reply needs only the comment's or tweet's id. Direct messages (Messenger,
Instagram, WhatsApp, X) need the citizen's own platform id, which leaves the raw topic only
as a keyed pseudonym, so they are not acknowledged (docs/notify.md)."""


class Notice(BaseModel):
    """What one recipient is told: the event with the complaint's context (SLA events carry
    no category or excerpt, so notify keeps each complaint's latest route event). Stored as
    the delivery's payload and rendered by the channel when it is sent."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: str
    event_type: str
    complaint_id: str
    thread_key: str
    agency_id: str
    role: Role
    addressee: str
    """The agency whose channels (or whose contact) receive it."""
    occurred_at: datetime
    clock: str | None = None
    due_at: datetime | None = None
    due: dict[str, datetime] = {}
    escalation_level: int | None = None
    category: str | None = None
    subcategory: str | None = None
    urgency: str | None = None
    excerpt: str | None = None
    region_code: str | None = None
    previous_agency_id: str | None = None
    reason: str | None = None
    met: bool | None = None
    response_seconds: float | None = None
    reply: ReplyTarget | None = None


@dataclass(frozen=True, slots=True)
class Target:
    """Where a delivery goes: a registry channel (``email``, ``webhook``, ``telegram``,
    ``whatsapp``, ``log``) or ``reply`` (a citizen acknowledgement on its platform)."""

    type: str
    target: str

    @classmethod
    def of(cls, channel: ChannelRef) -> Target:
        return cls(channel.type, channel.target)

    def __str__(self) -> str:
        return f"{self.type}:{self.target}"


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message to send: the notice, to one target of one channel."""

    notice: Notice
    channel: Target

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.notice.event_id, self.channel.type, self.channel.target)

    @property
    def lane(self) -> str:
        """The queue this delivery waits in: one per transport instance, so a dead webhook
        endpoint of one agency never holds up another's, nor the e-mail relay."""
        return lane_of(self.channel)


def lane_of(channel: Target) -> str:
    if channel.type in ("webhook", "reply"):
        return f"{channel.type}:{channel.target.split(':', 1)[0]}"
    return channel.type


Event = RouteEvent | SlaEvent


def plan(event: Event, registry: Registry, context: RouteEvent | None = None) -> list[Delivery]:
    """The deliveries ``event`` calls for (possibly none); raises ``Refusal`` when it names
    an agency or contact the registry does not have."""
    if isinstance(event, RouteEvent):
        if event.event_type.value not in DESK_EVENTS:
            return []  # updated: the agency already has the complaint; the desk shows the edit
        agency = _agency(registry, event.agency_id)
        return _to(registry, _route_notice(event, agency.id), agency.channels)
    etype = event.event_type.value
    route = context if context is not None and context.complaint_id == event.complaint_id else None
    if etype in DESK_EVENTS:
        agency = _agency(registry, event.agency_id)
        return _to(registry, _sla_notice(event, route, "desk", agency.id), agency.channels)
    if event.event_type is SlaEventType.escalated:
        role, addressee, channels = escalation_contact(registry, event)
        return _to(registry, _sla_notice(event, route, role, addressee), channels)
    if etype in CLOSE_LOOP_EVENTS:
        agency = _agency(registry, event.agency_id)
        wanted = [c for c in agency.channels if _closes_loop(registry, parse_channel(c))]
        return _to(registry, _sla_notice(event, route, "desk", agency.id), wanted)
    return []  # acknowledged: recorded by route and the desk, nobody needs a message


def escalation_contact(registry: Registry, event: SlaEvent) -> tuple[Role, str, list[str]]:
    """(role, agency id, channels) of the contact an escalation names."""
    target = event.escalate_to or ""
    if target.startswith("head:"):
        agency = _agency(registry, target.removeprefix("head:"))
        head = agency.contacts.get("head")
        if head is None:
            raise Refusal(
                "no_contact", f"agency {agency.id!r} has no contacts.head for escalation level "
                f"{event.escalation_level}",
            )  # fmt: skip
        return "head", agency.id, head.channels
    agency_or_none = registry.agency(target)
    if agency_or_none is None:
        raise Refusal(
            "no_contact",
            f"escalation level {event.escalation_level} names {target!r}, which is no agency "
            "in the registry (add the agency of that kind for the region)",
        )
    contact = agency_or_none.contacts.get("escalation") or agency_or_none.contacts.get("head")
    if contact is not None:
        return "escalation", agency_or_none.id, contact.channels
    if not agency_or_none.channels:
        raise Refusal("no_contact", f"agency {target!r} has no contacts and no channels")
    return "escalation", agency_or_none.id, agency_or_none.channels


def _agency(registry: Registry, agency_id: str) -> Agency:
    agency = registry.agency(agency_id)
    if agency is None:
        raise Refusal("unknown_agency", f"agency {agency_id!r} is not in the registry")
    return agency


def _closes_loop(registry: Registry, channel: ChannelRef) -> bool:
    if channel.type != "webhook":
        return False
    endpoint = registry.webhook(channel.target)
    return endpoint is not None and endpoint.close_loop


def _to(registry: Registry, notice: Notice, channels: list[str]) -> list[Delivery]:
    seen: set[str] = set()
    out: list[Delivery] = []
    for raw in channels:
        if raw in seen:
            continue
        seen.add(raw)
        out.append(Delivery(notice, _target(raw)))
    return out


@lru_cache(maxsize=8192)
def _target(channel: str) -> Target:
    """Registry channel strings are few and fixed: parse each once."""
    return Target.of(parse_channel(channel))


def _route_notice(event: RouteEvent, addressee: str) -> Notice:
    due = {k.value: v for k, v in event.due.items()}
    # model_construct: the values come from a validated event (measured: validation was
    # 2/3 of planning's cost, on every event)
    return Notice.model_construct(
        event_id=event.event_id,
        event_type=event.event_type.value,
        complaint_id=event.complaint_id,
        thread_key=event.thread_key,
        agency_id=event.agency_id,
        role="desk",
        addressee=addressee,
        occurred_at=event.routed_at,
        clock="first_response" if "first_response" in due else None,
        due_at=due.get("first_response") or next(iter(due.values()), None),
        due=due,
        category=event.category,
        subcategory=event.subcategory,
        urgency=event.urgency,
        excerpt=event.text_excerpt,
        region_code=event.region_code,
        previous_agency_id=event.previous_agency_id,
        reason=event.reason,
    )


def _sla_notice(event: SlaEvent, route: RouteEvent | None, role: Role, addressee: str) -> Notice:
    return Notice.model_construct(
        event_id=event.event_id,
        event_type=event.event_type.value,
        complaint_id=event.complaint_id,
        thread_key=event.thread_key,
        agency_id=event.agency_id,
        role=role,
        addressee=addressee,
        occurred_at=event.occurred_at,
        clock=event.clock.value if event.clock else None,
        due_at=event.due_at,
        escalation_level=event.escalation_level,
        category=route.category if route else None,
        subcategory=route.subcategory if route else None,
        urgency=route.urgency if route else None,
        excerpt=route.text_excerpt if route else None,
        region_code=route.region_code if route else None,
        met=event.met,
        response_seconds=event.response_seconds,
    )


def plan_ack(event: Event, target: ReplyTarget | None, registry: Registry) -> list[Delivery]:
    """The citizen acknowledgement a ``routed`` event calls for: only for a complaint that
    arrived on an account with ``acknowledge: true``, on a public comment or tweet, and
    never for a reroute (the citizen was answered when it was first routed)."""
    if not isinstance(event, RouteEvent) or event.event_type.value != "routed" or target is None:
        return []
    if (target.platform, target.kind) not in ACK_KINDS:
        return []
    account = registry.account(Platform(target.platform), target.account_id)
    if account is None or not account.acknowledge:
        return []
    notice = _route_notice(event, event.agency_id).model_copy(
        update={"role": "citizen", "reply": target}
    )
    return [Delivery(notice, Target("reply", f"{target.platform}:{event.complaint_id}"))]
