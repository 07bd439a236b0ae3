"""The routed event is a deterministic function of the classified complaint."""

from datetime import UTC, datetime
from pathlib import Path

from common.registry import load_registry
from schemas.classified import ClassifiedMessage, MessageKind, RegionSource, Urgency
from schemas.messages import EventKind, Message, Platform
from services.route.app import route_event

REGISTRY = load_registry(Path(__file__).resolve().parents[2] / "deploy/config/registry.yaml")


def _complaint() -> ClassifiedMessage:
    t = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)
    m = Message(
        message_id="instagram:1",
        platform=Platform.instagram,
        kind=EventKind.comment,
        platform_message_id="1",
        thread_key="instagram:m:1",
        account_id="17841400000000001",
        agency_id="sby-communication",
        region_code="35.78",
        author_pseudonym="u_x",
        text="Jalan rusak",
        platform_time=t,
        received_at=t,
        delivery_id="d1",
    )
    return ClassifiedMessage(
        message=m,
        kind=MessageKind.complaint,
        category="roads",
        agency_kind="public_works",
        agency_id="sby-public-works",
        region_code="35.78",
        region_source=RegionSource.account,
        urgency=Urgency.normal,
        confidence=0.9,
        classifier_version="t",
    )


def test_routed_event_is_deterministic_and_carries_channels() -> None:
    a, b = route_event(_complaint(), REGISTRY), route_event(_complaint(), REGISTRY)
    assert a == b
    assert a.event_id == "instagram:1:routed"
    assert a.channels == ["email:sby-public-works@example.go.id"]
    assert a.due and all(d > a.routed_at for d in a.due.values())
