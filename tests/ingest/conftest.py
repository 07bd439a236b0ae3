"""Fixtures shared by the ingest tests."""

from __future__ import annotations

import pytest

from tests.ingest.helpers import GENERIC_SECRET, META_B_SECRET, META_SECRET, X2_SECRET, X_SECRET


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """The account secrets the demo registry names, in the environment."""
    monkeypatch.setenv("ADUAN_META_APP_SECRET", META_SECRET)
    monkeypatch.setenv("ADUAN_META_VERIFY_TOKEN", "verify-me")
    monkeypatch.setenv("ADUAN_X_CONSUMER_SECRET", X_SECRET)
    monkeypatch.setenv("ADUAN_GENERIC_WEB_SECRET", GENERIC_SECRET)
    monkeypatch.setenv("ADUAN_GENERIC_LAPOR_SECRET", "lapor-secret")
    monkeypatch.setenv("ADUAN_META_APP_B_SECRET", META_B_SECRET)
    monkeypatch.setenv("ADUAN_X2_CONSUMER_SECRET", X2_SECRET)
