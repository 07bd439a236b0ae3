"""Builders for route inputs: classified messages and commands with sensible defaults."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from common.registry import Registry, load_registry
from schemas.classified import ClassifiedMessage, MessageKind, RegionSource, Urgency
from schemas.commands import Command, CommandType
from schemas.messages import Action, EventKind, Message, Platform
from services.route.clocks import Router
from services.route.policy import load_sla_config

ROOT = Path(__file__).resolve().parents[2]
REGISTRY: Registry = load_registry(ROOT / "deploy/config/registry.yaml")
CONFIG = load_sla_config(ROOT / "deploy/config/sla.yaml")


def router() -> Router:
    return Router(CONFIG, REGISTRY)


def message(
    mid: str,
    thread: str,
    at: datetime,
    *,
    agency_reply: bool = False,
    kind: MessageKind = MessageKind.complaint,
    agency_id: str = "sby-public-works",
    agency_kind: str = "public_works",
    region: str = "35.78",
    urgency: Urgency = Urgency.normal,
    category: str = "roads",
    text: str | None = "jalan berlubang di depan pasar, mohon diperbaiki",
    action: Action = Action.add,
) -> ClassifiedMessage:
    msg = Message(
        message_id=f"instagram:{mid}",
        platform=Platform.instagram,
        kind=EventKind.comment,
        platform_message_id=mid,
        thread_key=thread,
        account_id="17841400000000001",
        agency_id="sby-communication",
        region_code=region,
        author_pseudonym="agency" if agency_reply else "p:citizen",
        text=text,
        action=action,
        platform_time=at,
        received_at=at,
        is_agency_reply=agency_reply,
        delivery_id=f"d-{mid}",
    )
    return ClassifiedMessage(
        message=msg,
        kind=kind,
        category=category,
        agency_kind=agency_kind,
        agency_id=agency_id,
        region_code=region,
        region_source=RegionSource.account,
        urgency=urgency,
        confidence=0.9,
        classifier_version="test",
    )


def command(
    cid: str,
    ctype: CommandType,
    complaint_id: str,
    thread: str,
    at: datetime,
    agency_id: str | None = None,
    reason: str | None = None,
) -> Command:
    return Command(
        command_id=cid,
        type=ctype,
        complaint_id=complaint_id,
        thread_key=thread,
        issued_at=at,
        actor="operator:1",
        agency_id=agency_id,
        reason=reason,
    )
