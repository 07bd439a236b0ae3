"""The notify process: consume routing and deadline events, record deliveries, send them.

Kafka → PostgreSQL → channels. Each consumed batch is decoded, planned (``plan.py``) and
recorded in one transaction, bad events are dead-lettered, and only then does the batch
loop (``common.kafka.consume_batches``) commit its offsets: every event of a committed
batch is either dead-lettered or held as deliveries in the durable record, which the lanes
then deliver or dead-letter. Sending is not inside the batch on purpose: a channel that is
down for an hour would otherwise hold every partition (and every other channel) for that
hour; with the record in between, it holds only its own lane.

Ownership follows Kafka's: an instance sends the pending deliveries of the partitions it
is assigned (``NotifyListener``), so several replicas never send the same row, and after a
crash the partition's new owner (or the restarted instance) picks up what was owed."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import aiohttp
import orjson
from aiokafka import ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from pydantic import ValidationError

from common import codecs
from common.deadletters import Source, dead_letter, refused
from common.produce import Output, RecordSink, send_all_or_raise
from common.refusal import Refusal
from common.registry import Registry, parse_channel
from common.sealing import Sealer
from common.settings import Settings
from schemas.messages import Message
from schemas.routes import RouteEvent
from schemas.sla import SlaEvent
from services.notify.channels.base import Channel
from services.notify.channels.email import EmailChannel
from services.notify.channels.log import LogChannel
from services.notify.channels.reply import ReplyChannel
from services.notify.channels.telegram import TelegramChannel
from services.notify.channels.webhook import WebhookChannel
from services.notify.channels.whatsapp import WhatsAppChannel
from services.notify.dispatcher import STAGE, Dispatcher
from services.notify.plan import Delivery, ReplyTarget, plan, plan_ack
from services.notify.render import Renderer
from services.notify.settings import NotifySettings
from services.notify.store import Planned, Store

log = logging.getLogger("aduan.notify")


class Topics:
    def __init__(
        self, routes: str, sla: str, deadletter: str, messages: str = "", commands: str = ""
    ) -> None:
        self.routes, self.sla, self.deadletter = routes, sla, deadletter
        self.messages, self.commands = messages, commands


def acknowledging_accounts(registry: Registry) -> frozenset[tuple[str, str]]:
    """(platform, platform id) of every account id and alias with ``acknowledge: true``."""
    return frozenset(
        (a.platform.value, pid)
        for a in registry.accounts
        if a.acknowledge
        for pid in (a.platform_id, *a.aliases)
    )


class NotifyService:
    """The batch step: records in, deliveries recorded, dead letters out."""

    def __init__(
        self, registry: Registry, store: Store, dispatcher: Dispatcher, sink: RecordSink,
        topics: Topics, sealer: Sealer | None = None,
    ) -> None:  # fmt: skip
        self.registry = registry
        self.sealer = sealer
        """Opens the reply references ingest seals for acknowledging accounts (the ids
        on the topics are one-way pseudonyms)."""
        self.store = store
        self.dispatcher = dispatcher
        self.sink = sink
        self.topics = topics
        self.ack_accounts = acknowledging_accounts(registry)

    async def process(self, records: Sequence[ConsumerRecord]) -> None:
        events: list[tuple[ConsumerRecord, RouteEvent | SlaEvent]] = []
        dead: list[Output] = []
        targets = self._reply_targets([r for r in records if r.topic == self.topics.messages])
        await self.store.remember_reply_targets(
            [(cid, t, thread) for cid, (t, thread) in targets.items()]
        )
        for r in records:
            if r.topic == self.topics.messages:
                continue
            try:
                events.append((r, self._decode(r)))
            except (ValidationError, ValueError) as exc:
                detail = _validation_detail(exc)
                dead.append(
                    dead_letter(
                        self.topics.deadletter, STAGE, "invalid_event", detail, Source.of(r)
                    )
                )
        routes = {e.complaint_id: (r, e) for r, e in events if isinstance(e, RouteEvent)}
        wanted = {e.complaint_id for _, e in events if isinstance(e, SlaEvent)} - routes.keys()
        contexts = {
            cid: RouteEvent.model_validate_json(raw)
            for cid, raw in (await self.store.contexts(wanted)).items()
        }
        # A batch holds both topics in partition order, not in time order: an SLA event may
        # come before its complaint's route event, so the batch's route events count first.
        latest = {**contexts, **{cid: e for cid, (_, e) in routes.items()}}
        replies = {cid: t for cid, (t, _) in targets.items()}
        routed = [cid for cid, (_, e) in routes.items() if e.event_type.value == "routed"]
        if self.ack_accounts and routed:
            replies |= await self.store.reply_targets(set(routed) - replies.keys())
        planned: list[Planned] = []
        for r, e in events:
            try:
                deliveries = plan(e, self.registry, latest.get(e.complaint_id))
                deliveries += plan_ack(e, replies.get(e.complaint_id), self.registry)
            except Refusal as exc:
                dead.append(refused(self.topics.deadletter, STAGE, exc, Source.of(r)))
                continue
            source = f"{r.topic}:{r.partition}"
            planned += [Planned(d, source, r.offset, r.key, r.value or b"") for d in deliveries]
        route_rows = [(cid, r.value or b"", e.routed_at) for cid, (r, e) in routes.items()]
        fresh = await self.store.record(planned, route_rows)
        await send_all_or_raise(self.sink, dead)
        self.dispatcher.hand_over(fresh)

    def _reply_targets(
        self, records: Sequence[ConsumerRecord]
    ) -> dict[str, tuple[ReplyTarget, str]]:
        """Complaints that arrived on an acknowledging account: complaint id → (where to
        reply, thread key). Other messages are not even validated (the topic carries every
        message; most accounts do not acknowledge)."""
        out: dict[str, tuple[ReplyTarget, str]] = {}
        for r in records:
            try:
                raw = orjson.loads(r.value or b"")
                if (raw.get("platform"), raw.get("account_id")) not in self.ack_accounts:
                    continue
                m = Message.model_validate(raw)
            except (ValueError, ValidationError, AttributeError):
                continue  # ingest's output; classify dead-letters what is malformed
            if m.is_agency_reply or m.reply_ref is None or self.sealer is None:
                continue  # no way to address the reply: no acknowledgement
            try:
                item_id = self.sealer.open(m.reply_ref, m.message_id)
            except ValueError:
                log.warning("reply reference of %s does not open (ADUAN_REPLY_KEY?)", m.message_id)
                continue
            target = ReplyTarget(
                platform=m.platform.value,
                account_id=m.account_id,
                kind=m.kind.value,
                platform_message_id=item_id,
            )
            out[m.message_id] = (target, m.thread_key)
        return out

    def _decode(self, record: ConsumerRecord) -> RouteEvent | SlaEvent:
        if record.value is None:
            raise ValueError("record has no value")
        if record.topic == self.topics.routes:
            return codecs.decode_model(RouteEvent, record.value)
        return codecs.decode_model(SlaEvent, record.value)


def _validation_detail(exc: Exception) -> str:
    """Where and which rule, never the value (dead letters leave the raw topic)."""
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['type']}" for e in exc.errors()
        )[:500]
    return f"not a valid event: {type(exc).__name__}"


class NotifyListener(ConsumerRebalanceListener):  # type: ignore[misc]
    """Keeps the dispatcher's owned partitions equal to the consumer's assignment."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher
        self.assigned: set[TopicPartition] = set()

    def _publish(self) -> None:
        self.dispatcher.assign(f"{tp.topic}:{tp.partition}" for tp in self.assigned)

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self.assigned -= set(revoked)
        self._publish()

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.assigned |= set(assigned)
        self._publish()


# --- channels -----------------------------------------------------------------------------
def used_channel_types(registry: Registry) -> set[str]:
    types: set[str] = set()
    for a in registry.agencies:
        for ch in [*a.channels, *(c for contact in a.contacts.values() for c in contact.channels)]:
            types.add(parse_channel(ch).type)
    return types


def missing_secrets(registry: Registry, ns: NotifySettings, settings: Settings) -> list[str]:
    """Secret variables the registry's channels need but neither the environment nor the
    secrets file has: notify refuses to start rather than dead-letter every delivery."""
    types = used_channel_types(registry)
    needed = [w.secret_env for w in registry.webhooks]
    needed += [a.reply_token_env for a in registry.accounts if a.acknowledge and a.reply_token_env]
    if any(a.acknowledge for a in registry.accounts):
        needed.append("ADUAN_REPLY_KEY")  # opens the reply references ingest seals
    if "telegram" in types:
        needed.append(ns.telegram_token_env)
    if "whatsapp" in types:
        needed.append(ns.whatsapp_token_env)
    if "email" in types and ns.smtp_username:
        needed.append(ns.smtp_password_env)
    return sorted({n for n in needed if not settings.secret(n)})


def build_channels(
    registry: Registry,
    ns: NotifySettings,
    settings: Settings,
    renderer: Renderer,
    http: aiohttp.ClientSession,
    sink: RecordSink | None = None,
    commands_topic: str = "",
) -> dict[str, Channel]:
    """One adapter per lane, for the channel types the registry uses."""
    types = used_channel_types(registry)
    out: dict[str, Channel] = {}
    if sink is not None:
        for platform in sorted({p for p, _ in acknowledging_accounts(registry)}):
            out[f"reply:{platform}"] = ReplyChannel(
                platform, ns, registry, settings.secret, renderer, http, sink, commands_topic
            )
    if "email" in types:
        out["email"] = EmailChannel(
            renderer, ns.smtp_host, ns.smtp_port, ns.smtp_from,
            starttls=ns.smtp_starttls, username=ns.smtp_username,
            password=settings.secret(ns.smtp_password_env) if ns.smtp_username else None,
            timeout=ns.http_timeout_s, batch=ns.smtp_batch, cafile=ns.smtp_tls_cafile,
        )  # fmt: skip
    if "telegram" in types:
        out["telegram"] = TelegramChannel(
            ns.telegram_base_url, settings.secret(ns.telegram_token_env), renderer, http,
            ns.http_timeout_s, ns.telegram_rate_per_s, ns.telegram_chat_interval_s,
        )  # fmt: skip
    if "whatsapp" in types:
        out["whatsapp"] = WhatsAppChannel(
            ns.whatsapp_base_url, ns.whatsapp_api_version, ns.whatsapp_phone_number_id,
            settings.secret(ns.whatsapp_token_env), ns.whatsapp_template,
            ns.whatsapp_template_language, renderer, http, ns.http_timeout_s,
        )  # fmt: skip
    if "log" in types:
        out["log"] = LogChannel(renderer)
    for w in registry.webhooks:
        out[f"webhook:{w.id}"] = WebhookChannel(
            w.url, settings.secret(w.secret_env), renderer, http, ns.http_timeout_s
        )
    return out


def describe(d: Delivery) -> dict[str, Any]:
    """A delivery as one log/debug line (no message content)."""
    return {"event": d.notice.event_id, "to": str(d.channel), "lane": d.lane}


async def wait_stopped(tasks: Sequence[asyncio.Task[Any]]) -> None:
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
