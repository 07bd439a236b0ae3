"""Meta webhooks (Instagram, Facebook Page, WhatsApp Cloud API).

Walking-skeleton scope: Instagram ``comments``. Other fields are rejected per entry."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from schemas.messages import EventKind, Message, Platform
from services.ingest.parsing import DeliveryContext, MalformedDelivery, ParseResult, Rejected
from services.ingest.privacy import mask_text


def parse(body: bytes, ctx: DeliveryContext) -> ParseResult:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedDelivery("malformed_json", f"body is not JSON: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("object") != "instagram":
        raise MalformedDelivery("unknown_object", "expected object 'instagram'")
    entries = doc.get("entry")
    if not isinstance(entries, list):
        raise MalformedDelivery("malformed_entry", "'entry' must be a list")
    result = ParseResult()
    for index, entry in enumerate(entries):
        try:
            result.messages.extend(_entry(entry, ctx))
        except (KeyError, TypeError, ValueError) as exc:
            result.rejected.append(Rejected("malformed_entry", f"{type(exc).__name__}: {exc}", index))
    return result


def _entry(entry: dict[str, Any], ctx: DeliveryContext) -> list[Message]:
    account_id = str(entry["id"])
    account = ctx.registry.account(Platform.instagram, account_id)
    if account is None:
        raise ValueError(f"unknown instagram account {account_id}")
    out = []
    for change in entry.get("changes", []):
        if change.get("field") != "comments":
            raise ValueError(f"unsupported field {change.get('field')!r}")
        value = change["value"]
        comment_id = str(value["id"])
        media_id = str(value["media"]["id"])
        author_id = str(value["from"]["id"])
        parent = value.get("parent_id")
        ts = entry.get("time")
        out.append(
            Message(
                message_id=f"instagram:{comment_id}",
                platform=Platform.instagram,
                kind=EventKind.reply if parent else EventKind.comment,
                platform_message_id=comment_id,
                thread_key=f"instagram:{media_id}:{parent or comment_id}",
                account_id=account_id,
                agency_id=account.agency_id,
                region_code=ctx.registry.account_region(account),
                author_pseudonym=ctx.pseudonymize("instagram", author_id),
                text=mask_text(str(value.get("text", ""))),
                platform_time=datetime.fromtimestamp(int(ts), UTC) if ts else ctx.received_at,
                received_at=ctx.received_at,
                is_agency_reply=author_id == account_id,
                in_reply_to=f"instagram:{parent}" if parent else None,
                delivery_id=ctx.delivery_id,
            )
        )
    return out
