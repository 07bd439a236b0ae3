"""``python -m services.desk``: the desk service; ``python -m services.desk token ...``: tokens.

    python -m services.desk                                   # serve (consumer, API, /desk)
    python -m services.desk migrate                           # apply migrations and exit
    python -m services.desk token issue --agency sby-health --label "Budi (shift pagi)"
    python -m services.desk token issue --admin --label "ops"
    python -m services.desk token list
    python -m services.desk token revoke 7

``token issue`` prints the token once, on standard output; it is stored only as a hash."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

import asyncpg

from common.registry import RegistryError, load_registry
from common.runtime import configure_logging, run_until_signalled
from common.settings import get_settings
from services.desk import auth, service, store
from services.desk.settings import DeskSettings

log = logging.getLogger("aduan.desk")


async def serve(stop: asyncio.Event) -> None:
    settings = get_settings()
    desk = await service.start(settings)
    log.info("desk on %s/desk (API %s/api/v1)", desk.url, desk.url)
    assert desk.consumer is not None
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait([stopped, desk.consumer], return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    failure = desk.consumer.exception() if desk.consumer.done() else None
    await desk.stop()
    if failure is not None:
        # Exit non-zero so the orchestrator restarts it; it resumes from the stored offsets.
        raise SystemExit(f"desk: the consumer stopped: {failure!r}")


async def _pool() -> asyncpg.Pool:
    settings, desk = get_settings(), DeskSettings()
    if not desk.database_url:
        raise SystemExit("desk: ADUAN_DESK_DATABASE_URL is not set")
    pool = await store.create_pool(
        desk.database_url, max_size=2, password=service.database_password(settings, desk)
    )
    await store.migrate_database(pool)
    return pool


async def token_command(args: argparse.Namespace) -> None:
    pool = await _pool()
    try:
        if args.action == "issue":
            if args.admin == bool(args.agency):
                raise SystemExit("desk: give exactly one of --agency ID or --admin")
            if args.agency:
                registry = load_registry(get_settings().registry_file)
                if registry.agency(args.agency) is None:
                    raise SystemExit(f"desk: no agency {args.agency!r} in the registry")
            scope = "admin" if args.admin else "agency"
            token_id, token = await auth.issue_token(pool, scope, args.agency, args.label)
            print(token)
            print(
                f"token {token_id} for {args.agency or 'admin'} ({args.label}); shown once, "
                "stored only as a hash",
                file=sys.stderr,
            )
        elif args.action == "list":
            for r in await auth.list_tokens(pool):
                state = f"revoked {r['revoked_at']:%Y-%m-%d}" if r["revoked_at"] else "active"
                print(f"{r['token_id']:>5}  {r['scope']:<6}  {r['agency_id'] or '-':<28}  "
                      f"{state:<18}  {r['label']}")  # fmt: skip
        elif args.action == "revoke":
            if not await auth.revoke_token(pool, args.token_id):
                raise SystemExit(f"desk: no active token {args.token_id}")
            print(f"token {args.token_id} revoked; its web sessions ended", file=sys.stderr)
    finally:
        await pool.close()


async def migrate_command() -> None:
    pool = await _pool()
    await pool.close()
    print("desk: database schema is current", file=sys.stderr)


def cli(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m services.desk",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve", help="run the desk (the default)")
    sub.add_parser("migrate", help="apply the database migrations and exit")
    token = sub.add_parser("token", help="issue, list or revoke API tokens")
    tsub = token.add_subparsers(dest="action", required=True)
    issue = tsub.add_parser("issue", help="issue a token and print it once")
    issue.add_argument("--agency", help="agency id from the registry")
    issue.add_argument("--admin", action="store_true", help="an operator token (sees all)")
    issue.add_argument("--label", required=True, help="who holds it (recorded on actions)")
    tsub.add_parser("list", help="list tokens (never the tokens themselves)")
    revoke = tsub.add_parser("revoke", help="revoke a token and end its sessions")
    revoke.add_argument("token_id", type=int)
    args = parser.parse_args(argv)
    configure_logging("desk")
    try:
        if args.command == "token":
            asyncio.run(token_command(args))
        elif args.command == "migrate":
            asyncio.run(migrate_command())
        else:
            run_until_signalled(serve)
    except (service.ConfigurationError, RegistryError, ValueError) as exc:
        raise SystemExit(f"desk: {exc}") from None


if __name__ == "__main__":
    cli()
