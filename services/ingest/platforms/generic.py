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
with ``X-Aduan-Timestamp: <unix seconds>``; checked by ``signatures.verify_generic`` with the
secret of the account the sender names before the body is read (``/webhooks/generic/<account>``
or ``X-Aduan-Account``); the body's ``account_id`` must be that account.
Thread key: the pseudonym of ``generic:<account>:<thread_id or report id>``.

Ids the sender chooses (``id``, ``thread_id``, ``in_reply_to``) must not be personal data:
one that looks like an e-mail address, a phone number, a NIK/KK or a bank account is refused
(``personal_data_in_id``). They are pseudonymised downstream all the same."""

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
    check_entries,
    load_json_object,
    lookup_account,
    run_items,
)
from services.ingest.privacy import personal_kind

P = Platform.generic
_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:@/-]{0,127}$"


class GenericReport(BaseModel):
    """One citizen report or agency answer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=_ID, description="unique per account; the dedup key")
    created_at: AwareDatetime = Field(description="RFC 3339 with offset")
    author_id: str = Field(min_length=1, max_length=256, description="pseudonymised on ingest")
    text: str = Field(description="masked on ingest; at most ADUAN_INGEST_MAX_TEXT_CHARS")
    thread_id: str | None = Field(default=None, pattern=_ID, description="conversation id")
    in_reply_to: str | None = Field(default=None, pattern=_ID, description="report id answered")
    is_agency_reply: bool = False
    location: Location | None = None
    attachments: list[Attachment] = Field(default_factory=list, max_length=50)


class GenericDelivery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    account_id: str = Field(min_length=1, max_length=128)
    reports: list[Any] = Field(
        min_length=1, description="at most ADUAN_INGEST_MAX_ENTRIES; each validated alone"
    )


def parse(body: bytes, ctx: DeliveryContext) -> ParseResult:
    doc = load_json_object(body)
    try:
        delivery = GenericDelivery.model_validate(doc)
    except ValidationError as exc:
        raise MalformedDelivery("malformed_entry", _errors(exc)) from exc
    check_entries(ctx, len(delivery.reports))
    if ctx.sender is not None and delivery.account_id != ctx.sender:
        ctx.foreign.append("account_id")  # signed by another sender: the service answers 403
        return ParseResult()
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
    for name in ("id", "thread_id", "in_reply_to"):
        value = getattr(report, name)
        kind = personal_kind(value) if value else None
        if kind is not None:
            raise EntryError(
                "personal_data_in_id",
                f"{name} looks like personal data ({kind}); send an opaque id of your system",
            )
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


_FIELDS = frozenset(
    name
    for model in (GenericDelivery, GenericReport, Location, Attachment)
    for name in model.model_fields
)


def _errors(exc: ValidationError) -> str:
    """pydantic's errors as a detail: path and rule, never the input. A key the schema does
    not know is shown as ``<unknown field>`` (the key itself is the sender's data)."""
    return "; ".join(
        f"{_loc(e['loc'])}: {e['msg']}"
        for e in exc.errors(include_input=False, include_url=False)[:10]
    )


def _loc(loc: tuple[int | str, ...]) -> str:
    parts = [str(p) if isinstance(p, int) or p in _FIELDS else "<unknown field>" for p in loc]
    return ".".join(parts) or "<root>"
