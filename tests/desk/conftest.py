"""Desk fixtures: a migrated database on the real PostgreSQL of ``tests/conftest.py``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from services.desk import store


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await store.create_pool(database_url, min_size=1, max_size=4)
    await store.migrate_database(p)
    try:
        yield p
    finally:
        await p.close()
