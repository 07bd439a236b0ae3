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
from functools import lru_cache
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


_SCAN = re.compile(
    r"\[(?:phone|nik|kk|email|telepon|telp|hp|nomor|no_hp|pii)\]|[a-z]{2,}2(?![a-z0-9])|[a-z]+|\d+"
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


def tokens(text: str) -> list[str]:
    """Standardised word tokens: slang expanded, ``_pii_`` kept, digits kept as one token.

    Emoji and punctuation vanish (they separate words but carry no topic). One regex scan
    per text; each distinct word is normalized once per process (cached)."""
    if "\\" in text:
        text = _LITERAL_NEWLINE.sub(" ", text)
    return [t for raw in _SCAN.findall(text.lower()) for t in _normalize_word(raw)]


@lru_cache(maxsize=200_000)
def _rooted_word(raw: str) -> tuple[tuple[str, str], ...]:
    return tuple((t, stem(t)) for t in _normalize_word(raw))


def tokens_and_roots(text: str) -> tuple[list[str], list[str]]:
    """:func:`tokens` and their Sastrawi roots in one scan (the hot path of the rules)."""
    if "\\" in text:
        text = _LITERAL_NEWLINE.sub(" ", text)
    pairs = [p for raw in _SCAN.findall(text.lower()) for p in _rooted_word(raw)]
    return [t for t, _ in pairs], [r for _, r in pairs]


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
