"""The one interface every channel adapter implements, and the errors that steer retries.

An adapter sends one delivery and returns a receipt (the platform's message id, or None),
or raises ``Transient`` (worth retrying: timeouts, connection errors, 429, 5xx; may carry
the server's ``retry_after``) or ``Permanent`` (a 4xx retrying cannot fix: the delivery is
dead-lettered with the reason). Retrying itself is the dispatcher's job (tenacity), so an
adapter is only the protocol: what request to make and how to read the answer."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import aiohttp
import orjson

from services.notify.plan import Notice

DETAIL_CHARS = 200


class Transient(Exception):
    """Try again later; ``retry_after`` (seconds) is what the server asked for, if it did."""

    def __init__(self, reason: str, detail: str = "", retry_after: float | None = None) -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
        self.retry_after = retry_after


class Permanent(Exception):
    """Retrying cannot help (bad address, unknown chat, refused payload): dead-letter it."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Item:
    """A delivery as the channel sees it: its row id, key and notice."""

    id: int
    event_id: str
    channel: str
    target: str
    notice: Notice
    event_time: datetime
    attempts: int = 0

    @property
    def delivery_id(self) -> str:
        """Stable across retries and restarts: receivers may drop repeats by it."""
        return f"{self.event_id}|{self.channel}:{self.target}"


class Sender(Protocol):
    async def send(self, item: Item) -> str | None: ...


class Channel:
    """Base adapter. ``batch`` > 1 lets the dispatcher hand several items to one
    ``session`` (e-mail reuses one SMTP connection per batch); ``concurrency`` caps the
    sessions in flight at once (None: the dispatcher's setting)."""

    name = "channel"
    batch = 1
    concurrency: int | None = None

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[Sender]:
        yield self

    async def send(self, item: Item) -> str | None:
        raise NotImplementedError


class MissingChannel(Channel):
    """A lane whose channel is no longer configured (a webhook endpoint removed from the
    registry while deliveries to it were pending): each is dead-lettered with the reason."""

    def __init__(self, lane: str) -> None:
        self.lane = lane

    async def send(self, item: Item) -> str | None:
        raise Permanent("unknown_channel", f"channel {self.lane!r} is not configured")


def retry_after_header(headers: Mapping[str, str]) -> float | None:
    """``Retry-After`` in seconds (HTTP-date forms are rare for APIs and read as None)."""
    value = headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def raise_for_http(status: int, headers: Mapping[str, str], detail: str = "") -> None:
    """Map an HTTP answer onto the retry rules: 2xx ok; 408, 425, 429 and 5xx transient
    (honouring ``Retry-After``); any other status permanent, named in the reason."""
    if 200 <= status < 300:
        return
    if status in (408, 425, 429) or status >= 500:
        reason = "throttled" if status == 429 else f"http_{status}"
        raise Transient(reason, detail[:DETAIL_CHARS], retry_after_header(headers))
    raise Permanent(f"http_{status}", detail[:DETAIL_CHARS] or f"receiver answered {status}")


def json_answer(raw: bytes) -> dict[str, Any]:
    """An API's answer body as a JSON object; empty, malformed or non-object bodies read as
    ``{}`` (the status then decides: a receiver's broken error page is not a crash)."""
    try:
        answer = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError:
        return {}
    return answer if isinstance(answer, dict) else {}


async def post_json(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    timeout: float,
) -> tuple[int, Mapping[str, str], bytes]:
    """POST and read the answer; network failures and timeouts become ``Transient``."""
    try:
        async with session.post(
            url,
            data=body,
            headers={"Content-Type": "application/json", **headers},
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as resp:
            return resp.status, resp.headers, await resp.read()
    except TimeoutError as exc:
        raise Transient("timeout", f"no answer within {timeout:g}s") from exc
    except aiohttp.ClientError as exc:
        raise Transient("network", type(exc).__name__) from exc
