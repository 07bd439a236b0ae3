"""``whatsapp``: a Cloud API *template* message to an agency officer's number.

Messages a business starts (a notification to an agency head is one) must use a template
approved by Meta; free text is allowed only within 24 hours of the recipient's last
message. ``POST {base}/{version}/{phone-number-id}/messages`` with ``messaging_product:
"whatsapp"``, ``to``, ``type: "template"`` and the body parameters the template declares:
{{1}} what happened, {{2}} the agency, {{3}} the tracking number, {{4}} the due time,
{{5}} the desk link (docs/notify.md has the template text to submit for approval)."""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson

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

RATE_LIMIT_CODES = {4, 80007, 130429, 131048, 131056}
"""Cloud API error codes that mean "slow down" (retry), whatever the HTTP status."""


class WhatsAppChannel(Channel):
    name = "whatsapp"

    def __init__(
        self,
        base_url: str,
        version: str,
        phone_number_id: str | None,
        token: str | None,
        template: str,
        language: str,
        renderer: Renderer,
        session: aiohttp.ClientSession,
        timeout: float,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.version = version
        self.phone_number_id = phone_number_id
        self.token = token
        self.template = template
        self.language = language
        self.renderer = renderer
        self.http = session
        self.timeout = timeout

    def payload(self, item: Item) -> dict[str, Any]:
        ctx = self.renderer.context(item.notice)
        params = [ctx["headline"], ctx["agency_name"], ctx["tracking"], ctx["due_local"] or "-",
                  ctx["link"]]  # fmt: skip
        return {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": item.target,
            "type": "template",
            "template": {
                "name": self.template,
                "language": {"code": self.language},
                "components": [
                    {"type": "body", "parameters": [{"type": "text", "text": p} for p in params]}
                ],
            },
        }

    async def send(self, item: Item) -> str | None:
        if not self.token or not self.phone_number_id:
            raise Permanent("missing_secret", "WhatsApp token or phone-number id is not set")
        url = f"{self.base_url}/{self.version}/{self.phone_number_id}/messages"
        status, headers, raw = await post_json(
            self.http,
            url,
            orjson.dumps(self.payload(item)),
            {"Authorization": f"Bearer {self.token}"},
            self.timeout,
        )
        return read_graph_answer(status, headers, raw, "messages")


def read_graph_answer(status: int, headers: Any, raw: bytes, kind: str) -> str | None:
    """A Graph / Cloud API answer: the new object's id, or the error mapped onto retries."""
    answer = json_answer(raw)
    if 200 <= status < 300:
        if kind == "messages":
            msgs = answer.get("messages") or [{}]
            return str(msgs[0].get("id")) if isinstance(msgs[0], dict) else None
        found = answer.get("id") or answer.get("message_id")
        return str(found) if found is not None else None
    error = answer.get("error") if isinstance(answer.get("error"), dict) else {}
    code = error.get("code") if isinstance(error, dict) else None
    detail = f"({code}) {error.get('message', '')}"[:200] if error else f"answered {status}"
    if status == 429 or status >= 500 or code in RATE_LIMIT_CODES:
        raise Transient("throttled" if status == 429 else f"http_{status}", detail,
                        retry_after_header(headers))  # fmt: skip
    raise Permanent(f"http_{status}", detail)
