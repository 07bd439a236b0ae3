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
