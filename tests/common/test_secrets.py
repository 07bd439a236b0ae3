"""The secrets file means what a shell would make of it (issue 16: the hand-written parser
kept quotes, ignored ``export`` and treated a missing file as "secret not set")."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from common.secrets import SecretsFileError, secret_from_env


def test_quotes_export_comments_and_escapes_mean_what_a_shell_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "aduan.env"
    path.write_text(
        "# rotated 2026-11-30\n"
        'export ADUAN_META_APP_SECRET="s3cr#t with spaces"\n'
        "ADUAN_X_CONSUMER_SECRET='single'  # trailing comment\n"
        'ADUAN_GENERIC_WEB_SECRET="line\\nbreak"\n'
        "ADUAN_EMPTY=\n"
    )
    for name in ("ADUAN_META_APP_SECRET", "ADUAN_X_CONSUMER_SECRET", "ADUAN_GENERIC_WEB_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("ADUAN_EMPTY", raising=False)
    assert secret_from_env("ADUAN_META_APP_SECRET", path) == "s3cr#t with spaces"
    assert secret_from_env("ADUAN_X_CONSUMER_SECRET", path) == "single"
    assert secret_from_env("ADUAN_GENERIC_WEB_SECRET", path) == "line\nbreak"
    assert secret_from_env("ADUAN_EMPTY", path) is None
    assert secret_from_env("ADUAN_NOT_THERE", path) is None


def test_the_environment_wins_and_an_edit_is_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "aduan.env"
    path.write_text("ADUAN_META_APP_SECRET=from-file\n")
    monkeypatch.setenv("ADUAN_META_APP_SECRET", "from-env")
    assert secret_from_env("ADUAN_META_APP_SECRET", path) == "from-env"
    monkeypatch.delenv("ADUAN_META_APP_SECRET")
    assert secret_from_env("ADUAN_META_APP_SECRET", path) == "from-file"
    path.write_text("ADUAN_META_APP_SECRET=rotated\n")
    stat = path.stat()  # same-second edits: move the mtime so the cache key changes
    os.utime(path, (stat.st_atime, stat.st_mtime + 5))
    assert secret_from_env("ADUAN_META_APP_SECRET", path) == "rotated"


def test_a_missing_file_is_an_error_naming_the_variable(tmp_path: Path) -> None:
    with pytest.raises(SecretsFileError, match=r"ADUAN_SECRETS_FILE=.*missing\.env"):
        secret_from_env("ADUAN_META_APP_SECRET", tmp_path / "missing.env")
