"""The desk's pure core: parsing records into events and folding them into complaints,
driven by events the real route state machine emitted (tests/desk/factories.py)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import orjson
import pytest

from common.refusal import Refusal
from schemas.commands import CommandType
from services.desk.events import Source, clock_seq, parse, platform_of
from services.desk.projection import escalation_agency, fold, fold_all
from tests.desk.factories import MON_9, Timeline, full_story


def test_the_full_story_ends_with_the_new_agency_open_and_everyone_involved_able_to_see_it() -> (
    None
):
    t = Timeline()
    cid = full_story(t)
    view = fold_all(t.events())
    state = t.states["instagram:t1"]
    assert view is not None and state is not None
    assert view.complaint_id == cid and view.status == "open" and view.is_open
    assert view.agency_id == state.agency_id == "sby-environment"
    assert view.reroutes == 1 and view.escalation_level == 3
    assert view.access == {
        "sby-environment": "assigned",
        "sby-public-works": "former",  # rerouted away: read only
        "sby-secretariat": "escalation",  # escalation level 2
        "sby-inspectorate": "escalation",  # level 3
    }
    # The running clocks and due times are route's own.
    assert {k: c.due_at.timestamp() for k, c in view.clocks.items()} == {
        k: c.due_at for k, c in state.clocks.items()
    }
    assert view.first_response_met is True and view.acknowledged_at is not None
    assert view.open_for("sby-environment") and view.open_for("sby-secretariat")
    assert not view.open_for("sby-public-works")


def test_resolution_closes_and_stops_every_clock() -> None:
    t = Timeline()
    t.complaint("instagram:t2")
    t.command("instagram:t2", CommandType.resolve, MON_9 + timedelta(hours=1))
    view = fold_all(t.events())
    assert view is not None
    assert view.status == "resolved" and not view.clocks and view.due_sort == view.resolved_at
    assert not view.open_for(view.agency_id)


def test_commands_alone_change_nothing_route_is_the_authority() -> None:
    t = Timeline()
    t.complaint("instagram:t3")
    routed = fold_all(t.events())
    cmd = t.command("instagram:t3", CommandType.resolve, MON_9 + timedelta(hours=1))
    command_event = next(e for e in t.events() if e.event_id == f"command:{cmd.command_id}")
    assert fold(dataclasses.replace(routed), command_event) == routed  # type: ignore[type-var]


def test_a_deadline_event_of_a_run_before_the_reroute_does_not_touch_the_new_run() -> None:
    t = Timeline()
    t.complaint("instagram:t4")
    t.tick("instagram:t4", MON_9 + timedelta(hours=4))  # warning of first_response run 1
    t.command("instagram:t4", CommandType.reroute, MON_9 + timedelta(hours=5), "sby-health", "x")
    events = t.events()
    warning = next(e for e in events if e.event_type == "warning")
    # The old run's warning arrives last (say the routes topic was read ahead of sla).
    late = dataclasses.replace(warning, ts_ms=events[-1].ts_ms + 1)
    view = fold_all([e for e in events if e is not warning] + [late])
    assert view is not None
    assert view.clocks["first_response"].seq == 2
    assert view.clocks["first_response"].warned is False


def test_an_unknown_event_type_is_kept_as_history_and_changes_nothing() -> None:
    t = Timeline()
    cid = t.complaint("instagram:t5")
    view = fold_all(t.events())
    record = {
        "event_id": f"{cid}:paused:1",
        "event_type": "paused",
        "complaint_id": cid,
        "thread_key": "instagram:t5",
        "agency_id": "sby-public-works",
        "occurred_at": "2026-11-23T03:00:00+00:00",
        "something_new": {"nested": True},
    }
    event = parse(Source.sla, orjson.dumps(record), 1, 0, 99)
    assert not event.known and event.event_type == "paused"
    assert event.occurred_at.isoformat() == "2026-11-23T03:00:00+00:00"
    assert fold(dataclasses.replace(view), event) == view  # type: ignore[type-var]


def test_a_withdrawn_complaint_is_closed_with_no_clock_and_an_edit_updates_its_text() -> None:
    t = Timeline()
    cid = t.complaint("instagram:t9")
    view = fold_all(t.events())
    assert view is not None and view.clocks
    route = next(e for e in t.events() if e.event_type == "routed")
    updated = {**route.payload, "event_id": f"{cid}:updated:1", "event_type": "updated",
               "text_excerpt": "Jalan berlubang, sudah tiga motor jatuh"}  # fmt: skip
    event = parse(Source.routes, orjson.dumps(updated), 0, 0, 98)
    assert event.known
    view = fold(view, event)
    assert view is not None and view.excerpt == "Jalan berlubang, sudah tiga motor jatuh"
    assert view.reroutes == 0 and view.status == "open" and view.clocks
    withdrawn = {
        "event_id": f"{cid}:withdrawn:1",
        "event_type": "withdrawn",
        "complaint_id": cid,
        "thread_key": "instagram:t9",
        "agency_id": view.agency_id,
        "occurred_at": "2026-11-23T03:00:00+00:00",
    }
    event = parse(Source.sla, orjson.dumps(withdrawn), 1, 0, 99)
    assert event.known
    view = fold(view, event)
    assert view is not None
    assert view.status == "withdrawn" and not view.is_open and not view.clocks
    assert (
        view.resolved_at is not None and view.resolved_at.isoformat() == "2026-11-23T03:00:00+00:00"
    )
    assert not view.open_for(view.agency_id)


def test_a_newer_route_with_extra_fields_and_the_message_kind_is_still_understood() -> None:
    t = Timeline()
    t.complaint("instagram:t6")
    record = orjson.loads(t.records[0].value)
    record.update(kind="question", platform="instagram", added_later="x")
    event = parse(Source.routes, orjson.dumps(record), 5, 0, 0)
    view = fold(None, event)
    assert event.known and view is not None and view.kind == "question"


def test_deadline_events_without_a_routing_still_show_the_complaint_to_its_agency() -> None:
    t = Timeline()
    t.complaint("instagram:t7")
    t.tick("instagram:t7", MON_9 + timedelta(hours=6))
    view = fold_all([e for e in t.events() if e.source is Source.sla])
    assert view is not None
    assert view.agency_id == "sby-public-works" and view.access == {"sby-public-works": "assigned"}
    assert view.platform == "instagram" and view.clocks["first_response"].overdue


@pytest.mark.parametrize(
    ("value", "reason", "detail"),
    [
        (b"{not json", "invalid_json", "not JSON"),
        (b"[1, 2]", "invalid_event", "not a JSON object"),
        (b'{"event_type": "routed"}', "invalid_event", "event_id"),
        (
            b'{"event_id": "a", "event_type": "routed", "complaint_id": "x:1", "thread_key": "t"}',
            "invalid_event",
            "agency_id",
        ),
        (b"", "invalid_event", "empty"),
    ],
)
def test_records_the_desk_cannot_keep_are_refused_with_the_field(
    value: bytes, reason: str, detail: str
) -> None:
    with pytest.raises(Refusal) as caught:
        parse(Source.routes, value, 1, 0, 0)
    assert caught.value.reason == reason and detail in caught.value.detail


def test_a_command_of_an_unknown_type_is_history_with_its_actor() -> None:
    value = orjson.dumps(
        {"command_id": "k1", "type": "withdraw", "complaint_id": "x:1", "thread_key": "t",
         "actor": "operator:2", "issued_at": "2026-11-23T03:00:00+00:00"}
    )  # fmt: skip
    event = parse(Source.commands, value, 1, 0, 0)
    assert event.event_id == "command:k1" and not event.known and event.actor == "operator:2"


def test_ids_and_targets() -> None:
    assert clock_seq("ig:1:first_response:3:overdue:0", "ig:1", "first_response") == 3
    assert clock_seq("ig:1:reopened:2", "ig:1", "resolution") is None
    assert platform_of("whatsapp:wamid.x") == "whatsapp" and platform_of("zz:1") == "unknown"
    assert escalation_agency("head:sby-health") == "sby-health"
    assert escalation_agency("sby-inspectorate") == "sby-inspectorate"
    assert escalation_agency("inspectorate@35.78") is None and escalation_agency(None) is None
