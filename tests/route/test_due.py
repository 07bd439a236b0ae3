"""The operator's "when is this due?" command: its outputs and errors through ``main`` in this
process (a subprocess each cost 1.5-6 s of the suite), and the entry point itself once, as a
real subprocess from another working directory."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import orjson

from services.route import due

from .factories import ROOT


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str


def run(*args: str) -> Run:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = due.main(list(args))
        except SystemExit as exc:  # argparse's own refusals
            code = int(exc.code or 0)
    return Run(code, out.getvalue(), err.getvalue())


def test_prints_every_clock_and_the_policy() -> None:
    # Friday 15:00 WITA, 4 business hours: 1.5 h Friday, then Monday 07:30 + 2.5 h = 10:00.
    out = run("--received", "2026-11-27T15:00:00+08:00", "--agency", "mks-public-works")
    assert out.returncode == 0, out.stderr
    report = orjson.loads(out.stdout)
    assert report["policy"] == "default"
    assert report["timezone"] == "Asia/Makassar"
    assert set(report["due"]) == {"first_response", "next_response", "resolution"}
    assert report["clocks"]["first_response"]["due_local"] == "2026-11-30T10:00:00+08:00"
    assert report["due"]["first_response"] == "2026-11-30T02:00:00+00:00"


def test_emergency_and_errors() -> None:
    out = run(
        "--received", "2026-12-25T01:00:00Z", "--agency", "sby-public-works",
        "--urgency", "emergency", "--category", "roads",
    )  # fmt: skip
    assert orjson.loads(out.stdout)["due"]["first_response"] == "2026-12-25T01:15:00+00:00"
    bad = run("--received", "2026-12-25T01:00:00Z", "--agency", "nowhere")
    assert bad.returncode == 2 and "unknown agency 'nowhere'" in bad.stderr
    naive = run("--received", "2026-12-25T01:00:00", "--agency", "sby-public-works")
    assert naive.returncode == 2 and "UTC offset" in naive.stderr


def test_an_unknown_category_is_refused_with_the_closest_names() -> None:
    out = run(
        "--received", "2026-12-25T01:00:00Z", "--agency", "sby-health", "--category", "hospitl"
    )
    assert out.returncode == 2 and out.stdout == ""
    (line,) = out.stderr.strip().splitlines()
    assert "unknown category 'hospitl'" in line and "did you mean 'hospital'" in line
    known = run(
        "--received", "2026-12-25T01:00:00Z", "--agency", "sby-health", "--category", "hospital"
    )
    assert orjson.loads(known.stdout)["policy"] == "health"  # the policy the typo missed


def test_no_category_means_the_taxonomy_fallback_and_files_do_not_depend_on_cwd(
    tmp_path: Path,
) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "services.route.due", "--received", "2026-12-25T01:00:00Z",
         "--agency", "sby-public-works"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert orjson.loads(out.stdout)["category"] == "general"
