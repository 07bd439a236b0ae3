"""Loading operator-edited YAML files into pydantic models with errors people can act on.

Every configuration file (registry, classify taxonomy, SLA policies) fails the same way:
the message names the file, the entry and the field, e.g.
``deploy/config/sla.yaml: policies.3.targets.first_response: Input should be ...``."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


def read_yaml(path: Path, what: str, error: type[ValueError]) -> Any:
    """Parse ``path``; unreadable files and YAML syntax errors raise ``error``."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise error(f"{path}: cannot read {what}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML: {exc}") from exc


def validate_mapping(
    model: type[M], raw: object, source: str, error: type[ValueError], expected: str
) -> M:
    """Validate a parsed top-level mapping, naming ``source`` and each failing field path."""
    if not isinstance(raw, dict):
        raise error(f"{source}: expected {expected}")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
            for err in exc.errors()
        )
        raise error(f"{source}: {problems}") from exc
