"""Redis (Valkey) dispatch state: ready queues, delayed sets, leases and wake-ups.

Redis holds no truth. Everything here can be rebuilt from Postgres by ``reconcile``; every state
change is one Lua script (files in ``lua/``, each stating its guarantees and KEYS/ARGV) or a single
atomic command. Key layout is documented in ``docs/redis-keys.md``; per-queue keys carry the queue
name as a ``{hash tag}`` so one queue's keys live in one Redis Cluster slot.

Slot groups (Redis Cluster): a script may touch one slot only, yet every transition also wakes
all-queue workers, registers the queue and arms the delayed-job timer. With ``groups > 0`` the
queues are spread over that many slot groups; a group's queues and its own wake list, queue
registry and timer list all carry the group's hash tag, so each script stays inside one slot while
the groups spread over the cluster's masters. ``groups == 0`` is the single-node layout (global
wake/registry/timer keys), byte for byte the keys of earlier releases.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, NamedTuple, TypeVar, cast

from redis.commands.core import AsyncScript
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot
from redis.exceptions import NoScriptError

from jobline.shared.core.models import PRIORITY_MAX
from jobline.shared.platform.redis_client import RedisClient, is_cluster

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


#: Slot groups a cluster client gets when ``JOBLINE_REDIS_SLOT_GROUPS`` is not set: enough to
#: spread evenly over 3-8 masters; each all-queue worker blocks on one connection per group.
DEFAULT_CLUSTER_GROUPS = 12


def group_tags(n: int) -> list[str]:
    """Hash tags for ``n`` slot groups, group ``i``'s tag hashing into the ``i``-th of ``n``
    equal slice of the 16,384 slots, so the groups spread evenly over any balanced cluster
    (whose masters own contiguous slot ranges) instead of where CRC16 happens to put ``g0..gn``."""
    tags = []
    for i in range(n):
        lo, hi = i * REDIS_CLUSTER_HASH_SLOTS // n, (i + 1) * REDIS_CLUSTER_HASH_SLOTS // n
        k = 0
        while not lo <= key_slot(f"g{i}.{k}".encode()) < hi:
            k += 1
        tags.append(f"g{i}.{k}")
    return tags


class Group:
    """The cross-queue keys of one slot group (or the global ones, single-node layout)."""

    __slots__ = ("base", "index", "queues", "timer", "wake_all")

    def __init__(self, prefix: str, tag: str | None, index: int = 0) -> None:
        self.index = index
        self.base = prefix if tag is None else f"{prefix}:{{{tag}}}"
        self.wake_all = f"{self.base}:wake"
        self.queues = f"{self.base}:queues"
        self.timer = f"{self.base}:timer"

    def private_wake(self, owner: str) -> str:
        return f"{self.base}:wake:{owner}"

    def stop_flag(self, owner: str) -> str:
        return f"{self.base}:stopping:{owner}"


class QueueKeys:
    __slots__ = ("delayed", "dprio", "group", "leases", "meta", "name", "rate", "ready", "wake")

    def __init__(self, prefix: str, name: str, group: Group | None = None) -> None:
        grouped = group is not None and group.base != prefix
        base = f"{group.base}:q:{name}" if grouped and group else f"{prefix}:{{{name}}}"
        self.group = group if group is not None else Group(prefix, None)
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
    """Typed access to the dispatch keys under one prefix. Holds a client, no job state.

    ``groups``: slot groups (module docstring); None = :data:`DEFAULT_CLUSTER_GROUPS` for a
    cluster client, the single-node layout otherwise. Every process of a deployment must use the
    same value (a change moves queues to other keys: run ``jobline reconcile`` after it)."""

    def __init__(self, client: RedisClient, prefix: str = "jl", groups: int | None = None) -> None:
        self.r = client
        self.prefix = prefix
        if groups is None:
            groups = DEFAULT_CLUSTER_GROUPS if is_cluster(client) else 0
        self.groups = ([Group(prefix, t, i) for i, t in enumerate(group_tags(groups))]
                       if groups > 0 else [Group(prefix, None)])
        self.grouped = groups > 0
        g0 = self.groups[0]
        self.queues_key = g0.queues
        self.wake_all = g0.wake_all
        self.timer_wake = g0.timer
        self.epoch_key = f"{prefix}:epoch"
        self.cron_wake = f"{g0.base}:cron"
        self._waiters: dict[tuple[tuple[str, ...], ...], _MultiWait] = {}
        self._enqueue = client.register_script(_script("enqueue"))
        self._claim = client.register_script(_script("claim"))
        self._promote = client.register_script(_script("promote"))
        self._remove = client.register_script(_script("remove"))
        self._reconcile = client.register_script(_script("reconcile"))
        self._queue_meta = client.register_script(_script("queue_meta"))
        self._release = client.register_script(_script("release"))
        self._unclaim = client.register_script(_script("unclaim"))
        self._peek = client.register_script(_script("peek"))
        #: Application clock minus Valkey's clock (ms) as last measured by ``wait_and_claim``'s
        #: caller; the timed claim adds it to Valkey's TIME so its ``now`` is on the
        #: application clock (docs/redis-keys.md, "Clocks").
        self.clock_offset_ms: int | None = None
        self._keys: dict[str, QueueKeys] = {}

    def keys(self, queue: str) -> QueueKeys:
        k = self._keys.get(queue)
        if k is None:
            k = self._keys[queue] = QueueKeys(self.prefix, queue, self.group_of(queue))
        return k

    def group_of(self, queue: str) -> Group:
        if not self.grouped:
            return self.groups[0]
        return self.groups[zlib.crc32(queue.encode()) % len(self.groups)]

    def split(self, queues: Sequence[str]) -> list[tuple[Group, list[str]]]:
        """``queues`` by slot group, groups in order of their first queue (one group when not
        grouped): the unit one script may serve."""
        out: dict[int, tuple[Group, list[str]]] = {}
        for q in queues:
            g = self.group_of(q)
            out.setdefault(g.index, (g, []))[1].append(q)
        return list(out.values())

    # --- transitions -----------------------------------------------------------------------

    async def enqueue(
        self, queue: str, entries: Sequence[DispatchEntry], now_ms: int, *, positions: bool = False
    ) -> list[int]:
        """Put jobs into ready/delayed (and out of leases). Returns ready ranks if ``positions``."""
        if not entries:
            return []
        k = self.keys(queue)
        args = _enqueue_args(queue, entries, now_ms, positions)
        g = k.group
        res = await self._enqueue(
            keys=[k.ready, k.delayed, k.dprio, k.leases, k.wake, g.wake_all, g.queues, g.timer],
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
        async with _Pipe(self.r) as pipe:
            for q, entries in by_queue.items():
                k = self.keys(q)
                args = _enqueue_args(q, entries, now_ms, positions)
                g = k.group
                await pipe.script(
                    self._enqueue,
                    [k.ready, k.delayed, k.dprio, k.leases, k.wake, g.wake_all, g.queues, g.timer],
                    args)
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
        parts = self.split(queues)
        if len(parts) == 1:
            return await self._claim_group(parts[0][0], queues, n, now_ms, lease_deadline_ms,
                                           rotate)
        # Across slot groups: first read what each group can give (ready jobs plus delayed ones
        # already due, none from a paused queue, no more than a capped queue has room for),
        # then run the claim scripts of the groups that can give side by side, each asked for
        # at most its share, so together they never lease more than ``n``. Two round trips per
        # node instead of one per group; a share the read overestimated (a rate limit, a race
        # with another worker) only makes this claim smaller.
        order = [parts[(rotate + i) % len(parts)] for i in range(len(parts))]
        async with _Pipe(self.r) as pipe:
            for _, qs in order:
                keys: list[str] = []
                for q in qs:
                    k = self.keys(q)
                    keys += [k.ready, k.delayed, k.meta, k.leases]
                await pipe.script(self._peek, keys, [now_ms])
            reads = await pipe.execute()
        shares: list[int] = []
        left = n
        soonest: int | None = None
        for can, head in reads:
            if int(head) >= 0:
                soonest = int(head) if soonest is None else min(soonest, int(head))
            shares.append(min(left, int(can)))
            left -= shares[-1]
        if not any(shares):
            return [], soonest
        async with _Pipe(self.r) as pipe:
            for (g, qs), share in zip(order, shares, strict=True):
                if share:
                    await pipe.script(self._claim, self._claim_keys(g, qs),
                                      [now_ms, lease_deadline_ms, share, rotate % len(qs), 1000])
            results = await pipe.execute()
        out: list[tuple[str, uuid.UUID]] = []
        asked = [qs for (_, qs), share in zip(order, shares, strict=True) if share]
        for qs, res in zip(asked, results, strict=True):
            for j in range(0, len(res) - 1, 2):
                out.append((qs[int(res[j])], uuid.UUID(_s(res[j + 1]))))
            if int(res[-1]) >= 0:
                t = int(res[-1])
                soonest = t if soonest is None else min(soonest, t)
        return out, (None if out else soonest)

    def _claim_keys(self, g: Group, queues: Sequence[str]) -> list[str]:
        keys: list[str] = []
        for q in queues:
            k = self.keys(q)
            keys += [k.ready, k.leases, k.delayed, k.dprio, k.wake, k.meta, k.rate]
        keys.append(g.wake_all)
        return keys

    async def _claim_group(self, g: Group, queues: Sequence[str], n: int, now_ms: int,
                           lease_deadline_ms: int, rotate: int
                           ) -> tuple[list[tuple[str, uuid.UUID]], int | None]:
        res = cast(list[Any], await self._claim(
            keys=self._claim_keys(g, queues),
            args=[now_ms, lease_deadline_ms, n, rotate % len(queues), 1000]))
        out = []
        for i in range(0, len(res) - 1, 2):
            out.append((queues[int(res[i])], uuid.UUID(_s(res[i + 1]))))
        next_due = int(res[-1])
        return out, (next_due if next_due >= 0 else None)

    async def promote(self, queues: Sequence[str], now_ms: int, limit: int = 5000) -> tuple[int, int | None]:
        """Move due delayed jobs to ready. Returns (moved, next due ms or None)."""
        if not queues:
            return 0, None
        async with _Pipe(self.r) as pipe:
            for g, qs in self.split(queues):
                keys: list[str] = []
                for q in qs:
                    k = self.keys(q)
                    keys += [k.ready, k.delayed, k.dprio, k.wake, k.meta]
                keys.append(g.wake_all)
                await pipe.script(self._promote, keys, [now_ms, limit])
            res = await pipe.execute()
        moved = sum(int(m) for m, _ in res)
        dues = [int(d) for _, d in res if int(d) >= 0]
        return moved, (min(dues) if dues else None)

    async def remove(self, items: Iterable[tuple[str, uuid.UUID]]) -> int:
        """Remove jobs from every dispatch structure of their queue."""
        by_q = by_queue((q, str(job_id)) for q, job_id in items)
        if not by_q:
            return 0
        async with _Pipe(self.r) as pipe:
            for q, ids in by_q.items():
                k = self.keys(q)
                await pipe.script(self._remove, [k.ready, k.delayed, k.dprio, k.leases], ids)
            res = await pipe.execute()
        return sum(int(x) for x in res)

    async def release_leases(self, items: Iterable[tuple[str, uuid.UUID]]) -> None:
        """Drop lease entries of finished attempts (one script per queue, pipelined); wakes
        workers of a capped queue, since a freed slot is what they wait for."""
        by_q = by_queue((q, str(job_id)) for q, job_id in items)
        if not by_q:
            return
        async with _Pipe(self.r) as pipe:
            for q, ids in by_q.items():
                k = self.keys(q)
                # unpack() in Lua is bounded by the C stack: chunk very large batches
                for i in range(0, len(ids), 5000):
                    await pipe.script(self._release, [k.leases, k.meta, k.ready, k.wake,
                                              k.group.wake_all], ids[i:i + 5000])
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
        async with _Pipe(self.r) as pipe:
            for q, args in by_q.items():
                k = self.keys(q)
                await pipe.script(self._unclaim, [k.leases, k.meta, k.ready, k.wake, k.group.wake_all,
                                          k.rate], [now_ms, *args])
            res = await pipe.execute()
        return sum(int(x) for x in res)

    async def extend_leases(self, items: Iterable[tuple[str, uuid.UUID]], deadline_ms: int) -> None:
        by_q = by_queue((q, str(job_id)) for q, job_id in items)
        if not by_q:
            return
        async with _Pipe(self.r) as pipe:
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
        async with _Pipe(self.r) as pipe:
            for c in items:
                k = self.keys(c.name)
                await pipe.script(
                    self._queue_meta, [k.meta, k.ready, k.wake, k.group.wake_all, k.group.queues],
                    [c.name, c.version, "1" if c.paused else "0",
                     "" if c.max_in_flight is None else c.max_in_flight,
                     "" if c.rate_limit is None else c.rate_limit,
                     "" if c.rate_window_ms is None else c.rate_window_ms])
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
        g = k.group
        return int(await self._reconcile(
            keys=[k.ready, k.delayed, k.dprio, k.leases, k.wake, g.wake_all, g.queues, g.timer],
            args=args))

    # --- reads -------------------------------------------------------------------------------

    async def known_queues(self) -> list[str]:
        if not self.grouped:
            members = await self.r.smembers(self.queues_key)
            return sorted(_s(m) for m in members)
        # no SUNION: the groups' registries live in different slots
        async with _Pipe(self.r) as pipe:
            for g in self.groups:
                pipe.smembers(g.queues)
            res = await pipe.execute()
        return sorted({_s(m) for members in res for m in members})

    async def expired_leases(self, queue: str, now_ms: int, limit: int = 1000) -> list[uuid.UUID]:
        ids = await self.r.zrangebyscore(self.keys(queue).leases, "-inf", now_ms, start=0, num=limit)
        return [uuid.UUID(_s(i)) for i in ids]

    async def depth(self, queues: Sequence[str]) -> dict[str, dict[str, int]]:
        async with _Pipe(self.r) as pipe:
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
        (Slot groups: each group has its own, :meth:`Group.private_wake`.)
        """
        return self.groups[0].private_wake(owner)

    def _wake_sets(self, queues: Sequence[str] | None, owner: str | None
                   ) -> list[tuple[Group, list[str]]]:
        """The lists to block on for ``queues`` (None = any queue), by slot group, each group's
        set ending with ``owner``'s private wake-up there."""
        if queues is None:
            sets = [(g, [g.wake_all]) for g in self.groups]
        else:
            sets = [(g, [self.keys(q).wake for q in qs]) for g, qs in self.split(queues)]
        if owner is not None:
            for g, keys in sets:
                keys.append(g.private_wake(owner))
        return sets

    async def _block(self, sets: list[list[str]], timeout_s: float, owner: str | None,
                     repush: bool) -> bool:
        if len(sets) == 1:
            return await self.r.blpop(sets[0], timeout=max(timeout_s, 0.001)) is not None
        key = tuple(tuple(s) for s in sets)
        w = self._waiters.get(key)
        if w is None:
            # the key sets change only when a worker's queue list does: retire the old waiter
            for old in self._waiters.values():
                await old.aclose(self)
            self._waiters.clear()
            w = self._waiters[key] = _MultiWait(sets, owner, repush)
        return await w.wait(self, timeout_s)

    async def wait_for_work(self, queues: Sequence[str] | None, timeout_s: float,
                            owner: str | None = None) -> bool:
        """Block until a wake-up for ``queues`` (None = any queue) or ``timeout_s``.

        Must be called on a client whose connection may block (BLPOP holds it). Across slot
        groups one BLPOP cannot watch every list, so a waiter per group blocks in the
        background (:class:`_MultiWait`); ``owner`` then names it, for :meth:`interrupt`.
        """
        sets = self._wake_sets(queues, owner)
        if len(sets) > 1 and owner is None:
            owner = f"anon:{uuid.uuid4().hex[:12]}"
            sets = self._wake_sets(queues, owner)
            return await _MultiWait([k for _, k in sets], owner, True).wait(
                self, timeout_s, once=True)
        return await self._block([k for _, k in sets], timeout_s, owner, True)

    async def wait_for_timer(self, timeout_s: float, owner: str | None = None) -> bool:
        sets = [[g.timer, *([g.private_wake(owner)] if owner is not None else [])]
                for g in self.groups]
        return await self._block(sets, timeout_s, owner, True)

    def spans_groups(self, *queue_lists: Sequence[str] | None) -> bool:
        """Whether waiting on / claiming from these queues needs more than one slot group (then
        the one-round-trip :meth:`wait_and_claim` cannot serve them)."""
        if not self.grouped:
            return False
        seen: set[int] = set()
        for qs in queue_lists:
            seen |= ({g.index for g in self.groups} if qs is None
                     else {self.group_of(q).index for q in qs})
        return len(seen) > 1

    def stop_flag(self, owner: str) -> str:
        """Set when ``owner`` is told to stop: its pending wait-and-claim then takes nothing."""
        return self.groups[0].stop_flag(owner)

    async def interrupt(self, owner: str) -> None:
        async with self.r.pipeline(transaction=False) as p:
            for g in self.groups:
                key = g.private_wake(owner)
                p.set(g.stop_flag(owner), 1, px=60_000)
                p.lpush(key, 1)
                p.pexpire(key, 60_000)
            await p.execute()

    async def aclose_waiters(self) -> None:
        """End the background waiters of :meth:`wait_for_work` (grouped layout)."""
        for w in self._waiters.values():
            await w.aclose(self)
        self._waiters.clear()

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
        Only for queues of one slot group (:meth:`spans_groups`): BLPOP and script must run on
        the same node, in that order.
        """
        assert not self.spans_groups(wait_on, queues), "wait_and_claim across slot groups"
        g = self.group_of(queues[0]) if queues else self.groups[0]
        wake = [g.wake_all] if wait_on is None else [self.keys(q).wake for q in wait_on]
        keys: list[str] = []
        for q in queues:
            k = self.keys(q)
            keys += [k.ready, k.leases, k.delayed, k.dprio, k.wake, k.meta, k.rate]
        keys += [g.wake_all, g.stop_flag(owner)]
        async with _Pipe(self.r) as pipe:
            pipe.blpop([*wake, g.private_wake(owner)], timeout=max(timeout_s, 0.001))
            await pipe.script(self._claim, keys, ["time", lease_ms, max(n, 0),
                                                  rotate % max(len(queues), 1), 1000, offset_ms])
            _, res = await pipe.execute()
        now = int(res[-1])
        out = [(queues[int(res[i])], uuid.UUID(_s(res[i + 1]))) for i in range(0, len(res) - 2, 2)]
        next_due = int(res[-2])
        return out, (next_due if next_due >= 0 else None), now

    # --- cron schedules: wake-up of the schedulers' cron loop -----------------------------------

    async def wake_cron(self) -> None:
        """Tell a sleeping cron loop that schedules changed (it re-reads the next fire time)."""
        async with self.r.pipeline(transaction=not is_cluster(self.r)) as p:
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
        """The time of the last full reconcile, or None when any part of Redis lost it: on a
        cluster each slot group keeps its own copy, so a flushed or replaced shard shows."""
        if not self.grouped:
            v = await self.r.get(self.epoch_key)
            return _s(v) if v is not None else None
        async with _Pipe(self.r) as pipe:
            for g in self.groups:
                pipe.get(f"{g.base}:epoch")
            values = await pipe.execute()
        if any(v is None for v in values):
            return None
        return min(_s(v) for v in values)

    async def set_epoch(self, value: str) -> None:
        if not self.grouped:
            await self.r.set(self.epoch_key, value)
            return
        async with _Pipe(self.r) as pipe:
            for g in self.groups:
                pipe.set(f"{g.base}:epoch", value)
            await pipe.execute()


class _Pipe:
    """A non-transactional pipeline that may carry script calls, on one node or a cluster.

    redis-py's cluster pipeline does not load scripts the way the single-node one does, and a
    node promoted after a failover has none cached: a call answered NOSCRIPT did not run there,
    so it is re-sent on its own through the script object (which loads the script and retries).
    Only those calls are re-sent: the rest of the pipeline has run, and claims are not idempotent.
    """

    def __init__(self, r: RedisClient) -> None:
        self.r = r
        self.p: Any = r.pipeline(transaction=False)
        self.scripts: dict[int, tuple[AsyncScript, list[str], list[Any]]] = {}
        self.n = 0

    async def __aenter__(self) -> _Pipe:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.p.reset()

    def __getattr__(self, name: str) -> Any:
        # plain commands (zadd, zcard, blpop, ...) queue on the underlying pipeline
        cmd = getattr(self.p, name)

        def queued(*a: Any, **kw: Any) -> Any:
            self.n += 1
            return cmd(*a, **kw)
        return queued

    async def script(self, s: AsyncScript, keys: list[str], args: list[Any]) -> None:
        self.scripts[self.n] = (s, keys, args)
        self.n += 1
        await s(keys=keys, args=args, client=self.p)

    async def execute(self) -> list[Any]:
        res = list(await self.p.execute(raise_on_error=False))
        for i, x in enumerate(res):
            if isinstance(x, NoScriptError) and i in self.scripts:
                s, keys, args = self.scripts[i]
                res[i] = await s(keys=keys, args=args, client=self.r)
            elif isinstance(x, Exception):
                raise x
        return res


class _MultiWait:
    """BLPOP over lists in several slots: one background task per slot blocks on its own
    connection and turns a wake-up into a local signal.

    Invariant: a wake-up popped while nobody here is waiting is pushed back (``repush``), so a
    busy process never swallows the wake-up an idle one should get. With an owner, each set
    ends with the owner's private wake-up of that slot, which :meth:`Dispatch.interrupt` pushes.
    """

    #: How long each background BLPOP blocks before looping (it re-checks whether to go on).
    BLOCK_S = 5.0

    def __init__(self, sets: list[list[str]], owner: str | None, repush: bool) -> None:
        self.sets = sets
        self.owner = owner
        self.repush = repush
        self.wanting = asyncio.Event()
        self.hit = asyncio.Event()
        self.closing = False
        self.interrupted = False
        self.tasks: list[asyncio.Task[None]] = []

    async def _loop(self, d: Dispatch, keys: list[str]) -> None:
        private = keys[-1] if self.owner is not None else None
        while not self.closing:
            await self.wanting.wait()
            try:
                res = await d.r.blpop(keys, timeout=self.BLOCK_S)
            except Exception:  # Redis away: the caller's own calls surface it; retry later
                await asyncio.sleep(0.2)
                continue
            if res is None:
                continue
            key = _s(res[0])
            if key == private:
                # an interrupt ends the current wait, or the next one if none is pending (as
                # the private list would, had its element stayed for the next BLPOP)
                self.interrupted = True
                self.hit.set()
                continue
            if self.wanting.is_set():
                self.hit.set()
            elif self.repush:
                # a failed hand-back must not end this group's waiter: the wake-up is a hint,
                # and an idle worker's wait timeout covers its loss
                with contextlib.suppress(Exception):
                    async with d.r.pipeline(transaction=False) as p:
                        p.lpush(key, 1)
                        p.ltrim(key, 0, 0)
                        await p.execute()

    async def wait(self, d: Dispatch, timeout_s: float, once: bool = False) -> bool:
        if self.interrupted:
            self.interrupted = False
            return True
        if not self.tasks:
            self.tasks = [asyncio.create_task(self._loop(d, keys)) for keys in self.sets]
        self.hit.clear()
        self.wanting.set()
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.hit.wait(), max(timeout_s, 0.001))
            self.interrupted = False
            return self.hit.is_set()
        finally:
            self.wanting.clear()
            if once:
                await self.aclose(d)

    async def aclose(self, d: Dispatch) -> None:
        # Cancelling drops the blocked connections at once (redis-py 8 disconnects a
        # cancelled command); a wake-up popped at that very moment is lost, which only costs
        # an idle worker its wait timeout.
        self.closing = True
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks = []


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)
