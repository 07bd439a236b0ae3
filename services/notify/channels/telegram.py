"""``telegram``: the Bot API's ``sendMessage``, within Telegram's limits.

``POST {base}/bot<token>/sendMessage`` with ``chat_id`` and ``text``. Telegram allows about
30 messages a second per bot and about one a second per chat; beyond that it answers 429
with ``parameters.retry_after`` (seconds), which is honoured for that chat. The bot-wide
rate is a leaky bucket (aiolimiter); the per-chat spacing a next-allowed time per chat."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import orjson
from aiolimiter import AsyncLimiter

from services.notify.channels.base import (
    Channel,
    Item,
    Permanent,
    Transient,
    json_answer,
    post_json,
    retry_after_header,
)
from services.notify.render import Renderer


class TelegramChannel(Channel):
    name = "telegram"

    def __init__(
        self,
        base_url: str,
        token: str | None,
        renderer: Renderer,
        session: aiohttp.ClientSession,
        timeout: float,
        rate_per_s: float,
        chat_interval_s: float,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.renderer = renderer
        self.http = session
        self.timeout = timeout
        self.bot_limit = AsyncLimiter(max(1.0, rate_per_s), 1.0)
        self.chat_interval_s = chat_interval_s
        self.next_at: dict[str, float] = {}
        self.locks: dict[str, asyncio.Lock] = {}

    async def _wait_for_chat(self, chat: str) -> None:
        delay = self.next_at.get(chat, 0.0) - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)

    async def send(self, item: Item) -> str | None:
        if not self.token:
            raise Permanent("missing_secret", "the bot token variable is not set")
        chat = item.target
        lock = self.locks.setdefault(chat, asyncio.Lock())
        async with lock:  # one message at a time per chat, spaced
            await self._wait_for_chat(chat)
            async with self.bot_limit:
                body = orjson.dumps(
                    {
                        "chat_id": chat,
                        "text": self.renderer.render(item.notice).short,
                        "disable_web_page_preview": True,
                    }
                )
                url = f"{self.base_url}/bot{self.token}/sendMessage"
                status, headers, raw = await post_json(self.http, url, body, {}, self.timeout)
            self.next_at[chat] = time.monotonic() + self.chat_interval_s
            return self._read(status, headers, raw, chat)

    def _read(self, status: int, headers: Any, raw: bytes, chat: str) -> str | None:
        answer = json_answer(raw)
        if 200 <= status < 300 and answer.get("ok", True):
            result = answer.get("result") or {}
            mid = result.get("message_id") if isinstance(result, dict) else None
            return str(mid) if mid is not None else None
        desc = str(answer.get("description", ""))[:200]
        if status == 429:
            params = answer.get("parameters") or {}
            after = params.get("retry_after") if isinstance(params, dict) else None
            wait = float(after) if isinstance(after, int | float) else retry_after_header(headers)
            if wait is not None:
                self.next_at[chat] = time.monotonic() + wait
            raise Transient("throttled", desc, wait)
        if status >= 500:
            raise Transient(f"http_{status}", desc)
        raise Permanent(f"http_{status}", desc or f"Bot API answered {status}")
