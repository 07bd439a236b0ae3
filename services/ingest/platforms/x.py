"""X webhooks: the Account Activity API (AAA) and the newer X Activity API (XAA) envelope.

AAA: ``{for_user_id, tweet_create_events[], direct_message_events[], ...}``; other
``*_events`` (likes, follows, blocks, typing, reads) are skipped and counted.
XAA: ``{data: {event_uuid, event_type, filter: {user_id}, payload}}`` (or the event object
itself, or a list of them under ``data``); DM events become messages, profile/follow/news
events are skipped.

Thread keys. AAA tweets carry only the immediate parent (``in_reply_to_status_id_str``), not
the conversation root, so the key is chosen from the complaint's point of view: a citizen's
tweet opens its own thread ``x:<tweet id>``; an agency tweet lands on the thread of the tweet
it answers, ``x:<in_reply_to id>``. So the agency's reply always lands on the citizen's
thread and stops its clock. Limit: a citizen's follow-up reply opens a new thread (linked by
``in_reply_to``). DMs: ``x:dm:<account id>:<citizen pseudonym>``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

from common.registry import Account
from schemas.messages import Attachment, EventKind, Location, Message, Platform
from services.ingest.platforms.base import (
    DeliveryContext,
    Draft,
    EntryError,
    MalformedDelivery,
    ParseResult,
    build,
    check_entries,
    from_epoch,
    from_iso,
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
)

P = Platform.x
Item = tuple[int, str, Callable[[], list[Message] | None]]
_XAA_DM = {"dm.received", "dm.sent", "chat.received", "chat.sent", "DirectMessageReceived"}


_KNOWN_EVENTS = {"tweet_create_events", "direct_message_events"}


def parse(body: bytes, ctx: DeliveryContext) -> ParseResult:
    doc = load_json_object(body)
    if "for_user_id" in doc:
        if may_exceed(ctx, body):
            check_entries(ctx, sum(len(v) for k, v in doc.items() if _is_event_list(k, v)))
        learn_names(ctx, P, body, doc)
        return run_items(ParseResult(), _aaa_items(doc, ctx))
    events = _xaa_events(doc)
    if events is None:
        raise MalformedDelivery(
            "unknown_object", "neither an Account Activity (for_user_id) nor an X Activity body"
        )
    check_entries(ctx, len(events))
    learn_names(ctx, P, body, events)
    return run_items(ParseResult(), _xaa_items(events, ctx))


def _is_event_list(key: str, value: Any) -> bool:
    return key.endswith("_events") and isinstance(value, list)


# --- Account Activity API ------------------------------------------------------------------


def _aaa_items(doc: dict[str, Any], ctx: DeliveryContext) -> Iterator[Item]:
    for_user = doc.get("for_user_id")
    index = 0
    for key, value in doc.items():
        if not key.endswith("_events"):
            continue
        fn = {"tweet_create_events": _tweet, "direct_message_events": _dm}.get(key)
        # A key the sender chose is not echoed into a dead letter: it may be anything.
        name = key if key in _KNOWN_EVENTS else "<other>_events"
        if not isinstance(value, list):
            yield index, name, _fail(f"{name} must be a list")
            index += 1
            continue
        for i, event in enumerate(value):
            path = f"{name}[{i}]"
            yield index, path, _aaa_thunk(fn, for_user, event, path, ctx)
            index += 1


def _fail(detail: str) -> Callable[[], list[Message] | None]:
    def thunk() -> list[Message] | None:
        raise EntryError("malformed_entry", detail)

    return thunk


def _aaa_thunk(
    fn: Callable[[Account, dict[str, Any], str, DeliveryContext], Message | None] | None,
    for_user: Any,
    event: Any,
    path: str,
    ctx: DeliveryContext,
) -> Callable[[], list[Message] | None]:
    def thunk() -> list[Message] | None:
        if fn is None:
            return None  # likes, follows, typing indicators, read receipts...
        account = lookup_account(ctx, P, ident({"for_user_id": for_user}, "for_user_id", "body"))
        msg = fn(account, obj(event, path), path, ctx)
        return None if msg is None else [msg]

    return thunk


def _tweet(account: Account, tw: dict[str, Any], path: str, ctx: DeliveryContext) -> Message | None:
    if "retweeted_status" in tw:
        return None  # a plain retweet adds no words of its own
    tweet_id = ident(tw, "id_str", path) if "id_str" in tw else ident(tw, "id", path)
    user = obj(tw.get("user"), f"{path}.user")
    author = ident(user, "id_str", f"{path}.user") if "id_str" in user else ident(user, "id", path)
    extended = opt_obj(tw, "extended_tweet", path)
    text = None
    if extended is not None:
        text = opt_text(extended, "full_text", f"{path}.extended_tweet")
    if text is None:
        text = opt_text(tw, "full_text", path) or opt_text(tw, "text", path) or ""
    parent = opt_ident(tw, "in_reply_to_status_id_str", path)
    agency = is_account_id(account, author)
    entities = (extended or {}).get("extended_entities") or tw.get("extended_entities") or {}
    return build(
        ctx,
        Draft(
            platform=P,
            kind=EventKind.tweet,
            platform_message_id=tweet_id,
            thread_key=f"x:{parent}" if agency and parent else f"x:{tweet_id}",
            account=account,
            author_id=author,
            text=text,
            platform_time=_tweet_time(tw, path),
            location=_tweet_location(tw),
            attachments=_media(entities.get("media") if isinstance(entities, dict) else None),
            is_agency_reply=agency,
            in_reply_to=f"x:{parent}" if parent else None,
        ),
    )


def _tweet_time(tw: dict[str, Any], path: str) -> datetime:
    if tw.get("timestamp_ms") is not None:
        return from_epoch(tw.get("timestamp_ms"), f"{path}.timestamp_ms")
    created = tw.get("created_at")
    if isinstance(created, str):
        try:  # "Wed Oct 10 20:19:24 +0000 2018" → RFC 2822 order for the stdlib parser
            day, mon, dd, hms, off, year = created.split()
            return parsedate_to_datetime(f"{day}, {dd} {mon} {year} {hms} {off}")
        except ValueError:
            return from_iso(created, f"{path}.created_at")
    raise EntryError("bad_timestamp", f"{path} has neither timestamp_ms nor created_at")


def _tweet_location(tw: dict[str, Any]) -> Location | None:
    coords = tw.get("coordinates")
    if isinstance(coords, dict) and isinstance(coords.get("coordinates"), list):
        pair = coords["coordinates"]
        if len(pair) == 2:
            return location(pair[1], pair[0])  # GeoJSON order: longitude, latitude
    return None


def _media(raw: Any) -> tuple[Attachment, ...]:
    out = []
    for m in raw if isinstance(raw, list) else []:
        if isinstance(m, dict):
            ref = m.get("media_url_https") or m.get("id_str") or m.get("media_key")
            if isinstance(ref, str) and ref:
                out.append(Attachment(type=str(m.get("type") or "photo"), ref=ref))
    return tuple(out)


def _dm(account: Account, ev: dict[str, Any], path: str, ctx: DeliveryContext) -> Message | None:
    if ev.get("type", "message_create") != "message_create":
        return None
    create = obj(ev.get("message_create"), f"{path}.message_create")
    sender = ident(create, "sender_id", f"{path}.message_create")
    target = obj(create.get("target"), f"{path}.message_create.target")
    recipient = ident(target, "recipient_id", f"{path}.message_create.target")
    data = obj(create.get("message_data"), f"{path}.message_create.message_data")
    attachment = data.get("attachment")
    media = [attachment.get("media")] if isinstance(attachment, dict) else None
    return _dm_message(
        account,
        ctx,
        dm_id=ident(ev, "id", path),
        sender=sender,
        recipient=recipient,
        text=opt_text(data, "text", f"{path}.message_create.message_data"),
        when=from_epoch(ev.get("created_timestamp"), f"{path}.created_timestamp"),
        attachments=_media(media),
    )


def _dm_message(
    account: Account,
    ctx: DeliveryContext,
    *,
    dm_id: str,
    sender: str,
    recipient: str | None,
    text: str | None,
    when: datetime,
    attachments: tuple[Attachment, ...] = (),
) -> Message:
    agency = is_account_id(account, sender)
    citizen = recipient if agency else sender
    if not citizen:
        raise EntryError("missing_field", "cannot tell the citizen of an agency DM (no recipient)")
    return build(
        ctx,
        Draft(
            platform=P,
            kind=EventKind.dm,
            platform_message_id=dm_id,
            thread_key=f"x:dm:{account.platform_id}:{ctx.pseudonymize('x', citizen)}",
            account=account,
            author_id=sender,
            text=text,
            platform_time=when,
            attachments=attachments,
            is_agency_reply=agency,
        ),
    )


# --- X Activity API ------------------------------------------------------------------------


def _xaa_events(doc: dict[str, Any]) -> list[Any] | None:
    data = doc.get("data", doc)
    if isinstance(data, list):
        return data
    if isinstance(data, dict) and "event_type" in data:
        return [data]
    return None


def _xaa_items(events: list[Any], ctx: DeliveryContext) -> Iterator[Item]:
    for i, event in enumerate(events):
        path = f"data[{i}]"
        yield i, path, _xaa_thunk(event, path, ctx)


def _xaa_thunk(event: Any, path: str, ctx: DeliveryContext) -> Callable[[], list[Message] | None]:
    return lambda: _xaa_event(event, path, ctx)


def _xaa_event(raw: Any, path: str, ctx: DeliveryContext) -> list[Message] | None:
    event = obj(raw, path)
    if event.get("event_type") not in _XAA_DM:
        return None  # profile, follow, news events: nothing to answer
    payload = obj(event.get("payload"), f"{path}.payload")
    filt = opt_obj(event, "filter", path) or {}
    account_id = opt_ident(filt, "user_id", f"{path}.filter") or opt_ident(
        event, "for_user_id", path
    )
    account = lookup_account(ctx, P, account_id)
    sender = ident(payload, "sender_id", f"{path}.payload")
    dm_id = (
        opt_ident(payload, "id", f"{path}.payload")
        or opt_ident(payload, "dm_event_id", f"{path}.payload")
        or ident(event, "event_uuid", path)
    )
    recipient = opt_ident(payload, "recipient_id", f"{path}.payload") or _other_participant(
        payload, account
    )
    created = payload.get("created_at")
    when = (
        from_iso(created, f"{path}.payload.created_at")
        if isinstance(created, str)
        else from_epoch(payload.get("created_timestamp", created), f"{path}.payload.created_at")
    )
    return [
        _dm_message(
            account,
            ctx,
            dm_id=dm_id,
            sender=sender,
            recipient=recipient,
            text=opt_text(payload, "text", f"{path}.payload"),
            when=when,
        )
    ]


def _other_participant(payload: dict[str, Any], account: Account) -> str | None:
    """The citizen of a one-to-one DM: ``participant_ids`` or ``dm_conversation_id``
    (``"<user a>-<user b>"``) minus the account."""
    ids: list[Any] = []
    raw = payload.get("participant_ids")
    if isinstance(raw, list):
        ids = lst(raw, "participant_ids")
    elif isinstance(payload.get("dm_conversation_id"), str):
        ids = payload["dm_conversation_id"].split("-")
    others = [str(i) for i in ids if str(i) and not is_account_id(account, str(i))]
    return others[0] if len(others) == 1 else None
