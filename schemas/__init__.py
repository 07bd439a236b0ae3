"""Event models shared by every processor and every team that reads aduan's topics.

One pydantic model per topic payload; ``schemas/json/*.v1.json`` is generated from them
(``python -m schemas.generate``) and a test fails when the two drift apart.
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
