"""Webhook signature checks over the raw body bytes, constant-time.

Every check hashes the bytes exactly as received (never re-serialised JSON) and compares
with ``hmac.compare_digest``. When several secrets are configured (several Meta apps, or
several generic senders) every candidate is compared, with no early exit."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Iterable

Signer = Callable[[str, bytes], str]


def meta_signature(secret: str, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` value Meta sends: ``sha256=<hex HMAC-SHA256>``."""
    # hmac.digest: the one-shot C path, same value as hmac.new(...).hexdigest().
    return "sha256=" + hmac.digest(secret.encode(), body, hashlib.sha256).hex()


def x_signature(secret: str, body: bytes) -> str:
    """The ``x-twitter-webhooks-signature`` value: ``sha256=<base64 HMAC-SHA256>``."""
    digest = hmac.digest(secret.encode(), body, hashlib.sha256)
    return "sha256=" + base64.b64encode(digest).decode()


def x_crc_response(secret: str, crc_token: str) -> dict[str, str]:
    """The body X expects for a CRC GET: the token HMAC-ed with the consumer secret."""
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


def verify_generic(
    signature: str | None,
    timestamp: str | None,
    body: bytes,
    secrets: Iterable[str],
    now: float,
    window_s: float,
) -> str | None:
    """None when the generic delivery is authentic and fresh, else the refusal reason:
    ``forged`` (missing/bad signature or timestamp) or ``replayed`` (outside the window)."""
    if not signature or not timestamp or not timestamp.isdigit() or len(timestamp) > 12:
        return "forged"
    if not verify_any(signature, body, secrets, lambda s, b: generic_signature(s, timestamp, b)):
        return "forged"
    if abs(now - int(timestamp)) > window_s:
        return "replayed"
    return None
