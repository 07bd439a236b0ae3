"""Generated artefacts stay in sync with the code that defines them."""

from pathlib import Path

import pytest

from common import metrics, topics
from schemas import asyncapi, generate
from schemas.generate import ASYNCAPI_FILE, JSON_DIR, rendered, stale_files

ROOT = Path(__file__).resolve().parents[1]


def test_json_schemas_match_models() -> None:
    files = rendered()
    on_disk = {p.name for p in JSON_DIR.glob("*.json")}
    assert on_disk == set(files), "run: python -m schemas.generate"
    for name, text in files.items():
        assert (JSON_DIR / name).read_text() == text, f"{name} drifted: python -m schemas.generate"


def test_asyncapi_document_matches_catalog() -> None:
    assert ASYNCAPI_FILE.read_text() == asyncapi.render_yaml(), "run: python -m schemas.generate"


def test_generate_check_agrees() -> None:
    """``python -m schemas.generate --check`` (CI, pre-commit) sees what these tests see."""
    assert stale_files() == []


def test_topics_doc_matches_catalog() -> None:
    assert (ROOT / "docs/topics.md").read_text() == topics.render_markdown(), (
        "run: python -m common.topics > docs/topics.md"
    )


def test_metrics_doc_matches_catalog() -> None:
    assert (ROOT / "docs/metrics.md").read_text() == metrics.render_markdown(), (
        "run: python -m common.metrics > docs/metrics.md"
    )


def test_every_topic_is_versioned_and_unique() -> None:
    names = [t.name for t in topics.CATALOG]
    assert len(names) == len(set(names))
    assert all(n.startswith("aduan.") and n.rsplit(".", 1)[-1].startswith("v") for n in names)


def test_metric_names_follow_conventions() -> None:
    for m in map(metrics.info, metrics.ALL):
        assert m.name.startswith("aduan_")
        if m.type == "histogram":
            assert m.name.endswith(("_seconds", "_bytes")), m.name
        for label in m.labelnames:
            assert label not in {"message_id", "complaint_id", "user_id", "author"}, label


def test_generate_help_prints_usage_and_writes_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    """``--help`` used to fall through and rewrite every schema file (issue 16)."""
    before = {p: p.stat().st_mtime_ns for p in [*JSON_DIR.glob("*.json"), ASYNCAPI_FILE]}
    with pytest.raises(SystemExit) as exit_:
        generate.main(["--help"])
    assert exit_.value.code == 0
    assert "--check" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in before} == before
