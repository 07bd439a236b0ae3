"""``reply``: the citizen acknowledgement, on the platform where the citizen wrote.

Instagram comment reply ``POST {graph}/{version}/{comment-id}/replies``, Facebook comment
reply ``POST {graph}/{version}/{comment-id}/comments`` (both with ``message`` and the Page /
Instagram account token), X reply ``POST {x}/2/tweets`` with ``reply.in_reply_to_tweet_id``
(OAuth 2.0 user token of the agency's account). The text: a thank-you, the tracking number
(``ADU-…``) and the first-response deadline in the agency's time zone.

Before the reply is sent, an ``auto_acknowledged`` command carrying the digest of its text
is written to ``aduan.commands.v1`` (keyed by the thread, so route sees it on the
complaint's partition): when the platform delivers the reply back as the agency's own
message, route knows it is not the agency's answer. Writing it *before* sending means the
echo can never overtake it through this process; its id (``autoack:<complaint>``) makes a
retried delivery's second command a no-op."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson

from common import codecs
from common.produce import Output, RecordSink, send_all_or_raise
from common.registry import Registry
from schemas.commands import Command, CommandType, ack_text_digest
from schemas.messages import Platform
from services.notify.channels.base import (
    Channel,
    Item,
    Permanent,
    Transient,
    json_answer,
    post_json,
)
from services.notify.channels.whatsapp import read_graph_answer
from services.notify.render import Renderer
from services.notify.settings import NotifySettings

SecretOf = Callable[[str], str | None]


def acknowledgement_command(item: Item, text: str, now: datetime) -> Command:
    n = item.notice
    return Command(
        command_id=f"autoack:{n.complaint_id}",
        type=CommandType.auto_acknowledged,
        complaint_id=n.complaint_id,
        thread_key=n.thread_key,
        issued_at=now,
        actor="notify",
        text_sha256=ack_text_digest(text),
    )


class ReplyChannel(Channel):
    """One lane per platform (``reply:instagram``, ``reply:facebook``, ``reply:x``)."""

    name = "reply"

    def __init__(
        self,
        platform: str,
        ns: NotifySettings,
        registry: Registry,
        secret: SecretOf,
        renderer: Renderer,
        http: aiohttp.ClientSession,
        sink: RecordSink,
        commands_topic: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.platform = platform
        self.ns = ns
        self.registry = registry
        self.secret = secret
        self.renderer = renderer
        self.http = http
        self.sink = sink
        self.commands_topic = commands_topic
        self.clock = clock

    def request(self, item: Item, text: str) -> tuple[str, dict[str, Any]]:
        """(URL, JSON body) of the documented send call for this reply."""
        target = item.notice.reply
        assert target is not None  # planned only with a target
        if self.platform == "x":
            body = {"text": text, "reply": {"in_reply_to_tweet_id": target.platform_message_id}}
            return f"{self.ns.x_base_url.rstrip('/')}/2/tweets", body
        edge = "replies" if self.platform == "instagram" else "comments"
        base = f"{self.ns.graph_base_url.rstrip('/')}/{self.ns.whatsapp_api_version}"
        return f"{base}/{target.platform_message_id}/{edge}", {"message": text}

    async def send(self, item: Item) -> str | None:
        target = item.notice.reply
        if target is None:
            raise Permanent("no_reply_target", "the notice names no comment or tweet")
        account = self.registry.account(Platform(target.platform), target.account_id)
        if account is None or not account.acknowledge or not account.reply_token_env:
            raise Permanent("acknowledge_off", "the account no longer has acknowledge: true")
        token = self.secret(account.reply_token_env)
        if not token:
            raise Permanent("missing_secret", "the account's reply_token_env is not set")
        text = self.renderer.acknowledgement(item.notice)
        command = acknowledgement_command(item, text, datetime.fromtimestamp(self.clock(), UTC))
        try:
            await send_all_or_raise(
                self.sink,
                [
                    Output(
                        self.commands_topic, item.notice.thread_key.encode(), codecs.dumps(command)
                    )
                ],
                timeout=10,
            )
        except Exception as exc:
            raise Transient("command_not_written", type(exc).__name__) from exc
        url, body = self.request(item, text)
        status, headers, raw = await post_json(
            self.http, url, orjson.dumps(body), {"Authorization": f"Bearer {token}"},
            self.ns.http_timeout_s,
        )  # fmt: skip
        if self.platform == "x":
            return read_x_answer(status, headers, raw, self.clock())
        return read_graph_answer(status, headers, raw, "object")


def read_x_answer(status: int, headers: Any, raw: bytes, now: float) -> str | None:
    """X API v2: ``{"data": {"id": ...}}``; 429 carries ``x-rate-limit-reset`` (epoch s)."""
    answer = json_answer(raw)
    if 200 <= status < 300:
        data = answer.get("data") if isinstance(answer.get("data"), dict) else {}
        found = data.get("id") if data else None
        return str(found) if found is not None else None
    detail = str(answer.get("detail") or answer.get("title") or f"answered {status}")[:200]
    if status == 429 or status >= 500:
        reset = headers.get("x-rate-limit-reset")
        after = max(0.0, float(reset) - now) if reset and reset.isdigit() else None
        raise Transient("throttled" if status == 429 else f"http_{status}", detail, after)
    raise Permanent(f"http_{status}", detail)
