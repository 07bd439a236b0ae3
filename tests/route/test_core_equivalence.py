"""The optimised route core decides exactly what the core before issue 17 decided.

Hypothesis drives the frozen copy (``tests/route/legacy``, with main's behaviour changes of
issues 13 and 15 copied in at the merge) and the current core with the same random
histories of one thread: complaints and other messages of every kind (questions and
aspirations get a first-response clock, praise and spam none) from citizens and the agency,
commands (reroute, resolve, reopen, acknowledge, notify's auto_acknowledged, some invalid),
agency replies that are or are not an acknowledgement's echo, and ticks across months that
cross weekends, Indonesian holidays and all three time zones. After every step
both must agree on the events (every field), the refusals, and the state; the current state
also goes through its table encoding each step, as the worker stores it. Retention of
never-resolved complaints is new behaviour, so the current router runs with it off here
(``test_clocks`` covers it)."""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from common import codecs
from common.refusal import Refusal
from schemas.classified import MessageKind, Urgency
from schemas.commands import CommandType, ack_text_digest
from services.route.calendar import BusinessCalendar
from services.route.clocks import ComplaintState, Router, event_json, micros, utc
from services.route.policy import MATCH_FIELDS, PolicyIndex
from tests.route.factories import CONFIG, REGISTRY, ROOT, command, message
from tests.route.legacy import calendar as legacy_calendar
from tests.route.legacy import clocks as legacy
from tests.route.legacy import policy as legacy_policy

NEW = Router(CONFIG, REGISTRY, retain_unresolved_s=math.inf)
OLD = legacy.Router(legacy_policy.load_sla_config(ROOT / "deploy/config/sla.yaml"), REGISTRY)
AGENCIES = sorted(a.id for a in REGISTRY.agencies)
CATEGORIES = sorted(
    {c for p in CONFIG.policies if p.match and p.match.category for c in p.match.category}
    | {"roads", "other", "waste"}
)
URGENCIES = list(Urgency)
START = datetime(2025, 12, 20, tzinfo=UTC)  # Christmas, New Year, cuti bersama ahead
TEXTS = [
    "jalan berlubang di depan pasar, mohon diperbaiki",
    "Terima kasih, aduan Anda kami terima. Nomor aduan: ADU-7F3K2QXA.",
    "Terima kasih, aduan Anda kami terima. Nomor aduan: ADU-OTHER000.",
]
"""Message texts; notify's acknowledgements carry the digest of one of the last two."""

step_st = st.one_of(
    st.tuples(
        st.just("message"),
        st.sampled_from([MessageKind.complaint] * 4 + list(MessageKind)),
        st.booleans(),  # agency reply
        st.sampled_from(AGENCIES),
        st.sampled_from(CATEGORIES),
        st.sampled_from(URGENCIES),
        st.booleans(),  # failed WhatsApp delivery
        st.sampled_from([TEXTS[1], *TEXTS]),  # an echo of the first acknowledgement, often
    ),
    st.tuples(
        st.just("command"),
        st.sampled_from([*CommandType, CommandType.auto_acknowledged]),
        st.sampled_from([None, *AGENCIES]),
        st.sampled_from([True] * 5 + [False]),  # for the thread's complaint (else unknown)
        st.sampled_from([*TEXTS[1:], None]),  # the acknowledgement's text (auto_acknowledged)
    ),
    st.tuples(st.just("tick")),
)
gap_st = st.one_of(
    st.integers(0, 3600 * 1_000_000),
    st.integers(0, 4 * 86400 * 1_000_000),
    st.integers(0, 20 * 86400 * 1_000_000),
)
opening_st = st.tuples(
    st.just("message"),
    st.sampled_from([MessageKind.complaint] * 3 + [MessageKind.question, MessageKind.aspiration]),
    st.just(False), st.sampled_from(AGENCIES),
    st.sampled_from(CATEGORIES), st.sampled_from(URGENCIES), st.just(False), st.just(TEXTS[0]),
)  # fmt: skip
history_st = st.tuples(st.just(0), opening_st).flatmap(
    lambda first: st.lists(st.tuples(gap_st, step_st), max_size=25).map(lambda r: [first, *r])
)


def plain(state: Any) -> Any:
    return None if state is None else dataclasses.asdict(state)


def dumped(events: list[Any]) -> list[dict[str, Any]]:
    return [e.model_dump() | {"__type": type(e).__name__} for e in events]


def run_step(router: Any, state: Any, step: tuple[Any, ...], at: datetime, n: int) -> Any:
    kind = step[0]
    thread = "instagram:m:t1"
    if kind == "message":
        _, mkind, reply, agency, category, urgency, failed, text = step
        cm = message(
            f"m{n}", thread, at, agency_reply=reply, kind=mkind, agency_id=agency,
            agency_kind=REGISTRY.agency(agency).kind,  # type: ignore[union-attr]
            category=category, urgency=urgency, text=text,
        )  # fmt: skip
        if failed and reply:
            m = cm.message.model_copy(update={"delivery_status": "failed"})
            cm = cm.model_copy(update={"message": m})
        if reply and state is not None and ack_text_digest(text) in state.ack_digests:
            event("echo of an acknowledgement")
        return router.on_message(state, cm, 2)
    if kind == "command":
        _, ctype, agency, own, text = step
        complaint = state.complaint_id if (own and state is not None) else "instagram:nope"
        cmd = command(f"k{n}", ctype, complaint, thread, at, agency_id=agency, reason="r")
        if text is not None:
            cmd = cmd.model_copy(update={"text_sha256": ack_text_digest(text.upper())})
        return router.on_command(state, cmd)
    lags: list[float] = []
    new, events = router.on_tick(state, at.timestamp(), lags)
    return new, events + lags


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(offset=st.integers(0, 400 * 86400), history=history_st)
def test_current_core_equals_the_core_before_issue_17(
    offset: int, history: list[tuple[int, tuple[Any, ...]]]
) -> None:
    at = START + timedelta(seconds=offset, microseconds=offset % 997)
    old_state: Any = None
    new_state: Any = None
    for n, (gap, step) in enumerate(history):
        at += timedelta(microseconds=gap)
        outcome = []
        for router, state in ((OLD, old_state), (NEW, new_state)):
            try:
                outcome.append(run_step(router, state, step, at, n))
            except Refusal as exc:
                outcome.append((state, ("refused", exc.reason, exc.detail)))
        (old_state, old_events), (new_state, new_events) = outcome
        if isinstance(old_events, tuple):
            event(f"refused {old_events[1]}")
            assert new_events == old_events
        else:
            assert [x for x in new_events if isinstance(x, float)] == [
                x for x in old_events if isinstance(x, float)
            ]
            for e in old_events:
                if not isinstance(e, float):
                    event(f"{e.event_type.value} {getattr(e, 'clock', None)}")
            assert dumped([e for e in new_events if not isinstance(e, float)]) == dumped(
                [e for e in old_events if not isinstance(e, float)]
            )
            # the worker writes events with event_json: the same bytes the old codec wrote
            assert [event_json(e) for e in new_events if not isinstance(e, float)] == [
                codecs.dumps(e) for e in old_events if not isinstance(e, float)
            ]
        assert plain(new_state) == plain(old_state)
        if new_state is not None:
            event(f"{new_state.kind} {'open' if new_state.is_open else 'closed'}")
            new_state = ComplaintState.from_bytes(new_state.to_bytes())
            old_state = legacy.ComplaintState.from_bytes(old_state.to_bytes())


@given(st.floats(min_value=0, max_value=4e9, allow_nan=False))
def test_micros_rounds_like_datetime(value: float) -> None:
    assert micros(value) == (utc(value) - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(
        microseconds=1
    )


@settings(max_examples=300, deadline=None)
@given(
    start=st.datetimes(
        min_value=datetime(2024, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
    ),
    durations=st.lists(st.integers(0, 30 * 86400 * 1_000_000), min_size=1, max_size=5),
    tz=st.sampled_from(["Asia/Jakarta", "Asia/Makassar", "Asia/Jayapura", "Europe/Berlin"]),
    cal_id=st.sampled_from(sorted(CONFIG.calendars)),
)
def test_calendar_integer_path_equals_the_old_datetime_path(
    start: datetime, durations: list[int], tz: str, cal_id: str
) -> None:
    """Europe/Berlin has daylight saving time: the fixed-offset day window must still hold."""
    spec = CONFIG.calendars[cal_id]
    week = spec.week() if not spec.always_open else ((),) * 7
    kw: dict[str, Any] = {
        "id": cal_id,
        "timezone": tz,
        "week": week,
        "national_holidays": spec.national_holidays,
        "closures": frozenset(spec.closures),
        "always_open": spec.always_open,
    }
    new, old = BusinessCalendar(**kw), legacy_calendar.BusinessCalendar(**kw)
    ds = [timedelta(microseconds=d) for d in durations]
    # twice: the second call may hit the closed-time cache
    for _ in range(2):
        assert new.add_business_times(start, ds) == old.add_business_times(start, ds)
    end = start + ds[0]
    assert new.business_time_between(start, end) == old.business_time_between(start, end)


@given(
    values=st.tuples(*(st.sampled_from(["a", "b", "c", "d"]) for _ in MATCH_FIELDS)),
    allowed=st.lists(
        st.tuples(*(st.one_of(st.none(), st.lists(st.sampled_from("abc"))) for _ in MATCH_FIELDS)),
        max_size=6,
    ),
)
def test_compiled_policy_lookup_is_first_match_wins(
    values: tuple[str, ...], allowed: list[tuple[list[str] | None, ...]]
) -> None:
    """Any number of match fields (a new one is one more ``Match`` field)."""

    class Fake:
        def __init__(self, i: int, allow: tuple[list[str] | None, ...] | None) -> None:
            self.id, self.match = f"p{i}", (FakeMatch(allow) if allow is not None else None)

    class FakeMatch:
        def __init__(self, allow: tuple[list[str] | None, ...]) -> None:
            self._allow = allow

        def allowed(self) -> tuple[list[str] | None, ...]:
            return self._allow

    policies = [Fake(i, a) for i, a in enumerate(allowed)] + [Fake(len(allowed), None)]
    index = PolicyIndex(policies)  # type: ignore[arg-type]
    expected = next(
        p
        for p in policies
        if p.match is None
        or all(a is None or v in a for a, v in zip(p.match.allowed(), values, strict=True))
    )
    assert index.select(values) is expected


def test_records_written_before_issue_17_still_decode() -> None:
    old_state, _ = OLD.on_message(None, message("c1", "t1", START + timedelta(days=3)), 1)
    assert old_state is not None
    decoded = ComplaintState.from_bytes(old_state.to_bytes())
    assert plain(decoded) == plain(old_state)


def test_records_of_mains_core_with_digests_in_the_seen_ring_still_work() -> None:
    """Before the merge with issue 17, main's core kept an acknowledgement's digest in the
    ring of seen ids as ``echo:<digest>`` (R1 records): decoding moves it to its field."""
    state, _ = OLD.on_message(None, message("c1", "t1", START + timedelta(days=3)), 1)
    assert state is not None
    digest = ack_text_digest(TEXTS[1])
    data = state.to_bytes()
    size = data.index(b'{"v":1,')  # R1: header, agency id, then the JSON object
    body = orjson.loads(data[size:])
    del body["ack_digests"]
    body["seen"].append("echo:" + digest)
    decoded = ComplaintState.from_bytes(data[:size] + orjson.dumps(body))
    assert decoded.ack_digests == [digest]
    assert decoded.seen == ["instagram:c1"]
    at = START + timedelta(days=3, seconds=8)
    echo = message("r1", "t1", at, agency_reply=True, text=TEXTS[1])
    assert NEW.on_message(decoded, echo)[1] == []  # the echo: not a response
    reply = message("r2", "t1", at, agency_reply=True, text=TEXTS[2])
    assert [e.event_type.value for e in NEW.on_message(decoded, reply)[1]] == ["responded"]
