"""``aduan.commands.v1``: operator and agency commands on a complaint."""

from enum import StrEnum

from pydantic import Field

from schemas.base import Event, UtcDatetime


class CommandType(StrEnum):
    reroute = "reroute"  # "bukan wewenang": not our authority, forward to another agency
    resolve = "resolve"
    reopen = "reopen"
    acknowledge = "acknowledge"


class Command(Event):
    command_id: str = Field(description="unique id chosen by the issuer; replays are dropped")
    type: CommandType
    complaint_id: str
    thread_key: str = Field(description="the complaint's thread key; also the record key")
    issued_at: UtcDatetime
    actor: str = Field(description="who issued it (operator or agency user id)")
    agency_id: str | None = Field(default=None, description="target agency for reroute")
    reason: str | None = None
