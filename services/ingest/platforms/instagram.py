"""Instagram webhooks (``object: instagram``): comments, mentions and DMs.

Thread keys: ``instagram:<media id>:<top-level comment id>`` for comments and replies (an
Instagram reply's ``parent_id`` is always the top-level comment, so one level is enough);
``instagram:dm:<account id>:<citizen pseudonym>`` for DMs. The agency's own comments have
``from.id`` equal to the account id and land on the thread of the comment they answer."""

from __future__ import annotations

from typing import Any

from schemas.messages import EventKind, Message, Platform
from services.ingest.platforms import meta
from services.ingest.platforms.base import (
    DeliveryContext,
    Draft,
    ParseResult,
    build,
    ident,
    is_account_id,
    lookup_account,
    opt_ident,
    opt_obj,
    opt_text,
    when,
)

P = Platform.instagram


def parse(body: bytes, ctx: DeliveryContext) -> ParseResult:
    return meta.parse_envelope(
        body,
        ctx,
        P,
        "instagram",
        changes={"comments": _comment, "live_comments": _comment, "mentions": _mention},
        messaging=lambda entry, event, path, c: meta.parse_messaging(P, entry, event, path, c),
    )


def _comment(
    entry: dict[str, Any], value: dict[str, Any], path: str, ctx: DeliveryContext
) -> list[Message]:
    account = lookup_account(ctx, P, opt_ident(entry, "id", "entry"))
    comment_id = ident(value, "id", path)
    # The older comments shape carries only id and text: the media is then unknown, and so
    # may the author be (the comment is kept: a citizen wrote it).
    media = opt_obj(value, "media", path)
    media_id = (opt_ident(media, "id", f"{path}.media") if media else None) or opt_ident(
        value, "media_id", path
    )
    sender = opt_obj(value, "from", path)
    author = opt_ident(sender, "id", f"{path}.from") if sender else None
    parent = opt_ident(value, "parent_id", path)
    return [
        build(
            ctx,
            Draft(
                platform=P,
                kind=EventKind.reply if parent else EventKind.comment,
                platform_message_id=comment_id,
                thread_key=f"instagram:{media_id or 'media'}:{parent or comment_id}",
                account=account,
                author_id=author,
                text=opt_text(value, "text", path) or "",
                platform_time=when(ctx, entry.get("time"), "entry.time"),
                is_agency_reply=is_account_id(account, author),
                in_reply_to=f"instagram:{parent}" if parent else None,
            ),
        )
    ]


def _mention(
    entry: dict[str, Any], value: dict[str, Any], path: str, ctx: DeliveryContext
) -> list[Message]:
    return [build(ctx, mention_draft(entry, value, path, ctx))]


def mention_draft(
    entry: dict[str, Any], value: dict[str, Any], path: str, ctx: DeliveryContext
) -> Draft:
    """A mention carries only ``media_id`` (caption mention) and maybe ``comment_id``: the
    text is fetched from the Graph API by ``services.ingest.mentions``, so the message says
    ``text_fetched=False``. Its id is prefixed ``mention:`` because the same comment may
    also arrive as a ``comments`` event with its text, which must not be deduplicated away.
    The fetcher builds the same draft again and completes it (an edit of this message)."""
    account = lookup_account(ctx, P, opt_ident(entry, "id", "entry"))
    media_id = ident(value, "media_id", path)
    comment_id = opt_ident(value, "comment_id", path)
    target = comment_id or media_id
    return Draft(
        platform=P,
        kind=EventKind.mention,
        message_id=f"instagram:mention:{target}",
        platform_message_id=target,
        thread_key=f"instagram:{media_id}:{comment_id or 'caption'}",
        account=account,
        author_id=None,
        text=None,
        text_fetched=False,
        platform_time=when(ctx, entry.get("time"), "entry.time"),
    )
