"""The embedded PostgreSQL and the migrations runner, against a real server."""

from __future__ import annotations

import asyncio
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import pytest

from common.postgres import PostgresError, migrate, read_migrations

REPO = Path(__file__).resolve().parents[2]


def _write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(exist_ok=True)
    for name, sql in files.items():
        (folder / name).write_text(sql, encoding="utf-8")
    return folder


async def test_migrations_apply_once_in_order_and_resume(database_url: str, tmp_path: Path) -> None:
    folder = _write(
        tmp_path / "m",
        {
            "0001_complaints.sql": "CREATE TABLE complaints (id text PRIMARY KEY);",
            "0002_status.sql": "ALTER TABLE complaints ADD COLUMN status text;",
        },
    )
    conn = await asyncpg.connect(database_url)
    try:
        assert await migrate(conn, "desk", folder) == ["0001_complaints.sql", "0002_status.sql"]
        assert await migrate(conn, "desk", folder) == []  # a restart applies nothing
        _write(folder, {"0003_index.sql": "CREATE INDEX ON complaints (status);"})
        assert await migrate(conn, "desk", folder) == ["0003_index.sql"]
        await conn.execute("INSERT INTO complaints VALUES ('c1', 'open')")
        # Another service's history is its own.
        assert await migrate(conn, "notify", _write(tmp_path / "n", {})) == []
    finally:
        await conn.close()


async def test_a_failing_migration_applies_nothing(database_url: str, tmp_path: Path) -> None:
    folder = _write(
        tmp_path / "m",
        {
            "0001_ok.sql": "CREATE TABLE a (id int);",
            "0002_broken.sql": "CREATE TABLE b (id int); SELECT no_such_function();",
        },
    )
    conn = await asyncpg.connect(database_url)
    try:
        with pytest.raises(asyncpg.UndefinedFunctionError):
            await migrate(conn, "desk", folder)
        tables = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        assert {r["tablename"] for r in tables} == set()
    finally:
        await conn.close()


async def test_two_replicas_starting_together_apply_each_migration_once(
    database_url: str, tmp_path: Path
) -> None:
    folder = _write(tmp_path / "m", {"0001_t.sql": "CREATE TABLE t (id int);"})
    conns = [await asyncpg.connect(database_url) for _ in range(2)]
    try:
        results = await asyncio.gather(*(migrate(c, "desk", folder) for c in conns))
        assert sorted(map(len, results)) == [0, 1]
    finally:
        for c in conns:
            await c.close()


async def test_a_database_newer_than_the_release_is_refused(
    database_url: str, tmp_path: Path
) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await migrate(conn, "desk", _write(tmp_path / "new", {"0002_x.sql": "SELECT 1;"}))
        with pytest.raises(PostgresError, match="newer than this release"):
            await migrate(conn, "desk", _write(tmp_path / "old", {"0001_x.sql": "SELECT 1;"}))
    finally:
        await conn.close()


def test_misnamed_or_repeated_migrations_are_refused(tmp_path: Path) -> None:
    with pytest.raises(PostgresError, match="NNNN_lower_snake"):
        read_migrations(_write(tmp_path / "a", {"1_init.sql": "SELECT 1;"}))
    with pytest.raises(PostgresError, match="version 1 is also"):
        read_migrations(_write(tmp_path / "b", {"0001_a.sql": "", "0001_b.sql": ""}))


def test_the_embedded_server_dies_with_a_parent_killed_hard(tmp_path: Path) -> None:
    """``make run`` killed with SIGKILL used to leave its PostgreSQL running on the port."""
    script = (
        "import sys; from common.postgres import EmbeddedPostgres\n"
        "pg = EmbeddedPostgres().start()\n"
        "print(pg.port, pg.root, flush=True)\n"
        "sys.stdin.read()\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script], cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    root = ""
    try:
        assert parent.stdout is not None
        port_text, root = parent.stdout.readline().decode().split(maxsplit=1)
        port = int(port_text)
        assert _accepts(port)  # the server the parent started is up
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        deadline = time.monotonic() + 30
        while _accepts(port) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _accepts(port), "the embedded PostgreSQL outlived its parent"
    finally:
        parent.kill()
        if root:  # a hard-killed parent cannot remove its data directory: the test does
            shutil.rmtree(root.strip(), ignore_errors=True)


def _accepts(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1.0)
        return s.connect_ex(("127.0.0.1", port)) == 0
