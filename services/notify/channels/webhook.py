"""``webhook``: a signed JSON POST to an agency's own system or the SP4N-LAPOR! bridge.

Signed like aduan's inbound generic webhook (docs/ingest.md), so one verification routine
serves both directions: ``X-Aduan-Signature: sha256=<hex HMAC-SHA256(secret,
"<X-Aduan-Timestamp>." + body)>``. The timestamp is inside the MAC so a captured request
cannot be replayed later with a fresh one; receivers refuse stale timestamps (five minutes
is what aduan itself allows). ``X-Aduan-Delivery`` is the same on every retry of one
delivery: a receiver that saw it already answers 2xx and does nothing."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable

import aiohttp
import orjson

from services.notify.channels.base import Channel, Item, Permanent, post_json, raise_for_http
from services.notify.render import Renderer, tracking_number


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class WebhookChannel(Channel):
    """One endpoint of the registry's ``webhooks`` (one lane each)."""

    name = "webhook"

    def __init__(
        self,
        url: str,
        secret: str | None,
        renderer: Renderer,
        session: aiohttp.ClientSession,
        timeout: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = url
        self.secret = secret
        self.renderer = renderer
        self.http = session
        self.timeout = timeout
        self.clock = clock

    def body(self, item: Item) -> bytes:
        n = item.notice
        return orjson.dumps(
            {
                "delivery_id": item.delivery_id,
                "tracking_number": tracking_number(n.complaint_id),
                "link": self.renderer.link(n.complaint_id),
                # already JSON: embedded as is rather than dumped to a dict and back
                "notice": orjson.Fragment(n.model_dump_json()),
            }
        )

    async def send(self, item: Item) -> str | None:
        if not self.secret:
            raise Permanent("missing_secret", "the endpoint's secret variable is not set")
        body = self.body(item)
        timestamp = str(int(self.clock()))
        headers = {
            "X-Aduan-Timestamp": timestamp,
            "X-Aduan-Signature": webhook_signature(self.secret, timestamp, body),
            "X-Aduan-Delivery": item.delivery_id,
            "X-Aduan-Event": item.notice.event_type,
        }
        status, resp_headers, _ = await post_json(self.http, self.url, body, headers, self.timeout)
        raise_for_http(status, resp_headers, f"receiver answered {status}")
        return None
