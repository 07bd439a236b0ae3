"""``python -m services.ingest.parse --platform {instagram,facebook,whatsapp,x,generic} FILE``

Turns a saved delivery body into the normalized messages it yields: one ``messages.v1``
JSON object per line on stdout, and one ``{"error": ...}`` line per rejected entry. Exit
status 0 when the body parsed (even if some entries were rejected), 2 when it did not.
No broker and no secrets needed: this is the same pure function the service runs. Without
``--pseudonym-key`` (or ``ADUAN_PSEUDONYM_KEY``) a fixed demo key is used and a warning
printed, so pseudonyms differ from production ones.

Dead-letter details never quote values; ``--show-evidence`` adds them to the error lines
(``"evidence": [...]``, e.g. the account ids an ``unknown_account`` entry named), for an
operator who is allowed to read the raw delivery anyway."""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import orjson

from common import codecs
from common.registry import RegistryError, load_registry
from common.settings import DEFAULT_CONFIG_DIR
from schemas.messages import Platform
from services.ingest.platforms import parse_delivery
from services.ingest.platforms.base import DeliveryContext, MalformedDelivery
from services.ingest.privacy import Pseudonymizer

DEMO_KEY = b"aduan-demo-pseudonym-key-not-for-production"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.ingest.parse", description=__doc__)
    parser.add_argument("--platform", required=True, choices=[p.value for p in Platform])
    parser.add_argument("file", type=Path, help="saved delivery body ('-' for stdin)")
    parser.add_argument(
        "--registry",
        type=Path,
        default=Path(os.environ.get("ADUAN_REGISTRY_FILE") or DEFAULT_CONFIG_DIR / "registry.yaml"),
    )
    parser.add_argument("--pseudonym-key", default=None, help="default: $ADUAN_PSEUDONYM_KEY")
    parser.add_argument("--delivery-id", default=None, help="default: a fresh uuid4")
    parser.add_argument(
        "--show-evidence",
        action="store_true",
        help="add the offending values to error lines (they stay out of dead letters)",
    )
    args = parser.parse_args(argv)

    key = args.pseudonym_key or os.environ.get("ADUAN_PSEUDONYM_KEY")
    if not key:
        print("warning: no pseudonym key given; using the demo key", file=sys.stderr)
    try:
        registry = load_registry(args.registry)
        body = sys.stdin.buffer.read() if str(args.file) == "-" else args.file.read_bytes()
    except (RegistryError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    ctx = DeliveryContext(
        delivery_id=args.delivery_id or str(uuid.uuid4()),
        received_at=datetime.now(UTC),
        registry=registry,
        pseudonymize=Pseudonymizer(key.encode() if key else DEMO_KEY),
    )
    out = sys.stdout.buffer
    try:
        result = parse_delivery(Platform(args.platform), body, ctx)
    except MalformedDelivery as exc:
        out.write(orjson.dumps({"error": exc.reason, "detail": exc.detail}) + b"\n")
        return 2
    for message in result.messages:
        out.write(codecs.dumps(message) + b"\n")
    for rejected in result.rejected:
        line: dict[str, object] = {
            "error": rejected.reason,
            "detail": rejected.detail,
            "entry": rejected.entry_index,
        }
        if args.show_evidence and rejected.evidence:
            line["evidence"] = list(rejected.evidence)
        out.write(orjson.dumps(line) + b"\n")
    reasons = ", ".join(f"{r} {n}" for r, n in sorted(result.skips.items()))
    print(
        f"{len(result.messages)} messages, {len(result.rejected)} rejected, "
        f"{result.skipped} skipped" + (f" ({reasons})" if reasons else ""),
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
