"""Per-channel lanes: bounded queues, retries, outcomes recorded, dead letters.

A *lane* is one transport instance: the SMTP relay, the Telegram bot, the WhatsApp sender,
each webhook endpoint, each platform's reply API. Each lane has its own bounded in-memory
queue, its own workers and its own feeder, so a slow or dead endpoint only slows its own
lane: the others keep their workers and their queue room.

Flow: the consumer records planned deliveries in PostgreSQL and wakes their lanes. A lane's
feeder claims pending, due rows of the partitions this instance owns, as many as its queue
has room for (back-pressure: the rest wait in PostgreSQL, not in memory). Workers send with
tenacity (exponential backoff with jitter; a server's ``Retry-After`` / ``retry_after`` is
honoured); a delivery still failing after ``attempts`` tries is *parked* (its row gets a
later ``next_attempt_at``, doubling up to an hour) and the worker moves on; a ``Permanent``
failure, or one still failing after ``give_up_after_s``, is dead-lettered with the reason.
Outcomes are written in groups (one UPDATE for all that finished meanwhile); a row leaves
the in-memory set only once its outcome is in PostgreSQL, so a feeder can never claim a
delivery that was sent but not yet recorded."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)
from tenacity.stop import stop_base

from common import metrics
from common.deadletters import Source, dead_letter
from common.produce import RecordSink, send_all_or_raise
from services.notify.channels.base import (
    Channel,
    Item,
    MissingChannel,
    Permanent,
    Sender,
    Transient,
)
from services.notify.settings import NotifySettings
from services.notify.store import Claimed, Outcome, Store

log = logging.getLogger("aduan.notify")
STAGE = "notify"
MAX_PARK_S = 3600.0
POLL_S = 5.0
"""A lane's feeder looks at PostgreSQL at least this often (parked rows coming due,
partitions gained) even when nothing wakes it."""


@dataclass(frozen=True, slots=True)
class Policy:
    attempts: int
    backoff_initial_s: float
    backoff_max_s: float
    park_s: float
    give_up_after_s: float
    queue_size: int
    concurrency: int

    @classmethod
    def of(cls, s: NotifySettings) -> Policy:
        return cls(s.attempts, s.backoff_initial_s, s.backoff_max_s, s.park_s,
                   s.give_up_after_s, s.queue_size, s.concurrency)  # fmt: skip


class Recorder:
    """Group commit of outcomes: whatever finished while the last UPDATE ran goes in the
    next one, and each outcome's ``durable`` callback runs once it is in PostgreSQL. The
    sender does not wait for it (a worker moves on to its next delivery at once); the row
    stays in its lane's in-memory set until then, so it cannot be claimed again."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.pending: list[tuple[Outcome, Callable[[], None]]] = []
        self.wake = asyncio.Event()
        self.closing = False

    def submit(self, outcome: Outcome, durable: Callable[[], None]) -> None:
        self.pending.append((outcome, durable))
        self.wake.set()

    def close(self) -> None:
        self.closing = True
        self.wake.set()

    async def record(self, outcome: Outcome) -> None:
        """Submit and wait until durable."""
        done = asyncio.Event()
        self.submit(outcome, done.set)
        await done.wait()

    async def run(self) -> None:
        """Until closed and drained: every submitted outcome is written before it returns."""
        while True:
            await self.wake.wait()
            self.wake.clear()
            batch, self.pending = self.pending, []
            if not batch:
                if self.closing:
                    return
                continue
            delay = 0.1
            while True:
                try:
                    await self.store.finish([o for o, _ in batch])
                    break
                except Exception as exc:  # database away: keep the outcomes, try again
                    log.warning("recording %d outcomes failed (%s); retrying", len(batch), exc)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
            for _, durable in batch:
                durable()
            if self.closing:
                self.wake.set()  # one more round: outcomes submitted meanwhile, then return


class Lane:
    def __init__(self, name: str, channel: Channel, dispatcher: Dispatcher) -> None:
        self.name = name
        self.channel = channel
        self.d = dispatcher
        self.queue: asyncio.Queue[Claimed] = asyncio.Queue(maxsize=dispatcher.policy.queue_size)
        self.inflight: set[int] = set()
        self.wake = asyncio.Event()
        self.room = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []
        self.busy: set[asyncio.Task[None]] = set()
        self.closing = False

    def start(self) -> None:
        n = self.channel.concurrency or self.d.policy.concurrency
        self.tasks = [asyncio.create_task(self.feeder(), name=f"feed {self.name}")]
        self.tasks += [
            asyncio.create_task(self.worker(), name=f"send {self.name} {i}") for i in range(n)
        ]
        self.wake.set()

    def depth(self) -> int:
        return len(self.inflight)

    def offer(self, row: Claimed) -> None:
        if (
            row.source in self.d.owned
            and not self.queue.full()
            and row.item.id not in self.inflight
        ):
            self.inflight.add(row.item.id)
            self.queue.put_nowait(row)
            metrics.NOTIFY_QUEUE_DEPTH.labels(self.name).set(self.depth())
        else:
            self.wake.set()

    async def feeder(self) -> None:
        low_water = self.queue.maxsize // 2
        while True:
            self.wake.clear()
            owned = self.d.owned
            if self.queue.qsize() <= low_water and owned:
                room = self.queue.maxsize - self.queue.qsize()
                try:
                    rows = await self.d.store.claim(
                        self.name, sorted(owned), list(self.inflight), room
                    )
                except Exception as exc:
                    log.warning("lane %s: claiming from PostgreSQL failed: %s", self.name, exc)
                    rows = []
                    await asyncio.sleep(1.0)
                for row in rows:
                    if row.item.id in self.inflight:  # handed over while the query ran
                        continue
                    self.inflight.add(row.item.id)
                    self.queue.put_nowait(row)
                metrics.NOTIFY_QUEUE_DEPTH.labels(self.name).set(self.depth())
                if len(rows) == room:
                    # More may be waiting: claim again once the queue is half empty (one
                    # query per half queue, not one per delivery).
                    self.room.clear()
                    await self.room.wait()
                    continue
            idle = await self._idle_s(owned)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=idle)

    async def _idle_s(self, owned: frozenset[str]) -> float:
        """Sleep until woken, or until the next parked row of this lane comes due."""
        try:
            due = await self.d.store.next_due(self.name, sorted(owned))
        except Exception:
            return 1.0
        if due is None:
            return POLL_S
        return min(POLL_S, max(0.05, (due - datetime.now(UTC)).total_seconds()))

    async def worker(self) -> None:
        while True:
            batch = [await self.queue.get()]
            while len(batch) < self.channel.batch and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            if self.queue.qsize() <= self.queue.maxsize // 2:
                self.room.set()
            done: set[int] = set()
            me = asyncio.current_task()
            if me is not None:
                self.busy.add(me)
            try:
                async with self.channel.session() as sender:
                    for row in batch:
                        if self.closing:
                            break  # the rest stay pending in PostgreSQL
                        outcome = await self.d.deliver(self, row, sender)
                        done.add(row.item.id)
                        if outcome is None:
                            self.release(row.item.id)
                        else:
                            self.d.recorder.submit(outcome, partial(self.release, row.item.id))
            except Exception:  # a session that failed to close; outcomes are submitted
                log.exception("lane %s: session error", self.name)
            finally:
                self.busy.discard(me)
                for row in batch:
                    if row.item.id not in done:  # not sent here: still owed, in the DB
                        self.release(row.item.id)
            if self.closing:
                return

    def release(self, row_id: int) -> None:
        self.inflight.discard(row_id)
        metrics.NOTIFY_QUEUE_DEPTH.labels(self.name).set(len(self.inflight))

    async def stop(self, grace_s: float) -> None:
        """Take nothing new; let deliveries being sent finish (up to ``grace_s``) so their
        outcomes are recorded, rather than cut them off and send them again next start."""
        self.closing = True
        busy = set(self.busy)
        for t in self.tasks:
            if t not in busy:
                t.cancel()
        if busy:
            await asyncio.wait(busy, timeout=grace_s)
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


class Dispatcher:
    def __init__(
        self,
        store: Store,
        sink: RecordSink,
        deadletter_topic: str,
        policy: Policy,
        channels: dict[str, Channel],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.sink = sink
        self.deadletter_topic = deadletter_topic
        self.policy = policy
        self.channels = channels
        self.clock = clock
        self.recorder = Recorder(store)
        self.lanes: dict[str, Lane] = {}
        self.owned: frozenset[str] = frozenset()
        self.tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self.tasks.append(asyncio.create_task(self.recorder.run(), name="notify recorder"))
        for name in self.channels:
            self.lane(name)

    def lane(self, name: str) -> Lane:
        lane = self.lanes.get(name)
        if lane is None:
            channel = self.channels.get(name) or MissingChannel(name)
            lane = self.lanes[name] = Lane(name, channel, self)
            lane.start()
        return lane

    def hand_over(self, rows: Iterable[Claimed]) -> None:
        """Freshly recorded rows straight into their lanes' queues (no read back); a lane
        whose queue is full is woken instead and claims them from PostgreSQL later."""
        for row in rows:
            self.lane(row.lane).offer(row)

    def wake(self, names: Iterable[str]) -> None:
        for name in names:
            self.lane(name).wake.set()

    def assign(self, owned: Iterable[str]) -> None:
        """The partitions (``topic:partition``) whose deliveries this instance sends."""
        self.owned = frozenset(owned)
        for lane in self.lanes.values():
            lane.wake.set()

    async def stop(self, grace_s: float = 5.0) -> None:
        """Graceful: lanes finish what they are sending, then every outcome is written."""
        await asyncio.gather(*(lane.stop(grace_s) for lane in self.lanes.values()))
        self.recorder.close()
        recorder = self.tasks[0] if self.tasks else None
        if recorder is not None:
            await asyncio.wait({recorder}, timeout=grace_s)
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    # --- one delivery ---------------------------------------------------------------------
    async def deliver(self, lane: Lane, row: Claimed, sender: Sender) -> Outcome | None:
        """Send one delivery, retrying as the policy says; its outcome (None: this instance
        no longer owns its partition and must leave it to the new owner)."""
        item = row.item
        if row.source not in self.owned:
            return None
        tries = 1
        try:
            try:  # the common case, without building a retry loop
                receipt = await self._attempt(lane, sender, item)
            except Transient as first:
                tries, receipt = await self._retry(lane, sender, item, first)
        except Permanent as exc:
            return await self._dead(lane, row, tries, exc.reason, exc.detail)
        except Transient as exc:
            return await self._park(lane, row, tries, exc)
        except Exception as exc:  # an adapter bug must not kill the lane: park, log
            log.exception("lane %s: unexpected error delivering %s", lane.name, item.delivery_id)
            return await self._park(lane, row, tries, Transient("error", type(exc).__name__))
        metrics.NOTIFY_DELIVERIES.labels(lane.name, "delivered").inc()
        latency = self.clock() - item.event_time.timestamp()
        metrics.NOTIFY_LATENCY.labels(lane.name).observe(max(0.0, latency))
        return Outcome(item.id, "delivered", tries, row.parks, receipt=receipt)

    async def _attempt(self, lane: Lane, sender: Sender, item: Item) -> str | None:
        try:
            receipt = await sender.send(item)
        except (Transient, Permanent) as exc:
            metrics.NOTIFY_ATTEMPTS.labels(lane.name, exc.reason).inc()
            raise
        metrics.NOTIFY_ATTEMPTS.labels(lane.name, "ok").inc()
        return receipt

    async def _retry(
        self, lane: Lane, sender: Sender, item: Item, first: Transient
    ) -> tuple[int, str | None]:
        """The remaining tries after a transient failure: tenacity, exponential backoff with
        jitter, never sooner than the server's ``Retry-After``; a server asking for longer
        than ``backoff_max_s`` gets the delivery parked that long instead (raises)."""
        p = self.policy
        if p.attempts <= 1 or (first.retry_after or 0.0) > p.backoff_max_s:
            raise first
        await asyncio.sleep(
            max(first.retry_after or 0.0, p.backoff_initial_s * random.uniform(1, 2))
        )
        tries = 1
        retrying = AsyncRetrying(
            stop=stop_after_attempt(p.attempts - 1) | _retry_after_beyond(p.backoff_max_s),
            wait=_wait(p.backoff_initial_s * 2, p.backoff_max_s),
            retry=retry_if_exception_type(Transient),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                tries += 1
                receipt = await self._attempt(lane, sender, item)
        return tries, receipt

    async def _park(self, lane: Lane, row: Claimed, tries: int, exc: Transient) -> Outcome:
        age = self.clock() - row.created_at.timestamp()
        if age >= self.policy.give_up_after_s:
            detail = f"still failing after {age / 3600:.1f} h; last: {exc.reason}"
            return await self._dead(lane, row, tries, "retries_exhausted", detail)
        wait = min(MAX_PARK_S, self.policy.park_s * 2 ** min(row.parks, 10))
        wait = max(wait, exc.retry_after or 0.0)
        next_at = datetime.now(UTC) + timedelta(seconds=wait * random.uniform(1.0, 1.2))
        error = f"{exc.reason}: {exc.detail}"[:300]
        metrics.NOTIFY_DELIVERIES.labels(lane.name, "parked").inc()
        log.info("lane %s: parked %s for %.0fs (%s)", lane.name, row.item.delivery_id, wait, error)
        return Outcome(row.item.id, "pending", tries, row.parks + 1, next_at, error)

    async def _dead(
        self, lane: Lane, row: Claimed, tries: int, reason: str, detail: str
    ) -> Outcome:
        src = await self.store.source_of(row.item.id)
        topic, _, partition = src.source.rpartition(":")
        letter = dead_letter(
            self.deadletter_topic,
            STAGE,
            reason,
            f"{row.item.channel}:{lane.name} delivery of {row.item.event_id}: {detail}",
            Source(topic, int(partition), src.offset, src.key, src.event),
        )
        try:
            await send_all_or_raise(self.sink, [letter])
        except Exception as exc:  # broker away: keep it owed, try again later
            return await self._park(lane, row, tries, Transient("deadletter_failed", str(exc)))
        metrics.NOTIFY_DELIVERIES.labels(lane.name, "dead").inc()
        return Outcome(row.item.id, "dead", tries, row.parks, error=f"{reason}: {detail}"[:300])


def _wait(initial: float, maximum: float) -> Callable[[RetryCallState], float]:
    """Exponential backoff with jitter, but never shorter than the server asked for."""
    backoff = wait_exponential_jitter(multiplier=initial, max=maximum, jitter=initial)

    def wait(state: RetryCallState) -> float:
        base = backoff(state)
        exc = state.outcome.exception() if state.outcome else None
        asked = getattr(exc, "retry_after", None)
        return max(base, float(asked)) if asked is not None else base

    return wait


class _retry_after_beyond(stop_base):
    """Stop retrying in-process when the server asks for a wait longer than ``limit``:
    the delivery is parked for that long instead of holding a worker."""

    def __init__(self, limit: float) -> None:
        self.limit = limit

    def __call__(self, state: RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome else None
        asked = getattr(exc, "retry_after", None)
        return asked is not None and float(asked) > self.limit
