"""Desk inputs made by the real route state machine, not written by hand.

``Timeline`` drives ``services.route.clocks.Router`` (the demo registry and SLA policies)
with classified messages, commands and ticks, and keeps every event it emits in route's
processing order, encoded as the records the desk reads: JSON bytes, a record timestamp that
grows in processing order, and per-topic offsets."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from common import codecs
from schemas.commands import Command, CommandType
from schemas.routes import RouteEvent
from services.desk.events import DeskEvent, Source, parse
from services.route.clocks import ComplaintState
from tests.route.factories import command, message, router

WIB = ZoneInfo("Asia/Jakarta")
MON_9 = datetime(2026, 11, 23, 9, 0, tzinfo=WIB)  # first response due 14:00 WIB


@dataclass
class Record:
    """A consumed record as the desk sees it."""

    source: Source
    value: bytes
    ts_ms: int
    partition: int
    offset: int
    key: bytes

    def event(self) -> DeskEvent:
        return parse(self.source, self.value, self.ts_ms, self.partition, self.offset)


@dataclass
class Timeline:
    router: Any = field(default_factory=router)
    states: dict[str, ComplaintState | None] = field(default_factory=dict)
    records: list[Record] = field(default_factory=list)
    partition: int = 0
    _ts: itertools.count[int] = field(
        default_factory=lambda: itertools.count(int(time.time() * 1000))
    )
    _offsets: dict[Source, itertools.count[int]] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def _emit(self, source: Source, value: Any, key: str) -> None:
        counter = self._offsets.setdefault(source, itertools.count())
        self.records.append(
            Record(source, codecs.dumps(value), next(self._ts), self.partition, next(counter),
                   key.encode())
        )  # fmt: skip

    def _events(self, thread: str, events: list[Any]) -> None:
        for e in events:
            self._emit(Source.routes if isinstance(e, RouteEvent) else Source.sla, e, thread)

    def complaint(
        self, thread: str, at: datetime = MON_9, text: str = "jalan berlubang di depan pasar",
        **kw: Any,
    ) -> str:  # fmt: skip
        mid = f"m{next(self._ids)}"
        state, events = self.router.on_message(None, message(mid, thread, at, text=text, **kw))
        self.states[thread] = state
        self._events(thread, events)
        return f"instagram:{mid}"

    def reply(self, thread: str, at: datetime) -> None:
        mid = f"r{next(self._ids)}"
        state, events = self.router.on_message(
            self.states[thread], message(mid, thread, at, agency_reply=True)
        )
        self.states[thread] = state
        self._events(thread, events)

    def command(
        self, thread: str, ctype: CommandType, at: datetime, agency_id: str | None = None,
        reason: str | None = None, actor: str = "operator:1",
    ) -> Command:  # fmt: skip
        state = self.states[thread]
        assert state is not None
        cmd = command(f"c{next(self._ids)}", ctype, state.complaint_id, thread, at, agency_id,
                      reason).model_copy(update={"actor": actor})  # fmt: skip
        self._emit(Source.commands, cmd, thread)
        new, events = self.router.on_command(state, cmd)
        self.states[thread] = new
        self._events(thread, events)
        return cmd

    def tick(self, thread: str, at: datetime) -> None:
        state, events = self.router.on_tick(self.states[thread], at.timestamp())
        self.states[thread] = state
        self._events(thread, events)

    def events(self) -> list[DeskEvent]:
        return [r.event() for r in self.records]


def full_story(t: Timeline, thread: str = "instagram:t1") -> str:
    """Routed, warned, overdue, escalated twice, rerouted, answered, resolved, reopened."""
    cid = t.complaint(thread)
    t.command(thread, CommandType.acknowledge, MON_9 + timedelta(minutes=5), actor="budi")
    for hours in (4, 6, 8, 30):  # warning, overdue, escalation level 1 and 2 (business time)
        t.tick(thread, MON_9 + timedelta(hours=hours))
    t.command(thread, CommandType.reroute, MON_9 + timedelta(hours=31), "sby-environment",
              "bukan wewenang: saluran air")  # fmt: skip
    t.reply(thread, MON_9 + timedelta(hours=32))
    t.command(thread, CommandType.resolve, MON_9 + timedelta(hours=33), reason="sudah diperbaiki")
    t.command(thread, CommandType.reopen, MON_9 + timedelta(hours=34), reason="belum beres")
    return cid
