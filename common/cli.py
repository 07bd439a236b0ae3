"""The command line every aduan service shares: ``--help``, ``--version``, settings checked
before the network, one-line errors, exit codes.

Before this, ``python -m services.classify --help`` ignored ``--help``, tried the broker and
printed about 150 connection errors over 30 s and a traceback; a bad ``ADUAN_HTTP_PORT``
gave a pydantic traceback naming ``http_port``. Now:

* ``--help`` lists the service's ``ADUAN_*`` variables (from its settings models) and exits;
* settings are validated first; each problem is one line naming the variable;
* an unreachable broker is one line per retry interval, then a give-up line
  (``wait_for_broker``);
* operator mistakes end in one line on stderr and a non-zero exit code, never a traceback.

Exit codes: 0 clean stop, 2 bad settings or arguments, 3 a dependency unreachable (broker,
database), 1 anything else."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any, NoReturn

from pydantic import ValidationError
from pydantic_settings import BaseSettings

from common.runtime import configure_logging, run_until_signalled

EXIT_SETTINGS = 2
EXIT_UNREACHABLE = 3

log = logging.getLogger("aduan")


class Unreachable(RuntimeError):
    """A dependency (broker, database) did not answer within the give-up time."""


class OperatorError(RuntimeError):
    """A mistake an operator can fix (a bad file, a wrong option); printed as one line."""


def aduan_version() -> str:
    try:
        return version("aduan")
    except PackageNotFoundError:
        return "unknown"


def env_name(model: type[BaseSettings], field: str) -> str:
    """The environment variable a settings field is read from (its first alias if any)."""
    info = model.model_fields.get(field)
    alias = info.validation_alias if info is not None else None
    choices = getattr(alias, "choices", None)
    if choices:
        return str(choices[0])
    if isinstance(alias, str):
        return alias
    prefix = model.model_config.get("env_prefix", "") or ""
    return f"{prefix}{field}".upper()


def settings_errors(model: type[BaseSettings], error: ValidationError) -> list[str]:
    """One line per problem, naming the variable and the value given."""
    lines = []
    for e in error.errors():
        loc = [str(part) for part in e.get("loc", ())]
        message = str(e.get("msg", "invalid")).removeprefix("Value error, ")
        if not loc:  # a rule over several fields: its message names them
            lines.append(message)
            continue
        given = e.get("input")
        shown = f"={given!r}" if isinstance(given, str | int | float) else ""
        lines.append(f"{env_name(model, loc[0])}{shown}: {message}")
    return lines


def load_settings(name: str, models: Sequence[type[BaseSettings]]) -> list[BaseSettings]:
    """Instantiate every settings model from the environment or exit 2 with one line per
    problem (all of them, not only the first)."""
    loaded: list[BaseSettings] = []
    problems: list[str] = []
    for model in models:
        try:
            loaded.append(model())
        except ValidationError as exc:
            problems += settings_errors(model, exc)
    if problems:
        for line in problems:
            print(f"{name}: {line}", file=sys.stderr)
        raise SystemExit(EXIT_SETTINGS)
    return loaded


def variables_help(models: Sequence[type[BaseSettings]]) -> str:
    lines = ["environment variables:"]
    for model in models:
        for field, info in model.model_fields.items():
            default = "required" if info.is_required() else f"default {info.default!r}"
            text = info.description or ""
            lines.append(f"  {env_name(model, field):<34} {text} ({default})".rstrip())
    return "\n".join(lines)


def parser(
    name: str, description: str, models: Sequence[type[BaseSettings]]
) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=f"python -m services.{name}",
        description=description,
        epilog=variables_help(models),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"aduan {aduan_version()}")
    return p


def run_service(
    name: str,
    description: str,
    models: Sequence[type[BaseSettings]],
    main: Callable[[asyncio.Event], Awaitable[None]],
    argv: Sequence[str] | None = None,
) -> NoReturn:
    """Parse arguments, validate settings, then run ``main(stop)`` until SIGINT/SIGTERM.

    Known failures end in one line and an exit code (see the module docstring)."""
    parser(name, description, models).parse_args(argv)
    load_settings(name, models)
    configure_logging(name)
    try:
        run_until_signalled(main)
    except Unreachable as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_UNREACHABLE) from None
    except (OperatorError, ValueError, OSError) as exc:
        # ValueError covers the config loaders' errors (registry, SLA, classify config),
        # which name the file, the entry and the field.
        print(f"{name}: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_SETTINGS) from None
    raise SystemExit(0)


async def retry_until(
    what: str,
    attempt: Callable[[], Awaitable[Any]],
    *,
    give_up_after_s: float,
    every_s: float = 5.0,
    stop: asyncio.Event | None = None,
) -> Any:
    """Call ``attempt`` until it succeeds; one log line per ``every_s`` while it fails, and
    ``Unreachable`` after ``give_up_after_s``. The underlying client's own per-try errors
    are silenced meanwhile (aiokafka logs one per connection attempt)."""
    deadline = time.monotonic() + give_up_after_s
    next_report = 0.0
    quiet = [logging.getLogger(n) for n in ("aiokafka", "kafka", "asyncpg")]
    levels = [q.level for q in quiet]
    for q in quiet:
        q.setLevel(logging.CRITICAL)
    try:
        while True:
            try:
                return await attempt()
            except Exception as exc:
                now = time.monotonic()
                if now >= deadline:
                    raise Unreachable(
                        f"{what} unreachable for {give_up_after_s:.0f}s ({_brief(exc)}); giving up"
                    ) from exc
                if now >= next_report:
                    left = deadline - now
                    log.warning(
                        "%s unreachable (%s); still trying, giving up in %.0fs",
                        what, _brief(exc), left,
                    )  # fmt: skip
                    next_report = now + every_s
                if stop is not None and stop.is_set():
                    raise Unreachable(f"{what} unreachable; stopped while waiting") from exc
                await asyncio.sleep(min(1.0, max(0.0, deadline - now)))
    finally:
        for q, level in zip(quiet, levels, strict=True):
            q.setLevel(level)


def _brief(exc: BaseException) -> str:
    name = type(exc).__name__
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if not text:
        return name
    return (text if text.startswith(name) else f"{name}: {text}")[:200]
