"""Who is told what (pure): the plan for every event type, and refusals that name why."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.refusal import Refusal
from common.registry import Registry
from schemas.sla import SlaEventType
from services.notify.plan import plan
from tests.notify.conftest import registry_yaml, routed, sla, write_registry


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return write_registry(tmp_path / "r.yaml", registry_yaml())


def targets(deliveries: list) -> list[str]:
    return [str(d.channel) for d in deliveries]


DESK = ["email:desk-pu@example.go.id", "webhook:pu-system", "telegram:-100200300",
        "whatsapp:6281100000001"]  # fmt: skip


def test_routed_and_rerouted_go_to_the_desk(registry: Registry) -> None:
    assert targets(plan(routed(1), registry)) == DESK
    rerouted = routed(1, event_type="rerouted", event_id="x:rerouted:1", previous_agency_id="setda")
    out = plan(rerouted, registry)
    assert targets(out) == DESK
    assert out[0].notice.previous_agency_id == "setda" and out[0].notice.role == "desk"


@pytest.mark.parametrize("etype", [SlaEventType.warning, SlaEventType.overdue])
def test_warning_and_overdue_go_to_the_agency(registry: Registry, etype: SlaEventType) -> None:
    out = plan(sla(etype), registry, routed(1))
    assert targets(out) == DESK
    assert out[0].notice.category == "roads"  # context from the route event
    assert plan(sla(etype), registry)[0].notice.category is None  # none known: still sent


def test_escalation_to_head_goes_to_the_head_contact(registry: Registry) -> None:
    out = plan(sla(SlaEventType.escalated, escalation_level=1, escalate_to="head:pu"), registry)
    assert targets(out) == ["email:kadis-pu@example.go.id"]
    assert out[0].notice.role == "head" and out[0].notice.addressee == "pu"


def test_escalation_to_a_regional_agency_uses_its_escalation_contact(registry: Registry) -> None:
    out = plan(sla(SlaEventType.escalated, escalation_level=2, escalate_to="setda"), registry)
    assert targets(out) == ["email:pengaduan-setda@example.go.id"]
    assert out[0].notice.role == "escalation" and out[0].notice.agency_id == "pu"
    # an agency without contacts: its own desk channels
    out = plan(sla(SlaEventType.escalated, escalation_level=3, escalate_to="inspektorat"), registry)
    assert targets(out) == ["email:inspektorat@example.go.id"]


@pytest.mark.parametrize(
    ("escalate_to", "words"),
    [("head:mks-pu", "no contacts.head"), ("inspectorate@35.78", "no agency in the registry"),
     ("head:nope", "'nope' is not in the registry")],
)  # fmt: skip
def test_escalation_nobody_can_receive_is_refused(
    registry: Registry, escalate_to: str, words: str
) -> None:
    with pytest.raises(Refusal) as err:
        plan(sla(SlaEventType.escalated, escalation_level=1, escalate_to=escalate_to), registry)
    assert err.value.reason in ("no_contact", "unknown_agency") and words in err.value.detail


@pytest.mark.parametrize(
    "etype", [SlaEventType.responded, SlaEventType.resolved, SlaEventType.reopened]
)
def test_closing_the_loop_only_where_a_channel_wants_it(
    registry: Registry, etype: SlaEventType
) -> None:
    assert targets(plan(sla(etype), registry)) == ["webhook:pu-system"]


def test_close_loop_off_sends_nothing(tmp_path: Path) -> None:
    data = registry_yaml()
    data["webhooks"][0]["close_loop"] = False
    reg = write_registry(tmp_path / "r.yaml", data)
    assert plan(sla(SlaEventType.resolved), reg) == []
    assert plan(sla(SlaEventType.acknowledged), reg) == []


def test_unknown_agency_is_refused(registry: Registry) -> None:
    with pytest.raises(Refusal) as err:
        plan(routed(1, agency="ghost"), registry)
    assert err.value.reason == "unknown_agency"


def test_the_same_event_plans_the_same_keys(registry: Registry) -> None:
    a = [d.key for d in plan(routed(1), registry)]
    assert a == [d.key for d in plan(routed(1), registry)]
    assert len(set(a)) == len(a)
    assert {d.lane for d in plan(routed(1), registry)} == {
        "email",
        "webhook:pu-system",
        "telegram",
        "whatsapp",
    }


def test_a_withdrawn_complaint_is_told_to_the_agency_and_an_edit_to_nobody(
    registry: Registry,
) -> None:
    """The agency was told of the complaint: it is told the citizen withdrew it (no work
    left). An edit that keeps agency and category only changes the text the desk shows."""
    out = plan(sla(SlaEventType.withdrawn, clock=None, due_at=None), registry, routed(1))
    assert targets(out) == DESK
    assert out[0].notice.event_type == "withdrawn" and out[0].notice.category == "roads"
    assert plan(routed(1, event_type="updated", event_id="x:updated:1"), registry) == []
