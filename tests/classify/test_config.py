from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from services.classify.classifier import load_classifier
from services.classify.config import DEFAULT_CONFIG, ConfigError, ConfigWatcher, load_config

from .helpers import message, registry


def _write(tmp_path: Path, data: object, name: str = "classify.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def _default() -> dict:
    return yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))


def test_default_config_is_valid_and_covers_every_agency_kind_used_by_routing() -> None:
    config = load_config()
    kinds = {c.agency_kind for c in config.categories.values()}
    assert {"public_works", "environment", "transportation", "subdistrict"} <= kinds
    assert config.fallback_category in config.categories


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d["categories"]["roads"].update(agency_kind="dinas_pu"), "categories.roads"),
        (lambda d: d.update(fallback_category="nowhere"), "fallback_category 'nowhere'"),
        (lambda d: d["categories"]["waste"]["keywords"].update({"Sampah ": 2}), "lowercase"),
        (lambda d: d["categories"]["waste"]["keywords"].update({"tps": 99}), "keywords.tps"),
        (lambda d: d["kinds"].update(rumor={"hoaks": 3}), "unknown message kind 'rumor'"),
        (lambda d: d["urgency"].update(panic=[]), "unknown urgency level 'panic'"),
        (lambda d: d.update(colour="blue"), "colour"),
        (lambda d: d["context"].update(mood=["senang"]), "unknown context word list 'mood'"),
        (lambda d: d["context"]["negation"].append("Tidak "), "lowercase"),
        (lambda d: d["urgency"]["emergency"][0].update(any=[], all=[]), "needs 'any' or 'all'"),
        (lambda d: d["urgency"]["high"][0].update(all=[["bahaya"]]), "two non-empty groups"),
        (lambda d: d.update(needs_review_below=1.5), "needs_review_below"),
        (lambda d: d.update(places={"taman x": "99.99"}), "not a Kemendagri region code"),
    ],
)
def test_bad_config_is_refused_with_a_precise_error(tmp_path: Path, mutate, expected) -> None:
    data = _default()
    mutate(data)
    path = _write(tmp_path, data)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(path) in str(err.value)
    assert expected in str(err.value)


def test_unparseable_yaml_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("categories: [unclosed", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)


def test_street_lights_move_agency_without_a_code_change(tmp_path: Path) -> None:
    """One regency gives PJU to Transportation, another to Public Works: edit, no release."""
    data = _default()
    path = _write(tmp_path, data)
    classifier = load_classifier(registry(), config_path=path)
    msg = message("lampu pju di gang 3 mati")
    assert classifier.classify(msg).agency_id == "sby-transportation"

    data["categories"]["street_lighting"]["agency_kind"] = "public_works"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert classifier.reload_if_changed()
    assert classifier.classify(msg).agency_id == "sby-public-works"


def test_broken_edit_keeps_the_previous_config(tmp_path: Path) -> None:
    path = _write(tmp_path, _default())
    watcher = ConfigWatcher(path)
    before = watcher.config
    path.write_text("version: 0\n", encoding="utf-8")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    with pytest.raises(ConfigError):
        watcher.poll()
    assert watcher.config is before
    assert watcher.poll() is False  # reported once, not on every poll


def test_config_path_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _default()
    data["categories"]["roads"]["label"] = "Jalan (deployment copy)"
    monkeypatch.setenv("ADUAN_CLASSIFY_CONFIG", str(_write(tmp_path, data)))
    assert load_config().categories["roads"].label == "Jalan (deployment copy)"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("  problem: [rusak,", "  problem: [rusak, rusak,", "context.problem: phrase 'rusak'"),
        ("      any: [keracunan]", "      any: [keracunan, keracunan]", "phrase 'keracunan'"),
    ],
)
def test_a_phrase_listed_twice_is_refused(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    text = DEFAULT_CONFIG.read_text(encoding="utf-8")
    assert text.count(old) == 1
    path = tmp_path / "dup.yaml"
    path.write_text(text.replace(old, new), encoding="utf-8")
    with pytest.raises(ConfigError, match=expected + " is listed twice"):
        load_config(path)


def test_a_keyword_written_twice_is_refused_not_silently_dropped(tmp_path: Path) -> None:
    text = DEFAULT_CONFIG.read_text(encoding="utf-8").replace(
        "      sampah: 4\n", "      sampah: 4\n      sampah: 1\n", 1
    )
    path = tmp_path / "dup.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match="duplicate key 'sampah'"):
        load_config(path)
