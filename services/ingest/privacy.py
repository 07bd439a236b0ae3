"""Masking and pseudonymisation: what keeps citizens' identifiers inside the raw topic."""

from __future__ import annotations

import hashlib
import hmac
import re

# NIK (national id) and KK (family card) numbers are 16 digits, sometimes grouped.
_NIK = re.compile(r"(?<!\d)(?:\d[ .-]?){15}\d(?!\d)")
# Indonesian phone numbers: +62 / 62 / 0 followed by 8..., allowing spaces, dots and dashes.
_PHONE = re.compile(r"(?<![\w+])(?:\+62|62|0)[\s.-]?8\d{1,3}(?:[\s.-]?\d{2,4}){2,3}(?!\d)")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


def mask_text(text: str) -> str:
    """Replace NIK/KK numbers, phone numbers and e-mail addresses by typed placeholders.

    Vehicle plates (``L 1234 AB``) are left alone: they are evidence in parking complaints."""
    text = _EMAIL.sub("[EMAIL]", text)
    text = _NIK.sub("[NIK]", text)
    return _PHONE.sub("[PHONE]", text)


class Pseudonymizer:
    """Keyed HMAC of a platform user id: stable per deployment, not reversible without the key."""

    def __init__(self, key: bytes) -> None:
        if not key:
            raise ValueError("pseudonym key must not be empty (set ADUAN_PSEUDONYM_KEY)")
        self._key = key

    def __call__(self, platform: str, user_id: str) -> str:
        digest = hmac.new(self._key, f"{platform}:{user_id}".encode(), hashlib.sha256)
        return "u_" + digest.hexdigest()[:24]
