"""The per-partition due index: order, rescheduling, removal, bounded garbage."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from services.route.timers import DueIndex


def test_pops_only_what_is_due_in_order() -> None:
    idx: DueIndex[object] = DueIndex()
    for key, at in (("c", 30.0), ("a", 10.0), ("b", 20.0)):
        idx.set(key, at)
    assert idx.peek() == 10.0
    assert idx.pop_due(25.0) == ["a", "b"]
    assert len(idx) == 1 and idx.peek() == 30.0
    assert idx.pop_due(29.9) == []


def test_reschedule_and_remove_leave_no_ghosts() -> None:
    idx: DueIndex[object] = DueIndex()
    idx.set("a", 10.0)
    idx.set("a", 50.0)  # later stage
    idx.set("b", 5.0)
    idx.set("b", None)  # resolved
    assert idx.pop_due(20.0) == []
    assert idx.pop_due(50.0) == ["a"]
    assert len(idx) == 0 and idx.peek() is None


def test_heap_garbage_is_bounded() -> None:
    idx: DueIndex[object] = DueIndex()
    rng = random.Random(1)
    for i in range(20_000):
        idx.set(i % 1000, rng.random() * 1000)
    assert len(idx) == 1000
    assert len(idx._heap) <= 2 * 1000 + 1024 + 1  # noqa: SLF001  # the bound under test


@given(st.lists(st.tuples(st.integers(0, 30), st.one_of(st.none(), st.floats(0, 100)))))
def test_matches_a_plain_dict_model(ops: list[tuple[int, float | None]]) -> None:
    idx: DueIndex[int] = DueIndex()
    model: dict[int, float] = {}
    for key, at in ops:
        idx.set(key, at)
        if at is None:
            model.pop(key, None)
        else:
            model[key] = at
    due = sorted((k for k, at in model.items() if at <= 50), key=lambda k: (model[k], k))
    got = idx.pop_due(50)
    assert sorted(got) == sorted(due)
    assert [model[k] for k in got] == sorted(model[k] for k in got)
    assert len(idx) == len(model) - len(due)
