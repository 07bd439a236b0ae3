"""The one Kafka connection: settings → validated ``KafkaConnection`` → every client's kwargs.

A secured cluster must be one environment change: these tests build the settings from the
environment as a deployment would, check what every client receives, and connect for real
over TLS (a TLS proxy in front of the embedded broker; Tansu's own TLS and SASL did not work
with aiokafka here, so SASL is checked on the kwargs aiokafka and faust receive)."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import faust
import pytest
import trustme
from pydantic import SecretStr, ValidationError

from common import partitioning
from common.connection import (
    PRODUCER_MAX_BATCH_BYTES,
    ConnectionSettingsError,
    KafkaConnection,
    make_consumer,
    make_producer,
)
from common.settings import Settings
from tests.netproxy import ProxiedBroker


@pytest.fixture
def pki(tmp_path: Path) -> Iterator[dict[str, Path]]:
    """A throw-away CA, a server certificate for 127.0.0.1 and a client certificate."""
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("aduan-ingest")
    paths = {
        "ca": tmp_path / "ca.pem",
        "server": tmp_path / "server.pem",
        "client_cert": tmp_path / "client.pem",
        "client_key": tmp_path / "client.key",
    }
    ca.cert_pem.write_to_path(str(paths["ca"]))
    server.private_key_and_cert_chain_pem.write_to_path(str(paths["server"]))
    client.cert_chain_pems[0].write_to_path(str(paths["client_cert"]))
    client.private_key_pem.write_to_path(str(paths["client_key"]))
    yield paths


def test_plaintext_is_the_default_and_only_names_the_servers() -> None:
    kwargs = Settings(bootstrap_servers="k1:9092,k2:9092").kafka.client_kwargs()
    assert kwargs == {"bootstrap_servers": "k1:9092,k2:9092", "security_protocol": "PLAINTEXT"}


async def test_sasl_ssl_from_the_environment_reaches_every_client(
    monkeypatch: pytest.MonkeyPatch, pki: dict[str, Path]
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "broker.example:9096")
    monkeypatch.setenv("ADUAN_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("ADUAN_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("ADUAN_KAFKA_SASL_USERNAME", "aduan")
    monkeypatch.setenv("ADUAN_KAFKA_SASL_PASSWORD", "s3cret")
    monkeypatch.setenv("ADUAN_KAFKA_SSL_CAFILE", str(pki["ca"]))
    connection = Settings().kafka
    kwargs = connection.client_kwargs()
    assert kwargs["security_protocol"] == "SASL_SSL"
    assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (kwargs["sasl_plain_username"], kwargs["sasl_plain_password"]) == ("aduan", "s3cret")
    assert isinstance(kwargs["ssl_context"], ssl.SSLContext)
    assert kwargs["ssl_context"].verify_mode == ssl.CERT_REQUIRED
    assert "s3cret" not in repr(connection)

    producer = make_producer(connection)
    consumer = make_consumer(connection, "aduan.messages.v1", group_id="g")
    for client in (producer.client, consumer._client):  # noqa: SLF001  # what aiokafka got
        assert client._security_protocol == "SASL_SSL"  # noqa: SLF001
        assert client._sasl_mechanism == "SCRAM-SHA-512"  # noqa: SLF001
        assert client._sasl_plain_password == "s3cret"  # noqa: SLF001

    options = connection.faust_options()
    assert options["broker"] == ["kafka://broker.example:9096"]
    credentials = options["broker_credentials"]
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.protocol.value == "SASL_SSL"
    assert credentials.mechanism.value == "SCRAM-SHA-512"
    app = faust.App("aduan-test-sasl", **options)
    assert app.conf.broker_credentials is credentials
    # every producer, faust's included, places keys with the one (cheaper) murmur2
    assert producer._partitioner is partitioning.partition  # noqa: SLF001
    assert app.conf.producer_partitioner is partitioning.partition
    # and builds batches of the same size (faust's default, 16 KiB, cost route 12-15 %)
    assert app.conf.producer_max_batch_size == producer._message_accumulator._batch_size  # noqa: SLF001
    assert app.conf.producer_max_batch_size == PRODUCER_MAX_BATCH_BYTES


def test_sasl_password_can_come_from_the_secrets_file(tmp_path: Path) -> None:
    secrets = tmp_path / "aduan.env"
    secrets.write_text('export ADUAN_KAFKA_SASL_PASSWORD="from-file"\n', encoding="utf-8")
    settings = Settings(
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism="PLAIN",
        kafka_sasl_username="aduan",
        secrets_file=secrets,
    )
    assert settings.kafka.client_kwargs()["sasl_plain_password"] == "from-file"


@pytest.mark.parametrize(
    ("overrides", "names"),
    [
        ({"kafka_security_protocol": "SASL_SSL"}, "ADUAN_KAFKA_SASL_MECHANISM"),
        (
            {"kafka_security_protocol": "SASL_SSL", "kafka_sasl_mechanism": "PLAIN"},
            "ADUAN_KAFKA_SASL_USERNAME",
        ),
        ({"kafka_sasl_mechanism": "PLAIN"}, "ADUAN_KAFKA_SECURITY_PROTOCOL"),
        ({"kafka_ssl_cafile": "/nonexistent/ca.pem"}, "ADUAN_KAFKA_SSL_"),
        (
            {"kafka_security_protocol": "SSL", "kafka_ssl_cafile": "/nonexistent/ca.pem"},
            "ADUAN_KAFKA_SSL_CAFILE",
        ),
        (
            {"kafka_security_protocol": "SSL", "kafka_ssl_certfile": "/etc/hostname"},
            "ADUAN_KAFKA_SSL_KEYFILE",
        ),
        ({"bootstrap_servers": "no-port"}, "KAFKA_BOOTSTRAP_SERVERS"),
        ({"kafka_security_protocol": "TLS"}, "kafka_security_protocol"),
    ],
)
def test_unusable_settings_are_refused_at_start_naming_the_variable(
    overrides: dict[str, object], names: str
) -> None:
    with pytest.raises(ValidationError) as info:
        Settings(**overrides)  # type: ignore[arg-type]
    assert names in str(info.value)


def test_a_client_certificate_needs_its_key() -> None:
    with pytest.raises(ConnectionSettingsError, match="go together"):
        KafkaConnection("k:9092", "SSL", ssl_certfile=Path("/etc/hostname"))


def _tls_server(pki: dict[str, Path], require_client_cert: bool) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(pki["server"]))
    if require_client_cert:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(str(pki["ca"]))
    return context


@pytest.mark.kafka
@pytest.mark.parametrize("mutual", [False, True], ids=["server-tls", "mutual-tls"])
async def test_a_real_tls_connection_produces_and_consumes(
    pki: dict[str, Path], mutual: bool
) -> None:
    broker = await ProxiedBroker(tls=_tls_server(pki, require_client_cert=mutual)).start()
    try:
        client_files = (
            {"ssl_certfile": pki["client_cert"], "ssl_keyfile": pki["client_key"]} if mutual else {}
        )
        connection = KafkaConnection(
            broker.bootstrap_servers, "SSL", ssl_cafile=pki["ca"], **client_files
        )
        producer = make_producer(connection)
        await producer.start()
        try:
            meta = await producer.send_and_wait("tls-check", b"over tls", key=b"k")
        finally:
            await producer.stop()
        consumer = make_consumer(connection, "tls-check", group_id=None)
        await consumer.start()
        try:
            record = await consumer.getone()
        finally:
            await consumer.stop()
        assert (record.value, record.offset) == (b"over tls", meta.offset)
    finally:
        await broker.stop()


@pytest.mark.kafka
async def test_mutual_tls_without_a_client_certificate_is_refused(pki: dict[str, Path]) -> None:
    broker = await ProxiedBroker(tls=_tls_server(pki, require_client_cert=True)).start()
    try:
        producer = make_producer(
            KafkaConnection(broker.bootstrap_servers, "SSL", ssl_cafile=pki["ca"]),
            request_timeout_ms=2000,
            metadata_max_age_ms=1000,
        )
        with pytest.raises(Exception):  # noqa: B017  # aiokafka's error type varies
            await producer.start()
        await producer.stop()
    finally:
        await broker.stop()


def test_the_password_never_shows_in_a_repr() -> None:
    connection = KafkaConnection("k:9092", "SASL_PLAINTEXT", "PLAIN", "aduan", SecretStr("hunter2"))
    assert "hunter2" not in repr(connection) and "hunter2" not in str(connection)
