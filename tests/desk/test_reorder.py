"""Holding events until no older one can arrive from a sibling topic (pure)."""

from __future__ import annotations

import random

from services.desk.events import Source
from services.desk.projection import fold_all
from services.desk.reorder import Held, Reorder
from tests.desk.factories import Timeline, full_story

TOPICS = {Source.routes: "routes", Source.sla: "sla", Source.commands: "commands"}


def held(t: Timeline) -> dict[str, list[Held]]:
    """Each topic's records (one partition) as the consumer would read them."""
    out: dict[str, list[Held]] = {name: [] for name in TOPICS.values()}
    for r in t.records:
        e = r.event()
        out[TOPICS[r.source]].append(Held((TOPICS[r.source], 0), r.offset, r.ts_ms, e, 0.0))
    return out


def test_events_read_unevenly_are_released_in_order_and_offsets_never_skip_a_held_one() -> None:
    t = Timeline()
    for i in range(5):
        full_story(t, f"instagram:r{i}")
    topics = held(t)
    reorder = Reorder()
    read = {name: 0 for name in topics}
    rng = random.Random(4)
    applied = []
    stored: dict[tuple[str, int], int] = {}
    while any(read[n] < len(topics[n]) for n in topics):
        name = rng.choice([n for n in topics if read[n] < len(topics[n])])
        n = rng.randint(1, 6)
        for h in topics[name][read[name] : read[name] + n]:
            reorder.add(h)
        read[name] = min(len(topics[name]), read[name] + n)
        out = reorder.release(
            [(n, 0) for n in topics], lambda tp: read[tp[0]] == len(topics[tp[0]]), 0.0
        )
        if applied and out.events:
            assert out.events[0].order_key > applied[-1].order_key  # never older than applied
        applied += out.events
        for tp, offset in out.positions.items():
            assert offset >= stored.get(tp, 0)
            held_offsets = [h.offset for h in reorder.held.get(tp, [])]
            assert all(o >= offset for o in held_offsets)  # no held record behind it
            stored[tp] = offset
    assert reorder.count == 0
    assert [e.event_id for e in applied] == [r.event().event_id for r in t.records]
    assert fold_all(applied) == fold_all(t.events())


def test_nothing_waits_when_every_partition_is_caught_up() -> None:
    t = Timeline()
    full_story(t)
    reorder = Reorder()
    for items in held(t).values():
        for h in items[:2]:
            reorder.add(h)
    out = reorder.release([("routes", 0), ("sla", 0), ("commands", 0)], lambda tp: True, 0.0)
    assert reorder.count == 0 and len(out.events) == 6  # 2 of each topic, at once


def test_a_silent_sibling_blocks_only_until_the_bounds() -> None:
    t = Timeline()
    full_story(t)
    topics = held(t)
    reorder = Reorder(limit=1000, max_wait_s=5.0)
    for h in topics["sla"]:
        reorder.add(h)
    tps = [("routes", 0), ("sla", 0), ("commands", 0)]
    # routes has records nobody has read yet: nothing from sla may go before them.
    assert not reorder.release(tps, lambda tp: tp[0] != "routes", 1.0)
    assert reorder.release(tps, lambda tp: tp[0] != "routes", 6.0).events  # waited too long
    small = Reorder(limit=3)
    for h in topics["sla"][:4]:
        small.add(h)
    assert len(small.release(tps, lambda tp: False, 0.0).events) == 4  # too many held


def test_revoked_partitions_are_forgotten() -> None:
    t = Timeline()
    full_story(t)
    reorder = Reorder()
    for items in held(t).values():
        for h in items:
            reorder.add(h)
    reorder.forget([("sla", 0)])
    assert ("sla", 0) not in reorder.held and reorder.count == sum(
        len(v) for k, v in held(t).items() if k != "sla"
    )
