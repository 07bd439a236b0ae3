"""Masking and pseudonymisation: what keeps citizens' identifiers inside the raw topic.

Masked: NIK (Nomor Induk Kependudukan, the 16-digit national id) and KK (Kartu Keluarga,
the 16-digit family-card number), Indonesian phone numbers and e-mail addresses. Kept on
purpose: vehicle plates ("L 1234 AB" is evidence in a parking complaint), RT/RW numbers
(neighbourhood units), house numbers, money ("Rp 50.000") and dates."""

from __future__ import annotations

import hashlib
import hmac
import re

_SEP = r"[ \t.\-]"
# NIK/KK: 16 digits, possibly grouped by spaces, dots or dashes ("3578 0101 0101 0001").
_NIK = re.compile(rf"(?<![\d])(?:\d{_SEP}?){{15}}\d(?!\d)")
# Mobile numbers: +62 / 62 / 0 then 8xx, 9-12 digits after the country/trunk prefix, with
# spaces, dots, dashes or parentheses anywhere ("+62 (812) 3456-7890", "0812.3456.7890",
# "(+62)81234567890", "wa:6281234567890"). Letters before are allowed ("hp08123...").
_MOBILE = re.compile(
    r"(?<![\d+])(?:\(\s*)?(?:\+\s?62|62|0)(?:\s*\))?[ \t.\-]?(?:\(\s*)?(?:0\s*\)\s*)?"
    r"8(?:[ \t.\-()]{0,3}\d){7,11}(?!\d)"
)
# Any number written with +62 is a phone, landlines included ("+62 31 531 2144").
_INTL = re.compile(r"(?<![\d+])(?:\(\s*)?\+\s?62(?:[ \t.\-()]{0,3}\d){7,12}(?!\d)")
# Landlines with a parenthesised area code: "(031) 531-2144", "(0343) 123456".
_LANDLINE = re.compile(r"\(\s*0\d{2,3}\s*\)[ \t.\-]?\d{3,4}[ \t.\-]?\d{3,5}(?!\d)")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# Every NIK and phone pattern needs a digit (``\d``, so Unicode digits count too).
_DIGIT = re.compile(r"\d")


def mask_text(text: str) -> str:
    """Replace NIK/KK numbers, phone numbers and e-mail addresses by typed placeholders
    ``[NIK]``, ``[PHONE]``, ``[EMAIL]``.

    E-mail first (its local part may hold digits), then NIK (16 digits exactly, so it is
    not mistaken for a 12-13 digit phone), then phones. A pattern that cannot match (no
    ``@``, no digit) is not run: this is on every message's path."""
    if "@" in text:
        text = _EMAIL.sub("[EMAIL]", text)
    if _DIGIT.search(text) is None:
        return text
    text = _NIK.sub("[NIK]", text)
    if "+" in text:  # _INTL needs a literal "+" (placeholders hold none)
        text = _INTL.sub("[PHONE]", text)
    text = _MOBILE.sub("[PHONE]", text)
    if "(" in text:  # _LANDLINE needs a literal "("
        text = _LANDLINE.sub("[PHONE]", text)
    return text


class Pseudonymizer:
    """Keyed HMAC of a platform user id: stable per deployment, not reversible without the key."""

    def __init__(self, key: bytes) -> None:
        if not key:
            raise ValueError("pseudonym key must not be empty (set ADUAN_PSEUDONYM_KEY)")
        self._key = key

    def __call__(self, platform: str, user_id: str) -> str:
        # hmac.digest: the one-shot C path, same value as hmac.new(...).hexdigest().
        digest = hmac.digest(self._key, f"{platform}:{user_id}".encode(), hashlib.sha256)
        return "u_" + digest.hex()[:24]
