"""A time-ordered index of open complaints, one per partition, so a tick touches only what is due.

A binary heap of ``(due, key)`` plus a dict ``key → due``: rescheduling pushes a new entry and
leaves the old one in the heap (lazy deletion); a popped entry counts only when it matches
the dict. Stale entries are compacted away once they outnumber live ones, which bounds memory
at about two heap entries per open complaint. Pure and single-threaded: the faust shell owns
one per partition and rebuilds it from the table after a rebalance."""

from __future__ import annotations

import heapq
from collections.abc import Hashable, Iterable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class DueIndex(Generic[K]):
    __slots__ = ("_due", "_heap")

    def __init__(self) -> None:
        self._heap: list[tuple[float, K]] = []
        self._due: dict[K, float] = {}

    def __len__(self) -> int:
        return len(self._due)

    def __contains__(self, key: K) -> bool:
        return key in self._due

    def set(self, key: K, due: float | None) -> None:
        """Schedule ``key`` at ``due``; ``None`` removes it."""
        current = self._due.get(key)
        if due is None:
            if current is not None:
                del self._due[key]
                self._maybe_compact()
            return
        if current == due:
            return
        self._due[key] = due
        heapq.heappush(self._heap, (due, key))
        if current is not None:
            self._maybe_compact()

    def peek(self) -> float | None:
        """The earliest live due time (drops stale heap tops on the way)."""
        heap, due = self._heap, self._due
        while heap:
            at, key = heap[0]
            if due.get(key) == at:
                return at
            heapq.heappop(heap)
        return None

    def pop_due(self, now: float, limit: int | None = None) -> list[K]:
        """Remove and return keys due at or before ``now`` (earliest first, at most ``limit``).

        The caller re-schedules each key after handling it (its next stage or None)."""
        out: list[K] = []
        heap, due = self._heap, self._due
        while heap and heap[0][0] <= now and (limit is None or len(out) < limit):
            at, key = heapq.heappop(heap)
            if due.get(key) == at:
                del due[key]
                out.append(key)
        return out

    def clear(self) -> None:
        self._heap.clear()
        self._due.clear()

    def rebuild(self, items: Iterable[tuple[K, float]]) -> None:
        """Replace the content in O(n) (heapify), e.g. after partitions were recovered."""
        self._due = dict(items)
        self._heap = [(at, key) for key, at in self._due.items()]
        heapq.heapify(self._heap)

    def _maybe_compact(self) -> None:
        if len(self._heap) > 2 * len(self._due) + 1024:
            self._heap = [(at, k) for at, k in self._heap if self._due.get(k) == at]
            heapq.heapify(self._heap)
