"""Masking and pseudonymisation: what keeps citizens' identifiers inside the raw topic.

``mask_text`` replaces personal data in free text (message text, captions, location names and
addresses, attachment references) with typed placeholders:

* ``[EMAIL]``: e-mail addresses, also spelled ``budi (at) gmail (dot) com``, ``budi @ gmail.com``,
  ``budi%40gmail.com`` or ``budi at gmail dot com``;
* ``[NIK]``: NIK (Nomor Induk Kependudukan, the 16-digit national id) and KK (Kartu Keluarga,
  the 16-digit family-card number), grouped by any separator;
* ``[PHONE]``: Indonesian mobiles (``+62``/``62``/``0062``/``0`` then ``8``), any number written
  with ``+`` and a country code, landlines with an area code with or without parentheses
  (``031-531-2144``, ``(0343) 123456``), any 8-15 digit number after a phone cue word
  (``WA 812 3456 7890``), and mobiles spelled out in words (``nol delapan satu dua ...``);
  a base64 token whose decoding holds any of these is replaced by its placeholder (a
  WhatsApp message id ``wamid.HBgN…`` decodes to the sender's number);
* ``[BANK]``: account numbers after a cue word (``rekening``, ``rek.``, ``norek``, ``a/c``,
  ``virtual account``);
* ``[NAME]``: the author names the delivery itself carries (``KnownNames``), names after a
  cue (``nama saya ...``, ``atas nama ...``, ``a/n ...``) and one or two capitalised words
  after an honorific (``Bu Rina Kartika``, ``Pak Budi``), official titles excepted
  (``Pak RT``, ``Bu Lurah``, ``Pak Camat``).

Before matching, non-ASCII text is normalised (``normalize``): NFKC (full-width and
mathematical digits, ``＠``), every Unicode decimal digit to ASCII, every dash and slash form
to ``-`` and ``/``, invisible format characters (zero-width spaces, soft hyphens, direction
marks) removed, combining marks after ASCII removed (keycap digits ``0️⃣``). The normalised
text is what travels downstream, so what was matched is what is shown.

Kept on purpose: vehicle plates (``L 1234 AB`` is evidence in a parking complaint), RT/RW
numbers (neighbourhood units), house numbers, money (``Rp 50.000``), dates and times.

``lokal.samaran`` (lokal-id's Indonesian PII detector) is not on this path: it costs 0.3-1.3 ms
per text (this masker: 5-25 µs; ingest spends about 0.35 ms of CPU per delivery) and misses
full-width, en-dash and slash-separated phones. The property tests use it as a differential
oracle instead: nothing it detects as a phone, e-mail, NIK, KK or bank account survives
``mask_text`` (tests/ingest/test_privacy.py).

``Pseudonymizer`` turns platform ids into keyed pseudonyms: authors (``u_…``), message ids
(``<platform>:m_…``) and thread keys (``<platform>:t_…``); see docs/security.md."""

from __future__ import annotations

import base64
import hashlib
import re
import unicodedata
from collections.abc import Callable, Iterable

# --- normalisation -----------------------------------------------------------------------

_DASHES = (
    "\u058a\u05be\u1400\u1806\u2010\u2011\u2012\u2013\u2014\u2015\u2043\u2212\u2796\u2e17"
    "\u2e1a\u2e3a\u2e3b\u2e40\u2e5d\u301c\u3030\u30a0\ufe31\ufe32\ufe58\ufe63\uff0d\U00010ead"
)
_SLASHES = "\u2044\u2215\u29f8\uff0f\u2571"
_DOTS = "\u00b7\u2022\u2024\u2027\u2219\u22c5\u30fb\u3002\uff0e\uff61"
_SPACES = "\u1680\u180e"
# Invisible format characters (Unicode category Cf) that split a number or an address
# without showing: removed. The zero-width joiner is handled apart (emoji sequences).
_INVISIBLE = (
    "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b\u180c\u180d\u200b\u200c\u200e\u200f"
    "\u202a\u202b\u202c\u202d\u202e\u2060\u2061\u2062\u2063\u2064\u2066\u2067\u2068\u2069"
    "\u206a\u206b\u206c\u206d\u206e\u206f\u3164\ufeff\uffa0\ufff9\ufffa\ufffb"
)
_TRANSLATE: dict[int, str | None] = {
    **{ord(c): " " for c in _SPACES},
    **{ord(c): None for c in _INVISIBLE},
}
# Dash, slash and dot forms are folded to ASCII only between digits ("0812–3456"): prose
# keeps its em dashes.
_DIGIT_PUNCT = re.compile(
    rf"(?<=\d)([ \t]*)(?:([{_DASHES}])|([{_SLASHES}])|([{_DOTS}]))([ \t]*)(?=\d)"
)


def _fold(m: re.Match[str]) -> str:
    sep = "-" if m.group(2) else "/" if m.group(3) else "."
    return f"{m.group(1)}{sep}{m.group(5)}"


# A zero-width joiner is kept only between two characters above U+2000 (emoji sequences).
_ZWJ = re.compile(r"(?<=[\x00-\u1fff])\u200d|\u200d(?=[\x00-\u1fff])|^\u200d|\u200d$")
# Combining marks after an ASCII character: decoration (``0̲8̲``) or keycaps (``0️⃣``).
_MARKS = re.compile(
    r"(?<=[\x00-\x7f])[\u0300-\u036f\u0483-\u0489\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff"
    r"\ufe00-\ufe0f\ufe20-\ufe2f\U000e0100-\U000e01ef]+"
)
_NON_ASCII_DIGIT = re.compile(r"(?![0-9])\d")


def _ascii_digit(m: re.Match[str]) -> str:
    return str(unicodedata.decimal(m.group(), 0))


def normalize(text: str) -> str:
    """The text the masker matches on and returns: unchanged when ASCII, else NFKC with
    every digit folded to ASCII, dash, slash and dot forms between digits folded to ``-``,
    ``/`` and ``.``, and invisible characters removed."""
    if text.isascii():
        return text
    if not unicodedata.is_normalized("NFKC", text):
        text = unicodedata.normalize("NFKC", text)
    text = text.translate(_TRANSLATE)
    if "\u200d" in text:
        text = _ZWJ.sub("", text)
    text = _MARKS.sub("", text)
    text = _NON_ASCII_DIGIT.sub(_ascii_digit, text)
    return _DIGIT_PUNCT.sub(_fold, text)


# --- patterns (on normalised text) ---------------------------------------------------------

_SEP = r"[ \t.\-/\\_]"
_GAP = r"[ \t.\-/\\_()]{0,3}"

_AT = r"(?:\s*@\s*|\s*[(\[{]\s*at\s*[)\]}]\s*|%40)"
_DOT = r"(?:\.|\s*[(\[{]\s*dot\s*[)\]}]\s*)"
_EMAIL = re.compile(
    rf"(?<![\w.+%-])(?>[\w.+-]+){_AT}[\w-]+(?:{_DOT}[\w-]+)*{_DOT}[A-Za-z]{{2,}}(?![\w-])",
    re.IGNORECASE,
)
# Where an e-mail address may be: an "@" (or "%40") right after a local part and before a
# domain with a dot, or a spelled "(at)". A mention ("@pemkotsurabaya") has no local part and
# is no anchor: X texts start with one, and trying the e-mail pattern around it doubled their
# masking time. Found with str.find, then checked in place.
_AFTER_AT = re.compile(r"\s?[\w-]+[.(\[{]")
_BRACKET_AT = re.compile(r"[(\[{]\s*at\s*[)\]}]", re.IGNORECASE)
_LOCAL_CHAR = re.compile(r"[\w.+-]")


def _email_anchors(text: str) -> list[int]:
    """Positions of the ``@``, ``%40`` and ``(at)`` that may join an e-mail address."""
    out = []
    for mark, size in (("@", 1), ("%40", 3)):
        i = text.find(mark)
        while i != -1:
            j = i - 1 if i > 0 and text[i - 1] != " " else i - 2
            if j >= 0 and _LOCAL_CHAR.match(text, j) and _AFTER_AT.match(text, i + size):
                out.append(i)
            i = text.find(mark, i + size)
    if "at" in text or "AT" in text or "At" in text:
        out += [m.start() for m in _BRACKET_AT.finditer(text)]
    return sorted(out)


_EMAIL_WORDS = re.compile(
    r"(?<![\w.+-])[\w.+-]+\s+at\s+[\w-]+(?:\s+dot\s+[\w-]+)*\s+dot\s+[A-Za-z]{2,6}\b",
    re.IGNORECASE,
)

_NIK = rf"(?<!\d)\d(?:{_SEP}?\d){{15}}(?!\d)"
_MOBILE = (
    r"(?<![\d+])(?:\(\s*)?(?:\+\s?62|0062|62|0)(?:\s*\))?"
    rf"{_GAP}(?:0\s*\)\s*)?8(?:{_GAP}\d){{7,11}}(?!\d)"
)
_INTL = rf"(?<![\d+])(?:\(\s*)?\+\s?(?:\(\s*)?[1-9](?:{_GAP}\d){{8,14}}(?!\d)"
_LANDLINE = (
    rf"(?<![\d+])(?:\(\s*0[2-79]\d{{1,2}}\s*\)|0[2-79]\d{{1,2}}){_GAP}"
    rf"(?:\d{{6,8}}|\d{{3,4}}{_SEP}\d{{3,5}}|\d{{2,3}}{_SEP}\d{{2,3}}{_SEP}\d{{2,4}})(?!\d)"
)
# One pass for every digit-shaped identifier; the first alternative that matches at a
# position wins, so a 16-digit NIK is never read as a phone.
_NUMBERS = re.compile(
    f"(?P<NIK>{_NIK})|(?P<PHONE>{_MOBILE})|(?P<INTL>{_INTL})|(?P<LAND>{_LANDLINE})"
)
_NUMBER_LABEL = {"NIK": "[NIK]", "PHONE": "[PHONE]", "INTL": "[PHONE]", "LAND": "[PHONE]"}
# Where the digit patterns can match: maximal runs of digits, separators, parentheses and
# "+" of at least seven characters. Found by one scan that starts on a digit, "(" or "+"
# (sre's fast first-character search); the patterns above run on these short runs only.
_CANDIDATE = re.compile(r"[\d(+][\d \t.\-/\\_()+]{6,}")
# After masking: does a phone cue still have seven digits with short gaps to act on?
_DIGIT_RUN = re.compile(r"\d(?:\D{0,3}\d){6}")
_PHONE_CUES = (
    "hp",
    "phone",
    "ponsel",
    "wa",
    "tel",
    "tlp",
    "tilp",
    "kontak",
    "contact",
    "hubungi",
    "call",
    "sms",
)
_PHONE_CUE = re.compile(
    r"\b(?:hp|handphone|ponsel|wa|whatsapp|telp|telpon|telepon|tlp|tilp|phone|kontak|contact"
    r"|hubungi|call|sms)\b[^\d\n]{0,15}?"
    r"(\+?\d(?:[ \t.\-/\\_()]{0,3}\d){7,14})(?!\d)",
    re.IGNORECASE,
)
_BANK = re.compile(
    r"\b(?:rek(?:ening)?|norek|account|acc|a/c|virtual\s+account|va)\b\.?[^\d\n]{0,30}?"
    r"(?<!rp)(?<!rp )(?<!rp\.)(?<!rp\. )(\d(?:[ \t.\-]?\d){7,19})(?!\d)",
    re.IGNORECASE,
)
_VA = re.compile(r"\bva\b")
_NUMBER_WORD = (
    r"(?:nol|kosong|satu|dua|tiga|empat|lima|enam|tujuh|delapan|lapan|sembilan|zero|one|two"
    r"|three|four|five|six|seven|eight|nine)"
)
_SPELLED = re.compile(rf"\b{_NUMBER_WORD}(?:[\s,.\-]+{_NUMBER_WORD}){{7,}}\b", re.IGNORECASE)
_NAME_STOP = (
    r"dari|di|ke|warga|tinggal|mau|ingin|yang|rt|rw|jl|jalan|alamat|umur|usia|dan|mohon|minta"
    r"|selaku|sebagai|adalah|no|nomor|hp|wa|nik|ini|itu|sudah|belum|tolong|bu|pak|dengan"
)
_NAME_CUE = re.compile(
    r"\b(?:nama\s+saya|namaku|nama\s+aku|nama\s+lengkap|saya\s+bernama|aku\s+bernama"
    r"|atas\s+nama|a/n|a\.n\.?)\s*:?\s*"
    rf"((?!(?:{_NAME_STOP})\b)[A-Za-z][A-Za-z'’.-]*"
    rf"(?:[ \t]+(?!(?:{_NAME_STOP})\b)[A-Za-z][A-Za-z'’.-]*){{0,2}})",
    re.IGNORECASE,
)


def _mask_emails(text: str) -> str:
    """``_EMAIL.sub("[EMAIL]", text)`` for addresses around an anchor, searching only a
    window around each one (64 characters before, 256 after): an e-mail pattern tried at
    every word of a long text costs more than the rest of the masker together."""
    anchors = _email_anchors(text)
    if not anchors:
        return text
    out: list[str] = []
    done = 0
    for at in anchors:
        if at < done:
            continue
        end = min(len(text), at + 256)
        m = _EMAIL.search(text, max(done, at - 64), end)
        while m is not None and m.end() <= at:
            m = _EMAIL.search(text, m.end(), end)
        if m is None or m.start() > at:
            continue
        out.append(text[done : m.start()])
        out.append("[EMAIL]")
        done = m.end()
    if not out:
        return text
    out.append(text[done:])
    return "".join(out)


# A token that may be base64 (16+ characters of its alphabets, no spaces): a WhatsApp
# message id "wamid.HBgN…" decodes to the sender's phone number, and a text may carry one.
_B64_TOKEN = re.compile(r"(?<![\w+/=-])[A-Za-z0-9+/_-]{16,}={0,2}(?![\w+/=-])")
_LABELS = re.compile(r"\[(EMAIL|NIK|PHONE|BANK|NAME)\]")


def _decoded_label(m: re.Match[str]) -> str:
    """The placeholder for a base64 token whose decoding holds personal data, else the
    token unchanged."""
    token = m.group()
    for altchars in (b"+/", b"-_"):
        try:
            raw = base64.b64decode(token + "=" * (-len(token) % 4), altchars, validate=True)
        except ValueError:
            continue
        decoded = raw.decode("latin-1")
        if not any(c.isdigit() or c == "@" for c in decoded):
            continue
        found = _LABELS.search(mask_text(decoded.replace("\x00", " "), decode=False))
        if found is not None and found.group() not in decoded:
            return found.group()
    return token


_TITLES = (
    r"RT|RW|Lurah|Camat|Kades|Wali|Walikota|Wakil|Bupati|Gubernur|Presiden|Menteri|Kapolsek"
    r"|Kapolres|Kapolda|Polisi|Satpol|Ketua|Kepala|Kadis|Sekda|Sekretaris|Direktur|Dokter|Dr"
    r"|Guru|Haji|Hj|Kyai|Ustad|Ustadz|Pejabat|Petugas|Admin|Dewan|Dinas|Kasi|Kabid|Staf"
    r"|Pegawai|Satpam|Sopir|Supir|Tukang|Pemilik|Warga|Kades|Dirut|Bidan|Perawat|Mantri"
)
_HONORIFIC = re.compile(
    r"\b(?:Pak|Bapak|Bpk|Bu|Ibu|Mas|Mbak|Mba|Kak|Sdr|Sdri|Saudara|Saudari|Bang|Om|Tante"
    r"|Dik|Adik|Mr|Mrs|Ms)\.?[ \t]+"
    rf"((?!(?:{_TITLES})\b)[A-Z][a-z'’-]+(?:[ \t]+(?!(?:{_TITLES})\b)[A-Z][a-z'’-]+)?)"
)
# An honorific followed by a capital: one scan, cheaper than testing each honorific.
_HONORIFIC_GATE = re.compile(
    r"(?:Pak|Bu|Mas|Mb|Kak|Sdr|Saudar|Bang|Om|Tante|Dik|Bpk|Mr|Ms)\S*\s+[A-Z]"
)


def _number_label(m: re.Match[str]) -> str:
    return _NUMBER_LABEL[m.lastgroup or "PHONE"]


_SEVEN_DIGITS = re.compile(r"(?:\D*\d){7}")


def _mask_run(m: re.Match[str]) -> str:
    run = m.group()
    return _NUMBERS.sub(_number_label, run) if _SEVEN_DIGITS.match(run) else run


def _group_to(label: str) -> Callable[[re.Match[str]], str]:
    def replace(m: re.Match[str]) -> str:
        whole = m.group(0)
        start, end = m.start(1) - m.start(0), m.end(1) - m.start(0)
        return whole[:start] + label + whole[end:]

    return replace


_BANK_SUB = _group_to("[BANK]")
_CUE_PHONE_SUB = _group_to("[PHONE]")
_NAME_SUB = _group_to("[NAME]")


def mask_text(text: str, names: KnownNames | None = None, *, decode: bool = True) -> str:
    """``text`` normalised, with personal data replaced by ``[EMAIL]``, ``[NIK]``,
    ``[PHONE]``, ``[BANK]`` and ``[NAME]`` placeholders (module docstring).

    Order: e-mail (its local part may hold digits or a name), known names, bank numbers (a
    cue word makes them precise), the digit patterns, cue-word phones, spelled phones, cued
    names. A pattern
    whose literal cannot occur (no ``@``, fewer than seven digits, no cue word) is not run:
    this is on every message's path."""
    text = normalize(text)
    text = _mask_emails(text)
    if names:
        text = names.mask(text)
    lower = text.lower()
    if " dot " in lower and " at " in lower:
        text = _EMAIL_WORDS.sub("[EMAIL]", text)
    if ("rek" in lower or "acc" in lower or "a/c" in lower or "virtual" in lower) or (
        "va" in lower and _VA.search(lower) is not None
    ):
        text = _BANK.sub(_BANK_SUB, text)
    text = _CANDIDATE.sub(_mask_run, text)
    if _DIGIT_RUN.search(text) is not None and any(cue in lower for cue in _PHONE_CUES):
        text = _PHONE_CUE.sub(_CUE_PHONE_SUB, text)
    if "lapan" in lower or "eight" in lower:
        text = _SPELLED.sub("[PHONE]", text)
    if "nama" in lower or "a/n" in lower or "a.n" in lower:
        text = _NAME_CUE.sub(_NAME_SUB, text)
    if _HONORIFIC_GATE.search(text) is not None:
        text = _HONORIFIC.sub(_NAME_SUB, text)
    if decode and _B64_TOKEN.search(text) is not None:
        text = _B64_TOKEN.sub(_decoded_label, text)
    return text


def personal_kind(value: str) -> str | None:
    """What kind of personal data ``value`` (an id chosen by a sender) looks like: ``email``,
    ``phone``, ``nik``, ``bank`` or ``name``; None when it looks like none. Any ``@`` counts as
    an e-mail address."""
    if "@" in value or "%40" in value:
        return "email"
    masked = mask_text(value)
    for label in ("EMAIL", "NIK", "PHONE", "BANK", "NAME"):
        if f"[{label}]" in masked and f"[{label}]" not in value:
            return label.lower()
    return None


# --- names the delivery carries ------------------------------------------------------------

_TOKEN_SPLIT = re.compile(r"[^\w'’]+|_|\d+")
_COMMON = frozenset(
    {"warga", "info", "official", "admin", "resmi", "pemkot", "pemkab", "pemprov", "kota", "kab"}
    | {"kabupaten", "provinsi", "dinas", "kecamatan", "kelurahan", "desa", "jalan", "bapak"}
    | {"ibu", "pak", "bu", "mas", "mbak", "kak", "dan", "the", "indonesia"}
)


class KnownNames:
    """The author names and usernames a delivery carries (``contacts[].profile.name``,
    ``from.name``, ``user.name``/``screen_name``, ``username``, ...), masked wherever they
    appear in its texts: whole, and each word of three letters or more (a citizen signs
    "Bu Siti" as often as "Siti Aminah"). Common words (``warga``, ``info``, ``kota``) are not
    masked on their own."""

    __slots__ = ("_patterns", "_variants")

    def __init__(self, names: Iterable[str]) -> None:
        variants: set[str] = set()
        for raw in names:
            name = normalize(raw).strip().lstrip("@").lower()
            if len(name) < 3 or name in _COMMON:
                continue
            variants.add(name)
            for token in _TOKEN_SPLIT.split(name):
                if len(token) >= 3 and token not in _COMMON:
                    variants.add(token)
        # longest first, so "siti aminah" is replaced before "siti"
        self._variants = sorted(variants, key=len, reverse=True)
        self._patterns: dict[str, re.Pattern[str]] = {}

    def __bool__(self) -> bool:
        return bool(self._variants)

    def mask(self, text: str) -> str:
        lower = text.lower()
        for variant in self._variants:
            if variant in lower:
                pattern = self._patterns.get(variant)
                if pattern is None:
                    words = r"\s+".join(re.escape(w) for w in variant.split())
                    pattern = re.compile(rf"@?(?<!\w){words}(?!\w)", re.IGNORECASE)
                    self._patterns[variant] = pattern
                text = pattern.sub("[NAME]", text)
                lower = text.lower()
        return text


# --- pseudonyms ----------------------------------------------------------------------------


_LETTER_HEX = str.maketrans("0123456789", "ghijklmnop")


# Pseudonyms are hexadecimal written with the letters a-p (100 bits in 25 characters): they
# hold no digit at all, so no scanner can read a phone number, a NIK, a date or a
# "whatsapp: <number>" field in one (lokal.samaran read ``whatsapp:m_437q…`` as a phone).


class Pseudonymizer:
    """Keyed pseudonyms: stable per deployment key, not reversible without it.

    * ``self(platform, user_id)``: an author, ``u_`` + 25 letters a-p (100 bits);
    * ``message_id(raw)``: ``"<platform>:<anything>"`` → ``"<platform>:m_…"``, so dedup
      keys, ``in_reply_to`` links and route's complaint ids stay equal exactly when the raw
      ids are equal;
    * ``thread_key(raw)``: likewise ``"<platform>:t_…"``;
    * ``attachment(raw)``: a media id or URL, likewise ``"<platform>:a_…"``.

    The MAC is keyed BLAKE2b (a keyed hash designed as a MAC/PRF; keys over 64 bytes are
    first hashed with SHA-256), with the role as BLAKE2's personalisation, so equal raw
    strings in different roles do not give equal pseudonyms. Chosen over HMAC-SHA256 for
    cost: OpenSSL's HMAC set-up made one pseudonym about 33,000 instructions, BLAKE2b (in
    CPython itself) a third of the time, and every message needs three or four."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if not key:
            raise ValueError("pseudonym key must not be empty (set ADUAN_PSEUDONYM_KEY)")
        self._key = key if len(key) <= 64 else hashlib.sha256(key).digest()

    def __call__(self, platform: str, user_id: str) -> str:
        return "u_" + self._token(b"author", f"{platform}:{user_id}")

    def message_id(self, raw: str) -> str:
        return f"{raw.partition(':')[0]}:m_{self._token(b'message', raw)}"

    def thread_key(self, raw: str) -> str:
        return f"{raw.partition(':')[0]}:t_{self._token(b'thread', raw)}"

    def attachment(self, raw: str) -> str:
        return f"{raw.partition(':')[0]}:a_{self._token(b'attachment', raw)}"

    def _token(self, role: bytes, data: str) -> str:
        digest = hashlib.blake2b(data.encode(), digest_size=13, key=self._key, person=role)
        return digest.hexdigest()[:25].translate(_LETTER_HEX)
