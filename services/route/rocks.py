"""Route's table on RocksDB: the states, a due index and open counts in one database.

One RocksDB per changelog partition (faust's layout). Next to the states (key = thread
key, value = ``ComplaintState`` bytes) each database keeps two derived key spaces, written
in the same atomic ``WriteBatch`` as the states they derive from:

* ``\\x01`` + big-endian due time + thread key: the due index, in time order. A tick reads
  the due complaints with one range scan; nothing is held in memory per complaint, and a
  restarted worker has its index the moment the database opens (measured before: ~3 µs per
  complaint to rebuild an in-memory index by scanning every state, 3 s per million, plus
  ~210 bytes of Python objects per complaint).
* ``\\x02`` + agency id: how many open complaints of that agency the partition holds (the
  ``aduan_open_complaints`` gauge after a restart, without a scan).

Both are derived from each state's header (``peek_schedule``), on every write: route's own
batches (``apply``) and faust's changelog recovery and standby replication
(``apply_changelog``, which ``services.route.faust_internals`` routes here). Thread keys are
printable, so the control prefixes never collide with them. Pure rocksdict: tests run it on
a temporary directory without faust or a broker."""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import rocksdict

from services.route.clocks import Schedule, peek_schedule

INDEX = b"\x01"
COUNTS = b"\x02"
_DUE = struct.Struct(">d")  # non-negative doubles sort like their big-endian bytes
_INDEX_END = b"\x02"

ChangelogRecord = tuple[int, int, bytes, bytes | None]
"""(partition, offset, key, value) of a changelog record, in changelog order."""


def schedule(value: bytes | None) -> Schedule | None:
    """The schedule header of a stored state (None: no state, or not a route state)."""
    if not value:
        return None
    try:
        return peek_schedule(value)
    except (ValueError, TypeError, struct.error):
        return None


def indexed_due(s: Schedule | None) -> float | None:
    """When the due index lists a state. An open state without a due time was written
    before never-resolved complaints expired: listed now, so a tick gives it one."""
    if s is None:
        return None
    if s.due is not None:
        return max(0.0, s.due)
    return 0.0 if s.is_open else None


class RocksState:
    """``services.route.worker.StateTable`` with a persistent due index (see module doc)."""

    def __init__(self, db_for: Callable[[int], Any], offset_key: bytes) -> None:
        self.db_for = db_for
        self.offset_key = offset_key
        self._counts: dict[int, Counter[str]] = {}

    # --- StateTable -------------------------------------------------------------------
    def get(self, key: bytes, partition: int) -> bytes | None:
        value: bytes | None = self.db_for(partition).get(key)
        return value

    def apply(self, partition: int, writes: dict[bytes, bytes | None], offset: int) -> None:
        db = self.db_for(partition)
        batch = rocksdict.WriteBatch(raw_mode=True)
        counts = self._partition_counts(partition, db)
        changed: set[str] = set()
        for key, value in writes.items():
            self._derive(batch, counts, changed, key, db.get(key), value)
            if value is None:
                batch.delete(key)
            else:
                batch.put(key, value)
        self._finish(batch, counts, changed, offset)
        db.write(batch)

    def items(self, partitions: Iterable[int]) -> Iterator[tuple[bytes, bytes]]:
        for p in sorted(partitions):
            for key, value in self.db_for(p).items():
                if key[:1] not in (INDEX, COUNTS) and key != self.offset_key:
                    yield key, value

    # --- the persistent index ---------------------------------------------------------
    def due_index(self, partition: int) -> RocksDueIndex:
        return RocksDueIndex(self, partition)

    def open_counts(self, partitions: Iterable[int]) -> Counter[str]:
        """Open complaints per agency over ``partitions`` (re-read from the databases)."""
        total: Counter[str] = Counter()
        for p in partitions:
            self._counts.pop(p, None)
            total.update(self._partition_counts(p, self.db_for(p)))
        return total

    def persisted_offset(self, partition: int) -> int | None:
        """The changelog offset this copy of ``partition`` is complete up to."""
        value = self.db_for(partition).get(self.offset_key)
        return None if value is None else int(value)

    # --- faust's changelog recovery and standbys --------------------------------------
    def apply_changelog(self, records: Iterable[ChangelogRecord]) -> None:
        """Apply changelog records (recovery, standby) with their derived keys and offsets."""
        batches: dict[int, Any] = {}
        latest: dict[int, dict[bytes, bytes | None]] = {}
        changed: dict[int, set[str]] = {}
        offsets: dict[int, int] = {}
        for partition, offset, key, value in records:
            batch = batches.get(partition)
            if batch is None:
                batch = batches[partition] = rocksdict.WriteBatch(raw_mode=True)
                latest[partition], changed[partition] = {}, set()
            db = self.db_for(partition)
            seen = latest[partition]
            old = seen[key] if key in seen else db.get(key)
            counts = self._partition_counts(partition, db)
            self._derive(batch, counts, changed[partition], key, old, value)
            if value is None:
                batch.delete(key)
            else:
                batch.put(key, value)
            seen[key] = value
            offsets[partition] = max(offset, offsets.get(partition, -1))
        for partition, batch in batches.items():
            counts = self._partition_counts(partition, self.db_for(partition))
            self._finish(batch, counts, changed[partition], offsets[partition])
            self.db_for(partition).write(batch)

    # --- internals --------------------------------------------------------------------
    def _derive(
        self,
        batch: Any,
        counts: Counter[str],
        changed: set[str],
        key: bytes,
        old: bytes | None,
        new: bytes | None,
    ) -> None:
        before, after = schedule(old), schedule(new)
        was, due = indexed_due(before), indexed_due(after)
        if was != due:
            if was is not None:
                batch.delete(INDEX + _DUE.pack(was) + key)
            if due is not None:
                batch.put(INDEX + _DUE.pack(due) + key, b"")
        if before is not None and before.is_open:
            counts[before.agency_id] -= 1
            changed.add(before.agency_id)
        if after is not None and after.is_open:
            counts[after.agency_id] += 1
            changed.add(after.agency_id)

    def _finish(self, batch: Any, counts: Counter[str], changed: set[str], offset: int) -> None:
        for agency in changed:
            batch.put(COUNTS + agency.encode(), str(counts[agency]).encode())
        batch.put(self.offset_key, str(offset).encode())  # as faust's set_persisted_offset

    def _partition_counts(self, partition: int, db: Any) -> Counter[str]:
        counts = self._counts.get(partition)
        if counts is None:
            counts = self._counts[partition] = Counter()
            for key, value in db.items(from_key=COUNTS):
                if key[:1] != COUNTS:
                    break
                counts[key[1:].decode()] = int(value)
        return counts


class RocksDueIndex:
    """``services.route.timers.DueIndex``'s interface over a partition's persistent index.

    ``set`` and ``rebuild`` do nothing: the index follows the stored states (their writes
    are applied once acknowledged); ``pop_due`` does not remove, a handled complaint moves
    when its new state is applied at the end of the batch."""

    __slots__ = ("partition", "state")

    def __init__(self, state: RocksState, partition: int) -> None:
        self.state, self.partition = state, partition

    def set(self, key: bytes, due: float | None) -> None:
        del key, due

    def rebuild(self, items: Iterable[tuple[bytes, float]]) -> None:
        del items

    def peek(self) -> float | None:
        for key in self.state.db_for(self.partition).keys(from_key=INDEX):
            if key[:1] != INDEX:
                return None
            at: float = _DUE.unpack_from(key, 1)[0]
            return at
        return None

    def pop_due(self, now: float, limit: int | None = None) -> list[bytes]:
        out: list[bytes] = []
        for key in self.state.db_for(self.partition).keys(from_key=INDEX):
            if key[:1] != INDEX or _DUE.unpack_from(key, 1)[0] > now:
                break
            out.append(key[1 + _DUE.size :])
            if limit is not None and len(out) >= limit:
                break
        return out
