"""Route's metrics that are not about one record: the series created at start (so the first
overdue of an agency is not lost to ``increase()``), and per-partition consumer lag.

Lag comes from faust's public consumer API (``assignment``, ``highwater``, ``position``) and
the offsets route has processed, as for the aiokafka processors: high watermark minus the
next offset to process. Faust reads ahead into its stream buffers, so for a partition with
nothing processed yet since the last rebalance the consumer's fetch position stands in."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping

from aiokafka.errors import IllegalStateError, KafkaError
from faust.exceptions import ConsumerNotStarted
from faust.types import ConsumerT

from common import metrics
from common.registry import Registry
from schemas.sla import Clock
from services.route.policy import SlaConfig
from services.route.worker import NAME, Incoming

log = logging.getLogger("aduan.route")


def running_clocks(config: SlaConfig) -> list[str]:
    """The clocks some policy of ``config`` runs (next-response only when enabled)."""
    found = {clock for policy in config.policies for clock in policy.targets}
    if not config.defaults.next_response:
        found.discard(Clock.next_response)
    return [c.value for c in Clock if c in found]


def route_series(config: SlaConfig, registry: Registry) -> Iterator[metrics.Series]:
    """Every series route's rules and panels read, for these agencies and clocks."""
    agencies = [(a.id, a.kind) for a in registry.agencies]
    return metrics.route_series(agencies, running_clocks(config))


class ConsumerLag:
    """Reports ``aduan_consumer_lag_messages`` for route's input partitions."""

    def __init__(self, inputs: Mapping[str, str]) -> None:
        self.inputs = dict(inputs)  # full topic name → catalog name (the metric label)
        self.next_offset: dict[tuple[str, int], int] = {}
        self.gauge = metrics.PartitionLag(NAME)

    def processed(self, records: Iterable[Incoming]) -> None:
        """Note the offsets of a batch route has written the outputs of."""
        for r in records:
            self.next_offset[(r.topic, r.partition)] = r.offset + 1

    def reset(self) -> None:
        """After a rebalance: offsets of partitions owned before say nothing any more."""
        self.next_offset.clear()

    async def report(self, consumer: ConsumerT) -> None:
        """Best effort, once a second: a partition revoked meanwhile or a consumer not
        (or no longer) running skips this report rather than stopping route's timer."""
        lags: dict[tuple[str, int], int] = {}
        try:
            assigned = [tp for tp in consumer.assignment() if tp.topic in self.inputs]
            for tp in assigned:
                highwater = consumer.highwater(tp)
                if highwater is None:  # nothing fetched from it yet
                    continue
                position = self.next_offset.get((tp.topic, tp.partition))
                if position is None:
                    position = await consumer.position(tp)
                if position is not None:
                    lags[(self.inputs[tp.topic], tp.partition)] = highwater - position
        except (ConsumerNotStarted, IllegalStateError, KafkaError) as exc:
            log.debug("consumer lag not reported this time: %r", exc)
            return
        self.gauge.report(lags)
