"""The registry's typed channels and contacts: refused at load with a precise error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from common.registry import RegistryError, load_registry, parse_channel
from tests.notify.conftest import registry_yaml, write_registry

REPO = Path(__file__).resolve().parents[2]


def _load(tmp_path: Path, data: dict[str, Any]) -> str:
    with pytest.raises(RegistryError) as err:
        write_registry(tmp_path / "r.yaml", data)
    return str(err.value)


@pytest.mark.parametrize(
    ("channel", "words"),
    [
        ("sms:+62811", "unknown channel type 'sms'"),
        ("email", "must be '<type>:<target>'"),
        ("email:not-an-address", "email channel target must be an e-mail address"),
        ("telegram:chat", "numeric chat id"),
        ("whatsapp:0812-abc", "E.164"),
        ("webhook:Upper Case", "the id of an entry in 'webhooks'"),
    ],
)
def test_bad_channel_is_refused_naming_the_entry(tmp_path: Path, channel: str, words: str) -> None:
    data = registry_yaml()
    data["agencies"][1]["channels"] = [channel]
    msg = _load(tmp_path, data)
    assert "agencies.1.channels.0" in msg and words in msg


def test_unknown_contact_role_is_refused(tmp_path: Path) -> None:
    data = registry_yaml()
    data["agencies"][0]["contacts"]["deputy"] = {"name": "x", "channels": ["email:a@b.go.id"]}
    msg = _load(tmp_path, data)
    assert "agencies.0.contacts.deputy" in msg and "'head' or 'escalation'" in msg


def test_contact_channels_are_checked_too(tmp_path: Path) -> None:
    data = registry_yaml()
    data["agencies"][0]["contacts"]["head"]["channels"] = ["fax:123"]
    assert "agencies.0.contacts.head.channels.0" in _load(tmp_path, data)


def test_webhook_channel_must_name_a_defined_endpoint(tmp_path: Path) -> None:
    data = registry_yaml()
    data["agencies"][1]["channels"] = ["webhook:missing"]
    assert "agencies[1].channels: webhook 'missing' is not in 'webhooks'" in _load(tmp_path, data)


def test_webhook_secret_is_a_variable_name_not_a_secret(tmp_path: Path) -> None:
    data = registry_yaml()
    data["webhooks"][0]["secret_env"] = "hunter2-the-secret"
    assert "webhooks.0.secret_env" in _load(tmp_path, data)


def test_acknowledgement_needs_a_token_variable(tmp_path: Path) -> None:
    data = registry_yaml(accounts=None)
    data["accounts"] = [{"platform": "instagram", "platform_id": "1784", "agency_id": "pu",
                         "app_secret_env": "S", "acknowledge": True}]  # fmt: skip
    assert "reply_token_env" in _load(tmp_path, data)
    data["accounts"][0] |= {"platform": "generic"}
    assert "generic account has no send API" in _load(tmp_path, data)


def test_the_deployment_registry_loads_and_keeps_channels_as_strings() -> None:
    registry = load_registry(REPO / "deploy/config/registry.yaml")
    pu = registry.agency("sby-public-works")
    assert pu is not None and pu.channels == ["email:sby-public-works@example.go.id"]
    assert pu.contacts["head"].channels
    assert registry.webhook("lapor-bridge") is not None


def test_parse_channel_normalises_whatsapp_numbers() -> None:
    assert str(parse_channel("whatsapp:+6281234567890")) == "whatsapp:6281234567890"
