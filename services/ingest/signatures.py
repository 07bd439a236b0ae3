"""Webhook signature checks over the raw body bytes, constant-time.

Every check hashes the bytes exactly as received (never re-serialised JSON) and compares
with ``hmac.compare_digest``. When several secrets are candidates (several Meta or X apps)
every candidate is compared, with no early exit.

No endpoint signs caller-chosen data: X's CRC answer is an HMAC with the consumer secret,
exactly what a POST signature is, so ``x_crc_response`` signs only a token of the shape X
sends (``is_crc_token``: 8-256 characters of the base64 / base64url alphabet). A delivery
body is a JSON object (it starts with ``{``), so no CRC answer is ever a valid signature of
one. Meta's verification answers ``hub.challenge`` only to a caller that knows the verify
token, and only when it is a short plain token (``is_challenge``)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Callable, Iterable

Signer = Callable[[str, bytes], str]

_CRC_TOKEN = re.compile(r"[A-Za-z0-9+/_-]{8,256}={0,2}")
_CHALLENGE = re.compile(r"[A-Za-z0-9._~-]{1,256}")


def is_crc_token(token: str) -> bool:
    """True for a token of the shape X sends in a CRC (base64 or base64url, 8-256 chars)."""
    return _CRC_TOKEN.fullmatch(token) is not None


def is_challenge(challenge: str) -> bool:
    """True for a ``hub.challenge`` Meta could send (a number; any short URL-safe token)."""
    return _CHALLENGE.fullmatch(challenge) is not None


def meta_signature(secret: str, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` value Meta sends: ``sha256=<hex HMAC-SHA256>``."""
    # hmac.digest: the one-shot C path, same value as hmac.new(...).hexdigest().
    return "sha256=" + hmac.digest(secret.encode(), body, hashlib.sha256).hex()


def x_signature(secret: str, body: bytes) -> str:
    """The ``x-twitter-webhooks-signature`` value: ``sha256=<base64 HMAC-SHA256>``."""
    digest = hmac.digest(secret.encode(), body, hashlib.sha256)
    return "sha256=" + base64.b64encode(digest).decode()


def x_crc_response(secret: str, crc_token: str) -> dict[str, str]:
    """The body X expects for a CRC GET: the token HMAC-ed with the consumer secret.

    Raises ValueError for anything but a CRC-shaped token: signing caller-chosen data with
    the consumer secret would forge POST signatures."""
    if not is_crc_token(crc_token):
        raise ValueError("not a CRC token")
    return {"response_token": x_signature(secret, crc_token.encode())}


def generic_signature(secret: str, timestamp: str, body: bytes) -> str:
    """``X-Aduan-Signature`` for the generic webhook: the timestamp is signed with the body
    so an old delivery cannot be replayed with a fresh timestamp."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_any(
    header: str | None, body: bytes, secrets: Iterable[str], sign: Signer = meta_signature
) -> bool:
    """True when ``header`` matches the signature under any configured secret.

    Every candidate is compared (no early exit on the first mismatch) so timing does not
    reveal which secret, if any, came close."""
    if not header:
        return False
    expected = header.strip().encode()
    ok = False
    for secret in secrets:
        ok |= hmac.compare_digest(expected, sign(secret, body).encode())
    return ok


def matching(
    header: str | None, body: bytes, candidates: Iterable[tuple[str, str]], sign: Signer
) -> frozenset[str]:
    """The names of the candidate ``(name, secret)`` pairs whose signature of ``body`` is
    ``header``; every candidate is compared (no early exit). Usually one name, or none."""
    if not header:
        return frozenset()
    expected = header.strip().encode()
    found = set()
    for name, secret in candidates:
        if hmac.compare_digest(expected, sign(secret, body).encode()):
            found.add(name)
    return frozenset(found)


def verify_generic(
    signature: str | None,
    timestamp: str | None,
    body: bytes,
    secrets: Iterable[str],
    now: float,
    window_s: float,
) -> str | None:
    """None when the generic delivery is authentic and fresh, else the refusal reason:
    ``forged`` (missing/bad signature or timestamp) or ``replayed`` (outside the window).
    ``secrets`` is the one secret of the sender the request named."""
    if not signature or not timestamp or not timestamp.isdigit() or len(timestamp) > 12:
        return "forged"
    if not verify_any(signature, body, secrets, lambda s, b: generic_signature(s, timestamp, b)):
        return "forged"
    if abs(now - int(timestamp)) > window_s:
        return "replayed"
    return None
