"""The pure state machine: every stage once, responses, follow-ups, commands, replays."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from common.refusal import Refusal
from schemas.classified import MessageKind, Urgency
from schemas.commands import CommandType
from schemas.routes import RouteEvent, RouteEventType
from schemas.sla import Clock, SlaEvent, SlaEventType
from services.route.clocks import ComplaintState, ts

from .factories import command, message, router

WIB = ZoneInfo("Asia/Jakarta")
MON_9 = datetime(2026, 11, 23, 9, 0, tzinfo=WIB)
R = router()


def kinds(events: list) -> list[tuple[str, str | None, int | None]]:
    out = []
    for e in events:
        if isinstance(e, SlaEvent):
            out.append((e.event_type.value, e.clock.value if e.clock else None, e.escalation_level))
        else:
            out.append((e.event_type.value, None, None))
    return out


def tick_through(state: ComplaintState | None, start: datetime, end: datetime, step: timedelta):
    """Tick every ``step`` from start to end, collecting events (simulated time)."""
    events = []
    t = start
    while t <= end:
        state, evs = R.on_tick(state, ts(t))
        events += evs
        t += step
    return state, events


def test_complaint_is_routed_with_due_times_and_channels() -> None:
    state, events = R.on_message(None, message("c1", "t1", MON_9))
    assert state is not None
    [routed] = events
    assert isinstance(routed, RouteEvent)
    assert routed.event_type is RouteEventType.routed
    assert routed.event_id == "instagram:c1:routed"
    assert routed.agency_id == "sby-public-works"
    assert routed.channels == ["email:sby-public-works@example.go.id"]
    assert routed.policy == "default"
    assert routed.due[Clock.first_response] == datetime(2026, 11, 23, 14, 0, tzinfo=WIB)
    assert routed.due[Clock.resolution] > routed.due[Clock.first_response]


def test_no_reply_warning_overdue_escalations_each_once() -> None:
    state, _ = R.on_message(None, message("c1", "t1", MON_9))
    assert state is not None
    end = MON_9 + timedelta(days=30)
    state, events = tick_through(state, MON_9, end, timedelta(minutes=7))
    fr = [k for k in kinds(events) if k[1] == "first_response"]
    assert fr == [
        ("warning", "first_response", None),
        ("overdue", "first_response", None),
        ("escalated", "first_response", 1),
        ("escalated", "first_response", 2),
        ("escalated", "first_response", 3),
    ]
    ids = [e.event_id for e in events]
    assert len(ids) == len(set(ids))
    warning = events[0]
    assert isinstance(warning, SlaEvent)
    # 75% of 4 business hours from Monday 09:00 is 12:00 -> next open minute... 12:00 itself.
    assert warning.occurred_at >= datetime(2026, 11, 23, 12, 0, tzinfo=WIB)
    esc = [e for e in events if isinstance(e, SlaEvent) and e.event_type is SlaEventType.escalated]
    assert [e.escalate_to for e in esc[:3]] == [
        "head:sby-public-works",
        "sby-secretariat",
        "sby-inspectorate",
    ]
    # Ticking again later fires nothing new.
    state, again = R.on_tick(state, ts(end + timedelta(days=30)))
    assert again == []


def test_catch_up_fires_all_missed_stages_in_order_once() -> None:
    state, _ = R.on_message(None, message("c1", "t1", MON_9))
    assert state is not None
    lags: list[float] = []
    state, events = R.on_tick(state, ts(MON_9 + timedelta(days=3)), lags)
    assert [k[0] for k in kinds(events) if k[1] == "first_response"] == [
        "warning", "overdue", "escalated", "escalated", "escalated",
    ]  # fmt: skip
    assert all(lag > 0 for lag in lags)
    state, events = R.on_tick(state, ts(MON_9 + timedelta(days=3)))
    assert events == []


def test_agency_reply_in_time_is_responded_met() -> None:
    state, _ = R.on_message(None, message("c1", "t1", MON_9))
    reply_at = MON_9 + timedelta(hours=1, minutes=30)
    state, events = R.on_message(state, message("r1", "t1", reply_at, agency_reply=True))
    [resp] = events
    assert isinstance(resp, SlaEvent)
    assert resp.event_type is SlaEventType.responded
    assert resp.clock is Clock.first_response
    assert resp.met is True
    assert resp.response_seconds == 5400
    assert resp.business_seconds == 5400
    assert state is not None
    assert Clock.first_response.value not in state.clocks
    # No first-response warning after the reply; the resolution clock still runs.
    state, events = tick_through(state, MON_9, MON_9 + timedelta(hours=8), timedelta(minutes=5))
    assert all(k[1] != "first_response" for k in kinds(events))


def test_late_reply_is_breached_and_business_time_excludes_night() -> None:
    state, _ = R.on_message(None, message("c1", "t1", MON_9))
    reply_at = datetime(2026, 11, 24, 8, 30, tzinfo=WIB)  # next morning
    state, [resp] = R.on_message(state, message("r1", "t1", reply_at, agency_reply=True))
    assert isinstance(resp, SlaEvent)
    assert resp.met is False
    assert resp.response_seconds == 23.5 * 3600
    assert resp.business_seconds == (6 + 1) * 3600  # 09-16 minus lunch, then 07:30-08:30


def test_follow_up_after_reply_starts_next_response_clock() -> None:
    state, _ = R.on_message(None, message("c1", "t1", MON_9))
    state, _ = R.on_message(
        state, message("r1", "t1", MON_9 + timedelta(hours=1), agency_reply=True)
    )
    follow = MON_9 + timedelta(hours=2)
    state, events = R.on_message(
        state, message("f1", "t1", follow, kind=MessageKind.question, text="kapan diperbaiki?")
    )
    assert events == []
    assert state is not None and Clock.next_response.value in state.clocks
    state, [resp] = R.on_message(
        state, message("r2", "t1", follow + timedelta(minutes=20), agency_reply=True)
    )
    assert isinstance(resp, SlaEvent)
    assert (resp.event_type, resp.clock, resp.met) == (
        SlaEventType.responded, Clock.next_response, True,
    )  # fmt: skip
    assert resp.event_id == "instagram:c1:next_response:1:responded:0"
    # A second follow-up runs the clock again with the next sequence number.
    state, _ = R.on_message(state, message("f2", "t1", follow + timedelta(hours=1)))
    state, [resp2] = R.on_message(
        state, message("r3", "t1", follow + timedelta(hours=2), agency_reply=True)
    )
    assert resp2.event_id == "instagram:c1:next_response:2:responded:0"


def test_replayed_inputs_change_nothing() -> None:
    msgs = [
        message("c1", "t1", MON_9),
        message("r1", "t1", MON_9 + timedelta(hours=1), agency_reply=True),
        message("f1", "t1", MON_9 + timedelta(hours=2)),
    ]
    state = None
    first: list = []
    for m in msgs:
        state, evs = R.on_message(state, m)
        first += evs
    assert state is not None
    snapshot = state.to_bytes()
    for m in msgs:  # at-least-once redelivery of the whole thread
        state, evs = R.on_message(state, m)
        assert evs == []
    assert state is not None and state.to_bytes() == snapshot


def test_state_round_trips_through_bytes() -> None:
    state, _ = R.on_message(None, message("c1", "t1", MON_9))
    assert state is not None
    state, _ = R.on_tick(state, ts(MON_9 + timedelta(hours=4)))
    assert state is not None
    again = ComplaintState.from_bytes(state.to_bytes())
    assert again == state
    assert len(state.to_bytes()) < 1200


def test_non_complaints_and_agency_posts_open_nothing() -> None:
    assert R.on_message(None, message("p1", "t1", MON_9, kind=MessageKind.praise)) == (None, [])
    assert R.on_message(None, message("a1", "t1", MON_9, agency_reply=True)) == (None, [])


def test_unknown_agency_is_rejected() -> None:
    with pytest.raises(Refusal) as info:
        R.on_message(None, message("c1", "t1", MON_9, agency_id="nowhere"))
    assert info.value.reason == "unknown_agency"


def test_emergency_runs_on_weekend_nights() -> None:
    sat_night = datetime(2026, 11, 28, 23, 0, tzinfo=WIB)
    state, [routed] = R.on_message(
        None, message("c1", "t1", sat_night, urgency=Urgency.emergency, text="kebakaran")
    )
    assert isinstance(routed, RouteEvent)
    assert routed.policy == "emergency-24x7"
    assert routed.due[Clock.first_response] == sat_night + timedelta(minutes=15)
    assert state is not None
    state, events = R.on_tick(state, ts(sat_night + timedelta(minutes=16)))
    assert [k[0] for k in kinds(events)] == ["warning", "overdue"]


def test_reroute_mid_clock_restarts_response_clock_for_new_agency() -> None:
    state, _ = R.on_message(None, message("c1", "t1", MON_9))
    state, events = R.on_tick(state, ts(MON_9 + timedelta(hours=3, minutes=5)))
    assert kinds(events) == [("warning", "first_response", None)]
    assert state is not None
    res_before = state.clocks["resolution"]
    at = MON_9 + timedelta(hours=3, minutes=10)
    cmd = command(
        "k1", CommandType.reroute, "instagram:c1", "t1", at, "mks-public-works", "bukan wewenang"
    )
    state, [ev] = R.on_command(state, cmd)
    assert isinstance(ev, RouteEvent)
    assert ev.event_type is RouteEventType.rerouted
    assert (ev.agency_id, ev.previous_agency_id, ev.reason) == (
        "mks-public-works", "sby-public-works", "bukan wewenang",
    )  # fmt: skip
    fr = state.clocks["first_response"]
    assert fr.seq == 2 and fr.started_at == ts(at) and fr.fired == 0
    res = state.clocks["resolution"]
    assert res.started_at == res_before.started_at and res.seq == res_before.seq
    # The new agency (WITA, an hour ahead) is due 4 business hours after the reroute.
    assert ev.due[Clock.first_response] == datetime(2026, 11, 23, 17, 10, tzinfo=WIB) or (
        ev.due[Clock.first_response] > at
    )
    # Old deadline passes: no overdue for the old run; the new run warns later, once.
    state, events = R.on_tick(state, ts(MON_9 + timedelta(hours=5)))
    assert [k for k in kinds(events) if k[1] == "first_response"] == []
    state, events = R.on_tick(state, ts(MON_9 + timedelta(days=1, hours=2)))
    fr_events = [e for e in events if isinstance(e, SlaEvent) and e.clock is Clock.first_response]
    assert [e.event_type for e in fr_events][:2] == [SlaEventType.warning, SlaEventType.overdue]
    assert all(
        e.agency_id == "mks-public-works" and ":first_response:2:" in e.event_id for e in fr_events
    )
    # Replaying the reroute does nothing.
    state, again = R.on_command(state, cmd)
    assert again == []


@pytest.mark.parametrize(
    ("ctype", "agency", "reason"),
    [
        (CommandType.reroute, None, "missing_agency"),
        (CommandType.reroute, "sby-public-works", "same_agency"),
        (CommandType.reroute, "nowhere", "unknown_agency"),
        (CommandType.reopen, None, "invalid_state"),
    ],
)
def test_bad_commands_are_rejected(ctype: CommandType, agency: str | None, reason: str) -> None:
    state, _ = R.on_message(None, message("c1", "t1", MON_9))
    with pytest.raises(Refusal) as info:
        R.on_command(state, command("k1", ctype, "instagram:c1", "t1", MON_9, agency))
    assert info.value.reason == reason


def test_command_for_unknown_complaint_is_rejected() -> None:
    with pytest.raises(Refusal) as info:
        R.on_command(None, command("k1", CommandType.resolve, "instagram:x", "t9", MON_9))
    assert info.value.reason == "unknown_complaint"
    state, _ = R.on_message(None, message("c1", "t1", MON_9))
    with pytest.raises(Refusal):
        R.on_command(state, command("k1", CommandType.resolve, "instagram:other", "t1", MON_9))


def test_resolve_reopen_acknowledge() -> None:
    state, _ = R.on_message(None, message("c1", "t1", MON_9))
    state, [ack] = R.on_command(
        state, command("k0", CommandType.acknowledge, "instagram:c1", "t1", MON_9)
    )
    assert ack.event_type is SlaEventType.acknowledged
    assert state.clocks  # acknowledging stops no clock
    done = MON_9 + timedelta(hours=5)
    state, [res] = R.on_command(
        state, command("k1", CommandType.resolve, "instagram:c1", "t1", done)
    )
    assert isinstance(res, SlaEvent)
    assert (res.event_type, res.clock, res.met) == (SlaEventType.resolved, Clock.resolution, True)
    assert not state.is_open and state.clocks == {}
    with pytest.raises(Refusal, match="already resolved"):
        R.on_command(state, command("k2", CommandType.resolve, "instagram:c1", "t1", done))
    state, evs = R.on_tick(state, ts(done + timedelta(days=10)))
    assert evs == [] and state is not None
    again = done + timedelta(days=1)
    state, [reo] = R.on_command(
        state, command("k3", CommandType.reopen, "instagram:c1", "t1", again)
    )
    assert isinstance(reo, SlaEvent)
    assert reo.event_type is SlaEventType.reopened
    assert reo.event_id == "instagram:c1:reopened:2"
    assert state.is_open and state.clocks["resolution"].seq == 2
    assert reo.due_at is not None and reo.due_at > again


def test_resolved_state_is_purged_after_retention() -> None:
    state, _ = R.on_message(None, message("c1", "t1", MON_9))
    state, _ = R.on_command(state, command("k1", CommandType.resolve, "instagram:c1", "t1", MON_9))
    due = state.next_due()
    assert due is not None
    purged, events = R.on_tick(state, due)
    assert purged is None and events == []


def test_never_resolved_complaint_is_dropped_after_last_escalation_plus_retention() -> None:
    r = dataclasses.replace(R, retain_unresolved_s=7 * 86400.0)
    state, _ = r.on_message(None, message("c1", "t1", MON_9))
    assert state is not None
    last = max(c.escalations[-1][1] for c in state.clocks.values())
    state, events = r.on_tick(state, last)  # catch-up: every stage fires, state kept
    assert state is not None and events
    assert state.next_due(r.retain_unresolved_s) == last + 7 * 86400.0
    kept, events = r.on_tick(state, last + 7 * 86400.0 - 1)
    assert kept is state and events == []
    dropped, events = r.on_tick(state, last + 7 * 86400.0)
    assert dropped is None and events == []


def test_open_complaint_with_a_stage_left_is_never_dropped() -> None:
    r = dataclasses.replace(R, retain_unresolved_s=0.0)
    state, _ = r.on_message(None, message("c1", "t1", MON_9))
    assert state is not None
    first = state.clocks[Clock.first_response.value]
    state, _ = r.on_tick(state, first.escalations[-1][1])  # first response all fired
    assert state is not None and state.clocks[Clock.resolution.value].next_due() is not None
    state, _ = r.on_tick(state, first.escalations[-1][1] + 1)
    assert state is not None  # the resolution clock still has stages to fire


def test_events_built_without_validation_still_validate() -> None:
    """Events are built with model_construct on the hot path; they must survive validation."""
    from common import codecs
    from schemas.routes import RouteEvent as RE

    state, [routed] = R.on_message(None, message("c1", "t1", MON_9))
    assert RE.model_validate_json(codecs.dumps(routed)) == RE.model_validate(routed.model_dump())
    state, events = R.on_tick(state, ts(MON_9 + timedelta(days=3)))
    for e in events:
        assert SlaEvent.model_validate_json(codecs.dumps(e)).event_id == e.event_id


def test_stored_header_matches_the_state() -> None:
    from services.route.clocks import peek_schedule

    state, _ = R.on_message(None, message("c1", "t1", MON_9, agency_id="mks-public-works"), 4)
    assert state is not None
    sched = peek_schedule(state.to_bytes())
    assert (sched.due, sched.partition, sched.is_open, sched.agency_id) == (
        state.next_due(), 4, True, "mks-public-works",
    )  # fmt: skip
    state, _ = R.on_command(state, command("k", CommandType.resolve, "instagram:c1", "t1", MON_9))
    assert peek_schedule(state.to_bytes()).is_open is False
    with pytest.raises(ValueError, match="magic"):
        ComplaintState.from_bytes(b'{"v": 1}')


def test_failed_whatsapp_delivery_is_not_a_response() -> None:
    state, _ = R.on_message(None, message("c1", "t1", MON_9))
    failed = message("r1", "t1", MON_9 + timedelta(minutes=5), agency_reply=True)
    failed = failed.model_copy(
        update={"message": failed.message.model_copy(update={"delivery_status": "failed"})}
    )
    state, events = R.on_message(state, failed)
    assert events == [] and state is not None and "first_response" in state.clocks
    state, [resp] = R.on_message(
        state, message("r2", "t1", MON_9 + timedelta(minutes=9), agency_reply=True)
    )
    assert isinstance(resp, SlaEvent) and resp.response_seconds == 540
