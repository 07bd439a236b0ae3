"""The runbook stays complete: every setting a processor reads is in its configuration
reference, and every alert has its section (checked in test_prometheus_rules)."""

from __future__ import annotations

from pydantic_settings import BaseSettings

from common.settings import Settings
from tests.ops.metric_names import REPO

RUNBOOK = (REPO / "docs" / "operations.md").read_text(encoding="utf-8")


def _env_names(model: type[BaseSettings]) -> set[str]:
    prefix = model.model_config.get("env_prefix", "")
    return {f"{prefix}{name}".upper() for name in model.model_fields}


def test_every_shared_setting_is_documented() -> None:
    names = _env_names(Settings) - {"ADUAN_BOOTSTRAP_SERVERS"}
    missing = {n for n in names if f"`{n}`" not in RUNBOOK}
    assert not missing, f"docs/operations.md lacks {sorted(missing)}"
    assert "`KAFKA_BOOTSTRAP_SERVERS`" in RUNBOOK


def test_every_service_setting_is_documented() -> None:
    from services.classify.settings import ClassifySettings
    from services.desk.settings import DeskSettings
    from services.ingest.mentions import MentionSettings
    from services.ingest.settings import IngestSettings
    from services.notify.settings import NotifySettings
    from services.route.settings import RouteSettings

    for model in (
        IngestSettings, MentionSettings, ClassifySettings, RouteSettings, DeskSettings,
        NotifySettings,
    ):  # fmt: skip
        missing = {n for n in _env_names(model) if f"`{n}`" not in RUNBOOK}
        assert not missing, f"docs/operations.md lacks {sorted(missing)}"


def test_runbook_covers_the_required_procedures() -> None:
    for heading in (
        "## Configuration reference",
        "## Scaling",
        "## Rotating secrets",
        "## Adding an agency or an account",
        "## Replaying dead letters",
        "## Alerts",
    ):
        assert heading in RUNBOOK
    assert "python -m services.replay --dry-run" in RUNBOOK
