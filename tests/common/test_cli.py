"""The services' command line: help without a broker, settings checked first, one-line
errors with exit codes, an unreachable broker reported without a flood or a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from common.broker import free_port

REPO = Path(__file__).resolve().parents[2]
SERVICES = ("ingest", "classify", "route")


def run(
    service: str, *args: str, timeout: float = 60, **env: str
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("ADUAN_", "KAFKA_"))}
    return subprocess.run(
        [sys.executable, "-m", f"services.{service}", *args],
        cwd=REPO,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.parametrize("service", SERVICES)
def test_help_lists_the_variables_and_touches_nothing(service: str) -> None:
    # An address nothing listens on: --help must not even try it.
    done = run(service, "--help", KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}")
    assert done.returncode == 0, done.stderr
    assert f"python -m services.{service}" in done.stdout
    assert "KAFKA_BOOTSTRAP_SERVERS" in done.stdout
    assert f"ADUAN_{service.upper()}_" in done.stdout
    assert done.stderr == ""


def test_version() -> None:
    done = run("route", "--version")
    assert done.returncode == 0 and done.stdout.startswith("aduan ")


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"ADUAN_HTTP_PORT": "abc"}, "ADUAN_HTTP_PORT='abc'"),
        ({"ADUAN_INGEST_MAX_BODY_BYTES": "-1"}, "ADUAN_INGEST_MAX_BODY_BYTES"),
        ({"ADUAN_SECRETS_FILE": "/nonexistent/aduan.env"}, "ADUAN_SECRETS_FILE"),
        ({"ADUAN_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "ADUAN_KAFKA_SASL_MECHANISM"),
    ],
)
def test_bad_settings_are_one_line_naming_the_variable(env: dict[str, str], variable: str) -> None:
    done = run("ingest", **env, KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ingest: ") and variable in lines[0], lines


def test_a_bad_config_file_is_one_line(tmp_path: Path) -> None:
    registry = tmp_path / "registry.yaml"
    registry.write_text("agencies: [{id: Bad Id}]\naccounts: []\n", encoding="utf-8")
    done = run("classify", ADUAN_REGISTRY_FILE=str(registry))
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith(f"classify: {registry}")


def test_an_unreachable_broker_is_reported_then_given_up() -> None:
    done = run(
        "classify",
        KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}",
        ADUAN_BROKER_WAIT_S="2",
    )
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) <= 4, lines  # not one error per connection attempt
    assert "unreachable" in lines[0]
    assert lines[-1].startswith("classify: Kafka at 127.0.0.1:") and "giving up" in lines[-1]


def test_a_model_setting_naming_no_file_is_one_line(tmp_path: Path) -> None:
    done = run("classify", ADUAN_CLASSIFY_MODEL=str(tmp_path / "missing.joblib"))
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("classify: ADUAN_CLASSIFY_MODEL=") and "no such file" in line


def test_a_model_file_of_another_kind_is_one_line(tmp_path: Path) -> None:
    model = tmp_path / "model.joblib"
    model.write_text("not a model", encoding="utf-8")
    done = run(
        "classify",
        ADUAN_CLASSIFY_MODEL=str(model),
        KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}",
    )
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert "not a model written by python -m services.classify.train" in line
