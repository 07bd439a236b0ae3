"""Local stand-ins for notify's receivers in ``make run``: an SMTP sink and an HTTP sink
(agency webhooks and the Telegram Bot API), each printing one line per delivery so the live
tail shows who was told what. Nothing leaves the machine."""

from __future__ import annotations

import asyncio
import logging
import sys
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import orjson
import yaml
from aiohttp import web

from common.broker import free_port


def line(channel: str, to: str, what: str) -> None:
    what = what.replace("\n", " ")
    what = what if len(what) <= 90 else what[:89] + "…"
    print(f"NOTIFIED  {channel:<9} {to:<42} {what}", file=sys.stdout, flush=True)


class DemoSinks:
    def __init__(self) -> None:
        self.smtp_port = free_port()
        self.http_port = free_port()
        self.controller: Any = None
        self.runner: web.AppRunner | None = None

    async def start(self, registry_file: Path, work: Path) -> dict[str, str]:
        """Start both sinks; returns the environment notify (and the others) should use,
        with a copy of the registry whose webhook endpoints point at the HTTP sink."""
        from aiosmtpd.controller import Controller

        loop = asyncio.get_running_loop()  # the SMTP sink runs in its own thread

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                msg = message_from_bytes(envelope.original_content, policy=policy.default)
                loop.call_soon_threadsafe(line, "email", str(msg["To"]), str(msg["Subject"]))
                return "250 2.0.0 delivered to the demo sink"

        # aiosmtpd logs every SMTP command at INFO: four out of five lines of the live tail.
        logging.getLogger("mail.log").setLevel(logging.WARNING)
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.smtp_port)
        self.controller.start()

        async def webhook(request: web.Request) -> web.Response:
            body = orjson.loads(await request.read())
            notice = body.get("notice", {})
            what = " ".join(
                str(x)
                for x in (
                    notice.get("event_type"),
                    body.get("tracking_number"),
                    notice.get("agency_id"),
                )
            )
            line("webhook", request.match_info["endpoint"], what)
            return web.Response(status=204)

        async def telegram(request: web.Request) -> web.Response:
            body = orjson.loads(await request.read())
            line("telegram", str(body.get("chat_id")), str(body.get("text", "")))
            return web.json_response({"ok": True, "result": {"message_id": 1}})

        async def graph(request: web.Request) -> web.Response:
            """A Graph API stand-in for the mention fetcher: every mentioned comment or
            caption reads the same demo complaint."""
            text = "Lampu jalan di Jl. Tunjungan mati sejak kemarin @pemkot"
            return web.json_response({"id": request.match_info["node"], "text": text,
                                      "caption": text})  # fmt: skip

        app = web.Application()
        app.router.add_get("/graph/{node}", graph)
        app.router.add_post("/hook/{endpoint}", webhook)
        app.router.add_post("/bot{token}/sendMessage", telegram)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.http_port).start()

        data = yaml.safe_load(registry_file.read_text(encoding="utf-8"))
        for hook in data.get("webhooks", []):
            hook["url"] = f"http://127.0.0.1:{self.http_port}/hook/{hook['id']}"
        demo_registry = work / "demo-registry.yaml"
        demo_registry.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
        return {
            "ADUAN_REGISTRY_FILE": str(demo_registry),
            "ADUAN_NOTIFY_SMTP_HOST": "127.0.0.1",
            "ADUAN_NOTIFY_SMTP_PORT": str(self.smtp_port),
            "ADUAN_NOTIFY_SMTP_STARTTLS": "false",
            "ADUAN_NOTIFY_SMTP_FROM": "aduan-demo@example.go.id",
            "ADUAN_NOTIFY_TELEGRAM_BASE_URL": f"http://127.0.0.1:{self.http_port}",
            "ADUAN_MENTIONS_GRAPH_BASE_URL": f"http://127.0.0.1:{self.http_port}/graph",
            "ADUAN_INSTAGRAM_ACCESS_TOKEN": "demo-graph-token",
        }

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
        if self.controller is not None:
            self.controller.stop()
