"""Operator files (the registry, the SLA policies) re-read without a restart.

Onboarding one of hundreds of agency accounts used to mean restarting every service, and
ingest answered 503 while its dedup store rebuilt. A ``Reloadable`` holds the current
version of a file and re-reads it when it changes (modification time, size or inode: an
editor's atomic rename, a Kubernetes ConfigMap's symlink swap). A new version is validated
completely before it replaces the old one; a bad edit keeps the previous version, is logged
once per edit and counted (``aduan_config_reloads_total{outcome="refused"}``, alert
``AduanConfigReloadRefused``), so a typo never takes a service down. Callers read
``current`` per request or batch (one attribute read) and may register ``on_change`` to
rebuild what they derive from it; everything runs on the event loop, between requests."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

from common import metrics

T = TypeVar("T")
log = logging.getLogger("aduan.reload")

Stamp = tuple[int, int, int]


def _stamp(path: Path) -> Stamp | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


class Reloadable(Generic[T]):
    """The current version of one operator file, loaded by ``load`` (which validates and
    raises ``ValueError``/``OSError`` with a one-line reason on a bad file)."""

    def __init__(self, label: str, path: Path, load: Callable[[Path], T]) -> None:
        self.label = label
        self.path = path
        self.load = load
        self._stamp = _stamp(path)
        self.current: T = load(path)
        self._refused: Stamp | None = None
        self._listeners: list[Callable[[T], None]] = []
        metrics.CONFIG_RELOADS.labels(label, "applied")
        metrics.CONFIG_RELOADS.labels(label, "refused")

    def on_change(self, listener: Callable[[T], None]) -> None:
        """Call ``listener(new)`` after each applied reload (rebuild derived state)."""
        self._listeners.append(listener)

    def poll(self) -> bool:
        """Re-read the file if it changed since the version in use; True when a new version
        was applied. Cheap when nothing changed (one ``stat``)."""
        stamp = _stamp(self.path)
        if stamp is None or stamp == self._stamp or stamp == self._refused:
            return False
        try:
            new = self.load(self.path)
            for listener in self._listeners:
                listener(new)  # derive first: a listener's refusal keeps the old version
        except (ValueError, OSError) as exc:
            self._refused = stamp
            metrics.CONFIG_RELOADS.labels(self.label, "refused").inc()
            log.error("%s: edit refused, still using the previous version: %s", self.label, exc)
            return False
        self.current, self._stamp, self._refused = new, stamp, None
        metrics.CONFIG_RELOADS.labels(self.label, "applied").inc()
        log.info("%s: reloaded %s", self.label, self.path)
        return True

    async def watch(self, stop: asyncio.Event, every_s: float = 2.0) -> None:
        """Poll until ``stop`` is set (run as a task next to the service)."""
        while not stop.is_set():
            self.poll()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every_s)
