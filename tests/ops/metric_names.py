"""Helpers shared by the ops tests: which series names the metric catalog really exposes.

Dashboards and rules are text, so a renamed metric would silently leave an empty panel or an
alert that can never fire; these helpers let the tests compare the text with the catalog."""

from __future__ import annotations

import re
from pathlib import Path

from common import metrics

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
RULES_DIR = DEPLOY / "prometheus" / "rules"

_SERIES_RE = re.compile(r"\baduan_[a-z0-9_]+")
_RECORDED_RE = re.compile(r"\baduan:[a-z0-9_]+:[a-z0-9_]+")


def exposed_series() -> set[str]:
    """Every sample name a scrape of the catalog's metrics can contain."""
    names: set[str] = set()
    for m in map(metrics.info, metrics.ALL):
        base = m.name
        if m.type == "counter":
            names.add(base + "_total")
        elif m.type == "histogram":
            names.update({base + "_bucket", base + "_sum", base + "_count"})
        else:
            names.add(base)
    return names


def series_in(text: str) -> set[str]:
    return set(_SERIES_RE.findall(text))


def recorded_in(text: str) -> set[str]:
    return set(_RECORDED_RE.findall(text))
