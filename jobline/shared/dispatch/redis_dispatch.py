"""Redis (Valkey) dispatch state: ready queues, delayed sets, leases and wake-ups.

Redis holds no truth. Everything here can be rebuilt from Postgres by ``reconcile``; every state
change is one Lua script (files in ``lua/``, each stating its guarantees and KEYS/ARGV) or a single
atomic command. Key layout is documented in ``docs/redis-keys.md``; per-queue keys carry the queue
name as a ``{hash tag}`` so one queue's keys live in one Redis Cluster slot.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, NamedTuple, TypeVar, cast

import redis.asyncio as aioredis

from jobline.shared.core.models import PRIORITY_MAX

#: Ready score = (PRIORITY_MAX - priority) * PRIO_SPAN + seq. A double holds integers exactly up to
#: 2**53; 11 priority levels * 2**49 < 2**53, so scores are exact while seq < 2**49 (5.6e14 jobs).
#: ZPOPMIN therefore yields higher priority first and, within a priority, submission order.
PRIO_SPAN = 2**49

QUEUE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")


def ready_score(priority: int, seq: int) -> int:
    return (PRIORITY_MAX - priority) * PRIO_SPAN + seq


T = TypeVar("T")


def by_queue(items: Iterable[tuple[str, T]]) -> dict[str, list[T]]:
    """``(queue, item)`` pairs grouped by queue, each queue's items in their order. Dispatch
    state is per queue (its keys share a Cluster slot), so a batch becomes one script per queue."""
    grouped: dict[str, list[T]] = {}
    for queue, item in items:
        grouped.setdefault(queue, []).append(item)
    return grouped


#: From this many jobs, enqueue.lua gets its triples packed into one argument: redis-py encodes
#: every argument in Python (three per job), which was the largest client cost of bulk submit.
PACK_MIN = 32


def _enqueue_args(queue: str, entries: Sequence[DispatchEntry], now_ms: int,
                  positions: bool) -> list[Any]:
    head: list[Any] = [now_ms, queue, "1" if positions else "0"]
    if len(entries) >= PACK_MIN:
        return [*head, "*", ",".join([f"{e.id}:{ready_score(e.priority, e.seq)}:{e.due_ms}"
                                      for e in entries])]
    for e in entries:
        head += [str(e.id), ready_score(e.priority, e.seq), e.due_ms]
    return head


def _script(name: str) -> str:
    return resources.files("jobline.shared.dispatch.lua").joinpath(f"{name}.lua").read_text()


class DispatchEntry(NamedTuple):
    """Where one job belongs in Redis: ready now, or delayed until ``due_ms``. A named tuple,
    not a frozen dataclass: a bulk submit makes one per job, and frozen dataclasses construct
    through ``object.__setattr__`` per field (several times slower)."""

    id: uuid.UUID
    priority: int
    seq: int
    due_ms: int


@dataclass(frozen=True, slots=True)
class QueueControls:
    """A queue's operator controls as stored in Postgres (``queues`` row)."""

    name: str
    paused: bool = False
    #: Jobs of this queue leased at once across all workers; None = unlimited.
    max_in_flight: int | None = None
    #: Increases with every change; orders racing Redis mirrors.
    version: int = 0
    #: At most ``rate_limit`` claims in any ``rate_window_ms`` across all workers; None = none.
    rate_limit: int | None = None
    rate_window_ms: int | None = None


class QueueKeys:
    __slots__ = ("delayed", "dprio", "leases", "meta", "name", "rate", "ready", "wake")

    def __init__(self, prefix: str, name: str) -> None:
        base = f"{prefix}:{{{name}}}"
        self.name = name
        self.ready = f"{base}:ready"
        self.delayed = f"{base}:delayed"
        self.dprio = f"{base}:dprio"
        self.leases = f"{base}:leases"
        self.wake = f"{base}:wake"
        self.meta = f"{base}:meta"
        #: sliding-window log of recent claims (rate limit); entries expire after the window
        self.rate = f"{base}:rate"


class Dispatch:
    """Typed access to the dispatch keys under one prefix. Holds a client, no job state."""

    def __init__(self, client: aioredis.Redis, prefix: str = "jl") -> None:
        self.r = client
        self.prefix = prefix
        self.queues_key = f"{prefix}:queues"
        self.wake_all = f"{prefix}:wake"
        self.timer_wake = f"{prefix}:timer"
        self.epoch_key = f"{prefix}:epoch"
        self.cron_wake = f"{prefix}:cron"
        self._enqueue = client.register_script(_script("enqueue"))
        self._claim = client.register_script(_script("claim"))
        self._promote = client.register_script(_script("promote"))
        self._remove = client.register_script(_script("remove"))
        self._reconcile = client.register_script(_script("reconcile"))
        self._queue_meta = client.register_script(_script("queue_meta"))
        self._release = client.register_script(_script("release"))
        self._unclaim = client.register_script(_script("unclaim"))
        #: Application clock minus Valkey's clock (ms) as last measured by ``wait_and_claim``'s
        #: caller; the timed claim adds it to Valkey's TIME so its ``now`` is on the
        #: application clock (docs/redis-keys.md, "Clocks").
        self.clock_offset_ms: int | None = None
        self._keys: dict[str, QueueKeys] = {}

    def keys(self, queue: str) -> QueueKeys:
        k = self._keys.get(queue)
        if k is None:
            k = self._keys[queue] = QueueKeys(self.prefix, queue)
        return k

    # --- transitions -----------------------------------------------------------------------

    async def enqueue(
        self, queue: str, entries: Sequence[DispatchEntry], now_ms: int, *, positions: bool = False
    ) -> list[int]:
        """Put jobs into ready/delayed (and out of leases). Returns ready ranks if ``positions``."""
        if not entries:
            return []
        k = self.keys(queue)
        args = _enqueue_args(queue, entries, now_ms, positions)
        res = await self._enqueue(
            keys=[k.ready, k.delayed, k.dprio, k.leases, k.wake, self.wake_all, self.queues_key,
                  self.timer_wake],
            args=args,
        )
        return [int(x) for x in res] if positions else []

    async def enqueue_many(
        self, by_queue: dict[str, list[DispatchEntry]], now_ms: int, *, positions: bool = False
    ) -> dict[str, list[int]]:
        """``enqueue`` for several queues in one round trip (pipeline of one script per queue)."""
        if len(by_queue) == 1:
            (q, entries), = by_queue.items()
            return {q: await self.enqueue(q, entries, now_ms, positions=positions)}
        async with self.r.pipeline(transaction=False) as pipe:
            for q, entries in by_queue.items():
                k = self.keys(q)
                args = _enqueue_args(q, entries, now_ms, positions)
                await self._enqueue(
                    keys=[k.ready, k.delayed, k.dprio, k.leases, k.wake, self.wake_all,
                          self.queues_key, self.timer_wake],
                    args=args, client=pipe)
            res = await pipe.execute()
        return {q: ([int(x) for x in r] if positions else [])
                for q, r in zip(by_queue, res, strict=True)}

    async def claim(
        self, queues: Sequence[str], n: int, now_ms: int, lease_deadline_ms: int, rotate: int = 0
    ) -> tuple[list[tuple[str, uuid.UUID]], int | None]:
        """Lease up to ``n`` ready jobs from ``queues`` (promoting due delayed jobs first).

        Returns the leased (queue, id) pairs and, when none, the earliest time something may
        become claimable (a delayed job's due time, or a rate-limited queue's next free slot).
        """
        if not queues or n <= 0:
            return [], None
        keys: list[str] = []
        for q in queues:
            k = self.keys(q)
            keys += [k.ready, k.leases, k.delayed, k.dprio, k.wake, k.meta, k.rate]
        keys.append(self.wake_all)
        res = cast(list[Any], await self._claim(
            keys=keys, args=[now_ms, lease_deadline_ms, n, rotate % len(queues), 1000]))
        out = []
        for i in range(0, len(res) - 1, 2):
            out.append((queues[int(res[i])], uuid.UUID(_s(res[i + 1]))))
        next_due = int(res[-1])
        return out, (next_due if next_due >= 0 else None)

    async def promote(self, queues: Sequence[str], now_ms: int, limit: int = 5000) -> tuple[int, int | None]:
        """Move due delayed jobs to ready. Returns (moved, next due ms or None)."""
        if not queues:
            return 0, None
        keys: list[str] = []
        for q in queues:
            k = self.keys(q)
            keys += [k.ready, k.delayed, k.dprio, k.wake, k.meta]
        keys.append(self.wake_all)
        moved, nxt = await self._promote(keys=keys, args=[now_ms, limit])
        return int(moved), (int(nxt) if int(nxt) >= 0 else None)

    async def remove(self, items: Iterable[tuple[str, uuid.UUID]]) -> int:
        """Remove jobs from every dispatch structure of their queue."""
        by_q = by_queue((q, str(job_id)) for q, job_id in items)
        if not by_q:
            return 0
        async with self.r.pipeline(transaction=False) as pipe:
            for q, ids in by_q.items():
                k = self.keys(q)
                await self._remove(keys=[k.ready, k.delayed, k.dprio, k.leases], args=ids,
                                   client=pipe)
            res = await pipe.execute()
        return sum(int(x) for x in res)

    async def release_leases(self, items: Iterable[tuple[str, uuid.UUID]]) -> None:
        """Drop lease entries of finished attempts (one script per queue, pipelined); wakes
        workers of a capped queue, since a freed slot is what they wait for."""
        by_q = by_queue((q, str(job_id)) for q, job_id in items)
        if not by_q:
            return
        async with self.r.pipeline(transaction=False) as pipe:
            for q, ids in by_q.items():
                k = self.keys(q)
                # unpack() in Lua is bounded by the C stack: chunk very large batches
                for i in range(0, len(ids), 5000):
                    await self._release(keys=[k.leases, k.meta, k.ready, k.wake, self.wake_all],
                                        args=ids[i:i + 5000], client=pipe)
            await pipe.execute()

    async def unclaim(self, now_ms: int,
                      items: Iterable[tuple[str, uuid.UUID, int | None]]) -> int:
        """Undo the Redis half of claims Postgres refused (``unclaim.lua``): ``(queue, id,
        owner deadline)``; an id with an owner deadline (running under another claim) gets that
        lease back, any other id loses its lease; the rate entries the claim at ``now_ms`` added
        go. Returns the number of leases freed."""
        by_q: dict[str, list[Any]] = {}
        for q, job_id, owner in items:
            by_q.setdefault(q, []).extend((str(job_id), -1 if owner is None else owner))
        if not by_q:
            return 0
        async with self.r.pipeline(transaction=False) as pipe:
            for q, args in by_q.items():
                k = self.keys(q)
                await self._unclaim(keys=[k.leases, k.meta, k.ready, k.wake, self.wake_all, k.rate],
                                    args=[now_ms, *args], client=pipe)
            res = await pipe.execute()
        return sum(int(x) for x in res)

    async def extend_leases(self, items: Iterable[tuple[str, uuid.UUID]], deadline_ms: int) -> None:
        by_q = by_queue((q, str(job_id)) for q, job_id in items)
        if not by_q:
            return
        async with self.r.pipeline(transaction=False) as pipe:
            for q, ids in by_q.items():
                # XX: only refresh existing leases; a lease the reaper removed must stay removed.
                pipe.zadd(self.keys(q).leases, dict.fromkeys(ids, deadline_ms), xx=True)
            await pipe.execute()

    async def set_queue_meta(self, controls: Iterable[QueueControls]) -> int:
        """Mirror queue controls into each queue's meta hash (one script per queue, pipelined).

        Returns how many were applied (a newer version already in Redis wins).
        """
        items = list(controls)
        if not items:
            return 0
        async with self.r.pipeline(transaction=False) as pipe:
            for c in items:
                k = self.keys(c.name)
                await self._queue_meta(
                    keys=[k.meta, k.ready, k.wake, self.wake_all, self.queues_key],
                    args=[c.name, c.version, "1" if c.paused else "0",
                          "" if c.max_in_flight is None else c.max_in_flight,
                          "" if c.rate_limit is None else c.rate_limit,
                          "" if c.rate_window_ms is None else c.rate_window_ms],
                    client=pipe)
            res = await pipe.execute()
        return sum(int(x) for x in res)

    async def queue_meta(self, queue: str) -> dict[str, str]:
        raw = await self.r.hgetall(self.keys(queue).meta)
        return {_s(k): _s(v) for k, v in raw.items()}

    async def reconcile_entries(self, queue: str, quads: list[tuple[str, str, int, int]]) -> int:
        if not quads:
            return 0
        k = self.keys(queue)
        args: list[Any] = [queue]
        for job_id, kind, score, rscore in quads:
            args += [job_id, kind, score, rscore]
        return int(await self._reconcile(
            keys=[k.ready, k.delayed, k.dprio, k.leases, k.wake, self.wake_all, self.queues_key,
                  self.timer_wake],
            args=args))

    # --- reads -------------------------------------------------------------------------------

    async def known_queues(self) -> list[str]:
        members = await self.r.smembers(self.queues_key)
        return sorted(_s(m) for m in members)

    async def expired_leases(self, queue: str, now_ms: int, limit: int = 1000) -> list[uuid.UUID]:
        ids = await self.r.zrangebyscore(self.keys(queue).leases, "-inf", now_ms, start=0, num=limit)
        return [uuid.UUID(_s(i)) for i in ids]

    async def depth(self, queues: Sequence[str]) -> dict[str, dict[str, int]]:
        async with self.r.pipeline(transaction=False) as pipe:
            for q in queues:
                k = self.keys(q)
                pipe.zcard(k.ready)
                pipe.zcard(k.delayed)
                pipe.zcard(k.leases)
            res = await pipe.execute()
        return {q: {"ready": int(res[i * 3]), "delayed": int(res[i * 3 + 1]),
                    "leased": int(res[i * 3 + 2])} for i, q in enumerate(queues)}

    def private_wake(self, owner: str) -> str:
        """A wake-up list only ``owner`` blocks on: pushing it interrupts that owner's BLPOP.

        Needed because cancelling a blocking command in redis-py waits for the command to end.
        """
        return f"{self.prefix}:wake:{owner}"

    async def wait_for_work(self, queues: Sequence[str] | None, timeout_s: float,
                            owner: str | None = None) -> bool:
        """Block until a wake-up for ``queues`` (None = any queue) or ``timeout_s``.

        Must be called on a client whose connection may block (BLPOP holds it).
        """
        keys = [self.wake_all] if queues is None else [self.keys(q).wake for q in queues]
        if owner is not None:
            keys.append(self.private_wake(owner))
        res = await self.r.blpop(keys, timeout=max(timeout_s, 0.001))
        return res is not None

    async def wait_for_timer(self, timeout_s: float, owner: str | None = None) -> bool:
        keys = [self.timer_wake]
        if owner is not None:
            keys.append(self.private_wake(owner))
        res = await self.r.blpop(keys, timeout=max(timeout_s, 0.001))
        return res is not None

    def stop_flag(self, owner: str) -> str:
        """Set when ``owner`` is told to stop: its pending wait-and-claim then takes nothing."""
        return f"{self.prefix}:stopping:{owner}"

    async def interrupt(self, owner: str) -> None:
        key = self.private_wake(owner)
        async with self.r.pipeline(transaction=False) as p:
            p.set(self.stop_flag(owner), 1, px=60_000)
            p.lpush(key, 1)
            p.pexpire(key, 60_000)
            await p.execute()

    async def wait_and_claim(
        self, wait_on: Sequence[str] | None, timeout_s: float, owner: str,
        queues: Sequence[str], n: int, lease_ms: int, rotate: int = 0, offset_ms: int = 0,
    ) -> tuple[list[tuple[str, uuid.UUID]], int | None, int]:
        """Block like :meth:`wait_for_work`, then claim like :meth:`claim`, in one round trip.

        The claim script is pipelined behind the BLPOP on this (blocking) connection, so Valkey
        runs it as soon as the wake-up arrives (or the wait times out) instead of after a reply
        to the worker and a new request: one hop less between a submit and its handler. The
        claim reads the server's clock (claim.lua, wait-and-claim mode), since a worker reading
        taken before the wait would be stale. ``offset_ms`` (application clock minus Valkey's)
        is added to that reading, so every time the script compares or writes stays on the
        application clock. Returns (leased pairs, next due ms or None, the time the leases were
        computed from, on the application clock). An interrupted ``owner`` claims nothing.
        """
        wake = [self.wake_all] if wait_on is None else [self.keys(q).wake for q in wait_on]
        keys: list[str] = []
        for q in queues:
            k = self.keys(q)
            keys += [k.ready, k.leases, k.delayed, k.dprio, k.wake, k.meta, k.rate]
        keys += [self.wake_all, self.stop_flag(owner)]
        async with self.r.pipeline(transaction=False) as pipe:
            pipe.blpop([*wake, self.private_wake(owner)], timeout=max(timeout_s, 0.001))
            await self._claim(keys=keys, args=["time", lease_ms, max(n, 0),
                                               rotate % max(len(queues), 1), 1000, offset_ms],
                              client=pipe)
            _, res = await pipe.execute()
        now = int(res[-1])
        out = [(queues[int(res[i])], uuid.UUID(_s(res[i + 1]))) for i in range(0, len(res) - 2, 2)]
        next_due = int(res[-2])
        return out, (next_due if next_due >= 0 else None), now

    # --- cron schedules: wake-up of the schedulers' cron loop -----------------------------------

    async def wake_cron(self) -> None:
        """Tell a sleeping cron loop that schedules changed (it re-reads the next fire time)."""
        async with self.r.pipeline(transaction=True) as p:
            p.lpush(self.cron_wake, 1)
            p.ltrim(self.cron_wake, 0, 0)
            await p.execute()

    async def wait_for_cron(self, timeout_s: float, owner: str | None = None) -> bool:
        keys = [self.cron_wake]
        if owner is not None:
            keys.append(self.private_wake(owner))
        res = await self.r.blpop(keys, timeout=max(timeout_s, 0.001))
        return res is not None

    # --- epoch: detects a flushed/restarted-empty Redis --------------------------------------

    async def epoch(self) -> str | None:
        v = await self.r.get(self.epoch_key)
        return _s(v) if v is not None else None

    async def set_epoch(self, value: str) -> None:
        await self.r.set(self.epoch_key, value)


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)
