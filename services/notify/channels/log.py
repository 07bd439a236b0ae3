"""``log``: writes the notice as one log line (demos, and a channel to test rules with)."""

from __future__ import annotations

import logging

from services.notify.channels.base import Channel, Item
from services.notify.render import Renderer

log = logging.getLogger("aduan.notify.log")


class LogChannel(Channel):
    name = "log"

    def __init__(self, renderer: Renderer) -> None:
        self.renderer = renderer

    async def send(self, item: Item) -> str | None:
        text = self.renderer.render(item.notice).short.replace("\n", " | ")
        log.info("to %s: %s", item.target, text)
        return None
