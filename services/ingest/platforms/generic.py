"""The generic signed webhook: the government's own web form, mobile app or an SP4N-LAPOR!
bridge (SP4N-LAPOR! is the national public-complaint system).

Body (``docs/ingest.md`` has the full schema; ``GenericDelivery.model_json_schema()`` is the
machine-readable one)::

    {"account_id": "web-sby",
     "reports": [{"id": "F-2026-000123", "created_at": "2026-11-22T08:15:00+07:00",
                  "author_id": "citizen-881", "text": "...", "thread_id": null,
                  "in_reply_to": null, "is_agency_reply": false,
                  "location": {"latitude": -7.25, "longitude": 112.75},
                  "attachments": [{"type": "image", "ref": "https://..."}]}]}

Signature: ``X-Aduan-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + body)>``
with ``X-Aduan-Timestamp: <unix seconds>``; checked by ``signatures.verify_generic``.
Thread key: ``generic:<account>:<thread_id or report id>``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from schemas.messages import Attachment, EventKind, Location, Message, Platform
from services.ingest.platforms.base import (
    DeliveryContext,
    Draft,
    EntryError,
    MalformedDelivery,
    ParseResult,
    build,
    load_json_object,
    lookup_account,
    run_items,
)

P = Platform.generic
_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:@/-]{0,127}$"


class GenericReport(BaseModel):
    """One citizen report or agency answer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=_ID, description="unique per account; the dedup key")
    created_at: AwareDatetime = Field(description="RFC 3339 with offset")
    author_id: str = Field(min_length=1, max_length=256, description="pseudonymised on ingest")
    text: str = Field(max_length=20000)
    thread_id: str | None = Field(default=None, pattern=_ID, description="conversation id")
    in_reply_to: str | None = Field(default=None, pattern=_ID, description="report id answered")
    is_agency_reply: bool = False
    location: Location | None = None
    attachments: list[Attachment] = Field(default_factory=list, max_length=50)


class GenericDelivery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    account_id: str = Field(min_length=1, max_length=128)
    reports: list[Any] = Field(min_length=1, max_length=1000)  # each validated alone


def parse(body: bytes, ctx: DeliveryContext) -> ParseResult:
    doc = load_json_object(body)
    try:
        delivery = GenericDelivery.model_validate(doc)
    except ValidationError as exc:
        raise MalformedDelivery("malformed_entry", _errors(exc)) from exc
    return run_items(ParseResult(), _items(delivery, ctx))


def _items(
    delivery: GenericDelivery, ctx: DeliveryContext
) -> Iterator[tuple[int, str, Callable[[], list[Message] | None]]]:
    for i, raw in enumerate(delivery.reports):
        path = f"reports[{i}]"
        yield i, path, _thunk(delivery.account_id, raw, ctx)


def _thunk(account_id: str, raw: Any, ctx: DeliveryContext) -> Callable[[], list[Message] | None]:
    return lambda: [_report(account_id, raw, ctx)]


def _report(account_id: str, raw: Any, ctx: DeliveryContext) -> Message:
    account = lookup_account(ctx, P, account_id)
    try:
        report = GenericReport.model_validate(raw)
    except ValidationError as exc:
        raise EntryError("malformed_entry", _errors(exc)) from exc
    thread = report.thread_id or (report.in_reply_to if report.is_agency_reply else None)
    return build(
        ctx,
        Draft(
            platform=P,
            kind=EventKind.reply if report.in_reply_to else EventKind.report,
            message_id=f"generic:{account.platform_id}:{report.id}",
            platform_message_id=report.id,
            thread_key=f"generic:{account.platform_id}:{thread or report.id}",
            account=account,
            author_id=report.author_id,
            text=report.text,
            platform_time=report.created_at,
            location=report.location,
            attachments=tuple(report.attachments),
            is_agency_reply=report.is_agency_reply,
            in_reply_to=(
                f"generic:{account.platform_id}:{report.in_reply_to}"
                if report.in_reply_to
                else None
            ),
        ),
    )


def _errors(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in exc.errors()[:10]
    )
