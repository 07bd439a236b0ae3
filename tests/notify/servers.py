"""Real local servers standing in for the receivers: a webhook receiver verifying the HMAC,
the Telegram Bot API and the WhatsApp Cloud API asserting the documented request shapes,
and an SMTP submission server with STARTTLS and AUTH (aiosmtpd)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import orjson
from aiohttp import web

from common.broker import free_port

Fault = Callable[[int], web.Response | None]
"""Given the 1-based request number, an answer to give instead of the normal one."""


@dataclass
class Received:
    at: float
    headers: dict[str, str]
    body: bytes
    json: Any


@dataclass
class HttpStub:
    """An aiohttp server; ``requests`` holds every request it answered 2xx, ``seen`` every
    request it got; ``fault`` may answer otherwise; ``hold`` (an Event) keeps answers back."""

    port: int = field(default_factory=free_port)
    requests: list[Received] = field(default_factory=list)
    seen: int = 0
    fault: Fault | None = None
    hold: asyncio.Event | None = None
    hold_after: int = 0
    """With ``hold``: requests after the first ``hold_after`` wait for it before answering."""
    runner: web.AppRunner | None = None
    held: int = 0
    arrivals: list[float] = field(default_factory=list)
    """time.monotonic() of every request, answered or not."""

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, routes: list[web.RouteDef]) -> HttpStub:
        app = web.Application()
        app.add_routes(routes)
        # handler_cancellation: a request whose sender vanished (SIGKILL) is not answered
        # and so not counted as delivered.
        self.runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    async def _answer(
        self, request: web.Request, check: Callable[[Received], web.Response | None]
    ) -> web.Response:
        self.seen += 1
        self.arrivals.append(time.monotonic())
        n = self.seen
        body = await request.read()
        got = Received(time.time(), dict(request.headers), body, orjson.loads(body))
        if self.fault is not None and (resp := self.fault(n)) is not None:
            return resp
        bad = check(got)
        if bad is not None:
            return bad
        if self.hold is not None and n > self.hold_after and not self.hold.is_set():
            self.held += 1
            await self.hold.wait()
            self.held -= 1
            transport = request.transport
            if transport is None or transport.is_closing():
                return web.Response(status=499)  # the sender is gone: not delivered
        self.requests.append(got)
        return web.json_response(self.ok_body(got, len(self.requests)))

    def ok_body(self, got: Received, n: int) -> Any:
        return {"ok": True}


def sign(secret: str, timestamp: str, body: bytes) -> str:
    return (
        "sha256="
        + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    )


@dataclass
class WebhookReceiver(HttpStub):
    """Verifies ``X-Aduan-Signature`` over ``timestamp.body`` (constant-time) and a fresh
    timestamp; a forged or stale request gets 401 and is not counted."""

    secret: str = "webhook-secret"
    forged: int = 0

    async def start_receiver(self) -> WebhookReceiver:
        await self.start([web.post("/hook", self.handle)])
        return self

    @property
    def url(self) -> str:
        return f"{self.base}/hook"

    async def handle(self, request: web.Request) -> web.Response:
        return await self._answer(request, self._verify)

    def _verify(self, got: Received) -> web.Response | None:
        ts = got.headers.get("X-Aduan-Timestamp", "")
        sig = got.headers.get("X-Aduan-Signature", "")
        fresh = ts.isdigit() and abs(time.time() - int(ts)) < 300
        if not fresh or not hmac.compare_digest(sig, sign(self.secret, ts, got.body)):
            self.forged += 1
            return web.Response(status=401, text="bad signature")
        return None

    def deliveries(self) -> list[str]:
        return [r.headers["X-Aduan-Delivery"] for r in self.requests]


@dataclass
class TelegramStub(HttpStub):
    """``POST /bot<token>/sendMessage`` with ``chat_id`` and ``text`` (Bot API)."""

    token: str = "123456:TEST-token"

    async def start_api(self) -> TelegramStub:
        await self.start([web.post("/bot{token}/sendMessage", self.handle)])
        return self

    async def handle(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        return await self._answer(request, self._shape)

    def _shape(self, got: Received) -> web.Response | None:
        body = got.json
        if not isinstance(body.get("chat_id"), str | int) or not isinstance(body.get("text"), str):
            return web.json_response(
                {
                    "ok": False,
                    "error_code": 400,
                    "description": "Bad Request: message text is empty",
                },
                status=400,
            )
        return None

    def ok_body(self, got: Received, n: int) -> Any:
        return {"ok": True, "result": {"message_id": 1000 + n, "chat": {"id": got.json["chat_id"]}}}


@dataclass
class WhatsAppStub(HttpStub):
    """``POST /{version}/{phone-number-id}/messages`` (Cloud API template message)."""

    token: str = "wa-token"
    phone_number_id: str = "106540352242922"

    async def start_api(self) -> WhatsAppStub:
        await self.start([web.post("/{version}/{pnid}/messages", self.handle)])
        return self

    async def handle(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"error": {"code": 190, "message": "bad token"}}, status=401)
        if request.match_info["pnid"] != self.phone_number_id:
            return web.json_response({"error": {"code": 100, "message": "unknown id"}}, status=400)
        return await self._answer(request, self._shape)

    def _shape(self, got: Received) -> web.Response | None:
        b = got.json
        ok = (
            b.get("messaging_product") == "whatsapp"
            and isinstance(b.get("to"), str)
            and b.get("type") == "template"
            and isinstance(b.get("template", {}).get("name"), str)
            and isinstance(b["template"].get("language", {}).get("code"), str)
        )
        if not ok:
            return web.json_response(
                {"error": {"code": 100, "message": "Invalid parameter"}}, status=400
            )
        return None

    def ok_body(self, got: Received, n: int) -> Any:
        return {
            "messaging_product": "whatsapp",
            "contacts": [{"input": got.json["to"], "wa_id": got.json["to"]}],
            "messages": [{"id": f"wamid.TEST{n:06d}"}],
        }


# --- SMTP ---------------------------------------------------------------------------------
@dataclass
class SmtpSink:
    """aiosmtpd on a free port requiring STARTTLS before AUTH (LOGIN/PLAIN) and AUTH
    before mail; ``messages`` holds what arrived, ``sessions`` counts connections."""

    server_context: ssl.SSLContext
    username: str = "notify"
    password: str = "s3cret"
    port: int = field(default_factory=free_port)
    messages: list[EmailMessage] = field(default_factory=list)
    sessions: int = 0
    controller: Any = None
    data_commands: int = 0
    unknown: set[str] = field(default_factory=set)
    """Recipients answered 550 (no such mailbox)."""
    defer: Callable[[], bool] | None = None
    """When it returns True, messages are answered 451 (try again later) and not kept."""

    def start(self) -> SmtpSink:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword

        sink = self

        class Handler:
            async def handle_RCPT(
                self, server: Any, session: Any, envelope: Any, address: str, options: Any
            ) -> str:
                if address in sink.unknown:
                    return "550 5.1.1 no such mailbox"
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                sink.data_commands += 1
                if sink.defer is not None and sink.defer():
                    return "451 4.3.0 try again later"
                sink.messages.append(
                    message_from_bytes(envelope.original_content, policy=policy.default)  # type: ignore[arg-type]
                )
                return "250 2.0.0 queued"

        def authenticator(
            server: Any, session: Any, envelope: Any, mechanism: str, data: Any
        ) -> AuthResult:
            ok = isinstance(data, LoginPassword) and (
                data.login.decode() == sink.username and data.password.decode() == sink.password
            )
            return AuthResult(success=ok, handled=False)

        class CountingController(Controller):  # type: ignore[misc]
            def factory(self) -> Any:
                sink.sessions += 1
                return super().factory()

        self.controller = CountingController(
            Handler(),
            hostname="127.0.0.1",
            port=self.port,
            tls_context=self.server_context,
            require_starttls=True,
            authenticator=authenticator,
            auth_required=True,
            auth_require_tls=True,
        )
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()


@dataclass
class GraphStub(HttpStub):
    """Graph API comment replies: ``POST /{version}/{comment-id}/replies`` (Instagram) and
    ``/{comment-id}/comments`` (Facebook) with ``message``, bearer token."""

    token: str = "page-token"
    paths: list[str] = field(default_factory=list)
    before_answer: Callable[[], None] | None = None
    """Called as each request arrives (e.g. to check what was written before it)."""

    async def start_api(self) -> GraphStub:
        await self.start([web.post("/{version}/{object_id}/{edge}", self.handle)])
        return self

    async def handle(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response(
                {"error": {"code": 190, "message": "Invalid OAuth"}}, status=401
            )
        if request.match_info["edge"] not in ("replies", "comments"):
            return web.json_response(
                {"error": {"code": 100, "message": "Unknown path"}}, status=400
            )
        self.paths.append(request.path)
        if self.before_answer is not None:
            self.before_answer()
        return await self._answer(request, self._shape)

    def _shape(self, got: Received) -> web.Response | None:
        if set(got.json) != {"message"} or not isinstance(got.json["message"], str):
            return web.json_response(
                {"error": {"code": 100, "message": "(#100) message"}}, status=400
            )
        return None

    def ok_body(self, got: Received, n: int) -> Any:
        return {"id": f"1790099{n:08d}"}


@dataclass
class XStub(HttpStub):
    """X API v2 ``POST /2/tweets`` with ``text`` and ``reply.in_reply_to_tweet_id``."""

    token: str = "x-user-token"

    async def start_api(self) -> XStub:
        await self.start([web.post("/2/tweets", self.handle)])
        return self

    async def handle(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"title": "Unauthorized", "status": 401}, status=401)
        return await self._answer(request, self._shape)

    def _shape(self, got: Received) -> web.Response | None:
        b = got.json
        reply = b.get("reply")
        ok = isinstance(b.get("text"), str) and isinstance(reply, dict) and isinstance(
            reply.get("in_reply_to_tweet_id"), str)  # fmt: skip
        if not ok:
            return web.json_response({"title": "Invalid Request", "status": 400}, status=400)
        return None

    def ok_body(self, got: Received, n: int) -> Any:
        return {"data": {"id": f"18000000000000{n:05d}", "text": got.json["text"]}}
