"""``Tally`` and ``observe_many``: a batch's metrics written once must read exactly as if
each had been written when it happened (the exposition is what Prometheus scrapes)."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from common.metrics import PIPELINE_BUCKETS, Tally, observe_many

amounts = st.floats(allow_nan=False, min_value=-10.0, max_value=10_000.0) | st.sampled_from(
    [*PIPELINE_BUCKETS, math.inf, 0.0]  # exact bounds: ``amount <= bound`` is inclusive
)


def exposed(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample a scrape would read, but the children's creation times."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for metric in registry.collect()
        for s in metric.samples
        if not s.name.endswith("_created")
    }


def histogram(registry: CollectorRegistry) -> Histogram:
    return Histogram("h", "h", ["x"], buckets=PIPELINE_BUCKETS, registry=registry)


@given(st.lists(amounts, max_size=60))
def test_observe_many_reads_as_one_observe_per_value(values: list[float]) -> None:
    one, many = CollectorRegistry(), CollectorRegistry()
    h_one, h_many = histogram(one).labels("a"), histogram(many).labels("a")
    for v in values:
        h_one.observe(v)
    observe_many(h_many, values)
    assert exposed(one) == exposed(many)


def test_nan_is_summed_and_in_no_bucket_as_observe_does() -> None:
    one, many = CollectorRegistry(), CollectorRegistry()
    h_one, h_many = histogram(one), histogram(many)
    h_one.labels("a").observe(math.nan)
    h_one.labels("a").observe(0.2)
    observe_many(h_many.labels("a"), [math.nan, 0.2])
    a, b = exposed(one), exposed(many)
    total = ("h_sum", (("x", "a"),))
    assert math.isnan(a.pop(total)) and math.isnan(b.pop(total))
    assert a == b


def test_a_tally_writes_nothing_until_flushed_then_what_each_call_would_have() -> None:
    direct, tallied = CollectorRegistry(), CollectorRegistry()
    tally = Tally()
    for registry, write in ((direct, None), (tallied, tally)):
        c = Counter("c", "c", ["agency"], registry=registry)
        g = Gauge("g", "g", ["agency"], registry=registry)
        h = histogram(registry)
        for i, agency in enumerate(["a", "b", "a", "a"]):
            if write is None:
                c.labels(agency).inc()
                g.labels(agency).set(i)
                h.labels(agency).observe(i * 0.3)
            else:
                write.inc(c.labels(agency))
                write.set(g.labels(agency), i)
                write.observe(h.labels(agency), i * 0.3)
    assert exposed(tallied) != exposed(direct)  # nothing written yet
    tally.flush()
    assert exposed(tallied) == exposed(direct)
    tally.flush()  # flushing again adds nothing
    assert exposed(tallied) == exposed(direct)
