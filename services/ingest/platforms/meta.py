"""What Instagram, Facebook Page and WhatsApp webhooks share: the ``{object, entry[]}``
envelope and (Instagram, Messenger) the ``messaging[]`` direct-message events.

Meta batches up to 1000 updates per POST, so every ``changes[]`` and ``messaging[]`` item is
parsed on its own: one bad item is rejected alone (see ``parsing.run_items``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from common.registry import Account
from schemas.messages import Action, Attachment, EventKind, Location, Message, Platform
from services.ingest.platforms.base import (
    DeliveryContext,
    Draft,
    EntryError,
    MalformedDelivery,
    ParseResult,
    build,
    check_entries,
    ident,
    is_account_id,
    learn_names,
    load_json_object,
    location,
    lookup_account,
    lst,
    may_exceed,
    obj,
    opt_ident,
    opt_obj,
    opt_text,
    run_items,
    skip,
    when,
)

Item = tuple[int, str, Callable[[], list[Message] | None]]
ChangeParser = Callable[
    [dict[str, Any], dict[str, Any], str, DeliveryContext], list[Message] | None
]
MessagingParser = Callable[
    [dict[str, Any], dict[str, Any], str, DeliveryContext], list[Message] | None
]


# Lists inside a change's value whose every item is parsed on its own (WhatsApp).
_INNER_ITEMS = ("messages", "statuses", "message_echoes")
# Lists of an entry whose every item is parsed on its own.
_ENTRY_ITEMS = ("changes", "messaging", "standby")


def entries(
    body: bytes, expected_object: str, ctx: DeliveryContext, platform: Platform
) -> list[Any]:
    """Validate the envelope (a JSON object whose ``object`` is ours and ``entry`` a list),
    refuse more items than ``Limits.max_entries`` and learn the person names it carries."""
    doc = load_json_object(body)
    if doc.get("object") != expected_object:
        raise MalformedDelivery(
            "unknown_object", f"object must be {expected_object!r} on this endpoint"
        )
    items = doc.get("entry")
    if not isinstance(items, list):
        raise MalformedDelivery("malformed_entry", "'entry' must be a list")
    if may_exceed(ctx, body):
        check_entries(ctx, count_items(items))
    learn_names(ctx, platform, body, items)
    return items


def count_items(raw_entries: list[Any]) -> int:
    """The updates of a delivery as Meta counts its batch (at most 1,000): each
    ``changes[]``/``messaging[]``/``standby[]`` item, or the messages, statuses and echoes
    inside a WhatsApp change when it holds several; an entry without items counts one."""
    count = 0
    for entry in raw_entries:
        items_of_entry = 0
        if isinstance(entry, dict):
            for key in _ENTRY_ITEMS:
                items = entry.get(key)
                if isinstance(items, list):
                    items_of_entry += sum(_updates(item) for item in items)
        count += max(items_of_entry, 1)
    return count


def _updates(item: Any) -> int:
    value = item.get("value") if isinstance(item, dict) else None
    if not isinstance(value, dict):
        return 1
    inner = sum(len(v) for k in _INNER_ITEMS if isinstance(v := value.get(k), list))
    return max(inner, 1)


def parse_envelope(
    body: bytes,
    ctx: DeliveryContext,
    platform: Platform,
    expected_object: str,
    changes: Mapping[str, ChangeParser],
    messaging: MessagingParser | None = None,
) -> ParseResult:
    """Walk ``entry[].changes[]`` (dispatching on ``field``) and ``entry[].messaging[]``.

    Unknown ``field`` values are skipped and counted: Meta adds fields over time and an app
    may be subscribed to more than we read."""
    raw_entries = entries(body, expected_object, ctx, platform)
    return run_items(ParseResult(), _items(raw_entries, ctx, changes, messaging))


def _items(
    raw_entries: list[Any],
    ctx: DeliveryContext,
    changes: Mapping[str, ChangeParser],
    messaging: MessagingParser | None,
) -> Iterator[Item]:
    """Every ``changes[]`` item, and every ``messaging[]`` and ``standby[]`` event (the
    handover protocol's channel: when another app, e.g. Meta Business Suite's inbox, is the
    conversation's primary receiver, every citizen DM and the agency's answers arrive there;
    same shape as ``messaging[]``). An entry holding a messaging event's fields itself (the
    documented ``call_permission_reply``) is parsed as that event; an entry with nothing of
    these carries nothing to read and is skipped."""
    for index, entry in enumerate(raw_entries):
        path = f"entry[{index}]"
        if not isinstance(entry, dict):
            yield index, path, _fail("malformed_entry", "entry must be an object")
            continue
        found = False
        change_list = entry.get("changes")
        if change_list is not None:
            found = True
            if not isinstance(change_list, list):
                yield index, path, _fail("malformed_entry", "changes must be a list")
            else:
                for ci, change in enumerate(change_list):
                    cpath = f"{path}.changes[{ci}]"
                    yield index, cpath, _change_thunk(entry, change, cpath, ctx, changes)
        for key in ("messaging", "standby"):
            events = entry.get(key)
            if events is None:
                continue
            found = True
            if not isinstance(events, list) or messaging is None:
                yield index, path, _fail("malformed_entry", f"{key} must be a list")
                continue
            for mi, event in enumerate(events):
                mpath = f"{path}.{key}[{mi}]"
                yield index, mpath, _bind(messaging, entry, event, mpath, ctx)
        if not found:
            if messaging is not None and isinstance(entry.get("sender"), dict):
                yield index, path, _bind(messaging, entry, entry, path, ctx)
            else:
                yield index, path, _skip("no_content")


def _skip(reason: str) -> Callable[[], list[Message] | None]:
    def thunk() -> list[Message] | None:
        skip(reason)

    return thunk


def _fail(reason: str, detail: str) -> Callable[[], list[Message] | None]:
    def thunk() -> list[Message] | None:
        raise EntryError(reason, detail)

    return thunk


def _bind(
    fn: MessagingParser, entry: dict[str, Any], item: Any, path: str, ctx: DeliveryContext
) -> Callable[[], list[Message] | None]:
    return lambda: fn(entry, obj(item, path), path, ctx)


def _change_thunk(
    entry: dict[str, Any],
    change: Any,
    path: str,
    ctx: DeliveryContext,
    parsers: Mapping[str, ChangeParser],
) -> Callable[[], list[Message] | None]:
    def thunk() -> list[Message] | None:
        item = obj(change, path)
        parser = parsers.get(str(item.get("field")))
        if parser is None:
            skip("other_event")  # a field we do not read: skipped and counted
        value = obj(item.get("value"), f"{path}.value")
        return parser(entry, value, f"{path}.value", ctx)

    return thunk


# Messaging events without anything a person wrote, by the key that names them.
_EVENT_SKIPS = {
    "reaction": "reaction",
    "read": "receipt",
    "delivery": "receipt",
    "postback": "postback",
    "optin": "postback",
    "referral": "postback",
    "game_play": "postback",
    "account_linking": "postback",
    "messaging_feedback": "postback",
    "pass_thread_control": "handover",
    "take_thread_control": "handover",
    "request_thread_control": "handover",
    "app_roles": "handover",
    "call_permission_reply": "no_content",
    "call": "no_content",
    "policy_enforcement": "other_event",
}


def parse_messaging(
    platform: Platform,
    entry: dict[str, Any],
    event: dict[str, Any],
    path: str,
    ctx: DeliveryContext,
) -> list[Message] | None:
    """A Messenger or Instagram DM event (``entry[].messaging[]`` or ``entry[].standby[]``).

    ``message`` is a DM (``is_echo``: the agency's own, ``is_deleted``: a removal),
    ``message_edit`` an edit of one. Direction is decided by the ids: the side that is a
    registry account is the agency, the other the citizen; ``is_echo`` only decides when
    neither id is one (Instagram-scoped ids). The thread key is the account plus the
    citizen's pseudonym, so the citizen's messages and the agency's echoes share it; an
    event whose citizen side is the account itself is malformed (it would thread on the
    account's own pseudonym). Reactions, reads, postbacks, handovers and call-permission
    answers carry nothing to read: skipped by reason, and so is a message that has no text,
    attachment or location left."""
    message = opt_obj(event, "message", path)
    edit = opt_obj(event, "message_edit", path) if message is None else None
    if message is None and edit is None:
        for key, reason in _EVENT_SKIPS.items():
            if key in event:
                skip(reason)
        skip("other_event")
    body = message if message is not None else edit
    assert body is not None
    bpath = f"{path}.message" if message is not None else f"{path}.message_edit"
    sender = ident(obj(event.get("sender"), f"{path}.sender"), "id", f"{path}.sender")
    recipient = ident(obj(event.get("recipient"), f"{path}.recipient"), "id", f"{path}.recipient")
    mid = ident(body, "mid", bpath)
    p = platform.value
    account, echo = _direction(ctx, platform, entry, sender, recipient, body.get("is_echo") is True)
    citizen = recipient if echo else sender
    if is_account_id(account, citizen) or citizen == str(entry.get("id", "")):
        raise EntryError(
            "malformed_entry", f"{path}: the citizen side of the event is the account itself"
        )
    timestamp = event.get("timestamp", entry.get("time"))
    draft = Draft(
        platform=platform,
        kind=EventKind.dm,
        platform_message_id=mid,
        thread_key=f"{p}:dm:{account.platform_id}:{ctx.pseudonymize(p, citizen)}",
        account=account,
        author_id=sender,
        text=None,
        platform_time=when(ctx, timestamp, f"{path}.timestamp"),
        is_agency_reply=echo,
    )
    if edit is not None:
        draft.text = opt_text(edit, "text", bpath)
        if not draft.text:
            skip("no_content")
        draft.action = Action.edit
        return [build(ctx, draft)]
    if body.get("is_deleted") is True:
        draft.action = Action.remove
        return [build(ctx, draft)]
    if body.get("is_unsupported") is True:
        skip("unsupported")
    draft.text = opt_text(body, "text", bpath) or _template_text(body)
    draft.attachments, draft.location = messaging_attachments(body, path)
    if not draft.text and not draft.attachments and draft.location is None and not echo:
        # nothing a person wrote; an agency echo still answers the citizen (stops a clock)
        skip("reaction" if "reaction" in body else "no_content")
    reply_to = opt_obj(body, "reply_to", bpath)
    reply_mid = opt_ident(reply_to, "mid", f"{bpath}.reply_to") if reply_to else None
    draft.in_reply_to = f"{p}:{reply_mid}" if reply_mid else None
    return [build(ctx, draft)]


def _template_text(message: dict[str, Any]) -> str | None:
    """The text of a structured message (an agency's button or generic template echo)."""
    atts = message.get("attachments")
    for att in atts if isinstance(atts, list) else []:
        payload = att.get("payload") if isinstance(att, dict) else None
        if isinstance(payload, dict) and isinstance(payload.get("text"), str):
            return str(payload["text"]) or None
    return None


def _direction(
    ctx: DeliveryContext,
    platform: Platform,
    entry: dict[str, Any],
    sender: str,
    recipient: str,
    is_echo: bool,
) -> tuple[Account, bool]:
    """The account and whether the event is the agency's own (an echo). The ids decide:
    the side that names a registry account (or the entry's own id) is the agency;
    ``is_echo`` decides only when neither does."""
    entry_id = opt_ident(entry, "id", "entry")
    sender_acct = ctx.registry.account(platform, sender)
    recipient_acct = ctx.registry.account(platform, recipient)
    if sender_acct is not None and recipient_acct is None:
        echo = True
    elif recipient_acct is not None and sender_acct is None:
        echo = False
    elif entry_id is not None and sender == entry_id != recipient:
        echo = True
    elif entry_id is not None and recipient == entry_id != sender:
        echo = False
    else:
        echo = is_echo
    account = lookup_account(ctx, platform, sender if echo else recipient, entry_id)
    return account, echo


def messaging_attachments(
    message: dict[str, Any], path: str
) -> tuple[tuple[Attachment, ...], Location | None]:
    """``message.attachments[]``: ``{type, payload: {url}}`` kept as references only; a
    ``location`` attachment (``payload.coordinates.lat/long``, its ``title`` as the place
    name) becomes the message's location. An attachment without any reference (a
    ``fallback`` with no payload) is dropped."""
    raw = message.get("attachments")
    if raw is None:
        return (), None
    out = []
    loc: Location | None = None
    for i, att in enumerate(lst(raw, f"{path}.message.attachments")):
        a = obj(att, f"{path}.message.attachments[{i}]")
        raw_payload = a.get("payload")
        payload: dict[str, Any] = raw_payload if isinstance(raw_payload, dict) else {}
        coords = payload.get("coordinates")
        if a.get("type") == "location" or isinstance(coords, dict):
            c: dict[str, Any] = coords if isinstance(coords, dict) else payload
            lat = c.get("lat", c.get("latitude"))
            lon = c.get("long", c.get("lng", c.get("longitude")))
            if lat is not None and lon is not None:
                title = a.get("title", payload.get("title"))
                loc = location(lat, lon, title if title != "Pinned Location" else None)
                continue
        ref = (
            payload.get("url")
            or payload.get("attachment_id")
            or payload.get("id")
            or payload.get("ig_post_media_id")
            or a.get("url")
        )
        if isinstance(ref, str | int) and not isinstance(ref, bool) and ref != "":
            out.append(Attachment(type=str(a.get("type") or "file"), ref=str(ref)))
    return tuple(out), loc
