"""The route state machine: one complaint's clocks, as pure functions of (state, input, time).

Inputs are a classified message of the complaint's thread, an operator command, or a tick
("it is now T"). Each returns the new state and the events to publish. Nothing here reads a
clock or does I/O, so tests drive months of deadlines in microseconds and a replayed input
yields the same state and the same event ids.

Exactly-once per (complaint, clock, clock sequence, event type, escalation level) comes from
two things kept in the state: a bitmask of the stages each running clock has fired, and a
short ring of recently seen message/command ids. Event ids are derived from that tuple, so
even an at-least-once redelivery downstream can be dropped by id.

Edits and removals (``Message.action``) carry the id of the message they change. A
citizen's removal of the message that opened the complaint withdraws it (``withdrawn``: every
clock stopped, nothing more fires); an edit of it updates its text and, re-classified, moves
it when its category or agency changed (``rerouted``, reason ``edited``), else says
``updated``. They are remembered by (id, action[, text digest]), so a replay does nothing.

Vocabulary: *bukan wewenang* ("not our authority") is an agency's answer that a complaint
belongs elsewhere; it arrives here as a ``reroute`` command.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel

from common.refusal import Refusal
from common.registry import Agency, Registry
from schemas.classified import ClassifiedMessage, MessageKind, Urgency
from schemas.commands import Command, CommandType, ack_text_digest
from schemas.messages import Action, Message
from schemas.routes import RouteEvent, RouteEventType
from schemas.sla import Clock, SlaEvent, SlaEventType
from services.route.policy import ClockPlan, Policy, SlaConfig, Stages

SEEN_RING = 16
"""Recent message/command ids kept per complaint to drop replays (a thread rarely has more
than a handful of messages between two replays of the same record)."""
EXCERPT_CHARS = 280
ACK_DIGESTS = 4
"""Automatic acknowledgement digests kept per complaint (notify sends one per complaint;
a few more cover a retried delivery with a re-rendered text)."""
RETAIN_RESOLVED_S = 30 * 86400.0
"""A resolved complaint's state is kept this long (for reopen and replay dedup), then purged."""
RETAIN_UNRESOLVED_S = 30 * 86400.0
"""Default for how long a never-resolved complaint is kept after its last stage fired (its
last escalation; or its last reply or opening when no clock is left), then dropped
(``Router.retain_unresolved_s``, setting ``ADUAN_ROUTE_RETAIN_UNRESOLVED_DAYS``)."""

WARNING_BIT = 1
OVERDUE_BIT = 2

Event = RouteEvent | SlaEvent


def event_key(m: Message) -> str:
    """What identifies a message event for replay detection: its id for a new message, the
    id and the text's digest for an edit (a second edit is a new event, its replay is not),
    the id and ``remove`` for a removal (ingest's dedup key has the same form)."""
    if m.action is Action.add:
        return m.message_id
    if m.action is Action.edit:
        return f"{m.message_id}|edit|{_digest(m.text)}"
    return f"{m.message_id}|{m.action.value}"


def _digest(text: str | None) -> str:
    return hashlib.sha256((text or "").encode()).hexdigest()[:16]


def ts(value: datetime) -> float:
    return value.timestamp()


def utc(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def utc_shared(value: float) -> datetime:
    """``utc(value)``, one instance per instant for a while: a tick fires many stages at
    the same ``now`` (one batch of ticks, many complaints), and datetimes are immutable."""
    found = _UTC_SHARED.get(value)
    if found is None:
        if len(_UTC_SHARED) >= 1024:
            _UTC_SHARED.clear()
        found = _UTC_SHARED[value] = datetime.fromtimestamp(value, UTC)
    return found


_UTC_SHARED: dict[float, datetime] = {}


def micros(value: float) -> int:
    """``utc(value)`` as integer POSIX microseconds, without building the datetime.

    Rounds exactly as ``datetime.fromtimestamp`` does (whole seconds, then the fraction to
    the nearest microsecond, ties to even); property-tested against it."""
    if value < 0:
        return (utc(value) - _EPOCH) // _US
    whole = int(value)
    return whole * 1_000_000 + round((value - whole) * 1e6)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)

_M = TypeVar("_M", bound=BaseModel)
_set = object.__setattr__


def _built(cls: type[_M], values: dict[str, Any], given: frozenset[str]) -> _M:
    """``cls.model_construct(**kw)`` without its cost, for the hot path's events: ``values``
    holds every field of ``cls`` in field order (defaults included), ``given`` the names
    passed (``model_fields_set``). Each event is one dict literal (``_sla_event``,
    ``Router._route_event``): no copy of a template, no per-field check, no validation,
    because route built every value itself (about a sixth of model_construct's cost).
    Only for plain models (no aliases, post-init hooks or extra fields: checked below)."""
    m = cls.__new__(cls)
    _set(m, "__dict__", values)
    _set(m, "__pydantic_fields_set__", set(given))
    _set(m, "__pydantic_extra__", None)
    _set(m, "__pydantic_private__", None)
    return m


def _plain(cls: type[BaseModel], order: tuple[str, ...]) -> None:
    """Refuse at import a model ``_built`` cannot build, or whose fields changed."""
    if cls.__pydantic_post_init__ or cls.model_config.get("extra") == "allow":
        raise TypeError(f"{cls.__name__}: _built only builds plain models")
    for name, f in cls.model_fields.items():
        if f.alias not in (None, name) or f.validation_alias not in (None, name):
            raise TypeError(f"{cls.__name__}.{name}: _built does not handle aliases")
    if tuple(cls.model_fields) != order:
        raise AssertionError(
            f"{cls.__name__}'s fields changed: route writes them as a literal, in order "
            "(_sla_event, Router._route_event): add the new one there"
        )


_VALUE: dict[Urgency | MessageKind, str] = {e: e.value for e in (*Urgency, *MessageKind)}
"""``urgency.value`` / ``kind.value`` of a classified message as a dict hit (hot path)."""
_COMPLAINT = MessageKind.complaint.value
_FIRST_RESPONSE, _NEXT_RESPONSE = Clock.first_response.value, Clock.next_response.value
_CLOCK_NAME = {c: c.value for c in Clock}
"""``clock.value`` without the enum property's cost (a dict hit; hot path)."""
_ETYPE_NAME: dict[SlaEventType | RouteEventType, str] = {
    **{e: e.value for e in SlaEventType},
    **{e: e.value for e in RouteEventType},
}
_JSON_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS


def event_json(event: Event) -> bytes:
    """An event as ``common.codecs.dumps`` writes it, byte for byte (property-tested), from
    its fields directly: 1 us instead of pydantic's 10 us model_dump per event. Route's
    events hold only strings, numbers, enums, UTC datetimes, lists and dicts of those."""
    return orjson.dumps(event.__dict__, option=_JSON_OPTIONS)


@dataclass(slots=True)
class ClockState:
    """One running clock. Times are POSIX seconds (compact: a million of these are held)."""

    clock: Clock
    seq: int
    policy: str
    calendar: str
    started_at: float
    target_s: float
    warning_at: float
    due_at: float
    escalations: list[tuple[int, float, str]]
    fired: int = 0

    def stages(self) -> list[tuple[float, int, SlaEventType, int]]:
        """(when, bit, event type, level) of every stage, in time order."""
        out = [
            (self.warning_at, WARNING_BIT, SlaEventType.warning, 0),
            (self.due_at, OVERDUE_BIT, SlaEventType.overdue, 0),
        ]
        out += [
            (at, 1 << (1 + lvl), SlaEventType.escalated, lvl) for lvl, at, _ in self.escalations
        ]
        return out

    def next_due(self) -> float | None:
        fired = self.fired
        if not fired & WARNING_BIT:
            return self.warning_at
        if not fired & OVERDUE_BIT:
            return self.due_at
        for lvl, at, _ in self.escalations:
            if not fired & (1 << (1 + lvl)):
                return at
        return None

    def last_stage(self) -> float:
        """When its last stage (the last escalation, else the deadline) comes due."""
        return self.escalations[-1][1] if self.escalations else self.due_at

    @classmethod
    def from_plan(cls, plan: ClockPlan, seq: int, fired: int = 0) -> ClockState:
        return cls(
            clock=plan.clock,
            seq=seq,
            policy=plan.policy_id,
            calendar=plan.calendar_id,
            started_at=ts(plan.started_at),
            target_s=plan.target.total_seconds(),
            warning_at=ts(plan.warning_at),
            due_at=ts(plan.due_at),
            escalations=[(lvl, ts(at), to) for lvl, at, to in plan.escalations],
            fired=fired,
        )


@dataclass(slots=True)
class ComplaintState:
    """Everything route remembers about a thread's current complaint (the table value)."""

    complaint_id: str
    thread_key: str
    agency_id: str
    agency_kind: str
    region_code: str
    category: str
    subcategory: str | None
    urgency: str
    excerpt: str
    opened_at: float
    partition: int = 0
    resolved_at: float | None = None
    last_reply_at: float | None = None
    acknowledged: bool = False
    reroutes: int = 0
    kind: str = MessageKind.complaint.value
    """The message kind that opened it: complaint, or a kind whose policy runs a clock
    (a question, an aspiration: tracked until answered, then closed)."""
    ack_digests: list[str] = field(default_factory=list)
    """``ack_text_digest`` of notify's automatic acknowledgements on this complaint (newest
    last, at most ``ACK_DIGESTS``): an agency reply with that text is their echo."""
    seqs: dict[str, int] = field(default_factory=dict)
    clocks: dict[str, ClockState] = field(default_factory=dict)
    seen: list[str] = field(default_factory=list)

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None

    def next_due(self, retain_unresolved_s: float = RETAIN_UNRESOLVED_S) -> float | None:
        """When a tick must next look at this complaint: its next stage, else when it is
        dropped (retention after resolving, or after the last stage of a never-resolved one).
        """
        if self.resolved_at is not None:
            return self.resolved_at + RETAIN_RESOLVED_S
        due: float | None = None
        for c in self.clocks.values():
            fired = c.fired  # ClockState.next_due inlined (every encode runs this)
            if not fired & WARNING_BIT:
                d: float | None = c.warning_at
            elif not fired & OVERDUE_BIT:
                d = c.due_at
            else:
                d = c.next_due()
            if d is not None and (due is None or d < due):
                due = d
        if due is None:
            return self.expires_at(retain_unresolved_s)
        return due

    def expires_at(self, retain_unresolved_s: float) -> float:
        """When an open complaint with nothing left to fire is dropped: the retention after
        its last stage, last agency reply or opening, whichever came last."""
        last = self.opened_at
        if self.last_reply_at is not None and self.last_reply_at > last:
            last = self.last_reply_at
        for c in self.clocks.values():
            at = c.last_stage()
            if at > last:
                last = at
        return last + retain_unresolved_s

    def remember(self, ident: str) -> None:
        self.seen.append(ident)
        if len(self.seen) > SEEN_RING:
            del self.seen[0]

    # --- table encoding ----------------------------------------------------------------
    # A small header (magic, next due, partition, open?, agency id) then the state as one
    # orjson array. The header lets a worker rebuild its due index and open-complaint
    # gauges after a rebalance without parsing JSON (a million complaints: ~1-2 s instead
    # of ~20 s). Format R2 (issue 17) is positional: 595 instead of 907 bytes for a new
    # complaint, and decoding builds the dataclasses positionally (4x faster than R1's
    # keyword dict); R1 records written by older versions still decode.
    def to_bytes(self, retain_unresolved_s: float = RETAIN_UNRESOLVED_S) -> bytes:
        clocks = [(_STORED_CLOCK[c.clock], *_CLOCK_ROW(c)) for c in self.clocks.values()]
        row = (_N_SCALARS, *_SCALAR_ROW(self), self.seqs, self.seen, clocks)
        due = self.next_due(retain_unresolved_s)
        agency = self.agency_id.encode()[:255]
        header = _HEADER.pack(
            _MAGIC, -1.0 if due is None else due, self.partition, self.is_open, len(agency)
        )
        # Concatenation also copies: orjson returns bytes with ~8 KB of spare capacity that a
        # long-lived table value would keep (measured: 8.1 KB vs 0.98 KB RSS per state).
        return header + agency + orjson.dumps(row)

    @classmethod
    def from_bytes(cls, data: bytes) -> ComplaintState:
        magic = data[:2]
        if magic != _MAGIC and magic != _MAGIC_V1:
            raise ValueError("not a route state record (bad magic)")
        body = orjson.loads(memoryview(data)[_HEADER.size + data[_HEADER.size - 1] :])
        if magic == _MAGIC:
            n = body[0]  # scalars stored (a version that adds one still reads older records)
            rows = body[n + 3]
            if n == _N_SCALARS:  # every field by position: seqs, clocks (filled below), seen
                args = body[1 : n + 2]
                args += ({}, body[n + 2])
                state = cls(*args)
            else:
                state = cls(*body[1 : n + 1])
                state.seqs, state.seen = body[n + 1], body[n + 2]
        else:
            state = cls(**{k: body[k] for k in _SCALARS if k in body})
            state.seqs, state.seen, rows = body["seqs"], body["seen"], body["clocks"]
            _move_echoes(state)
        clocks = state.clocks
        for row in rows:
            code = row[0]
            clock = row[0] = _CLOCK_OF_CODE[code] if type(code) is int else Clock(code)
            row[8] = list(map(tuple, row[8]))  # escalations: (level, at, to)
            clocks[_CLOCK_NAME[clock]] = ClockState(*row)
        return state


_MAGIC = b"R2"
_MAGIC_V1 = b"R1"
_HEADER = struct.Struct("<2sdH?B")  # magic, next due, partition, is open, len(agency id)
_CLOCK_CODE = {"first_response": 0, "next_response": 1, "resolution": 2}
"""Fixed small codes for the clocks (never renumber: stored); other clocks as their value."""
_CLOCK_OF_CODE = {code: Clock(value) for value, code in _CLOCK_CODE.items()}
_STORED_CLOCK: dict[Clock, int | str] = {c: _CLOCK_CODE.get(c.value, c.value) for c in Clock}
_CLOCK_ROW = attrgetter(*(f.name for f in fields(ClockState)[1:]))
"""A clock's stored fields after its code, in ``ClockState``'s order (one C call)."""


@dataclass(frozen=True, slots=True)
class Schedule:
    """What a worker needs from a stored state to index it, read without parsing JSON."""

    due: float | None
    partition: int
    is_open: bool
    agency_id: str


def peek_schedule(data: bytes) -> Schedule:
    magic, due, partition, is_open, n = _HEADER.unpack_from(data)
    if magic != _MAGIC and magic != _MAGIC_V1:
        raise ValueError("not a route state record (bad magic)")
    agency = data[_HEADER.size : _HEADER.size + n].decode()
    return Schedule(None if due < 0 else due, partition, is_open, agency)


_SCALARS = (
    "complaint_id", "thread_key", "agency_id", "agency_kind", "region_code", "category",
    "subcategory", "urgency", "excerpt", "opened_at", "partition", "resolved_at",
    "last_reply_at", "acknowledged", "reroutes", "kind", "ack_digests",
)  # fmt: skip
"""Stored positionally, in ``ComplaintState``'s field order (R2), followed by seqs, seen and
the clocks. A new field goes at the end of these, before ``seqs``, with a default: a record
written before it stores fewer and decodes with the default."""
_N_SCALARS = len(_SCALARS)
_SCALAR_ROW = attrgetter(*_SCALARS)
if tuple(f.name for f in fields(ComplaintState)) != (*_SCALARS, "seqs", "clocks", "seen"):
    raise AssertionError(
        "ComplaintState's fields must be _SCALARS then seqs, clocks, seen: add a new field to "
        "_SCALARS and before seqs (R2 stores the scalars by position)"
    )


def _move_echoes(state: ComplaintState) -> None:
    """An R1 record written before ``ack_digests`` kept the digests in the ring of seen ids
    as ``echo:<digest>``: move them to their field."""
    echoes = [s for s in state.seen if s.startswith(_ECHO_PREFIX)]
    if echoes:
        state.seen = [s for s in state.seen if not s.startswith(_ECHO_PREFIX)]
        state.ack_digests = [s.removeprefix(_ECHO_PREFIX) for s in echoes][-ACK_DIGESTS:]


_ECHO_PREFIX = "echo:"
_UNKNOWN: Any = object()


@dataclass(frozen=True)
class Router:
    """The pure context: SLA policies and the registry. Methods take time as an argument."""

    config: SlaConfig
    registry: Registry
    excerpt_chars: int = EXCERPT_CHARS
    retain_unresolved_s: float = RETAIN_UNRESOLVED_S
    _escalation_targets: dict[tuple[str, str, str], str] = field(
        default_factory=dict, compare=False, repr=False
    )
    """(target, agency, region) → who gets the escalation: the registry walk, once."""
    _stages: dict[tuple[str, str, Clock], Stages | None] = field(
        default_factory=dict, compare=False, repr=False
    )
    """(policy, agency, clock) → ``SlaConfig.stages_us``: one dict hit per clock planned."""
    _agencies: dict[str, Agency] = field(default_factory=dict, compare=False, repr=False)
    """The registry's agencies by id, kept here: ``Registry.agency`` goes through pydantic's
    private-attribute lookup (~1 us a call, two calls a step)."""

    # --- helpers ----------------------------------------------------------------------
    def _agency(self, agency_id: str) -> Agency:
        agency = self._agencies.get(agency_id)
        if agency is None:
            agency = self.registry.agency(agency_id)
            if agency is None:
                raise Refusal("unknown_agency", f"agency {agency_id!r} is not in the registry")
            self._agencies[agency_id] = agency
        return agency

    def _policy(self, state: ComplaintState, agency: Agency) -> Policy:
        return self.config.select(state.category, state.urgency, agency.id, agency.kind, state.kind)

    def _start(
        self,
        state: ComplaintState,
        agency: Agency,
        clock: Clock,
        start: float,
        seq: int | None = None,
        fired: int = 0,
        policy: Policy | None = None,
    ) -> ClockState | None:
        """Plan a clock under the policy for (complaint, agency); a new run gets the next
        sequence number unless ``seq`` is given (re-planning the same run). ``policy`` saves
        the lookup when the caller already has it."""
        if policy is None:
            policy = self._policy(state, agency)
        key = (policy.id, agency.id, clock)
        stages = self._stages.get(key, _UNKNOWN)
        if stages is _UNKNOWN:
            stages = self._stages[key] = self.config.stages_us(policy, agency, clock)
        if stages is None:
            return None
        cal, target_s, offsets, ladder = stages
        start_us = micros(start)
        at = cal.add_business_us(start_us, offsets)
        name = _CLOCK_NAME[clock]
        if seq is None:
            seq = state.seqs.get(name, 0) + 1
            state.seqs[name] = seq
        # Same values as ClockState.from_plan(config.plan(...)): ts() of a datetime is its
        # integer microseconds / 1e6, correctly rounded, which is what int / int gives.
        c = ClockState(
            clock,
            seq,
            policy.id,
            cal.id,
            start_us / 1_000_000,
            target_s,
            at[0] / 1_000_000,
            at[1] / 1_000_000,
            [(lvl, t / 1_000_000, to) for (lvl, to), t in zip(ladder, at[2:], strict=True)],
            fired,
        )
        state.clocks[name] = c
        return c

    def _escalate_to(self, state: ComplaintState, target: str) -> str:
        key = (target, state.agency_id, state.region_code)
        found = self._escalation_targets.get(key)
        if found is None:
            found = self._escalation_targets[key] = self._find_escalation(state, target)
        return found

    def _find_escalation(self, state: ComplaintState, target: str) -> str:
        if target == "head":
            return f"head:{state.agency_id}"
        if target.startswith("agency:"):
            return target.removeprefix("agency:")
        kind = target.removeprefix("kind:")
        found = self.registry.find_agency(kind, state.region_code)
        return found.id if found else f"{kind}@{state.region_code}"

    def _sla(
        self,
        state: ComplaintState,
        etype: SlaEventType,
        at: float,
        clock: ClockState | None,
        level: int = 0,
        seq_tag: str | None = None,
    ) -> SlaEvent:
        if clock is not None:
            event_id = (
                f"{state.complaint_id}:{_CLOCK_NAME[clock.clock]}:{clock.seq}:"
                f"{_ETYPE_NAME[etype]}:{level}"
            )
            return _sla_event(state, etype, event_id, clock, utc(clock.due_at), utc(at), level)
        event_id = f"{state.complaint_id}:{_ETYPE_NAME[etype]}:{seq_tag}"
        return _sla_event(state, etype, event_id, None, None, utc(at), level)

    def _route_event(
        self,
        state: ComplaintState,
        etype: RouteEventType,
        at: float,
        agency: Agency,
        previous: str | None = None,
        reason: str | None = None,
        policy: Policy | None = None,
    ) -> RouteEvent:
        suffix = "" if etype is RouteEventType.routed else f":{state.reroutes}"
        if policy is None:
            policy = self._policy(state, agency)
        values = {  # RouteEvent's fields in order (checked at import); trusted values
            "event_id": f"{state.complaint_id}:{_ETYPE_NAME[etype]}{suffix}",
            "event_type": etype,
            "complaint_id": state.complaint_id,
            "thread_key": state.thread_key,
            "agency_id": agency.id,
            "agency_kind": agency.kind,
            "region_code": state.region_code,
            "category": state.category,
            "subcategory": state.subcategory,
            "urgency": state.urgency,
            "kind": state.kind,
            "text_excerpt": state.excerpt,
            "due": {c.clock: utc(c.due_at) for c in state.clocks.values()},
            "policy": policy.id,
            "channels": list(agency.channels),
            "routed_at": utc(at),
            "previous_agency_id": previous,
            "reason": reason,
        }
        return _built(RouteEvent, values, _ROUTE_GIVEN)

    def _stop_response(
        self, state: ComplaintState, c: ClockState, at: float, etype: SlaEventType
    ) -> SlaEvent:
        """Stop a clock and report how long it ran, in wall-clock and business time."""
        del state.clocks[_CLOCK_NAME[c.clock]]
        agency = self._agency(state.agency_id)
        cal = self.config.calendar(c.calendar, agency.timezone)
        # = business_time_between(utc(started), utc(at)).total_seconds(), without datetimes
        business = cal.business_us_between(micros(c.started_at), micros(at)) / 1_000_000
        event_id = f"{state.complaint_id}:{_CLOCK_NAME[c.clock]}:{c.seq}:{_ETYPE_NAME[etype]}:0"
        return _sla_event(
            state,
            etype,
            event_id,
            c,
            utc(c.due_at),
            utc(at),
            0,
            None,
            max(0.0, at - c.started_at),
            business,
            at <= c.due_at,
            _SLA_GIVEN_RESPONSE,
        )

    # --- inputs -----------------------------------------------------------------------
    def on_message(
        self, state: ComplaintState | None, cm: ClassifiedMessage, partition: int = 0
    ) -> tuple[ComplaintState | None, list[Event]]:
        """A classified message of the thread: a new complaint, an agency reply, a follow-up."""
        m = cm.message
        at = ts(min(m.platform_time, m.received_at))
        key = event_key(m)
        if state is not None and key in state.seen:
            return state, []  # replay
        if m.action is Action.remove:
            removed = self._withdrawal(state, m, at)
            if state is not None:
                state.remember(key)
            return state, removed
        if m.action is Action.edit and state is not None:
            if m.message_id == state.complaint_id:
                return state, self._on_edit(state, cm, key, at)
            if state.is_open:
                state.remember(key)  # an edited follow-up or reply: nothing to re-route
                return state, []
        # A new message, or an edit of one that opened nothing (a mention whose text was
        # fetched, a message classified as chat before): it may open a complaint.
        if state is None or not state.is_open:
            if m.is_agency_reply or not self._tracked(cm):
                if state is not None:
                    state.remember(m.message_id)
                return state, []
            return self._open(cm, at, partition)
        state.remember(m.message_id)
        events: list[Event] = []
        if m.is_agency_reply:
            if is_auto_ack_echo(state, m.text):
                return state, []  # notify's acknowledgement coming back: not a response
            if at < state.opened_at:
                return state, []  # an older post of the account, not an answer
            if m.delivery_status == "failed":
                return state, []  # a WhatsApp reply that never reached the citizen
            state.last_reply_at = max(at, state.last_reply_at or at)
            for clock in (Clock.first_response, Clock.next_response):
                c = state.clocks.get(_CLOCK_NAME[clock])
                if c is not None and at >= c.started_at:
                    events.append(self._stop_response(state, c, at, SlaEventType.responded))
            if state.kind != _COMPLAINT and not state.clocks:
                state.resolved_at = at  # an answered question has nothing left to resolve
        elif (
            state.last_reply_at is not None
            and at > state.last_reply_at
            and self.config.defaults.next_response
            and _NEXT_RESPONSE not in state.clocks
            and _FIRST_RESPONSE not in state.clocks
        ):
            self._start(state, self._agency(state.agency_id), Clock.next_response, at)
        return state, events

    def _withdrawal(self, state: ComplaintState | None, m: Message, at: float) -> list[Event]:
        """The citizen removed the message that opened the open complaint: withdrawn. Every
        clock stops (no warning, overdue or escalation follows) and the state is kept like
        a resolved one (for replays, and an operator's ``reopen``). A removed follow-up, an
        agency's removed reply, or a removal of a closed complaint change nothing."""
        if (
            state is None
            or m.is_agency_reply
            or m.message_id != state.complaint_id
            or not state.is_open
        ):
            return []
        state.clocks.clear()
        state.resolved_at = at
        n = state.seqs.get(Clock.resolution.value, 0)
        return [self._sla(state, SlaEventType.withdrawn, at, None, seq_tag=str(n))]

    def _on_edit(
        self, state: ComplaintState, cm: ClassifiedMessage, key: str, at: float
    ) -> list[Event]:
        """The citizen edited the message that opened the complaint. Its text is updated;
        re-classified, a changed category or agency moves it (``rerouted``, reason
        ``edited``: response clocks restart for the agency, the resolution clock keeps its
        start, as for a reroute command) and the earlier routing stays in the history; an
        unchanged one is ``updated``. An edit of a closed complaint, or one that no longer
        reads as a complaint, changes only the text."""
        state.remember(key)
        m = cm.message
        if m.is_agency_reply:
            return []
        state.excerpt = (m.text or "")[: self.excerpt_chars]
        if not state.is_open:
            return []
        moved = (cm.agency_id, cm.category, cm.subcategory) != (
            state.agency_id,
            state.category,
            state.subcategory,
        )
        if moved and self._tracked(cm):
            agency = self._agency(cm.agency_id)
            previous = state.agency_id
            state.category, state.subcategory = cm.category, cm.subcategory
            state.urgency, state.region_code = cm.urgency.value, cm.region_code
            self._move(state, agency, at)
            return [
                self._route_event(
                    state, RouteEventType.rerouted, at, agency, previous=previous, reason="edited"
                )
            ]
        event = self._route_event(state, RouteEventType.updated, at, self._agency(state.agency_id))
        return [
            event.model_copy(update={"event_id": f"{state.complaint_id}:updated:{_digest(m.text)}"})
        ]

    def _move(self, state: ComplaintState, agency: Agency, at: float) -> None:
        """Hand the complaint to ``agency`` (possibly the same one, under a new category):
        response clocks restart for it (next sequence number), the resolution clock keeps
        its start and the stages it fired, re-planned with the new policy and calendar."""
        state.agency_id, state.agency_kind = agency.id, agency.kind
        state.reroutes += 1
        for clock in (Clock.first_response, Clock.next_response):
            if clock.value in state.clocks:
                del state.clocks[clock.value]
                self._start(state, agency, clock, at)
        res = state.clocks.get(Clock.resolution.value)
        if res is not None:
            del state.clocks[Clock.resolution.value]
            self._start(
                state, agency, Clock.resolution, res.started_at, seq=res.seq, fired=res.fired
            )

    def _tracked(self, cm: ClassifiedMessage) -> bool:
        """Complaints always; another kind when its SLA policy runs a clock for it."""
        if cm.kind is MessageKind.complaint:
            return True
        agency = self._agency(cm.agency_id)
        policy = self.config.select(
            cm.category, _VALUE[cm.urgency], agency.id, agency.kind, _VALUE[cm.kind]
        )
        return bool(policy.targets)

    def _open(
        self, cm: ClassifiedMessage, at: float, partition: int
    ) -> tuple[ComplaintState, list[Event]]:
        m = cm.message
        agency = self._agency(cm.agency_id)
        state = ComplaintState(
            complaint_id=m.message_id,
            thread_key=m.thread_key,
            agency_id=agency.id,
            agency_kind=agency.kind,
            region_code=cm.region_code,
            category=cm.category,
            subcategory=cm.subcategory,
            urgency=_VALUE[cm.urgency],
            excerpt=(m.text or "")[: self.excerpt_chars],
            opened_at=at,
            partition=partition,
            kind=_VALUE[cm.kind],
        )
        state.remember(m.message_id)
        if m.action is not Action.add:
            state.remember(event_key(m))  # opened by an edit: its replay is one too
        policy = self._policy(state, agency)
        for clock in (Clock.first_response, Clock.resolution):
            self._start(state, agency, clock, at, policy=policy)
        return state, [self._route_event(state, RouteEventType.routed, at, agency, policy=policy)]

    def on_command(
        self, state: ComplaintState | None, cmd: Command
    ) -> tuple[ComplaintState, list[Event]]:
        """Apply an operator command; raise Refusal (dead letter) when it cannot apply."""
        if state is None or state.complaint_id != cmd.complaint_id:
            raise Refusal(
                "unknown_complaint",
                f"no complaint {cmd.complaint_id!r} on thread {cmd.thread_key!r}",
            )
        if cmd.command_id in state.seen:
            return state, []
        at = ts(cmd.issued_at)
        handler = {
            CommandType.reroute: self._reroute,
            CommandType.resolve: self._resolve,
            CommandType.reopen: self._reopen,
            CommandType.acknowledge: self._acknowledge,
            CommandType.auto_acknowledged: self._auto_acknowledged,
        }[cmd.type]
        events = handler(state, cmd, at)
        state.remember(cmd.command_id)
        return state, events

    def _reroute(self, state: ComplaintState, cmd: Command, at: float) -> list[Event]:
        """Bukan wewenang: hand the complaint to another agency.

        Running response clocks end for the old agency without a ``responded`` event and
        restart (next sequence number) for the new agency at the reroute instant: the new
        agency gets its full target. The resolution clock keeps its original start (the
        citizen's overall wait does not restart) and is re-planned with the new agency's
        policy and calendar; stages it already fired are not repeated."""
        if not state.is_open:
            raise Refusal("invalid_state", "cannot reroute a resolved complaint; reopen it first")
        if not cmd.agency_id:
            raise Refusal("missing_agency", "reroute needs agency_id (the target agency)")
        if cmd.agency_id == state.agency_id:
            raise Refusal("same_agency", f"complaint is already with {cmd.agency_id!r}")
        agency = self._agency(cmd.agency_id)
        previous = state.agency_id
        self._move(state, agency, at)
        return [
            self._route_event(
                state, RouteEventType.rerouted, at, agency, previous=previous, reason=cmd.reason
            )
        ]

    def _resolve(self, state: ComplaintState, cmd: Command, at: float) -> list[Event]:
        if not state.is_open:
            raise Refusal("invalid_state", "complaint is already resolved")
        res = state.clocks.get(Clock.resolution.value)
        events: list[Event] = []
        if res is not None:
            events.append(self._stop_response(state, res, at, SlaEventType.resolved))
        else:
            n = state.seqs.get(Clock.resolution.value, 0)
            events.append(self._sla(state, SlaEventType.resolved, at, None, seq_tag=str(n)))
        state.clocks.clear()
        state.resolved_at = at
        return events

    def _reopen(self, state: ComplaintState, cmd: Command, at: float) -> list[Event]:
        if state.is_open:
            raise Refusal("invalid_state", "complaint is open; only a resolved one can reopen")
        state.resolved_at = None
        c = self._start(state, self._agency(state.agency_id), Clock.resolution, at)
        seq = c.seq if c else state.seqs.get(Clock.resolution.value, 0)
        event = self._sla(state, SlaEventType.reopened, at, None, seq_tag=str(seq))
        if c is not None:
            event = event.model_copy(
                update={"clock": c.clock, "policy": c.policy, "due_at": utc(c.due_at)}
            )
        return [event]

    def _acknowledge(self, state: ComplaintState, cmd: Command, at: float) -> list[Event]:
        """An agency user took the complaint on (in the dashboard). It is recorded once but
        stops no clock: only a reply the citizen can see counts as a response."""
        if state.acknowledged:
            return []
        state.acknowledged = True
        return [self._sla(state, SlaEventType.acknowledged, at, None, seq_tag="1")]

    def _auto_acknowledged(self, state: ComplaintState, cmd: Command, at: float) -> list[Event]:
        """notify is about to reply to the citizen automatically (tracking number, expected
        response time); keep the digest of its text so that the reply's echo, which the
        platform delivers back as the agency's own message, does not stop the first-response
        clock. No event: the citizen was acknowledged by a machine, not by the agency."""
        if cmd.text_sha256 and cmd.text_sha256 not in state.ack_digests:
            state.ack_digests.append(cmd.text_sha256)
            if len(state.ack_digests) > ACK_DIGESTS:
                del state.ack_digests[0]
        return []

    def on_tick(
        self, state: ComplaintState | None, now: float, lags: list[float] | None = None
    ) -> tuple[ComplaintState | None, list[Event]]:
        """Fire every stage that came due by ``now`` (catch-up included), each once.

        Appends to ``lags`` how late each stage fired (for the timer-lag metric). Returns None
        as the state when its retention ran out (purge): a resolved complaint's, or a
        never-resolved one's after its last stage (``retain_unresolved_s``)."""
        if state is None:
            return None, []
        if state.resolved_at is not None:
            if now >= state.resolved_at + RETAIN_RESOLVED_S:
                return None, []
            return state, []
        retain = self.retain_unresolved_s
        if (
            now >= state.opened_at + retain  # expires_at is never earlier: skip it
            and now >= state.expires_at(retain)
            and all(c.next_due() is None for c in state.clocks.values())
        ):
            return None, []  # never resolved, nothing left to fire: dropped
        events: list[Event] = []
        occurred: datetime | None = None
        for c in list(state.clocks.values()):
            # Stages in time order (warning, deadline, escalations by level), each fired
            # once: its bit in ``fired``. One datetime per instant, shared by the events.
            if c.warning_at > now:
                continue
            if occurred is None:
                occurred = utc_shared(now)
            due = utc(c.due_at)
            prefix = f"{state.complaint_id}:{_CLOCK_NAME[c.clock]}:{c.seq}:"
            fired = c.fired
            if not fired & WARNING_BIT:
                c.fired |= WARNING_BIT
                events.append(
                    _sla_event(state, _WARNING, prefix + "warning:0", c, due, occurred, 0)
                )
                if lags is not None:
                    lags.append(now - c.warning_at)
            if c.due_at > now:
                continue
            if not fired & OVERDUE_BIT:
                c.fired |= OVERDUE_BIT
                events.append(
                    _sla_event(state, _OVERDUE, prefix + "overdue:0", c, due, occurred, 0)
                )
                if lags is not None:
                    lags.append(now - c.due_at)
            for level, at, target in c.escalations:
                if at > now:
                    break
                bit = 1 << (1 + level)
                if fired & bit:
                    continue
                c.fired |= bit
                event_id = f"{prefix}escalated:{level}"
                to = self._escalate_to(state, target)
                events.append(
                    _sla_event(
                        state,
                        _ESCALATED,
                        event_id,
                        c,
                        due,
                        occurred,
                        level,
                        to,
                        given=_SLA_GIVEN_TO,
                    )
                )
                if lags is not None:
                    lags.append(now - at)
        return state, events


def _sla_event(
    state: ComplaintState,
    etype: SlaEventType,
    event_id: str,
    c: ClockState | None,
    due: datetime | None,
    occurred: datetime,
    level: int,
    escalate_to: str | None = None,
    response_seconds: float | None = None,
    business_seconds: float | None = None,
    met: bool | None = None,
    given: frozenset[str] | None = None,
) -> SlaEvent:
    """An ``SlaEvent`` from trusted values (no re-validation: the hot path's events)."""
    values = {  # SlaEvent's fields in order (checked at import)
        "event_id": event_id,
        "event_type": etype,
        "complaint_id": state.complaint_id,
        "thread_key": state.thread_key,
        "agency_id": state.agency_id,
        "clock": c.clock if c is not None else None,
        "policy": c.policy if c is not None else None,
        "due_at": due,
        "occurred_at": occurred,
        "escalation_level": level or None,
        "escalate_to": escalate_to,
        "response_seconds": response_seconds,
        "business_seconds": business_seconds,
        "met": met,
    }
    return _built(SlaEvent, values, _SLA_GIVEN if given is None else given)


_WARNING, _OVERDUE, _ESCALATED = SlaEventType.warning, SlaEventType.overdue, SlaEventType.escalated
_SLA_FIELDS = (
    "event_id", "event_type", "complaint_id", "thread_key", "agency_id", "clock", "policy",
    "due_at", "occurred_at", "escalation_level",
    "escalate_to", "response_seconds", "business_seconds", "met",
)  # fmt: skip
_ROUTE_FIELDS = (
    "event_id", "event_type", "complaint_id", "thread_key", "agency_id", "agency_kind",
    "region_code", "category", "subcategory", "urgency", "kind", "text_excerpt", "due",
    "policy", "channels", "routed_at", "previous_agency_id", "reason",
)  # fmt: skip
_plain(SlaEvent, _SLA_FIELDS)
_plain(RouteEvent, _ROUTE_FIELDS)
_SLA_GIVEN = frozenset(_SLA_FIELDS[:10])
"""The fields an SLA event sets explicitly (its ``model_fields_set``, as before)."""
_SLA_GIVEN_TO = _SLA_GIVEN | {"escalate_to"}
_SLA_GIVEN_RESPONSE = _SLA_GIVEN | {"response_seconds", "business_seconds", "met"}
_ROUTE_GIVEN = frozenset(_ROUTE_FIELDS)


def is_auto_ack_echo(state: ComplaintState, text: str | None) -> bool:
    """Whether an agency reply is the echo of one of notify's automatic acknowledgements
    (its text has a digest an ``auto_acknowledged`` command gave): not a response."""
    return bool(text and state.ack_digests and ack_text_digest(text) in state.ack_digests)
