"""Route's RocksDB table (real RocksDB in a temporary directory, no faust): the due index and
open counts follow every write, whether route's own batches or faust's changelog recovery
wrote it, and a worker restarted on the same directory fires what came due, once, without
rebuilding anything."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import rocksdict

from common.produce import MemorySink
from services.route.clocks import ComplaintState
from services.route.rocks import INDEX, RocksState
from services.route.settings import RouteSettings
from services.route.worker import Incoming, RouteTopics, RouteWorker

from .factories import message, router
from .test_worker import record, values

WIB = ZoneInfo("Asia/Jakarta")
MON_9 = datetime(2026, 11, 23, 9, 0, tzinfo=WIB)
TOPICS = RouteTopics("routes", "sla", "deadletter", changelog=lambda: "changelog")
OFFSET_KEY = b"__faust\x00offset__"


def opener(root: Path) -> tuple[Callable[[int], Any], dict[int, Any]]:
    dbs: dict[int, Any] = {}

    def db_for(p: int) -> Any:
        if p not in dbs:
            options = rocksdict.Options(raw_mode=True)
            options.create_if_missing(True)
            dbs[p] = rocksdict.Rdict(str(root / f"p{p}.db"), options=options)
        return dbs[p]

    return db_for, dbs


def close(dbs: dict[int, Any]) -> None:
    for db in dbs.values():
        db.close()
    dbs.clear()


def state_at(cid: str, at: datetime, partition: int = 0) -> bytes:
    s, _ = router().on_message(None, message(cid, f"t-{cid}", at), partition)
    assert s is not None
    return s.to_bytes()


def index_keys(db: Any) -> list[bytes]:
    return [k for k in db.keys(from_key=INDEX) if k[:1] == INDEX]


def test_index_and_counts_follow_batches_and_recovery_alike(tmp_path: Path) -> None:
    db_for, dbs = opener(tmp_path / "a")
    a = RocksState(db_for, OFFSET_KEY)
    early, late = state_at("c1", MON_9), state_at("c2", MON_9 + timedelta(days=1))
    a.apply(0, {b"t1": late, b"t2": early}, offset=5)
    idx = a.due_index(0)
    assert idx.pop_due(1e12) == [b"t2", b"t1"]  # earliest first
    assert idx.peek() == ComplaintState.from_bytes(early).next_due()
    assert a.open_counts([0])["sby-public-works"] == 2
    resolved = ComplaintState.from_bytes(early)
    resolved.resolved_at, resolved.clocks = MON_9.timestamp(), {}
    a.apply(0, {b"t2": resolved.to_bytes(), b"t1": None}, offset=9)
    assert idx.pop_due(1e12) == [b"t2"] and len(index_keys(db_for(0))) == 1  # old entry gone
    assert a.open_counts([0])["sby-public-works"] == 0
    assert a.persisted_offset(0) == 9

    # The same history replayed from the changelog into a fresh copy: same derived keys.
    db_b, dbs_b = opener(tmp_path / "b")
    b = RocksState(db_b, OFFSET_KEY)
    b.apply_changelog(
        [(0, 4, b"t1", late), (0, 5, b"t2", early), (0, 8, b"t2", resolved.to_bytes()),
         (0, 9, b"t1", None), (0, 10, b"\x00marker", None)]
    )  # fmt: skip
    assert index_keys(db_b(0)) == index_keys(db_for(0))
    assert b.open_counts([0]) == a.open_counts([0])
    assert b.persisted_offset(0) == 10
    b.apply_changelog([(0, 9, b"t1", None), (0, 8, b"t2", resolved.to_bytes())])  # replayed
    assert index_keys(db_b(0)) == index_keys(db_for(0))
    assert b.open_counts([0]) == a.open_counts([0])
    close(dbs)
    close(dbs_b)


def test_state_written_before_expiry_existed_is_listed_for_a_tick(tmp_path: Path) -> None:
    from tests.route.legacy import clocks as legacy

    old, _ = legacy.Router(router().config, router().registry).on_message(
        None, message("c1", "t1", MON_9), 0
    )
    assert old is not None
    for c in old.clocks.values():
        c.fired = (1 << (2 + len(c.escalations))) - 1  # every stage fired: R1 due is None
    db_for, dbs = opener(tmp_path)
    s = RocksState(db_for, OFFSET_KEY)
    s.apply_changelog([(0, 1, b"t1", old.to_bytes())])
    assert s.due_index(0).pop_due(0.0) == [b"t1"]
    close(dbs)


async def test_worker_restarted_on_its_directory_fires_what_came_due_once(
    tmp_path: Path,
) -> None:
    db_for, dbs = opener(tmp_path)
    w = RouteWorker(router(), RocksState(db_for, OFFSET_KEY), TOPICS, RouteSettings())
    sink = MemorySink(partitions=6)
    batch = [record(message(f"c{i}", f"t{i}", MON_9), f"t{i}", partition=i % 2) for i in range(4)]
    await w.handle_batch(w.on_classified, batch, sink)
    await w.reindex(frozenset({0, 1}))
    assert w.open_by_agency["sby-public-works"] == 4
    close(dbs)  # the worker dies; its directory stays

    db_for, dbs = opener(tmp_path)
    w = RouteWorker(router(), RocksState(db_for, OFFSET_KEY), TOPICS, RouteSettings())
    await w.reindex(frozenset({0, 1}))  # nothing to scan
    assert w.open_by_agency["sby-public-works"] == 4
    later = (MON_9 + timedelta(hours=5, minutes=30)).timestamp()  # warning and overdue due
    assert sorted(w.due_partitions(later, mono=0.0)) == [0, 1]
    out = MemorySink(partitions=6)
    for p in (0, 1):
        tick = Incoming("ticks", p, 0, None, orjson.dumps({"now": later}))
        await w.handle_batch(w.on_tick, [tick, tick], out)  # a duplicated tick changes nothing
    fired = sorted((e["complaint_id"], e["event_type"]) for e in values(out, "sla"))
    assert fired == sorted((f"instagram:c{i}", t) for i in range(4) for t in ("warning", "overdue"))
    assert w.index(0).peek() is not None and w.index(0).peek() > later  # moved on
    close(dbs)
