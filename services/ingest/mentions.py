"""``python -m services.ingest.mentions``: completes Instagram mentions with their text.

An Instagram ``mentions`` webhook carries only ids (``media_id``, maybe ``comment_id``), so
ingest writes a placeholder message (kind ``mention``, ``text=None``,
``text_fetched=False``) and answers 200 at once. This process fetches the words afterwards,
never holding a webhook: it consumes ``aduan.raw.v1`` (the only topic allowed to hold the
raw platform ids) in its own consumer group, re-parses each Instagram delivery that has a
``mentions`` change with the same parser, asks the Graph API for the text
(``GET /{comment-id}?fields=text``, or the media's ``caption``) with the account's access
token, and writes the completed message to ``aduan.messages.v1``: an ``edit`` of the
placeholder (same ``message_id`` and thread), masked and pseudonymised by the same
``build``, with its ``dedup`` header. It stays inside ingest's privacy zone: raw ids leave
it only towards the Graph API.

Failures: timeouts, connection errors, 429 and 5xx are retried with exponential backoff
(tenacity; ``ADUAN_MENTIONS_ATTEMPTS`` tries bounded by ``ADUAN_MENTIONS_TIMEOUT_S`` each),
then dead-lettered ``fetch_failed``; another 4xx (deleted comment, token without
permission) is dead-lettered ``fetch_refused`` at once; an account without a token,
``missing_token``. Dead letters point at the raw record by partition and offset, and their
details name the field and the HTTP status, never an id. The batch is committed after every
output is acknowledged; a replay after a crash may write a completed mention twice (same
``dedup`` key; downstream consumers are idempotent on it)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from common import metrics
from common.connection import make_producer
from common.deadletters import Source, dead_letter
from common.kafka import consume_batches, ensure_topics, topic_name
from common.produce import KafkaSink, Output, RecordSink, send_all_or_raise
from common.registry import Account, load_registry
from common.settings import Settings
from common.topics import DEADLETTER, MESSAGES, RAW
from schemas import raw as raw_record
from schemas.messages import Action, Message, Platform
from services.ingest.app import encode_message
from services.ingest.dedup import HEADER, dedup_key
from services.ingest.platforms.base import (
    AccountIndex,
    DeliveryContext,
    Draft,
    EntryError,
    MalformedDelivery,
    build,
    load_json_object,
)
from services.ingest.platforms.instagram import mention_draft
from services.ingest.privacy import Pseudonymizer

NAME = "mentions"
log = logging.getLogger("aduan.mentions")


class MentionSettings(BaseSettings):
    """Settings of the mention fetcher (``ADUAN_MENTIONS_*``)."""

    model_config = SettingsConfigDict(env_prefix="ADUAN_MENTIONS_", env_file=None, extra="ignore")

    graph_base_url: str = Field(
        default="https://graph.facebook.com/v21.0",
        description="Graph API base URL (a local stand-in in tests)",
    )
    token_env: str = Field(
        default="ADUAN_INSTAGRAM_ACCESS_TOKEN",
        description="variable (env or secrets file) holding the accounts' access token; "
        "<name>_<account id> for one account's own token",
    )
    timeout_s: float = Field(default=10.0, gt=0, description="bound on one Graph API request")
    attempts: int = Field(default=4, ge=1, description="tries per mention before a dead letter")
    backoff_s: float = Field(default=1.0, ge=0, description="first retry delay, doubling")
    backoff_max_s: float = Field(default=30.0, ge=0, description="longest retry delay")
    concurrency: int = Field(default=8, ge=1, description="Graph API requests at once")


@dataclass(slots=True)
class MentionJob:
    """One mention to complete: the placeholder's draft and the Graph node to ask."""

    draft: Draft
    ctx: DeliveryContext
    node_id: str  # raw comment or media id: sent to the Graph API, never written anywhere
    field: str  # "text" (a comment) or "caption" (a media)


def mention_jobs(body: bytes, ctx: DeliveryContext) -> list[MentionJob]:
    """The mentions of an Instagram delivery, drafted exactly as ingest drafted their
    placeholders. Items ingest dead-lettered (unknown account, no ``media_id``) are left out:
    their dead letter exists already."""
    try:
        doc = load_json_object(body)
    except MalformedDelivery:  # not JSON: ingest answered 400 and dead-lettered it
        return []
    if doc.get("object") != "instagram" or not isinstance(doc.get("entry"), list):
        return []
    jobs = []
    for entry in doc["entry"]:
        changes = entry.get("changes") if isinstance(entry, dict) else None
        for change in changes if isinstance(changes, list) else []:
            if not isinstance(change, dict) or change.get("field") != "mentions":
                continue
            value = change.get("value")
            if not isinstance(value, dict):
                continue
            try:
                draft = mention_draft(entry, value, "value", ctx)
            except EntryError:
                continue
            comment = value.get("comment_id")
            node, field = (str(comment), "text") if comment else (str(value["media_id"]), "caption")
            jobs.append(MentionJob(draft, ctx, node, field))
    return jobs


def completed(job: MentionJob, text: str) -> Message:
    """The placeholder completed: same ids, action ``edit``, the fetched text masked."""
    job.draft.text = text
    job.draft.text_fetched = True
    job.draft.action = Action.edit
    return build(job.ctx, job.draft)


class FetchRefused(Exception):
    """The Graph API answered and will not give the text: dead letter at once."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason, self.detail = reason, detail


class _Transient(Exception):
    """A failure worth retrying (timeout, connection, 429, 5xx)."""


class Tokens(Protocol):
    def secret(self, name: str) -> str | None: ...


class GraphClient:
    """The Graph API calls, with bounded retries and timeouts."""

    def __init__(self, session: aiohttp.ClientSession, conf: MentionSettings, tokens: Tokens):
        self.session, self.conf, self.tokens = session, conf, tokens

    def token(self, account: Account) -> str | None:
        return self.tokens.secret(f"{self.conf.token_env}_{account.platform_id}") or (
            self.tokens.secret(self.conf.token_env)
        )

    async def fetch(self, job: MentionJob) -> str:
        """The comment's text or the media's caption; raises ``FetchRefused``."""
        token = self.token(job.draft.account)
        if not token:
            raise FetchRefused("missing_token", f"no access token ({self.conf.token_env})")
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.conf.attempts),
            wait=wait_exponential(multiplier=self.conf.backoff_s, max=self.conf.backoff_max_s),
            retry=retry_if_exception_type(_Transient),
            before_sleep=lambda _: metrics.MENTION_FETCHES.labels("retried").inc(),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._get(job, token)
        except _Transient as exc:
            raise FetchRefused(
                "fetch_failed", f"GET {job.field}: {exc} after {self.conf.attempts} attempts"
            ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    async def _get(self, job: MentionJob, token: str) -> str:
        url = f"{self.conf.graph_base_url.rstrip('/')}/{job.node_id}"
        params = {"fields": job.field, "access_token": token}
        timeout = aiohttp.ClientTimeout(total=self.conf.timeout_s)
        try:
            async with self.session.get(url, params=params, timeout=timeout) as resp:
                if resp.status == 429 or resp.status >= 500:
                    raise _Transient(f"HTTP {resp.status}")
                if resp.status != 200:
                    raise FetchRefused("fetch_refused", f"GET {job.field}: HTTP {resp.status}")
                data: Any = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise _Transient(type(exc).__name__) from exc
        value = data.get(job.field) if isinstance(data, dict) else None
        return value if isinstance(value, str) else ""


class MentionFetcher:
    """Turns consumed raw records into completed mentions and dead letters."""

    def __init__(
        self, settings: Settings, conf: MentionSettings, client: GraphClient, accounts: AccountIndex
    ) -> None:
        self.client = client
        self.accounts = accounts
        self.pseudonymize = Pseudonymizer(settings.pseudonym_secret().encode())
        self.messages_topic = topic_name(MESSAGES, settings)
        self.dlq_topic = topic_name(DEADLETTER, settings)
        self.gate = asyncio.Semaphore(conf.concurrency)

    def jobs(self, records: Sequence[Any]) -> Iterator[tuple[Any, MentionJob]]:
        for record in records:
            value = record.value or b""
            if b'"mentions"' not in value:
                continue  # cheap filter: most deliveries are not mentions
            try:
                raw = raw_record.from_headers(record.key, record.headers)
            except ValueError:
                continue  # not a record ingest wrote
            if raw.platform is not Platform.instagram:
                continue
            ctx = DeliveryContext(
                raw.delivery_id, raw.received_at, self.accounts, self.pseudonymize
            )
            for job in mention_jobs(value, ctx):
                yield record, job

    async def outputs(self, records: Sequence[Any]) -> list[Output]:
        pairs = list(self.jobs(records))
        results = await asyncio.gather(*(self._one(job) for _, job in pairs))
        out: list[Output] = []
        for (record, _job), result in zip(pairs, results, strict=True):
            if isinstance(result, FetchRefused):
                metrics.MENTION_FETCHES.labels("failed").inc()
                source = Source(record.topic, record.partition, record.offset, record.key)
                out.append(dead_letter(self.dlq_topic, NAME, result.reason, result.detail, source))
            elif result is None:
                metrics.MENTION_FETCHES.labels("skipped").inc()
            else:
                metrics.MENTION_FETCHES.labels("fetched").inc()
                key = dedup_key(result)
                out.append(
                    Output(
                        self.messages_topic,
                        result.thread_key.encode(),
                        encode_message(result),
                        ((HEADER, key.encode()),),
                    )
                )
        return out

    async def _one(self, job: MentionJob) -> Message | FetchRefused | None:
        async with self.gate:
            try:
                text = await self.client.fetch(job)
            except FetchRefused as exc:
                return exc
        if not text.strip():
            return None  # a caption or comment emptied since: nothing to read
        try:
            return completed(job, text)
        except EntryError as exc:  # text over the cap
            return FetchRefused(exc.reason, exc.detail)


def mention_series() -> Iterator[metrics.Series]:
    for outcome in metrics.MENTION_OUTCOMES:
        yield metrics.MENTION_FETCHES, (outcome,)
    yield from metrics.processor_series(NAME, [RAW.name], [MESSAGES.name, DEADLETTER.name])


async def run(
    settings: Settings,
    conf: MentionSettings,
    stop: asyncio.Event,
    ready: asyncio.Event | None = None,
    sink: RecordSink | None = None,
) -> None:
    """Consume ``aduan.raw.v1`` until ``stop``; outputs are acknowledged before a commit."""
    metrics.zero(mention_series())
    await ensure_topics(settings)
    accounts = AccountIndex(load_registry(settings.registry_file))
    producer = None
    if sink is None:
        producer = make_producer(
            settings.kafka, request_timeout_ms=int(settings.produce_timeout_s * 1000)
        )
        await producer.start()
        sink = KafkaSink(producer)
    try:
        async with aiohttp.ClientSession() as session:
            fetcher = MentionFetcher(settings, conf, GraphClient(session, conf, settings), accounts)

            async def process(records: list[Any]) -> None:
                outputs = await fetcher.outputs(records)
                assert sink is not None
                await send_all_or_raise(sink, outputs, batched=True)
                for topic, name in (
                    (fetcher.messages_topic, MESSAGES.name),
                    (fetcher.dlq_topic, DEADLETTER.name),
                ):
                    count = sum(1 for o in outputs if o.topic == topic)
                    if count:
                        metrics.MESSAGES_OUT.labels(NAME, name).inc(count)

            await consume_batches(
                name=NAME,
                settings=settings,
                input_topics=[topic_name(RAW, settings)],
                group_id=f"{settings.consumer_group_prefix}-{NAME}",
                process=process,
                stop=stop,
                max_records=500,
                on_ready=ready.set if ready is not None else None,
            )
    finally:
        if producer is not None:
            await producer.stop()


async def main(stop: asyncio.Event) -> None:
    from common.http import serve_ops_on_event
    from common.settings import get_settings

    settings = get_settings()
    conf = MentionSettings()
    ready = asyncio.Event()
    await serve_ops_on_event(
        settings.http_host, settings.metrics_port, ready, "starting", "consuming"
    )
    log.info("completing Instagram mentions through %s", conf.graph_base_url)
    await run(settings, conf, stop, ready)


if __name__ == "__main__":
    from common.cli import run_service

    run_service(
        NAME,
        "Completes Instagram mentions: reads aduan.raw.v1, fetches each mentioned comment's "
        "text or media caption from the Graph API and writes the completed message to "
        "aduan.messages.v1 (an edit of the placeholder).",
        [Settings, MentionSettings],
        main,
    )
