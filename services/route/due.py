"""``python -m services.route.due``: answer "when is this complaint due?" without a broker.

Prints one JSON object: the agency, the policy and calendar used, and for every clock its
warning instant, deadline and escalation ladder (ISO 8601, UTC and the agency's local time).
The next-response clock is shown as if the citizen wrote again at ``--received``.

Files default to the deployment's (``ADUAN_ROUTE_SLA_FILE``, ``ADUAN_REGISTRY_FILE``,
``ADUAN_CLASSIFY_CONFIG``), else the shipped ones. ``--category`` must be a category of the
classification taxonomy (the classify config): a typo would otherwise silently get the
default policy and a wrong deadline."""

from __future__ import annotations

import argparse
import difflib
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
from pydantic import ValidationError
from pydantic_settings import BaseSettings

from common.cli import settings_errors
from common.registry import RegistryError, load_registry
from common.settings import Settings
from schemas.sla import Clock
from services.classify.config import ClassifyConfig, ConfigError, load_config
from services.classify.settings import ClassifySettings
from services.route.policy import PolicyError, load_sla_config
from services.route.settings import RouteSettings


def _parse_time(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from exc
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no UTC offset (e.g. +07:00 or Z)")
    return value


def due_report(
    received: datetime,
    agency_id: str,
    category: str,
    urgency: str,
    config_path: Path,
    registry_path: Path,
) -> dict[str, object]:
    config = load_sla_config(config_path)
    registry = load_registry(registry_path)
    agency = registry.agency(agency_id)
    if agency is None:
        raise LookupError(f"unknown agency {agency_id!r} (not in {registry_path})")
    tz = ZoneInfo(agency.timezone)
    policy = config.select(category, urgency, agency.id, agency.kind)
    clocks: dict[str, object] = {}
    for clock in Clock:
        plan = config.plan(policy, agency, clock, received)
        if plan is None:
            continue
        clocks[clock.value] = {
            "target_seconds": plan.target.total_seconds(),
            "warning_at": plan.warning_at.isoformat(),
            "due_at": plan.due_at.isoformat(),
            "due_local": plan.due_at.astimezone(tz).isoformat(),
            "escalations": [
                {"level": lvl, "at": at.isoformat(), "escalate_to": to}
                for lvl, at, to in plan.escalations
            ],
        }
    return {
        "received": received.isoformat(),
        "agency_id": agency.id,
        "agency_kind": agency.kind,
        "timezone": agency.timezone,
        "category": category,
        "urgency": urgency,
        "policy": policy.id,
        "calendar": config.calendar_id(policy, agency),
        "due": {k: v["due_at"] for k, v in clocks.items()},  # type: ignore[index]
        "clocks": clocks,
    }


def check_category(category: str | None, taxonomy: ClassifyConfig, source: Path) -> str:
    """The category to plan for: the given one if the taxonomy has it, else the taxonomy's
    fallback when none was given; an unknown one is an error naming the closest matches."""
    if category is None:
        return taxonomy.fallback_category
    if category in taxonomy.categories:
        return category
    close = difflib.get_close_matches(category, list(taxonomy.categories), n=3)
    hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
    raise LookupError(f"unknown category {category!r} (not in {source}){hint}")


def _default_path(model: type[BaseSettings], field: str) -> Path:
    """A file setting as the deployment has it (environment), else its default."""
    try:
        value = getattr(model(), field)
    except ValidationError as exc:
        raise LookupError("; ".join(settings_errors(model, exc))) from None
    assert isinstance(value, Path)
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m services.route.due",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--received", required=True, type=_parse_time, help="ISO 8601 time")
    parser.add_argument("--agency", required=True, help="agency id from the registry")
    parser.add_argument(
        "--category", help="taxonomy category (default: the taxonomy's fallback category)"
    )
    parser.add_argument(
        "--urgency", default="normal", choices=["emergency", "high", "normal", "low"]
    )
    parser.add_argument("--config", type=Path, help="SLA YAML file ($ADUAN_ROUTE_SLA_FILE)")
    parser.add_argument("--registry", type=Path, help="registry YAML ($ADUAN_REGISTRY_FILE)")
    parser.add_argument(
        "--taxonomy", type=Path, help="classify config with the categories ($ADUAN_CLASSIFY_CONFIG)"
    )
    args = parser.parse_args(argv)
    try:
        config = args.config or _default_path(RouteSettings, "sla_file")
        registry = args.registry or _default_path(Settings, "registry_file")
        taxonomy_file = args.taxonomy or _default_path(ClassifySettings, "config")
        category = check_category(args.category, load_config(taxonomy_file), taxonomy_file)
        report = due_report(args.received, args.agency, category, args.urgency, config, registry)
    except (PolicyError, RegistryError, ConfigError, LookupError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(orjson.dumps(report).decode() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
