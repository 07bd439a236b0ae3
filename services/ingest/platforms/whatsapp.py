"""WhatsApp Cloud API webhooks (``object: whatsapp_business_account``).

``entry[].id`` is the WABA id; ``value.metadata.phone_number_id`` the business number that
received the message. The account is looked up by phone_number_id first, then by the WABA id
(registry ``aliases``). Thread key: ``whatsapp:<phone_number_id>:<citizen pseudonym>``, so a
citizen's messages, the agency's ``statuses[]`` and the replies typed in the Business app
(``smb_message_echoes``) share it; a group message threads on its group,
``whatsapp:<phone_number_id>:group:<group id>``.

**Which id is the citizen.** A person is identified by a phone number (``from``, ``wa_id``,
``recipient_id``, ``to``) and, since the usernames rollout, by a business-scoped user id
(BSUID: ``from_user_id``, ``contacts[].user_id``, ``recipient_user_id``, ``to_user_id``)
that Meta puts in every messages webhook; a user who adopts a username may withhold the
phone number, sometimes. Pseudonyms are keyed hashes, so two raw ids can never be joined
after the fact: the raw id chosen here decides the thread. The BSUID is chosen whenever the
delivery carries one for the person (on the item itself, or ``contacts[]`` pairing it with
the item's phone number), else the phone number: then one person keeps one thread whether a
delivery carries the phone, the BSUID or both. Only a delivery carrying a phone number and
no BSUID at all (before the rollout; a ``failed`` status of a message sent to a phone
number) lands on the phone's thread. The parent BSUID is not used (it exists only when the
business enables it; switching would split threads).

``contacts[].profile.name`` is the citizen's display name: it stays in the raw topic only.
Each item of ``messages[]``, ``statuses[]`` and ``message_echoes[]`` is a separate item, so
one bad message in a batch is rejected alone; items with nothing to read (reactions,
``unsupported`` and ``errors``-only messages, call-permission answers, system notices) are
skipped by reason."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from common.registry import Account
from schemas.messages import Action, Attachment, EventKind, Location, Message, Platform
from services.ingest.platforms import meta
from services.ingest.platforms.base import (
    DeliveryContext,
    Draft,
    EntryError,
    ParseResult,
    PartialItem,
    RejectedEntry,
    Skipped,
    build,
    describe_bug,
    ident,
    is_account_id,
    location,
    lookup_account,
    obj,
    opt_ident,
    opt_obj,
    opt_text,
    skip,
    when,
)

P = Platform.whatsapp
_MEDIA = ("image", "document", "video", "audio", "sticker")
# A reply that reached (or left for) the citizen stops the first-response clock (``played``:
# a voice message was listened to); a failed one did not reach anyone; ``deleted`` and
# ``warning`` are statuses of the agency's message, not a reply reaching anyone.
_DELIVERED = frozenset({"sent", "delivered", "read", "played"})
_STATUSES = _DELIVERED | {"failed", "deleted", "warning"}
# Message types with nothing a complaint desk can answer, and why.
_SKIP_TYPES = {
    "reaction": "reaction",
    "unsupported": "unsupported",
    "unknown": "unsupported",
    "ephemeral": "unsupported",
    "system": "system",
    "request_welcome": "no_content",
}
_CONTENT_TYPES = frozenset({*_MEDIA, "text", "location", "interactive", "button", "contacts"})
# Keys of a Flow answer that hold a person's name (masked before the answers become text).
_NAME_KEYS = frozenset({"name", "full_name", "first_name", "last_name", "nama", "nama_lengkap"})
_FLOW_LABEL = re.compile(r"^(?:screen_\d+_)?(.+?)(?:_\d+)?$")


def parse(body: bytes, ctx: DeliveryContext) -> ParseResult:
    """Parse a Cloud API delivery. A ``messages`` change carrying several messages yields
    one item per message (rejected individually); the change as a whole fails only when its
    metadata (the account) is unusable. ``standby`` (another sender, e.g. Meta Business
    Agent, holds the conversation) has the ``messages`` shape."""
    changes = {"messages": _bundle, "smb_message_echoes": _bundle, "standby": _bundle}
    return meta.parse_envelope(body, ctx, P, "whatsapp_business_account", changes=changes)


@dataclass(slots=True)
class _Change:
    """What every item of one change shares: the business number, its account and the
    phone → BSUID pairs of ``contacts[]``."""

    phone_id: str
    display_phone: str | None
    account: Account
    bsuids: dict[str, str] = field(default_factory=dict)

    def person(self, phone: str | None, user_id: str | None) -> str | None:
        """The raw id a person is threaded and pseudonymised by: the BSUID when known."""
        if user_id:
            return user_id
        if phone:
            return self.bsuids.get(phone, phone)
        return None

    def thread(self, ctx: DeliveryContext, person: str) -> str:
        return f"whatsapp:{self.phone_id}:{ctx.pseudonymize('whatsapp', person)}"

    def group_thread(self, group_id: str) -> str:
        return f"whatsapp:{self.phone_id}:group:{group_id}"

    def is_business(self, some_id: str) -> bool:
        return is_account_id(self.account, some_id) or some_id in (
            self.phone_id,
            self.display_phone,
        )


def _bundle(
    entry: dict[str, Any], value: dict[str, Any], path: str, ctx: DeliveryContext
) -> list[Message] | None:
    """One ``value`` may hold many messages, statuses or echoes: parse each on its own; when
    some fail or are skipped, raise ``PartialItem`` carrying the good ones, one rejection per
    bad one and the skip reasons."""
    metadata = obj(value.get("metadata"), f"{path}.metadata")
    phone_id = ident(metadata, "phone_number_id", f"{path}.metadata")
    account = lookup_account(ctx, P, phone_id, opt_ident(entry, "id", "entry"))
    display = metadata.get("display_phone_number")
    change = _Change(phone_id, str(display) if display else None, account)
    _learn_bsuids(change, value.get("contacts"))
    jobs: list[tuple[str, Callable[[], Message]]] = []
    for key, fn in (("messages", _message), ("statuses", _status), ("message_echoes", _echo)):
        raw = value.get(key)
        if raw is None:
            continue
        if not isinstance(raw, list):
            raise EntryError("malformed_entry", f"{path}.{key} must be a list")
        for i, item in enumerate(raw):
            ipath = f"{path}.{key}[{i}]"
            jobs.append((ipath, _job(fn, item, ipath, change, ctx)))
    if not jobs:
        skip("no_content")  # errors-only or empty change: nothing anyone wrote
    out: list[Message] = []
    problems: list[RejectedEntry] = []
    skips: list[str] = []
    for ipath, job in jobs:
        try:
            out.append(job())
        except Skipped as exc:
            skips.append(exc.reason)
        except EntryError as exc:
            problems.append(RejectedEntry(exc.reason, f"{ipath}: {exc.detail}", None, exc.evidence))
        except Exception as exc:  # same batch boundary as parsing.run_items
            problems.append(RejectedEntry("malformed_entry", f"{ipath}: {describe_bug(exc)}"))
    if problems or skips:
        raise PartialItem(out, problems, skips)
    return out


def _learn_bsuids(change: _Change, contacts: Any) -> None:
    if not isinstance(contacts, list):
        return
    for contact in contacts:
        if isinstance(contact, dict):
            phone, user_id = contact.get("wa_id"), contact.get("user_id")
            if isinstance(phone, str) and phone and isinstance(user_id, str) and user_id:
                change.bsuids[phone] = user_id


def _job(
    fn: Callable[[dict[str, Any], str, _Change, DeliveryContext], Message],
    item: Any,
    path: str,
    change: _Change,
    ctx: DeliveryContext,
) -> Callable[[], Message]:
    return lambda: fn(obj(item, path), path, change, ctx)


def _message(msg: dict[str, Any], path: str, change: _Change, ctx: DeliveryContext) -> Message:
    """A citizen's message (``messages[]``)."""
    mtype = msg.get("type")
    if isinstance(mtype, str) and mtype in _SKIP_TYPES:
        skip(_SKIP_TYPES[mtype])
    if msg.get("errors") is not None and mtype not in _CONTENT_TYPES | {"edit", "revoke"}:
        skip("unsupported")  # Meta could not deliver its content: like ``unsupported``
    sender = change.person(opt_ident(msg, "from", path), opt_ident(msg, "from_user_id", path))
    if sender is None:
        raise EntryError("missing_field", f"{path}: neither from nor from_user_id")
    group = opt_ident(msg, "group_id", path)
    if group is None and change.is_business(sender):
        raise EntryError("malformed_entry", f"{path}.from is the business number itself")
    thread = change.group_thread(group) if group else change.thread(ctx, sender)
    return _content(msg, path, change, ctx, author=sender, thread=thread, agency=False)


def _echo(msg: dict[str, Any], path: str, change: _Change, ctx: DeliveryContext) -> Message:
    """``smb_message_echoes``: a message the agency sent from the WhatsApp Business app
    (coexistence), including its edits and deletions. Its citizen is ``to``/``to_user_id``;
    an echo addressed to the business itself is malformed."""
    mtype = msg.get("type")
    if isinstance(mtype, str) and mtype in _SKIP_TYPES:
        skip(_SKIP_TYPES[mtype])
    group = opt_ident(msg, "group_id", path)
    if group is not None:
        thread = change.group_thread(group)
    else:
        citizen = change.person(opt_ident(msg, "to", path), opt_ident(msg, "to_user_id", path))
        if citizen is None:
            raise EntryError("missing_field", f"{path}: neither to nor to_user_id")
        if change.is_business(citizen):
            raise EntryError("malformed_entry", f"{path}.to is the business number itself")
        thread = change.thread(ctx, citizen)
    return _content(msg, path, change, ctx, author=change.phone_id, thread=thread, agency=True)


def _content(
    msg: dict[str, Any],
    path: str,
    change: _Change,
    ctx: DeliveryContext,
    *,
    author: str,
    thread: str,
    agency: bool,
) -> Message:
    wamid = ident(msg, "id", path)
    draft = Draft(
        platform=P,
        kind=EventKind.dm,
        platform_message_id=wamid,
        thread_key=thread,
        account=change.account,
        author_id=author,
        text=None,
        platform_time=when(ctx, msg.get("timestamp"), f"{path}.timestamp"),
        is_agency_reply=agency,
    )
    mtype = msg.get("type")
    if mtype in ("edit", "revoke"):
        # The edit or revoke names the message it changes; downstream matches by that id.
        inner = obj(msg.get(mtype), f"{path}.{mtype}")
        original = ident(inner, "original_message_id", f"{path}.{mtype}")
        draft.message_id = f"whatsapp:{original}"
        draft.platform_message_id = original
        if mtype == "revoke":
            draft.action = Action.remove
            return build(ctx, draft)
        msg = obj(inner.get("message"), f"{path}.edit.message")
        path = f"{path}.edit.message"
        draft.action = Action.edit
    draft.text, attachments, draft.location = _extract(msg, path)
    draft.attachments = tuple(attachments)
    if not draft.text and not draft.attachments and draft.location is None:
        skip("no_content")
    context = opt_obj(msg, "context", path)
    replied = opt_ident(context, "id", f"{path}.context") if context else None
    draft.in_reply_to = f"whatsapp:{replied}" if replied else None
    return build(ctx, draft)


def _extract(
    msg: dict[str, Any], path: str
) -> tuple[str | None, list[Attachment], Location | None]:
    """Text, attachments and location of a message body by its ``type``. An undocumented
    type still yields its ``body``/``caption``/``text`` when it has one; else it is skipped
    (``unsupported``), never dead-lettered."""
    mtype = msg.get("type")
    if mtype == "text":
        return opt_text(obj(msg.get("text"), f"{path}.text"), "body", f"{path}.text"), [], None
    if mtype in _MEDIA:
        media = obj(msg.get(mtype), f"{path}.{mtype}")
        ref = media.get("id") or media.get("link") or media.get("url")
        mime = media.get("mime_type")
        atts = (
            [
                Attachment(
                    type=str(mtype), ref=str(ref), mime_type=mime if isinstance(mime, str) else None
                )
            ]
            if isinstance(ref, str | int) and not isinstance(ref, bool) and ref != ""
            else []
        )
        return opt_text(media, "caption", f"{path}.{mtype}"), atts, None
    if mtype == "location":
        raw = obj(msg.get("location"), f"{path}.location")
        loc = location(
            raw.get("latitude"), raw.get("longitude"), raw.get("name"), raw.get("address")
        )
        return None, [], loc
    if mtype == "interactive":
        return _interactive(obj(msg.get("interactive"), f"{path}.interactive"), path)
    if mtype == "button":
        button = obj(msg.get("button"), f"{path}.button")
        text = opt_text(button, "text", f"{path}.button") or opt_text(button, "payload", path)
        return text, [], None
    if mtype == "contacts":
        return _contacts_text(msg.get("contacts")), [], None
    if mtype == "order":
        order = obj(msg.get("order"), f"{path}.order")
        return opt_text(order, "text", f"{path}.order"), [], None
    inner = msg.get(mtype) if isinstance(mtype, str) else None
    if isinstance(inner, dict):
        for key in ("body", "caption", "text", "title"):
            if isinstance(inner.get(key), str) and inner[key]:
                return str(inner[key]), [], None
    skip("unsupported")


def _interactive(
    inter: dict[str, Any], path: str
) -> tuple[str | None, list[Attachment], Location | None]:
    """Button and list replies: the title is what the citizen chose. A Flow reply
    (``nfm_reply``) carries the citizen's answers in ``response_json``: they become the
    text, one ``label: value`` line each. A call-permission answer has nothing to read."""
    kind = inter.get("type")
    if kind == "call_permission_reply":
        skip("no_content")
    reply = inter.get(kind) if isinstance(kind, str) else None
    if not isinstance(reply, dict):
        skip("no_content")
    if kind == "nfm_reply":
        return _flow_answers(reply)
    parts = [reply.get("title"), reply.get("description")]
    text = " — ".join(p for p in parts if isinstance(p, str) and p)
    if not text:
        text = next((v for k in ("body", "text") if isinstance(v := reply.get(k), str) and v), "")
    return text or None, [], None


def _flow_answers(reply: dict[str, Any]) -> tuple[str | None, list[Attachment], Location | None]:
    """A WhatsApp Flow's answers as text. ``response_json`` is a JSON string of
    ``{field: value}``; the ``flow_token`` is the business's own correlation id and is left
    out; field names lose the Flow builder's ``screen_<n>_…_<n>`` decoration; media the
    citizen attached (PhotoPicker/DocumentPicker: objects with a media ``id``) become
    attachments; a person's name field is replaced by ``[NAME]`` wherever it appears."""
    raw = reply.get("response_json")
    try:
        data = orjson.loads(raw) if isinstance(raw, str | bytes) else raw
    except orjson.JSONDecodeError:
        data = None
    body = reply.get("body")
    fallback = body if isinstance(body, str) and body and body != "Sent" else None
    if not isinstance(data, dict):
        return fallback, [], None
    lines: list[str] = []
    names: list[str] = []
    atts: list[Attachment] = []
    _flow_lines(data, lines, names, atts)
    text = "\n".join(lines)
    for name in names:
        text = text.replace(name, "[NAME]")
    return text or fallback, atts, None


def _flow_lines(
    data: dict[str, Any], lines: list[str], names: list[str], atts: list[Attachment]
) -> None:
    for key, value in data.items():
        if key.startswith("flow_token") or value in (None, "", [], {}):
            continue
        match = _FLOW_LABEL.match(key)
        label = (match.group(1) if match else key).replace("_", " ")
        if isinstance(value, dict):
            _flow_lines(value, lines, names, atts)
            continue
        items = value if isinstance(value, list) else [value]
        shown: list[str] = []
        for item in items:
            if isinstance(item, dict):
                ref = item.get("id") or item.get("media_id")
                if isinstance(ref, str | int) and not isinstance(ref, bool):
                    mime = item.get("mime_type")
                    kind = mime.split("/")[0] if isinstance(mime, str) else "document"
                    atts.append(
                        Attachment(
                            type=kind,
                            ref=str(ref),
                            mime_type=mime if isinstance(mime, str) else None,
                        )
                    )
                continue
            shown.append(str(item).lower() if isinstance(item, bool) else str(item))
        if not shown:
            continue
        if key.lower() in _NAME_KEYS or label.lower() in _NAME_KEYS:
            names.extend(s for s in shown if len(s) >= 3)
            shown = ["[NAME]"]
        lines.append(f"{label}: {', '.join(shown)}")


def _contacts_text(raw: Any) -> str | None:
    """A shared contact card: its phone numbers (masked downstream like any text) behind
    a ``[NAME]``; the name itself is never written out."""
    if not isinstance(raw, list):
        return None
    parts = []
    for card in raw:
        if not isinstance(card, dict):
            continue
        phones = card.get("phones")
        numbers = [
            str(p.get("phone") or p.get("wa_id"))
            for p in (phones if isinstance(phones, list) else [])
            if isinstance(p, dict) and (p.get("phone") or p.get("wa_id"))
        ]
        parts.append(" ".join(["[NAME]", *numbers]))
    return "; ".join(parts) or None


def _status(st: dict[str, Any], path: str, change: _Change, ctx: DeliveryContext) -> Message:
    """A status of an outgoing agency message. Each status (sent, delivered, read, played,
    failed, deleted, warning) is its own event: ``message_id`` =
    ``whatsapp:<wamid>:<status>``; one not documented is skipped (``unknown_status``)."""
    wamid = ident(st, "id", path)
    status = st.get("status")
    if not isinstance(status, str) or status not in _STATUSES:
        skip("unknown_status")
    if st.get("recipient_type") == "group":
        thread = change.group_thread(ident(st, "recipient_id", path))
    else:
        person = change.person(
            opt_ident(st, "recipient_id", path), opt_ident(st, "recipient_user_id", path)
        )
        if person is None:
            raise EntryError("missing_field", f"{path}: neither recipient_id nor recipient_user_id")
        thread = change.thread(ctx, person)
    return build(
        ctx,
        Draft(
            platform=P,
            kind=EventKind.status,
            message_id=f"whatsapp:{wamid}:{status}",
            platform_message_id=wamid,
            thread_key=thread,
            account=change.account,
            author_id=change.phone_id,
            text=None,
            platform_time=when(ctx, st.get("timestamp"), f"{path}.timestamp"),
            is_agency_reply=status in _DELIVERED,
            delivery_status=status,
        ),
    )
