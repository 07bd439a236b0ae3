"""``python -m services.classify.train HISTORY.csv|.jsonl --out PATH``: learn from history.

History rows carry ``text`` and ``agency_kind`` and/or ``category`` (past routing decisions
and re-routes: use the agency that finally handled the complaint). The model file written to
``--out`` is an artifact of the deployment: keep it out of the repository (``*.joblib`` is
git-ignored) and point ``ADUAN_CLASSIFY_MODEL`` at it.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from services.classify.config import ConfigError, load_config
from services.classify.model import (
    HistoryError,
    add_training_options,
    read_history,
    save_model,
    train_model,
    training_options,
)
from services.classify.rules import RuleSet


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m services.classify.train", description=__doc__)
    ap.add_argument("history", type=Path, help="CSV or JSONL with text + agency_kind/category")
    ap.add_argument("--out", type=Path, required=True, help="where to write the model file")
    ap.add_argument("--config", type=Path, help="classification config (default: shipped)")
    add_training_options(ap)
    args = ap.parse_args(argv)
    try:
        config = load_config(args.config)
        history = read_history(args.history, config)
        print(f"training on {len(history.texts):,} rows ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        model = train_model(
            history.texts,
            history.labels,
            RuleSet(config),
            history.label_field,
            aux=history.aux,
            **training_options(args),
        )
        print(f"trained in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        save_model(model, args.out)
    except (ConfigError, HistoryError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    counts = Counter(history.labels)
    aux = "with" if model.aux_clf is not None else "without"
    print(
        f"trained on {len(history.texts)} rows, {len(counts)} {history.label_field} labels "
        f"({aux} a finer auxiliary label) -> {args.out}"
    )
    if model.calibration is not None:
        print(f"confidence calibrated on {model.calibration.folds} out-of-fold parts")
    else:
        print("confidence not calibrated (too little history or --calibration-folds 0)")
    for label, n in counts.most_common():
        print(f"  {n:>6}  {label}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
