"""Acknowledge, resolve, reopen, reroute: validated here, carried out by route.

An action becomes one ``Command`` on ``aduan.commands.v1``, keyed by the complaint's thread
key and placed by the producer's default partitioner (Kafka's murmur2, the partition route's
table for that thread lives on), and is answered 202 only once the broker acknowledged it.
The desk does not change the complaint itself: route applies the command (or dead-letters
it) and the desk learns the outcome from route's events, like every other consumer.

``Idempotency-Key``: the first request with a key claims it (a row, before anything is
sent); a retry with the same key and the same request gets the first answer again without
sending anything; the same key with a different request is refused (422); a retry while the
first is still in flight gets 409. The command id is derived from (token, key), so even a
retry after a crash between the broker's ack and the stored answer sends a command route
already knows by id and drops. Without a key every request is a new command."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
from pydantic import BaseModel

from common import codecs, metrics
from common.produce import Output, RecordSink, send_all
from common.registry import Registry
from schemas.commands import Command, CommandType
from services.desk.auth import Principal
from services.desk.models import (
    AcknowledgeBody,
    ActionAccepted,
    ReopenBody,
    RerouteBody,
    ResolveBody,
)
from services.desk.queries import visible_complaint

BODIES: dict[str, type[BaseModel]] = {
    "acknowledge": AcknowledgeBody,
    "resolve": ResolveBody,
    "reopen": ReopenBody,
    "reroute": RerouteBody,
}
IDEMPOTENCY_KEY_MAX = 200


@dataclass(frozen=True, slots=True)
class Outcome:
    """What to answer: a status, a JSON body, and whether it was a replayed answer."""

    status: int
    body: dict[str, Any]
    replayed: bool = False


def refuse(status: int, error: str, detail: str) -> Outcome:
    return Outcome(status, {"error": error, "detail": detail})


@dataclass
class Actions:
    pool: asyncpg.Pool
    sink: RecordSink
    registry: Registry
    commands_topic: str
    timeout_s: float

    async def perform(
        self,
        who: Principal,
        complaint_id: str,
        action: str,
        body: BaseModel,
        idempotency_key: str | None,
        now: datetime | None = None,
    ) -> Outcome:
        outcome = await self._perform(who, complaint_id, action, body, idempotency_key, now)
        label = (
            "replayed"
            if outcome.replayed
            else "accepted"
            if outcome.status == 202
            else "broker_unavailable"
            if outcome.status == 503
            else "refused"
        )
        metrics.DESK_ACTIONS.labels(action, label).inc()
        return outcome

    async def _perform(
        self,
        who: Principal,
        complaint_id: str,
        action: str,
        body: BaseModel,
        key: str | None,
        now: datetime | None,
    ) -> Outcome:
        row = await visible_complaint(self.pool, who, complaint_id)
        if row is None:
            return not_found()
        request_hash = hashlib.sha256(
            orjson.dumps([action, complaint_id, body.model_dump(mode="json")])
        ).digest()
        if key is not None:
            if not 1 <= len(key) <= IDEMPOTENCY_KEY_MAX or not key.isprintable():
                return refuse(400, "invalid_idempotency_key", "Idempotency-Key: 1-200 printable "
                              "characters")  # fmt: skip
            earlier = await self._claim(who, key, request_hash)
            if earlier is not None:
                return earlier
        problem = self._check(who, row, action, body)
        if problem is not None:
            await self._release(who, key)
            return problem
        command = self._command(who, row, action, body, key, now or datetime.now(UTC))
        output = Output(self.commands_topic, command.thread_key.encode(), codecs.dumps(command))
        (result,) = await send_all(self.sink, [output], timeout=self.timeout_s)
        if isinstance(result, BaseException):
            await self._release(who, key)
            return refuse(503, "broker_unavailable", "the command was not acknowledged by Kafka "
                          "in time; nothing was sent, try again")  # fmt: skip
        accepted = ActionAccepted(
            command_id=command.command_id,
            complaint_id=complaint_id,
            type=action,  # type: ignore[arg-type]  # one of BODIES' keys
            topic=result.topic,
            partition=result.partition,
            offset=result.offset,
        ).model_dump(mode="json")
        if key is not None:
            await self.pool.execute(
                "UPDATE desk_idempotency SET status_code = 202, response = $3, command_id = $4 "
                "WHERE token_id = $1 AND idempotency_key = $2",
                who.token_id,
                key,
                accepted,
                command.command_id,
            )
        return Outcome(202, accepted)

    def _check(
        self, who: Principal, row: asyncpg.Record, action: str, body: BaseModel
    ) -> Outcome | None:
        """What route would refuse, refused here with a clear answer (route still checks)."""
        if not who.is_admin and row["role"] == "former":
            return refuse(409, "not_your_complaint", f"the complaint was handed over to "
                          f"{row['agency_id']}; only that agency can act on it now")  # fmt: skip
        is_open = row["is_open"]
        if action in ("acknowledge", "resolve", "reroute") and not is_open:
            return refuse(409, "invalid_state", "the complaint is resolved; reopen it first")
        if action == "reopen" and is_open:
            return refuse(409, "invalid_state", "the complaint is open; only a resolved one "
                          "can be reopened")  # fmt: skip
        if isinstance(body, RerouteBody):
            if self.registry.agency(body.agency_id) is None:
                return refuse(422, "unknown_agency", "agency_id: no such agency in the registry")
            if body.agency_id == row["agency_id"]:
                return refuse(422, "same_agency", "agency_id: the complaint is already there")
        return None

    def _command(
        self,
        who: Principal,
        row: asyncpg.Record,
        action: str,
        body: BaseModel,
        key: str | None,
        now: datetime,
    ) -> Command:
        if key is not None:
            seed = f"{who.token_id}\x00{key}".encode()
            command_id = "desk-" + hashlib.sha256(seed).hexdigest()[:32]
        else:
            command_id = "desk-" + uuid.uuid4().hex
        reason = getattr(body, "reason", None) or getattr(body, "note", None)
        return Command(
            command_id=command_id,
            type=CommandType(action),
            complaint_id=row["complaint_id"],
            thread_key=row["thread_key"],
            issued_at=now,
            actor=who.actor,
            agency_id=body.agency_id if isinstance(body, RerouteBody) else None,
            reason=reason,
        )

    async def _claim(self, who: Principal, key: str, request_hash: bytes) -> Outcome | None:
        """Claim ``key`` for this request; the earlier answer when it was claimed before."""
        claimed = await self.pool.fetchval(
            "INSERT INTO desk_idempotency (token_id, idempotency_key, request_hash, command_id) "
            "VALUES ($1, $2, $3, '') ON CONFLICT DO NOTHING RETURNING true",
            who.token_id,
            key,
            request_hash,
        )
        if claimed:
            return None
        row = await self.pool.fetchrow(
            "SELECT request_hash, status_code, response FROM desk_idempotency "
            "WHERE token_id = $1 AND idempotency_key = $2",
            who.token_id,
            key,
        )
        if row is None:  # released between the two statements: the first attempt failed
            return await self._claim(who, key, request_hash)
        if bytes(row["request_hash"]) != request_hash:
            return refuse(422, "idempotency_key_reused", "Idempotency-Key was used for a "
                          "different request")  # fmt: skip
        if row["status_code"] is None:
            return refuse(409, "request_in_progress", "a request with this Idempotency-Key "
                          "is still being processed")  # fmt: skip
        return Outcome(row["status_code"], row["response"], replayed=True)

    async def _release(self, who: Principal, key: str | None) -> None:
        """Forget a claim whose request was refused or failed, so a retry may succeed."""
        if key is not None:
            await self.pool.execute(
                "DELETE FROM desk_idempotency WHERE token_id = $1 AND idempotency_key = $2 "
                "AND status_code IS NULL",
                who.token_id,
                key,
            )


def not_found() -> Outcome:
    return refuse(404, "not_found", "no such complaint")
