"""A citizen's removal withdraws the complaint; an edit updates its text and, re-classified,
reroutes it when its category or agency changed. Both exactly once across replays."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from schemas.classified import MessageKind
from schemas.commands import CommandType
from schemas.messages import Action
from schemas.routes import RouteEvent, RouteEventType
from schemas.sla import Clock, SlaEvent, SlaEventType
from services.route.clocks import ComplaintState, ts

from .factories import command, message, router

WIB = ZoneInfo("Asia/Jakarta")
MON_9 = datetime(2026, 11, 23, 9, 0, tzinfo=WIB)
R = router()


def _open(thread: str = "t1") -> ComplaintState:
    state, _ = R.on_message(None, message("c1", thread, MON_9))
    assert state is not None
    return state


def _all_ticks(state: ComplaintState | None, days: int = 30) -> list[object]:
    events: list[object] = []
    t = MON_9
    while t <= MON_9 + timedelta(days=days):
        state, evs = R.on_tick(state, ts(t))
        events += evs
        t += timedelta(minutes=30)
    return events


def test_removal_withdraws_the_complaint_and_stops_every_clock() -> None:
    state = _open()
    removal = message("c1", "t1", MON_9 + timedelta(hours=1), text=None, action=Action.remove)
    state, events = R.on_message(state, removal)
    assert state is not None and not state.is_open and not state.clocks
    [withdrawn] = events
    assert isinstance(withdrawn, SlaEvent)
    assert withdrawn.event_type is SlaEventType.withdrawn
    assert withdrawn.complaint_id == "instagram:c1" and withdrawn.clock is None
    assert withdrawn.occurred_at == MON_9 + timedelta(hours=1)
    # no warning, overdue or escalation ever follows
    assert _all_ticks(state) == []
    # replayed, the removal does nothing again
    state, again = R.on_message(state, removal)
    assert again == []


def test_removal_of_a_follow_up_or_an_agency_reply_changes_nothing() -> None:
    state = _open()
    state, _ = R.on_message(state, message("c2", "t1", MON_9 + timedelta(minutes=5)))
    state, events = R.on_message(
        state, message("c2", "t1", MON_9 + timedelta(hours=1), text=None, action=Action.remove)
    )
    assert events == [] and state is not None and state.is_open
    reply_removed = message(
        "r1", "t1", MON_9 + timedelta(hours=2), agency_reply=True, text=None, action=Action.remove
    )
    state, events = R.on_message(state, reply_removed)
    assert events == [] and state is not None and state.is_open
    # a removal before any complaint opens nothing and refuses nothing
    assert R.on_message(None, message("x", "t9", MON_9, text=None, action=Action.remove)) == (
        None,
        [],
    )


def test_edit_with_the_same_routing_updates_the_text_once() -> None:
    state = _open()
    text = "jalan berlubang di depan pasar, sudah tiga motor jatuh"
    edit = message("c1", "t1", MON_9 + timedelta(minutes=10), text=text, action=Action.edit)
    state, events = R.on_message(state, edit)
    assert state is not None and state.excerpt == text
    [updated] = events
    assert isinstance(updated, RouteEvent) and updated.event_type is RouteEventType.updated
    assert updated.text_excerpt == text and updated.agency_id == "sby-public-works"
    assert state.reroutes == 0 and Clock.first_response.value in state.clocks
    assert R.on_message(state, edit)[1] == []  # replay: nothing
    second = message("c1", "t1", MON_9 + timedelta(minutes=20), text="lagi", action=Action.edit)
    state, events = R.on_message(state, second)
    assert [e.event_id for e in events] != [updated.event_id] and len(events) == 1


def test_edit_that_changes_the_agency_reroutes_with_the_history_kept() -> None:
    state = _open()
    first_due = state.clocks[Clock.first_response.value].due_at
    res = state.clocks[Clock.resolution.value]
    edit = message(
        "c1",
        "t1",
        MON_9 + timedelta(hours=1),
        text="sampah menumpuk di TPS, bau sekali",
        category="waste",
        agency_id="sby-environment",
        agency_kind="environment",
        action=Action.edit,
    )
    state, events = R.on_message(state, edit)
    [rerouted] = events
    assert isinstance(rerouted, RouteEvent) and rerouted.event_type is RouteEventType.rerouted
    assert (rerouted.agency_id, rerouted.previous_agency_id) == (
        "sby-environment",
        "sby-public-works",
    )
    assert rerouted.reason == "edited" and rerouted.category == "waste"
    assert rerouted.event_id == "instagram:c1:rerouted:1"
    assert state is not None and state.agency_id == "sby-environment" and state.reroutes == 1
    fr = state.clocks[Clock.first_response.value]
    assert fr.seq == 2 and fr.due_at > first_due  # restarted for the new agency
    assert state.clocks[Clock.resolution.value].started_at == res.started_at
    state, again = R.on_message(state, edit)
    assert again == [] and state is not None and state.reroutes == 1  # exactly once


def test_edit_that_changes_only_the_category_reroutes_within_the_agency() -> None:
    state = _open()
    edit = message(
        "c1", "t1", MON_9 + timedelta(hours=1), text="trotoar rusak", category="sidewalks",
        action=Action.edit,
    )  # fmt: skip
    state, events = R.on_message(state, edit)
    [rerouted] = events
    assert isinstance(rerouted, RouteEvent) and rerouted.event_type is RouteEventType.rerouted
    assert rerouted.agency_id == rerouted.previous_agency_id == "sby-public-works"
    assert state is not None and state.category == "sidewalks"


def test_edit_that_no_longer_reads_as_a_complaint_keeps_the_routing() -> None:
    state = _open()
    edit = message(
        "c1", "t1", MON_9 + timedelta(hours=1), text="terima kasih", category="other",
        kind=MessageKind.other, agency_id="sby-communication", agency_kind="communication",
        action=Action.edit,
    )  # fmt: skip
    state, events = R.on_message(state, edit)
    assert [e.event_type for e in events] == [RouteEventType.updated]
    assert state is not None and state.agency_id == "sby-public-works"


def test_an_edit_that_completes_a_placeholder_opens_the_complaint() -> None:
    """An Instagram mention arrives without text (classified as chat: nothing opens); its
    fetched text arrives as an edit and is routed like a new complaint, once."""
    placeholder = message("m1", "t5", MON_9, text=None, kind=MessageKind.other)
    state, events = R.on_message(None, placeholder)
    assert state is None and events == []
    edit = message("m1", "t5", MON_9 + timedelta(minutes=1), action=Action.edit)
    state, events = R.on_message(state, edit)
    assert [e.event_type for e in events] == [RouteEventType.routed]
    assert state is not None and state.complaint_id == "instagram:m1"
    assert R.on_message(state, edit)[1] == []


def test_edits_and_removals_of_a_closed_complaint_change_nothing() -> None:
    state = _open()
    state, _ = R.on_message(state, message("c1", "t1", MON_9, text=None, action=Action.remove))
    edit = message("c1", "t1", MON_9 + timedelta(hours=2), text="baru", action=Action.edit)
    state, events = R.on_message(state, edit)
    assert events == [] and state is not None and not state.is_open
    # a resolved one: the removal does not turn it into a withdrawal
    state = _open("t2")
    state, _ = R.on_command(state, command("k1", CommandType.resolve, "instagram:c1", "t2", MON_9))
    state, events = R.on_message(state, message("c1", "t2", MON_9, text=None, action=Action.remove))
    assert events == []


def test_state_with_withdrawal_round_trips() -> None:
    state = _open()
    state, _ = R.on_message(state, message("c1", "t1", MON_9, text=None, action=Action.remove))
    assert state is not None
    again = ComplaintState.from_bytes(state.to_bytes())
    assert again == state and not again.is_open
