"""Test fixtures. Kafka tests use a real broker, chosen in this order:
``KAFKA_BOOTSTRAP_SERVERS`` → a testcontainers Kafka when a Docker engine answers → the
embedded Tansu broker (memory only). One broker per session; tests isolate themselves with
their own topic prefix and consumer groups (``topic_prefix`` fixture).

Database tests use a real PostgreSQL: ``ADUAN_TEST_DATABASE_URL`` (a server where the URL's
user may create databases), else an embedded server from the machine's binaries
(``common/postgres.py``); each test gets a fresh database (``database_url`` fixture). Where
neither is possible the database tests skip with the reason."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from common.broker import EmbeddedBroker
from common.postgres import EmbeddedPostgres, PostgresError


def _docker_answers() -> bool:
    try:
        import docker

        client = docker.from_env(timeout=3)
        client.ping()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        yield configured
        return
    if _docker_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as kafka:
            yield kafka.get_bootstrap_server()
        return
    log = tmp_path_factory.mktemp("broker") / "tansu.log"
    # Tansu completes a group join after about half the session timeout and only notices a
    # departed member when its session expires; Kafka refuses sessions under 6 s, Tansu
    # does not, so tests on the embedded broker use short sessions to stay quick.
    os.environ.setdefault("ADUAN_SESSION_TIMEOUT_S", "1.5")
    os.environ.setdefault("ADUAN_REBALANCE_TIMEOUT_S", "3")
    with EmbeddedBroker(log_path=log) as broker:
        yield broker.bootstrap_servers


@pytest.fixture
def topic_prefix() -> str:
    """A fresh prefix so each test has its own topics and cannot see another test's data."""
    return f"t{uuid.uuid4().hex[:10]}."


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The URL of a PostgreSQL server for this session (its default database)."""
    configured = os.environ.get("ADUAN_TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    server = EmbeddedPostgres()
    try:
        server.start()
    except PostgresError as exc:
        pytest.skip(f"no PostgreSQL for the database tests: {exc}")
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
async def database_url(postgres_server: str) -> AsyncIterator[str]:
    """A fresh, empty database on the session's server, dropped after the test."""
    import asyncpg

    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(postgres_server)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base, _, _ = postgres_server.rpartition("/")
    yield f"{base}/{name}"
    admin = await asyncpg.connect(postgres_server)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
