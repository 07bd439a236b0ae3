"""The desk API's OpenAPI 3.1 document, generated from ``api.ENDPOINTS`` and the pydantic
models; ``python -m services.desk.openapi > docs/desk-openapi.json`` writes the committed
copy, and a test fails when it drifts."""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from services.desk.api import ENDPOINTS, PREFIX, Endpoint
from services.desk.models import Error

REF = "#/components/schemas/{model}"
ERRORS = {
    400: "Malformed query, body, cursor or Idempotency-Key (the detail names the field)",
    401: "No token, or not a valid one",
    403: "Outside the token's scope",
    404: "No such complaint, or not one the token may see",
    409: "The complaint's state does not allow it, or the same Idempotency-Key is in flight",
    415: "The body is not application/json",
    422: "Unknown or same target agency, or an Idempotency-Key reused for another request",
    503: "Kafka did not acknowledge the command in time; nothing was sent",
}


def _models() -> list[type[BaseModel]]:
    seen: dict[str, type[BaseModel]] = {"Error": Error}
    for e in ENDPOINTS:
        for m in (e.body, e.response):
            if m is not None:
                seen[m.__name__] = m
    return list(seen.values())


def _parameters(e: Endpoint, schemas: dict[str, Any]) -> list[dict[str, Any]]:
    params = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"{(\w+)}", e.path)
    ]
    if e.query is not None:
        schema = e.query.model_json_schema(ref_template=REF, by_alias=True)
        schemas.update(schema.pop("$defs", {}))
        required = set(schema.get("required", []))
        for name, prop in schema["properties"].items():
            param: dict[str, Any] = {"name": name, "in": "query", "required": name in required}
            if "description" in prop:
                param["description"] = prop.pop("description")
            prop.pop("title", None)
            param["schema"] = prop
            params.append(param)
    return params


def _operation(e: Endpoint, schemas: dict[str, Any]) -> dict[str, Any]:
    op: dict[str, Any] = {"operationId": e.operation_id, "summary": e.summary}
    if e.description:
        op["description"] = e.description
    params = _parameters(e, schemas)
    if params:
        op["parameters"] = params
    if e.body is not None:
        op["requestBody"] = {
            "required": False,
            "content": {
                "application/json": {"schema": {"$ref": REF.format(model=e.body.__name__)}}
            },
        }
        op["parameters"] = [
            *op.get("parameters", []),
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": "a retry with the same key and request is answered as the first",
                "schema": {"type": "string", "minLength": 1, "maxLength": 200},
            },
        ]
    ok: dict[str, Any] = {"description": "OK" if e.status == 200 else "Accepted"}
    if e.response is not None:
        ok["content"] = {
            "application/json": {"schema": {"$ref": REF.format(model=e.response.__name__)}}
        }
    responses: dict[str, Any] = {str(e.status): ok}
    for code in e.errors:
        responses[str(code)] = {
            "description": ERRORS[code],
            "content": {"application/json": {"schema": {"$ref": REF.format(model="Error")}}},
        }
    op["responses"] = responses
    op["security"] = [{"bearer": []}] if e.auth else []
    return op


def document() -> dict[str, Any]:
    _, top = models_json_schema([(m, "serialization") for m in _models()], ref_template=REF)
    schemas: dict[str, Any] = dict(top.get("$defs", {}))
    # Request bodies are validated, not serialised: their schema is the validation one.
    for e in ENDPOINTS:
        if e.body is not None:
            body = e.body.model_json_schema(ref_template=REF)
            schemas.update(body.pop("$defs", {}))
            schemas[e.body.__name__] = body
    paths: dict[str, Any] = {}
    for e in ENDPOINTS:
        paths.setdefault(PREFIX + e.path, {})[e.method.lower()] = _operation(e, schemas)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "aduan desk API",
            "version": "1.0.0",
            "description": "The complaint desk of the agencies: queue, history, actions and "
            "figures. See docs/desk.md.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "a desk token (python -m services.desk token issue)",
                }
            },
        },
    }


def render() -> str:
    return json.dumps(document(), indent=2, ensure_ascii=False, sort_keys=False) + "\n"


if __name__ == "__main__":
    print(render(), end="")
