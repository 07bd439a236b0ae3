"""The OpenAPI document: valid 3.1, generated from the code, committed copy in sync, and
every API route documented (and nothing documented that is not served)."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp import web
from openapi_spec_validator import validate

from services.desk.api import ENDPOINTS, PREFIX, add_api_routes
from services.desk.openapi import document, render

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "desk-openapi.json"


def test_the_document_is_valid_openapi_3_1() -> None:
    doc = document()
    assert doc["openapi"] == "3.1.0"
    validate(doc)


def test_the_committed_copy_matches_the_code() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == render(), (
        "run: python -m services.desk.openapi > docs/desk-openapi.json"
    )


def test_every_served_api_route_is_documented_and_nothing_more() -> None:
    app = web.Application()
    add_api_routes(app)
    served = {
        (r.method.lower(), r.resource.canonical)
        for r in app.router.routes()
        if r.resource is not None and r.resource.canonical.startswith(PREFIX)
    }
    documented = {(m, p) for p, ops in document()["paths"].items() for m in ops}
    assert served == documented


@pytest.mark.parametrize("endpoint", [e for e in ENDPOINTS if e.body is not None],
                         ids=lambda e: e.operation_id)  # fmt: skip
def test_action_bodies_refuse_unknown_fields_in_the_document_too(endpoint: object) -> None:
    schema = document()["components"]["schemas"][endpoint.body.__name__]  # type: ignore[attr-defined]
    assert schema.get("additionalProperties") is False


def test_errors_and_security_are_declared() -> None:
    paths = document()["paths"]
    detail = paths[f"{PREFIX}/complaints/{{complaint_id}}"]["get"]
    assert {"200", "401", "404"} <= set(detail["responses"]) and detail["security"]
    resolve = paths[f"{PREFIX}/complaints/{{complaint_id}}/resolve"]["post"]
    assert "202" in resolve["responses"] and "503" in resolve["responses"]
    assert any(p["name"] == "Idempotency-Key" for p in resolve["parameters"])
    assert paths[f"{PREFIX}/openapi.json"]["get"]["security"] == []
