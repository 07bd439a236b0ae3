"""Route timers at scale: 1,000,000 open complaints, memory per complaint, timer lag p99.

``run(runs=N) -> dict`` (called by ``python -m bench``; ``python -m bench.route_timers`` alone).
No broker: this measures what the route worker holds and does per partition owner, i.e. the
table values (orjson bytes of ``ComplaintState``, as the memory store keeps them) and the
per-partition ``DueIndex``, and the tick loop that pops due complaints, runs the pure state
machine and re-encodes the state. Kafka's round trip for the tick record (one per partition
per tick, not per complaint) comes on top; the broker tests cover that path.

Method:
* memory: tracemalloc around building N states and their index entries (6 partitions);
* lag: due instants spread so that ~``rate`` stages per second come due over ``seconds`` of
  real time while the other complaints stay scheduled; a loop ticks every ``tick_s`` like the
  worker's timer; lag = wall time when the stage's event exists − its due instant.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import random
import statistics
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

from common.registry import load_registry
from schemas.classified import ClassifiedMessage
from services.route.clocks import ComplaintState, Router
from services.route.policy import load_sla_config
from services.route.timers import DueIndex

PARTITIONS = 6
ROOT = Path(__file__).resolve().parents[1]


def _template(router: Router) -> ComplaintState:
    """A real complaint state: the bench corpus's first complaint, routed by the router."""
    from bench import corpus

    cm = ClassifiedMessage.model_validate_json(corpus.classified(1)[0][1])
    start = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    cm = cm.model_copy(
        update={
            "message": cm.message.model_copy(update={"platform_time": start, "received_at": start})
        }
    )
    state, _ = router.on_message(None, cm)
    assert state is not None
    return state


def _router() -> Router:
    return Router(
        load_sla_config(ROOT / "deploy/config/sla.yaml"),
        load_registry(ROOT / "deploy/config/registry.yaml"),
    )


def _variant(tpl: ComplaintState, i: int, shift: float) -> ComplaintState:
    """A distinct complaint like ``tpl`` whose clocks start ``shift`` seconds later."""
    clocks = {
        k: dataclasses.replace(
            c,
            started_at=c.started_at + shift,
            warning_at=c.warning_at + shift,
            due_at=c.due_at + shift,
            escalations=[(lvl, at + shift, to) for lvl, at, to in c.escalations],
        )
        for k, c in tpl.clocks.items()
    }
    cid = f"instagram:1790000{i:010d}"
    return dataclasses.replace(
        tpl,
        complaint_id=cid,
        thread_key=f"instagram:m:{i:010d}",
        opened_at=tpl.opened_at + shift,
        partition=i % PARTITIONS,
        clocks=clocks,
        seqs=dict(tpl.seqs),
        seen=[cid],
    )


def memory(n: int) -> dict[str, float]:
    router = _router()
    tpl = _template(router)
    rng = random.Random(7)
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    table: dict[bytes, bytes] = {}
    for i in range(n):
        s = _variant(tpl, i, rng.uniform(0, 86400.0))
        table[s.thread_key.encode()] = s.to_bytes()
    after_table = tracemalloc.get_traced_memory()[0]
    indexes = [DueIndex[bytes]() for _ in range(PARTITIONS)]
    for i, (key, _data) in enumerate(table.items()):
        due = tpl.clocks["first_response"].warning_at + (i % 86400)
        indexes[i % PARTITIONS].set(key, due)
    after_index = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    value_bytes = statistics.mean(len(v) for v in list(table.values())[:1000])
    return {
        "open_complaints": n,
        "bytes_per_complaint": (after_index - base) / n,
        "table_bytes_per_complaint": (after_table - base) / n,
        "index_bytes_per_complaint": (after_index - after_table) / n,
        "state_value_bytes": value_bytes,
        "total_mib": (after_index - base) / 2**20,
    }


def timer_lag(n: int, rate: float, seconds: float, tick_s: float) -> dict[str, float]:
    """Tick loop over ``n`` open complaints; ~``rate`` stages come due per second.

    Due instants are laid out on a reference timeline first; the loop's clock is wall time
    shifted so that the timeline starts when the loop does (building a million states takes
    longer than any head start would)."""
    router = _router()
    tpl = _template(router)
    fr = tpl.clocks["first_response"]
    table: dict[bytes, bytes] = {}
    indexes = [DueIndex[bytes]() for _ in range(PARTITIONS)]
    ref = fr.warning_at
    spread = n / rate  # the warnings of all n complaints come due within this many seconds
    rng = random.Random(3)
    for i in range(n):
        s = _variant(tpl, i, rng.uniform(0, spread))
        key = s.thread_key.encode()
        table[key] = s.to_bytes()
        indexes[s.partition].set(key, s.next_due())
    gc.collect()
    shift = ref - time.time()

    def clock() -> float:
        return time.time() + shift

    lags: list[float] = []
    fired = 0
    tick_work: list[float] = []
    end = time.time() + seconds
    next_tick = time.time()
    while next_tick < end:
        time.sleep(max(0.0, next_tick - time.time()))
        started = time.time()
        for idx in indexes:  # one tick record per partition in the worker
            now = clock()
            for key in idx.pop_due(now):
                state = ComplaintState.from_bytes(table[key])
                stage_lags: list[float] = []
                new, events = router.on_tick(state, now, stage_lags)
                done = clock()
                lags.extend(lag + (done - now) for lag in stage_lags)
                fired += len(events)
                if new is None:
                    del table[key]
                    idx.set(key, None)
                else:
                    table[key] = new.to_bytes()
                    idx.set(key, new.next_due())
        tick_work.append(time.time() - started)
        next_tick += tick_s
    lags.sort()
    q = statistics.quantiles(lags, n=100) if len(lags) > 100 else [max(lags or [0.0])] * 99
    return {
        "open_complaints": n,
        "still_open": len(table),
        "stages_fired": fired,
        "fired_per_s": fired / seconds,
        "tick_interval_s": tick_s,
        "lag_p50_s": q[49],
        "lag_p99_s": q[98],
        "lag_max_s": lags[-1] if lags else 0.0,
        "tick_work_p99_s": sorted(tick_work)[int(0.99 * (len(tick_work) - 1))],
    }


def core_throughput(n: int = 20000) -> dict[str, float]:
    """Route decisions per second (decode → state machine → encode) vs a bare decode/encode
    loop over the same classified records: the per-record cost route adds to a consumer."""
    import orjson

    from bench import corpus

    router = _router()
    records = corpus.classified(n)
    started = time.perf_counter()
    for _key, value in records:
        orjson.dumps(orjson.loads(value))
    bare = n / (time.perf_counter() - started)
    table: dict[bytes, bytes] = {}
    started = time.perf_counter()
    for key, value in records:
        cm = ClassifiedMessage.model_validate_json(value)
        old = table.get(key)
        state = ComplaintState.from_bytes(old) if old else None
        new, events = router.on_message(state, cm)
        for e in events:
            orjson.dumps(e.model_dump(mode="json"))
        if new is not None:
            table[key] = new.to_bytes()
    core = n / (time.perf_counter() - started)
    return {"bare_loop_per_s": bare, "route_core_per_s": core, "core_vs_bare": core / bare}


def run(bootstrap: str | None = None, runs: int = 3, n: int = 1_000_000) -> dict[str, object]:
    del bootstrap  # no broker needed
    mem = memory(n)
    gc.collect()
    # Building a million states takes about a minute: two lag runs at most, whatever ``runs``.
    lag_runs = [
        timer_lag(n, rate=2000.0, seconds=10.0, tick_s=0.25) for _ in range(min(2, max(1, runs)))
    ]
    gc.collect()
    core = core_throughput()
    return {
        "open_complaints": n,
        "bytes_per_open_complaint": round(mem["bytes_per_complaint"]),
        "memory": {k: round(v, 1) for k, v in mem.items()},
        "timer_lag_p99_s": statistics.median(r["lag_p99_s"] for r in lag_runs),
        "timer_lag_p50_s": statistics.median(r["lag_p50_s"] for r in lag_runs),
        "timer_runs": lag_runs,
        "core": {k: round(v, 2) for k, v in core.items()},
    }


if __name__ == "__main__":
    p = argparse.ArgumentParser(prog="python -m bench.route_timers", description=__doc__)
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--runs", type=int, default=1)
    a = p.parse_args()
    print(json.dumps(run(runs=a.runs, n=a.n), indent=2))
