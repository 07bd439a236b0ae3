"""The demo's live tail prints one readable line per event, in the agency's time zone."""

from pathlib import Path

from common.registry import load_registry
from services.demo.tail import format_event

REGISTRY = load_registry(Path(__file__).resolve().parents[1] / "deploy/config/registry.yaml")


def test_routed_line_has_agency_category_local_due_time_and_excerpt() -> None:
    line = format_event(
        "aduan.routes.v1",
        {
            "event_type": "routed",
            "agency_id": "mks-public-works",  # a WITA (UTC+8) agency
            "category": "roads",
            "due": {"first_response": "2026-11-23T01:00:00+00:00"},
            "text_excerpt": "Jalan rusak\nparah " + "x" * 100,
        },
        REGISTRY,
    )
    assert line.startswith("ROUTED")
    assert "mks-public-works" in line and "roads" in line
    assert "23 Nov 09:00 WITA" in line
    assert "\n" not in line and line.endswith('…"')


def test_sla_line_shows_when_it_happened_and_the_due_time() -> None:
    line = format_event(
        "aduan.sla.v1",
        {
            "event_type": "overdue",
            "agency_id": "sby-public-works",
            "clock": "first_response",
            "occurred_at": "2026-11-23T02:00:00+00:00",
            "due_at": "2026-11-23T01:59:00+00:00",
            "complaint_id": "instagram:42",
        },
        REGISTRY,
    )
    assert line.startswith("OVERDUE")
    assert "at  23 Nov 09:00 WIB (due 23 Nov 08:59 WIB)" in line
    assert line.endswith("instagram:42")
