"""Secrets by variable name: the environment first, then the ``ADUAN_SECRETS_FILE``.

The file is a dotenv file read with python-dotenv (quotes, ``export``, comments and escapes
mean what they mean in a shell), not a hand-written ``KEY=VALUE`` splitter: the hand-written
one kept quotes as part of the secret. A configured file that does not exist is an error at
start-up (``Settings``), never a silent "secret not set"."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from dotenv import dotenv_values


class SecretsFileError(ValueError):
    """The secrets file named by ``ADUAN_SECRETS_FILE`` cannot be read."""


def secret_from_env(name: str, secrets_file: Path | None = None) -> str | None:
    """The value of secret ``name``, or None when neither source sets it (empty = unset)."""
    value = os.environ.get(name)
    if value:
        return value
    if secrets_file is None:
        return None
    return _read(secrets_file, _mtime(secrets_file)).get(name) or None


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError as exc:
        raise SecretsFileError(f"ADUAN_SECRETS_FILE={path}: {exc.strerror}") from exc


@lru_cache(maxsize=8)
def _read(path: Path, _mtime: float) -> dict[str, str | None]:
    """Parsed once per file version (the modification time is part of the cache key)."""
    try:
        return dict(dotenv_values(path))
    except (OSError, UnicodeDecodeError) as exc:
        raise SecretsFileError(f"ADUAN_SECRETS_FILE={path}: {exc}") from exc
