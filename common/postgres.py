"""PostgreSQL for the services that keep rows: an embedded throw-away server and migrations.

**Embedded server.** ``make run`` and the tests need a real PostgreSQL without asking a
newcomer to set one up, as the embedded broker does for Kafka. ``EmbeddedPostgres`` starts
the machine's PostgreSQL binaries (Debian's ``postgresql`` package; ``deploy/scripts/
ensure-tools.sh postgresql`` installs it when missing) on a free loopback port with its data in a
temporary directory: ``initdb`` and the start take about a second. PostgreSQL refuses to run
as root, so under root the binaries run as the ``postgres`` system user. The server is this
process's own child (``postgres``, not ``pg_ctl start``, which detaches it) with a parent-death
signal: a ``make run`` killed with SIGKILL takes its database down with it instead of leaving
a server on the port (only the temporary directory stays behind). Durability settings are
relaxed (``fsync=off``): the data is thrown away at stop.

**Migrations** are an ordered folder of SQL files per service (``0001_name.sql``, ...)
applied once each, in order, recorded in ``schema_migrations (service, version)``, all in one
transaction under an advisory lock so two replicas starting together cannot apply one twice.
Chosen over alembic because the services write SQL by hand with asyncpg (no ORM models for
alembic to diff) and the whole mechanism is forty lines with a test; what alembic would add
(downgrades, autogeneration) is not wanted for a system of record that only moves forward."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from common.broker import die_with_parent, free_port

if TYPE_CHECKING:
    import asyncpg

MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


class PostgresError(RuntimeError):
    pass


def postgres_bin_dir() -> Path:
    """Where ``initdb`` and ``pg_ctl`` are: ``ADUAN_PG_BIN``, Debian's newest version, PATH."""
    explicit = os.environ.get("ADUAN_PG_BIN")
    if explicit:
        return Path(explicit)
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if versions:
        return versions[-1].parent
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    raise PostgresError(
        "no PostgreSQL binaries (initdb, pg_ctl): install Debian's 'postgresql' package "
        "(`sh deploy/scripts/ensure-tools.sh postgresql` does it as root) "
        "or set the service's database URL"
    )


class EmbeddedPostgres:
    """A throw-away PostgreSQL on a free loopback port; ``stop()`` deletes its data."""

    def __init__(self, port: int | None = None, database: str = "aduan") -> None:
        self.port = port or free_port()
        self.database = database
        self.user = "aduan"
        self.root: Path | None = None
        self._server: subprocess.Popen[bytes] | None = None
        self._as_postgres = os.geteuid() == 0

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{self.database}"

    def url_for(self, database: str) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> None:
        cmd = list(args)
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise PostgresError(f"{Path(args[0]).name} failed: {' / '.join(tail)}")

    def start(self, timeout: float = 30.0) -> EmbeddedPostgres:
        bin_dir = postgres_bin_dir()
        self.root = Path(tempfile.mkdtemp(prefix="aduan-pg-"))
        data, sockets = self.root / "data", self.root / "run"
        sockets.mkdir()
        if self._as_postgres:
            shutil.chown(self.root, "postgres")
            shutil.chown(sockets, "postgres")
        self._run(
            str(bin_dir / "initdb"), "-D", str(data), "-U", self.user,
            "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync",
        )  # fmt: skip
        options = (
            f"-p {self.port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        log = (self.root / "postgres.log").open("ab")
        # SIGINT is PostgreSQL's fast shutdown: sessions of a dead parent are not waited for.
        # Its own session: a Ctrl-C at the terminal reaches the processes first, and the
        # database is stopped after them (stop()), not under their feet.
        self._server = subprocess.Popen(
            [str(bin_dir / "postgres"), "-D", str(data), *options.split()],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
            user="postgres" if self._as_postgres else None,
            group="postgres" if self._as_postgres else None,
            extra_groups=[] if self._as_postgres else None,
            preexec_fn=lambda: die_with_parent(signal.SIGINT),
        )  # fmt: skip
        log.close()
        try:
            self._wait_ready(bin_dir, timeout)
        except BaseException:
            self.stop()
            raise
        self._run(
            str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user,
            self.database,
        )  # fmt: skip
        return self

    def _wait_ready(self, bin_dir: Path, timeout: float) -> None:
        """Until the server accepts connections (``pg_isready``; an open port alone may still
        answer "starting up"), or one line with the end of its log if it exits or times out."""
        assert self._server is not None and self.root is not None
        deadline = time.monotonic() + timeout
        probe = [str(bin_dir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)]
        while time.monotonic() < deadline:
            if self._server.poll() is not None:
                break
            if subprocess.run(probe, check=False).returncode == 0:
                return
            time.sleep(0.05)  # polling interval of the readiness probe, not a fixed wait
        log = (self.root / "postgres.log").read_text(errors="replace").strip().splitlines()
        state = "exited" if self._server.poll() is not None else f"not ready in {timeout:g}s"
        raise PostgresError(f"postgres {state}: {' / '.join(log[-3:])}")

    def stop(self) -> None:
        if self.root is None:
            return
        server, self._server = self._server, None
        if server is not None and server.poll() is None:
            server.send_signal(signal.SIGINT)  # fast shutdown
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None

    def __enter__(self) -> EmbeddedPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def postgres_from_env(variable: str) -> Iterator[tuple[str, EmbeddedPostgres | None]]:
    """Yield ``(database URL, embedded server or None)``: the URL in ``variable`` when set,
    else an embedded server started here and stopped when the block exits."""
    configured = os.environ.get(variable)
    if configured:
        yield configured, None
        return
    with EmbeddedPostgres() as server:
        yield server.url, server


# --- migrations -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def read_migrations(folder: Path) -> list[Migration]:
    """The folder's migrations in order; a misnamed file or a repeated version is an error
    (a file that silently never runs would be worse)."""
    found: dict[int, Migration] = {}
    for path in sorted(folder.glob("*.sql")):
        match = MIGRATION_NAME.match(path.name)
        if match is None:
            raise PostgresError(f"{path}: migration files are named NNNN_lower_snake.sql")
        version = int(match.group(1))
        if version in found:
            raise PostgresError(f"{path}: version {version} is also {found[version].name}")
        found[version] = Migration(version, path.name, path.read_text(encoding="utf-8"))
    return [found[v] for v in sorted(found)]


async def migrate(conn: asyncpg.Connection, service: str, folder: Path) -> list[str]:
    """Apply the folder's migrations that ``service`` has not applied yet; returns their
    names. One transaction under an advisory lock: all or nothing, one replica at a time."""
    migrations = read_migrations(folder)
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('aduan-migrations'))")
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   service text NOT NULL,
                   version integer NOT NULL,
                   name text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now(),
                   PRIMARY KEY (service, version))"""
        )
        rows = await conn.fetch("SELECT version FROM schema_migrations WHERE service = $1", service)
        done = {r["version"] for r in rows}
        newest = max(done, default=0)
        if migrations and newest > migrations[-1].version:
            raise PostgresError(
                f"the database has {service} migration {newest}, newer than this release's "
                f"{migrations[-1].version}: run the newer release"
            )
        applied: list[str] = []
        for m in migrations:
            if m.version in done:
                continue
            await conn.execute(m.sql)
            await conn.execute(
                "INSERT INTO schema_migrations (service, version, name) VALUES ($1, $2, $3)",
                service,
                m.version,
                m.name,
            )
            applied.append(m.name)
        return applied
