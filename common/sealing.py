"""Sealed references: a platform id only the services that must reply with it can read.

Every platform id that leaves the raw topic is a keyed pseudonym (issue 10), which is one-way:
notify cannot turn ``instagram:m_…`` back into the comment id the Graph API needs to reply
under it. For accounts that send citizen acknowledgements, ingest therefore also writes the
raw id *sealed*: encrypted and authenticated with AES-GCM under ``ADUAN_REPLY_KEY``, a secret
only ingest and notify hold. To every other reader of the topics the reference is random
bytes. The message id is bound in as associated data, so a reference copied onto another
message does not open. AES-GCM from ``cryptography`` (well kept, constant-time) rather than
anything hand-made."""

from __future__ import annotations

import base64
import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "s1."
"""Format marker: version 1 = AES-256-GCM, 96-bit random nonce, urlsafe base64."""


class Sealer:
    """Seals and opens references under one deployment key."""

    __slots__ = ("_aead",)

    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError("ADUAN_REPLY_KEY must not be empty")
        # Any operator-chosen string becomes a 256-bit key; the secret is long and random.
        self._aead = AESGCM(hashlib.sha256(b"aduan-reply-ref\x00" + secret.encode()).digest())

    def seal(self, value: str, bound_to: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, value.encode(), bound_to.encode())
        return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")

    def open(self, token: str, bound_to: str) -> str:
        """The sealed value; ValueError when the token is malformed, was sealed under
        another key or belongs to another message."""
        if not token.startswith(PREFIX):
            raise ValueError("not a sealed reference")
        body = token.removeprefix(PREFIX)
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            return self._aead.decrypt(raw[:12], raw[12:], bound_to.encode()).decode()
        except (InvalidTag, ValueError, UnicodeDecodeError) as exc:
            raise ValueError("sealed reference does not open") from exc
