"""API tokens, web sessions and who a request acts as.

A token is ``adn_`` + 32 random bytes (``secrets.token_urlsafe``: 256 bits). The database
keeps only its SHA-256: with that much entropy a slow password hash adds nothing (there is
no dictionary to try), and a leaked table gives no usable token. Lookup is by hash, and the
candidate is compared again with ``hmac.compare_digest``. A token belongs to one agency
(``scope='agency'``) or is an operator's (``scope='admin'``); it is printed once, when an
operator issues it (``python -m services.desk token issue``), and can be revoked.

The web page signs in with a token and then holds a session cookie: 32 random bytes, stored
as a hash, expiring after ``ADUAN_DESK_SESSION_HOURS``, with a per-session CSRF value every
form must send back (the cookie is also ``SameSite=Strict`` and ``HttpOnly``)."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

TOKEN_PREFIX = "adn_"
TOKEN_SHAPE = re.compile(r"^adn_[A-Za-z0-9_-]{43}$")
SESSION_SHAPE = re.compile(r"^[A-Za-z0-9_-]{43}$")


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: an agency's token or an admin's."""

    token_id: int
    scope: str
    agency_id: str | None
    label: str

    @property
    def is_admin(self) -> bool:
        return self.scope == "admin"

    @property
    def actor(self) -> str:
        """Recorded on every command: which token (and so which agency and person) acted."""
        return f"desk:{self.agency_id or 'admin'}:{self.label}#{self.token_id}"


def bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None


async def principal_for_token(pool: asyncpg.Pool, token: str | None) -> Principal | None:
    """The principal of a valid, unrevoked token; None otherwise (one answer for all cases)."""
    if token is None or not TOKEN_SHAPE.match(token):
        return None
    wanted = digest(token)
    row = await pool.fetchrow(
        "SELECT token_id, token_hash, scope, agency_id, label FROM desk_tokens "
        "WHERE token_hash = $1 AND revoked_at IS NULL",
        wanted,
    )
    if row is None or not hmac.compare_digest(bytes(row["token_hash"]), wanted):
        return None
    return Principal(row["token_id"], row["scope"], row["agency_id"], row["label"])


async def issue_token(
    conn: asyncpg.Pool | asyncpg.Connection, scope: str, agency_id: str | None, label: str
) -> tuple[int, str]:
    """Create a token; returns (id, token). The token itself is not stored anywhere."""
    if scope not in ("agency", "admin"):
        raise ValueError(f"scope must be agency or admin, not {scope!r}")
    if (scope == "agency") != (agency_id is not None):
        raise ValueError("an agency token names its agency; an admin token names none")
    if not label.strip():
        raise ValueError("a token needs a label (who holds it)")
    token = new_token()
    token_id = await conn.fetchval(
        "INSERT INTO desk_tokens (token_hash, scope, agency_id, label) VALUES ($1, $2, $3, $4) "
        "RETURNING token_id",
        digest(token),
        scope,
        agency_id,
        label.strip(),
    )
    return int(token_id), token


async def revoke_token(pool: asyncpg.Pool, token_id: int) -> bool:
    """Revoke a token and end its web sessions; False when there was nothing to revoke."""
    async with pool.acquire() as c, c.transaction():
        done = await c.execute(
            "UPDATE desk_tokens SET revoked_at = now() WHERE token_id = $1 AND revoked_at IS NULL",
            token_id,
        )
        await c.execute("DELETE FROM desk_sessions WHERE token_id = $1", token_id)
    return bool(done.endswith(" 1"))


async def list_tokens(conn: asyncpg.Pool | asyncpg.Connection) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            "SELECT token_id, scope, agency_id, label, created_at, revoked_at FROM desk_tokens "
            "ORDER BY token_id"
        )
    )


# --- web sessions --------------------------------------------------------------------------
async def create_session(pool: asyncpg.Pool, principal: Principal, hours: float) -> tuple[str, str]:
    """A new session for ``principal``: (cookie value, CSRF value)."""
    cookie, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    await pool.execute(
        "INSERT INTO desk_sessions (session_hash, token_id, csrf, expires_at) "
        "VALUES ($1, $2, $3, $4)",
        digest(cookie),
        principal.token_id,
        csrf,
        datetime.now(UTC) + timedelta(hours=hours),
    )
    return cookie, csrf


async def session_principal(pool: asyncpg.Pool, cookie: str | None) -> tuple[Principal, str] | None:
    """(principal, CSRF value) of a live session whose token is still valid."""
    if cookie is None or not SESSION_SHAPE.match(cookie):
        return None
    row = await pool.fetchrow(
        """SELECT t.token_id, t.scope, t.agency_id, t.label, s.csrf
           FROM desk_sessions s JOIN desk_tokens t USING (token_id)
           WHERE s.session_hash = $1 AND s.expires_at > now() AND t.revoked_at IS NULL""",
        digest(cookie),
    )
    if row is None:
        return None
    return Principal(row["token_id"], row["scope"], row["agency_id"], row["label"]), row["csrf"]


async def end_session(pool: asyncpg.Pool, cookie: str | None) -> None:
    if cookie and SESSION_SHAPE.match(cookie):
        await pool.execute("DELETE FROM desk_sessions WHERE session_hash = $1", digest(cookie))


def csrf_ok(expected: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())
