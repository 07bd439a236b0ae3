"""Webhook signature checks over the raw body bytes, constant-time."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable


def meta_signature(secret: str, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` value Meta sends: ``sha256=<hex HMAC-SHA256>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def x_signature(secret: str, body: bytes) -> str:
    """The ``x-twitter-webhooks-signature`` value: ``sha256=<base64 HMAC-SHA256>``."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return "sha256=" + base64.b64encode(digest).decode()


def verify_any(
    header: str | None, body: bytes, secrets: Iterable[str], sign=meta_signature
) -> bool:  # type: ignore[no-untyped-def]
    """True when ``header`` matches the signature under any configured secret.

    Every candidate is compared (no early exit on the first mismatch) so timing does not
    reveal which secret, if any, came close."""
    if not header:
        return False
    ok = False
    for secret in secrets:
        ok |= hmac.compare_digest(header.encode(), sign(secret, body).encode())
    return ok
