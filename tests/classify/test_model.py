"""The learned layer on a tiny synthetic history (no evaluation data is read)."""

from __future__ import annotations

import argparse
import csv
import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.svm import LinearSVC

from common.registry import Registry
from services.classify import train
from services.classify.classifier import Classifier, load_classifier
from services.classify.config import load_config
from services.classify.model import (
    MODEL_FORMAT,
    History,
    HistoryError,
    TextModel,
    add_training_options,
    auxiliary_labels,
    load_model,
    read_history,
    save_model,
    train_model,
    training_options,
)
from services.classify.rules import RuleSet

from .helpers import message, registry

RULES = RuleSet(load_config())

# "wadul sobat" is a made-up local program name that no rule knows: only history teaches it.
HISTORY = [
    *[(f"program wadul sobat rt {i} belum cair", "communication") for i in range(12)],
    *[(f"jalan rusak berlubang di gang {i}", "public_works") for i in range(12)],
    *[(f"sampah menumpuk belum diangkut blok {i}", "environment") for i in range(12)],
    *[(f"lampu pju mati di gang {i}", "transportation") for i in range(12)],
]


def _texts_labels() -> tuple[list[str], list[str]]:
    return [t for t, _ in HISTORY], [k for _, k in HISTORY]


def _write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_history_teaches_what_the_rules_do_not_know() -> None:
    text = "kapan program wadul sobat dibuka lagi"
    rules_only = Classifier(Registry(agencies=[], accounts=[]), RULES)
    assert rules_only.decide_many([text])[0].agency_kind != "communication"
    model = train_model(*_texts_labels(), RULES)
    learned = Classifier(Registry(agencies=[], accounts=[]), RULES, model)
    decision = learned.decide_many([text])[0]
    assert decision.agency_kind == "communication"
    assert decision.evidence[0].startswith("model:communication=")
    assert decision.category == "communication"  # a configured category of that agency kind


def test_training_is_deterministic_and_survives_a_file_round_trip(tmp_path: Path) -> None:
    a = train_model(*_texts_labels(), RULES)
    b = train_model(*_texts_labels(), RULES)
    assert np.array_equal(a.clf.coef_, b.clf.coef_)
    path = tmp_path / "model.joblib"
    save_model(a, path)
    texts = ["jalan berlubang lagi", "sampah di blok 3", "wadul sobat"]
    results = [RULES.apply(t) for t in texts]
    assert load_model(path).decide(results, RULES) == a.decide(results, RULES)


def test_lean_transform_matches_sklearn() -> None:
    model = train_model(*_texts_labels(), RULES)
    results = [RULES.apply(t) for t in ["jalan rusak jalan rusak [PHONE]", "", "lampu pju"]]
    ours = model.term_matrix(results).toarray()
    ref = model.terms.transform([(r.tokens, r.roots) for r in results]).toarray()
    assert np.allclose(ours, ref)


def test_lean_char_ngrams_match_sklearn_including_short_words_and_cached_words() -> None:
    assert train_model(*_texts_labels(), RULES, char_ngrams=False).chars is None
    model = train_model(*_texts_labels(), RULES)  # on by default
    assert model.chars is not None
    texts = ["lampu pju di gang 7 mati", "", "a jl rusak", "lampu pju mati lampu pju mati"]
    results = [RULES.apply(t) for t in texts]
    ref = model.chars.transform([" ".join(r.tokens) for r in results]).toarray()
    for _ in range(2):  # second pass is served from the per-word cache
        assert np.allclose(model.char_matrix(results).toarray(), ref)
    assert model.char_matrix(results).nnz > 0


def test_model_file_from_before_char_ngrams_still_decides(tmp_path: Path) -> None:
    """A model pickled before character n-grams existed has no ``chars`` in its state."""
    texts, labels = _texts_labels()
    model = train_model(texts, labels, RULES)
    model.chars, model.aux_clf = None, None
    model.clf = LinearSVC(class_weight="balanced", random_state=0).fit(
        model.features([RULES.apply(t) for t in texts], RULES), labels
    )
    state = model.__getstate__()
    del state["chars"], state["char_weight"]
    old = TextModel.__new__(TextModel)
    old.__setstate__(state)
    path = tmp_path / "old.joblib"
    save_model(old, path)
    decided = load_model(path).decide([RULES.apply("jalan rusak berlubang")], RULES)
    assert decided[0][0] == "public_works"


def test_model_from_environment_is_used_by_load_classifier(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "m.joblib"
    save_model(train_model(*_texts_labels(), RULES), path)
    monkeypatch.setenv("ADUAN_CLASSIFY_MODEL", str(path))
    classifier = load_classifier(registry())
    assert "+model-" in classifier.version
    assert classifier.classify(message("wadul sobat belum cair")).agency_kind == "communication"


def test_read_history_csv_jsonl_and_category_only(tmp_path: Path) -> None:
    config = load_config()
    csv_path = _write_csv(
        tmp_path / "h.csv",
        [{"text": "jalan rusak", "agency_kind": "public_works", "extra": "x"},
         {"text": "", "agency_kind": "public_works", "extra": "skipped: no text"}],
    )  # fmt: skip
    assert read_history(csv_path, config) == History(
        ["jalan rusak"], ["public_works"], "agency_kind", None
    )
    jsonl = tmp_path / "h.jsonl"
    jsonl.write_text(json.dumps({"text": "got mampet", "category": "drainage_flooding"}) + "\n")
    assert read_history(jsonl, config) == History(
        ["got mampet"], ["drainage_flooding"], "category", None
    )
    with_topic = _write_csv(
        tmp_path / "t.csv",
        [{"text": "pohon rimbun", "agency_kind": "environment", "topic": "Pohon"}],
    )
    assert read_history(with_topic, config).aux == ["Pohon"]


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([{"body": "x", "agency_kind": "public_works"}], "missing column 'text'"),
        ([{"text": "x", "label": "y"}], "needs a column 'agency_kind' or 'category'"),
        ([{"text": "x", "agency_kind": "dinas_pu"}], "row 2: unknown agency_kind 'dinas_pu'"),
    ],
)
def test_bad_history_is_refused_with_row_and_reason(tmp_path: Path, rows, expected) -> None:
    with pytest.raises(HistoryError, match=expected):
        read_history(_write_csv(tmp_path / "bad.csv", rows), load_config())


def test_train_command_writes_a_model_file(tmp_path: Path, capsys) -> None:
    history = _write_csv(
        tmp_path / "history.csv", [{"text": t, "agency_kind": k} for t, k in HISTORY]
    )
    out = tmp_path / "artifacts" / "model.joblib"
    assert train.main([str(history), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert out.exists() and "trained on 48 rows" in printed
    assert "confidence not calibrated (too little history" in printed  # 48 rows < 3 x 20
    assert train.main([str(tmp_path / "missing.csv"), "--out", str(out)]) == 2


def test_auxiliary_labels_split_only_well_supported_topics() -> None:
    labels = ["environment"] * 3 + ["public_works"]
    aux = ["Pohon", "Pohon", "Sampah", "Pohon"]
    assert auxiliary_labels(labels, aux, min_count=2) == [
        "Pohon|environment", "Pohon|environment", "*|environment", "*|public_works",
    ]  # fmt: skip


def test_auxiliary_model_is_trained_and_used_when_history_has_topics() -> None:
    texts, labels = _texts_labels()
    aux = [("Pangkas" if i % 2 else "Sampah") if k == "environment" else "" for i, k in
           enumerate(labels)]  # fmt: skip
    model = train_model(texts, labels, RULES, aux=aux, aux_min_count=3)
    assert model.aux_clf is not None
    results = [RULES.apply("sampah menumpuk belum diangkut")]
    assert model.decide(results, RULES)[0][0] == "environment"


def test_block_wise_scores_equal_the_stacked_features_times_the_weights() -> None:
    texts, labels = _texts_labels()
    model = train_model(texts, labels, RULES, aux=["x" if i % 2 else "" for i in range(48)],
                        aux_min_count=3)  # fmt: skip
    results = [RULES.apply(t) for t in ["lampu pju mati di gang 3", "", "wadul sobat sampah"]]
    weights = np.vstack([m.coef_ for m in (model.clf, model.aux_clf) if m is not None]).T
    intercepts = np.concatenate([model.clf.intercept_, model.aux_clf.intercept_])
    stacked = model.features(results, RULES) @ weights + intercepts
    assert np.allclose(model.scores(results, RULES), stacked, atol=1e-4)


def test_the_agency_model_blends_in_a_naive_bayes_weighted_svm_per_kind() -> None:
    """The blend is one linear model over the same features: its scores are the plain SVM's
    and the NBSVMs' (recomputed here from the definition, Wang & Manning 2012) in the stated
    proportions, and the fast block-wise scores read it."""
    texts, labels = _texts_labels()
    plain = train_model(texts, labels, RULES, nb_weight=0.0)
    blended = train_model(texts, labels, RULES, nb_weight=0.5)
    x, y = plain.features([RULES.apply(t) for t in texts], RULES), np.asarray(labels)
    probes = [RULES.apply(t) for t in ("sampah gang 3 belum", "wadul lampu mati", "rt 4 rusak")]
    probe_x = plain.features(probes, RULES)
    svm_scores = x @ plain.clf.coef_.T + plain.clf.intercept_  # the spread is the rows'
    nb_scores, probe_nb = [], []
    for kind in plain.clf.classes_:
        present = (x > 0).toarray()
        p = present[y == kind].sum(axis=0) + 0.5
        q = present[y != kind].sum(axis=0) + 0.5
        r = np.log((p / p.sum()) / (q / q.sum()))
        pos = y == kind
        weights = {True: len(y) / (2 * pos.sum()), False: len(y) / (2 * (~pos).sum())}
        svm = LinearSVC(class_weight=weights, random_state=0).fit(x.multiply(r).tocsr(), pos)
        nb_scores.append(x.multiply(r) @ svm.coef_.ravel() + svm.intercept_[0])
        probe_nb.append(probe_x.multiply(r) @ svm.coef_.ravel() + svm.intercept_[0])
    k = svm_scores.std() / np.column_stack(nb_scores).std()
    probe_svm = plain.scores(probes, RULES)
    expected = (probe_svm + 0.5 * k * np.column_stack(probe_nb)) / 1.5
    assert np.allclose(blended.scores(probes, RULES), expected, atol=1e-3)
    assert np.abs(probe_svm - expected).max() > 0.05  # the blend changes the scores


def test_a_history_of_two_agency_kinds_is_blended_as_one_binary_model() -> None:
    """A two-class LinearSVC has one row of weights (for its second class): the blend keeps
    that shape and still decides both kinds."""
    texts, labels = _texts_labels()
    two = [
        (t, k) for t, k in zip(texts, labels, strict=True) if k in ("environment", "public_works")
    ]
    model = train_model([t for t, _ in two], [k for _, k in two], RULES, nb_weight=0.5)
    assert model.clf.coef_.shape[0] == 1 and model.clf.intercept_.shape == (1,)
    probes = [RULES.apply("sampah menumpuk di blok 9"), RULES.apply("jalan rusak berlubang")]
    assert [label for label, _ in model.decide(probes, RULES)] == ["environment", "public_works"]


def test_nb_weight_option_parses_and_refuses_what_is_not_a_weight(capsys) -> None:
    ap = argparse.ArgumentParser()
    add_training_options(ap)
    assert training_options(ap.parse_args([]))["nb_weight"] == 0.5
    assert training_options(ap.parse_args(["--nb-weight", "0"]))["nb_weight"] == 0.0
    for bad in ("-1", "nan", "much"):
        with pytest.raises(SystemExit):
            ap.parse_args(["--nb-weight", bad])
    assert "not a number: 'much'" in capsys.readouterr().err


# the kelurahan takes a bit of everything: its rows repeat the specialists' words
CATCH_ALL_HISTORY = [
    *HISTORY,
    *[(f"surat pengantar rt rw {i} dari kelurahan belum jadi", "subdistrict") for i in range(12)],
    *[(f"jalan rusak gang {i} sudah lapor ke lurah", "subdistrict") for i in range(3)],
]


def test_catch_all_rows_train_a_detector_not_a_specialist_class() -> None:
    texts, labels = [t for t, _ in CATCH_ALL_HISTORY], [k for _, k in CATCH_ALL_HISTORY]
    model = train_model(texts, labels, RULES)
    assert "subdistrict" not in model.classes and model.catch_all == "subdistrict"
    kelurahan = RULES.apply("surat pengantar dari kelurahan kok belum jadi")
    road = RULES.apply("jalan rusak berlubang di gang 9")
    assert [label for label, _ in model.decide([kelurahan, road], RULES)] == [
        "subdistrict", "public_works",
    ]  # fmt: skip
    never = train_model(texts, labels, RULES, catch_all_margin=float("inf"))
    assert never.decide([kelurahan], RULES)[0][0] != "subdistrict"
    ordinary = train_model(texts, labels, RULES, catch_all_margin=None)
    assert ordinary.catch_all_clf is None and "subdistrict" in ordinary.classes


def _catch_all_model(**options: object) -> TextModel:
    texts, labels = [t for t, _ in CATCH_ALL_HISTORY], [k for _, k in CATCH_ALL_HISTORY]
    return train_model(texts, labels, RULES, **options)  # type: ignore[arg-type]


KELURAHAN_PROBES = [
    "surat pengantar dari kelurahan kok belum jadi",
    "pengantar rt rw belum jadi, jalan rusak juga",
    "jalan rusak gang 4 sudah lapor lurah",
    "jalan rusak berlubang di gang 9",
    "sampah menumpuk di blok 2",
]


def test_multiclass_signal_is_the_kelurahan_margin_minus_the_best_other_kind() -> None:
    """The default kelurahan decision reads a model over all kinds: a message goes to the
    kelurahan exactly when that model's kelurahan margin leads every other kind's by more than
    the threshold (recomputed here with sklearn, independently of the block-wise scoring)."""
    model = _catch_all_model()
    assert model.catch_all_signal == "multiclass" and model.catch_all_margin == 0.42
    assert model.catch_all_clf is not None
    assert "subdistrict" in model.catch_all_clf.classes_ and "subdistrict" not in model.classes
    results = [RULES.apply(t) for t in KELURAHAN_PROBES]
    margins = model.catch_all_clf.decision_function(model.features(results, RULES))
    j = list(model.catch_all_clf.classes_).index("subdistrict")
    signal = margins[:, j] - np.delete(margins, j, axis=1).max(axis=1)
    decided, features = model.decide_with_features(results, RULES)
    assert np.allclose(features[:, 2], signal, atol=1e-4)  # what the calibration reads
    assert [label == "subdistrict" for label, _ in decided] == list(signal > 0.42)
    assert decided[0][0] == "subdistrict" and decided[3][0] == "public_works"
    # every threshold between two messages' signals splits them the same way
    order = np.argsort(signal)
    for lo, hi in itertools.pairwise(order):
        model.catch_all_margin = float((signal[lo] + signal[hi]) / 2)
        labels = [label for label, _ in model.decide(results, RULES)]
        assert labels[hi] == "subdistrict" and labels[lo] != "subdistrict"


def test_binary_detector_stays_available_with_its_own_default_threshold() -> None:
    model = _catch_all_model(catch_all_signal="detector")
    assert model.catch_all_signal == "detector" and model.catch_all_margin == 0.75
    assert model.catch_all_clf is not None and model.catch_all_clf.coef_.shape[0] == 1
    results = [RULES.apply(t) for t in KELURAHAN_PROBES]
    margin = model.catch_all_clf.decision_function(model.features(results, RULES))
    decided, features = model.decide_with_features(results, RULES)
    assert np.allclose(features[:, 2], margin, atol=1e-4)
    assert [label == "subdistrict" for label, _ in decided] == list(margin > 0.75)
    assert (
        _catch_all_model(catch_all_signal="detector", catch_all_margin=0.3).catch_all_margin == 0.3
    )
    with pytest.raises(ValueError, match="unknown kelurahan signal 'knn'"):
        _catch_all_model(catch_all_signal="knn")


@pytest.mark.parametrize(
    ("argv", "signal", "margin"),
    [
        ([], "multiclass", "default"),
        (["--subdistrict-signal", "detector"], "detector", "default"),
        (["--subdistrict-signal", "multiclass", "--subdistrict-margin", "0.5"], "multiclass", 0.5),
        (["--subdistrict-margin", "none"], "multiclass", None),
    ],
)
def test_kelurahan_options_parse(argv: list[str], signal: str, margin: object) -> None:
    ap = argparse.ArgumentParser()
    add_training_options(ap)
    options = training_options(ap.parse_args(argv))
    assert options["catch_all_signal"] == signal and options["catch_all_margin"] == margin


def test_unknown_kelurahan_signal_is_refused_by_the_command(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit):
        train.main([str(tmp_path / "h.csv"), "--out", "m", "--subdistrict-signal", "knn"])
    assert "invalid choice: 'knn'" in capsys.readouterr().err


def test_kelurahan_signal_survives_the_file_round_trip(tmp_path: Path) -> None:
    results = [RULES.apply(t) for t in KELURAHAN_PROBES]
    for signal in ("multiclass", "detector"):
        model = _catch_all_model(catch_all_signal=signal)
        save_model(model, tmp_path / f"{signal}.joblib")
        loaded = load_model(tmp_path / f"{signal}.joblib")
        assert loaded.catch_all_signal == signal and loaded.format == MODEL_FORMAT
        assert loaded.decide(results, RULES) == model.decide(results, RULES)


def test_format_1_files_decide_with_their_detector_and_unknown_formats_are_refused(
    tmp_path: Path,
) -> None:
    """A file from before the multi-class signal has format 1 and no ``catch_all_signal``:
    it loads and its binary detector decides as it did."""
    model = _catch_all_model(catch_all_signal="detector")
    results = [RULES.apply(t) for t in KELURAHAN_PROBES]
    state = model.__getstate__()
    del state["catch_all_signal"]
    state["format"] = 1
    old = TextModel.__new__(TextModel)
    old.__setstate__(state)
    save_model(old, tmp_path / "old.joblib")
    assert load_model(tmp_path / "old.joblib").decide(results, RULES) == model.decide(
        results, RULES
    )
    model.format = 99
    save_model(model, tmp_path / "future.joblib")
    with pytest.raises(HistoryError, match=r"format 99; readable: 1, 2\): train it again$"):
        load_model(tmp_path / "future.joblib")


def test_train_command_takes_the_model_options(tmp_path: Path, capsys) -> None:
    history = _write_csv(
        tmp_path / "h.csv", [{"text": t, "agency_kind": k} for t, k in CATCH_ALL_HISTORY]
    )
    out = tmp_path / "m.joblib"
    argv = [str(history), "--out", str(out), "--no-char-ngrams", "--subdistrict-margin", "none"]
    assert train.main(argv) == 0
    model = load_model(out)
    assert model.chars is None and model.catch_all_clf is None
    with pytest.raises(SystemExit):
        train.main([str(history), "--out", str(out), "--subdistrict-margin", "high"])
    assert "not a number or 'none': 'high'" in capsys.readouterr().err


# --- calibrated confidence (issue 15) -------------------------------------------------------
def _noisy_history() -> tuple[list[str], list[str]]:
    """Four agencies, with a tenth of the rows deliberately labelled with another agency, so
    that a model cannot be right everywhere and its confidence has something to describe."""
    texts, labels = _texts_labels()
    texts, labels = texts * 3, labels * 3
    kinds = sorted(set(labels))
    noisy = [
        kinds[(kinds.index(lab) + 1) % 4] if i % 10 == 0 else lab for i, lab in enumerate(labels)
    ]
    return [f"{t} nomor {i}" for i, t in enumerate(texts)], noisy


def test_confidence_is_calibrated_on_out_of_fold_decisions() -> None:
    texts, labels = _noisy_history()
    model = train_model(texts, labels, RULES)
    assert model.calibration is not None and model.calibration.folds == 3
    decided = model.decide([RULES.apply(t) for t in texts], RULES)
    confidence = np.asarray([c for _, c in decided])
    assert ((confidence > 0) & (confidence < 1)).all()
    # about a tenth of the labels are noise: the model cannot honestly claim certainty
    assert confidence.mean() < 0.99
    uncalibrated = train_model(texts, labels, RULES, calibration_folds=0)
    assert uncalibrated.calibration is None
    assert [lab for lab, _ in uncalibrated.decide([RULES.apply(t) for t in texts], RULES)] == [
        lab for lab, _ in decided
    ]  # calibration changes the confidence, never the decision


def test_a_history_too_small_to_hold_folds_out_trains_without_calibration() -> None:
    model = train_model(*_texts_labels(), RULES)  # 48 rows < 20 per fold x 3 folds
    assert model.calibration is None


def test_low_confidence_sets_needs_review_at_the_configured_threshold() -> None:
    texts, labels = _noisy_history()
    model = train_model(texts, labels, RULES)
    strict = Classifier(
        registry(), RuleSet(RULES.config.model_copy(update={"needs_review_below": 1.0})), model
    )
    lenient = Classifier(
        registry(), RuleSet(RULES.config.model_copy(update={"needs_review_below": 0.0})), model
    )
    msg = message("program wadul sobat belum cair juga")
    assert strict.classify(msg).needs_review is True
    assert lenient.classify(msg).needs_review is False
    assert "needs_review" in strict.classify(msg).model_dump()
