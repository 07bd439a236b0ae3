"""``python -m services.classify.crossval PATH.csv [--folds 5] [model options]``: CV figures.

Stratified k-fold cross-validation (shuffled, seed 0 unless ``--seed``) of the trained mode on
one labelled history, with the same metrics as ``evaluate``: the figures in
``docs/classify.md`` come from here, so a change to the model can be judged on every fold
rather than on one split; other seeds (``--seed 1``, ``--seed 2``) repeat it on different
splits, which shows how much of a difference between two models is the split's luck. Prints one
JSON line per fold and, last, the mean over folds. Accuracy and the expected calibration error
of the confidence (``confidence_ece``: 10 equal-width bins, the gap between mean confidence and
accuracy in each, weighted by its share of rows); ``evaluate`` measures throughput.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import orjson
from sklearn.model_selection import StratifiedKFold

from services.classify.config import ConfigError, load_config
from services.classify.evaluate import calibration_error, metrics
from services.classify.model import (
    CALIBRATION_FOLDS,
    CATCH_ALL_SIGNAL,
    HistoryError,
    TrainingOptions,
    add_training_options,
    read_history,
    train_model,
    training_options,
)
from services.classify.nb_weights import NB_WEIGHT
from services.classify.rules import RuleSet

SEED = 0
DEFAULT_OPTIONS = TrainingOptions(
    char_ngrams=True,
    catch_all_margin="default",
    calibration_folds=CALIBRATION_FOLDS,
    catch_all_signal=CATCH_ALL_SIGNAL,
    nb_weight=NB_WEIGHT,
)


def fold_indices(
    labels: Sequence[str], folds: int, seed: int = SEED
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, test) row indices per fold: stratified, shuffled by ``seed``."""
    split = StratifiedKFold(folds, shuffle=True, random_state=seed)
    return list(split.split(np.zeros(len(labels)), np.asarray(labels)))


def crossval(
    path: Path,
    folds: int,
    config_path: Path | None = None,
    options: TrainingOptions | None = None,
    seed: int = SEED,
) -> list[dict[str, float | int]]:
    """Metrics per fold (``msgs_per_s`` is 0: not timed here)."""
    config = load_config(config_path)
    ruleset = RuleSet(config)
    history = read_history(path, config)
    labels = np.asarray(history.labels)
    out = []
    for train, test in fold_indices(history.labels, folds, seed):
        model = train_model(
            [history.texts[i] for i in train],
            [history.labels[i] for i in train],
            ruleset,
            history.label_field,
            aux=[history.aux[i] for i in train] if history.aux is not None else None,
            **(options or DEFAULT_OPTIONS),
        )
        decided = model.decide([ruleset.apply(history.texts[i]) for i in test], ruleset)
        truth, pred = list(labels[test]), [label for label, _ in decided]
        fold = metrics(truth, pred, 0.0)
        right = [t == p for t, p in zip(truth, pred, strict=True)]
        confidence = [c for _, c in decided]
        fold["confidence_ece"] = calibration_error(confidence, right)
        flagged = [c < config.needs_review_below for c in confidence]
        fold["needs_review_share"] = round(sum(flagged) / len(flagged), 4)
        # how often the flagged and the other decisions are right
        fold["accuracy_flagged"] = round(
            sum(r for r, f in zip(right, flagged, strict=True) if f) / max(1, sum(flagged)), 4
        )
        fold["accuracy_unflagged"] = round(
            sum(r for r, f in zip(right, flagged, strict=True) if not f)
            / max(1, len(flagged) - sum(flagged)),
            4,
        )
        out.append(fold)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m services.classify.crossval", description=__doc__)
    ap.add_argument("path", type=Path, help="CSV/JSONL with text + agency_kind (+ topic)")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=SEED, help="shuffle seed of the folds (default 0)")
    add_training_options(ap)
    ap.add_argument("--config", type=Path, help="classification config (default: shipped)")
    args = ap.parse_args(argv)
    try:
        per_fold = crossval(
            args.path, args.folds, args.config, training_options(args), seed=args.seed
        )
    except (ConfigError, HistoryError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for i, m in enumerate(per_fold):
        print(orjson.dumps({"fold": i, **m}).decode())
    keys = (
        "accuracy",
        "accuracy_excl_subdistrict",
        "macro_f1",
        "confidence_ece",
        "needs_review_share",
        "accuracy_flagged",
        "accuracy_unflagged",
    )
    mean = {k: round(float(np.mean([m[k] for m in per_fold])), 4) for k in keys}
    print(orjson.dumps({"folds": len(per_fold), **mean}).decode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
