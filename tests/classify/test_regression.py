"""Hand-written regression set: informal Indonesian as citizens write it, with the decision
an operator would expect. None of these rows come from the evaluation data."""

from __future__ import annotations

import pytest

from services.classify.classifier import load_classifier
from services.classify.config import load_config
from services.classify.rules import RuleSet

from .helpers import message, registry

RULES = RuleSet(load_config())

# text, category, agency_kind
CATEGORY_CASES = [
    ("jln rusak bgt pak, udh lama gak dibenerin 🙏", "roads", "public_works"),
    ("jalan depan sekolah berlobang gede, tlg segera ditambal", "roads", "public_works"),
    ("got mampet, tiap hujan air meluap masuk gang", "drainage_flooding", "public_works"),
    ("sampahnya gak diangkut2 udah seminggu, bau bgt", "waste", "environment"),
    ("mohon pohon di depan rmh dipangkas, rantingnya kena kabel", "trees_parks", "environment"),
    ("lampu pju di gang 3 mati sdh 2 minggu, gelap gulita", "street_lighting", "transportation"),
    ("ada jukir liar minta 5rb di minimarket", "parking", "transportation"),
    ("air pdam mati dari kemarin, keluar cuma netes", "water_utility", "water_utility"),
    ("ktp el saya blm dicetak sdh 3 bulan", "population_documents", "civil_registry"),
    ("kenapa status mbr saya dihapus padahal gak mampu", "poverty_data", "social_affairs"),
    ("bansos bpnt tahap 2 blm cair pak", "social_aid", "social_affairs"),
    ("anak saya gak keterima ppdb jalur zonasi padahal dekat", "education", "education"),
    ("antrian di puskesmas lama bgt, dokternya blm dateng", "health", "health"),
    ("pkl jualan di trotoar sampai malam, tolong satpol pp", "public_order", "public_order"),
    # the vendors, not the pavement they stand on or the asphalt people walk on instead
    (
        "PKL berjualan di trotoar depan stasiun, pejalan kaki terpaksa jalan di aspal",
        "public_order",
        "public_order",
    ),
    ("minta info lowongan kerja buat lulusan smk", "manpower", "manpower"),
    ("tagihan pbb saya naik 3x lipat", "revenue", "revenue"),
    ("ada sarang tawon besar di plafon, mohon damkar", "fire_rescue", "fire_rescue"),
    ("oknum petugas minta pungli buat ngurus surat", "illegal_levies_corruption", "inspectorate"),
    ("pengajuan rusunawa saya kok gak ada kabar", "housing", "housing"),
    ("kabel fiber optik menjuntai ke jalan, bahaya", "utilities_cables", "public_works"),
]


@pytest.mark.parametrize(("text", "category", "agency_kind"), CATEGORY_CASES)
def test_category_and_agency_kind(text: str, category: str, agency_kind: str) -> None:
    result = RULES.apply(text)
    assert result.category == category, result.evidence
    assert RULES.config.agency_kind_of(result.category) == agency_kind


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("jln rusak parah, tolong diperbaiki", "complaint"),
        ("mau tanya syarat bikin akta kelahiran apa aja ya?", "question"),
        ("saran saya sebaiknya taman kota ditambah lampu", "aspiration"),
        ("mantap pak, terima kasih atas pelayanan bagus dan sigap!", "praise"),
        ("PROMO diskon 50% gratis ongkir, order via wa me", "spam"),
        ("ayo nyoblos paslon nomor 2 di pilkada, jangan golput", "political"),
        ("hmm", "other"),
    ],
)
def test_message_kind(text: str, kind: str) -> None:
    assert RULES.apply(text).kind == kind


@pytest.mark.parametrize(
    ("text", "urgency", "reason"),
    [
        ("ada kebakaran rumah di gang 5, api besar!", "emergency", "fire"),
        # a tree across a road is a hazard to clear today; on someone, an emergency
        ("pohon tumbang menutup jalan, motor gak bisa lewat", "high", "fallen tree across a road"),
        ("pohon tumbang nimpa motor, pengendaranya kejepit", "emergency", None),
        # water in homes is urgent; waist-deep or people trapped is an emergency
        ("banjir sekarang, air masuk rumah warga", "high", "risk of collapse or flooding"),
        ("banjir sepinggang, air masuk rumah warga", "emergency", None),
        ("kecelakaan di perempatan karena lampu merah mati", "emergency", None),
        ("lubang di jalan raya membahayakan pengendara", "high", "hazard to road users"),
        ("sampah belum diangkut", "normal", None),
    ],
)
def test_urgency(text: str, urgency: str, reason: str | None) -> None:
    result = RULES.apply(text)
    assert result.urgency == urgency, result.evidence
    if reason is not None:
        assert result.urgency_reason == reason


def test_a_parent_who_died_is_not_an_accident() -> None:
    assert RULES.apply("ayah saya sudah meninggal, mohon bantuan pkh").urgency != "emergency"


@pytest.mark.parametrize(
    "masked",
    [
        "lampu pju mati, hub saya di [PHONE]",
        "lampu pju mati. ini [NIK], dan [EMAIL]",
        "lampu pju mati [TELEPON] [PHONE] [NIK]",
    ],
)
def test_masked_placeholders_do_not_change_the_decision(masked: str) -> None:
    plain = RULES.apply("lampu pju mati")
    result = RULES.apply(masked)
    assert result.category == plain.category == "street_lighting"
    assert result.scores == plain.scores
    assert not any(t in {"phone", "nik", "email", "telepon"} for t in result.tokens)


def test_record_is_deterministic_and_explains_itself() -> None:
    classifier = load_classifier(registry())
    msg = message("jalan rusak berlubang di kelurahan darmo, bahaya buat motor")
    first, second = classifier.classify(msg), classifier.classify(msg)
    assert first.model_dump_json() == second.model_dump_json()
    assert first.category == "roads" and first.agency_id == "sby-public-works"
    assert "keyword:berlubang" in first.evidence
    assert 0.0 < first.confidence <= 1.0


def test_message_without_text_is_other_but_still_published() -> None:
    record = load_classifier(registry()).classify(message(None))
    assert record.kind == "other"
    assert record.agency_id  # resolved (falls back to the account's agency chain)
