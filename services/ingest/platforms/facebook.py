"""Facebook Page webhooks (``object: page``): ``feed`` comments and Messenger DMs.

Only ``feed`` items of type ``comment`` become messages (verbs ``add``, ``edited``,
``remove``); reactions, likes, shares, posts and hides are skipped and counted. Facebook
flattens replies to two levels: ``parent_id == post_id`` is a top-level comment, any other
``parent_id`` is the top-level comment being answered. Thread key:
``facebook:<post id>:<top-level comment id>``. The page's own comments (``from.id`` = page id)
are agency replies. Messenger messages and ``message_echoes`` arrive as ``messaging[]``."""

from __future__ import annotations

from typing import Any

from schemas.messages import Action, Attachment, EventKind, Message, Platform
from services.ingest.platforms import meta
from services.ingest.platforms.base import (
    DeliveryContext,
    Draft,
    ParseResult,
    build,
    ident,
    is_account_id,
    lookup_account,
    obj,
    opt_ident,
    opt_text,
    skip,
    when,
)

P = Platform.facebook
_VERBS = {"add": Action.add, "edited": Action.edit, "edit": Action.edit, "remove": Action.remove}


def parse(body: bytes, ctx: DeliveryContext) -> ParseResult:
    return meta.parse_envelope(
        body,
        ctx,
        P,
        "page",
        changes={"feed": _feed},
        messaging=lambda entry, event, path, c: meta.parse_messaging(P, entry, event, path, c),
    )


def _feed(
    entry: dict[str, Any], value: dict[str, Any], path: str, ctx: DeliveryContext
) -> list[Message] | None:
    item = value.get("item")
    if item != "comment":
        skip("reaction" if item in ("reaction", "like") else "other_event")
    verb = value.get("verb")
    action = _VERBS.get(verb) if isinstance(verb, str) else None
    if action is None:
        skip("moderation")  # hide / unhide / block: moderation, not conversation
    page_id = opt_ident(entry, "id", "entry")
    account = lookup_account(ctx, P, page_id)
    comment_id = ident(value, "comment_id", path)
    post_id = ident(value, "post_id", path)
    parent = opt_ident(value, "parent_id", path)
    is_reply = parent is not None and parent != post_id
    top = parent if is_reply else comment_id
    sender = value.get("from")
    # ``from`` may be withheld (a user who has not granted the app access): the comment is
    # kept with an unknown author, never dead-lettered.
    author = ident(obj(sender, f"{path}.from"), "id", f"{path}.from") if sender else None
    created = value.get("created_time", entry.get("time"))
    return [
        build(
            ctx,
            Draft(
                platform=P,
                kind=EventKind.reply if is_reply else EventKind.comment,
                action=action,
                platform_message_id=comment_id,
                thread_key=f"facebook:{post_id}:{top}",
                account=account,
                author_id=author,
                text=None if action is Action.remove else (opt_text(value, "message", path) or ""),
                platform_time=when(ctx, created, f"{path}.created_time"),
                attachments=_attachments(value),
                is_agency_reply=is_account_id(account, author),
                in_reply_to=f"facebook:{parent}" if is_reply else None,
            ),
        )
    ]


def _attachments(value: dict[str, Any]) -> tuple[Attachment, ...]:
    out = []
    for kind in ("photo", "video"):
        ref = value.get(kind)
        if isinstance(ref, str) and ref:
            out.append(Attachment(type="image" if kind == "photo" else "video", ref=ref))
    return tuple(out)
