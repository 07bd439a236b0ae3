"""The desk's JSON API under ``/api/v1``.

Every endpoint is declared once in ``ENDPOINTS`` (method, path, models, answers); the aiohttp
routes and the OpenAPI document (``openapi.py``) are both built from that table.

Answers: 401 without a valid ``Authorization: Bearer <token>``; 404 for a complaint the
caller may not see (the same answer as for one that does not exist); 400 for a malformed
query, body or cursor, naming the field; 415 for a body that is not JSON; 409/422 for an
action the complaint's state or the registry refuses; 503 when Kafka did not acknowledge."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web
from pydantic import BaseModel, ValidationError

from common import metrics
from services.desk.actions import BODIES, Actions, Outcome, not_found
from services.desk.auth import Principal, bearer, principal_for_token
from services.desk.models import (
    ActionAccepted,
    ComplaintDetail,
    ComplaintList,
    ComplaintQuery,
    Me,
    Stats,
    StatsQuery,
)
from services.desk.queries import BadCursor, complaint_detail, list_complaints, stats

PREFIX = "/api/v1"
COMPLAINT_ID_MAX = 300

Handler = Callable[["DeskContext", web.Request, Principal | None], Awaitable[web.StreamResponse]]


@dataclass
class DeskContext:
    """What the handlers share: the database pool, the actions, the registry (in actions),
    and the clock (injectable for tests)."""

    pool: Any
    actions: Actions
    page_size: int = 50
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    operation_id: str
    summary: str
    handler: Handler
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    errors: tuple[int, ...] = (400, 401)
    auth: bool = True
    description: str = ""


CONTEXT: web.AppKey[DeskContext] = web.AppKey("desk", DeskContext)


class Problem(Exception):
    """An error answer: status, machine reason, human detail."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail = status, error, detail


def problem(exc: Problem) -> web.Response:
    headers = {"WWW-Authenticate": 'Bearer realm="aduan-desk"'} if exc.status == 401 else None
    return json_response({"error": exc.error, "detail": exc.detail}, exc.status, headers)


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    data = body.model_dump(mode="json") if isinstance(body, BaseModel) else body
    return web.Response(
        body=orjson.dumps(data), status=status, content_type="application/json", headers=headers
    )


def validation_detail(exc: ValidationError, what: str) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "(root)"
        parts.append(f"{where}: {err['msg']}")
    return f"{what}: " + "; ".join(parts)


def parse_query(model: type[BaseModel], request: web.Request) -> Any:
    for name in set(request.query):
        if len(request.query.getall(name)) > 1:
            raise Problem(400, "invalid_query", f"query: {name} given more than once")
    try:
        return model.model_validate(dict(request.query))
    except ValidationError as exc:
        raise Problem(400, "invalid_query", validation_detail(exc, "query")) from None


async def parse_body(model: type[BaseModel], request: web.Request) -> Any:
    raw = await request.read()
    if not raw.strip():
        data: Any = {}
    else:
        if request.content_type != "application/json":
            raise Problem(415, "unsupported_media_type", "send the body as application/json")
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise Problem(400, "invalid_json", f"body: not JSON at char {exc.pos}") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise Problem(400, "invalid_body", validation_detail(exc, "body")) from None


def complaint_id(request: web.Request) -> str:
    cid = request.match_info["complaint_id"]
    if not 1 <= len(cid) <= COMPLAINT_ID_MAX:
        raise Problem(404, "not_found", "no such complaint")
    return cid


def outcome_response(outcome: Outcome) -> web.Response:
    headers = {"Idempotency-Replayed": "true"} if outcome.replayed else None
    return json_response(outcome.body, outcome.status, headers)


# --- handlers ------------------------------------------------------------------------------
async def get_me(ctx: DeskContext, request: web.Request, who: Principal | None) -> web.Response:
    assert who is not None
    return json_response(Me(scope=who.scope, agency_id=who.agency_id, label=who.label))  # type: ignore[arg-type]


async def get_complaints(
    ctx: DeskContext, request: web.Request, who: Principal | None
) -> web.Response:
    assert who is not None
    query: ComplaintQuery = parse_query(ComplaintQuery, request)
    if "limit" not in request.query:
        query = query.model_copy(update={"limit": ctx.page_size})
    try:
        result = await list_complaints(ctx.pool, who, query, ctx.clock())
    except BadCursor as exc:
        raise Problem(400, "invalid_cursor", str(exc)) from None
    return json_response(result)


async def get_complaint(
    ctx: DeskContext, request: web.Request, who: Principal | None
) -> web.Response:
    assert who is not None
    detail = await complaint_detail(ctx.pool, who, complaint_id(request), ctx.clock())
    if detail is None:
        return outcome_response(not_found())
    return json_response(detail)


def action_handler(action: str) -> Handler:
    async def handler(
        ctx: DeskContext, request: web.Request, who: Principal | None
    ) -> web.Response:
        assert who is not None
        cid = complaint_id(request)
        body = await parse_body(BODIES[action], request)
        key = request.headers.get("Idempotency-Key")
        outcome = await ctx.actions.perform(who, cid, action, body, key, ctx.clock())
        return outcome_response(outcome)

    return handler


async def get_stats(ctx: DeskContext, request: web.Request, who: Principal | None) -> web.Response:
    assert who is not None
    query: StatsQuery = parse_query(StatsQuery, request)
    if not who.is_admin and query.agency not in (None, who.agency_id):
        raise Problem(403, "forbidden", "an agency token sees its own agency's figures only")
    result = await stats(ctx.pool, who, query, ctx.clock())
    if result.period_end <= result.period_start:
        raise Problem(400, "invalid_query", "query: 'to' must be after 'from'")
    return json_response(result)


async def get_openapi(
    ctx: DeskContext, request: web.Request, who: Principal | None
) -> web.Response:
    from services.desk.openapi import document

    return json_response(document())


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("GET", "/me", "getMe", "Who the token belongs to", get_me, response=Me),
    Endpoint(
        "GET", "/complaints", "listComplaints", "The caller's complaints, nearest due first",
        get_complaints, query=ComplaintQuery, response=ComplaintList,
        description="An agency sees the complaints routed, rerouted or escalated to it; an "
        "admin token sees all. Keyset-paginated: pass next_cursor as cursor.",
    ),
    Endpoint(
        "GET", "/complaints/{complaint_id}", "getComplaint",
        "One complaint with its clocks and whole history", get_complaint,
        response=ComplaintDetail, errors=(401, 404),
    ),
    *(
        Endpoint(
            "POST", f"/complaints/{{complaint_id}}/{action}", f"{action}Complaint",
            f"{action.capitalize()} the complaint (a command to route)", action_handler(action),
            body=BODIES[action], response=ActionAccepted, status=202,
            errors=(400, 401, 404, 409, 415, 422, 503),
            description="Answered 202 once Kafka acknowledged the command. Send an "
            "Idempotency-Key header to make a retry a no-op.",
        )
        for action in ("acknowledge", "resolve", "reopen", "reroute")
    ),
    Endpoint(
        "GET", "/stats", "getStats", "Figures per agency and period", get_stats,
        query=StatsQuery, response=Stats, errors=(400, 401, 403),
    ),
    Endpoint(
        "GET", "/openapi.json", "getOpenApi", "This API's OpenAPI 3.1 document", get_openapi,
        auth=False, errors=(),
    ),
)  # fmt: skip


def wrap(endpoint: Endpoint) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def view(request: web.Request) -> web.StreamResponse:
        ctx = request.app[CONTEXT]
        try:
            who = None
            if endpoint.auth:
                who = await principal_for_token(
                    ctx.pool, bearer(request.headers.get("Authorization"))
                )
                if who is None:
                    raise Problem(401, "unauthorized", "send Authorization: Bearer <desk token>")
            return await endpoint.handler(ctx, request, who)
        except Problem as exc:
            return problem(exc)

    return view


@web.middleware
async def observe(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Count every desk request by route template (never the concrete path: bounded labels)."""
    started = time.perf_counter()
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        metrics.DESK_API_REQUESTS.labels(route, request.method, str(status)).inc()
        metrics.DESK_API_LATENCY.labels(route).observe(time.perf_counter() - started)


def add_api_routes(app: web.Application) -> None:
    for e in ENDPOINTS:
        app.router.add_route(e.method, PREFIX + e.path, wrap(e), name=e.operation_id)
