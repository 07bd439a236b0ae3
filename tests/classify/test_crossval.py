"""Cross-validation CLI on a synthetic history (no evaluation data is read)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from services.classify import crossval

# a local program name no rule knows, so only the trained folds can route it
TEMPLATES = {
    "communication": "program wadul sobat rt {i} belum cair",
    "public_works": "jalan rusak berlubang di gang {i}",
    "environment": "sampah menumpuk belum diangkut blok {i}",
}


def _history(path: Path, n: int = 10) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "topic", "agency_kind"])
        for kind, template in TEMPLATES.items():
            for i in range(n):
                w.writerow([template.format(i=i), kind, kind])
    return path


def test_every_fold_and_the_mean_are_printed(tmp_path: Path, capsys) -> None:
    path = _history(tmp_path / "h.csv")
    assert crossval.main([str(path), "--folds", "3", "--char-ngrams"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    assert [x["fold"] for x in lines[:-1]] == [0, 1, 2]
    assert sum(x["n"] for x in lines[:-1]) == 3 * 10  # each row tested exactly once
    assert lines[-1]["folds"] == 3
    assert lines[-1]["accuracy"] == 1.0  # unseen rt numbers, learned program name
    for key in ("confidence_ece", "needs_review_share", "accuracy_flagged", "accuracy_unflagged"):
        assert 0.0 <= lines[-1][key] <= 1.0, key
    assert lines[-1]["accuracy_unflagged"] == 1.0


def test_the_seed_picks_other_folds_that_still_test_every_row_once(tmp_path: Path, capsys) -> None:
    labels = [kind for kind in TEMPLATES for _ in range(10)]
    by_seed = [
        [sorted(test.tolist()) for _, test in crossval.fold_indices(labels, 3, s)] for s in (0, 1)
    ]
    for folds in by_seed:
        assert sorted(i for test in folds for i in test) == list(range(len(labels)))
    assert by_seed[0] != by_seed[1]
    assert crossval.main([str(_history(tmp_path / "h.csv")), "--folds", "3", "--seed", "1"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["folds"] == 3


def test_a_history_without_labels_is_refused(tmp_path: Path, capsys) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("text\nhalo\n", encoding="utf-8")
    assert crossval.main([str(path)]) == 2
    assert "agency_kind" in capsys.readouterr().err
