"""Test fixtures. Kafka tests use a real broker, chosen in this order:
``KAFKA_BOOTSTRAP_SERVERS`` → a testcontainers Kafka when a Docker engine answers → the
embedded Tansu broker (memory only). One broker per session; tests isolate themselves with
their own topic prefix and consumer groups (``topic_prefix`` fixture)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from common.broker import EmbeddedBroker


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
