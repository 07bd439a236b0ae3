from __future__ import annotations

import csv
import json
from pathlib import Path

from services.classify import evaluate

ROWS = [
    ("jalan rusak berlubang tolong ditambal", "public_works"),
    ("got mampet air meluap", "public_works"),
    ("sampah belum diangkut seminggu", "environment"),
    ("pohon rimbun mohon dipangkas", "environment"),
    ("lampu pju mati gelap", "transportation"),
    ("surat keterangan ahli waris lama", "subdistrict"),
    ("ktp el belum dicetak", "civil_registry"),
    ("kenapa status mbr saya dihapus", "social_affairs"),
]


def _csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "text", "topic", "agency_kind"])
        for i, (text, kind) in enumerate(rows):
            w.writerow([i, text, "ignored", kind])
    return path


def test_last_line_is_the_metrics_json(tmp_path: Path, capsys) -> None:
    path = _csv(tmp_path / "eval.csv", ROWS)
    assert evaluate.main([str(path)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    result = json.loads(out[-1])
    assert {"n", "accuracy", "accuracy_excl_subdistrict", "macro_f1", "msgs_per_s"} <= set(result)
    assert {"confidence_ece", "needs_review_share"} <= set(result)
    assert "kind_accuracy" not in result  # the file has no kind column
    assert result["n"] == len(ROWS)
    assert result["accuracy"] == 1.0 and result["accuracy_excl_subdistrict"] == 1.0
    assert result["msgs_per_s"] > 0
    assert any("precision" in line for line in out)


def test_with_train_and_a_wrong_prediction(tmp_path: Path, capsys) -> None:
    train_rows = [(t, k) for t, k in ROWS for _ in range(3)]
    evals = [*ROWS, ("lampu pju mati", "public_works")]  # wrong on purpose: street lights
    path = _csv(tmp_path / "eval.csv", evals)
    train_path = _csv(tmp_path / "train.csv", train_rows)
    assert evaluate.main([str(path), "--train", str(train_path)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    result = json.loads(out[-1])
    assert result["n"] == 9
    assert result["accuracy"] < 1.0
    assert any("public_works -> transportation" in line for line in out)


def test_missing_column_is_an_error(tmp_path: Path, capsys) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("text\njalan rusak\n", encoding="utf-8")
    assert evaluate.main([str(path)]) == 2
    assert "agency_kind" in capsys.readouterr().err


def test_macro_f1_leaves_the_subdistrict_class_out_like_the_reference() -> None:
    truth = ["roads", "roads", "waste", "subdistrict"]
    pred = ["roads", "subdistrict", "waste", "roads"]
    m = evaluate.metrics(truth, pred, 1.0)
    assert m["accuracy"] == 0.5 and m["accuracy_excl_subdistrict"] == round(2 / 3, 4)
    # roads: P 1 (the kelurahan row is not counted), R 1/2 -> F1 2/3; waste: 1
    assert m["macro_f1"] == round((2 / 3 + 1) / 2, 4)


def test_kind_and_urgency_columns_and_predictions_file(tmp_path: Path, capsys) -> None:
    path = tmp_path / "sentences.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "kind", "urgency"])
        w.writerow(["jalan rusak parah, tolong diperbaiki", "complaint", "normal"])
        w.writerow(["mau tanya syarat bikin KK apa aja?", "question", "low"])
        w.writerow(["rumah tetangga kebakaran, apinya besar!", "complaint", "emergency"])
        w.writerow(["simulasi kebakaran untuk warga kapan?", "question", "emergency"])  # wrong
        w.writerow(["ada orang tenggelam di kali", "complaint", "normal"])  # wrong on purpose
    out_path = tmp_path / "pred.jsonl"
    assert evaluate.main([str(path), "--predictions", str(out_path), "--region", "35"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    result = json.loads(out[-1])
    assert result["n"] == 5 and "accuracy" not in result  # no agency_kind column
    assert result["kind_accuracy"] == 1.0
    assert result["false_emergencies"] == 1 and result["missed_emergencies"] == 1
    assert result["urgency_accuracy"] == 0.6
    assert any("missed emergencies 1" in line for line in out)
    rows = [json.loads(line) for line in out_path.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 5
    assert {"kind", "urgency", "agency_kind", "category", "region", "confidence"} <= set(rows[0])
    assert rows[2]["urgency"] == "emergency" and rows[2]["urgency_reason"] == "fire"
    assert rows[0]["true_kind"] == "complaint" and rows[0]["region"] == "35"


def test_predictions_resolve_places_in_the_given_province(tmp_path: Path) -> None:
    path = _csv(tmp_path / "eval.csv", [("jalan rusak di keputih sukolilo", "public_works")])
    out_path = tmp_path / "pred.jsonl"
    assert evaluate.main([str(path), "--predictions", str(out_path), "--region", "35"]) == 0
    (row,) = [json.loads(line) for line in out_path.read_text(encoding="utf-8").splitlines()]
    assert row["region"].startswith("35.78.09.")  # Kelurahan Keputih, Kecamatan Sukolilo


def test_calibration_error_is_the_weighted_gap_per_bin() -> None:
    # bin 0.9: confidence 0.9, accuracy 0.5 (gap 0.4, half the rows); bin 0.2: 0.2 vs 0 (0.2)
    assert evaluate.calibration_error([0.9, 0.9, 0.2, 0.2], [True, False, False, False]) == 0.3
    assert evaluate.calibration_error([1.0, 1.0], [True, True]) == 0.0


def test_labels_aduan_does_not_know_are_reported_not_a_crash(tmp_path: Path, capsys) -> None:
    path = tmp_path / "odd.csv"
    path.write_text("id,text,agency_kind\n1,jalan rusak,foo\n2,sampah menumpuk,bar\n")
    assert evaluate.main([str(path)]) == 0
    out, err = capsys.readouterr()
    assert "2 agency_kind labels are not kinds aduan routes to (bar, foo)" in err
    assert json.loads(out.strip().splitlines()[-1])["accuracy"] == 0.0


def test_a_file_that_is_not_a_model_is_one_line(tmp_path: Path, capsys) -> None:
    rows = tmp_path / "rows.csv"
    rows.write_text("id,text,agency_kind\n1,jalan rusak,public_works\n")
    for content in (b"not a model", b"\x80\x04K\x01."):  # text, and a pickled int
        model = tmp_path / "model.joblib"
        model.write_bytes(content)
        assert evaluate.main([str(rows), "--model", str(model)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(model) in err[0] and "not" in err[0], err
