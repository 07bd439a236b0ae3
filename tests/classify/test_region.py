from collections import Counter

import pytest

from schemas.classified import RegionSource
from schemas.messages import Location
from services.classify.classifier import load_classifier
from services.classify.gazetteer import gazetteer_for
from services.classify.text import tokens

from .helpers import message, registry

CLASSIFIER = load_classifier(registry())


def test_village_named_after_a_cue_resolves_to_its_code() -> None:
    hit = gazetteer_for("35.78").resolve(tokens("jalan rusak di Kel. Ujung, Kec. Semampir"))
    assert hit is not None and hit[0].startswith("35.78.") and hit[1] == "Ujung"
    assert hit[0].count(".") == 3


def test_common_word_without_cue_is_not_a_place() -> None:
    assert gazetteer_for("35.78").resolve(tokens("di ujung jalan ada lubang")) is None


def test_text_place_beats_account_region_and_picks_the_kecamatan_agency() -> None:
    record = CLASSIFIER.classify(
        message("pkl dan parkir liar di kelurahan darmo kecamatan wonokromo")
    )
    assert record.region_source == RegionSource.text
    assert record.region_code.startswith("35.78.04")
    assert any(e.startswith("place:") for e in record.evidence)


def test_subdistrict_complaint_goes_to_the_kecamatan_office_of_that_place() -> None:
    record = CLASSIFIER.classify(
        message("surat keterangan ahli waris di kelurahan darmo kecamatan wonokromo lama")
    )
    assert record.agency_kind == "subdistrict"
    assert record.agency_id == "kec-wonokromo"


def test_whatsapp_location_beats_text() -> None:
    loc = Location(latitude=-7.29, longitude=112.73, name="Kelurahan Kedurus")
    record = CLASSIFIER.classify(message("jalan rusak di kelurahan darmo", location=loc))
    assert record.region_source == RegionSource.location
    assert record.region_code.startswith("35.78.01")


def test_account_region_when_nothing_is_named() -> None:
    record = CLASSIFIER.classify(message("jalan rusak parah"))
    assert record.region_source == RegionSource.account
    assert record.region_code == "35.78"
    assert record.agency_id == "sby-public-works"


def test_unregistered_kind_falls_back_to_the_accounts_agency() -> None:
    record = CLASSIFIER.classify(message("ada sarang tawon di plafon, mohon damkar"))
    assert record.agency_kind == "fire_rescue"
    assert record.agency_id == "sby-secretariat"  # no fire_rescue agency in this registry


# --- places across a province (issue 15) ---------------------------------------------------
PROVINCIAL = "35"  # an account of the Jawa Timur provincial government


@pytest.mark.parametrize(
    ("text", "code_prefix"),
    [
        ("jalan rusak di Rungkut", "35.78.03"),  # Kecamatan Rungkut, Kota Surabaya
        ("lampu mati di Malang, Lowokwaru", "35.73."),  # Lowokwaru is in Kota Malang
        ("got mampet di Jemur Wonosari", "35.78.02."),  # a kelurahan of Wonocolo
        ("banjir di daerah tambaksari", "35.78.10"),
        ("sampah numpuk di keputih sukolilo", "35.78.09."),
        ("pju mati di benowo", "35.78.19"),
    ],
)
def test_a_provincial_account_places_kecamatan_and_villages_anywhere_in_it(
    text: str, code_prefix: str
) -> None:
    record = CLASSIFIER.classify(message(text, region=PROVINCIAL))
    assert record.region_source == RegionSource.text, record.evidence
    assert record.region_code.startswith(code_prefix), record.region_code


def test_kecamatan_names_resolve_without_cue_words_inside_a_city() -> None:
    for text, code in [
        ("daerah tambaksari banyak jukir liar", "35.78.10"),
        ("jalan rusak di benowo", "35.78.19"),
    ]:
        assert CLASSIFIER.classify(message(text)).region_code == code


def test_a_name_shared_by_several_places_prefers_the_accounts_own_regency() -> None:
    # "Sidomulyo" is a village name in dozens of Jawa Timur kecamatan
    gaz = gazetteer_for("35")
    (mention,) = gaz.find(tokens("desa sidomulyo"))
    regencies = Counter(p.code[:5] for p in mention.places)
    assert len(mention.places) > 10
    home = next(r for r, n in sorted(regencies.items()) if n == 1)  # one Sidomulyo there
    expected = next(p.code for p in mention.places if p.code.startswith(home + "."))
    hit = gaz.resolve(tokens("jalan rusak di desa sidomulyo"), home)
    assert hit is not None and hit[0] == expected


def test_an_ambiguous_name_outside_the_home_regency_is_not_guessed() -> None:
    # villages called Sidomulyo lie in many regencies: a provincial account gets no guess
    assert gazetteer_for("35").resolve(tokens("jalan rusak di desa sidomulyo"), "35") is None


def test_a_city_name_after_jalan_is_a_street_not_the_city() -> None:
    assert gazetteer_for("35").resolve(tokens("jalan kediri berlubang"), "35.78") is None


def test_kota_and_kabupaten_of_the_same_name_are_told_apart_by_the_cue() -> None:
    gaz = gazetteer_for("35")
    kota = gaz.resolve(tokens("banjir di kota malang"), "35")
    kab = gaz.resolve(tokens("banjir di kabupaten malang"), "35")
    assert kota is not None and kab is not None
    assert kota[0] == "35.73" and kab[0] == "35.07"


def test_the_deployments_own_place_names_resolve(tmp_path) -> None:
    import yaml

    from services.classify.config import DEFAULT_CONFIG

    raw = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    raw["places"] = {"taman bungkul": "35.78.04.1005"}
    path = tmp_path / "classify.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    classifier = load_classifier(registry(), config_path=path)
    record = classifier.classify(message("lampu di taman bungkul mati"))
    assert record.region_code == "35.78.04.1005" and "place:taman bungkul" in record.evidence


def test_an_unknown_code_in_the_configs_places_is_refused(tmp_path) -> None:
    import yaml

    from services.classify.config import DEFAULT_CONFIG, ConfigError, load_config

    raw = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    raw["places"] = {"taman bungkul": "35.78.99"}
    path = tmp_path / "classify.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError, match="not a Kemendagri region code"):
        load_config(path)


def test_whatsapp_coordinates_alone_leave_the_account_region() -> None:
    loc = Location(latitude=-7.29, longitude=112.73)  # no name or address: not mapped
    record = CLASSIFIER.classify(message("jalan rusak parah", location=loc))
    assert record.region_source == RegionSource.account and record.region_code == "35.78"


@pytest.mark.parametrize(
    "text",
    [
        "mohon rambu larangan parkir dipasang",  # "Larangan" is a village in Pamekasan
        "kebisingan tahunan dari pabrik",  # a derived word, not the village Tahunan
        "saya sudah lapor ke kelurahan",  # "Sudah" is a village too
        "musholla dijalan wonokitri besar berisik",  # a street here, a village in Pasuruan
    ],
)
def test_ordinary_words_and_streets_of_a_city_are_not_villages_elsewhere(text: str) -> None:
    hit = gazetteer_for("35").resolve(tokens(text), "35.78")
    assert hit is None or hit[0].startswith("35.78"), hit


def test_a_shortened_name_means_the_place_in_the_accounts_own_regency() -> None:
    # Surabaya has Manukan Kulon and Manukan Wetan (Tandes); "Manukan" alone is elsewhere
    hit = gazetteer_for("35").resolve(tokens("balai rt di manukan rusak"), "35.78")
    assert hit is not None and hit[0] == "35.78.14", hit
