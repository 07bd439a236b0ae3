"""``python -m services.replay``: re-submit selected dead letters after the cause is fixed.

The generic machinery (selection, planning, reading and writing) is ``common.replay``; this
command binds it to ingest's parser, so a raw delivery is re-parsed byte-for-byte as ingest
would parse it now, with this deployment's registry and pseudonym key. Preconditions (the
pseudonym key, the registry) are checked before the dead-letter topic is scanned."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

from common import codecs
from common.cli import EXIT_SETTINGS, EXIT_UNREACHABLE, Unreachable
from common.registry import load_registry
from common.replay import Progress, Reparsed, Reparser, Selection, replay
from common.settings import Settings, get_settings
from schemas.raw import RawDelivery
from services.ingest.dedup import HEADER, dedup_key
from services.ingest.platforms import parse_delivery
from services.ingest.platforms.base import DeliveryContext, MalformedDelivery
from services.ingest.privacy import Pseudonymizer


def ingest_reparser(settings: Settings) -> Reparser:
    """Bind ingest's pure parser to this deployment's registry and pseudonym key, so a
    re-parsed message is byte-for-byte what ingest would have produced."""
    registry = load_registry(settings.registry_file)
    pseudonymize = Pseudonymizer(settings.pseudonym_secret().encode())

    def reparse(meta: RawDelivery, body: bytes) -> Reparsed:
        ctx = DeliveryContext(meta.delivery_id, meta.received_at, registry, pseudonymize)
        out = Reparsed()
        try:
            result = parse_delivery(meta.platform, body, ctx)
        except MalformedDelivery as exc:
            out.rejected.append((exc.reason, exc.detail, None))
            return out
        # The dedup header lets running ingest instances, which tail the messages topic,
        # learn these keys: a later platform retry of the same entry is then dropped.
        out.messages = [
            (m.thread_key.encode(), codecs.dumps(m), ((HEADER, dedup_key(m).encode()),))
            for m in result.messages
        ]
        out.rejected = [(r.reason, r.detail, r.entry_index) for r in result.rejected]
        return out

    return reparse


STAGES = ("ingest", "classify", "route", "desk", "notify")
"""Stages that write dead letters (``DeadLetter.stage``)."""


def _utc(text: str) -> datetime:
    example = "e.g. 2026-01-31T08:00+07:00"
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 instant ({example})"
        ) from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r}: give a time zone, {example}")
    return value.astimezone(UTC)


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def _reason(text: str) -> str:
    if not text or not all(c.islower() or c.isdigit() or c == "_" for c in text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a reason code (lower_snake_case)")
    return text


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m services.replay",
        description="Re-submit selected records of aduan.deadletter.v1 to their source topic.",
    )
    p.add_argument(
        "--reason", action="append", default=[], type=_reason, help="dead-letter reason (repeat)"
    )
    p.add_argument("--stage", action="append", default=[], choices=STAGES, help="stage (repeat)")
    p.add_argument(
        "--source-topic", action="append", default=[], help="e.g. aduan.messages.v1 (repeat)"
    )
    p.add_argument("--since", type=_utc, help="failed_at >= this instant (ISO 8601 with zone)")
    p.add_argument("--until", type=_utc, help="failed_at < this instant (ISO 8601 with zone)")
    p.add_argument("--limit", type=_count, help="replay at most this many selected records")
    p.add_argument(
        "--raw-mode",
        choices=("reparse", "republish"),
        default="reparse",
        help="how to replay raw references (default reparse: run ingest's parser again)",
    )
    p.add_argument("--dry-run", action="store_true", help="select and count, write nothing")
    p.add_argument("--list", action="store_true", help="print each selected record on stdout")
    p.add_argument("--bootstrap-servers", help="override KAFKA_BOOTSTRAP_SERVERS")
    p.add_argument("--topic-prefix", help="override ADUAN_TOPIC_PREFIX")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # aiokafka logs every failed connection attempt; the outcome is reported in one line.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    overrides: dict[str, Any] = {}
    if args.bootstrap_servers:
        overrides["bootstrap_servers"] = args.bootstrap_servers
    if args.topic_prefix is not None:
        overrides["topic_prefix"] = args.topic_prefix
    settings = get_settings().model_copy(update=overrides)
    selection = Selection(
        reasons=frozenset(args.reason),
        stages=frozenset(args.stage),
        source_topics=frozenset(args.source_topic),
        since=args.since,
        until=args.until,
    )
    reparser = None
    # Raw references (ingest's dead letters) are re-parsed, which needs the registry and the
    # pseudonym key: check that before scanning, not after. A dry run writes nothing.
    may_reparse = not args.stage or "ingest" in args.stage
    if args.raw_mode == "reparse" and may_reparse and not args.dry_run:
        try:
            reparser = ingest_reparser(settings)
        except ValueError as exc:
            print(f"replay: cannot re-parse raw deliveries: {exc}", file=sys.stderr)
            return 2
    try:
        summary = asyncio.run(
            replay(
                settings,
                selection,
                dry_run=args.dry_run,
                raw_mode=args.raw_mode,
                limit=args.limit,
                reparser=reparser,
                progress=Progress(sys.stderr),
                listing=sys.stdout if args.list else None,
            )
        )
    except Unreachable as exc:
        print(f"replay: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    result = {"dry_run": args.dry_run, **summary.as_dict()}
    sys.stdout.write(orjson.dumps(result).decode() + "\n")
    unseen = sorted(set(args.reason) - set(summary.reasons_seen))
    if unseen:
        seen = ", ".join(sorted(summary.reasons_seen)) or "none"
        print(
            f"replay: no dead letter has reason {', '.join(unseen)} (seen: {seen})", file=sys.stderr
        )
        return EXIT_SETTINGS
    return 1 if summary.failed else 0


if __name__ == "__main__":
    sys.exit(main())
