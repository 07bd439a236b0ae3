"""SLA config: selection order, calendars per agency, precise errors for bad files."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import pytest
import yaml

from schemas.classified import MessageKind, Urgency
from schemas.sla import Clock
from services.route.clocks import ComplaintState
from services.route.policy import PolicyError, load_sla_config, parse_duration, parse_sla_config

from .factories import CONFIG, REGISTRY, ROOT, message, router

WITA = ZoneInfo("Asia/Makassar")


def test_durations() -> None:
    assert parse_duration("37h30m") == timedelta(hours=37, minutes=30)
    assert parse_duration("15m") == timedelta(minutes=15)
    assert parse_duration(90) == timedelta(seconds=90)
    for bad in ("", "4d", "h", "4 hours"):
        with pytest.raises(ValueError, match="bad duration"):
            parse_duration(bad)


def test_first_match_wins_and_default_is_last() -> None:
    assert CONFIG.select("roads", "emergency", "sby-public-works", "public_works").id == (
        "emergency-24x7"
    )
    assert CONFIG.select("fire", "normal", "sby-fire-rescue", "fire_rescue").id == "fire-rescue"
    assert CONFIG.select("roads", "high", "sby-public-works", "public_works").id == "high"
    assert CONFIG.select("roads", "normal", "sby-public-works", "public_works").id == "default"


def test_emergency_policy_runs_around_the_clock() -> None:
    agency = REGISTRY.agency("sby-public-works")
    assert agency is not None
    policy = CONFIG.select("roads", "emergency", agency.id, agency.kind)
    sunday_night = datetime(2026, 11, 22, 16, 0, tzinfo=UTC)  # 23:00 WIB, Sunday
    plan = CONFIG.plan(policy, agency, Clock.first_response, sunday_night)
    assert plan is not None
    assert plan.due_at == sunday_night + timedelta(minutes=15)
    assert plan.warning_at == sunday_night + timedelta(minutes=7, seconds=30)  # share 0.5


def test_wita_agency_plan_uses_makassar_office_hours() -> None:
    agency = REGISTRY.agency("mks-public-works")
    assert agency is not None
    policy = CONFIG.select("roads", "normal", agency.id, agency.kind)
    start = datetime(2026, 11, 23, 9, 0, tzinfo=WITA)  # Monday
    plan = CONFIG.plan(policy, agency, Clock.first_response, start)
    assert plan is not None
    assert plan.due_at == datetime(2026, 11, 23, 14, 0, tzinfo=WITA)  # 3h + lunch + 1h
    assert [lvl for lvl, _, _ in plan.escalations] == [1, 2, 3]
    assert plan.escalations[0][1] == datetime(2026, 11, 23, 16, 0, tzinfo=WITA)  # 6h


def test_agency_calendar_override() -> None:
    agency = REGISTRY.agency("sby-licensing")
    assert agency is not None
    policy = CONFIG.select("permits", "normal", agency.id, agency.kind)
    assert CONFIG.calendar_id(policy, agency) == "service_desk"


def _raw() -> dict:
    return yaml.safe_load((ROOT / "deploy/config/sla.yaml").read_text())


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda r: r["policies"].pop(), "must have no 'match'"),
        (lambda r: r["policies"][0]["targets"].update(first_response="soon"), "bad duration"),
        (lambda r: r["policies"][0].update(calendar="nope"), "unknown calendar 'nope'"),
        (lambda r: r["calendars"]["office"]["hours"].update(sun=["25:00-26:00"]), "block"),
        (lambda r: r["policies"][1].update(colour="red"), "policies.1.colour"),
        (lambda r: r["escalation"][1].update(multiple=1.2), "rising multiples"),
        (lambda r: r["policies"][0]["targets"].update(bogus_clock="1h"), "policies.0.targets"),
    ],
)
def test_bad_config_errors_name_the_entry(mutate, expected: str) -> None:
    raw = _raw()
    mutate(raw)
    with pytest.raises(PolicyError, match=expected) as info:
        parse_sla_config(raw, "sla.yaml")
    assert str(info.value).startswith("sla.yaml: ")


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read"):
        load_sla_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("policies: [")
    with pytest.raises(PolicyError, match="not valid YAML"):
        load_sla_config(bad)


# --- message kind (issue 15): questions get a first response, noise gets no clock ----------
MON_9 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # Monday 09:00 WIB


def test_policies_match_on_the_message_kind() -> None:
    args = ("roads", "low", "sby-public-works", "public_works")
    assert CONFIG.select(*args, "question").id == "question"
    assert CONFIG.select(*args, "aspiration").id == "aspiration"
    for noise in ("praise", "spam", "political", "other"):
        assert CONFIG.select(*args, noise).targets == {}, noise
    assert CONFIG.select("roads", "normal", "sby-public-works", "public_works").id == "default"
    assert CONFIG.select("roads", "normal", "sby-public-works", "public_works", "complaint").id == (
        "default"
    )


def test_shipped_question_policy_has_a_first_response_and_no_resolution_clock() -> None:
    policy = CONFIG.select("roads", "low", "sby-public-works", "public_works", "question")
    assert set(policy.targets) == {Clock.first_response}


def test_unknown_kind_in_a_match_is_refused() -> None:
    raw = _raw()
    raw["policies"][0]["match"] = {"kind": "rumour"}
    with pytest.raises(PolicyError, match="kind"):
        parse_sla_config(raw, "sla.yaml")


def test_a_question_gets_a_first_response_clock_and_is_done_when_answered() -> None:
    r = router()
    q = message("q1", "t1", MON_9, kind=MessageKind.question, urgency=Urgency.low)
    state, events = r.on_message(None, q)
    assert state is not None and state.kind == "question"
    assert set(state.clocks) == {"first_response"}
    (routed,) = events
    assert routed.kind == "question" and routed.policy == "question"
    assert set(routed.due) == {Clock.first_response}
    reply = message("r1", "t1", MON_9 + timedelta(hours=1), agency_reply=True)
    state, events = r.on_message(state, reply)
    assert [e.event_type.value for e in events] == ["responded"]
    assert not state.is_open  # nothing left to resolve
    # a complaint on the same thread afterwards opens a new tracked complaint
    later = message("c2", "t1", MON_9 + timedelta(hours=2))
    state2, events2 = r.on_message(state, later)
    assert [e.event_type.value for e in events2] == ["routed"]
    assert state2 is not None and state2.complaint_id == "instagram:c2"
    assert state2.kind == "complaint" and "resolution" in state2.clocks


@pytest.mark.parametrize("kind", ["praise", "spam", "political", "other"])
def test_praise_spam_and_noise_start_no_clock(kind: str) -> None:
    msg = message("p1", "t9", MON_9, kind=MessageKind(kind), urgency=Urgency.low)
    state, events = router().on_message(None, msg)
    assert state is None and events == []


def test_stored_state_from_before_kinds_reads_as_a_complaint() -> None:
    """R2 stores the scalars by position with their count: a record written before ``kind``
    and ``ack_digests`` (15 scalars) decodes with their defaults."""
    state, _ = router().on_message(None, message("c1", "t1", MON_9))
    assert state is not None
    stored = state.to_bytes()
    start = stored.index(b"[17,")
    body = orjson.loads(stored[start:])
    older = [15, *body[1:16], *body[18:]]  # without kind and ack_digests
    decoded = ComplaintState.from_bytes(stored[:start] + orjson.dumps(older))
    assert decoded.kind == "complaint" and decoded.ack_digests == []
    assert decoded == state
