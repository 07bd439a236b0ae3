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
