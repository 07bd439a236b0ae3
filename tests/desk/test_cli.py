"""The operator command: a token is printed once, stored only as a hash, listed without
itself, and revoked; a missing database URL is a one-line error."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import asyncpg

from services.desk import auth


def desk(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "services.desk", *args], env=env,
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip


async def test_issue_list_revoke(database_url: str, pool: asyncpg.Pool) -> None:
    env = {**os.environ, "ADUAN_DESK_DATABASE_URL": database_url}
    issued = desk("token", "issue", "--agency", "sby-health", "--label", "Rina", env=env)
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.strip()
    assert auth.TOKEN_SHAPE.match(token) and "shown once" in issued.stderr
    row = await pool.fetchrow("SELECT * FROM desk_tokens")
    assert bytes(row["token_hash"]) == hashlib.sha256(token.encode()).digest()
    assert token not in str(dict(row))  # only the hash is kept
    who = await auth.principal_for_token(pool, token)
    assert who is not None and (who.agency_id, who.label, who.scope) == ("sby-health", "Rina",
                                                                          "agency")  # fmt: skip
    listed = desk("token", "list", env=env)
    assert "sby-health" in listed.stdout and token not in listed.stdout
    assert desk("token", "revoke", str(row["token_id"]), env=env).returncode == 0
    assert await auth.principal_for_token(pool, token) is None
    assert "revoked" in desk("token", "list", env=env).stdout


def test_refusals_are_one_line(database_url: str) -> None:
    env = {**os.environ, "ADUAN_DESK_DATABASE_URL": database_url}
    unknown = desk("token", "issue", "--agency", "sby-nowhere", "--label", "x", env=env)
    assert unknown.returncode != 0 and unknown.stderr.strip().endswith(
        "no agency 'sby-nowhere' in the registry"
    )
    both = desk("token", "issue", "--agency", "sby-health", "--admin", "--label", "x", env=env)
    assert "exactly one of --agency ID or --admin" in both.stderr
    no_db = {k: v for k, v in os.environ.items() if k != "ADUAN_DESK_DATABASE_URL"}
    served = desk(env=no_db)
    assert served.returncode != 0
    assert served.stderr.strip().splitlines()[-1].startswith("desk: ADUAN_DESK_DATABASE_URL")
