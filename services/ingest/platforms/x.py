"""X webhooks: the Account Activity API (AAA) and the newer X Activity API (XAA) envelope.

AAA: ``{for_user_id, tweet_create_events[], tweet_delete_events[],
direct_message_events[], ...}``; other ``*_events`` (likes, follows, blocks, typing, reads)
and ``user_event`` (the user revoked the app's access; it has no ``for_user_id``) are skipped
and counted by reason. A deleted tweet is passed on as a removal of it.
XAA: ``{data: {event_uuid, event_type, filter: {user_id}, payload}}`` (or the event object
itself, or a list of them under ``data``): ``post.create`` (the account's own post),
``post.mention.create`` (a citizen mentioning it), ``post.delete``, ``dm.received``/
``dm.sent`` (``payload.direct_message_events[]``, the AAA shape) and ``chat.*`` (encrypted:
no readable text, ``text_fetched=False``) become messages; likes, follows, profile, news,
Spaces and ``oauth.revoke`` events are skipped.

Tweet texts arrive HTML-escaped (``&amp;``, ``&lt;``, ``&gt;``): they are unescaped.

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
from html import unescape
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
    skip,
    when,
)

P = Platform.x
Item = tuple[int, str, Callable[[], list[Message] | None]]
_XAA_DM = {"dm.received", "dm.sent", "chat.received", "chat.sent", "DirectMessageReceived"}


_KNOWN_EVENTS = {"tweet_create_events", "tweet_delete_events", "direct_message_events"}
# AAA event lists with nothing to read, and why.
_AAA_SKIPS = {
    "favorite_events": "reaction",
    "direct_message_indicate_typing_events": "receipt",
    "direct_message_mark_read_events": "receipt",
    "follow_events": "account_event",
    "unfollow_events": "account_event",
    "block_events": "account_event",
    "unblock_events": "account_event",
    "mute_events": "account_event",
    "unmute_events": "account_event",
}


def parse(body: bytes, ctx: DeliveryContext) -> ParseResult:
    doc = load_json_object(body)
    if "for_user_id" not in doc and "user_event" in doc:
        result = ParseResult()  # the user revoked the app: nothing to read, nothing to refuse
        result.add_skip("account_event")
        return result
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
        fn = {
            "tweet_create_events": _tweet,
            "tweet_delete_events": _tweet_delete,
            "direct_message_events": _dm,
        }.get(key)
        reason = _AAA_SKIPS.get(key, "other_event")
        # A key the sender chose is not echoed into a dead letter: it may be anything.
        name = key if key in _KNOWN_EVENTS else "<other>_events"
        if not isinstance(value, list):
            yield index, name, _fail(f"{name} must be a list")
            index += 1
            continue
        for i, event in enumerate(value):
            path = f"{name}[{i}]"
            yield index, path, _aaa_thunk(fn, reason, for_user, event, path, ctx)
            index += 1


def _fail(detail: str) -> Callable[[], list[Message] | None]:
    def thunk() -> list[Message] | None:
        raise EntryError("malformed_entry", detail)

    return thunk


def _aaa_thunk(
    fn: Callable[[Account, dict[str, Any], str, DeliveryContext], Message] | None,
    reason: str,
    for_user: Any,
    event: Any,
    path: str,
    ctx: DeliveryContext,
) -> Callable[[], list[Message] | None]:
    def thunk() -> list[Message] | None:
        if fn is None:
            skip(reason)  # likes, follows, typing indicators, read receipts...
        account = lookup_account(ctx, P, ident({"for_user_id": for_user}, "for_user_id", "body"))
        return [fn(account, obj(event, path), path, ctx)]

    return thunk


def _tweet(account: Account, tw: dict[str, Any], path: str, ctx: DeliveryContext) -> Message:
    if "retweeted_status" in tw:
        skip("retweet")  # a plain retweet adds no words of its own
    tweet_id = ident(tw, "id_str", path) if "id_str" in tw else ident(tw, "id", path)
    user = obj(tw.get("user"), f"{path}.user")
    author = ident(user, "id_str", f"{path}.user") if "id_str" in user else ident(user, "id", path)
    extended = opt_obj(tw, "extended_tweet", path)
    text = None
    if extended is not None:
        text = opt_text(extended, "full_text", f"{path}.extended_tweet")
    if text is None:
        text = opt_text(tw, "full_text", path) or opt_text(tw, "text", path) or ""
    entities = (extended or {}).get("extended_entities") or tw.get("extended_entities") or {}
    return _tweet_message(
        account,
        ctx,
        tweet_id=tweet_id,
        author=author,
        text=text,
        parent=opt_ident(tw, "in_reply_to_status_id_str", path),
        when=_tweet_time(tw, path, ctx),
        loc=_tweet_location(tw),
        attachments=_media(entities.get("media") if isinstance(entities, dict) else None),
    )


def _tweet_message(
    account: Account,
    ctx: DeliveryContext,
    *,
    tweet_id: str,
    author: str,
    text: str,
    parent: str | None,
    when: datetime,
    loc: Location | None = None,
    attachments: tuple[Attachment, ...] = (),
) -> Message:
    """A tweet (AAA) or Post (XAA) as a message: a citizen's opens ``x:<its id>``, the
    agency's lands on ``x:<the tweet it answers>``; the text is HTML-unescaped."""
    agency = is_account_id(account, author)
    return build(
        ctx,
        Draft(
            platform=P,
            kind=EventKind.tweet,
            platform_message_id=tweet_id,
            thread_key=f"x:{parent}" if agency and parent else f"x:{tweet_id}",
            account=account,
            author_id=author,
            text=unescape(text),
            platform_time=when,
            location=loc,
            attachments=attachments,
            is_agency_reply=agency,
            in_reply_to=f"x:{parent}" if parent else None,
        ),
    )


def _tweet_delete(account: Account, ev: dict[str, Any], path: str, ctx: DeliveryContext) -> Message:
    """``tweet_delete_events[]``: ``{status: {id, user_id}, timestamp_ms}``, a removal of
    that tweet (a citizen's deleted complaint withdraws it downstream)."""
    status = obj(ev.get("status"), f"{path}.status")
    tweet_id = ident(status, "id_str" if "id_str" in status else "id", f"{path}.status")
    author_key = "user_id_str" if "user_id_str" in status else "user_id"
    author = opt_ident(status, author_key, f"{path}.status")
    stamp = ev.get("timestamp_ms")
    return _removal(account, ctx, tweet_id, author, when(ctx, stamp, f"{path}.timestamp_ms"))


def _removal(
    account: Account, ctx: DeliveryContext, tweet_id: str, author: str | None, when: datetime
) -> Message:
    return build(
        ctx,
        Draft(
            platform=P,
            kind=EventKind.tweet,
            action=Action.remove,
            platform_message_id=tweet_id,
            thread_key=f"x:{tweet_id}",
            account=account,
            author_id=author,
            text=None,
            platform_time=when,
            is_agency_reply=is_account_id(account, author),
        ),
    )


def _tweet_time(tw: dict[str, Any], path: str, ctx: DeliveryContext) -> datetime:
    if tw.get("timestamp_ms") is not None:
        return from_epoch(tw.get("timestamp_ms"), f"{path}.timestamp_ms")
    created = tw.get("created_at")
    if isinstance(created, str):
        try:  # "Wed Oct 10 20:19:24 +0000 2018" → RFC 2822 order for the stdlib parser
            day, mon, dd, hms, off, year = created.split()
            return parsedate_to_datetime(f"{day}, {dd} {mon} {year} {hms} {off}")
        except ValueError:
            return from_iso(created, f"{path}.created_at")
    return ctx.received_at  # neither timestamp_ms nor created_at: the time it arrived


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


def _dm(account: Account, ev: dict[str, Any], path: str, ctx: DeliveryContext) -> Message:
    if ev.get("type", "message_create") != "message_create":
        skip("other_event")
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
        when=when(ctx, ev.get("created_timestamp"), f"{path}.created_timestamp"),
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
    text_fetched: bool = True,
) -> Message:
    agency = is_account_id(account, sender)
    citizen = recipient if agency else sender
    if not citizen:
        raise EntryError("missing_field", "cannot tell the citizen of an agency DM (no recipient)")
    if is_account_id(account, citizen):
        raise EntryError("malformed_entry", "the citizen side of the DM is the account itself")
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
            text_fetched=text_fetched,
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


_XAA_POSTS = {"post.create", "post.mention.create", "PostCreate", "PostMentionCreate"}
_XAA_SKIP_PREFIXES = (
    ("like.", "reaction"),
    ("dm.read", "receipt"),
    ("dm.indicate_typing", "receipt"),
    ("oauth.", "account_event"),
    ("profile.", "account_event"),
    ("follow.", "account_event"),
    ("mute.", "account_event"),
    ("block.", "account_event"),
    ("Profile", "account_event"),
    ("Follow", "account_event"),
)


def _xaa_event(raw: Any, path: str, ctx: DeliveryContext) -> list[Message]:
    event = obj(raw, path)
    etype = event.get("event_type")
    if not isinstance(etype, str):
        skip("other_event")
    known = etype in _XAA_DM or etype in _XAA_POSTS or etype in ("post.delete", "PostDelete")
    if not known:
        reason = next((r for prefix, r in _XAA_SKIP_PREFIXES if etype.startswith(prefix)), None)
        skip(reason or "other_event")  # news, Spaces, chat joins...
    payload = obj(event.get("payload"), f"{path}.payload")
    filt = opt_obj(event, "filter", path) or {}
    account_id = opt_ident(filt, "user_id", f"{path}.filter") or opt_ident(
        event, "for_user_id", path
    )
    account = lookup_account(ctx, P, account_id)
    ppath = f"{path}.payload"
    if etype in _XAA_POSTS:
        return [_xaa_post(account, payload, ppath, ctx)]
    if etype in ("post.delete", "PostDelete"):
        tweet_id = ident(payload, "id", ppath)
        author = opt_ident(payload, "author_id", ppath)
        return [_removal(account, ctx, tweet_id, author, _xaa_time(payload, ppath, ctx))]
    inner = payload.get("direct_message_events")
    if isinstance(inner, list):  # dm.sent / dm.received: the AAA event inside
        return [
            _dm(account, obj(ev, f"{ppath}.direct_message_events[{i}]"), ppath, ctx)
            for i, ev in enumerate(inner)
        ]
    return [_xaa_flat_dm(account, event, payload, path, ctx)]


def _xaa_flat_dm(
    account: Account,
    event: dict[str, Any],
    payload: dict[str, Any],
    path: str,
    ctx: DeliveryContext,
) -> Message:
    """A DM or XChat event whose payload is the message itself. XChat payloads are
    end-to-end encrypted (``encoded_event``): there is no text aduan can read, so the
    message says ``text_fetched=False`` (read it in X)."""
    ppath = f"{path}.payload"
    sender = ident(payload, "sender_id", ppath)
    dm_id = (
        opt_ident(payload, "id", ppath)
        or opt_ident(payload, "dm_event_id", ppath)
        or ident(event, "event_uuid", path)
    )
    recipient = opt_ident(payload, "recipient_id", ppath) or _other_participant(payload, account)
    text = opt_text(payload, "text", ppath)
    encrypted = text is None and "encoded_event" in payload
    return _dm_message(
        account,
        ctx,
        dm_id=dm_id,
        sender=sender,
        recipient=recipient,
        text=text,
        when=_xaa_time(payload, ppath, ctx),
        text_fetched=not encrypted,
    )


def _xaa_post(account: Account, post: dict[str, Any], path: str, ctx: DeliveryContext) -> Message:
    """A v2 Post object: ``text`` (``note_tweet.text`` for long posts), ``author_id``,
    ``referenced_tweets[{type: replied_to|quoted|retweeted, id}]``, ``geo.coordinates``."""
    refs = post.get("referenced_tweets")
    parent = None
    for ref in refs if isinstance(refs, list) else []:
        if isinstance(ref, dict):
            if ref.get("type") == "retweeted":
                skip("retweet")
            if ref.get("type") == "replied_to" and ref.get("id"):
                parent = str(ref["id"])
    note = opt_obj(post, "note_tweet", path)
    text = (opt_text(note, "text", f"{path}.note_tweet") if note else None) or opt_text(
        post, "text", path
    )
    geo = opt_obj(post, "geo", path)
    point = geo.get("coordinates") if geo else None
    pair = point.get("coordinates") if isinstance(point, dict) else None
    loc = location(pair[1], pair[0]) if isinstance(pair, list) and len(pair) == 2 else None
    return _tweet_message(
        account,
        ctx,
        tweet_id=ident(post, "id", path),
        author=ident(post, "author_id", path),
        text=text or "",
        parent=parent,
        when=_xaa_time(post, path, ctx),
        loc=loc,
    )


def _xaa_time(payload: dict[str, Any], path: str, ctx: DeliveryContext) -> datetime:
    """``created_at`` (ISO), ``created_timestamp``/``created_at_msec``/``timestamp_ms``
    (epoch); events that carry none (a deletion) take the time ingest received them."""
    created = payload.get("created_at")
    if isinstance(created, str):
        return from_iso(created, f"{path}.created_at")
    for key in ("created_timestamp", "created_at_msec", "timestamp_ms"):
        if payload.get(key) is not None:
            return from_epoch(payload[key], f"{path}.{key}")
    if created is not None:
        return from_epoch(created, f"{path}.created_at")
    return ctx.received_at


def _other_participant(payload: dict[str, Any], account: Account) -> str | None:
    """The citizen of a one-to-one DM: ``participant_ids`` or ``dm_conversation_id``
    (``"<user a>-<user b>"``) minus the account."""
    ids: list[Any] = []
    raw = payload.get("participant_ids")
    if isinstance(raw, list):
        ids = lst(raw, "participant_ids")
    else:
        conv = payload.get("dm_conversation_id") or payload.get("conversation_id")
        if isinstance(conv, str):
            ids = conv.replace(":", "-").split("-")
    others = [str(i) for i in ids if str(i) and not is_account_id(account, str(i))]
    return others[0] if len(others) == 1 else None
