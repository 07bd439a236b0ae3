"""``python -m services.route.due``: answer "when is this complaint due?" without a broker.

Prints one JSON object: the agency, the policy and calendar used, and for every clock its
warning instant, deadline and escalation ladder (ISO 8601, UTC and the agency's local time).
The next-response clock is shown as if the citizen wrote again at ``--received``."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson

from common.registry import RegistryError, load_registry
from schemas.sla import Clock
from services.route.policy import DEFAULT_SLA_FILE, PolicyError, load_sla_config


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.route.due", description=__doc__)
    parser.add_argument("--received", required=True, type=_parse_time, help="ISO 8601 time")
    parser.add_argument("--agency", required=True, help="agency id from the registry")
    parser.add_argument("--category", default="other")
    parser.add_argument(
        "--urgency", default="normal", choices=["emergency", "high", "normal", "low"]
    )
    parser.add_argument("--config", type=Path, default=DEFAULT_SLA_FILE, help="SLA YAML file")
    parser.add_argument(
        "--registry", type=Path, default=Path("deploy/config/registry.yaml"), help="registry YAML"
    )
    args = parser.parse_args(argv)
    try:
        report = due_report(
            args.received, args.agency, args.category, args.urgency, args.config, args.registry
        )
    except (PolicyError, RegistryError, LookupError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(orjson.dumps(report).decode() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
