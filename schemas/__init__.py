"""Event models shared by every processor and every team that reads aduan's topics.

One pydantic model per topic payload. ``python -m schemas.generate`` derives from them and
the topic catalog the JSON Schemas of every topic's key, headers and value
(``schemas/json/``) and the AsyncAPI document (``schemas/asyncapi.yaml``); tests fail when
they drift, and ``schemas/compat.py`` keeps them compatible with the last release.
"""

from schemas.classified import ClassifiedMessage, MessageKind, Urgency
from schemas.commands import Command, CommandType
from schemas.deadletter import DeadLetter
from schemas.messages import Attachment, EventKind, Location, Message, Platform
from schemas.raw import RawDelivery
from schemas.routes import RouteEvent, RouteEventType
from schemas.sla import Clock, SlaEvent, SlaEventType

__all__ = [
    "Attachment",
    "ClassifiedMessage",
    "Clock",
    "Command",
    "CommandType",
    "DeadLetter",
    "EventKind",
    "Location",
    "Message",
    "MessageKind",
    "Platform",
    "RawDelivery",
    "RouteEvent",
    "RouteEventType",
    "SlaEvent",
    "SlaEventType",
    "Urgency",
]
