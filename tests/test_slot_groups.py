"""Slot groups: the key layout that keeps every dispatch script inside one Redis Cluster slot.

These run on the suite's Redis (one node, or a cluster under ``--redis-cluster``) with the
grouped layout forced on, so the logic is tested on every run; docs/redis-keys.md, "Redis Cluster".
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

from jobline.shared.core import jobs
from jobline.shared.core.models import JobSpec
from jobline.shared.dispatch.redis_dispatch import Dispatch, DispatchEntry, group_tags
from jobline.shared.platform.config import Settings
from jobline.shared.platform.connections import Deps, connect, create_redis
from jobline.testing import wait_until
from jobline.worker.registry import Registry
from jobline.worker.runtime import Worker

GROUPS = 4
QUEUES = [f"q{i}" for i in range(8)]


@pytest.fixture
def deps_settings(settings: Settings) -> Settings:
    return settings.with_(redis_slot_groups=GROUPS)


@pytest.fixture
async def block(deps: Deps) -> AsyncIterator[Dispatch]:
    d = Dispatch(create_redis(deps.settings.redis_url or "", blocking=True),
                 deps.settings.redis_prefix, GROUPS)
    yield d
    await d.aclose_waiters()
    await d.r.aclose()


def entry(seq: int, due_ms: int = 0) -> DispatchEntry:
    return DispatchEntry(uuid.uuid4(), 0, seq, due_ms)


def test_group_tags_spread_evenly_over_the_slot_space() -> None:
    for n in (1, 3, 12, 16):
        tags = group_tags(n)
        slots = [key_slot(t.encode()) for t in tags]
        for i, s in enumerate(slots):
            assert i * REDIS_CLUSTER_HASH_SLOTS // n <= s < (i + 1) * REDIS_CLUSTER_HASH_SLOTS // n
        assert tags == group_tags(n)  # stable: every process computes the same layout


def test_a_queue_shares_its_slot_with_its_groups_keys(deps: Deps) -> None:
    d = deps.dispatch
    assert d.grouped and len(d.groups) == GROUPS
    used = set()
    for q in QUEUES:
        k = d.keys(q)
        g = k.group
        used.add(g.index)
        names = [k.ready, k.delayed, k.dprio, k.leases, k.wake, k.meta, k.rate, g.wake_all,
                 g.queues, g.timer, g.private_wake("w"), g.stop_flag("w")]
        assert len({key_slot(n.encode()) for n in names}) == 1, q
    assert len(used) > 1  # the eight queues do spread over groups
    # the single-node layout keeps the keys of earlier releases
    legacy = Dispatch(deps.redis, "jl", 0)
    assert legacy.keys("q").ready == "jl:{q}:ready" and legacy.wake_all == "jl:wake"


async def test_claim_across_groups_respects_n_and_reports_the_soonest_due(deps: Deps) -> None:
    d = deps.dispatch
    now = 1_000_000
    await d.enqueue_many({q: [entry(i) for i in range(3)] for q in QUEUES}, now)
    got, _ = await d.claim(QUEUES, 10, now, now + 30_000)
    assert len(got) == 10 and len({j for _, j in got}) == 10
    got2, _ = await d.claim(QUEUES, 100, now, now + 30_000)
    assert len(got2) == 14
    assert await d.known_queues() == sorted(QUEUES)
    # nothing ready: the answer is the earliest due time over every group
    await d.enqueue("q1", [entry(50, now + 9_000)], now)
    await d.enqueue("q6", [entry(51, now + 4_000)], now)
    got3, due = await d.claim(QUEUES, 5, now, now + 30_000)
    assert got3 == [] and due == now + 4_000
    moved, nxt = await d.promote(QUEUES, now + 5_000)
    assert moved == 1 and nxt == now + 9_000


async def test_an_idle_worker_on_every_queue_wakes_for_any_group(deps: Deps,
                                                                 block: Dispatch) -> None:
    d = deps.dispatch
    for q in QUEUES:  # drain wake-ups left by nothing: start clean
        await d.r.delete(d.keys(q).group.wake_all)
    assert block.spans_groups(None)
    for q in QUEUES:
        waiting = asyncio.create_task(block.wait_for_work(None, 30, owner="w"))
        await asyncio.sleep(0)
        await d.enqueue(q, [entry(1)], int(time.time() * 1000))
        assert await asyncio.wait_for(waiting, 30) is True


async def test_a_wake_up_popped_while_busy_is_handed_back(deps: Deps, block: Dispatch) -> None:
    """A process that is not waiting must not swallow the wake-up an idle one should get."""
    d = deps.dispatch
    g = d.keys("q3").group
    for grp in d.groups:
        await d.r.delete(grp.wake_all)
    # a short wait starts the background BLPOPs; they stay blocked after it returns
    assert await block.wait_for_work(None, 0.05, owner="w") is False
    await d.enqueue("q3", [entry(1)], int(time.time() * 1000))

    async def handed_back() -> bool:
        return bool(await d.r.llen(g.wake_all) == 1)

    await wait_until(handed_back, message="the popped wake-up pushed back")
    # and the next wait takes it
    assert await block.wait_for_work(None, 30, owner="w") is True


async def test_interrupt_ends_a_wait_across_groups_even_before_it_starts(
        deps: Deps, block: Dispatch) -> None:
    for grp in deps.dispatch.groups:
        await deps.redis.delete(grp.wake_all)
    # before: the next wait returns at once (the private wake-up waits for it)
    await deps.dispatch.interrupt("w")
    assert await asyncio.wait_for(block.wait_for_work(None, 60, owner="w"), 30) is True
    # during (whichever comes first, the 60 s wait must end long before its timeout)
    waiting = asyncio.create_task(block.wait_for_work(None, 60, owner="w"))
    await asyncio.sleep(0)
    await deps.dispatch.interrupt("w")
    assert await asyncio.wait_for(waiting, 30) is True


async def test_wait_and_claim_refuses_queues_of_several_groups(block: Dispatch) -> None:
    spread = [q for q in QUEUES if block.group_of(q).index != block.group_of(QUEUES[0]).index]
    with pytest.raises(AssertionError):
        await block.wait_and_claim(None, 0.01, "w", [QUEUES[0], spread[0]], 1, 1000)


async def test_a_worker_serves_queues_of_every_group(deps: Deps) -> None:
    reg = Registry()
    seen: list[str] = []

    for q in QUEUES:
        @reg.job(f"t.{q}", queue=q)
        async def handler(payload: dict[str, Any]) -> None:
            seen.append(payload["q"])

    subs = await jobs.submit_many(deps, [JobSpec(job_type=f"t.{q}", queue=q, payload={"q": q})
                                         for q in QUEUES for _ in range(5)])
    worker = Worker(deps, reg, concurrency=4)
    task = asyncio.create_task(worker.run())

    async def done() -> bool:
        return len(seen) == len(subs)

    await wait_until(done, message="every queue's jobs ran")
    # and an idle worker is woken by a later submit into any group
    await jobs.submit(deps, JobSpec(job_type="t.q5", queue="q5", payload={"q": "q5"}))

    async def one_more() -> bool:
        return len(seen) == len(subs) + 1

    await wait_until(one_more, message="a job submitted to an idle worker ran")
    worker.request_stop()
    stats = await task
    assert stats.processed == len(subs) + 1
    assert sorted(set(seen)) == sorted(QUEUES)


async def test_settings_choose_the_layout(settings: Settings) -> None:
    d = await connect(settings.with_(redis_slot_groups=None))
    try:
        # one node, nothing set: the single-node layout (a cluster gets groups by default)
        from jobline.shared.platform.redis_client import is_cluster
        assert d.dispatch.grouped is is_cluster(d.redis)
    finally:
        await d.close()


async def test_a_lost_group_is_noticed_and_rebuilt(deps: Deps) -> None:
    """A flushed or replaced shard loses only its groups' keys; each group keeps its own epoch
    marker, so the scheduler's check sees the loss and reconcile restores those queues."""
    from jobline.shared.core import maintenance

    subs = await jobs.submit_many(deps, [JobSpec(job_type="t", queue=q, payload={})
                                         for q in QUEUES])
    await maintenance.reconcile(deps)
    assert await maintenance.ensure_dispatch_state(deps) is None
    d = deps.dispatch
    lost = d.keys("q2").group
    keys = [k async for k in d.r.scan_iter(match=f"{lost.base}*", count=1000)]
    assert keys
    for k in keys:  # what a shard replaced by an empty node looks like
        await d.r.delete(k)
    assert await d.depth(["q2"]) == {"q2": {"ready": 0, "delayed": 0, "leased": 0}}
    report = await maintenance.ensure_dispatch_state(deps)
    assert report is not None and report.added >= 1
    assert (await d.depth(["q2"]))["q2"]["ready"] == 1
    got, _ = await d.claim(QUEUES, 100, deps.clock.now_ms(), deps.clock.now_ms() + 30_000)
    assert sorted(str(j) for _, j in got) == sorted(str(s.submitted.id) for s in subs)


async def test_a_paused_or_full_queue_takes_no_share_of_a_claim_across_groups(deps: Deps) -> None:
    """The claim asks each group for what it can give: a paused queue's (or a capped queue's)
    ready jobs must not use up the batch that other groups could fill."""
    from jobline.shared.dispatch.redis_dispatch import QueueControls

    d = deps.dispatch
    now = 1_000_000
    first, other = "q0", next(q for q in QUEUES if d.group_of(q) is not d.group_of("q0"))
    await d.enqueue(first, [entry(i) for i in range(50)], now)
    await d.enqueue(other, [entry(100 + i) for i in range(50)], now)
    await d.set_queue_meta([QueueControls(first, paused=True, version=1)])
    order = [first, other]  # the paused queue's group comes first in the rotation
    for rotate in range(2):
        got, _ = await d.claim(order, 5, now, now + 30_000, rotate)
        assert [q for q, _ in got] == [other] * 5
    await d.set_queue_meta([QueueControls(first, paused=False, max_in_flight=2, version=2)])
    got, _ = await d.claim(order, 10, now, now + 30_000, 0)
    assert sorted(q for q, _ in got).count(first) == 2 and len(got) == 10


async def test_a_flushed_shard_of_a_real_cluster_is_rebuilt(settings: Settings,
                                                           valkey_cluster: Any) -> None:
    """FLUSHALL on one master of the 3-master cluster (its replica follows): the scheduler's
    check (each group's epoch) notices, reconcile restores the lost queues, every job is
    claimable again exactly once."""
    from jobline.shared.core import maintenance

    if not hasattr(valkey_cluster, "flush_shard"):
        pytest.fail("needs the session's own cluster (REDIS_CLUSTER_URL cannot be flushed)")
    deps = await connect(settings.with_(redis_url=valkey_cluster.url, redis_slot_groups=None))
    try:
        d = deps.dispatch
        assert d.grouped and len(d.groups) == 12
        queues = [f"fs{i}" for i in range(24)]
        subs = await jobs.submit_many(deps, [JobSpec(job_type="t", queue=q, payload={})
                                             for q in queues for _ in range(3)])
        await maintenance.reconcile(deps)
        victim = d.keys(queues[0]).ready
        valkey_cluster.flush_shard(victim)
        lost = [q for q in queues if (await d.depth([q]))[q]["ready"] == 0]
        assert queues[0] in lost and len(lost) < len(queues)  # one shard of three lost its part
        report = await maintenance.ensure_dispatch_state(deps)
        assert report is not None and report.added == 3 * len(lost)
        now = deps.clock.now_ms()
        got, _ = await d.claim(queues, 1000, now, now + 30_000)
        assert sorted(str(j) for _, j in got) == sorted(str(s.submitted.id) for s in subs)
    finally:
        await deps.close()


async def test_an_evicting_master_of_a_cluster_is_refused(settings: Settings,
                                                         valkey_cluster: Any) -> None:
    """The noeviction check asks every primary: one evicting master would drop queued jobs."""
    import redis as sync_redis

    from jobline.shared.platform.errors import ConfigError

    if not hasattr(valkey_cluster, "nodes"):
        pytest.fail("needs the session's own cluster (REDIS_CLUSTER_URL cannot be reconfigured)")
    masters = [n for n in valkey_cluster.nodes if n.role == "master"]
    victim = sync_redis.Redis(port=masters[-1].port)
    victim.config_set("maxmemory-policy", "allkeys-lru")
    try:
        with pytest.raises(ConfigError, match="allkeys-lru"):
            await connect(settings.with_(redis_url=valkey_cluster.url))
    finally:
        victim.config_set("maxmemory-policy", "noeviction")
        victim.close()
    deps = await connect(settings.with_(redis_url=valkey_cluster.url))  # all noeviction again
    await deps.close()
