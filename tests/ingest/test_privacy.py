"""Masking: identifiers never survive, evidence and ordinary numbers do."""

from __future__ import annotations

import copy
import re
import unicodedata
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lokal.samaran import detect_pii

from schemas.messages import Platform
from services.ingest.platforms.base import MalformedDelivery
from services.ingest.privacy import KnownNames, Pseudonymizer, mask_text, personal_kind
from tests.ingest.helpers import FIXTURES, parse


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


# --- separators and Unicode digit forms ----------------------------------------------------

# Decimal digit sets a phone may be typed in (Unicode category Nd: zero of each script) and
# their compatibility forms (full-width, mathematical), all folded by NFKC or by the masker.
_ZEROS = [0x30, 0xFF10, 0x660, 0x6F0, 0x966, 0x9E6, 0xE50, 0x1040, 0x1D7CE, 0x1D7F6, 0x1D7EC]
_GAPS = st.sampled_from(
    ["", " ", "-", ".", "/", "_", "  ", " - ", "\u2013", "\u2014", "\u2011", "\u2212", "\uff0d",
     "\u00a0", "\u2009", "\u202f", "\u3000", "\u200b", "\u00ad", "\u2060", "\ufeff", "\uff0f",
     "\u00b7", "\uff0e"]
)  # fmt: skip


def _script(digits: str, zero: int) -> str:
    return "".join(chr(zero + int(d)) for d in digits)


@st.composite
def spelled_phones(draw: st.DrawFn) -> tuple[str, str]:
    """(the phone as typed, its national significant number), any digits, gaps, prefix."""
    national = "8" + draw(st.text("0123456789", min_size=8, max_size=10))
    prefix = draw(st.sampled_from(["0", "62", "+62", "+62 ", "0062", "(+62) ", "+62(0)"]))
    zero = draw(st.sampled_from(_ZEROS))
    digits = draw(st.sampled_from(["0", ""])) if prefix == "0" else ""
    out, i = [], 0
    if prefix == "0":
        out.append(_script("0", zero) + draw(_GAPS))
    else:
        out.append(prefix.replace("62", _script("62", zero)) + draw(st.sampled_from(["", " "])))
    del digits
    while i < len(national):
        size = draw(st.integers(1, 4))
        out.append(_script(national[i : i + size], zero))
        i += size
        if i < len(national):
            out.append(draw(_GAPS))
    return "".join(out), national


def _ascii_digits(text: str) -> str:
    return "".join(str(unicodedata.decimal(c)) for c in text if c.isdecimal())


_PROSE = st.text(
    st.characters(whitelist_categories=("Ll", "Lu", "Zs"), max_codepoint=0x24F), max_size=20
).map(lambda s: s.strip() or "lapor")


@settings(max_examples=600, deadline=None)
@given(before=_PROSE, phone=spelled_phones(), after=_PROSE)
def test_phone_in_any_separator_and_digit_form_never_survives(
    before: str, phone: tuple[str, str], after: str
) -> None:
    typed, national = phone
    masked = mask_text(f"{before} {typed} {after}")
    assert "[PHONE]" in masked, (typed, masked)
    assert national[-7:] not in _ascii_digits(masked), (typed, masked)


@st.composite
def spelled_niks(draw: st.DrawFn) -> str:
    digits = draw(st.text("0123456789", min_size=16, max_size=16))
    zero = draw(st.sampled_from(_ZEROS))
    gap = draw(_GAPS.filter(lambda g: len(g) <= 1))
    size = draw(st.sampled_from([2, 4, 6, 16]))
    return gap.join(_script(digits[i : i + size], zero) for i in range(0, 16, size))


@settings(max_examples=400, deadline=None)
@given(before=_PROSE, nik=spelled_niks(), after=_PROSE)
def test_nik_in_any_separator_and_digit_form_never_survives(
    before: str, nik: str, after: str
) -> None:
    masked = mask_text(f"{before} NIK {nik} {after}")
    assert _ascii_digits(nik)[4:] not in _ascii_digits(masked), (nik, masked)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hub 0812/3456/7890", "hub [PHONE]"),
        ("hub 0812–3456–7890", "hub [PHONE]"),
        ("hub ０８１２-３４５６-７８９０", "hub [PHONE]"),
        ("hub ٠٨١٢٣٤٥٦٧٨٩٠", "hub [PHONE]"),
        ("hub 0\u200b812\u200b3456\u200b7890", "hub [PHONE]"),
        ("hub 0️⃣8️⃣1️⃣2️⃣3️⃣4️⃣5️⃣6️⃣7️⃣8️⃣9️⃣0️⃣", "hub [PHONE]"),
        ("telp 031-531-2144", "telp [PHONE]"),
        ("telp 031 5312144", "telp [PHONE]"),
        ("kantor 021-1234-5678", "kantor [PHONE]"),
        ("WA 812 3456 7890", "WA [PHONE]"),
        ("+60 12-345 6789", "[PHONE]"),
        ("nol delapan satu dua tiga empat lima enam tujuh delapan sembilan", "[PHONE]"),
        ("budi (at) gmail (dot) com", "[EMAIL]"),
        ("budi@gmail．com", "[EMAIL]"),
        ("budi%40gmail.com", "[EMAIL]"),
        ("budi at gmail dot com", "[EMAIL]"),
        ("ke rekening BCA 1234567890 ya", "ke rekening BCA [BANK] ya"),
        ("no rek: 137-00-1234567-8", "no rek: [BANK]"),
        ("nama saya Siti Aminah dari Rungkut", "nama saya [NAME] dari Rungkut"),
        ("transfer a/n Budi Santoso", "transfer a/n [NAME]"),
        ("terima kasih Bu Rina Kartika", "terima kasih Bu [NAME]"),
        (
            "id wamid.HBgNNjI4MTIzNDU2Nzg5MBUCABIYFjNFQjBDMEE1RkY0RTk1QkQ5QkE2AA==",
            "id wamid.[PHONE]",
        ),
    ],
)
def test_masks_other_spellings(text: str, expected: str) -> None:
    assert mask_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "jam 08.00-12.00, 13.00-16.00 WIB",
        "nomor surat 800/1234/436.7/2023",
        "rekening listrik naik jadi Rp 15.000.000",
        "Pak RT dan Bu Lurah sudah datang, Pak Camat belum",
        "Lampu PJU mati — sudah 3 hari 😀👨\u200d👩\u200d👧",
        "https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=1",
        "Pelayanan darurat 112 dan 110",
    ],
)
def test_keeps_times_letters_money_titles_and_prose(text: str) -> None:
    assert mask_text(text) == text


# --- lokal.samaran as a differential oracle ------------------------------------------------

ORACLE_TYPES = ["PHONE", "EMAIL", "NIK", "KK", "BANK_ACCOUNT"]
_LOCAL = st.from_regex(r"[a-z][a-z0-9._]{0,14}[a-z0-9]", fullmatch=True)


@st.composite
def personal_data(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["phone", "nik", "kk", "email", "bank", "landline"]))
    if kind == "phone":
        return draw(phones())
    if kind == "nik":
        return "NIK " + draw(niks())
    if kind == "kk":
        return "no KK " + draw(niks())
    if kind == "email":
        domain = draw(st.sampled_from(["gmail.com", "yahoo.co.id", "surabaya.go.id", "ui.ac.id"]))
        return f"{draw(_LOCAL)}@{domain}"
    if kind == "landline":
        area = draw(st.sampled_from(["021", "031", "0341", "0361", "022"]))
        sub = draw(st.text("0123456789", min_size=7, max_size=8).filter(lambda s: s[0] != "0"))
        return f"telp {area}-{sub}"
    bank = draw(st.sampled_from(["BCA", "Mandiri", "BRI", "BNI"]))
    number = draw(st.text("0123456789", min_size=10, max_size=15).filter(lambda s: s[0] != "0"))
    return f"rekening {bank} {number}"


@settings(max_examples=150, deadline=None)
@given(parts=st.lists(st.one_of(_PROSE, personal_data()), min_size=1, max_size=6))
def test_samaran_finds_nothing_the_masker_left(parts: list[str]) -> None:
    """Differential: whatever lokal.samaran (lokal-id's Indonesian PII detector) recognises
    as a phone, e-mail, NIK, KK or bank account in the masked text is a miss of ours."""
    text = ", ".join(parts)
    left = detect_pii(mask_text(text), types=ORACLE_TYPES)
    assert left == [], (text, mask_text(text), left)


def test_the_oracle_sees_the_personal_data_it_is_given() -> None:
    """The differential test is worth something only if samaran detects these inputs."""
    for text in ["hub 0812-3456-7890", "NIK 3578010101010001", "budi@gmail.com",
                 "rekening BCA 1234567890"]:  # fmt: skip
        assert detect_pii(text, types=ORACLE_TYPES), text


# --- names, ids and pseudonyms -------------------------------------------------------------

_NAME_WORD = st.from_regex(r"[A-Z][a-z]{3,9}", fullmatch=True)


@settings(max_examples=200, deadline=None)
@given(words=st.lists(_NAME_WORD, min_size=1, max_size=3), before=_PROSE, after=_PROSE)
def test_a_known_author_name_never_survives(words: list[str], before: str, after: str) -> None:
    name = " ".join(words)
    masked = mask_text(f"{before} {name.upper()}, {after} {words[-1].lower()}", KnownNames([name]))
    assert name.lower() not in masked.lower()
    assert all(w.lower() not in masked.lower().split() for w in words if len(w) >= 3)


def test_personal_kind_of_sender_ids() -> None:
    assert personal_kind("F-2026-000123") is None
    assert personal_kind("LAPOR-20260512345678") is None
    assert personal_kind("081234567890") == "phone"
    assert personal_kind("62-812-3456-7890") == "phone"
    assert personal_kind("budi@x") == "email"
    assert personal_kind("3578010101010001") == "nik"


@settings(max_examples=200, deadline=None)
@given(raw=st.text(min_size=1, max_size=40), platform=st.sampled_from(["x", "whatsapp"]))
def test_pseudonyms_are_letters_only_stable_and_role_separated(raw: str, platform: str) -> None:
    p = Pseudonymizer(b"key")
    mid, thread = p.message_id(f"{platform}:{raw}"), p.thread_key(f"{platform}:{raw}")
    att, author = p.attachment(f"{platform}:{raw}"), p(platform, raw)
    assert mid == p.message_id(f"{platform}:{raw}")  # stable: dedup and replies match
    assert mid.startswith(f"{platform}:m_") and thread.startswith(f"{platform}:t_")
    assert len({mid.split(":")[1][2:], thread.split(":")[1][2:], att.split(":")[1][2:]}) == 3
    for value in (mid, thread, att, author):
        token = value.rsplit("_", 1)[1]
        assert len(token) == 25 and token.isalpha() and token.islower()
    assert Pseudonymizer(b"other")(platform, raw) != author


# --- values never reach dead letters or messages -------------------------------------------

_PLANT = "81234567890"  # a phone's digits, planted as every value and key in turn


def _paths(doc: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths(v, (*path, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _paths(v, (*path, i))
    else:
        yield path


def _replaced(doc: Any, path: tuple[Any, ...], value: Any, as_key: bool = False) -> Any:
    doc = copy.deepcopy(doc)
    node = doc
    for step in path[:-1]:
        node = node[step]
    if as_key and isinstance(node, dict):
        node[value] = node.pop(path[-1])
    else:
        node[path[-1]] = value
    return doc


FIXTURE_DOCS = [
    (Platform(p.name.split("_")[0]), orjson.loads(p.read_bytes()))
    for p in sorted(FIXTURES.glob("*.json"))
]


@pytest.mark.parametrize(
    ("platform", "doc"), FIXTURE_DOCS, ids=[str(i) for i in range(len(FIXTURE_DOCS))]
)
def test_no_planted_value_reaches_a_dead_letter_detail_or_a_message(
    platform: Platform, doc: Any
) -> None:
    """Every leaf of every fixture, and every key, replaced in turn by a phone number
    (as text, as a number, glued into an id): whatever the parser makes of it, the phone is
    in no refusal detail and no message."""
    tried = 0
    for path in _paths(doc):
        if not path:
            continue
        variants = [
            _replaced(doc, path, f"0{_PLANT}"),
            _replaced(doc, path, int(_PLANT + "0")),
            _replaced(doc, path, f"wamid.x0{_PLANT}y"),
        ]
        if isinstance(path[-1], str):
            variants.append(_replaced(doc, path, f"k0{_PLANT}", as_key=True))
        for variant in variants:
            tried += 1
            try:
                result = parse(platform, orjson.dumps(variant))
            except MalformedDelivery as exc:
                assert _PLANT not in exc.detail, (path, exc.detail)
                continue
            for r in result.rejected:
                assert _PLANT not in r.detail, (path, r.reason, r.detail)
            for m in result.messages:
                assert _PLANT not in m.model_dump_json(), (path, m)
    assert tried > 20
