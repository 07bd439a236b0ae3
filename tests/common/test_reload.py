"""Operator files reloaded while running: a valid edit applies, a bad one keeps the previous
version and is counted, an unchanged file is not re-read."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from common import metrics
from common.reload import Reloadable


def _load(path: Path) -> dict[str, int]:
    text = path.read_text(encoding="utf-8")
    key, _, value = text.partition("=")
    if not value.strip().isdigit():
        raise ValueError(f"{path}: expected key=number, got {text.strip()!r}")
    return {key.strip(): int(value)}


def _refused(label: str) -> float:
    value = metrics.CONFIG_RELOADS.labels(label, "refused")._value.get()  # noqa: SLF001
    return float(value)


def _write(path: Path, text: str, bump: int) -> None:
    path.write_text(text, encoding="utf-8")
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + bump * 10**9))  # a later edit


def test_a_valid_edit_is_applied_and_listeners_see_it(tmp_path: Path) -> None:
    path = tmp_path / "conf"
    path.write_text("a=1", encoding="utf-8")
    conf = Reloadable("test-valid", path, _load)
    seen: list[dict[str, int]] = []
    conf.on_change(seen.append)
    assert conf.poll() is False  # unchanged: nothing re-read
    _write(path, "a=2", 1)
    assert conf.poll() is True
    assert conf.current == {"a": 2} and seen == [{"a": 2}]


def test_a_bad_edit_keeps_the_previous_version_and_is_counted_once(tmp_path: Path) -> None:
    path = tmp_path / "conf"
    path.write_text("a=1", encoding="utf-8")
    conf = Reloadable("test-bad", path, _load)
    before = _refused("test-bad")
    _write(path, "a=oops", 1)
    assert conf.poll() is False and conf.poll() is False
    assert conf.current == {"a": 1}
    assert _refused("test-bad") == before + 1  # once per edit, not per poll
    _write(path, "a=3", 2)  # the fix applies
    assert conf.poll() is True and conf.current == {"a": 3}


def test_a_listener_refusing_keeps_the_previous_version(tmp_path: Path) -> None:
    path = tmp_path / "conf"
    path.write_text("a=1", encoding="utf-8")
    conf = Reloadable("test-listener", path, _load)

    def refuse(new: dict[str, int]) -> None:
        if new["a"] > 5:
            raise ValueError("a must stay at most 5")

    conf.on_change(refuse)
    _write(path, "a=9", 1)
    assert conf.poll() is False and conf.current == {"a": 1}


def test_a_file_removed_or_swapped_by_rename_is_handled(tmp_path: Path) -> None:
    path = tmp_path / "conf"
    path.write_text("a=1", encoding="utf-8")
    conf = Reloadable("test-rename", path, _load)
    path.unlink()
    assert conf.poll() is False and conf.current == {"a": 1}  # gone: keep what we have
    staged = tmp_path / "conf.new"
    staged.write_text("a=4", encoding="utf-8")
    staged.rename(path)  # how editors and ConfigMaps replace a file
    assert conf.poll() is True and conf.current == {"a": 4}


def test_the_first_load_must_succeed(tmp_path: Path) -> None:
    path = tmp_path / "conf"
    path.write_text("a=x", encoding="utf-8")
    with pytest.raises(ValueError, match="expected key=number"):
        Reloadable("test-first", path, _load)
