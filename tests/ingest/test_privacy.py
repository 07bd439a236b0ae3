"""Masking: identifiers never survive, evidence and ordinary numbers do."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.ingest.privacy import Pseudonymizer, mask_text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hub 0812-3456-7890 ya", "hub [PHONE] ya"),
        ("WA +62 812 3456 7890", "WA [PHONE]"),
        ("(+62)81234567890", "[PHONE]"),
        ("+62 (812) 3456-7890", "[PHONE]"),
        ("62812.3456.789", "[PHONE]"),
        ("hp081234567890", "hp[PHONE]"),
        ("wa.me/6281234567890", "wa.me/[PHONE]"),
        ("kantor (031) 531-2144", "kantor [PHONE]"),
        ("+62 31 5312144", "[PHONE]"),
        ("NIK 3578010101010001", "NIK [NIK]"),
        ("KK: 3578-0101-0101-0002.", "KK: [NIK]."),
        ("nik 3578 0101 0101 0001 mohon", "nik [NIK] mohon"),
        ("email budi.s+lapor@gmail.com", "email [EMAIL]"),
    ],
)
def test_masks(text: str, expected: str) -> None:
    assert mask_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "mobil L 1234 AB parkir di trotoar",
        "B 1234 XYZ dan W 9 QA",
        "RT 05 RW 03 Kelurahan Keputih",
        "tarif parkir Rp 50.000 padahal Rp5.000",
        "sejak 12-05-2023 jam 08.30",
        "rumah no. 081 gang 3",
        "tahun 2023, 15 hari, 300 KK terdampak",
        "kode pos 60111",
    ],
)
def test_keeps_evidence_and_ordinary_numbers(text: str) -> None:
    assert mask_text(text) == text


_SEPS = st.sampled_from(["", " ", "-", ".", "  "])


@st.composite
def phones(draw: st.DrawFn) -> str:
    prefix = draw(st.sampled_from(["0", "62", "+62", "+62 ", "(+62) ", "+62 (0)", "(0"]))
    digits = "8" + draw(st.text("0123456789", min_size=8, max_size=11))
    if prefix == "(0":  # "(0812) 3456 7890"
        prefix, digits = f"(0{digits[:3]}){draw(_SEPS)}", digits[3:]
    groups, i = [], 0
    while i < len(digits):
        size = draw(st.integers(2, 4))
        groups.append(digits[i : i + size])
        i += size
    return prefix + "".join(g + draw(_SEPS) for g in groups[:-1]) + groups[-1]


@st.composite
def niks(draw: st.DrawFn) -> str:
    digits = draw(st.text("0123456789", min_size=16, max_size=16))
    sep = draw(_SEPS.filter(lambda s: len(s) <= 1))
    size = draw(st.sampled_from([4, 16, 6]))
    return sep.join(digits[i : i + size] for i in range(0, 16, size))


_WORDS = st.text(
    st.characters(whitelist_categories=("Ll", "Lu"), max_codepoint=0x7F), min_size=0, max_size=12
)


def _digits(s: str) -> str:
    return re.sub(r"\D", "", s)


@settings(max_examples=400, deadline=None)
@given(before=_WORDS, phone=phones(), after=_WORDS)
def test_any_phone_never_survives(before: str, phone: str, after: str) -> None:
    masked = mask_text(f"{before} {phone} {after}")
    assert phone not in masked
    # no run of the subscriber digits is left either
    assert _digits(phone)[-7:] not in _digits(masked)


@settings(max_examples=400, deadline=None)
@given(before=_WORDS, nik=niks(), after=_WORDS)
def test_any_nik_never_survives(before: str, nik: str, after: str) -> None:
    masked = mask_text(f"{before} {nik} {after}")
    assert _digits(nik)[4:] not in _digits(masked)


@settings(max_examples=200, deadline=None)
@given(local=st.from_regex(r"[a-z0-9._+-]{1,20}", fullmatch=True), host=_WORDS.filter(bool))
def test_any_email_never_survives(local: str, host: str) -> None:
    address = f"{local}@{host.lower()}.co.id"
    assert address not in mask_text(f"kirim ke {address} ya")


def test_pseudonyms_are_keyed_and_stable() -> None:
    a, b = Pseudonymizer(b"k1"), Pseudonymizer(b"k2")
    assert a("x", "42") == a("x", "42") != b("x", "42")
    assert a("x", "42") != a("instagram", "42")
    with pytest.raises(ValueError):
        Pseudonymizer(b"")
