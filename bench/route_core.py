"""Route's pure core against its own version before issue 17, in one process, same inputs.

``python -m bench.route_core`` (``run()`` for ``python -m bench``). No broker. The baseline
is the frozen copy of the core as it was (``tests/route/legacy``, the oracle of the
property tests), so the speed-up is a ratio measured in the same run, whatever the load of
the machine. Each step is what the worker does per record around the state machine:
decode the stored state, run the step, encode the new state and every event as JSON.

Inputs: the bench corpus's complaints, their arrival times spread over a week (office
hours, nights, a weekend: ~70 % arrive while offices are closed, as citizens write), then
for each thread: open it, tick five days later (every stage fires, catch-up), then the
agency's reply. Medians of ``runs``."""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from bench import corpus
from bench.route_timers import ROOT
from common import codecs
from common.registry import load_registry
from schemas.classified import ClassifiedMessage
from services.route.clocks import ComplaintState, Router, event_json
from services.route.policy import load_sla_config

WEEK_START = datetime(2026, 11, 22, 17, 0, tzinfo=UTC)  # Monday 00:00 WIB


def inputs(n: int) -> tuple[list[ClassifiedMessage], list[ClassifiedMessage]]:
    """``n`` complaints and, per thread, the agency's reply 30 minutes later."""
    opens, replies = [], []
    for i, (_key, value) in enumerate(corpus.classified(n)):
        cm = ClassifiedMessage.model_validate_json(value)
        at = WEEK_START + timedelta(seconds=i * 7 * 86400 / n)
        m = cm.message.model_copy(update={"platform_time": at, "received_at": at})
        opens.append(cm.model_copy(update={"message": m}))
        r = m.model_copy(
            update={
                "message_id": m.message_id + "-r",
                "platform_time": at + timedelta(minutes=30),
                "received_at": at + timedelta(minutes=30),
                "is_agency_reply": True,
            }
        )
        replies.append(cm.model_copy(update={"message": r}))
    return opens, replies


def lifecycle(
    router: Any,
    state_cls: Any,
    encode: Callable[[Any], bytes],
    opens: list[Any],
    replies: list[Any],
) -> dict[str, float]:
    """Seconds per phase for one router (decode → step → encode, events to JSON the way
    that version's worker wrote them)."""
    table: dict[bytes, bytes] = {}
    keys = [cm.message.thread_key.encode() for cm in opens]

    def step(key: bytes, fn: Callable[[Any], tuple[Any, list[Any]]]) -> int:
        old = table.get(key)
        state = state_cls.from_bytes(old) if old else None
        new, events = fn(state)
        for e in events:
            encode(e)
        if new is not None:
            table[key] = new.to_bytes()
        return len(events)

    out: dict[str, float] = {}
    gc.collect()
    started = time.perf_counter()
    for key, cm in zip(keys, opens, strict=True):
        step(key, lambda s, cm=cm: router.on_message(s, cm))
    out["open_s"] = time.perf_counter() - started
    later = [cm.message.platform_time.timestamp() + 5 * 86400 for cm in opens]
    started = time.perf_counter()
    for key, now in zip(keys, later, strict=True):
        step(key, lambda s, now=now: router.on_tick(s, now, []))
    out["tick_s"] = time.perf_counter() - started
    started = time.perf_counter()
    for key, cm in zip(keys, replies, strict=True):
        step(key, lambda s, cm=cm: router.on_message(s, cm))
    out["reply_s"] = time.perf_counter() - started
    out["total_s"] = out["open_s"] + out["tick_s"] + out["reply_s"]
    return out


def bare(opens: list[ClassifiedMessage]) -> float:
    """Seconds for a bare decode/encode of as many JSON records (the issue's 'bare loop')."""
    records = [orjson.dumps(cm.model_dump(mode="json")) for cm in opens]
    started = time.perf_counter()
    for value in records:
        orjson.dumps(orjson.loads(value))
    return time.perf_counter() - started


def run(bootstrap: str | None = None, runs: int = 3, n: int = 20_000) -> dict[str, object]:
    del bootstrap
    from tests.route.legacy import clocks as legacy
    from tests.route.legacy import policy as legacy_policy

    registry = load_registry(ROOT / "deploy/config/registry.yaml")
    sla = ROOT / "deploy/config/sla.yaml"
    new = Router(load_sla_config(sla), registry)
    old = legacy.Router(legacy_policy.load_sla_config(sla), registry)
    opens, replies = inputs(n)
    samples: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    bare_s: list[float] = []
    for _ in range(runs):  # interleaved, so load changes hit both alike
        samples["before"].append(
            lifecycle(old, legacy.ComplaintState, codecs.dumps, opens, replies)
        )
        samples["after"].append(lifecycle(new, ComplaintState, event_json, opens, replies))
        bare_s.append(bare(opens))
    result: dict[str, object] = {"complaints": n, "runs": runs}
    for phase in ("open_s", "tick_s", "reply_s", "total_s"):
        before = statistics.median(s[phase] for s in samples["before"])
        after = statistics.median(s[phase] for s in samples["after"])
        name = phase.removesuffix("_s")
        result[name] = {
            "before_per_s": round(n / before),
            "after_per_s": round(n / after),
            "speedup": round(before / after, 2),
        }
    b = statistics.median(bare_s)
    result["bare_loop_per_s"] = round(n / b)
    for when in ("before", "after"):
        total = statistics.median(s["total_s"] for s in samples[when]) / 3  # per step
        result[f"{when}_step_vs_bare"] = round(b / total, 4)
    return result


if __name__ == "__main__":
    p = argparse.ArgumentParser(prog="python -m bench.route_core", description=__doc__)
    p.add_argument("--n", type=int, default=20_000)
    p.add_argument("--runs", type=int, default=3)
    a = p.parse_args()
    print(json.dumps(run(runs=a.runs, n=a.n), indent=2))
