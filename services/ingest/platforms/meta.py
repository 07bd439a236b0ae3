"""What Instagram, Facebook Page and WhatsApp webhooks share: the ``{object, entry[]}``
envelope and (Instagram, Messenger) the ``messaging[]`` direct-message events.

Meta batches up to 1000 updates per POST, so every ``changes[]`` and ``messaging[]`` item is
parsed on its own: one bad item is rejected alone (see ``parsing.run_items``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from schemas.messages import Action, Attachment, EventKind, Message, Platform
from services.ingest.platforms.base import (
    DeliveryContext,
    Draft,
    EntryError,
    MalformedDelivery,
    ParseResult,
    build,
    check_entries,
    from_epoch,
    ident,
    is_account_id,
    learn_names,
    load_json_object,
    lookup_account,
    lst,
    may_exceed,
    obj,
    opt_ident,
    opt_obj,
    opt_text,
    run_items,
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
    for index, entry in enumerate(raw_entries):
        path = f"entry[{index}]"
        if not isinstance(entry, dict):
            yield index, path, _fail("malformed_entry", "entry must be an object")
            continue
        change_list = entry.get("changes")
        messaging_list = entry.get("messaging")
        if change_list is None and messaging_list is None:
            yield index, path, _fail("malformed_entry", "entry has neither changes nor messaging")
            continue
        if change_list is not None:
            if not isinstance(change_list, list):
                yield index, path, _fail("malformed_entry", "changes must be a list")
            else:
                for ci, change in enumerate(change_list):
                    cpath = f"{path}.changes[{ci}]"
                    yield index, cpath, _change_thunk(entry, change, cpath, ctx, changes)
        if messaging_list is not None:
            if not isinstance(messaging_list, list) or messaging is None:
                yield index, path, _fail("malformed_entry", "messaging must be a list")
            else:
                for mi, event in enumerate(messaging_list):
                    mpath = f"{path}.messaging[{mi}]"
                    yield index, mpath, _bind(messaging, entry, event, mpath, ctx)


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
            return None  # a field we do not read: skipped and counted
        value = obj(item.get("value"), f"{path}.value")
        return parser(entry, value, f"{path}.value", ctx)

    return thunk


def parse_messaging(
    platform: Platform,
    entry: dict[str, Any],
    event: dict[str, Any],
    path: str,
    ctx: DeliveryContext,
) -> list[Message] | None:
    """A Messenger or Instagram DM event (``entry[].messaging[]``).

    ``message.is_echo`` marks the agency's own reply: then the sender is the account and the
    citizen is the recipient. The thread key is the account plus the citizen's pseudonym, so
    the citizen's messages and the agency's echoes share it. Deleted messages
    (``is_deleted``) keep their message id with action ``remove``. Reactions, reads,
    postbacks and deliveries carry no text for a complaint desk: skipped."""
    message = opt_obj(event, "message", path)
    if message is None:
        return None
    sender = ident(obj(event.get("sender"), f"{path}.sender"), "id", f"{path}.sender")
    recipient = ident(obj(event.get("recipient"), f"{path}.recipient"), "id", f"{path}.recipient")
    mid = ident(message, "mid", f"{path}.message")
    echo = message.get("is_echo") is True
    account = lookup_account(ctx, platform, recipient if not echo else sender, entry.get("id"))
    echo = echo or is_account_id(account, sender)
    citizen = recipient if echo else sender
    deleted = message.get("is_deleted") is True
    reply_to = opt_obj(message, "reply_to", f"{path}.message")
    reply_mid = opt_ident(reply_to, "mid", f"{path}.message.reply_to") if reply_to else None
    timestamp = event.get("timestamp", entry.get("time"))
    p = platform.value
    return [
        build(
            ctx,
            Draft(
                platform=platform,
                kind=EventKind.dm,
                action=Action.remove if deleted else Action.add,
                platform_message_id=mid,
                thread_key=f"{p}:dm:{account.platform_id}:{ctx.pseudonymize(p, citizen)}",
                account=account,
                author_id=sender,
                text=None if deleted else opt_text(message, "text", f"{path}.message"),
                platform_time=from_epoch(timestamp, f"{path}.timestamp"),
                attachments=() if deleted else messaging_attachments(message, path),
                is_agency_reply=echo,
                in_reply_to=f"{p}:{reply_mid}" if reply_mid else None,
            ),
        )
    ]


def messaging_attachments(message: dict[str, Any], path: str) -> tuple[Attachment, ...]:
    """``message.attachments[]``: ``{type, payload: {url}}``; kept as references only."""
    raw = message.get("attachments")
    if raw is None:
        return ()
    out = []
    for i, att in enumerate(lst(raw, f"{path}.message.attachments")):
        a = obj(att, f"{path}.message.attachments[{i}]")
        raw_payload = a.get("payload")
        payload: dict[str, Any] = raw_payload if isinstance(raw_payload, dict) else {}
        ref = payload.get("url") or payload.get("attachment_id") or payload.get("id")
        if isinstance(ref, str | int) and ref != "":
            out.append(Attachment(type=str(a.get("type") or "file"), ref=str(ref)))
    return tuple(out)
