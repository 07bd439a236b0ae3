"""The operator's "when is this due?" command, run as a real subprocess."""

from __future__ import annotations

import subprocess
import sys

import orjson

from .factories import ROOT


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.route.due", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


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
