"""Normalization of informal Indonesian complaint text into tokens the rules and model share.

Citizens write "jln rusak bgt pak, udh lama gak dibenerin 🙏": abbreviations, slang,
stretched letters ("bangeeet"), reduplication written with a digit ("jalan2"), emoji and
literal ``\\n`` sequences copied out of apps. Everything downstream (keyword rules, the
learned model, the gazetteer) works on the same token list, so a word is spelled one way.

Ingest has already masked identifiers as ``[PHONE]``, ``[NIK]``, ``[EMAIL]`` (the evaluation
data also uses ``[TELEPON]``); they become one neutral token ``_pii_`` so that neither the
digits nor the placeholder's name can look like a topic word.

Stemming uses PySastrawi (Nazief-Adriani), which costs ~0.1-1 ms per word; each distinct
token is stemmed once per process (``lru_cache``), which makes it free on a stream whose
vocabulary is a few tens of thousands of words.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from itertools import chain
from pathlib import Path
from typing import Any

import yaml

_SLANG_FILE = Path(__file__).with_name("slang.yaml")

_PLACEHOLDER = re.compile(r"\[(?:phone|nik|kk|email|telepon|telp|hp|nomor|no_hp|pii)\]", re.I)
_LITERAL_NEWLINE = re.compile(r"\\[nrt]")
_REDUP = re.compile(r"\b([a-z]{2,})2\b")  # "jalan2" -> "jalan jalan"
_STRETCH = re.compile(r"([a-z])\1{2,}")  # "bangeeet" -> "banget"
_TOKEN = re.compile(r"[a-z]+|\d+")
PII_TOKEN = "_pii_"
# Accented vowels (and c, n) as their base letter: Madurese and Javanese spellings write
# "lèstrèk", "ghâgghâr", "jhâlân", "bâdâ", which the scan's ``[a-z]`` cut into pieces ("l",
# "str", "k"). Only these letters are folded: other non-ASCII letters, such as the "ðÿ" of
# emoji decoded with the wrong code page in exported complaints (432 of the 8,385 Surabaya
# rows), still separate words instead of becoming "y" tokens.
_FOLD = str.maketrans(
    {c: unicodedata.normalize("NFKD", c)[0] for c in "àáâäāèéêëēĕìíîīòóôöōùúûüūçñ"}
)


def _fold(text: str) -> str:
    """``text`` with the accented vowels of :data:`_FOLD` as their base letter."""
    return text if text.isascii() else text.translate(_FOLD)


def _load_slang() -> dict[str, tuple[str, ...]]:
    raw = yaml.safe_load(_SLANG_FILE.read_text(encoding="utf-8"))
    out: dict[str, tuple[str, ...]] = {}
    for key, value in (raw or {}).items():
        out[str(key)] = tuple(str(value).split())
    return out


SLANG: dict[str, tuple[str, ...]] = _load_slang()
"""Informal spelling -> standard word(s). Hand-built for this project (Apache-2.0, see
``slang.yaml``), not copied from a third-party lexicon."""


def clean(text: str) -> str:
    """Lowercased text with placeholders neutralised, escapes and stretched letters undone."""
    text = _LITERAL_NEWLINE.sub(" ", text)
    text = _PLACEHOLDER.sub(f" {PII_TOKEN} ", text)
    text = text.lower()
    text = _REDUP.sub(r"\1 \1", text)
    return _STRETCH.sub(r"\1", text)


# Possessive quantifiers (``{2,}+``, ``++``): a letter run is never given back, since none of
# the later parts of a match can start with a letter. Same matches as the greedy form, but the
# reduplication branch no longer backtracks letter by letter through every word (~15% faster).
_SCAN = re.compile(
    r"\[(?:phone|nik|kk|email|telepon|telp|hp|nomor|no_hp|pii)\]"
    r"|[a-z]{2,}+2(?![a-z0-9])|[a-z]++|\d++"
)


@lru_cache(maxsize=200_000)
def _normalize_word(raw: str) -> tuple[str, ...]:
    """One scanned word → standard token(s): reduplication, stretched letters, slang."""
    if raw[0] == "[":
        return (PII_TOKEN,)
    if raw[-1] == "2" and not raw.isdigit():
        once = _normalize_word(raw[:-1])
        return once + once
    word = _STRETCH.sub(r"\1", raw)
    return SLANG.get(word, (word,))


def scan(text: str) -> list[str]:
    """The raw words of a text, lowercased, before normalization (one regex pass)."""
    if "\\" in text:
        text = _LITERAL_NEWLINE.sub(" ", text)
    return _SCAN.findall(_fold(text.lower()))


def tokens(text: str) -> list[str]:
    """Standardised word tokens: slang expanded, ``_pii_`` kept, digits kept as one token.

    Emoji and punctuation vanish (they separate words but carry no topic). One regex scan
    per text; each distinct word is normalized once per process (cached)."""
    return [t for raw in scan(text) for t in _normalize_word(raw)]


# The hot path does not run a regex over the text at all: it splits it on whitespace (a C
# loop, ~3x cheaper than :data:`_SCAN`) and looks each piece up. No match of ``_SCAN`` can
# contain whitespace or see past it (its one lookahead treats a space like the end of the
# string), so a text's tokens are its pieces' tokens in order, and those are computed once
# per distinct piece ("Trotoar,", "jalan2", ":") by ``_SCAN`` itself.
#
# Piece -> its token(s), chained in C; token -> its root, mapped in C over the tokens (one
# lookup per token instead of a second chain over the pieces' root tuples: measured ~25%
# faster than separate one-token and per-piece tables with a fallback between them). Both
# are pure functions of their key, so emptying them when they outgrow the bound (a stream
# of typos and numbers) only costs recomputation, never a different answer.
_PIECE_TOKENS: dict[str, tuple[str, ...]] = {}
_ROOT: dict[str, str] = {}
_MAX_PIECES = 200_000


def _learn(pieces: list[str]) -> None:
    """Fill the tables for the pieces of one text (and their tokens) not in them yet."""
    if len(_PIECE_TOKENS) + len(pieces) > _MAX_PIECES or len(_ROOT) > 2 * _MAX_PIECES:
        _PIECE_TOKENS.clear()
        _ROOT.clear()
    for piece in pieces:
        toks = _PIECE_TOKENS.get(piece)
        if toks is None:
            toks = tuple(t for raw in _SCAN.findall(_fold(piece)) for t in _normalize_word(raw))
            _PIECE_TOKENS[piece] = toks
        for tok in toks:
            if tok not in _ROOT:
                _ROOT[tok] = stem(tok)


def tokens_and_roots(text: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """:func:`tokens` and their Sastrawi roots without a regex scan (the hot path of the rules).

    In steady state every piece is known and both tuples are built in C; a text with a new
    piece takes one detour through :func:`_learn` first."""
    if "\\" in text:
        text = _LITERAL_NEWLINE.sub(" ", text)
    pieces = text.lower().split()
    try:
        toks = tuple(chain.from_iterable(map(_PIECE_TOKENS.__getitem__, pieces)))
        return toks, tuple(map(_ROOT.__getitem__, toks))
    except KeyError:  # a new piece (or its token's root forgotten with a full table)
        _learn(pieces)
    toks = tuple(chain.from_iterable(map(_PIECE_TOKENS.__getitem__, pieces)))
    return toks, tuple(map(_ROOT.__getitem__, toks))


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    from Sastrawi.Stemmer.StemmerFactory import StemmerFactory

    return StemmerFactory().create_stemmer()


@lru_cache(maxsize=200_000)
def stem(token: str) -> str:
    """The Sastrawi root of one token (cached); digits and short tokens pass through."""
    if len(token) <= 3 or not token.isalpha():
        return token
    result: str = _stemmer().stem(token)
    return result or token


def stems(toks: list[str]) -> list[str]:
    return [stem(t) for t in toks]
