"""A bound on faust's fetch wait.

faust 0.15 creates its consumer with ``fetch_max_wait_ms=1500`` hard-coded. Kafka answers a
fetch as soon as data arrives, so there the value only matters when idle; Tansu answers only
when the wait expires, so every record entering route waited ~0.4 s on average (up to 1.5 s),
which also delayed timer ticks. The consumer reads the value at ``start()``, so setting it on
the freshly created consumer is enough."""

from __future__ import annotations

from typing import Any

import faust
from faust.transport.drivers import aiokafka as driver

_ATTR = "_aduan_fetch_max_wait_ms"


def bound_fetch_wait(app: faust.App, ms: int) -> None:
    """Make ``app``'s worker consumer wait at most ``ms`` for a fetch."""
    setattr(app, _ATTR, ms)
    thread_cls = driver.AIOKafkaConsumerThread
    if getattr(thread_cls._create_worker_consumer, "_aduan_patched", False):
        return
    original = thread_cls._create_worker_consumer

    def create_worker_consumer(self: Any, transport: Any) -> Any:
        consumer = original(self, transport)
        wait = getattr(self.app, _ATTR, None)
        if wait is not None:
            consumer._fetch_max_wait_ms = wait
        return consumer

    create_worker_consumer._aduan_patched = True  # type: ignore[attr-defined]
    thread_cls._create_worker_consumer = create_worker_consumer  # type: ignore[method-assign]
