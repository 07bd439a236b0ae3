"""WhatsApp Cloud API webhooks (``object: whatsapp_business_account``).

``entry[].id`` is the WABA id; ``value.metadata.phone_number_id`` the business number that
received the message. The account is looked up by phone_number_id first, then by the WABA id
(registry ``aliases``). Thread key: ``whatsapp:<phone_number_id>:<citizen pseudonym>``, so a
citizen's messages, the agency's ``statuses[]`` (keyed by ``recipient_id``) and the replies
typed in the Business app (``smb_message_echoes``, keyed by ``to``) share it.

``contacts[].profile.name`` is the citizen's display name: it stays in the raw topic only.
Each item of ``messages[]``, ``statuses[]`` and ``message_echoes[]`` is a separate item, so
one bad message in a batch is rejected alone."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from common.registry import Account
from schemas.messages import Attachment, EventKind, Location, Message, Platform
from services.ingest.platforms import meta
from services.ingest.platforms.base import (
    DeliveryContext,
    Draft,
    EntryError,
    ParseResult,
    PartialItem,
    RejectedEntry,
    build,
    describe_bug,
    from_epoch,
    ident,
    location,
    lookup_account,
    obj,
    opt_ident,
    opt_obj,
    opt_text,
)

P = Platform.whatsapp
_MEDIA = ("image", "document", "video", "audio", "sticker")
# A reply that reached (or left for) the citizen stops the first-response clock; a failed
# one did not reach anyone.
_DELIVERED = {"sent", "delivered", "read"}
_STATUSES = _DELIVERED | {"failed"}
# Items with nothing a complaint desk can answer.
_SKIP_TYPES = {"reaction", "unsupported", "system", "ephemeral", "request_welcome"}


def parse(body: bytes, ctx: DeliveryContext) -> ParseResult:
    """Parse a Cloud API delivery. A ``messages`` change carrying several messages yields
    one item per message (rejected individually); the change as a whole fails only when its
    metadata (the account) is unusable."""
    changes = {"messages": _bundle, "smb_message_echoes": _bundle}
    return meta.parse_envelope(body, ctx, P, "whatsapp_business_account", changes=changes)


def _bundle(
    entry: dict[str, Any], value: dict[str, Any], path: str, ctx: DeliveryContext
) -> list[Message] | None:
    """One ``value`` may hold many messages, statuses or echoes: parse each on its own; when
    some fail, raise ``PartialItem`` carrying the good ones and one rejection per bad one."""
    metadata = obj(value.get("metadata"), f"{path}.metadata")
    phone_id = ident(metadata, "phone_number_id", f"{path}.metadata")
    account = lookup_account(ctx, P, phone_id, opt_ident(entry, "id", "entry"))
    jobs: list[tuple[str, Callable[[], Message | None]]] = []
    for key, fn in (("messages", _message), ("statuses", _status), ("message_echoes", _echo)):
        raw = value.get(key)
        if raw is None:
            continue
        if not isinstance(raw, list):
            raise EntryError("malformed_entry", f"{path}.{key} must be a list")
        for i, item in enumerate(raw):
            ipath = f"{path}.{key}[{i}]"
            jobs.append((ipath, _job(fn, item, ipath, phone_id, account, ctx)))
    out: list[Message] = []
    problems: list[RejectedEntry] = []
    skipped = 0
    for ipath, job in jobs:
        try:
            msg = job()
        except EntryError as exc:
            problems.append(RejectedEntry(exc.reason, f"{ipath}: {exc.detail}", None, exc.evidence))
            continue
        except Exception as exc:  # same batch boundary as parsing.run_items
            problems.append(RejectedEntry("malformed_entry", f"{ipath}: {describe_bug(exc)}"))
            continue
        if msg is None:
            skipped += 1
        else:
            out.append(msg)
    if problems or skipped:
        raise PartialItem(out, problems, skipped)
    return out or None


def _job(
    fn: Callable[[dict[str, Any], str, str, Account, DeliveryContext], Message | None],
    item: Any,
    path: str,
    phone_id: str,
    account: Account,
    ctx: DeliveryContext,
) -> Callable[[], Message | None]:
    return lambda: fn(obj(item, path), path, phone_id, account, ctx)


def _thread(phone_id: str, citizen: str, ctx: DeliveryContext) -> str:
    return f"whatsapp:{phone_id}:{ctx.pseudonymize('whatsapp', citizen)}"


def _message(
    msg: dict[str, Any], path: str, phone_id: str, account: Account, ctx: DeliveryContext
) -> Message | None:
    mtype = msg.get("type")
    if mtype in _SKIP_TYPES:
        return None
    sender = ident(msg, "from", path)
    return _content(msg, path, phone_id, account, ctx, author=sender, citizen=sender, agency=False)


def _echo(
    msg: dict[str, Any], path: str, phone_id: str, account: Account, ctx: DeliveryContext
) -> Message | None:
    """``smb_message_echoes``: a reply typed in the WhatsApp Business app (coexistence)."""
    if msg.get("type") in _SKIP_TYPES:
        return None
    citizen = ident(msg, "to", path)
    return _content(
        msg, path, phone_id, account, ctx, author=phone_id, citizen=citizen, agency=True
    )


def _content(
    msg: dict[str, Any],
    path: str,
    phone_id: str,
    account: Account,
    ctx: DeliveryContext,
    *,
    author: str,
    citizen: str,
    agency: bool,
) -> Message:
    wamid = ident(msg, "id", path)
    mtype = msg.get("type")
    text: str | None = None
    attachments: list[Attachment] = []
    loc: Location | None = None
    if mtype == "text":
        text = opt_text(obj(msg.get("text"), f"{path}.text"), "body", f"{path}.text")
    elif mtype in _MEDIA:
        media = obj(msg.get(mtype), f"{path}.{mtype}")
        text = opt_text(media, "caption", f"{path}.{mtype}")
        ref = ident(media, "id", f"{path}.{mtype}")
        mime = media.get("mime_type")
        attachments.append(
            Attachment(type=str(mtype), ref=ref, mime_type=mime if isinstance(mime, str) else None)
        )
    elif mtype == "location":
        raw = obj(msg.get("location"), f"{path}.location")
        loc = location(
            raw.get("latitude"), raw.get("longitude"), raw.get("name"), raw.get("address")
        )
    elif mtype == "interactive":
        text = _interactive(obj(msg.get("interactive"), f"{path}.interactive"), path)
    elif mtype == "button":
        button = obj(msg.get("button"), f"{path}.button")
        text = opt_text(button, "text", f"{path}.button") or opt_text(button, "payload", path)
    else:
        raise EntryError("unsupported_type", f"{path}.type is not a supported message type")
    context = opt_obj(msg, "context", path)
    replied = opt_ident(context, "id", f"{path}.context") if context else None
    return build(
        ctx,
        Draft(
            platform=P,
            kind=EventKind.dm,
            platform_message_id=wamid,
            thread_key=_thread(phone_id, citizen, ctx),
            account=account,
            author_id=author,
            text=text,
            platform_time=from_epoch(msg.get("timestamp"), f"{path}.timestamp"),
            location=loc,
            attachments=tuple(attachments),
            is_agency_reply=agency,
            in_reply_to=f"whatsapp:{replied}" if replied else None,
        ),
    )


def _interactive(inter: dict[str, Any], path: str) -> str | None:
    """Button and list replies: the title is what the citizen chose."""
    kind = inter.get("type")
    reply = inter.get(kind) if isinstance(kind, str) else None
    if not isinstance(reply, dict):
        raise EntryError("malformed_entry", f"{path}.interactive has no object for its type")
    parts = [reply.get("title"), reply.get("description")]
    return " — ".join(p for p in parts if isinstance(p, str) and p) or None


def _status(
    st: dict[str, Any], path: str, phone_id: str, account: Account, ctx: DeliveryContext
) -> Message:
    """A status of an outgoing agency message. Each status (sent, delivered, read, failed)
    is its own event: ``message_id`` = ``whatsapp:<wamid>:<status>``."""
    wamid = ident(st, "id", path)
    status = st.get("status")
    if status not in _STATUSES:
        raise EntryError("unsupported_status", f"{path}.status is not a supported status")
    recipient = ident(st, "recipient_id", path)
    return build(
        ctx,
        Draft(
            platform=P,
            kind=EventKind.status,
            message_id=f"whatsapp:{wamid}:{status}",
            platform_message_id=wamid,
            thread_key=_thread(phone_id, recipient, ctx),
            account=account,
            author_id=phone_id,
            text=None,
            platform_time=from_epoch(st.get("timestamp"), f"{path}.timestamp"),
            is_agency_reply=status in _DELIVERED,
            delivery_status=str(status),
        ),
    )
