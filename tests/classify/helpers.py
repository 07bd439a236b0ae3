"""Builders shared by the classify tests: a small registry and messages without a broker."""

from __future__ import annotations

from datetime import UTC, datetime

from common.registry import Registry
from schemas.messages import EventKind, Location, Message, Platform

SURABAYA = "35.78"


def registry() -> Registry:
    """A two-level deployment: city agencies plus one kecamatan office (Wonokromo, 35.78.04)."""
    agencies = [
        ("sby-public-works", "public_works", SURABAYA),
        ("sby-environment", "environment", SURABAYA),
        ("sby-transportation", "transportation", SURABAYA),
        ("sby-civil-registry", "civil_registry", SURABAYA),
        ("sby-secretariat", "secretariat", SURABAYA),
        ("sby-subdistrict", "subdistrict", SURABAYA),
        ("kec-wonokromo", "subdistrict", "35.78.04"),
    ]
    return Registry.model_validate(
        {
            "agencies": [{"id": i, "name": i, "kind": k, "region_code": r} for i, k, r in agencies],
            "accounts": [
                {
                    "platform": "instagram",
                    "platform_id": "1784",
                    "agency_id": "sby-secretariat",
                    "app_secret_env": "META_APP_SECRET",
                }
            ],
        }
    )


def message(
    text: str | None, *, location: Location | None = None, region: str = SURABAYA
) -> Message:
    now = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)
    return Message(
        message_id="instagram:c1",
        platform=Platform.instagram,
        kind=EventKind.comment,
        platform_message_id="c1",
        thread_key="instagram:p1",
        account_id="1784",
        agency_id="sby-secretariat",
        region_code=region,
        author_pseudonym="u_0123456789abcdef01234567",
        text=text,
        platform_time=now,
        received_at=now,
        location=location,
        delivery_id="d1",
    )
